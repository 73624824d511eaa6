"""Issue #15-16 and #15-17: MHD branches no test ran before — the médecin traitant (not the author) on the JSON
Patch of a DocumentReference; one patient per ITI-65 bundle; a folder of another patient; the announced size; the
bytes inline or in a separate Binary entry; the 40 Mo limit; malformed JSON Patch; an expired token; a revoked
client. Every refusal is an OperationOutcome and leaves the space as it was, counted through the FHIR search of the
author (the lab's software). SQLite and PostgreSQL."""

from __future__ import annotations

import base64
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.identity.service.clients import create_client
from carnet.identity.tables import AccessToken, ApiClient
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from carnet.vault.tables import Folder
from tests.support.actors import STRANGER, Actors, Feeders, bearer
from tests.support.documents import INS_SYSTEM, document_entry, make_pdf, provide_bundle
from tests.vault.test_pages import count, seen, upload

PATCH = {"Content-Type": "application/json-patch+json"}


def total(f: Feeders, ins: str | None = None, status: str = "current") -> int:
    """How many documents of the patient the lab's software finds (it finds those it wrote)."""
    query = {"patient.identifier": f"{INS_SYSTEM}|{ins or f.ins}", "status": status}
    answer = f.client.get("/fhir/DocumentReference", params=query, headers=f.lab)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["total"])


def outcome(answer: Any, status: int, words: str = "") -> str:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome", body
    text = " ".join(issue.get("diagnostics", "") for issue in body["issue"])
    assert words in text, text
    return text


def deposited(f: Feeders, title: str = "Compte rendu") -> str:
    answer = f.client.post(
        "/fhir", json=provide_bundle(document_entry(f.ins, make_pdf(title), title=title)), headers=f.lab
    )
    assert answer.status_code == 200, answer.text
    return str(answer.json()["entry"][1]["response"]["location"].split("/")[1])


def stranger_ins(services: Services) -> str:
    with services.db.unit_of_work() as db:
        ins = db.scalar(select(Patient.ins).where(Patient.email == f"{STRANGER}@exemple.fr"))
    assert ins
    return ins


# ------------------------------------------------------------------ #15-16: the médecin traitant on PATCH


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "replace", "path": "/status", "value": "entered-in-error"}],
        [{"op": "replace", "path": "/securityLabel", "value": [{"coding": [{"code": "R"}]}]}],
    ],
    ids=["annuler", "étiquettes"],
)
def test_the_medecin_traitant_who_did_not_write_a_document_cannot_patch_it(
    feeders: Feeders, operations: list[dict[str, Any]]
) -> None:
    """VLT-2: the JSON Patch is the author's. Dr Ferracci reads every document of his patient (ACC-2), so he is told
    why (403), not « unknown »; the document stays as the lab wrote it; the lab still can."""
    document_id = deposited(feeders)
    before = feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.gp).json()
    answer = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}", json=operations, headers={**feeders.gp, **PATCH}
    )
    outcome(answer, 403, "Seul l'auteur d'un document")
    after = feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.gp).json()
    assert after == before and after["status"] == "current" and "securityLabel" not in after
    by_author = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}", json=operations, headers={**feeders.lab, **PATCH}
    )
    assert by_author.status_code == 200, by_author.text


# ------------------------------------------------------------------ #15-17: ITI-65 branches


def test_every_document_of_a_bundle_concerns_one_patient(feeders: Feeders, demo: Services) -> None:
    """ITI-65: a submission set is about one patient; two patients in one bundle store nothing for either."""
    other = stranger_ins(demo)
    bundle = provide_bundle(
        document_entry(feeders.ins, make_pdf("Pour Marie-Ange")), document_entry(other, make_pdf("Pour Pierre-Paul"))
    )
    answer = feeders.client.post("/fhir", json=bundle, headers=feeders.lab)
    outcome(answer, 400, "Tous les documents d'un lot doivent concerner le même patient.")
    assert total(feeders) == 0 and total(feeders, other) == 0


