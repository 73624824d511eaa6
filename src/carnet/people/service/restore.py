"""The person of an imported archive (ENR-7, item 5): the space recreated for the same INS, with the traits and
contact details the archive holds, open at once (it was open where it comes from) — or refused, changing nothing,
when this instance already knows that INS.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.export.model.restoring import RestoreError, facts_of, resources_of
from carnet.hall.vocabulary import PatientStatus
from carnet.people.model import fhir_map
from carnet.people.model.identifiers import IdentifierError, parse_nir
from carnet.people.tables import Patient
from carnet.storage.types import new_id, utcnow


def recreate(db: Session, bundle: dict[str, Any]) -> Patient:
    """The archive's Patient as a new, open space of this instance; ``RestoreError`` when it cannot be."""
    people = resources_of(bundle, "Patient")
    if len(people) != 1:
        raise RestoreError("L'archive doit contenir une et une seule personne (ressource Patient).")
    try:
        fields = fhir_map.person_of(people[0])
        parse_nir(fields["ins"])
    except (ValueError, IdentifierError) as exc:
        raise RestoreError(str(exc)) from exc
    if db.scalar(select(Patient.id).where(Patient.ins == fields["ins"])) is not None:
        raise RestoreError(
            f"Un espace existe déjà pour l'INS {fields['ins']} sur cette instance : l'archive n'a pas été importée."
        )
    facts = facts_of(people[0])
    now = utcnow()
    departement = facts.get("departement")
    patient = Patient(
        id=new_id(),
        **fields,
        departement=departement if isinstance(departement, str) else None,
        status=PatientStatus.ACTIVE,
        opened_at=now,
        created_at=now,
    )
    db.add(patient)
    db.flush()
    return patient
