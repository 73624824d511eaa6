"""A document of the vault as a FHIR R4 ``DocumentReference`` (IHE MHD as the ANS PDSm guide profiles it) — pure.

The FHIR API (``carnet.vault.fhir``: ITI-67 search, the read, the PATCH answer) and the export of a space
(``carnet.vault.service.export``) tell a document the same way; only where its bytes are differs: the API points
at ``<base>/fhir/Binary/<id>`` (``document_reference``), the archive at the file beside the Bundle
(``document_resource`` with a relative path). The document and its patient are read through two protocols (the
service's ``DocumentView`` and ``Subject`` have all of it), so this module needs neither storage nor service.

``folder_list`` tells a folder (VLT-1) as a ``List`` of the DocumentReferences filed in it. ``file_name`` gives
the name a file takes in an archive: the title (or an attachment's name) in ASCII letters, digits, ``.``, ``_``
and ``-`` only, with the extension of its type — safe in any ZIP reader and file system.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from carnet.vault.model import documents as rules
from carnet.vault.model.mhd_metadata import DEPOSIT_TIME, IDNPS_SYSTEM, IDNST_SYSTEM, given_back

XML_TYPES = ("text/xml", "application/xml", "application/hl7-v3+xml")
EXTENSIONS = {  # the extension a file of this type takes in an archive (the first one the vault accepts)
    **{mime: suffixes[0] for mime, suffixes in rules.UPLOAD_TYPES.items()},
    **dict.fromkeys(XML_TYPES, ".xml"),
}
NAME_MAX = 80  # characters of a file name, extension included


class DocumentFields(Protocol):
    """What a DocumentReference is built from (the service's ``DocumentView`` has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def category(self) -> str: ...
    @property
    def type_system(self) -> str: ...
    @property
    def type_code(self) -> str: ...
    @property
    def type_display(self) -> str: ...
    @property
    def class_code(self) -> str | None: ...
    @property
    def format_code(self) -> str | None: ...
    @property
    def title(self) -> str: ...
    @property
    def mime_type(self) -> str: ...
    @property
    def size(self) -> int: ...
    @property
    def confidentiality(self) -> Sequence[str]: ...
    @property
    def author_label(self) -> str: ...
    @property
    def replaces_id(self) -> str | None: ...
    @property
    def master_identifier(self) -> str | None: ...
    @property
    def service_date(self) -> datetime | None: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def document_date(self) -> datetime: ...
    @property
    def class_system(self) -> str | None: ...
    @property
    def format_system(self) -> str | None: ...
    @property
    def author_rpps(self) -> str | None: ...
    @property
    def author_finess(self) -> str | None: ...
    @property
    def version(self) -> int: ...
    @property
    def updated_at(self) -> datetime: ...


class SubjectFields(Protocol):
    """The patient as FHIR names them (the service's ``Subject``)."""

    @property
    def ins(self) -> str: ...
    @property
    def ins_oid(self) -> str: ...


def security_labels(codes: Sequence[str]) -> list[dict[str, Any]]:
    """Carnet's confidentiality codes as FHIR security labels: the French ones (MASQUE_PS, INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX) in the ANS code system, the others in HL7's v3 Confidentiality."""
    return [
        {
            "coding": [
                {
                    "system": rules.CONFIDENTIALITY_SYSTEM_FR
                    if code in rules.FRENCH_LABELS
                    else rules.CONFIDENTIALITY_SYSTEM_HL7,
                    "code": code,
                }
            ]
        }
        for code in codes
    ]


def document_reference(
    document: DocumentFields, subject: SubjectFields, base_url: str, sent: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The document as the FHIR API serves it: its bytes at ``<base_url>/fhir/Binary/<id>`` (ITI-68)."""
    return document_resource(document, subject, f"{base_url}/fhir/Binary/{document.id}", sent)


def _author(document: DocumentFields) -> dict[str, Any]:
    """Who deposited it, as Carnet knows them: the professional by IdNatPs (« 8 » + RPPS), the establishment by
    IdNatStruct (« 1 » + FINESS), with their name."""
    if document.author_rpps:
        return {
            "identifier": {"system": IDNPS_SYSTEM, "value": f"8{document.author_rpps}"},
            "display": document.author_label,
        }
    if document.author_finess:
        return {
            "identifier": {"system": IDNST_SYSTEM, "value": f"1{document.author_finess}"},
            "display": document.author_label,
        }
    return {"display": document.author_label}


def _coding(system: str | None, code: str) -> dict[str, str]:
    return {"system": system, "code": code} if system else {"code": code}


def document_resource(
    document: DocumentFields, subject: SubjectFields, url: str, sent: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The document as a DocumentReference whose attachment is at ``url`` (absolute, or relative in an archive);
    deposited over MHD (``sent``: the resource as sent), given back as sent with Carnet's elements
    (``mhd_metadata.given_back``)."""
    labels = security_labels(document.confidentiality)
    resource: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": document.id,
        "meta": {"versionId": str(document.version), "lastUpdated": document.updated_at.isoformat()},
        "extension": [{"url": DEPOSIT_TIME, "valueInstant": document.created_at.isoformat()}],
        "status": document.status,
        "type": {
            "coding": [{"system": document.type_system, "code": document.type_code, "display": document.type_display}]
        },
        "category": [
            {
                "coding": [
                    _coding(document.class_system, document.class_code)
                    if document.class_code
                    else {"code": document.category}
                ]
            }
        ],
        "subject": {"identifier": {"system": f"urn:oid:{subject.ins_oid}", "value": subject.ins}},
        "date": document.document_date.isoformat(),
        "author": [_author(document)],
        "description": document.title,
        "content": [
            {
                "attachment": {
                    "contentType": document.mime_type,
                    "url": url,
                    "size": document.size,
                    "title": document.title,
                },
                **({"format": _coding(document.format_system, document.format_code)} if document.format_code else {}),
            }
        ],
    }
    if document.master_identifier:
        resource["masterIdentifier"] = {"value": document.master_identifier}
    if labels:
        resource["securityLabel"] = labels
    if document.replaces_id:
        resource["relatesTo"] = [
            {"code": "replaces", "target": {"reference": f"DocumentReference/{document.replaces_id}"}}
        ]
    if document.service_date:
        resource["context"] = {"period": {"start": document.service_date.isoformat()}}
    return given_back(resource, sent) if sent else resource


def safe_name(name: str, fallback: str = "document") -> str:
    """``name`` in ASCII letters, digits, ``.``, ``_`` and ``-`` (accents dropped, anything else a ``-``)."""
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    cleaned = re.sub(r"-{2,}", "-", re.sub(r"[^A-Za-z0-9._-]+", "-", ascii_only)).strip("-._")
    return cleaned[:NAME_MAX].strip("-._") or fallback


def file_name(name: str, mime_type: str, fallback: str = "document") -> str:
    """The safe name of a file of type ``mime_type`` (its title, or the name it was sent under), ending with the
    type's extension: one it already has is kept (``bilan.jpeg``), else the type's is added (``bilan.pdf``)."""
    extension = EXTENSIONS.get(mime_type.lower(), ".bin")
    accepted = {extension, *rules.UPLOAD_TYPES.get(mime_type.lower(), ())}
    stem = safe_name(name, fallback)
    if any(stem.lower().endswith(suffix) and len(stem) > len(suffix) for suffix in accepted):
        return stem
    return f"{stem[: NAME_MAX - len(extension)].rstrip('-._') or fallback}{extension}"


def folder_list(folder_id: str, name: str, document_ids: Sequence[str], patient: dict[str, Any]) -> dict[str, Any]:
    """A folder of the space (VLT-1) as an R4 ``List`` of the DocumentReferences filed in it."""
    resource: dict[str, Any] = {
        "resourceType": "List",
        "id": folder_id,
        "status": "current",
        "mode": "working",
        "title": name,
        "code": {"text": "Dossier de documents"},
        "subject": dict(patient),
    }
    if document_ids:
        resource["entry"] = [{"item": {"reference": f"DocumentReference/{id_}"}} for id_ in document_ids]
    return resource


SUBMISSION_SET = {"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}


def submission_set(
    list_id: str, subject: SubjectFields, created: datetime, author: str, document_ids: Sequence[str]
) -> dict[str, Any]:
    """The SubmissionSet of an ITI-65 deposit as an R4 ``List`` (MHD's ``submissionset``): whose, when, who
    deposited it, and the DocumentReferences of it the reader may see."""
    return {
        "resourceType": "List",
        "id": list_id,
        "status": "current",
        "mode": "working",
        "code": {"coding": [SUBMISSION_SET]},
        "subject": {"identifier": {"system": f"urn:oid:{subject.ins_oid}", "value": subject.ins}},
        "date": created.isoformat(),
        "source": {"display": author},
        "entry": [{"item": {"reference": f"DocumentReference/{id_}"}} for id_ in document_ids],
    }
