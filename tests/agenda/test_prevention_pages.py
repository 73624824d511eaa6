"""« Examens recommandés » in the portal (AGD-2): the person's page (grouped items, French statuses as badges, due
dates, catch-up, the calendar and its sources), « Fait le … » / « Pas fait » / « Effacer ma réponse », French
errors, a vaccination of the profile changing a status, the legal representative in a child's space, the
professional's read-only view, the refusals — through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.agenda.tables import PreventionAnswers
from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PARIS
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from tests.conftest import csrf_of, log_in
from tests.support.actors import Actors

MOTHER = "laetitia.casanova"  # Lisandru's legal representative


def seen(response: Any) -> str:
    page = re.sub(r"<script[^>]*>.*?</script>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def page_of(patient_id: str) -> str:
    return f"/espace/{patient_id}/prevention"


def card(response: Any, code: str) -> str:
    """The words of one item's card on the page."""
    match = re.search(rf'<li class="fr-card carnet-doc" id="{re.escape(code)}">(.*?)</li>', response.text, re.S)
    assert match, f"{code} absent de la page"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


def answer(client: TestClient, patient_id: str, code: str, reponse: str, day: str = "", csrf: str | None = None) -> Any:
    token = csrf if csrf is not None else csrf_of(client.get(page_of(patient_id)).text)
    data = {"reponse": reponse, "date": day, "csrf_token": token}
    return client.post(f"{page_of(patient_id)}/{code}", data=data)


def today() -> date:
    return utcnow().astimezone(PARIS).date()


def history(services: Services, patient_id: str, action: str) -> list[AuditEntry]:
    with services.db.unit_of_work() as db:
        query = select(AuditEntry).where(AuditEntry.patient_id == patient_id, AuditEntry.action == action)
        return list(db.scalars(query.order_by(AuditEntry.seq)))


# ------------------------------------------------------------------ the person


def test_the_person_sees_every_item_grouped_with_status_due_date_and_sources(actors: Actors, demo: Services) -> None:
    response = actors.patient.get(page_of(actors.patient_id))
    assert response.status_code == 200
    text = seen(response)
    assert "Examens recommandés" in text
    assert "Vaccinations (2)" in text and "Dépistages organisés des cancers (1)" in text  # Marie-Ange, 41
    ror = card(response, "VAC-ROR-1")
    assert "Rougeole, oreillons, rubéole (ROR) — 1re dose" in ror
    assert "en retard" in ror and "Prévu depuis le 14/03/1986" in ror
    assert "Rattrapage prévu par le calendrier" in ror
    assert '<span class="fr-badge fr-badge--error">en retard</span>' in response.text
    hpv = card(response, "DEP-COL-UTERUS-HPV")
    assert "non renseigné" in hpv and "indiquez quand il a été fait" in hpv
    assert '<span class="fr-badge fr-badge--info">non renseigné</span>' in response.text
    assert "version 2025, en vigueur depuis le 01/01/2025" in text
    assert "Calendrier des vaccinations et recommandations vaccinales 2025" in text  # the sources cited
    assert "Institut national du cancer (INCa)" in text
    assert "Indiquer ce qui a été fait" in text  # she answers
    assert len(history(demo, actors.patient_id, "prevention.read")) == 1
    actors.patient.get(page_of(actors.patient_id))  # seen again today: one line (issue #15-10)
    assert len(history(demo, actors.patient_id, "prevention.read")) == 1


