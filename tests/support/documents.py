"""Real small documents and MHD bundles for tests (built here, byte by byte, no fixtures on disk)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from typing import Any

from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_HL7

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
LOINC = "http://loinc.org"
SNOMED = "http://snomed.info/sct"
IDNPS = "urn:oid:1.2.250.1.71.4.2.1"
IDNST = "urn:oid:1.2.250.1.71.4.2.2"
CLASS = "urn:oid:1.2.250.1.213.1.1.4.1"
FORMAT = "http://ihe.net/fhir/ihe.formatcode.fhir/CodeSystem/formatcode"
FACILITY = "https://mos.esante.gouv.fr/NOS/TRE_R02-SecteurActivite/FHIR/TRE-R02-SecteurActivite"
SETTING = "https://mos.esante.gouv.fr/NOS/TRE_R38-SpecialiteOrdinale/FHIR/TRE-R38-SpecialiteOrdinale"
PDSM = "https://interop.esante.gouv.fr/ig/fhir/pdsm/StructureDefinition/PDSm_ComprehensiveDocumentReference"
LAB_FINESS = "2B0000020"  # the lab's software (an establishment)
AUTHOR_RPPS = "10009999999"  # the biologist the lab's report names (contained Practitioner)


def make_pdf(text: str, padding: int = 0) -> bytes:
    """A one-page PDF (Helvetica, WinAnsi) whose text pypdf can extract; ``padding`` adds an image-like
    binary stream of about that many bytes (lines of random hex, as in real scanned documents)."""
    escaped = text.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
    stream = f"BT /F1 12 Tf 72 720 Td ({escaped}) Tj ET".encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    if padding:
        blob = b"\n".join(os.urandom(31).hex().encode() for _ in range(padding // 63))
        objects.append(b"<< /Length " + str(len(blob)).encode() + b" >>\nstream\n" + blob + b"\nendstream")
    out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def make_cda_level1(pdf: bytes, title: str = "Compte rendu de biologie") -> bytes:
    b64 = base64.b64encode(pdf).decode()
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<ClinicalDocument xmlns="urn:hl7-org:v3">'
        f"<title>{title}</title>"
        '<component><nonXMLBody><text mediaType="application/pdf" representation="B64">'
        f"{b64}</text></nonXMLBody></component></ClinicalDocument>"
    ).encode()


def document_entry(
    ins: str,
    body: bytes,
    mime: str = "application/pdf",
    type_code: str = "11502-2",
    title: str = "Bilan sanguin",
    labels: list[tuple[str, str]] | None = None,
    replaces: str | None = None,
    master: str | None = None,
    with_hash: bool = True,
) -> list[dict[str, Any]]:
    """The DocumentReference + Binary entries of one document."""
    binary_url = f"urn:uuid:{uuid.uuid4()}"
    attachment: dict[str, Any] = {"contentType": mime, "url": binary_url, "size": len(body), "title": title}
    if with_hash:
        attachment["hash"] = base64.b64encode(hashlib.sha1(body).digest()).decode()  # noqa: S324 — FHIR R4 SHA-1
    reference: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "masterIdentifier": {
            "system": "urn:ietf:rfc:3986",
            "value": master or f"urn:oid:1.2.250.1.999.{uuid.uuid4().int}",
        },
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": type_code}]},
        "category": [{"coding": [{"system": "urn:oid:1.3.6.1.4.1.19376.1.2.6.1", "code": "11502-2"}]}],
        "subject": {"identifier": {"system": INS_SYSTEM, "value": ins}},
        "description": title,
        "content": [{"attachment": attachment, "format": {"code": "urn:ihe:iti:xds-sd:pdf:2008"}}],
    }
    if labels:
        reference["securityLabel"] = [{"coding": [{"system": system, "code": code}]} for system, code in labels]
    if replaces:
        reference["relatesTo"] = [{"code": "replaces", "target": {"reference": f"DocumentReference/{replaces}"}}]
    return entries(reference, body, binary_url, mime)


def provide_bundle(*documents: list[dict[str, Any]]) -> dict[str, Any]:
    """An ITI-65 transaction Bundle: SubmissionSet List + the documents' entries."""
    entries = [e for document in documents for e in document]
    submission = {
        "resourceType": "List",
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "mode": "working",
        "code": {
            "coding": [{"system": "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes", "code": "submissionset"}]
        },
        "entry": [
            {"item": {"reference": e["fullUrl"]}}
            for e in entries
            if e["resource"]["resourceType"] == "DocumentReference"
        ],
    }
    return {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "fullUrl": f"urn:uuid:{uuid.uuid4()}",
                "resource": submission,
                "request": {"method": "POST", "url": "List"},
            },
            *entries,
        ],
    }


