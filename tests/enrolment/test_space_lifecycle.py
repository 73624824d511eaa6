"""ENR-6: close (archive), reopen, delete at once (keys destroyed), purge after 10 years — every step audited
and confirmed by e-mail; only the person can do it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.enrolment.service import lifecycle
from carnet.hall import audit
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Account, Patient
from carnet.storage.tables import PatientKey
from carnet.storage.types import utcnow
from carnet.vault.tables import Document
from tests.conftest import csrf_of, log_in, outbox_messages, text_of
from tests.support.actors import Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

PASSWORD = "Carnet-Demo-2026!"
EMAIL = "marie-ange.santoni@exemple.fr"


def post(client: object, url: str, **data: str) -> object:
    page = client.get("/espace", follow_redirects=True)  # type: ignore[attr-defined]
    return client.post(url, data={**data, "csrf_token": csrf_of(page.text)})  # type: ignore[attr-defined]


def subjects(services: Services) -> list[str]:
    return [m["Subject"] for m in outbox_messages(services) if m["To"] == EMAIL]  # type: ignore[index]


def test_the_patient_closes_then_reopens_their_space(actors: Actors, demo: Services, new_client: object) -> None:
    base = f"/espace/{actors.patient_id}"
    wrong = post(actors.patient, f"{base}/parametres/fermer", mot_de_passe="faux")
    assert wrong.status_code == 400 and "Mot de passe incorrect." in text_of(wrong)  # type: ignore[attr-defined]
    done = post(actors.patient, f"{base}/parametres/fermer", mot_de_passe=PASSWORD)
    assert done.headers["location"] == "/connexion?ferme=1"  # type: ignore[attr-defined]
    assert "Votre espace santé Carnet est fermé" in subjects(demo)
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, actors.patient_id).status == "closed"  # type: ignore[union-attr]
    assert actors.patient.get(base).headers["location"] == "/connexion"  # sessions ended
    again = new_client()  # type: ignore[operator]
    log_in(again, demo, "marie-ange.santoni")
    page = again.get(base)
    assert "Votre espace santé est fermé" in text_of(page) and "Rouvrir mon espace" in text_of(page)
    assert again.get(f"{base}/historique").status_code == 403  # archived: nobody reads it, the owner included
    reopened = again.post(f"{base}/rouvrir", data={"csrf_token": csrf_of(page.text)})
    assert reopened.status_code == 303
    assert "Bonjour Marie-Ange" in text_of(again.get(base))
    assert "Votre espace santé Carnet est rouvert" in subjects(demo)
    history = text_of(again.get(f"{base}/historique"))
    assert "avez fermé l'espace santé" in history and "avez rouvert l'espace santé" in history


def test_nobody_else_can_close_or_delete_a_space(actors: Actors, demo: Services) -> None:
    base = f"/espace/{actors.patient_id}"
    for who in (actors.professional, actors.stranger):
        assert post(who, f"{base}/parametres/fermer", mot_de_passe=PASSWORD).status_code == 403  # type: ignore[attr-defined]
        assert (
            post(who, f"{base}/parametres/supprimer", mot_de_passe=PASSWORD, confirmation="SUPPRIMER").status_code
            == 403
        )  # type: ignore[attr-defined]
        page = who.get(f"{base}/parametres/fermeture")
        assert page.status_code == 403 or page.headers["location"] == f"/pro/patients/{actors.patient_id}/documents"
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, actors.patient_id).status == "active"  # type: ignore[union-attr]
        refused = db.scalars(
            select(AuditEntry.action).where(AuditEntry.outcome == "deny", AuditEntry.patient_id == actors.patient_id)
        ).all()
    assert {"space.close", "space.delete"} <= set(refused)  # the hall decided, and the attempts are in the history


def test_the_owner_sees_the_closing_page_and_a_wrong_password_is_counted(actors: Actors, demo: Services) -> None:
    base = f"/espace/{actors.patient_id}"
    page = actors.patient.get(f"{base}/parametres/fermeture")
    assert page.status_code == 200 and "Supprimer définitivement" in text_of(page)
    wrong = post(actors.patient, f"{base}/parametres/supprimer", mot_de_passe="faux", confirmation="SUPPRIMER")
    assert wrong.status_code == 400 and "Mot de passe incorrect." in text_of(wrong)  # type: ignore[attr-defined]
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, actors.patient_id).status == "active"  # type: ignore[union-attr]
        failed = db.scalar(select(AuditEntry).where(AuditEntry.action == "auth.login_failed"))
    assert failed is not None  # the failure was kept, though nothing else was done


def test_a_closed_space_is_not_fed(actors: Actors, feeders: Feeders) -> None:
    post(actors.patient, f"/espace/{actors.patient_id}/parametres/fermer", mot_de_passe=PASSWORD)
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Après fermeture")))
    response = feeders.client.post("/fhir", json=bundle, headers=feeders.lab)
    assert response.status_code == 404 and response.json()["resourceType"] == "OperationOutcome"


def test_deleting_destroys_keys_documents_and_account_at_once(actors: Actors, feeders: Feeders, demo: Services) -> None:
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Document à détruire")))
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200
    blobs = demo.settings.resolved_data_dir / "blobs"
    assert [p for p in blobs.rglob("*") if p.is_file()]
    refused = post(
        actors.patient, f"/espace/{actors.patient_id}/parametres/supprimer", mot_de_passe=PASSWORD, confirmation="oui"
    )
    assert refused.status_code == 400 and "SUPPRIMER" in text_of(refused)  # type: ignore[attr-defined]
    done = post(
        actors.patient,
        f"/espace/{actors.patient_id}/parametres/supprimer",
        mot_de_passe=PASSWORD,
        confirmation="SUPPRIMER",
    )
    assert done.headers["location"] == "/connexion?supprime=1"  # type: ignore[attr-defined]
    assert not [p for p in blobs.rglob("*") if p.is_file()]
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, actors.patient_id).status == "deleted"  # type: ignore[union-attr]
        assert db.scalar(select(Account).where(Account.patient_id == actors.patient_id)) is None
        assert db.scalar(select(Document).where(Document.patient_id == actors.patient_id)) is None
        assert db.get(PatientKey, actors.patient_id).wrapped_key is None  # type: ignore[union-attr]
        _, breaks = audit.verify(db)
    assert breaks == []
    assert "Votre espace santé Carnet est supprimé" in subjects(demo)


def test_archives_are_purged_after_ten_years(actors: Actors, demo: Services) -> None:
    post(actors.patient, f"/espace/{actors.patient_id}/parametres/fermer", mot_de_passe=PASSWORD)
    assert lifecycle.purge_archives(demo, now=utcnow() + timedelta(days=365 * 9)) == 0
    with demo.db.unit_of_work() as db:
        db.execute(
            update(Patient).where(Patient.id == actors.patient_id).values(closed_at=utcnow() - timedelta(days=3651))
        )
    assert lifecycle.purge_archives(demo) == 1
    with demo.db.unit_of_work() as db:
        assert db.get(Patient, actors.patient_id).status == "deleted"  # type: ignore[union-attr]
