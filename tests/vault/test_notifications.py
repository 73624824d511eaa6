"""TRC-3 and VLT-6: the patient is told of deposits without health data; INVISIBLE_PATIENT documents are
announced after two weeks and revealed after a month (jobs with injectable time)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.people.service import preferences
from carnet.storage.types import utcnow
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR
from carnet.vault.service import documents as vault
from carnet.vault.service import notifications
from carnet.vault.tables import Document, DocumentTimer
from tests.conftest import csrf_of, outbox_messages
from tests.support.actors import Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

EMAIL = "marie-ange.santoni@exemple.fr"


def mails_to_patient(services: Services) -> list[object]:
    return [m for m in outbox_messages(services) if m["To"] == EMAIL]  # type: ignore[index]


def deposit(f: Feeders, *docs: list[dict[str, object]]) -> None:
    response = f.client.post("/fhir", json=provide_bundle(*docs), headers=f.lab)
    assert response.status_code == 200, response.text


def test_one_mail_without_health_data_for_new_documents(feeders: Feeders, demo: Services) -> None:
    deposit(
        feeders,
        document_entry(feeders.ins, make_pdf("Sérologie VIH"), title="Sérologie VIH"),
        document_entry(feeders.ins, make_pdf("Hémogramme"), title="Hémogramme"),
    )
    before = len(mails_to_patient(demo))
    assert notifications.send_pending(demo) == 1
    mails = mails_to_patient(demo)
    assert len(mails) == before + 1
    body = mails[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert "2 nouveaux documents ont été déposés" in body
    for secret in ("VIH", "Sérologie", "Hémogramme", "Laboratoire", "biologie"):
        assert secret not in body and secret not in mails[-1]["Subject"]  # type: ignore[index]
    assert notifications.send_pending(demo) == 0  # nothing twice


def test_no_mail_when_the_patient_turned_document_notices_off(feeders: Feeders, demo: Services) -> None:
    me = Actor(ActorKind.PATIENT, "a", "Marie-Ange", patient_id=feeders.patient_id)
    with demo.db.unit_of_work() as db:
        preferences.update(db, me, feeders.patient_id, notify_documents=False)
    deposit(feeders, document_entry(feeders.ins, make_pdf("x")))
    before = len(mails_to_patient(demo))
    assert notifications.send_pending(demo) == 0
    assert len(mails_to_patient(demo)) == before
    with demo.db.unit_of_work() as db:
        assert all(d.notified_at for d in db.scalars(select(Document)))


def test_invisible_patient_documents_are_announced_after_two_weeks_and_revealed_after_a_month(
    feeders: Feeders, demo: Services
) -> None:
    label = [(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_PATIENT")]
    deposit(feeders, document_entry(feeders.ins, make_pdf("Annonce"), title="Annonce", labels=label))
    me = Actor(ActorKind.PATIENT, "a", "Marie-Ange", patient_id=feeders.patient_id)
    before = len(mails_to_patient(demo))
    assert notifications.send_pending(demo) == 0
    assert notifications.send_pending(demo, now=utcnow() + timedelta(days=13)) == 0
    assert notifications.send_pending(demo, now=utcnow() + timedelta(days=15)) == 1
    assert mails_to_patient(demo)[-1]["Subject"] == "Votre espace santé a été mis à jour"  # type: ignore[index]
    assert len(mails_to_patient(demo)) == before + 1
    with demo.db.unit_of_work() as db:
        assert vault.search(demo, db, me, feeders.patient_id, vault.SearchFilters()).total == 0
        assert vault.reveal_due(db, now=utcnow() + timedelta(days=29)) == 0
        assert vault.reveal_due(db, now=utcnow() + timedelta(days=31)) == 1
    with demo.db.unit_of_work() as db:
        page = vault.search(demo, db, me, feeders.patient_id, vault.SearchFilters())
        assert [d.title for d in page.documents] == ["Annonce"]


INVISIBLE = [(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_PATIENT")]


def timers(services: Services) -> dict[str, int]:
    with services.db.unit_of_work() as db:
        return dict(db.execute(select(DocumentTimer.kind, func.count()).group_by(DocumentTimer.kind)).all())


def test_documents_kept_for_a_consultation_never_hold_back_the_others(feeders: Feeders, demo: Services) -> None:
    """#18: more documents kept for a consultation (told only at two weeks) than the job takes in one run do not stop
    the patient from being told of a document deposited after them — the job reads only what is due."""
    for n in range(3):
        deposit(feeders, document_entry(feeders.ins, make_pdf(f"Annonce {n}"), title=f"Annonce {n}", labels=INVISIBLE))
    deposit(feeders, document_entry(feeders.ins, make_pdf("Hémogramme"), title="Hémogramme"))
    assert timers(demo) == {"tell": 4, "reveal": 3}
    before = len(mails_to_patient(demo))
    assert notifications.send_pending(demo, limit=2) == 1
    body = mails_to_patient(demo)[-1].get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
    assert len(mails_to_patient(demo)) == before + 1 and "Un nouveau document a été déposé" in body
    assert timers(demo) == {"tell": 3, "reveal": 3}  # the one told is out of the queue; the others wait their turn
    assert notifications.send_pending(demo, now=utcnow() + timedelta(days=15), limit=2) == 1  # two of the three…
    assert notifications.send_pending(demo, now=utcnow() + timedelta(days=15), limit=2) == 1  # …then the third
    assert timers(demo) == {"reveal": 3}
    with demo.db.unit_of_work() as db:
        assert vault.reveal_due(db, now=utcnow() + timedelta(days=31), limit=2) == 2
        assert vault.reveal_due(db, now=utcnow() + timedelta(days=31), limit=2) == 1
    assert timers(demo) == {}


def test_a_document_no_longer_kept_for_a_consultation_is_told_at_the_next_run(feeders: Feeders, demo: Services) -> None:
    """VLT-6: its author takes INVISIBLE_PATIENT off (FHIR PATCH) within the two weeks: the patient is told at once,
    and it is not « revealed » later."""
    deposit(feeders, document_entry(feeders.ins, make_pdf("Annonce"), title="Annonce", labels=INVISIBLE))
    assert notifications.send_pending(demo) == 0
    document_id = feeders.client.get(
        "/fhir/DocumentReference",
        params={"patient.identifier": f"urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}"},
        headers=feeders.lab,
    ).json()["entry"][0]["resource"]["id"]
    patch = [{"op": "replace", "path": "/securityLabel", "value": []}]
    done = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}",
        json=patch,
        headers={**feeders.lab, "Content-Type": "application/json-patch+json"},
    )
    assert done.status_code == 200, done.text
    assert timers(demo) == {"tell": 1}
    assert notifications.send_pending(demo) == 1
    assert mails_to_patient(demo)[-1]["Subject"] == "Nouveau document dans votre espace santé"  # type: ignore[index]
    assert timers(demo) == {}


def test_the_patient_chooses_notifications_in_parametres_and_others_cannot(actors: Actors, demo: Services) -> None:
    url = f"/espace/{actors.patient_id}/parametres"
    page = actors.patient.get(url)
    assert page.status_code == 200 and "Dépistages organisés" in page.text
    response = actors.patient.post(
        f"{url}/notifications", data={"notify_messages": "oui", "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303
    with demo.db.unit_of_work() as db:
        prefs = preferences.settings_of(db, actors.patient_id)
        assert (prefs.notify_documents, prefs.notify_messages) == (False, True)
    for other in (actors.professional, actors.stranger):
        token = csrf_of(other.get("/", follow_redirects=True).text)
        refused = other.post(f"{url}/notifications", data={"notify_documents": "oui", "csrf_token": token})
        assert refused.status_code == 403
    with demo.db.unit_of_work() as db:
        assert preferences.settings_of(db, actors.patient_id).notify_documents is False
