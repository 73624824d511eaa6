"""The person in the archive of their space (ENR-7): one ``Patient`` — the INS and its traits, contact details and
address as the space holds them — first in the Bundle, since every other resource names it (``Patient/<id>``).

``enter_export`` is the door every capability's ``export`` module goes through, in the unit of work where it reads:
the policy's ``SPACE_EXPORT`` first (the person, or a legal representative of a minor — never a caregiver, a
professional or anyone else: ``AccessDenied``, the refusal in the history), then the reading action the
capability's own pages ask, whose decision (and its scope) the module applies to its query — so that the archive
holds exactly what the asker may read there. Allowed decisions record nothing: the export records its own lines.
"""

from __future__ import annotations

from collections.abc import Iterator

from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.export.model.exported import Exported
from carnet.export.model.restoring import facts_extension
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Decision, Resource
from carnet.people.model import fhir_map
from carnet.people.model.identifiers import display_name
from carnet.people.tables import Patient

SECTION = "Identité"
EXPORT = Resource("export")


def enter_export(db: Session, actor: Actor, patient_id: str, action: Action, resource: Resource) -> Decision:
    """The policy's yes to exporting the space, then its decision on ``action`` (``AccessDenied`` otherwise)."""
    guard(db, actor, patient_id, Action.SPACE_EXPORT, EXPORT)
    return guard(db, actor, patient_id, action, resource)


def _summary(patient: Patient) -> str:
    born = "née" if patient.sex == "F" else "né"
    name = display_name(patient.first_names, patient.birth_name, patient.used_name)
    return f"{name}, {born} le {patient.birth_date:%d/%m/%Y} — INS {patient.ins}"


def export_resources(services: Services, actor: Actor, patient_id: str) -> Iterator[Exported]:
    """The space's person as an R4 Patient (``carnet.people.model.fhir_map``)."""
    with services.db.unit_of_work() as db:
        enter_export(db, actor, patient_id, Action.SPACE_VIEW, Resource("space"))
        patient = db.get(Patient, patient_id)
        assert patient is not None  # the policy refuses unknown spaces
        resource = fhir_map.patient_resource(patient)
        facts = {"departement": patient.departement, "opened_at": patient.opened_at, "created_at": patient.created_at}
        resource.setdefault("extension", []).append(facts_extension(facts))
        item = Exported(resource, summary=_summary(patient), section=SECTION)
    yield item