def test_a_document_cannot_be_filed_into_a_folder_of_another_patient(actors: Actors, demo: Services) -> None:
    """VLT-1: a folder id of someone else's space is answered like one that does not exist; nothing is stored."""
    with demo.db.unit_of_work() as db:
        other = db.scalar(select(Patient.id).where(Patient.email == f"{STRANGER}@exemple.fr"))
        assert other
        folder = Folder(patient_id=other, name="Dossier de Pierre-Paul")
        db.add(folder)
        db.flush()
        folder_id = folder.id
    answer = upload(actors, make_pdf("Échographie"), folder=folder_id)
    assert answer.status_code == 400 and "Ce dossier n'existe pas." in seen(answer)
    assert "Dossier de Pierre-Paul" not in seen(answer)
    assert "Vous n'avez encore aucun document." in seen(actors.patient.get(f"/espace/{actors.patient_id}/documents"))


def test_an_announced_size_that_is_not_the_contents_is_refused(feeders: Feeders) -> None:
    entries = document_entry(feeders.ins, make_pdf("Compte rendu"))
    entries[0]["resource"]["content"][0]["attachment"]["size"] += 1
    answer = feeders.client.post("/fhir", json=provide_bundle(entries), headers=feeders.lab)
    text = outcome(answer, 400, "Taille annoncée")
    assert answer.json()["issue"][0]["expression"] == ["Bundle.entry[1].resource.content[0].attachment.size"], text
    assert total(feeders) == 0


def test_the_bytes_inline_or_in_a_separate_binary_entry_are_the_same_document(feeders: Feeders) -> None:
    """ITI-65: the document's bytes are ``attachment.data`` or the Binary entry its ``attachment.url`` names."""
    pdf = make_pdf("Compte rendu opératoire")
    separate = document_entry(feeders.ins, pdf, title="Séparé")
    inline = document_entry(feeders.ins, pdf, title="En ligne")[:1]
    inline[0]["resource"]["content"][0]["attachment"]["data"] = base64.b64encode(pdf).decode()
    for entries in (separate, inline):
        answer = feeders.client.post("/fhir", json=provide_bundle(entries), headers=feeders.lab)
        assert answer.status_code == 200, answer.text
        document_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
        assert feeders.client.get(f"/fhir/Binary/{document_id}", headers=feeders.lab).content == pdf
    assert total(feeders) == 2


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ("no binary", "attachment.url doit désigner un Binary du même Bundle."),
        ("not a binary", "attachment.url doit désigner un Binary du même Bundle."),
        ("other type", "Le type MIME du Binary diffère de celui du DocumentReference."),
    ],
)
def test_an_attachment_url_must_name_a_binary_of_the_same_type(feeders: Feeders, change: str, words: str) -> None:
    entries = document_entry(feeders.ins, make_pdf("Compte rendu"))
    reference, binary = entries
    if change == "no binary":
        entries = [reference]
    elif change == "not a binary":
        reference["resource"]["content"][0]["attachment"]["url"] = "urn:uuid:00000000-0000-0000-0000-000000000000"
    else:
        binary["resource"]["contentType"] = "image/png"
    answer = feeders.client.post("/fhir", json=provide_bundle(entries), headers=feeders.lab)
    outcome(answer, 400, words)
    assert total(feeders) == 0


def test_a_bundle_over_40_mb_is_a_413_before_it_is_parsed(feeders: Feeders) -> None:
    """ITI-65 bodies are bounded while they are read (issue #15-2): one byte over 40 Mo is refused."""
    limit = 40 * 1024 * 1024
    body = b'{"resourceType": "Bundle", "type": "transaction", "entry": []' + b" " * limit + b"}"
    answer = feeders.client.post(
        "/fhir", content=body, headers={**feeders.lab, "Content-Type": "application/fhir+json"}
    )
    outcome(answer, 413, "Le Bundle dépasse 40 Mo.")
    assert total(feeders) == 0


# ------------------------------------------------------------------ #15-17: JSON Patch, tokens, clients


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"{not json", "n'est pas un JSON valide"),
        (b'{"op": "replace", "path": "/status", "value": "entered-in-error"}', "liste d'opérations"),
        (b"[]", "liste d'opérations"),
        (b"[1]", "replace/add"),
        (b'[{"path": "/status", "value": "entered-in-error"}]', "replace/add"),
        (b'[{"op": ["replace"], "path": "/status", "value": "entered-in-error"}]', "replace/add"),
        (b'[{"op": "remove", "path": "/securityLabel"}]', "replace/add"),
        (b'[{"op": "replace", "value": "entered-in-error"}]', "Modification non prise en charge"),
        (b'[{"op": "replace", "path": "/status", "value": "current"}]', "Modification non prise en charge"),
        (b'[{"op": "replace", "path": "/description", "value": "Autre titre"}]', "Modification non prise en charge"),
        (b'[{"op": "replace", "path": "/securityLabel", "value": "R"}]', "securityLabel"),
    ],
)
def test_a_malformed_json_patch_is_a_400_and_changes_nothing(feeders: Feeders, body: bytes, words: str) -> None:
    document_id = deposited(feeders)
    before = feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.lab).json()
    answer = feeders.client.patch(
        f"/fhir/DocumentReference/{document_id}", content=body, headers={**feeders.lab, **PATCH}
    )
    outcome(answer, 400, words)
    assert feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.lab).json() == before


