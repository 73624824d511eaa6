"""Restoring the profile and the agenda of an archive into another space (ENR-7, item 5): what the export wrote of a
space — every section, every measure (blood pressure with its components), masked entries, entries typed in the
portal and entries sent over FHIR, appointments, reminders, cancelled ones — restored into a new space exports the
same resources again (ids and the patient aside); the rows are sealed with the new space's key and read by the
portal; a resource that cannot be read is refused with a French reason naming it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from carnet.agenda.model import fhir_map as agenda_map
from carnet.agenda.model.events import TypedEvent
from carnet.agenda.service import events
from carnet.agenda.service import exchange as agenda_exchange
from carnet.agenda.service import export as agenda_export
from carnet.agenda.service import portal as agenda
from carnet.agenda.service import restore as agenda_restore
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.demo import load_agenda_demo, load_profile_demo
from carnet.export.model.authorship import SOURCE_OF_KIND
from carnet.export.model.restoring import RestoreError, Restoring
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import PARIS
from carnet.history import labels
from carnet.history.service import export as history_export
from carnet.identity.service import auth
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Account, Patient
from carnet.profile.model import fhir_map as profile_map
from carnet.profile.model import measures as catalogue
from carnet.profile.model.sections import SECTIONS
from carnet.profile.service import entries
from carnet.profile.service import exchange as profile_exchange
from carnet.profile.service import export as profile_export
from carnet.profile.service import portal as profile
from carnet.profile.service import restore as profile_restore
from carnet.profile.service.entries import NewEntry
from carnet.profile.tables import ProfileEntry
from carnet.storage import keyring

pytestmark = pytest.mark.usefixtures("demo")

INS_SYSTEM = "urn:oid:1.2.250.1.213.1.4.8"
NOW = datetime.now(UTC)
TYPED_ITEMS = [  # the sections the demo does not fill, as typed in the portal
    ("hospitalisations", {"label": "Appendicectomie", "place": "CH", "start": "2015-06-02", "end": "2015-06-05"}),
    ("disabilities", {"label": "Sensoriel", "rate": "De 50 à 79 %", "note": "Malentendante depuis l'enfance"}),
    ("lifestyle", {"label": "Activité physique", "detail": "Marche 30 minutes par jour"}),
    ("professionals", {"role": "Pharmacien correspondant", "label": "Pharmacie du Cours", "phone": "04 95 21 00 00"}),
    ("entourage", {"role": "Personne de confiance", "label": "Paul SANTONI", "relation": "frère"}),
    ("organ_donation", {"label": "Je souhaite donner mes organes et tissus"}),
    ("conditions", {"label": "Migraine", "note": "Surtout l'hiver"}),
    ("allergies", {"label": "Arachide", "severity": "Sévère"}),
    ("treatments", {"label": "Metformine 500 mg", "start": "2020-01-10", "end": "2021-02-01"}),
]  # fmt: skip


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return auth.actor_for(db, account)


def subject(ins: str) -> dict[str, Any]:
    return {"identifier": {"system": INS_SYSTEM, "value": ins}}


def sent_profile(services: Services, actor: Actor, resource: dict[str, Any]) -> str:
    """A resource sent over FHIR, stored as the profile's API stores it."""
    kind = resource["resourceType"]
    kept = profile_map.incoming(kind, resource, NOW)
    new = NewEntry(
        kept.section, kept.effective_at, kept.fields, kept.code, kept.measure, kept.value, kept.components,
        kept.unit_entered, kept.fhir,
    )  # fmt: skip
    return profile_exchange.create(services, actor, kind, kept.subject, new).entry.id


def sent_appointment(services: Services, actor: Actor, resource: dict[str, Any]) -> str:
    return agenda_exchange.create(services, actor, agenda_map.incoming(resource)).event.id


