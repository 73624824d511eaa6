"""What each capability puts in the archive of a space (ENR-7): valid FHIR R4 resources (checked with the
``fhir.resources`` R4B models), files byte-exact and read only when the archive writes them, what the asker may not
read left out (documents still hidden from the patient for everyone; INVISIBLE_REPRESENTANTS_LEGAUX ones for a
legal representative), masked ones in, a caregiver and a professional refused, nothing recorded per item."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class
from sqlalchemy import func, select

from carnet.access.service import export as access_export
from carnet.agenda.service import export as agenda_export
from carnet.bootstrap import Services
from carnet.demo import load_agenda_demo, load_messaging_demo, load_profile_demo
from carnet.export.model.exported import Exported
from carnet.family.tables import Caregiver
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.history.service import export as history_export
from carnet.identity.service import auth
from carnet.messaging.service import conversations
from carnet.messaging.service import export as messaging_export
from carnet.people.service import export as people_export
from carnet.people.tables import Account, Patient
from carnet.profile.service import export as profile_export
from carnet.profile.service import portal as profile
from carnet.vault.model.documents import LOINC, PATIENT_TYPE_SYSTEM
from carnet.vault.service import documents as vault
from carnet.vault.service import export as vault_export
from carnet.vault.service import portal as vault_portal
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

pytestmark = pytest.mark.usefixtures("demo")

SOURCES: tuple[ModuleType, ...] = (
    people_export,
    vault_export,
    profile_export,
    agenda_export,
    messaging_export,
    access_export,
    history_export,
)
SECTIONS = {"Identité", "Documents", "Profil médical", "Agenda", "Messagerie", "Accès et consentements", "Historique"}
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return auth.actor_for(db, account)


def new(patient_id: str, title: str, body: bytes, mime: str = "application/pdf", **more: Any) -> vault.NewDocument:
    system, code = (LOINC, "11502-2") if "type_code" not in more else (PATIENT_TYPE_SYSTEM, more.pop("type_code"))
    return vault.NewDocument(patient_id, system, code, title, mime, body, **more)


@dataclass
class Space:
    marie: Actor
    doctor: Actor
    laetitia: Actor
    lisandru: Actor
    bodies: dict[str, bytes]  # document id → original bytes
    own: str  # Marie's upload, in her folder « Analyses »
    hidden: str  # INVISIBLE_PATIENT: not yet announced
    masked: str  # MASQUE_PS
    old: str  # superseded by ``newer``
    newer: str
    folder: str
    child_hidden: str  # INVISIBLE_REPRESENTANTS_LEGAUX in Lisandru's space
    child_visible: str


@pytest.fixture
def space(demo: Services) -> Space:
    load_profile_demo(demo)
    load_agenda_demo(demo)
    load_messaging_demo(demo)
    marie, doctor, laetitia = (
        actor_of(demo, login) for login in ("marie-ange.santoni", "dr.ferracci", "laetitia.casanova")
    )
    assert marie.patient_id and laetitia.patient_id
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.attached_to_id == laetitia.patient_id))
    assert child
    lisandru = Actor(ActorKind.PATIENT, None, "Lisandru CASANOVA", patient_id=child)
    folder = vault_portal.create_folder(demo, marie, marie.patient_id, "Analyses")
    space_id = marie.patient_id
    (own,) = vault.deposit_many(
        demo,
        marie,
        [new(space_id, "Résultat d'analyse — été 2026 *", PNG, "image/png", type_code="DOCPAT05", folder_id=folder)],
    )
    hidden, masked, old = vault.deposit_many(
        demo,
        doctor,
        [
            new(space_id, "Annonce diagnostique", make_pdf("annonce"), confidentiality=["INVISIBLE_PATIENT"]),
            new(space_id, "Bilan lipidique", make_pdf("lipides"), confidentiality=["MASQUE_PS"]),
            new(space_id, "Bilan sanguin", make_pdf("version 1")),
        ],
    )
    (newer,) = vault.deposit_many(
        demo, doctor, [new(space_id, "Bilan sanguin", make_pdf("version 2"), replaces_id=old.id)]
    )
    child_hidden, child_visible = vault.deposit_many(
        demo,
        doctor,
        [
            new(
                child,
                "Consultation confidentielle",
                make_pdf("secret"),
                confidentiality=["INVISIBLE_REPRESENTANTS_LEGAUX"],
            ),
            new(child, "Carnet de vaccination", b"BCG, DTP", "text/plain"),
        ],
    )
    bodies = {d.id: b for d, b in ((own, PNG), (masked, make_pdf("lipides")))}
    with demo.db.unit_of_work() as db:
        for document in (hidden, old, newer, child_hidden, child_visible):
            bodies[document.id] = vault.read(demo, db, Actor.system(), document.id)[1]
    return Space(
        marie, doctor, laetitia, lisandru, bodies, own.id, hidden.id, masked.id, old.id, newer.id, folder,
        child_hidden.id, child_visible.id,
    )  # fmt: skip


def everything(services: Services, actor: Actor, patient_id: str) -> list[Exported]:
    return [item for source in SOURCES for item in source.export_resources(services, actor, patient_id)]


def of_type(items: list[Exported], kind: str) -> list[dict[str, Any]]:
    return [item.resource for item in items if item.resource["resourceType"] == kind]


def valid(resource: dict[str, Any]) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def audit_count(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(AuditEntry)) or 0)


@pytest.fixture
def blob_reads(demo: Services, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The blob keys opened, in order (every file of the archive is a sealed blob)."""
    opened: list[str] = []
    get = demo.blobs.get

    def counting(key: str) -> bytes:
        opened.append(key)
        return get(key)

    monkeypatch.setattr(demo.blobs, "get", counting)
    yield opened