def test_an_expired_token_deposits_nothing(feeders: Feeders, demo: Services) -> None:
    """A token past its lifetime is a 401 ``login`` outcome — before the body is read — and nothing is stored."""
    with demo.db.unit_of_work() as db:
        db.execute(update(AccessToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(document_entry(feeders.ins, make_pdf("Trop tard"))), headers=feeders.lab
    )
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    outcome(answer, 401, "Jeton d'accès absent, invalide ou expiré")
    feeders.lab.update(bearer(feeders.client, *lab_credentials(demo)))  # a new token: the lab is not revoked
    assert total(feeders) == 0


def lab_credentials(services: Services) -> tuple[str, str]:
    with services.db.unit_of_work() as db:
        made = create_client(db, "LBM CH Bastia (second logiciel)", finess="2B0000020")
    return made.client_id, made.client_secret


def test_a_revoked_client_gets_no_new_token_and_its_tokens_stop(feeders: Feeders, demo: Services) -> None:
    client_id, secret = lab_credentials(demo)
    headers = bearer(feeders.client, client_id, secret)
    with demo.db.unit_of_work() as db:
        db.execute(update(ApiClient).where(ApiClient.client_id == client_id).values(revoked_at=utcnow()))
    tokens_before = count(demo, AccessToken)
    form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": secret}
    refused = feeders.client.post("/oauth/token", data=form)
    assert refused.status_code == 401 and refused.json()["error"] == "invalid_client"
    assert count(demo, AccessToken) == tokens_before
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(document_entry(feeders.ins, make_pdf("Révoqué"))), headers=headers
    )
    outcome(answer, 401, "Jeton d'accès absent, invalide ou expiré")
    assert total(feeders) == 0


def test_a_deposit_the_policy_refuses_first_is_recorded_and_writes_nothing(feeders: Feeders, demo: Services) -> None:
    """The policy's first word on a deposit is asked in a read transaction (issue #14); a refusal there still goes
    through ``guard`` in a write transaction: recorded in the history, nothing sealed or stored. An app acting in a
    space without the person's consent (CAT-3) is refused; the lab, authorised, deposits."""
    from carnet.hall.actors import Actor, ActorKind
    from carnet.hall.guard import AccessDenied
    from carnet.hall.tables import AuditEntry
    from carnet.people.tables import Establishment
    from carnet.vault.service import documents as vault

    def new() -> vault.NewDocument:
        return vault.NewDocument(
            patient_id=feeders.patient_id,
            type_system="http://loinc.org",
            type_code="11502-2",
            title="Bilan",
            mime_type="application/pdf",
            body=make_pdf("Bilan"),
        )

    blobs = demo.settings.resolved_data_dir / "blobs"
    stored = {p for p in blobs.rglob("*") if p.is_file()}
    app = Actor(ActorKind.APP, "app-sans-consentement", "Appli", patient_id=feeders.patient_id)
    with pytest.raises(AccessDenied):
        vault.deposit_many(demo, app, [new()])
    with demo.db.reading() as db:
        refusals = list(
            db.scalars(select(AuditEntry).where(AuditEntry.actor_id == app.id, AuditEntry.outcome == "deny"))
        )
    assert [r.action for r in refusals] == ["document.deposit"]
    assert {p for p in blobs.rglob("*") if p.is_file()} == stored
    before = total(feeders)
    with demo.db.reading() as db:
        lab = Actor(
            ActorKind.ESTABLISHMENT,
            "lab",
            "Laboratoire",
            finess="2B0000020",
            establishment_id=db.scalar(select(Establishment.id).where(Establishment.finess == "2B0000020")),
        )
    vault.deposit_many(demo, lab, [new()])
    assert total(feeders) == before + 1
