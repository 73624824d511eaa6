"""The history in tabs (TRC-2): who acted decides the tab; filters by period and kind of action; emergency
accesses on top of every tab; « Signaler » on what someone else did — and only the person (or their legal
representative) can report."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.family.tables import Caregiver
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.history.tables import AccessReport
from carnet.identity.service import auth
from carnet.people.tables import Account, Patient
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import STRANGER, Actors, Feeders

PARIS = ZoneInfo("Europe/Paris")
GP = "Dr Jean-Baptiste FERRACCI"
DENTIST = "Dr Dominique ORSINI"
STRANGER_NAME = "Pierre-Paul LUCIANI"
DEMO = "Carnet (données de démonstration)"


def plain(response: object) -> str:
    text = re.sub(r"<[^>]+>", " ", text_of(response))
    return re.sub(r"\s+", " ", html.unescape(text))


def history(client: TestClient, patient_id: str, query: str = "") -> object:
    return client.get(f"/espace/{patient_id}/historique{query}")


def table(response: object) -> str:
    """Only the history's table (the tabs, filters and alerts excluded)."""
    page = text_of(response)
    match = re.search(r"<tbody>(.*?)</tbody>", page, re.S)
    if match is None:
        return ""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))))


def make_caregiver(services: Services, helped_id: str, login: str = STRANGER) -> None:
    with services.db.unit_of_work() as db:
        helper = db.scalar(select(Account.patient_id).where(Account.login == login))
        db.add(Caregiver(helped_id=helped_id, caregiver_id=helper))


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return auth.actor_for(db, account)


def pro_list(client: TestClient, patient_id: str) -> None:
    """A professional reads the list of documents in the professional view (« a consulté la liste des documents »)."""
    assert client.get(f"/pro/patients/{patient_id}/documents").status_code == 200


def search_over_mhd(f: Feeders, headers: dict[str, str]) -> None:
    url = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{f.ins}"
    assert f.client.get(url, headers=headers).status_code == 200


# ------------------------------------------------------------------ tabs


def test_each_tab_shows_who_it_names(actors: Actors, demo: Services, feeders: Feeders) -> None:
    pid = actors.patient_id
    pro_list(actors.professional, pid)  # the médecin traitant reads the list in the professional view
    search_over_mhd(feeders, feeders.gp)  # and his software searches the space
    actors.stranger.get(f"/espace/{pid}")  # refused
    with demo.db.unit_of_work() as db:
        app = Actor(ActorKind.APP, "app-suivi-tension", "Mon suivi tension (application)")
        audit.record(db, app, "document.deposit", patient_id=pid, resource_type="document")

    everything = history(actors.patient, pid)
    assert everything.status_code == 200  # type: ignore[attr-defined]
    for tab in ("Tout", "Professionnels", "Mes activités", "Représentants légaux et aidants", "Services synchronisés"):
        assert tab in plain(everything)
    assert re.search(r'href="[^"]*onglet=tout" aria-current="page">Tout<', text_of(everything))

    pros = history(actors.patient, pid, "?onglet=professionnels")
    assert re.search(r'onglet=professionnels" aria-current="page">Professionnels<', text_of(pros))
    rows = table(pros)
    assert rows.count(f"{GP} (professionnel de santé) a consulté la liste des documents") == 2  # portal, MHD
    assert "Vous" not in rows and DEMO not in rows and STRANGER_NAME not in rows and "Mon suivi" not in rows

    mine = table(history(actors.patient, pid, "?onglet=activites"))
    assert "Vous vous êtes connecté(e) à l'espace" in mine and f"{DEMO} a créé l'espace santé" in mine
    assert GP not in mine and STRANGER_NAME not in mine and "Mon suivi" not in mine

    others = table(history(actors.patient, pid, "?onglet=representants"))
    assert f"{STRANGER_NAME} a tenté une ouverture de l'espace santé — refusée" in others
    assert "Vous" not in others and GP not in others

    apps = table(history(actors.patient, pid, "?onglet=services"))
    assert "Mon suivi tension (application) (service connecté) a déposé un document" in apps
    assert GP not in apps and "Vous" not in apps

    unknown_tab = history(actors.patient, pid, "?onglet=inconnu")
    assert unknown_tab.status_code == 200 and GP in table(unknown_tab)  # type: ignore[attr-defined]


