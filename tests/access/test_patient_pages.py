"""The patient's « Accès » page (ACC-1..4) and the emergency toggles of Paramètres, with the three actors:
the patient, an authorised professional (Dr Ferracci, médecin traitant), strangers (another patient, the
dentist Marie-Ange never authorised). What the page changes is checked where it matters: what the
professionals' software finds over MHD (ITI-67) and retrieves (ITI-68)."""

from __future__ import annotations

import html
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.access.service import grants as access
from carnet.access.tables import AccessGrant, CareTeam, CareTeamMember
from carnet.bootstrap import Services
from carnet.family.tables import Caregiver
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.identity.service import auth
from carnet.people.tables import Account, Patient, PatientSettings, Professional
from tests.conftest import csrf_of, text_of
from tests.support.actors import STRANGER, Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

FHIR = {"Content-Type": "application/fhir+json"}
DIR_ANT = "42348-3"  # Directives anticipées (LOINC), category DIR_ANT
GP = "Dr Jean-Baptiste FERRACCI"
PHARMACIST = "Anna Maria PERETTI"
DENTIST = "Dr Dominique ORSINI"
BLOCK_TEXT = (
    "Le professionnel ne pourra plus consulter votre espace, même s'il était autorisé. Il pourra toujours y "
    "déposer des documents. Pour le débloquer, il faudra l'autoriser à nouveau."
)


def plain(response: object) -> str:
    """The page's text without its markup, spaces collapsed."""
    text = re.sub(r"<[^>]+>", " ", text_of(response))
    return re.sub(r"\s+", " ", html.unescape(text))


def url(actors: Actors, suffix: str = "") -> str:
    return f"/espace/{actors.patient_id}/acces{suffix}"


def token(client: TestClient, actors: Actors) -> str:
    """A form token from a page this client may open (any page of Carnet gives one)."""
    for page in (url(actors), "/pro", "/espace"):
        response = client.get(page, follow_redirects=True)
        if response.status_code == 200 and 'name="csrf_token"' in response.text:
            return csrf_of(response.text)
    raise AssertionError("aucun formulaire")


def post(client: TestClient, actors: Actors, suffix: str, **data: str) -> object:
    return client.post(url(actors, suffix), data={**data, "csrf_token": token(client, actors)})


def pro_id(services: Services, rpps: str) -> str:
    with services.db.unit_of_work() as db:
        found = db.scalar(select(Professional.id).where(Professional.rpps == rpps))
    assert found
    return found


def row_of(page_html: str, name: str) -> str:
    rows = [row.split("</tr>")[0] for row in page_html.split("<tr>")[1:]]
    rows = [row for row in rows if name in row]
    assert len(rows) == 1, f"{name} : {len(rows)} ligne(s)"
    return rows[0]


def grant_id_in(page_html: str, name: str) -> str:
    match = re.search(r'name="autorisation" value="([^"]+)"', row_of(page_html, name))
    assert match
    return match.group(1)


def hits(page_html: str, target: str) -> str:
    """The results block of one of the page's searches."""
    match = re.search(rf'<div id="{target}-resultats">(.*?)</div>', page_html, re.S)
    assert match, f"pas de résultats « {target} »"
    return match.group(1)


def deposit(f: Feeders, headers: dict[str, str], title: str, type_code: str = "11502-2") -> str:
    entry = document_entry(f.ins, make_pdf(title), type_code=type_code, title=title)
    response = f.client.post("/fhir", json=provide_bundle(entry), headers={**headers, **FHIR})
    assert response.status_code == 200, response.text
    location: str = response.json()["entry"][1]["response"]["location"]
    return location.split("/")[1]


