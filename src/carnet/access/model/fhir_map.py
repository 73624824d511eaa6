"""Who may read a space (ACC-1..4) as FHIR R4 ``Consent`` resources — pure; the export of a space tells them so.

Every Consent has R4's ``scope`` patient-privacy, the LOINC category « Patient Consent » (59284-0), the patient
(the Bundle's Patient and the INS), ``dateTime`` (when it was given, or happened) and a ``provision`` (permit or
deny, its ``period``, its ``actor``: the professional — the IDNPS identifier, « 8 » + RPPS, and their name — or
the care team, as a display reference, in the role PRCP, the one who receives the information). ``status`` is
``active`` while it holds, ``inactive`` once withdrawn, lifted or over.

* an authorisation (``consent_of_grant``): permit; the role (reader, administrator, médecin traitant) and how it was
  given (by the person, orally to the professional, by the professional's software) in the same extensions as
  ``GET /fhir/Consent`` (``EXT_CONSENT_ROLE``, ``EXT_CONSENT_ORIGIN``); policy rule OPTIN;
* a block (``consent_of_block``): deny, from the block to its lifting; policy rule OPTOUT;
* an emergency access (``consent_of_emergency``): permit for the purpose ETREAT (emergency treatment), for its two
  hours; the kind (bris de glace, SAMU) and the reason given in ``EXT_EMERGENCY_KIND`` / ``EXT_EMERGENCY_REASON``;
  it is not the person's consent but what the service allowed in their place, which the policy rule's text says;
* the person's three emergency choices (``consent_of_choice``): permit or deny for the purpose ETREAT, the choice
  in the policy rule's text (SAMU regulator; other professionals; masked documents in an emergency).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from carnet.fhir.search import instant

BASE = "https://carnet.example/fhir"
EXT_CONSENT_ORIGIN = f"{BASE}/StructureDefinition/consent-origin"  # valueCode: patient | oral | fhir
EXT_CONSENT_ROLE = f"{BASE}/StructureDefinition/consent-role"  # valueCode: reader | administrator | medecin-traitant
EXT_EMERGENCY_KIND = f"{BASE}/StructureDefinition/emergency-kind"  # valueCode: bris_de_glace | samu
EXT_EMERGENCY_REASON = f"{BASE}/StructureDefinition/emergency-reason"  # valueString: the reason given
CONSENT_SCOPE = {"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}
PATIENT_CONSENT = {"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # identifiant national des professionnels de santé: « 8 » + RPPS
ROLE_CODES = {"reader": "reader", "administrator": "administrator", "medecin_traitant": "medecin-traitant"}
EMERGENCY_PURPOSE = {"system": ACT_REASON, "code": "ETREAT", "display": "Emergency Treatment"}
EMERGENCY_RULE = (
    "Accès en urgence (ACC-4) : ouvert par un professionnel pour deux heures, avec un motif, sans le consentement "
    "de la personne, tant que ses choix pour les urgences le permettent."
)


@dataclass(frozen=True)
class Grantee:
    """Who a consent is about: a professional of the directory (``rpps``), or a care team (``rpps`` empty)."""

    label: str
    rpps: str = ""

    def reference(self) -> dict[str, Any]:
        if self.rpps:
            return {
                "type": "Practitioner",
                "identifier": {"system": IDNPS_SYSTEM, "value": f"8{self.rpps}"},
                "display": self.label,
            }
        return {"type": "CareTeam", "display": self.label}


def _period(start: datetime, end: datetime | None) -> dict[str, str]:
    return {"start": instant(start), **({"end": instant(end)} if end is not None else {})}


def _consent(
    consent_id: str,
    active: bool,
    at: datetime | None,
    patient: Mapping[str, Any],
    provision: dict[str, Any],
    rule: dict[str, Any],
    extensions: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent_id,
        "status": "active" if active else "inactive",
        "scope": {"coding": [dict(CONSENT_SCOPE)]},
        "category": [{"coding": [dict(PATIENT_CONSENT)]}],
        "patient": dict(patient),
        **({"dateTime": instant(at)} if at is not None else {}),
        "policyRule": rule,
        "provision": provision,
    }
    if extensions:
        resource["extension"] = extensions
    return resource


def _actor(who: Grantee) -> list[dict[str, Any]]:
    return [{"role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]}, "reference": who.reference()}]


def consent_of_grant(
    grant_id: str,
    role: str,
    origin: str,
    granted_at: datetime,
    revoked_at: datetime | None,
    who: Grantee,
    patient: Mapping[str, Any],
) -> dict[str, Any]:
    """An authorisation of a professional or a care team (ACC-1), or the médecin traitant / administrator (ACC-2)."""
    provision = {"type": "permit", "period": _period(granted_at, revoked_at), "actor": _actor(who)}
    extensions = [
        {"url": EXT_CONSENT_ORIGIN, "valueCode": origin},
        {"url": EXT_CONSENT_ROLE, "valueCode": ROLE_CODES.get(role, role)},
    ]
    rule = {"coding": [{"system": ACT_CODE, "code": "OPTIN"}]}
    return _consent(grant_id, revoked_at is None, granted_at, patient, provision, rule, extensions)


def consent_of_block(
    block_id: str, blocked_at: datetime, lifted_at: datetime | None, who: Grantee, patient: Mapping[str, Any]
) -> dict[str, Any]:
    """A professional the person blocked (ACC-3): nothing to read, from the block until it was lifted."""
    provision = {"type": "deny", "period": _period(blocked_at, lifted_at), "actor": _actor(who)}
    rule = {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]}
    return _consent(block_id, lifted_at is None, blocked_at, patient, provision, rule)


def consent_of_emergency(
    access_id: str,
    kind: str,
    reason: str,
    started_at: datetime,
    expires_at: datetime,
    now: datetime,
    who: Grantee,
    patient: Mapping[str, Any],
) -> dict[str, Any]:
    """An emergency access (ACC-4): for its two hours, for emergency treatment, with the reason given."""
    provision = {
        "type": "permit",
        "period": _period(started_at, expires_at),
        "actor": _actor(who),
        "purpose": [dict(EMERGENCY_PURPOSE)],
    }
    extensions = [
        {"url": EXT_EMERGENCY_KIND, "valueCode": kind},
        {"url": EXT_EMERGENCY_REASON, "valueString": reason},
    ]
    return _consent(access_id, expires_at > now, started_at, patient, provision, {"text": EMERGENCY_RULE}, extensions)


def consent_of_choice(consent_id: str, allowed: bool, choice: str, patient: Mapping[str, Any]) -> dict[str, Any]:
    """One of the person's choices for emergencies (ACC-4), as it stands (Carnet does not keep since when):
    ``choice`` says which, in French."""
    provision = {"type": "permit" if allowed else "deny", "purpose": [dict(EMERGENCY_PURPOSE)]}
    return _consent(consent_id, True, None, patient, provision, {"text": choice})