# ------------------------------------------------------------------ the person's archive


def test_every_resource_is_valid_fhir_and_every_section_is_named(demo: Services, space: Space) -> None:
    items = everything(demo, space.marie, space.marie.patient_id or "")
    for item in items:
        for file in item.files:
            file.read()  # the hashes go into the resources as the files are read
        valid(item.resource)
        assert item.section in SECTIONS and item.summary.strip()
    kinds = {item.resource["resourceType"] for item in items}
    assert kinds >= {
        "Patient", "DocumentReference", "List", "Observation", "AllergyIntolerance", "Condition",
        "FamilyMemberHistory", "MedicationStatement", "Immunization", "Appointment", "Communication", "Consent",
        "AuditEvent",
    }  # fmt: skip
    keys = [(item.resource["resourceType"], item.resource["id"]) for item in items]
    assert len(keys) == len(set(keys))  # one entry per resource in the Bundle
    for appointment in of_type(items, "Appointment"):
        assert ("start" in appointment) == ("end" in appointment)  # R4 invariant app-2
    for allergy in of_type(items, "AllergyIntolerance"):
        assert allergy["clinicalStatus"]  # R4 invariant ait-1


def test_the_patient_carries_the_ins_and_its_traits(demo: Services, space: Space) -> None:
    (item,) = people_export.export_resources(demo, space.marie, space.marie.patient_id or "")
    patient = item.resource
    assert patient["identifier"][0]["system"] == "urn:oid:1.2.250.1.213.1.4.8"
    assert patient["name"][0] == {"use": "official", "family": "SANTONI", "given": ["Marie-Ange"]}
    assert patient["birthDate"] == "1985-03-14" and patient["gender"] == "female"
    assert patient["address"][0]["city"] == "Ajaccio"
    assert {"system": "email", "value": "marie-ange.santoni@exemple.fr", "use": "home"} in patient["telecom"]
    assert "2A004" in str(patient["extension"])  # the birth place, an INS trait
    assert item.section == "Identité" and "née le 14/03/1985" in item.summary


def test_documents_point_at_their_bytes_which_are_byte_exact_and_hashed(demo: Services, space: Space) -> None:
    items = list(vault_export.export_resources(demo, space.marie, space.marie.patient_id or ""))
    references = {item.resource["id"]: item for item in items if item.resource["resourceType"] == "DocumentReference"}
    assert set(references) == {space.own, space.masked, space.old, space.newer}  # not the hidden one
    assert references[space.old].resource["status"] == "superseded"
    assert references[space.newer].resource["relatesTo"][0]["target"] == {"reference": f"DocumentReference/{space.old}"}
    assert "MASQUE_PS" in str(references[space.masked].resource["securityLabel"])  # masked: the person's own
    for document_id, item in references.items():
        (file,) = item.files
        attachment = item.resource["content"][0]["attachment"]
        assert attachment["url"] == file.path and file.path.startswith(f"documents/{document_id}-")
        body = file.read()
        assert body == space.bodies[document_id]  # byte-exact
        assert attachment["size"] == len(body)
        assert attachment["hash"] == base64.b64encode(hashlib.sha1(body).digest()).decode()  # noqa: S324 — FHIR R4
        assert item.resource["subject"]["reference"] == f"Patient/{space.marie.patient_id}"
    own = references[space.own].files[0]
    assert own.path.endswith(".png") and own.path.isascii() and " " not in own.path and "*" not in own.path
    assert "déposé le" in references[space.own].summary
    (folder,) = [item.resource for item in items if item.resource["resourceType"] == "List"]
    assert folder["title"] == "Analyses" and folder["entry"] == [
        {"item": {"reference": f"DocumentReference/{space.own}"}}
    ]