def test_a_caregiver_acting_in_the_space_is_under_representatives_and_caregivers(
    actors: Actors, demo: Services
) -> None:
    pid = actors.patient_id
    make_caregiver(demo, pid)
    assert actors.stranger.get(f"/espace/{pid}").status_code == 200
    others = table(history(actors.patient, pid, "?onglet=representants"))
    assert f"{STRANGER_NAME} (aidant) a ouvert l'espace santé" in others  # TRC-1: recorded as a caregiver
    assert STRANGER_NAME not in table(history(actors.patient, pid, "?onglet=activites"))
    own_view = table(history(actors.stranger, pid, "?onglet=representants"))  # the caregiver reads it too
    assert "Vous avez ouvert l'espace santé" in own_view


def test_a_parent_acting_in_a_childs_space_is_under_legal_representatives(demo: Services, new_client: object) -> None:
    parent: TestClient = new_client()  # type: ignore[operator]
    log_in(parent, demo, "laetitia.casanova")
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    assert child
    assert parent.get(f"/espace/{child}").status_code == 200
    representatives = table(history(parent, child, "?onglet=representants"))
    assert "Vous avez ouvert l'espace santé" in representatives
    with demo.db.unit_of_work() as db:  # TRC-1: recorded as what the parent is in this space
        kinds = set(
            db.scalars(
                select(AuditEntry.actor_kind).where(AuditEntry.chain == child, AuditEntry.action == "space.view")
            )
        )
    assert kinds == {"representative"}
    mine = table(history(parent, child, "?onglet=activites"))
    assert f"{DEMO} a créé l'espace santé" in mine and "Vous" not in mine


# ------------------------------------------------------------------ filters


def test_filters_by_kind_of_action(actors: Actors, feeders: Feeders) -> None:
    pid = actors.patient_id
    actors.stranger.get(f"/espace/{pid}")
    search_over_mhd(feeders, feeders.gp)
    refused = table(history(actors.patient, pid, "?type=refus"))
    assert f"{STRANGER_NAME} a tenté une ouverture de l'espace santé — refusée" in refused
    assert "connecté(e) à l'espace" not in refused and "consulté la liste" not in refused
    logins = table(history(actors.patient, pid, "?type=acces"))
    assert "Vous vous êtes connecté(e) à l'espace" in logins and "consulté la liste" not in logins
    reads = table(history(actors.patient, pid, "?type=consultations"))
    assert "a consulté la liste des documents" in reads and "connecté(e) à l'espace" not in reads
    assert f"{STRANGER_NAME} a tenté une ouverture" in reads  # a refused reading is still a reading
    page = history(actors.patient, pid, "?onglet=professionnels&type=consultations")
    assert re.search(r'<option value="consultations" selected>', text_of(page))
    assert "type=consultations" in re.search(r'href="([^"]*onglet=activites[^"]*)"', text_of(page)).group(1)  # type: ignore[union-attr]


def test_filters_by_period_in_french_time(actors: Actors) -> None:
    pid = actors.patient_id
    today = datetime.now(PARIS).date()
    same_day = table(history(actors.patient, pid, f"?du={today}&au={today}"))
    assert "Vous vous êtes connecté(e) à l'espace" in same_day
    later = history(actors.patient, pid, f"?du={today + timedelta(days=1)}")
    assert later.status_code == 200 and table(later) == ""  # type: ignore[attr-defined]
    assert "Aucune activité pour ces filtres dans cet onglet." in plain(later)
    earlier = table(history(actors.patient, pid, f"?au={today - timedelta(days=1)}"))
    assert earlier == ""


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?du=2026-13-45", "La date « du » n'est pas valide"),
        ("?du=2026-06-02&au=2026-06-01", "La fin de la période est avant son début"),
    ],
)
def test_a_wrong_period_is_explained(actors: Actors, query: str, message: str) -> None:
    response = history(actors.patient, actors.patient_id, query)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert message in plain(response)
    assert "Vous vous êtes connecté(e)" in table(response)  # the history is still shown, unfiltered


