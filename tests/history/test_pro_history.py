"""The professionals' history (TRC-2 "the médecin traitant and the author see theirs"): the médecin traitant
reads the whole history of the space; any other professional — even one the patient never authorised, or
blocked — reads only the entries of their own actions; neither consent nor an emergency access widens it.
Patients, strangers and anonymous visitors do not get the page; reading it is itself in the history."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.identity.service import auth
from carnet.people.tables import Account, Professional
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import PATIENT, Actors
from tests.support.documents import make_pdf

GP = "Dr Jean-Baptiste FERRACCI"
DENTIST = "Dr Dominique ORSINI"
PHARMACIST = "anna-maria.peretti"
REASON = "Hémorragie après extraction, patiente confuse"


def base(actors: Actors) -> str:
    return f"/pro/patients/{actors.patient_id}"


def history(client: TestClient, actors: Actors, query: str = "") -> Any:
    return client.get(f"{base(actors)}/historique{query}")


def table(response: Any) -> str:
    """Only the rows of the history's table, as read."""
    match = re.search(r"<tbody>(.*?)</tbody>", text_of(response), re.S)
    if match is None:
        return ""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))))


def plain(response: Any) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", text_of(response))))


def token(client: TestClient) -> str:
    return csrf_of(client.get("/", follow_redirects=True).text)


def deposit(client: TestClient, actors: Actors, title: str) -> None:
    """A document deposited from the portal (allowed even without access to the space)."""
    response = client.post(
        f"{base(actors)}/documents/deposer",
        data={"type": "11488-4", "titre": title, "csrf_token": token(client)},
        files={"fichier": ("soins.pdf", make_pdf(title), "application/pdf")},
    )
    assert response.status_code == 303, response.text


def patient_activity(actors: Actors) -> None:
    """The patient opens her space and her own history (entries of hers)."""
    assert actors.patient.get(f"/espace/{actors.patient_id}").status_code == 200
    assert actors.patient.get(f"/espace/{actors.patient_id}/historique").status_code == 200


def patient_actor(demo: Services) -> Any:
    with demo.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == PATIENT))
        assert account is not None
        return auth.actor_for(db, account)


# ------------------------------------------------------------------ the médecin traitant: the whole history


def test_the_medecin_traitant_reads_the_whole_history_of_the_space(actors: Actors) -> None:
    patient_activity(actors)
    assert actors.unauthorised.get(f"{base(actors)}/documents").status_code == 403  # Dr Orsini, refused
    assert actors.professional.get(f"{base(actors)}/documents").status_code == 200

    page = history(actors.professional, actors)
    assert page.status_code == 200
    text = plain(page)
    assert "Historique de l'espace" in text and "Mes actions dans cet espace" not in text
    assert "Marie-Ange SANTONI" in text  # he may open the space: the page names the person
    rows = table(page)
    assert "Marie-Ange SANTONI s'est connecté(e) à l'espace" in rows  # the patient's activity
    assert "Marie-Ange SANTONI a consulté l'historique" in rows
    assert f"{DENTIST} (professionnel de santé) a tenté une ouverture de l'espace santé — refusée" in rows
    assert "Vous avez consulté la liste des documents" in rows  # his own, told as his
    assert "Carnet (données de démonstration) a créé l'espace santé" in rows
    for tab in ("Tout", "Professionnels", "Activités de la personne", "Services synchronisés"):
        assert tab in text
    assert "/signaler" not in text_of(page) and "Signaler" not in text  # HISTORY_REPORT is the person's


def test_the_medecin_traitant_filters_the_history_by_tab_kind_and_period(actors: Actors) -> None:
    patient_activity(actors)
    assert actors.unauthorised.get(f"{base(actors)}/documents").status_code == 403

    pros = table(history(actors.professional, actors, "?onglet=professionnels"))
    assert DENTIST in pros and "SANTONI" not in pros
    person = table(history(actors.professional, actors, "?onglet=activites"))
    assert "Marie-Ange SANTONI s'est connecté(e) à l'espace" in person and DENTIST not in person
    refused = table(history(actors.professional, actors, "?type=refus"))
    assert f"{DENTIST} (professionnel de santé) a tenté une ouverture" in refused and "connecté" not in refused
    long_ago = history(actors.professional, actors, "?du=2001-01-01&au=2001-12-31")
    assert long_ago.status_code == 200 and table(long_ago) == ""
    assert "Aucune activité pour ces filtres dans cet onglet." in plain(long_ago)
    wrong = history(actors.professional, actors, "?du=2025-03-02&au=2025-03-01")
    assert wrong.status_code == 400
    assert "La fin de la période est avant son début : vérifiez les dates." in plain(wrong)


def test_the_medecin_traitant_sees_the_emergency_accesses_on_top(actors: Actors) -> None:
    response = actors.unauthorised.post(
        f"{base(actors)}/urgence", data={"motif": REASON, "incapacite": "oui", "csrf_token": token(actors.unauthorised)}
    )
    assert response.status_code == 303
    text = plain(history(actors.professional, actors, "?onglet=activites"))  # whatever the tab
    assert "Cet espace a été consulté en urgence au cours des 12 derniers mois" in text
    assert DENTIST in text and REASON in text


# ------------------------------------------------------------------ anyone else: their own actions only


