"""The words of the history (TRC-2) for the actions access records since issue #9, to be merged into
``carnet.history.labels`` (same shape: action → (what was done, what was attempted when refused — a feminine
noun, after « une »)).

* ``consent.read``: a professional's software read back the consents that authorise them (``GET
  /fhir/Consent/{id}``, ``GET /fhir/Consent?patient.identifier=…``), or was refused;
* ``care_team.manage`` and ``directory.manage``: the policy's actions for the operators' work on the care
  teams and the directory (only refusals are recorded under these names; what was done is recorded as
  ``care_team.create``, ``directory.import``…, which already have their words).
"""

from __future__ import annotations

from typing import Final

ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "consent.read": (
        "a consulté les consentements qui l'autorisent à accéder à l'espace santé",
        "consultation des consentements",
    ),
    "care_team.manage": ("a modifié une équipe de soins", "modification d'une équipe de soins"),
    "directory.manage": ("a modifié l'annuaire des professionnels", "modification de l'annuaire"),
}
KIND_ACTIONS: Final[dict[str, set[str]]] = {  # the history's filter « Consultations » lists the reading
    "consultations": {"consent.read"},
}