# ------------------------------------------------------------------ emergency on top


def test_an_emergency_access_is_shown_on_top_of_every_tab(actors: Actors, demo: Services) -> None:
    dentist = actor_of(demo, "dominique.orsini")
    with demo.db.unit_of_work() as db:
        access.start_emergency(db, dentist, actors.patient_id, "Malaise au cabinet dentaire")
    for tab in ("tout", "professionnels", "activites", "representants", "services"):
        page = history(actors.patient, actors.patient_id, f"?onglet={tab}&type=refus")
        alert = re.search(r'<div class="fr-alert fr-alert--warning[^>]*>(.*?)</div>', text_of(page), re.S)
        assert alert, tab
        words = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", alert.group(1)))
        assert "Accès en urgence" in words and DENTIST in words and "(bris de glace)" in words
        assert "motif : « Malaise au cabinet dentaire »" in words
    pros = table(history(actors.patient, actors.patient_id, "?onglet=professionnels&type=urgences"))
    assert f"{DENTIST} (professionnel de santé) a accédé à l'espace santé en urgence (bris de glace)" in pros


def test_no_emergency_alert_when_there_was_none(actors: Actors) -> None:
    assert "Accès en urgence" not in plain(history(actors.patient, actors.patient_id))


# ------------------------------------------------------------------ « Signaler »


def report_link(response: object, who: str) -> str:
    for row in text_of(response).split("<tr>")[1:]:
        row = row.split("</tr>")[0]
        if who in row:
            match = re.search(r'href="([^"]+/signaler)"', row)
            if match:
                return match.group(1)
    raise AssertionError(f"pas de « Signaler » pour {who}")


def reports(services: Services) -> list[AccessReport]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(AccessReport)))


