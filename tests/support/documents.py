"""Real small documents and MHD bundles for tests (built here, byte by byte, no fixtures on disk)."""

from __future__ import annotations

import base64
import hashlib
import os
import uuid
from typing import Any

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"


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
