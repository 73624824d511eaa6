"""Importing a person's archive from another Carnet (ENR-7, item 5): ``carnet spaces import ARCHIVE.zip``.

An operator's act (``ENROLMENT_MANAGE``, as the register's import), for a person moving between operators. The
archive is checked whole before anything is written: a ZIP of ours (``carnet-export/manifest.json`` of format
``carnet-export/1``), every file the manifest lists present at the size it says and with its SHA-256 — read as a
stream, never whole — and nothing else beside them; the Bundle readable. A file that does not match is named and
nothing changes.

Then one unit of work recreates the space for the same INS (refused if this instance already has one), open at
once, and restores each part in turn (``RESTORERS``: documents and folders, profile, agenda, messages), sealed with
this instance's new key for the space; the history follows as imported entries in front of the new chain, then the
import's own line; the person is sent an activation code to reach it (``carnet.enrolment.service.moving``). The
blobs are written before the rows, as everywhere, and deleted if anything fails: the import lands whole or not at
all. Access grants and consents are not restored (decision in ``docs/decisions.md``): the professionals of one
instance are not those of another, and the person authorises again.
"""

from __future__ import annotations

import hashlib
import logging
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.orm import Session

from carnet.agenda.service import restore as agenda_restore
from carnet.bootstrap import Services
from carnet.enrolment.service.moving import invite_moved_person
from carnet.export.model import archive
from carnet.export.model.restoring import Restoring, resources_of
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.history.service import restore as history_restore
from carnet.messaging.service import restore as messaging_restore
from carnet.people.service import restore as people_restore
from carnet.profile.service import restore as profile_restore
from carnet.storage import keyring
from carnet.vault.service import restore as vault_restore

log = logging.getLogger("carnet")
CHUNK = 1 << 20
BUNDLE_LIMIT = 512 * 1024 * 1024  # the Bundle is parsed in memory: resources only, never the files
RESTORERS: tuple[tuple[str, Callable[[Session, Services, Restoring, dict[str, Any]], int]], ...] = (
    ("documents", vault_restore.restore),
    ("profil", profile_restore.restore),
    ("agenda", agenda_restore.restore),
    ("messages", messaging_restore.restore),
)


@dataclass(frozen=True)
class Imported:
    """What an import restored: the new space, how many of each, and how the person was sent their code."""

    patient_id: str
    ins: str
    counts: dict[str, int]
    code_sent_by: str


def _member(path: str) -> str:
    return f"{archive.ROOT}/{path}"


def check(zipped: zipfile.ZipFile) -> dict[str, dict[str, Any]]:
    """The manifest's files, each checked against its size and SHA-256; ``ArchiveError`` naming the first that
    is missing, of another size or content, or not listed."""
    try:
        manifest = orjson.loads(zipped.read(_member(archive.MANIFEST)))
    except KeyError as exc:
        raise archive.ArchiveError(f"Ce fichier n'est pas une archive Carnet ({archive.MANIFEST} absent).") from exc
    except orjson.JSONDecodeError as exc:
        raise archive.ArchiveError(f"Le manifeste de l'archive ({archive.MANIFEST}) est illisible.") from exc
    files = archive.check_manifest(manifest)
    present = {info.filename: info for info in zipped.infolist() if not info.is_dir()}
    for name in present:
        relative = name.removeprefix(f"{archive.ROOT}/")
        if relative != archive.MANIFEST and relative not in files:
            raise archive.ArchiveError(f"Fichier « {relative} » absent du manifeste : l'archive a été modifiée.")
    for path, facts in files.items():
        info = present.get(_member(path))
        if info is None:
            raise archive.ArchiveError(f"Fichier « {path} » absent de l'archive.")
        if info.file_size != facts.get("size"):
            raise archive.ArchiveError(f"Le fichier « {path} » n'a pas la taille que le manifeste indique.")
        digest = hashlib.sha256()
        with zipped.open(info) as stream:
            while chunk := stream.read(CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != facts["sha256"]:
            raise archive.ArchiveError(
                f"Le fichier « {path} » ne correspond pas à son empreinte : l'archive a été modifiée ou abîmée."
            )
    return files


def _bundle(zipped: zipfile.ZipFile, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
    if archive.BUNDLE not in files or int(files[archive.BUNDLE].get("size", 0)) > BUNDLE_LIMIT:
        raise archive.ArchiveError(f"L'archive ne contient pas de {archive.BUNDLE} lisible.")
    try:
        bundle = orjson.loads(zipped.read(_member(archive.BUNDLE)))
    except orjson.JSONDecodeError as exc:
        raise archive.ArchiveError(f"{archive.BUNDLE} n'est pas du JSON valide.") from exc
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle" or bundle.get("type") != "collection":
        raise archive.ArchiveError(f"{archive.BUNDLE} n'est pas un Bundle FHIR de type « collection ».")
    return bundle


def import_archive(services: Services, actor: Actor, path: Path) -> Imported:
    """Check the archive at ``path``, then recreate its space; ``ArchiveError`` or ``RestoreError`` (nothing
    changed) or ``AccessDenied``."""
    try:
        zipped = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise archive.ArchiveError("Ce fichier n'est pas une archive ZIP lisible.") from exc
    with zipped:
        files = check(zipped)
        bundle = _bundle(zipped, files)

        def read_file(relative: str) -> bytes:
            if relative not in files or relative in {archive.BUNDLE, archive.MANIFEST, archive.GUIDE}:
                raise archive.ArchiveError(f"Le fichier « {relative} » n'est pas un fichier de l'archive.")
            return zipped.read(_member(relative))

        written: list[str] = []
        try:
            with services.db.unit_of_work() as db:
                imported = _restore(db, services, actor, bundle, read_file, written)
        except BaseException:
            for key in written:
                services.blobs.delete(key)
            raise
    log.info("import d'archive : espace recréé (%d documents)", imported.counts.get("documents", 0))
    return imported


def _restore(
    db: Session,
    services: Services,
    actor: Actor,
    bundle: dict[str, Any],
    read_file: Callable[[str], bytes],
    written: list[str],
) -> Imported:
    guard(db, actor, audit.NO_PATIENT_CHAIN, Action.ENROLMENT_MANAGE, Resource("space_import"))
    patient = people_restore.recreate(db, bundle)
    restoring = Restoring(patient.id, keyring.data_key(db, services.keyring, patient.id), read_file, written=written)
    old = resources_of(bundle, "Patient")[0].get("id")
    restoring.ids[f"Patient/{old}"] = patient.id
    counts = {name: restorer(db, services, restoring, bundle) for name, restorer in RESTORERS}
    counts["historique"] = history_restore.restore(db, restoring, bundle)
    details = {"documents": counts["documents"]}
    audit.record(db, actor, "space.import", patient_id=patient.id, resource_type="space", details=details)
    audit.record(db, actor, "space.import", resource_type="space", resource_id=patient.id, details=details)
    channel = invite_moved_person(db, services, actor, patient)
    return Imported(patient.id, patient.ins, counts, channel)