def test_done_not_done_and_cleared_change_the_status(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    two_years_ago = (today() - timedelta(days=730)).isoformat()
    done = answer(actors.patient, pid, "DEP-COL-UTERUS-HPV", "fait", two_years_ago)
    assert done.status_code == 303
    assert done.headers["location"] == f"{page_of(pid)}?message=fait#DEP-COL-UTERUS-HPV"
    response = actors.patient.get(done.headers["location"])
    hpv = card(response, "DEP-COL-UTERUS-HPV")
    day = date.fromisoformat(two_years_ago)
    assert "réalisé" in hpv and f"Fait le {day:%d/%m/%Y} — d'après votre réponse" in hpv
    assert "Prochaine échéance" in hpv  # five years after the test
    assert "C'est noté" in seen(response)

    declined = answer(actors.patient, pid, "VAC-ROR-1", "non_fait")
    assert declined.status_code == 303
    response = actors.patient.get(page_of(pid))
    ror = card(response, "VAC-ROR-1")
    assert "non réalisé" in ror and f"Vous avez indiqué le {today():%d/%m/%Y}" in ror
    assert "non réalisé" in card(response, "VAC-ROR-2")  # no 2nd dose without a 1st
    assert "Effacer ma réponse" in ror

    cleared = answer(actors.patient, pid, "VAC-ROR-1", "effacer")
    assert cleared.status_code == 303
    assert "en retard" in card(actors.patient.get(page_of(pid)), "VAC-ROR-1")
    writes = history(demo, pid, "prevention.write")
    assert [(w.details["op"], w.details["code"]) for w in writes] == [
        ("fait", "DEP-COL-UTERUS-HPV"),
        ("non_fait", "VAC-ROR-1"),
        ("effacer", "VAC-ROR-1"),
    ]
    assert {w.actor_kind for w in writes} == {"patient"}
    with demo.db.unit_of_work() as db:  # sealed: neither codes nor dates in clear
        row = db.get(PreventionAnswers, pid)
        assert row is not None and b"DEP-COL" not in row.sealed and two_years_ago.encode() not in row.sealed


def test_bad_dates_are_refused_in_french_next_to_the_item(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    cases = {
        "31/02/2020": "La date n'est pas valide : saisissez-la sous la forme JJ/MM/AAAA.",
        "hier": "La date n'est pas valide : saisissez-la sous la forme JJ/MM/AAAA.",
        "": "Indiquez la date à laquelle cela a été fait.",
        (today() + timedelta(days=1)).isoformat(): "La date ne peut pas être dans le futur.",
        "1980-01-01": "La date ne peut pas précéder la naissance.",
    }
    for typed, message in cases.items():
        response = answer(actors.patient, pid, "DEP-COL-UTERUS-HPV", "fait", typed)
        assert response.status_code == 400, typed
        text = seen(response)
        assert "La réponse n'a pas été enregistrée" in text and message in text, typed
        assert 'id="date-DEP-COL-UTERUS-HPV-erreur"' in response.text and 'aria-invalid="true"' in response.text
    assert answer(actors.patient, pid, "DEP-COL-UTERUS-HPV", "fait", "14/03/2024").status_code == 303  # JJ/MM/AAAA
    assert answer(actors.patient, pid, "DEP-COL-UTERUS-HPV", "peut-etre").status_code == 400
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, pid) is not None
    assert len(history(demo, pid, "prevention.write")) == 1


def test_unknown_items_and_items_of_someone_else_are_404(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    for code in ("INCONNU", "VAC-ZONA-1", "DEP-SEIN", "x" * 300):  # unknown; 65+; 50–74: not hers today
        response = answer(actors.patient, pid, code, "fait", "2024-01-01")
        assert response.status_code == 404, code
        assert "Élément introuvable." in seen(response)
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, pid) is None


def test_a_post_without_the_form_token_is_refused(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    for token in ("", "faux"):
        response = answer(actors.patient, pid, "VAC-ROR-1", "non_fait", csrf=token)
        assert response.status_code == 403 and "Le formulaire a expiré" in seen(response)
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, pid) is None


def test_a_vaccination_of_the_profile_changes_the_status(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    profile = f"/espace/{pid}/profil/vaccinations"
    token = csrf_of(actors.patient.get(profile).text)
    added = actors.patient.post(profile, data={"label": "Priorix (ROR)", "date": "1986-04-02", "csrf_token": token})
    assert added.status_code == 303
    response = actors.patient.get(page_of(pid))
    ror = card(response, "VAC-ROR-1")
    assert "réalisé" in ror and "Fait le 02/04/1986 — d'après votre profil médical" in ror
    assert "en retard" in card(response, "VAC-ROR-2")  # one dose recorded: the second is still to catch up
    assert "(1 vaccination lue)" in seen(response)


# ------------------------------------------------------------------ a legal representative, in a child's space


def test_the_legal_representative_sees_and_answers_in_the_childs_space(
    demo: Services, new_client: Any, actors: Actors
) -> None:
    mother = new_client()
    log_in(mother, demo, MOTHER)
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    assert child
    response = mother.get(page_of(child))
    assert response.status_code == 200
    assert "Examens de l'enfant" in seen(response) and "Bilans bucco-dentaires (M'T dents)" in seen(response)
    assert "en retard" in card(response, "VAC-DTCAP-6")
    done = answer(mother, child, "VAC-DTCAP-6", "fait", "2023-06-01")
    assert done.status_code == 303
    assert "Fait le 01/06/2023 — d'après votre réponse" in card(mother.get(page_of(child)), "VAC-DTCAP-6")
    [write] = history(demo, child, "prevention.write")
    assert write.actor_kind == "representative"
    # the mother in someone else's space, and Marie-Ange in the child's: refused
    assert mother.get(page_of(actors.patient_id)).status_code == 403
    assert actors.patient.get(page_of(child)).status_code == 403


# ------------------------------------------------------------------ professionals, strangers


def test_the_authorised_professional_reads_without_a_form(actors: Actors, demo: Services) -> None:
    answer(actors.patient, actors.patient_id, "VAC-ROR-1", "non_fait")
    response = actors.professional.get(f"/pro/patients/{actors.patient_id}/prevention")
    assert response.status_code == 200
    text = seen(response)
    assert "Examens recommandés de Marie-Ange SANTONI" in text
    assert "non réalisé" in card(response, "VAC-ROR-1") and "non renseigné" in card(response, "DEP-COL-UTERUS-HPV")
    assert "<form" not in response.text.split("<main")[1].split("</main>")[0].split("Se déconnecter")[-1]
    assert "Indiquer ce qui a été fait" not in text
    reads = history(demo, actors.patient_id, "prevention.read")
    assert [r.actor_kind for r in reads][-1] == "professional"
    # the patient portal's address sends a professional to the professional view; answering is refused
    assert actors.professional.get(page_of(actors.patient_id)).status_code == 303
    token = csrf_of(actors.professional.get("/pro").text)
    refused = answer(actors.professional, actors.patient_id, "VAC-ROR-1", "fait", "2020-01-01", csrf=token)
    assert refused.status_code == 403
    assert "en retard" not in card(actors.patient.get(page_of(actors.patient_id)), "VAC-ROR-1")  # still declined


def test_a_professional_without_authorisation_and_a_stranger_are_refused(actors: Actors, demo: Services) -> None:
    pid = actors.patient_id
    response = actors.unauthorised.get(f"/pro/patients/{pid}/prevention")
    assert response.status_code == 403
    text = seen(response)
    assert "La personne ne vous a pas autorisé" in text and "SANTONI" not in text and "Rougeole" not in text
    stranger = actors.stranger.get(page_of(pid))
    assert stranger.status_code == 403 and "Rougeole" not in seen(stranger) and "SANTONI" not in seen(stranger)
    for client, home in ((actors.stranger, "/espace"), (actors.unauthorised, "/pro")):
        token = csrf_of(client.get(home, follow_redirects=True).text)
        posted = answer(client, pid, "VAC-ROR-1", "fait", "2020-01-01", csrf=token)
        assert posted.status_code == 403
    with demo.db.unit_of_work() as db:
        assert db.get(PreventionAnswers, pid) is None
    refusals = [e for e in history(demo, pid, "prevention.read") if e.outcome == "deny"]
    assert refusals  # the stranger's attempt is in the history
    anonymous = actors.anonymous.get(page_of(pid))
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/connexion")