def test_the_patient_reports_what_a_professional_did(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    pro_list(actors.professional, pid)
    page = history(actors.patient, pid, "?onglet=professionnels")
    link = report_link(page, GP)
    form = actors.patient.get(link)
    assert form.status_code == 200
    assert "Signaler une entrée de l'historique" in plain(form)
    assert f"{GP} (professionnel de santé) a consulté la liste des documents" in plain(form)
    sent = actors.patient.post(
        link, data={"commentaire": "Je ne l'ai pas consulté ce jour-là.", "csrf_token": csrf_of(form.text)}
    )
    assert sent.status_code == 303
    after = actors.patient.get(sent.headers["location"])
    assert "Votre signalement a été transmis." in plain(after)
    row = next(r for r in text_of(after).split("<tr>") if GP in r)
    assert "Signalé" in row and "/signaler" not in row
    stored = reports(demo)
    assert len(stored) == 1
    assert stored[0].patient_id == pid and stored[0].comment == "Je ne l'ai pas consulté ce jour-là."
    assert stored[0].reported_by == "Marie-Ange SANTONI"
    with demo.db.unit_of_work() as db:
        entry = db.get(AuditEntry, stored[0].audit_entry_id)
        assert entry is not None and entry.chain == pid and entry.action == "document.search"
    assert "Vous avez signalé une entrée de l'historique" in table(after)
    again = actors.patient.post(link, data={"commentaire": "", "csrf_token": csrf_of(form.text)})
    assert again.status_code == 303 and len(reports(demo)) == 1
    assert "Vous avez déjà signalé cette entrée" in plain(actors.patient.get(link))


def test_own_entries_have_no_report_button_and_cannot_be_reported(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    page = history(actors.patient, pid, "?onglet=activites")
    assert "/signaler" not in text_of(page)
    with demo.db.unit_of_work() as db:
        own = db.scalar(select(AuditEntry.id).where(AuditEntry.chain == pid, AuditEntry.action == "auth.login"))
    response = actors.patient.post(
        f"/espace/{pid}/historique/{own}/signaler",
        data={"csrf_token": csrf_of(page.text)},  # type: ignore[attr-defined]
    )
    assert response.status_code == 400
    assert "Vous ne pouvez signaler que ce qu'une autre personne a fait" in plain(response)
    assert reports(demo) == []


def test_an_entry_of_another_space_is_not_found(actors: Actors, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        elsewhere = db.scalar(select(AuditEntry.id).where(AuditEntry.chain != actors.patient_id))
    csrf = csrf_of(history(actors.patient, actors.patient_id).text)  # type: ignore[attr-defined]
    for response in (
        actors.patient.get(f"/espace/{actors.patient_id}/historique/{elsewhere}/signaler"),
        actors.patient.post(f"/espace/{actors.patient_id}/historique/{elsewhere}/signaler", data={"csrf_token": csrf}),
        actors.patient.get(f"/espace/{actors.patient_id}/historique/999999999/signaler"),
    ):
        assert response.status_code == 404
        assert "Cette entrée de l'historique n'existe pas." in plain(response)
    assert reports(demo) == []


def test_a_comment_is_at_most_a_thousand_characters(actors: Actors, demo: Services) -> None:
    pro_list(actors.professional, actors.patient_id)
    link = report_link(history(actors.patient, actors.patient_id, "?onglet=professionnels"), GP)
    form = actors.patient.get(link)
    response = actors.patient.post(link, data={"commentaire": "x" * 1001, "csrf_token": csrf_of(form.text)})
    assert response.status_code == 400
    assert "Votre commentaire dépasse 1000 caractères" in plain(response)
    assert reports(demo) == []


@pytest.mark.parametrize("who", ["professional", "unauthorised", "stranger"])
def test_others_cannot_report_nor_read_the_history(actors: Actors, demo: Services, who: str) -> None:
    pid = actors.patient_id
    pro_list(actors.professional, pid)
    link = report_link(history(actors.patient, pid, "?onglet=professionnels"), GP)
    client: TestClient = getattr(actors, who)
    csrf = csrf_of(client.get("/pro" if who != "stranger" else "/espace", follow_redirects=True).text)
    refused = [client.post(link, data={"commentaire": "faux signalement", "csrf_token": csrf})]
    for url in (f"/espace/{pid}/historique?onglet=professionnels", link):
        response = client.get(url)
        if who == "stranger":
            refused.append(response)
            continue
        # A professional is sent to the professional view; the patient's history page is not theirs (TRC-2).
        assert response.status_code == 303, url
        assert response.headers["location"] == f"/pro/patients/{pid}/documents"
        assert "SANTONI" not in response.text and GP not in response.text
        view = client.get(response.headers["location"])
        assert view.status_code == (200 if who == "professional" else 403)
        assert "connecté(e) à l'espace" not in plain(view) and "/signaler" not in text_of(view)
    for response in refused:
        assert response.status_code == 403
        assert "Vous n'avez pas accès à cet espace." in plain(response)
        assert "SANTONI" not in plain(response) and GP not in plain(response)
    assert reports(demo) == []


def test_a_caregiver_reads_the_history_but_does_not_report(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    make_caregiver(demo, pid)
    pro_list(actors.professional, pid)
    page = history(actors.stranger, pid, "?onglet=professionnels")
    assert page.status_code == 200 and GP in table(page)  # type: ignore[attr-defined]
    assert "/signaler" not in text_of(page)
    link = report_link(history(actors.patient, pid, "?onglet=professionnels"), GP)
    assert actors.stranger.get(link).status_code == 403
    assert reports(demo) == []
