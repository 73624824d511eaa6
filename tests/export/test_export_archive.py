"""The archive of a whole space (ENR-7): asked once, prepared by the job as a sealed stream, announced by an e-mail
without health content, downloaded only with the second factor asked afresh, byte-exact files whose hashes the
manifest gives, a FHIR Bundle and a French guide — then expired; the three actors on the pages."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from datetime import timedelta

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.export.service import build, requests
from carnet.export.tables import Export
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Account, Patient
from carnet.storage.types import utcnow
from tests.conftest import csrf_of, last_code_for, outbox_messages
from tests.support.actors import PATIENT, Actors

pytestmark = pytest.mark.usefixtures("demo")


def person(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def unzip(services: Services, actor: Actor, space: str, export_id: str) -> zipfile.ZipFile:
    requests.send_code(services, actor, space)
    code = last_code_for(services, f"{PATIENT}@exemple.fr")
    archive = requests.download(services, actor, space, export_id, code)
    return zipfile.ZipFile(io.BytesIO(b"".join(archive.chunks)))


def test_the_archive_is_asked_once_prepared_announced_and_downloaded_with_a_fresh_code(demo: Services) -> None:
    marie = person(demo, PATIENT)
    space = marie.patient_id
    assert space
    first, new = requests.request(demo, marie, space)
    again, new_again = requests.request(demo, marie, space)
    assert new and not new_again and again.id == first.id  # one at a time
    before = len(outbox_messages(demo))
    assert build.run(demo) == 1
    ready = requests.page(demo, marie, space).latest
    assert ready is not None and ready.ready and ready.expires_at is not None
    assert ready.expires_at - ready.ready_at == timedelta(days=7)  # type: ignore[operator]
    mails = outbox_messages(demo)[: len(outbox_messages(demo)) - before]
    assert [str(m["Subject"]) for m in mails] == ["Votre archive Carnet est prête"]
    text = mails[0].get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "SANTONI" not in text and "diab" not in text.lower()
    sealed = requests.sealed_path(demo, first.id).read_bytes()
    assert b"bundle.json" not in sealed and b"LISEZMOI" not in sealed  # no clear copy on disk

    with pytest.raises(requests.DownloadRefused):
        requests.download(demo, marie, space, first.id, "000000")
    zipped = unzip(demo, marie, space, first.id)
    names = set(zipped.namelist())
    assert {"carnet-export/bundle.json", "carnet-export/manifest.json", "carnet-export/LISEZMOI.html"} <= names
    manifest = json.loads(zipped.read("carnet-export/manifest.json"))
    assert manifest["format"] == "carnet-export/1"
    for path, facts in manifest["files"].items():
        body = zipped.read(f"carnet-export/{path}")
        assert hashlib.sha256(body).hexdigest() == facts["sha256"] and len(body) == facts["size"]
    bundle = json.loads(zipped.read("carnet-export/bundle.json"))
    assert bundle["resourceType"] == "Bundle" and bundle["type"] == "collection"
    kinds = {entry["resource"]["resourceType"] for entry in bundle["entry"]}
    assert "Patient" in kinds
    guide = zipped.read("carnet-export/LISEZMOI.html").decode()
    assert '<html lang="fr">' in guide and "<script" not in guide and "Archive de l'espace santé" in guide
    with demo.db.unit_of_work() as db:
        ops = [e.details.get("op") for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "space.export"))]
    assert ops.count("demande") == 1 and ops.count("prete") == 1 and ops.count("telechargement") == 1


def test_the_archive_is_deleted_after_seven_days(demo: Services) -> None:
    marie = person(demo, PATIENT)
    assert marie.patient_id
    asked, _ = requests.request(demo, marie, marie.patient_id)
    build.run(demo)
    assert requests.expire(demo) == 0
    assert requests.expire(demo, now=utcnow() + timedelta(days=7, minutes=1)) == 1
    assert not requests.sealed_path(demo, asked.id).exists()
    latest = requests.page(demo, marie, marie.patient_id).latest
    assert latest is not None and latest.status == "expiree"
    with pytest.raises(requests.DownloadRefused):
        requests.download(demo, marie, marie.patient_id, asked.id, "000000")


def test_a_legal_representative_exports_the_minors_space_a_caregiver_and_a_professional_do_not(
    demo: Services,
) -> None:
    from carnet.family.tables import Caregiver

    mother = person(demo, "laetitia.casanova")
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    assert child
    requests.request(demo, mother, child)
    marie, caregiver = person(demo, PATIENT), person(demo, "pierre-paul.luciani")
    assert marie.patient_id
    with demo.db.unit_of_work() as db:
        db.add(Caregiver(helped_id=marie.patient_id, caregiver_id=caregiver.patient_id))
    with pytest.raises(AccessDenied):
        requests.request(demo, caregiver, marie.patient_id)
    doctor = Actor(ActorKind.PROFESSIONAL, "x", "Dr X", professional_id="p")
    with pytest.raises(AccessDenied):
        requests.request(demo, doctor, marie.patient_id)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Export.patient_id)) == child


def test_the_pages_for_the_patient_a_stranger_a_professional_and_anonymous(actors: Actors) -> None:
    page = actors.patient.get(f"/espace/{actors.patient_id}/export")
    assert page.status_code == 200 and "Préparer l'archive de toutes mes données" in page.text
    asked = actors.patient.post(f"/espace/{actors.patient_id}/export", data={"csrf_token": csrf_of(page.text)})
    assert asked.status_code == 303 and asked.headers["location"].endswith("message=demandee")
    assert "Archive en préparation" in actors.patient.get(asked.headers["location"]).text
    assert actors.stranger.get(f"/espace/{actors.patient_id}/export").status_code == 403
    sent_away = actors.professional.get(f"/espace/{actors.patient_id}/export", follow_redirects=False)
    assert sent_away.status_code == 303  # a professional is sent to the professional view, which has no export
    assert sent_away.headers["location"] == f"/pro/patients/{actors.patient_id}/documents"
    anonymous = actors.anonymous.get(f"/espace/{actors.patient_id}/export", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"] == "/connexion"
    no_csrf = actors.patient.post(f"/espace/{actors.patient_id}/export", data={})
    assert no_csrf.status_code == 403


def test_downloading_from_the_page_streams_the_zip_once_the_code_is_given(actors: Actors, demo: Services) -> None:
    page = actors.patient.get(f"/espace/{actors.patient_id}/export")
    actors.patient.post(f"/espace/{actors.patient_id}/export", data={"csrf_token": csrf_of(page.text)})
    build.run(demo)
    page = actors.patient.get(f"/espace/{actors.patient_id}/export")
    assert "Votre archive est prête" in page.text
    action = re.search(r'action="([^"]+/telecharger)"', page.text)
    assert action
    wrong = actors.patient.post(action.group(1), data={"csrf_token": csrf_of(page.text), "code": "123456"})
    assert wrong.status_code == 400 and "Code incorrect" in wrong.text
    actors.patient.post(f"/espace/{actors.patient_id}/export/code", data={"csrf_token": csrf_of(page.text)})
    code = last_code_for(demo, f"{PATIENT}@exemple.fr")
    got = actors.patient.post(action.group(1), data={"csrf_token": csrf_of(page.text), "code": code})
    assert got.status_code == 200 and got.headers["content-type"] == "application/zip"
    assert got.headers["cache-control"] == "no-store" and "attachment;" in got.headers["content-disposition"]
    assert "carnet-export/bundle.json" in zipfile.ZipFile(io.BytesIO(got.content)).namelist()