def full_reference(ins: str, body: bytes, binary_url: str, **changes: Any) -> dict[str, Any]:
    """A DocumentReference as the ANS PDSm profile fills it (Comprehensive metadata), every element used."""
    reference: dict[str, Any] = {
        "resourceType": "DocumentReference",
        "id": "doc-1",
        "meta": {"profile": [PDSM]},
        "contained": [
            {
                "resourceType": "Practitioner",
                "id": "biologiste",
                "identifier": [{"system": IDNPS, "value": f"8{AUTHOR_RPPS}"}],
                "name": [{"family": "SANTUCCI", "given": ["Lucia"]}],
            },
            {
                "resourceType": "PractitionerRole",
                "id": "auteur",
                "practitioner": {"reference": "#biologiste"},
                "organization": {"identifier": {"system": IDNST, "value": f"1{LAB_FINESS}"}},
            },
            {
                "resourceType": "Patient",
                "id": "patient-source",
                "identifier": [{"system": INS_SYSTEM, "value": ins}],
                "name": [{"family": "SANTONI", "given": ["Marie-Ange"]}],
                "gender": "female",
                "birthDate": "1985-03-14",
            },
        ],
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": f"urn:oid:1.2.250.1.999.{uuid.uuid4().int}"},
        "identifier": [{"use": "official", "system": "urn:ietf:rfc:3986", "value": f"urn:uuid:{uuid.uuid4()}"}],
        "status": "current",
        "type": {"coding": [{"system": LOINC, "code": "11502-2", "display": "CR d'examens biologiques"}]},
        "category": [{"coding": [{"system": CLASS, "code": "10", "display": "Compte rendu"}]}],
        "subject": {"identifier": {"system": INS_SYSTEM, "value": ins}},
        "date": "2024-03-05T10:00:00+01:00",
        "author": [{"reference": "#auteur"}],
        "description": "Bilan lipidique",
        "securityLabel": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM_HL7, "code": "N", "display": "normal"}]}],
        "content": [
            {
                "attachment": {
                    "contentType": "application/pdf",
                    "language": "fr-FR",
                    "url": binary_url,
                    "size": len(body),
                    "hash": base64.b64encode(hashlib.sha1(body, usedforsecurity=False).digest()).decode(),
                    "title": "Bilan lipidique du 5 mars 2024",
                    "creation": "2024-03-05T09:30:00+01:00",
                },
                "format": {"system": FORMAT, "code": "urn:ihe:lab:xd-lab:2008", "display": "CR de biologie"},
            }
        ],
        "context": {
            "event": [{"coding": [{"system": SNOMED, "code": "252150008", "display": "Bilan lipidique"}]}],
            "period": {"start": "2024-03-04T08:00:00+01:00", "end": "2024-03-04T09:00:00+01:00"},
            "facilityType": {"coding": [{"system": FACILITY, "code": "SA29", "display": "Laboratoire"}]},
            "practiceSetting": {"coding": [{"system": SETTING, "code": "SM05", "display": "Biologie médicale"}]},
            "sourcePatientInfo": {"reference": "#patient-source"},
        },
    }
    for key, value in changes.items():
        if value is None:
            reference.pop(key, None)
        else:
            reference[key] = value
    return reference


def entries(reference: dict[str, Any], body: bytes, binary_url: str, mime: str = "application/pdf") -> list[Any]:
    """A DocumentReference's two bundle entries: itself, and the Binary its attachment's url names."""
    return [
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": reference,
            "request": {"method": "POST", "url": "DocumentReference"},
        },
        {
            "fullUrl": binary_url,
            "resource": {"resourceType": "Binary", "contentType": mime, "data": base64.b64encode(body).decode()},
            "request": {"method": "POST", "url": "Binary"},
        },
    ]