def titles(f: Feeders, headers: dict[str, str]) -> tuple[int, set[str]]:
    """What a professional's software finds over ITI-67: the total, and the titles listed."""
    url_ = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{f.ins}"
    response = f.client.get(url_, headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    found = {entry["resource"]["description"] for entry in body.get("entry", [])}
    return body["total"], found


def mask(actors: Actors, document_id: str) -> None:
    csrf = csrf_of(actors.patient.get(f"/espace/{actors.patient_id}/documents").text)
    response = actors.patient.post(
        f"/espace/{actors.patient_id}/documents/{document_id}/masquage", data={"masquer": "oui", "csrf_token": csrf}
    )
    assert response.status_code == 303


# ------------------------------------------------------------------ who may open the page


def test_the_patient_sees_who_may_read_their_space(actors: Actors) -> None:
    page = actors.patient.get(url(actors))
    assert page.status_code == 200
    text = plain(page)
    assert "Accès à mon espace" in text and "Espace de Marie-Ange SANTONI" in text
    gp = text_of_row(page.text, GP)
    assert "(médecin)" in gp and "médecin traitant" in gp and "par vous" in gp
    pharmacist = text_of_row(page.text, PHARMACIST)
    assert "(pharmacien)" in pharmacist and "autorisé" in pharmacist
    assert f"Votre médecin traitant est {GP}" in text
    assert "Aucun professionnel n'est bloqué." in text and "Aucun accès en urgence." in text
    assert re.search(r'href="[^"]+/acces" aria-current="page">Accès<', page.text)


def text_of_row(page_html: str, name: str) -> str:
    return re.sub(r"<[^>]+>", " ", row_of(page_html, name)).replace("&#39;", "'")


ROUTES = [
    ("get", "", {}),
    ("post", "/recherche", {"pour": "pro", "q": "peretti"}),
    ("post", "/medecin-traitant", {"professionnel": "x"}),
    ("post", "/autoriser", {"professionnel": "x", "role": "administrator"}),
    ("post", "/equipe", {"equipe": "x"}),
    ("post", "/retirer", {"autorisation": "x"}),
    ("post", "/bloquer", {"professionnel": "x"}),
    ("post", "/bloquer", {"professionnel": "x", "confirmer": "oui"}),
    ("post", "/debloquer", {"professionnel": "x"}),
]


@pytest.mark.parametrize(("method", "suffix", "data"), ROUTES)
@pytest.mark.parametrize("who", ["professional", "unauthorised", "stranger"])
def test_others_are_refused_every_route_and_learn_nothing(
    actors: Actors, demo: Services, who: str, method: str, suffix: str, data: dict[str, str]
) -> None:
    client: TestClient = getattr(actors, who)
    if method == "get":
        response = client.get(url(actors, suffix))
        if who != "stranger":  # a professional is sent to the professional view (tests/web/test_pro_pages.py)
            assert response.status_code == 303  # type: ignore[attr-defined]
            assert response.headers["location"] == f"/pro/patients/{actors.patient_id}/documents"
            return
    else:
        values = dict(data)
        if "professionnel" in values:
            values["professionnel"] = pro_id(demo, "10002345678")  # the pharmacist Marie-Ange authorised
        if "autorisation" in values:
            with demo.db.unit_of_work() as db:
                values["autorisation"] = db.scalars(select(AccessGrant.id)).first() or "x"
        response = post(client, actors, suffix, **values)
    assert response.status_code == 403  # type: ignore[attr-defined]
    text = plain(response)
    assert "Vous n'avez pas accès à cet espace." in text
    for name in ("SANTONI", "Marie-Ange", "PERETTI", "FERRACCI", "médecin traitant"):
        assert name not in text
    page = plain(actors.patient.get(url(actors)))  # nothing changed
    assert PHARMACIST in page and "Aucun professionnel n'est bloqué." in page and f"médecin traitant est {GP}" in page


@pytest.mark.parametrize(("method", "suffix", "data"), ROUTES)
def test_anonymous_visitors_are_sent_to_the_login_page(
    actors: Actors, method: str, suffix: str, data: dict[str, str]
) -> None:
    if method == "get":
        response = actors.anonymous.get(url(actors, suffix))
    else:
        csrf = csrf_of(actors.anonymous.get("/connexion").text)
        response = actors.anonymous.post(url(actors, suffix), data={**data, "csrf_token": csrf})
    assert response.status_code == 303 and response.headers["location"] == "/connexion"


def test_a_form_without_its_token_is_refused(actors: Actors) -> None:
    page = actors.patient.get(url(actors))
    grant = grant_id_in(page.text, PHARMACIST)
    response = actors.patient.post(url(actors, "/retirer"), data={"autorisation": grant})
    assert response.status_code == 403 and "Le formulaire a expiré" in plain(response)
    assert PHARMACIST in plain(actors.patient.get(url(actors)))


def test_a_caregiver_sees_the_access_page_but_cannot_change_it(actors: Actors, demo: Services) -> None:
    """FAM-3: a caregiver reads the settings; changing who may read the space is the person's own decision."""
    with demo.db.unit_of_work() as db:
        helper = db.scalar(select(Account.patient_id).where(Account.login == STRANGER))
        db.add(Caregiver(helped_id=actors.patient_id, caregiver_id=helper))
    page = actors.stranger.get(url(actors))
    assert page.status_code == 200
    assert PHARMACIST in plain(page) and "seuls la personne et ses représentants légaux" in plain(page)
    assert "Retirer" not in page.text and "Rechercher un professionnel" not in page.text
    grant = grant_id_in(actors.patient.get(url(actors)).text, PHARMACIST)
    refused = post(actors.stranger, actors, "/retirer", autorisation=grant)
    assert refused.status_code == 403  # type: ignore[attr-defined]
    assert "Un aidant ne peut pas effectuer cette action." in plain(refused)
    assert PHARMACIST in plain(actors.patient.get(url(actors)))


# ------------------------------------------------------------------ médecin traitant (ACC-2)


def test_declaring_the_medecin_traitant_lets_the_gp_see_masked_documents(actors: Actors, feeders: Feeders) -> None:
    document_id = deposit(feeders, feeders.lab, "Sérologie confidentielle")
    mask(actors, document_id)
    assert titles(feeders, feeders.gp) == (1, {"Sérologie confidentielle"})  # the médecin traitant of the demo

    page = actors.patient.get(url(actors))
    withdrawn = post(actors.patient, actors, "/retirer", autorisation=grant_id_in(page.text, GP))
    assert withdrawn.status_code == 303  # type: ignore[attr-defined]
    after = plain(actors.patient.get(withdrawn.headers["location"]))  # type: ignore[attr-defined]
    assert "L'accès a été retiré" in after and "Vous n'avez pas déclaré de médecin traitant." in after
    assert titles(feeders, feeders.gp) == (0, set())

    found = post(actors.patient, actors, "/recherche", pour="medecin", q="ferr")
    assert found.status_code == 200  # type: ignore[attr-defined]
    results = hits(found.text, "medecin")  # type: ignore[attr-defined]
    assert GP in results and "Médecin" in results and "Ajaccio" in results and "10001234567" in results
    only_doctors = post(actors.patient, actors, "/recherche", pour="medecin", q="peretti")
    assert "0 médecin trouvé" in hits(only_doctors.text, "medecin")  # type: ignore[attr-defined]
    by_rpps = post(actors.patient, actors, "/recherche", pour="medecin", q="100 0123 4567")
    assert GP in hits(by_rpps.text, "medecin")  # type: ignore[attr-defined]

    chosen = re.search(r'name="professionnel" value="([^"]+)"', results)
    assert chosen
    declared = post(actors.patient, actors, "/medecin-traitant", professionnel=chosen.group(1))
    assert declared.status_code == 303  # type: ignore[attr-defined]
    page = actors.patient.get(declared.headers["location"])  # type: ignore[attr-defined]
    assert "Votre médecin traitant est enregistré" in plain(page)
    assert f"Votre médecin traitant est {GP}" in plain(page)
    assert titles(feeders, feeders.gp) == (1, {"Sérologie confidentielle"})
    assert feeders.client.get(f"/fhir/Binary/{document_id}", headers=feeders.gp).status_code == 200
    history = plain(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert f"Vous avez autorisé {GP} (médecin) — médecin traitant" in history
    assert f"Vous avez retiré l'accès de {GP} (médecin) — médecin traitant" in history


def test_only_a_doctor_can_be_the_medecin_traitant(actors: Actors, demo: Services) -> None:
    response = post(actors.patient, actors, "/medecin-traitant", professionnel=pro_id(demo, "10002345678"))
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert "Le médecin traitant doit être un médecin" in plain(response)
    assert f"Votre médecin traitant est {GP}" in plain(response)


# ------------------------------------------------------------------ authorising (ACC-1)


def test_authorising_the_dentist_lets_him_read_what_his_profession_may_see_until_withdrawn(
    actors: Actors, feeders: Feeders, demo: Services
) -> None:
    deposit(feeders, feeders.lab, "Numération formule sanguine")
    directives = deposit(feeders, feeders.lab, "Mes directives anticipées", type_code=DIR_ANT)
    assert titles(feeders, feeders.dentist) == (0, set())

    found = post(actors.patient, actors, "/recherche", pour="pro", q="Orsini", role="reader")
    results = hits(found.text, "pro")  # type: ignore[attr-defined]
    assert DENTIST in results and "Chirurgien-dentiste" in results and "Ajaccio" in results
    authorised = post(actors.patient, actors, "/autoriser", professionnel=pro_id(demo, "10003456789"), role="reader")
    assert authorised.status_code == 303  # type: ignore[attr-defined]
    page = actors.patient.get(authorised.headers["location"])  # type: ignore[attr-defined]
    assert "Le professionnel est autorisé à consulter votre espace." in plain(page)
    row = text_of_row(page.text, DENTIST)
    assert "(chirurgien-dentiste)" in row and "autorisé" in row and "par vous" in row

    assert titles(feeders, feeders.dentist) == (1, {"Numération formule sanguine"})  # no advance directives
    assert feeders.client.get(f"/fhir/Binary/{directives}", headers=feeders.dentist).status_code == 404

    withdrawn = post(actors.patient, actors, "/retirer", autorisation=grant_id_in(page.text, DENTIST))
    assert withdrawn.status_code == 303  # type: ignore[attr-defined]
    assert DENTIST not in plain(actors.patient.get(url(actors)))
    assert titles(feeders, feeders.dentist) == (0, set())


def test_an_administrator_sees_everything_masked_documents_included(
    actors: Actors, feeders: Feeders, demo: Services
) -> None:
    masked = deposit(feeders, feeders.lab, "Bilan masqué")
    mask(actors, masked)
    deposit(feeders, feeders.lab, "Mes directives anticipées", type_code=DIR_ANT)
    found = post(actors.patient, actors, "/recherche", pour="pro", q="ORS", role="administrator")
    assert "Autoriser (administrateur)" in hits(found.text, "pro")  # type: ignore[attr-defined]
    post(actors.patient, actors, "/autoriser", professionnel=pro_id(demo, "10003456789"), role="administrator")
    assert "administrateur" in text_of_row(actors.patient.get(url(actors)).text, DENTIST)
    assert titles(feeders, feeders.dentist) == (2, {"Bilan masqué", "Mes directives anticipées"})


def test_a_care_team_is_authorised_as_a_whole(actors: Actors, feeders: Feeders, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        team = CareTeam(name="Cardiologie — CH d'Ajaccio")
        db.add(team)
        db.flush()
        db.add(CareTeamMember(team_id=team.id, professional_id=pro_id(demo, "10003456789")))
        db.add(CareTeam(name="Pneumologie — CH de Bastia"))
    deposit(feeders, feeders.lab, "Troponine")
    found = post(actors.patient, actors, "/recherche", pour="equipe", q="cardio")
    results = hits(found.text, "equipe")  # type: ignore[attr-defined]
    assert "Cardiologie — CH d'Ajaccio" in text_of_html(results) and "1 membre" in results
    assert "Pneumologie" not in results
    team_id = re.search(r'name="equipe" value="([^"]+)"', results)
    assert team_id
    done = post(actors.patient, actors, "/equipe", equipe=team_id.group(1))
    assert done.status_code == 303  # type: ignore[attr-defined]
    page = actors.patient.get(done.headers["location"])  # type: ignore[attr-defined]
    assert "L'équipe de soins est autorisée à consulter votre espace." in plain(page)
    assert "autorisé" in text_of_row(page.text, "Équipe de soins Cardiologie")
    assert titles(feeders, feeders.dentist) == (1, {"Troponine"})


def text_of_html(fragment: str) -> str:
    return fragment.replace("&#39;", "'")


@pytest.mark.parametrize(
    ("suffix", "data", "message"),
    [
        ("/autoriser", {"professionnel": "inconnu", "role": "reader"}, "Ce professionnel n'est pas dans l'annuaire."),
        ("/autoriser", {"professionnel": "inconnu", "role": "roi"}, "Choisissez le statut"),
        ("/equipe", {"equipe": "inconnue"}, "Cette équipe de soins n'existe pas."),
        ("/retirer", {"autorisation": "inconnue"}, "Cette autorisation n'existe pas."),
        ("/debloquer", {"professionnel": "inconnu"}, "Ce professionnel n'est pas dans l'annuaire."),
        ("/bloquer", {"professionnel": "inconnu"}, "Ce professionnel n'est pas dans l'annuaire."),
        ("/recherche", {"pour": "pro", "q": "a"}, "Saisissez au moins 2 lettres"),
        ("/recherche", {"pour": "equipe", "q": " "}, "Saisissez au moins 2 lettres du nom de l'équipe"),
    ],
)
def test_mistakes_are_explained_in_french(actors: Actors, suffix: str, data: dict[str, str], message: str) -> None:
    response = post(actors.patient, actors, suffix, **data)
    assert response.status_code == 400  # type: ignore[attr-defined]
    assert message in plain(response)


def test_a_search_lists_at_most_twenty_professionals(actors: Actors, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        for n in range(25):
            db.add(
                Professional(
                    rpps=f"1999{n:07d}",
                    last_name="MARTINETTI",
                    first_name=f"Ange{n}",
                    profession_code="60",
                    city="Corte",
                )
            )
    found = post(actors.patient, actors, "/recherche", pour="pro", q="martinetti")
    results = hits(found.text, "pro")  # type: ignore[attr-defined]
    assert results.count("RPPS 1999") == 20 and "20 au plus" in results and "Infirmier" in results


# ------------------------------------------------------------------ blocking (ACC-3)


def test_a_blocked_gp_can_still_deposit_but_no_longer_read_and_unblocking_does_not_restore_access(
    actors: Actors, feeders: Feeders, demo: Services
) -> None:
    lab_document = deposit(feeders, feeders.lab, "Ionogramme")
    deposit(feeders, feeders.gp, "Courrier du médecin traitant")
    assert titles(feeders, feeders.gp)[0] == 2

    gp = pro_id(demo, "10001234567")
    confirm = post(actors.patient, actors, "/bloquer", professionnel=gp)
    assert confirm.status_code == 200  # type: ignore[attr-defined]
    assert f"Bloquer {GP}" in plain(confirm) and BLOCK_TEXT in plain(confirm)
    assert titles(feeders, feeders.gp)[0] == 2  # nothing happens before the confirmation

    blocked = post(actors.patient, actors, "/bloquer", professionnel=gp, confirmer="oui")
    assert blocked.status_code == 303  # type: ignore[attr-defined]
    page = actors.patient.get(blocked.headers["location"])  # type: ignore[attr-defined]
    assert "Le professionnel est bloqué" in plain(page)
    assert "bloqué" in text_of_row(page.text, GP)
    assert re.search(rf"<strong>{GP}</strong>, bloqué depuis le", page.text)

    assert titles(feeders, feeders.gp) == (1, {"Courrier du médecin traitant"})  # only his own
    assert feeders.client.get(f"/fhir/Binary/{lab_document}", headers=feeders.gp).status_code == 404
    deposit(feeders, feeders.gp, "Ordonnance après blocage")  # deposits still arrive (ACC-3)

    unblocked = post(actors.patient, actors, "/debloquer", professionnel=gp)
    assert unblocked.status_code == 303  # type: ignore[attr-defined]
    page = actors.patient.get(unblocked.headers["location"])  # type: ignore[attr-defined]
    assert "autorisez-le à nouveau" in plain(page)
    assert "Aucun professionnel n'est bloqué." in plain(page)
    assert "Vous n'avez pas déclaré de médecin traitant." in plain(page)
    assert titles(feeders, feeders.gp) == (2, {"Courrier du médecin traitant", "Ordonnance après blocage"})
    history = plain(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert f"Vous avez bloqué {GP}" in history and f"Vous avez débloqué {GP}" in history


# ------------------------------------------------------------------ emergency (ACC-4)


def settings_url(actors: Actors) -> str:
    return f"/espace/{actors.patient_id}/parametres"


def checked(page_html: str, name: str) -> bool:
    match = re.search(rf'<input type="checkbox" id="{name}" name="{name}" value="oui" ?(checked)?>', page_html)
    assert match, name
    return match.group(1) is not None


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return auth.actor_for(db, account)


def test_the_emergency_toggles_are_saved_and_a_refused_emergency_says_why(actors: Actors, demo: Services) -> None:
    page = actors.patient.get(settings_url(actors))
    text = plain(page)
    assert "Accès en cas d'urgence" in text
    assert "Le SAMU peut accéder à mon espace en cas d'urgence" in text
    assert "Un professionnel de santé peut accéder à mon espace en cas d'urgence (bris de glace)" in text
    assert "Mes documents masqués restent visibles lors d'un accès en urgence" in text
    assert checked(page.text, "emergency_samu") and checked(page.text, "emergency_professionals")
    assert not checked(page.text, "emergency_masked")

    saved = actors.patient.post(
        f"{settings_url(actors)}/urgence", data={"emergency_masked": "oui", "csrf_token": csrf_of(page.text)}
    )
    assert saved.status_code == 303
    page = actors.patient.get(saved.headers["location"])
    assert "Vos choix d'accès en urgence sont enregistrés." in plain(page)
    assert not checked(page.text, "emergency_samu") and not checked(page.text, "emergency_professionals")
    assert checked(page.text, "emergency_masked")

    dentist, samu_regulator = actor_of(demo, "dominique.orsini"), actor_of(demo, "dr.santucci")
    with demo.db.unit_of_work() as db, pytest.raises(AccessDenied) as refused:
        access.start_emergency(db, dentist, actors.patient_id, "Patiente inconsciente")
    assert (
        refused.value.decision.reason
        == "La personne a refusé l'accès des professionnels en urgence à son espace santé."
    )
    with demo.db.unit_of_work() as db, pytest.raises(AccessDenied) as samu:
        access.start_emergency(db, samu_regulator, actors.patient_id, "Appel au 15, malaise")
    assert samu.value.decision.reason == "La personne a refusé l'accès par le SAMU à son espace santé."
    history = plain(actors.patient.get(f"/espace/{actors.patient_id}/historique?onglet=professionnels"))
    assert "a tenté une demande d'accès en urgence — refusée" in history


@pytest.mark.parametrize("who", ["professional", "unauthorised", "stranger"])
def test_only_the_patient_changes_the_emergency_toggles(actors: Actors, demo: Services, who: str) -> None:
    client: TestClient = getattr(actors, who)
    response = client.post(
        f"{settings_url(actors)}/urgence", data={"emergency_masked": "oui", "csrf_token": token(client, actors)}
    )
    assert response.status_code == 403
    assert "SANTONI" not in plain(response)
    with demo.db.unit_of_work() as db:
        settings = db.get(PatientSettings, actors.patient_id)
        assert settings is None or (settings.emergency_samu and not settings.emergency_masked)


def test_an_emergency_access_is_listed_on_the_access_page_and_in_the_alerts(
    actors: Actors, demo: Services, feeders: Feeders
) -> None:
    deposit(feeders, feeders.lab, "Groupe sanguin")
    dentist = actor_of(demo, "dominique.orsini")
    with demo.db.unit_of_work() as db:
        access.start_emergency(db, dentist, actors.patient_id, "Hémorragie au cabinet")
    assert titles(feeders, feeders.dentist) == (1, {"Groupe sanguin"})
    page = actors.patient.get(url(actors))
    row = text_of_row(page.text, "Hémorragie au cabinet")
    assert DENTIST in row and "Bris de glace" in row
    home = plain(actors.patient.get(f"/espace/{actors.patient_id}"))
    assert "Alertes" in home
    assert f"Accès en urgence (bris de glace) par {DENTIST} — motif : « Hémorragie au cabinet »" in home
    assert f"Première consultation de l'espace par {DENTIST} (chirurgien-dentiste)" in home


def test_the_home_has_no_alerts_when_nothing_happened(actors: Actors) -> None:
    assert "Alertes" not in plain(actors.patient.get(f"/espace/{actors.patient_id}"))


def test_the_patient_record_is_untouched_by_others_attempts(actors: Actors, demo: Services) -> None:
    """Refused attempts are in the patient's history, under the actor's name (ACC-5, TRC-2)."""
    post(actors.unauthorised, actors, "/autoriser", professionnel=pro_id(demo, "10003456789"), role="administrator")
    with demo.db.unit_of_work() as db:
        patient = db.get(Patient, actors.patient_id)
        assert patient is not None
        grants = db.scalars(
            select(AccessGrant).where(AccessGrant.patient_id == patient.id, AccessGrant.revoked_at.is_(None))
        ).all()
    assert len(grants) == 2
    history = plain(actors.patient.get(f"/espace/{actors.patient_id}/historique?type=refus"))
    assert f"{DENTIST} (professionnel de santé)" in history and "consultation des paramètres — refusée" in history
