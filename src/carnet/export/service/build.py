"""Preparing an archive (ENR-7): the worker's job, one export at a time, written as a stream.

The job rebuilds the asker as an actor (their account, their own space) and asks each capability's ``export``
module for what that actor may read — the policy decides there, as on every page, so a representative's archive
leaves out INVISIBLE_REPRESENTANTS_LEGAUX and nobody's holds documents still hidden from the patient. Files go into
the ZIP as they come (stored, not recompressed), their SHA-256 into the manifest; the resources are kept as compact
JSON (the files never are) and written last as one ``Bundle``, then the reading guide and the manifest. The ZIP is
sealed chunk by chunk with the patient's key into ``<data>/exports/`` (``storage.sealed_stream``): no clear copy ever
touches the disk. Memory stays bounded by the resources' JSON, not by the files.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Iterator
from datetime import timedelta
from types import ModuleType

import orjson
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.export.model import archive, guide
from carnet.export.model.exported import Exported
from carnet.export.service import requests
from carnet.export.tables import Export
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import PARIS
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.tables import Account, Patient
from carnet.storage import keyring
from carnet.storage.sealed_stream import SealedFileWriter
from carnet.storage.types import utcnow

log = logging.getLogger("carnet")
READY_SUBJECT = "Votre archive Carnet est prête"
READY_TEXT = (
    "Bonjour,\n\nL'archive de toutes les données de l'espace santé que vous avez demandée est prête.\n\n"
    "Connectez-vous sur {url}, puis ouvrez Paramètres › Télécharger toutes mes données pour la télécharger. "
    "Elle sera supprimée le {until}.\n\nPour votre sécurité, cet e-mail ne contient aucune information médicale.\n\n"
    "Carnet — ne répondez pas à ce message."
)


def sources() -> tuple[ModuleType, ...]:
    """Each capability's contribution, in the order of the reading guide."""
    from carnet.access.service import export as access_export
    from carnet.agenda.service import export as agenda_export
    from carnet.history.service import export as history_export
    from carnet.messaging.service import export as messaging_export
    from carnet.people.service import export as people_export
    from carnet.profile.service import export as profile_export
    from carnet.vault.service import export as vault_export

    return (people_export, vault_export, profile_export, agenda_export, messaging_export, access_export, history_export)


def _items(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    for source in sources():
        yield from source.export_resources(services, actor, patient_id)


def run(services: Services) -> int:
    """The job: prepare the archives asked for (oldest first); how many became ready."""
    ready = 0
    while True:
        with services.db.unit_of_work() as db:
            row = db.scalars(
                select(Export).where(Export.status == "demandee").order_by(Export.requested_at).limit(1)
            ).first()
            if row is None:
                return ready
            row.status, row.started_at = "en_cours", utcnow()
            export_id = row.id
        try:
            build(services, export_id)
            ready += 1
        except Exception as exc:  # the person is not left waiting: the page says it failed and offers to ask again
            log.error("export : archive non préparée (%s)", type(exc).__name__)
            requests.sealed_path(services, export_id).unlink(missing_ok=True)
            with services.db.unit_of_work() as db:
                failed = db.get(Export, export_id)
                if failed is not None:
                    failed.status, failed.error = "echec", type(exc).__name__[:250]


def build(services: Services, export_id: str) -> None:
    with services.db.unit_of_work() as db:
        row = db.get(Export, export_id)
        assert row is not None
        patient = db.get(Patient, row.patient_id)
        assert patient is not None
        key = keyring.data_key(db, services.keyring, row.patient_id)
        actor = Actor(
            ActorKind.PATIENT, row.requester_account_id, row.requester_label, patient_id=row.requester_patient_id
        )
        patient_id, ins, name = row.patient_id, patient.ins, f"{patient.first_names} {patient.birth_name}"
    now = utcnow()
    generated = now.astimezone(PARIS).strftime("le %d/%m/%Y à %H:%M")
    manifest = archive.Manifest(now.isoformat(), ins, name, actor.label)
    reading = guide.Guide(name, generated, actor.label)
    entries: list[bytes] = []
    writer = SealedFileWriter(requests.sealed_path(services, export_id), key, requests.purpose(export_id))
    try:
        with zipfile.ZipFile(writer, "w", compression=zipfile.ZIP_STORED) as zipped:
            for item in _items(services, actor, patient_id):
                links = []
                for file in item.files:
                    body = file.read()
                    zipped.writestr(f"{archive.ROOT}/{file.path}", body)
                    manifest.add(file.path, hashlib.sha256(body).hexdigest(), len(body), file.content_type)
                    links.append((file.path, file.title or file.path.rsplit("/", 1)[-1]))
                resource = item.resource
                kind = str(resource.get("resourceType", ""))
                entries.append(orjson.dumps({"fullUrl": f"{kind}/{resource.get('id', '')}", "resource": resource}))
                manifest.counts[kind] = manifest.counts.get(kind, 0) + 1
                section = item.section or "Historique"
                reading.count(section)
                if item.summary or links:
                    reading.add(section, item.summary or kind, tuple(links))
            bundle = (
                b'{"resourceType":"Bundle","type":"collection","timestamp":'
                + orjson.dumps(now.isoformat())
                + b',"entry":['
                + b",".join(entries)
                + b"]}"
            )
            _write(zipped, manifest, archive.BUNDLE, bundle, "application/fhir+json", zipfile.ZIP_DEFLATED)
            page = guide.render(reading).encode("utf-8")
            _write(zipped, manifest, archive.GUIDE, page, "text/html", zipfile.ZIP_DEFLATED)
            zipped.writestr(
                f"{archive.ROOT}/{archive.MANIFEST}",
                orjson.dumps(manifest.as_json(), option=orjson.OPT_INDENT_2),
                compress_type=zipfile.ZIP_DEFLATED,
            )
        writer.close()
    except BaseException:
        writer.abort()
        raise
    until = now + timedelta(days=archive.VALID_DAYS)
    with services.db.unit_of_work() as db:
        row = db.get(Export, export_id)
        assert row is not None
        row.status, row.ready_at, row.expires_at = "prete", now, until
        row.size, row.files, row.resources = writer.tell(), len(manifest.files), len(entries)
        requests.note_step(db, Actor.system(), patient_id, export_id, "prete", "a préparé l'archive de l'espace")
        account = db.get(Account, row.requester_account_id)
        if account is not None and account.email:
            text = READY_TEXT.format(url=services.settings.base_url, until=until.astimezone(PARIS).strftime("%d/%m/%Y"))
            send_or_queue(db, services.keys, services.mailer, Mail(account.email, READY_SUBJECT, text))


def _write(
    zipped: zipfile.ZipFile, manifest: archive.Manifest, name: str, body: bytes, content_type: str, compression: int
) -> None:
    zipped.writestr(f"{archive.ROOT}/{name}", body, compress_type=compression)
    manifest.add(name, hashlib.sha256(body).hexdigest(), len(body), content_type)