def profile_resources(ins: str) -> list[dict[str, Any]]:
    when = (NOW - timedelta(days=2)).isoformat()
    pressure = [("8480-6", 142), ("8462-4", 91)]
    return [
        {
            "resourceType": "Observation", "status": "final", "subject": subject(ins), "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": "85354-9"}]},
            "component": [
                {
                    "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                    "valueQuantity": {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org",
                                      "code": "mm[Hg]"},
                }
                for code, value in pressure
            ],
            "performer": [{"reference": "Practitioner/10001234567", "display": "Dr Jean-Baptiste FERRACCI"}],
        },
        {
            "resourceType": "Observation", "status": "final", "subject": subject(ins), "effectiveDateTime": when,
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "valueQuantity": {"value": 63400, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"},
            "note": [{"text": "Pesée au cabinet"}],
        },
        {
            "resourceType": "Condition", "subject": subject(ins),
            "code": {"text": "HTA", "coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "I10"}]},
            "clinicalStatus": {"coding": [{"code": "active"}]}, "onsetDateTime": "2019-04-12",
            "recorder": {"display": "Dr Jean-Baptiste FERRACCI"},
        },
        {
            "resourceType": "Condition", "subject": subject(ins), "code": {"text": "Lombalgie"},
            "recordedDate": "2024-02-01", "recorder": {"reference": "Practitioner/1", "display": "Dr LECA"},
        },
        {
            "resourceType": "AllergyIntolerance", "patient": subject(ins), "code": {"text": "Latex"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical",
                                           "code": "active"}]},
            "reaction": [{"manifestation": [{"text": "Eczéma"}], "severity": "mild"}],
        },
        {
            "resourceType": "FamilyMemberHistory", "patient": subject(ins), "status": "completed",
            "relationship": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode",
                                         "code": "MTH"}]},
            "condition": [{"code": {"text": "Cancer du sein"}}], "date": "2023-05-01",
        },
        {
            "resourceType": "MedicationStatement", "subject": subject(ins), "status": "active",
            "medicationCodeableConcept": {"text": "Amlodipine 5 mg"},
            "effectivePeriod": {"start": "2024-02-01"}, "dateAsserted": "2024-02-03",
            "dosage": [{"text": "1 comprimé le matin"}],
        },
        {
            "resourceType": "Immunization", "patient": subject(ins), "status": "completed",
            "vaccineCode": {"text": "Grippe saisonnière"}, "occurrenceDateTime": "2025-10-20",
            "lotNumber": "AB123", "protocolApplied": [{"doseNumberPositiveInt": 1}],
            "performer": [{"actor": {"display": "Pharmacie du Cours"}}],
        },
    ]  # fmt: skip


def appointment(ins: str, start: datetime, **more: Any) -> dict[str, Any]:
    return {
        "resourceType": "Appointment",
        "status": "booked",
        "description": "Échographie abdominale",
        "start": start.isoformat(),
        "participant": [
            {"actor": subject(ins), "status": "accepted"},
            {"actor": {"reference": "Practitioner/10001234567", "display": "Dr Jean-Baptiste FERRACCI"},
             "status": "accepted"},
            {"actor": {"reference": "Location/cabinet", "display": "Cabinet de radiologie, Ajaccio"},
             "status": "accepted"},
        ],
        **more,
    }  # fmt: skip


@dataclass
class Source:
    marie: Actor
    space: str
    masked: set[str]


