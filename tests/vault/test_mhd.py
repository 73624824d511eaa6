"""VLT-2: IHE MHD over HTTP with client-credentials tokens — ITI-65, ITI-67, ITI-68 — and VLT-8 at rest."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR
from carnet.vault.tables import Document, DocumentTerm
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_cda_level1, make_pdf, provide_bundle

FHIR = {"Content-Type": "application/fhir+json"}


def deposit(f: Feeders, headers: dict[str, str], *docs: list[dict[str, object]]) -> object:
    return f.client.post("/fhir", json=provide_bundle(*docs), headers={**headers, **FHIR})


def count(services: Services, model: type) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def search(f: Feeders, headers: dict[str, str], query: str = "") -> dict[str, object]:
    url = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{f.ins}{query}"
    response = f.client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_a_token_needs_the_right_secret(feeders: Feeders) -> None:
    response = feeders.client.post(
        "/oauth/token", data={"grant_type": "client_credentials", "client_id": "carnet-inconnu", "client_secret": "x"}
    )
    assert response.status_code == 401 and response.json()["error"] == "invalid_client"
    wrong_grant = feeders.client.post("/oauth/token", data={"grant_type": "password"})
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


def test_the_fhir_api_refuses_calls_without_a_token(feeders: Feeders) -> None:
    response = feeders.client.get(
        f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}"
    )
    assert response.status_code == 401
    assert response.json()["resourceType"] == "OperationOutcome"
    bad = feeders.client.get("/fhir/Binary/x", headers={"Authorization": "Bearer faux"})
    assert bad.status_code == 401


def test_iti65_stores_an_encrypted_document_filed_by_its_type(feeders: Feeders, demo: Services) -> None:
    pdf = make_pdf("Hémoglobine glyquée 6,5 % — résultat confidentiel")
    response = deposit(feeders, feeders.lab, document_entry(feeders.ins, pdf, title="Bilan HbA1c"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["type"] == "transaction-response"
    assert [e["response"]["status"] for e in body["entry"]] == ["201 Created"] * 3
    location = body["entry"][1]["response"]["location"]
    with demo.db.unit_of_work() as db:
        document = db.get(Document, location.split("/")[1])
        assert document is not None
        assert (document.category, document.author_label) == (
            "BIOLOGIE",
            "Laboratoire de biologie médicale — Centre hospitalier de Bastia",
        )
        blob_key = document.blob_key
        actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.patient_id == feeders.patient_id)))
    assert "document.deposit" in actions
    blob_files = [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]
    assert [p.name for p in blob_files] == [blob_key]
    raw = blob_files[0].read_bytes()
    assert b"%PDF" not in raw and b"moglobine" not in raw and pdf[:200] not in raw


def test_iti67_then_iti68_give_the_author_their_document_back(feeders: Feeders) -> None:
    pdf = make_pdf("Numération formule sanguine")
    deposit(feeders, feeders.lab, document_entry(feeders.ins, pdf, title="NFS"))
    found = search(feeders, feeders.lab)
    assert found["total"] == 1
    reference = found["entry"][0]["resource"]  # type: ignore[index]
    assert reference["type"]["coding"][0]["code"] == "11502-2"
    assert reference["subject"]["identifier"]["value"] == feeders.ins
    url = reference["content"][0]["attachment"]["url"]
    retrieved = feeders.client.get(url.replace("http://127.0.0.1:8000", ""), headers=feeders.lab)
    assert retrieved.status_code == 200
    assert retrieved.content == pdf
    assert retrieved.headers["content-type"] == "application/pdf"
    as_json = feeders.client.get(
        url.replace("http://127.0.0.1:8000", ""), headers={**feeders.lab, "Accept": "application/fhir+json"}
    )
    assert base64.b64decode(as_json.json()["data"]) == pdf


def test_a_stranger_professional_neither_finds_nor_retrieves_the_document(feeders: Feeders) -> None:
    """ACC-1: the dentist is not authorised; the GP is (médecin traitant, ACC-2) and finds it."""
    deposit(feeders, feeders.lab, document_entry(feeders.ins, make_pdf("Ferritine basse"), title="Ferritine"))
    document_id = search(feeders, feeders.lab)["entry"][0]["resource"]["id"]  # type: ignore[index]
    assert search(feeders, feeders.gp)["total"] == 1
    assert feeders.client.get(f"/fhir/Binary/{document_id}", headers=feeders.gp).status_code == 200
    for stranger in (feeders.dentist,):
        listing = search(feeders, stranger)
        assert listing["total"] == 0 and not listing.get("entry")
        binary = feeders.client.get(f"/fhir/Binary/{document_id}", headers=stranger)
        assert binary.status_code == 404  # like a document that does not exist
        assert binary.json()["resourceType"] == "OperationOutcome"
        assert binary.json() == feeders.client.get("/fhir/Binary/inexistant", headers=stranger).json()
        assert "Ferritine" not in binary.text
        assert feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=stranger).status_code == 404


def test_a_bundle_with_one_bad_entry_writes_nothing(feeders: Feeders, demo: Services) -> None:
    good = document_entry(feeders.ins, make_pdf("Bon document"))
    bad = document_entry(feeders.ins, make_pdf("Type inconnu"), type_code="99999-9")
    audit_before = count(demo, AuditEntry)
    response = deposit(feeders, feeders.lab, good, bad)
    assert response.status_code == 400
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    assert "JDV_J07" in outcome["issue"][0]["diagnostics"]
    assert outcome["issue"][0]["expression"] == ["Bundle.entry[3].resource"]
    assert count(demo, Document) == 0 and count(demo, DocumentTerm) == 0
    assert count(demo, AuditEntry) == audit_before
    assert not [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]


def test_a_failure_after_blobs_were_written_removes_them(feeders: Feeders, demo: Services) -> None:
    """The second document of the batch is refused by the vault itself (it replaces a document that
    does not exist), after the first was sealed and written: the transaction rolls back and the
    orphan blob is deleted."""
    first = document_entry(feeders.ins, make_pdf("Premier"), title="Premier")
    second = document_entry(feeders.ins, make_pdf("Second"), title="Second", replaces="inexistant")
    response = deposit(feeders, feeders.lab, first, second)
    assert response.status_code == 400
    assert "Le document à remplacer n'existe pas" in response.json()["issue"][0]["diagnostics"]
    assert count(demo, Document) == 0
    assert not [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]


def test_invalid_bundles_get_an_operation_outcome_in_french(feeders: Feeders) -> None:
    response = feeders.client.post("/fhir", content="pas du json", headers={**feeders.lab, **FHIR})
    assert response.status_code == 400
    assert response.json()["issue"][0]["diagnostics"] == "Le corps de la requête n'est pas un JSON valide."
    not_transaction = provide_bundle(document_entry(feeders.ins, make_pdf("x")))
    not_transaction["type"] = "batch"
    response = feeders.client.post("/fhir", json=not_transaction, headers={**feeders.lab, **FHIR})
    assert response.status_code == 400 and "transaction" in response.json()["issue"][0]["diagnostics"]
    structure = provide_bundle(document_entry(feeders.ins, make_pdf("x")))
    structure["entry"][1]["resource"]["status"] = 12  # type: ignore[index]
    response = feeders.client.post("/fhir", json=structure, headers={**feeders.lab, **FHIR})
    assert response.status_code == 400 and response.json()["issue"][0]["expression"][0].startswith("Bundle.entry.1")


def test_an_unknown_patient_is_a_not_found_outcome(feeders: Feeders, demo: Services) -> None:
    from carnet.people.model.identifiers import nir_from_body

    response = deposit(feeders, feeders.lab, document_entry(nir_from_body("1840699123456"), make_pdf("x")))
    assert response.status_code == 404
    assert response.json()["issue"][0]["code"] == "not-found"
    assert count(demo, Document) == 0


def test_size_type_and_hash_are_checked(feeders: Feeders, demo: Services) -> None:
    big = b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024)
    response = deposit(feeders, feeders.lab, document_entry(feeders.ins, big, with_hash=False))
    assert response.status_code == 400 and "5 Mo" in response.json()["issue"][0]["diagnostics"]
    exe = deposit(feeders, feeders.lab, document_entry(feeders.ins, b"MZ\x90\x00", mime="application/x-msdownload"))
    assert exe.status_code == 400 and "Format non accepté" in exe.json()["issue"][0]["diagnostics"]
    entry = document_entry(feeders.ins, make_pdf("x"))
    entry[0]["resource"]["content"][0]["attachment"]["hash"] = base64.b64encode(b"0" * 20).decode()  # type: ignore[index]
    assert deposit(feeders, feeders.lab, entry).status_code == 400
    assert count(demo, Document) == 0


def test_replacing_keeps_the_history(feeders: Feeders) -> None:
    deposit(feeders, feeders.lab, document_entry(feeders.ins, make_pdf("Version 1"), title="V1"))
    first = search(feeders, feeders.lab)["entry"][0]["resource"]["id"]  # type: ignore[index]
    response = deposit(
        feeders, feeders.lab, document_entry(feeders.ins, make_pdf("Version 2"), title="V2", replaces=first)
    )
    assert response.status_code == 200, response.text
    current = search(feeders, feeders.lab)
    assert [e["resource"]["description"] for e in current["entry"]] == ["V2"]  # type: ignore[union-attr]
    assert current["entry"][0]["resource"]["relatesTo"][0]["target"]["reference"] == f"DocumentReference/{first}"  # type: ignore[index]
    superseded = search(feeders, feeders.lab, "&status=superseded")
    assert [e["resource"]["id"] for e in superseded["entry"]] == [first]  # type: ignore[union-attr]
    # issue #15-17: the dentist may not read the document, so it is answered like an unknown id (not a 403 that
    # tells him it exists), and nothing changes; Dr Ferracci reads it but is not its author: 403
    by_other = deposit(feeders, feeders.dentist, document_entry(feeders.ins, make_pdf("V3"), replaces=first))
    unknown = deposit(feeders, feeders.dentist, document_entry(feeders.ins, make_pdf("V3"), replaces=str(uuid.uuid4())))
    assert by_other.status_code == unknown.status_code == 400
    assert by_other.json()["issue"] == unknown.json()["issue"]
    assert "Le document à remplacer n'existe pas pour ce patient." in by_other.text
    by_reader = deposit(feeders, feeders.gp, document_entry(feeders.ins, make_pdf("V4"), replaces=first))
    assert by_reader.status_code == 403 and "Seul l'auteur d'un document peut le remplacer." in by_reader.text
    assert search(feeders, feeders.lab) == current
    assert [e["resource"]["id"] for e in search(feeders, feeders.lab, "&status=superseded")["entry"]] == [first]  # type: ignore[union-attr]


def test_only_the_author_marks_a_document_entered_in_error(feeders: Feeders) -> None:
    deposit(feeders, feeders.lab, document_entry(feeders.ins, make_pdf("Erreur de patient"), title="Erreur"))
    document_id = search(feeders, feeders.lab)["entry"][0]["resource"]["id"]  # type: ignore[index]
    patch = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    headers = {"Content-Type": "application/json-patch+json"}
    refused = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}", json=patch, headers={**feeders.dentist, **headers}
    )
    assert refused.status_code == 404  # the dentist may not read it: like a document that does not exist
    done = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}", json=patch, headers={**feeders.lab, **headers}
    )
    assert done.status_code == 200 and done.json()["status"] == "entered-in-error"
    assert search(feeders, feeders.lab)["total"] == 0
    assert search(feeders, feeders.lab, "&status=entered-in-error")["total"] == 1


def test_security_labels_at_deposit_and_by_patch(feeders: Feeders, demo: Services) -> None:
    entry = document_entry(
        feeders.ins, make_pdf("Annonce diagnostique"), labels=[(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_PATIENT")]
    )
    assert deposit(feeders, feeders.lab, entry).status_code == 200
    resource = search(feeders, feeders.lab)["entry"][0]["resource"]  # type: ignore[index]
    assert resource["securityLabel"][0]["coding"][0] == {
        "system": CONFIDENTIALITY_SYSTEM_FR,
        "code": "INVISIBLE_PATIENT",
    }
    with demo.db.unit_of_work() as db:
        assert db.get(Document, resource["id"]).reveal_at is not None  # type: ignore[union-attr]
    patch = [
        {
            "op": "replace",
            "path": "/securityLabel",
            "value": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM_FR, "code": "INVISIBLE_REPRESENTANTS_LEGAUX"}]}],
        }
    ]
    response = feeders.client.patch(f"/fhir/DocumentReference/{resource['id']}", json=patch, headers=feeders.lab)
    assert response.status_code == 200
    assert [label["coding"][0]["code"] for label in response.json()["securityLabel"]] == [
        "INVISIBLE_REPRESENTANTS_LEGAUX"
    ]
    unknown = [
        {
            "op": "replace",
            "path": "/securityLabel",
            "value": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM_FR, "code": "SECRET"}]}],
        }
    ]
    refused = feeders.client.patch(f"/fhir/DocumentReference/{resource['id']}", json=unknown, headers=feeders.lab)
    assert refused.status_code == 400 and "SECRET" in refused.json()["issue"][0]["diagnostics"]


def test_cda_level1_is_unwrapped_for_preview_and_indexed(feeders: Feeders, demo: Services) -> None:
    pdf = make_pdf("Créatininémie normale")
    cda = make_cda_level1(pdf)
    assert deposit(feeders, feeders.lab, document_entry(feeders.ins, cda, mime="text/xml")).status_code == 200
    with demo.db.unit_of_work() as db:
        document = db.scalars(select(Document)).one()
        assert document.preview_mime_type == "application/pdf" and document.preview_blob_key
    retrieved = feeders.client.get(f"/fhir/Binary/{document.id}", headers=feeders.lab)
    assert retrieved.content == cda


def test_paging_follows_next_links(feeders: Feeders) -> None:
    for index in range(3):
        deposit(feeders, feeders.lab, document_entry(feeders.ins, make_pdf(f"Doc {index}"), title=f"Doc {index}"))
    page = search(feeders, feeders.lab, "&_count=2")
    assert page["total"] == 3 and len(page["entry"]) == 2  # type: ignore[arg-type]
    next_url = next(link["url"] for link in page["link"] if link["relation"] == "next")  # type: ignore[union-attr]
    second = feeders.client.get(next_url.replace("http://testserver", ""), headers=feeders.lab).json()
    assert len(second["entry"]) == 1


def test_search_rejects_what_it_does_not_understand(feeders: Feeders) -> None:
    base = f"/fhir/DocumentReference?patient.identifier=urn:oid:1.2.250.1.213.1.4.8|{feeders.ins}"
    assert feeders.client.get(base + "&nimporte=1", headers=feeders.lab).status_code == 400
    assert feeders.client.get(base + "&date=hier", headers=feeders.lab).status_code == 400
    assert feeders.client.get("/fhir/DocumentReference", headers=feeders.lab).status_code == 400


def test_a_refused_entry_rolls_back_the_whole_bundle_and_the_refusal_is_kept(feeders: Feeders, demo: Services) -> None:
    """ACC-5 + atomicity: the policy refuses the second entry (it replaces another author's document);
    the first entry is not written, the refusal is in the audit log, and the chain still verifies."""
    deposit(feeders, feeders.lab, document_entry(feeders.ins, make_pdf("Du labo"), title="Labo"))
    lab_doc = search(feeders, feeders.lab)["entry"][0]["resource"]["id"]  # type: ignore[index]
    before = count(demo, Document)
    response = deposit(
        feeders,
        feeders.gp,
        document_entry(feeders.ins, make_pdf("Premier"), title="Premier"),
        document_entry(feeders.ins, make_pdf("Second"), title="Second", replaces=lab_doc),
    )
    assert response.status_code == 403
    assert count(demo, Document) == before
    with demo.db.unit_of_work() as db:
        refusals = list(db.scalars(select(AuditEntry).where(AuditEntry.outcome == "deny")))
        from carnet.hall import audit

        _, breaks = audit.verify(db)
    assert [r.action for r in refusals] == ["document.update"]
    assert breaks == []
    assert len([p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]) == 1


def test_a_bundle_in_another_format_is_a_415(feeders: Feeders) -> None:
    """Issue #15-4."""
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Compte rendu")))
    for media in ("application/xml", "text/plain", "application/x-www-form-urlencoded", ""):
        body = json.dumps(bundle).encode()
        answer = feeders.client.post("/fhir", content=body, headers={**feeders.lab, "Content-Type": media})
        assert answer.status_code == 415, media
        assert answer.json()["resourceType"] == "OperationOutcome"


def test_the_same_master_identifier_twice_in_one_bundle_is_refused(feeders: Feeders, demo: Services) -> None:
    """Issue #15-4: across bundles it was refused already; within one bundle too, and nothing is stored."""
    twice = [document_entry(feeders.ins, make_pdf(t), master="urn:oid:1.2.3.4.5.6") for t in ("Un", "Deux")]
    answer = feeders.client.post("/fhir", json=provide_bundle(*twice), headers=feeders.lab)
    assert answer.status_code == 400 and "même masterIdentifier" in answer.text
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Document)) == 0


@pytest.mark.parametrize(
    "coding",
    [
        {"system": "http://exemple.fr/mes-codes", "code": "N"},
        {"system": "urn:oid:1.2.250.1.213.1.1.4.13", "code": "INCONNU"},
        {"code": "N"},
    ],
)
def test_a_security_label_of_an_unknown_system_or_code_is_refused(feeders: Feeders, coding: dict[str, str]) -> None:
    """Issue #15-4: docs/api.md says labels are checked."""
    entry = document_entry(feeders.ins, make_pdf("Compte rendu"))
    entry[0]["resource"]["securityLabel"] = [{"coding": [coding]}]
    answer = feeders.client.post("/fhir", json=provide_bundle(entry), headers=feeders.lab)
    assert answer.status_code == 400, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