def test_a_document_deposited_over_mhd_is_told_as_the_api_serves_it(demo: Services, feeders: Feeders) -> None:
    body = make_pdf("compte rendu")
    bundle = provide_bundle(document_entry(feeders.ins, body, title="Compte rendu de biologie"))
    sent = feeders.client.post("/fhir", json=bundle, headers={**feeders.lab, "Content-Type": "application/fhir+json"})
    assert sent.status_code == 200, sent.text
    marie = actor_of(demo, "marie-ange.santoni")
    (item,) = [i for i in vault_export.export_resources(demo, marie, feeders.patient_id)]
    served = feeders.client.get(f"/fhir/DocumentReference/{item.resource['id']}", headers=feeders.lab).json()
    (file,) = item.files
    assert file.read() == body
    valid(item.resource)
    attachment = item.resource["content"][0]["attachment"]
    assert attachment["url"] == file.path and attachment["hash"] == served["content"][0]["attachment"]["hash"]
    assert item.resource["masterIdentifier"] == served["masterIdentifier"]  # as sent
    assert item.resource["author"] == served["author"] and item.resource["date"] == served["date"]
    assert item.summary.startswith("Compte rendu de biologie (") and "— déposé le" in item.summary


def test_nothing_is_read_before_the_archive_asks_and_nothing_is_recorded(
    demo: Services, space: Space, blob_reads: list[str]
) -> None:
    before = audit_count(demo)
    items = everything(demo, space.marie, space.marie.patient_id or "")
    assert blob_reads == []  # iterating opened no file
    assert audit_count(demo) == before  # no history line per item (the export records its own)
    files = [file for item in items for file in item.files]
    assert files and all("hash" not in str(item.resource.get("content", "")) for item in items)
    for file in files:
        file.read()
    assert len(blob_reads) == len(files)


def test_documents_are_read_in_batches(demo: Services, space: Space, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vault_export, "BATCH", 1)
    monkeypatch.setattr(history_export, "BATCH", 7)
    monkeypatch.setattr(profile_export, "BATCH", 2)
    batched = [item.resource["id"] for item in everything(demo, space.marie, space.marie.patient_id or "")]
    monkeypatch.setattr(vault_export, "BATCH", 500)
    monkeypatch.setattr(history_export, "BATCH", 500)
    monkeypatch.setattr(profile_export, "BATCH", 500)
    assert batched == [item.resource["id"] for item in everything(demo, space.marie, space.marie.patient_id or "")]


def test_the_profile_and_its_masked_entries(demo: Services, space: Space) -> None:
    space_id = space.marie.patient_id or ""
    entry = profile.add_item(demo, space.doctor, space_id, "allergies", {"label": "Iode", "reaction": "Œdème"})
    profile.set_masked(demo, space.marie, space_id, entry, True)
    items = list(profile_export.export_resources(demo, space.marie, space_id))
    allergies = {item.resource["id"]: item for item in items if item.resource["resourceType"] == "AllergyIntolerance"}
    masked = allergies[entry].resource
    assert "MASQUE_PS" in str(masked["meta"]["security"]) and masked["recorder"] == {"display": space.doctor.label}
    assert "masqué aux professionnels" in allergies[entry].summary
    blood = [i.resource for i in items if i.resource.get("valueCodeableConcept", {}).get("text") == "O+"]
    assert blood and blood[0]["code"]["coding"][0]["code"] == "882-1"  # a section FHIR does not exchange
    weights = [i for i in items if "Poids" in i.summary]
    assert len(weights) == 6 and all(i.resource["valueQuantity"]["unit"] == "kg" for i in weights)