@pytest.fixture
def source(demo: Services) -> Source:
    """Marie-Ange's space with a profile and an agenda of every kind."""
    load_profile_demo(demo)
    load_agenda_demo(demo)
    marie, doctor = actor_of(demo, "marie-ange.santoni"), actor_of(demo, "dr.ferracci")
    space = marie.patient_id or ""
    with demo.db.unit_of_work() as db:
        patient = db.get(Patient, space)
        assert patient is not None
        ins = patient.ins
    for key, fields in TYPED_ITEMS:
        profile.add_item(demo, marie, space, key, fields)
    for key, measure in catalogue.MEASURES.items():
        if measure.computed or measure.components:
            continue
        middle = round((measure.low + measure.high) / 2, measure.decimals)
        typed = profile.MeasureInput(str(middle).replace(".", ","), when=NOW - timedelta(days=5), note="Au réveil")
        profile.add_measure(demo, marie, space, key, typed)
    sent = [sent_profile(demo, doctor, resource) for resource in profile_resources(ins)]
    by_doctor = profile.add_item(demo, doctor, space, "hospitalisations", {"label": "Bilan cardiologique"})
    masked = {sent[2], sent[0], by_doctor}  # a Condition and a blood pressure sent over FHIR, an item typed
    for entry_id in masked:
        profile.set_masked(demo, marie, space, entry_id, True)
    today = NOW.astimezone(PARIS).date()
    reminder = TypedEvent("rappel", "Appeler le laboratoire", (today + timedelta(days=4)).isoformat(), "08:15")
    agenda.add(demo, marie, space, reminder)
    dentist = TypedEvent("rendez_vous", "Dentiste", (today + timedelta(days=9)).isoformat(), "16:00", "16:45")
    agenda.cancel(demo, marie, space, agenda.add(demo, marie, space, dentist).id)
    start = datetime.combine(today + timedelta(days=30), datetime.min.time(), PARIS).replace(hour=9)
    sent_appointment(demo, doctor, appointment(ins, start, end=(start + timedelta(minutes=30)).isoformat()))
    sent_appointment(demo, doctor, appointment(ins, start + timedelta(days=1), minutesDuration=20))
    sent_appointment(demo, doctor, appointment(ins, start + timedelta(days=2), status="cancelled"))
    later = sent_appointment(demo, doctor, appointment(ins, start + timedelta(days=3), comment="À jeun"))
    agenda.cancel(demo, marie, space, later)
    without_end = sent_appointment(demo, doctor, appointment(ins, start + timedelta(days=4)))
    assert without_end
    return Source(marie, space, masked)


def new_space(services: Services, index: int = 0) -> tuple[Actor, bytes]:
    """A new, empty space (as the import creates one for the person) and its data key."""
    with services.db.unit_of_work() as db:
        patient = Patient(
            ins=nir_from_body(f"285032A004{600 + index:03d}"), birth_name="SANTONI", first_names="Marie-Ange",
            birth_date=datetime(1985, 3, 14).date(), sex="F", birth_place="2A004", email=f"neuve{index}@exemple.fr",
            address="1 cours Napoléon", postal_code="20000", city="Ajaccio", departement="2A",
        )  # fmt: skip
        db.add(patient)
        db.flush()
        key = keyring.data_key(db, services.keyring, patient.id)
        return Actor(ActorKind.PATIENT, None, "Marie-Ange SANTONI", patient_id=patient.id), key


def exported(services: Services, actor: Actor) -> list[dict[str, Any]]:
    space = actor.patient_id or ""
    return [
        item.resource
        for module in (profile_export, agenda_export)
        for item in module.export_resources(services, actor, space)
    ]


PATIENT_ELEMENTS = {"subject", "patient"}


def normalised(resources: list[dict[str, Any]]) -> list[str]:
    """The resources without their ids and their patient (reference and INS), sorted: what must be equal."""
    out = []
    for resource in resources:
        kept = {k: v for k, v in resource.items() if k != "id" and k not in PATIENT_ELEMENTS}
        if resource["resourceType"] == "Appointment":
            first, *others = kept["participant"]
            assert first["actor"]["type"] == "Patient"
            kept["participant"] = others
        out.append(json.dumps(kept, sort_keys=True, ensure_ascii=False))
    return sorted(out)


def profile_row(r: ProfileEntry) -> tuple[Any, ...]:
    return (r.section, r.measure, r.effective_at, r.masked, r.created_at, r.updated_at, r.version, r.source,
            r.author_label)  # fmt: skip


def event_row(e: AgendaEvent) -> tuple[Any, ...]:
    """An event's row (its creation's moment unknown when it was sent over FHIR and changed since: not compared)."""
    created = e.created_at if e.version == 1 or e.source == "patient" else None
    return (e.kind, e.starts_at, e.ends_at, e.all_day, e.status, created, e.updated_at, e.version, e.source,
            e.author_label)  # fmt: skip


def restore_into(services: Services, key: bytes, actor: Actor, bundle: dict[str, Any]) -> tuple[int, int, Restoring]:
    restoring = Restoring(actor.patient_id or "", key, read_file=lambda path: b"")
    with services.db.unit_of_work() as db:
        profiles = profile_restore.restore(db, services, restoring, bundle)
        events = agenda_restore.restore(db, services, restoring, bundle)
    return profiles, events, restoring


