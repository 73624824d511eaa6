"""Access in a real Chromium (ACC-1..4, TRC-2, TRC-3): Marie-Ange sees the alert of an emergency access, opens
« Accès », authorises then blocks and unblocks her dentist, turns the SAMU off in Paramètres, browses the
history's tabs and reports the emergency access — axe-core on every page, no Content-Security-Policy refusal."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import select

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.identity.service import auth
from carnet.people.tables import Account
from tests.browser.conftest import PageProblems, assert_accessible, assert_no_csp_refusal
from tests.browser.test_login_journey import PATIENT, log_in

pytestmark = pytest.mark.browser

DENTIST = "Dr Dominique ORSINI"
REASON = "Malaise au fauteuil, patiente confuse"


def emergency_by_the_dentist(services: Services) -> None:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == "dominique.orsini"))
        assert account is not None
        dentist = auth.actor_for(db, account)
        patient_id = db.scalar(select(Account.patient_id).where(Account.login == PATIENT))
    with services.db.unit_of_work() as db:
        access.start_emergency(db, dentist, patient_id or "", REASON)


def test_marie_ange_manages_who_may_read_her_space(page: Page, demo: Services, page_problems: PageProblems) -> None:
    emergency_by_the_dentist(demo)
    log_in(page, demo, PATIENT, check_accessibility=False)
    alerts = page.get_by_role("region", name="Alertes")
    expect(alerts).to_contain_text(f"Accès en urgence (bris de glace) par {DENTIST}")
    assert_accessible(page)

    menu = page.get_by_role("navigation", name="Menu de l'espace santé")
    menu.get_by_role("link", name="Accès").click()
    expect(page.get_by_role("heading", name="Accès à mon espace", level=1)).to_be_visible()
    expect(menu.get_by_role("link", name="Accès")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("row").filter(has_text="Dr Jean-Baptiste FERRACCI")).to_contain_text("médecin traitant")
    expect(page.get_by_role("row").filter(has_text=REASON)).to_contain_text("Bris de glace")
    assert_accessible(page)

    page.get_by_label(re.compile(r"^Nom ou numéro RPPS du professionnel")).fill("orsini")
    page.get_by_role("button", name="Rechercher un professionnel").click()
    expect(page.get_by_text("1 professionnel trouvé")).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name=f"Autoriser : {DENTIST}").click()
    expect(page.get_by_role("status")).to_have_text("Le professionnel est autorisé à consulter votre espace.")
    authorised = page.get_by_role("region", name="Qui peut consulter mon espace")
    dentist_row = authorised.get_by_role("row").filter(has_text=DENTIST)
    expect(dentist_row).to_contain_text("par vous")

    dentist_row.get_by_role("button", name=re.compile(r"^Bloquer")).click()
    expect(page.get_by_role("heading", name=f"Bloquer {DENTIST} ?", level=1)).to_be_visible()
    expect(page.get_by_text("Il pourra toujours y déposer des documents.", exact=False)).to_be_visible()
    assert_accessible(page)
    page.get_by_role("button", name=f"Bloquer {DENTIST}").click()
    expect(page.get_by_role("status")).to_contain_text("Le professionnel est bloqué")
    blocked = page.get_by_role("listitem").filter(has_text="bloqué depuis le")
    expect(blocked).to_contain_text(DENTIST)
    assert_accessible(page)
    blocked.get_by_role("button", name=re.compile(r"^Débloquer")).click()
    expect(page.get_by_role("status")).to_contain_text("autorisez-le à nouveau")
    expect(page.get_by_text("Aucun professionnel n'est bloqué.")).to_be_visible()

    menu.get_by_role("link", name="Paramètres").click()
    samu = page.get_by_label(re.compile(r"^Le SAMU peut accéder à mon espace en cas d'urgence"))
    expect(samu).to_be_checked()
    samu.uncheck()
    page.get_by_role("button", name="Enregistrer mes choix d'accès en urgence").click()
    expect(page.get_by_role("status")).to_have_text("Vos choix d'accès en urgence sont enregistrés.")
    expect(page.get_by_label(re.compile(r"^Le SAMU peut accéder"))).not_to_be_checked()
    expect(page.get_by_label(re.compile(r"^Un professionnel de santé peut accéder"))).to_be_checked()
    assert_accessible(page)

    menu.get_by_role("link", name="Historique").click()
    expect(page.get_by_role("heading", name="Historique", level=1)).to_be_visible()
    expect(page.get_by_role("region", name="Accès en urgence")).to_contain_text(REASON)
    assert_accessible(page)
    tabs = page.get_by_role("navigation", name="Onglets de l'historique")
    tabs.get_by_role("link", name="Mes activités").click()
    expect(tabs.get_by_role("link", name="Mes activités")).to_have_attribute("aria-current", "page")
    expect(page.get_by_role("row").filter(has_text=f"Vous avez bloqué {DENTIST}")).to_have_count(1)
    assert_accessible(page)
    page.get_by_label("Type d'action").select_option(label="Accès et autorisations")
    page.get_by_role("button", name="Filtrer").click()
    expect(page).to_have_url(re.compile(r"onglet=activites.*type=acces"))
    expect(page.get_by_role("row").filter(has_text="Vous avez débloqué")).to_have_count(1)

    page.get_by_role("link", name="Effacer les filtres").click()
    tabs.get_by_role("link", name="Professionnels").click()
    emergency_row = page.get_by_role("row").filter(has_text="en urgence (bris de glace)")
    expect(emergency_row).to_have_count(1)
    assert_accessible(page)
    emergency_row.get_by_role("link", name=re.compile(r"^Signaler")).click()
    expect(page.get_by_role("heading", name="Signaler une entrée de l'historique", level=1)).to_be_visible()
    assert_accessible(page)
    page.get_by_label(re.compile(r"^Commentaire")).fill("Je n'étais pas chez le dentiste ce jour-là.")
    page.get_by_role("button", name="Envoyer le signalement").click()
    expect(page.get_by_role("status")).to_have_text("Votre signalement a été transmis.")
    expect(page.get_by_role("row").filter(has_text="en urgence (bris de glace)")).to_contain_text("Signalé")
    assert_accessible(page)
    assert_no_csp_refusal(page_problems)