def test_the_agenda_messaging_access_and_history(demo: Services, space: Space) -> None:
    space_id = space.marie.patient_id or ""
    appointments = list(agenda_export.export_resources(demo, space.marie, space_id))
    assert len(appointments) == 5 and any(a.resource.get("appointmentType") == {"text": "Rappel"} for a in appointments)
    messages = list(messaging_export.export_resources(demo, space.marie, space_id))
    assert len(messages) == 4
    first, answer = messages[0].resource, messages[1].resource
    assert first["topic"] == {"text": "Résultats de votre bilan sanguin"} and "inResponseTo" not in first
    assert answer["inResponseTo"] == [{"reference": f"Communication/{first['id']}"}]
    assert answer["sender"]["reference"] == f"Patient/{space_id}"  # Marie wrote it herself
    assert answer["identifier"] == first["identifier"]  # one conversation
    (letter,) = messages[0].files
    attachment_id = letter.path.removeprefix("messages/").split("-resultats")[0]
    assert letter.path.startswith("messages/") and letter.path.endswith("resultats-bilan-sanguin.pdf")
    sent = conversations.attachment_content(demo, space.marie, attachment_id)
    assert letter.read() == sent.body  # byte-exact
    payload = [p["contentAttachment"] for p in first["payload"] if "contentAttachment" in p]
    assert payload[0]["url"] == letter.path and payload[0]["hash"]
    consents = [c.resource for c in access_export.export_resources(demo, space.marie, space_id)]
    roles = [e["valueCode"] for c in consents for e in c.get("extension", []) if e["url"].endswith("consent-role")]
    assert sorted(roles) == ["medecin-traitant", "reader"] and len(consents) == 5  # and the three emergency choices
    history = list(history_export.export_resources(demo, space.marie, space_id))
    assert history and all(h.resource["outcome"] in {"0", "4"} for h in history)
    deposits = [h for h in history if h.resource["subtype"][0]["code"] == "document.deposit"]
    ids = {h.resource["entity"][0]["what"]["identifier"]["value"] for h in deposits}
    assert space.hidden not in ids and space.own in ids  # nothing of a document she may not read yet
    assert any(space.doctor.label in h.resource["entity"][0]["description"] for h in deposits)


# ------------------------------------------------------------------ a legal representative, and those refused


def test_a_representative_gets_the_childs_archive_without_what_is_hidden_from_them(
    demo: Services, space: Space
) -> None:
    child = space.lisandru.patient_id or ""
    for_mother = everything(demo, space.laetitia, child)
    for_child = everything(demo, space.lisandru, child)
    mother_documents = {r["id"] for r in of_type(for_mother, "DocumentReference")}
    child_documents = {r["id"] for r in of_type(for_child, "DocumentReference")}
    assert mother_documents == {space.child_visible}
    assert child_documents == {space.child_visible, space.child_hidden}  # the person's own
    mother_history = str([item.resource for item in for_mother if item.resource["resourceType"] == "AuditEvent"])
    assert space.child_hidden not in mother_history
    assert of_type(for_mother, "Patient")[0]["name"][0]["given"] == ["Lisandru"]
    assert len(of_type(for_mother, "Observation")) == len(of_type(for_child, "Observation")) > 0  # his growth
    for item in for_mother:
        valid(item.resource)
    (document,) = [item for item in for_mother if item.resource["resourceType"] == "DocumentReference"]
    assert document.files[0].read() == space.bodies[space.child_visible]


@pytest.mark.parametrize("source", SOURCES, ids=lambda m: m.__name__.split(".")[1])
def test_a_caregiver_and_a_professional_are_refused(demo: Services, space: Space, source: ModuleType) -> None:
    space_id = space.marie.patient_id or ""
    caregiver = actor_of(demo, "pierre-paul.luciani")
    with demo.db.unit_of_work() as db:
        db.add(Caregiver(helped_id=space_id, caregiver_id=caregiver.patient_id))
    for refused in (caregiver, space.doctor, actor_of(demo, "dominique.orsini")):
        with pytest.raises(AccessDenied):
            list(source.export_resources(demo, refused, space_id))
    with demo.db.unit_of_work() as db:
        refusals = db.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.chain == space_id, AuditEntry.action == "space.export", AuditEntry.outcome == "deny")
        )
    assert refusals == 3  # each refusal is in the history