def bundle_of(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in resources]}


def with_history(services: Services, actor: Actor, resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The archive's Bundle: these resources and the space's history (who added what)."""
    history = [i.resource for i in history_export.export_resources(services, actor, actor.patient_id or "")]
    return bundle_of([*resources, *history])


# ------------------------------------------------------------------ the round trip


def test_enr7_a_restored_profile_and_agenda_export_the_same_resources(demo: Services, source: Source) -> None:
    before = exported(demo, source.marie)
    kinds = {r["resourceType"] for r in before}
    assert kinds == set(profile_map.RESOURCE_TYPES) | {"Appointment"}
    sections = {
        c["code"] for r in before for c in r.get("code", {}).get("coding", []) if "profile-section" in c["system"]
    }
    assert sections == {key for key, s in SECTIONS.items() if s.fhir_type is None}  # every section without FHIR
    assert sum("MASQUE_PS" in str(r.get("meta")) for r in before) == 3
    actor, key = new_space(demo)
    profiles, events, restoring = restore_into(demo, key, actor, with_history(demo, source.marie, before))
    assert profiles + events == len(before) and events == sum(r["resourceType"] == "Appointment" for r in before)
    assert len(restoring.ids) == len(before) and set(restoring.ids) == {
        f"{r['resourceType']}/{r['id']}" for r in before
    }
    after = exported(demo, actor)
    assert normalised(after) == normalised(before)
    again_actor, again_key = new_space(demo, 1)  # once more, without the history: the same archive again
    restore_into(demo, again_key, again_actor, bundle_of(after))
    assert normalised(exported(demo, again_actor)) == normalised(before)


def test_enr7_restored_rows_keep_their_kind_dates_masks_authors_and_are_sealed_for_the_new_space(
    demo: Services, source: Source
) -> None:
    actor, key = new_space(demo)
    restore_into(demo, key, actor, with_history(demo, source.marie, exported(demo, source.marie)))
    new_space_id = actor.patient_id or ""
    with demo.db.unit_of_work() as db:
        old = {profile_row(r) for r in db.scalars(select(ProfileEntry).where(ProfileEntry.patient_id == source.space))}
        rows = list(db.scalars(select(ProfileEntry).where(ProfileEntry.patient_id == new_space_id)))
        old_events = {
            event_row(e) for e in db.scalars(select(AgendaEvent).where(AgendaEvent.patient_id == source.space))
        }
        new_events = list(db.scalars(select(AgendaEvent).where(AgendaEvent.patient_id == new_space_id)))
    assert {profile_row(r) for r in rows} == old  # source and author's name included, from the history
    assert {event_row(e) for e in new_events} == old_events
    masked = [r for r in rows if r.masked]
    assert len(masked) == 3 and all(r.source == "professional" for r in masked)
    assert {r.author_label for r in masked} == {"Dr Jean-Baptiste FERRACCI"}
    assert {(r.source, r.author_label) for r in rows if r.section == "blood_group"} == {
        ("patient", "Marie-Ange SANTONI")
    }
    follow_up = [e for e in new_events if e.source == "professional" and e.ends_at and e.all_day is False]
    assert follow_up and {e.author_label for e in follow_up} == {"Dr Jean-Baptiste FERRACCI"}
    with demo.db.unit_of_work() as db:  # what was typed is restored as typed, what was sent as sent
        ways = {}
        for space in (source.space, new_space_id):
            found = db.scalars(select(ProfileEntry).where(ProfileEntry.patient_id == space)).all()
            met = db.scalars(select(AgendaEvent).where(AgendaEvent.patient_id == space)).all()
            ways[space] = (
                sorted((v.section, v.fhir is None, v.unit_entered) for v in entries.views(demo, db, space, found)),
                sorted((v.title, v.fhir is None, v.comment) for v in events.views(demo, db, space, met)),
            )
    assert ways[new_space_id] == ways[source.space] and sum(not typed for _, typed, _ in ways[source.space][0]) == 8
    assert sum(not typed for _, typed, _ in ways[source.space][1]) == 5
    for row in rows:
        assert b"Asthme" not in row.sealed and b"Pharmacie" not in row.sealed  # sealed, not in clear
    # the portal reads the restored space as its own
    overview = profile.overview(demo, actor, new_space_id)
    assert {i.fields["label"] for s in overview.sections for i in s.items} >= {"Asthme", "Pénicilline", "HTA"}
    pressure = profile.measure_page(demo, actor, new_space_id, "blood_pressure", "tout")
    assert {tuple(p.components.values()) for p in pressure.points if p.components} >= {(142.0, 91.0), (128.0, 82.0)}
    page = agenda.agenda(demo, actor, new_space_id, "liste", NOW.astimezone(PARIS).date())
    assert page is not None


# ------------------------------------------------------------------ what cannot be restored


@pytest.mark.parametrize(
    ("resource", "words"),
    [
        (
            {"resourceType": "Observation", "id": "obs-1", "status": "final",
             "code": {"coding": [{"system": "http://loinc.org", "code": "0000-0"}]}},
            "Observation/obs-1",
        ),
        (
            {"resourceType": "Observation", "id": "obs-2", "status": "final",
             "code": {"coding": [{"system": "https://carnet.example/fhir/CodeSystem/profile-section",
                                  "code": "blood_group"}]},
             "valueCodeableConcept": {"text": "Z+"}},
            "Observation/obs-2",
        ),
        ({"resourceType": "Immunization", "id": "imm-1", "status": "not-done"}, "Immunization/imm-1"),
        ({"resourceType": "Appointment", "id": "rdv-1", "status": "booked", "participant": []}, "Appointment/rdv-1"),
    ],
)  # fmt: skip
def test_enr7_a_resource_that_cannot_be_read_is_refused_in_french_naming_it(
    demo: Services, resource: dict[str, Any], words: str
) -> None:
    actor, key = new_space(demo)
    element = {"Immunization": "patient", "Observation": "subject"}.get(resource["resourceType"])
    if element:
        resource = {**resource, element: subject("285032000460012")}
    with pytest.raises(RestoreError) as refused:
        restore_into(demo, key, actor, bundle_of([resource]))
    assert words in refused.value.message and " illisible : " in refused.value.message
    with demo.db.unit_of_work() as db:  # the unit of work rolled back: nothing kept
        assert db.scalar(select(ProfileEntry.id).where(ProfileEntry.patient_id == actor.patient_id)) is None
        assert db.scalar(select(AgendaEvent.id).where(AgendaEvent.patient_id == actor.patient_id)) is None


def test_enr7_an_archive_without_profile_or_agenda_restores_nothing(demo: Services) -> None:
    actor, key = new_space(demo)
    assert restore_into(demo, key, actor, bundle_of([{"resourceType": "Patient", "id": "x"}]))[:2] == (0, 0)


def test_enr7_without_its_history_an_archive_is_restored_by_what_its_resources_tell(
    demo: Services, source: Source
) -> None:
    actor, key = new_space(demo)
    restore_into(demo, key, actor, bundle_of(exported(demo, source.marie)))
    with demo.db.unit_of_work() as db:
        rows = list(db.scalars(select(ProfileEntry).where(ProfileEntry.patient_id == actor.patient_id)))
        new_events = list(db.scalars(select(AgendaEvent).where(AgendaEvent.patient_id == actor.patient_id)))
    masked = [r for r in rows if r.masked]
    assert len(masked) == 3 and all(r.source == "professional" for r in masked)  # only those are masked
    assert {r.author_label for r in masked} == {"Dr Jean-Baptiste FERRACCI"}
    assert {r.source for r in rows if r.section == "blood_group"} == {"patient"}
    assert {e.source for e in new_events if e.kind == "rappel"} == {"patient"}
    sent = [e for e in new_events if e.source == "professional"]
    assert len(sent) == 5 and {e.author_label for e in sent} == {"Dr Jean-Baptiste FERRACCI"}  # « donné par »


def test_enr7_the_history_words_for_an_author_are_the_history_labels() -> None:
    assert set(SOURCE_OF_KIND) == {words for kind, words in labels.ACTOR_KINDS.items() if kind != "system"} | {""}