def test_an_unauthorised_professional_reads_only_his_own_actions(actors: Actors) -> None:
    patient_activity(actors)
    assert actors.professional.get(f"{base(actors)}/documents").status_code == 200  # Dr Ferracci reads
    assert actors.unauthorised.get(f"{base(actors)}/documents").status_code == 403  # Dr Orsini is refused
    deposit(actors.unauthorised, actors, "Soins dentaires du 3 mars")

    page = history(actors.unauthorised, actors)
    assert page.status_code == 200
    text = plain(page)
    assert "Mes actions dans cet espace" in text and "Historique de l'espace" not in text
    rows = table(page)
    assert "Vous avez tenté une ouverture de l'espace santé — refusée" in rows
    assert "Vous avez déposé un document" in rows and "Vous avez recherché l'espace santé" in rows
    # Nothing of the others: not the patient's activity, not another professional, not the service.
    for other in ("SANTONI", "Marie-Ange", GP, "FERRACCI", "s'est connecté(e)", "Carnet (données", "a créé"):
        assert other not in text, other
    assert "Onglets de l'historique" not in text_of(page) and "/signaler" not in text_of(page)
    for query in ("?onglet=professionnels", "?onglet=activites", "?type=consultations"):
        assert GP not in table(history(actors.unauthorised, actors, query)), query
    assert "SANTONI" not in table(history(actors.unauthorised, actors, "?onglet=activites"))


def test_consent_or_an_emergency_gives_no_wider_history(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    patient_activity(actors)
    assert actors.professional.get(f"{base(actors)}/documents").status_code == 200
    orsini = actors.unauthorised
    response = orsini.post(
        f"{base(actors)}/urgence", data={"motif": REASON, "incapacite": "oui", "csrf_token": token(orsini)}
    )
    assert response.status_code == 303
    emergency = history(orsini, actors)
    text = plain(emergency)
    assert "Mes actions dans cet espace" in text
    assert "Vos accès en urgence à cet espace au cours des 12 derniers mois" in text and REASON in text
    assert "Vous avez accédé à l'espace santé en urgence" in table(emergency)
    assert GP not in table(emergency) and "s'est connecté(e)" not in table(emergency)

    pharmacist = new_client()
    log_in(pharmacist, demo, PHARMACIST)  # authorised by the patient (consent)
    assert pharmacist.get(f"{base(actors)}/documents").status_code == 200
    consented = history(pharmacist, actors)
    assert consented.status_code == 200 and "Mes actions dans cet espace" in plain(consented)
    rows = table(consented)
    assert "Vous avez consulté la liste des documents" in rows
    for other in (GP, DENTIST, "s'est connecté(e)"):
        assert other not in rows, other
    assert "Accès en urgence" not in plain(consented)  # Dr Orsini's emergency is not hers to see


def test_a_blocked_medecin_traitant_reads_only_his_own_actions(actors: Actors, demo: Services) -> None:
    patient_activity(actors)
    assert actors.professional.get(f"{base(actors)}/documents").status_code == 200
    with demo.db.unit_of_work() as db:
        ferracci = db.scalar(select(Professional.id).where(Professional.rpps == "10001234567"))
        assert ferracci
        access.block(db, patient_actor(demo), actors.patient_id, ferracci)
    assert actors.professional.get(f"{base(actors)}/documents").status_code == 403
    page = history(actors.professional, actors)
    assert page.status_code == 200
    text = plain(page)
    assert "Mes actions dans cet espace" in text and "SANTONI" not in text and "s'est connecté(e)" not in text
    rows = table(page)
    assert "Vous avez consulté la liste des documents" in rows  # before the block
    assert "Vous avez tenté une ouverture de l'espace santé — refusée" in rows  # after it


# ------------------------------------------------------------------ who may not have the page; the page is recorded


def test_patients_strangers_and_anonymous_visitors_do_not_get_the_page(actors: Actors) -> None:
    homes = {
        "patient": f"/espace/{actors.patient_id}",
        "stranger": "/espace/",
        "anonymous": "/connexion",
    }
    for who, home in homes.items():
        client: TestClient = getattr(actors, who)
        response = history(client, actors)
        assert response.status_code == 303 and response.headers["location"].startswith(home), who
        assert "SANTONI" not in response.text
    unknown = actors.professional.get("/pro/patients/inconnu/historique")
    assert unknown.status_code == 403
    assert "Cet espace n'existe pas ou n'est pas ouvert." in plain(unknown)


def test_reading_the_history_is_recorded(actors: Actors) -> None:
    assert history(actors.professional, actors).status_code == 200
    assert history(actors.unauthorised, actors).status_code == 200
    patient_view = table(actors.patient.get(f"/espace/{actors.patient_id}/historique?onglet=professionnels"))
    assert f"{GP} (professionnel de santé) a consulté l'historique" in patient_view
    assert f"{DENTIST} (professionnel de santé) a consulté l'historique" in patient_view
    assert "Vous avez consulté l'historique" in table(history(actors.unauthorised, actors))
    assert f"{DENTIST} (professionnel de santé) a consulté l'historique" in table(history(actors.professional, actors))


def test_the_space_menu_links_to_the_history(actors: Actors) -> None:
    for client in (actors.professional, actors.unauthorised):
        status = text_of(client.get(base(actors)))
        assert f'href="{base(actors)}/historique"' in status
