"""The professional's side of access over FHIR R4 (ACC-1, ACC-2): the "TD0.2" check and Consent.

``GET /fhir/Patient?identifier=urn:oid:1.2.250.1.213.1.4.8|<INS>`` is Carnet's counterpart of the DMP
transaction TD0.2 of the ANS guide (« test d'existence du DMP et vérification de l'autorisation »): the
professional's software learns whether an open space exists for this INS and whether its user may read
it — and why not. The patient (INS identity traits) comes back only to those allowed, with Carnet
extensions giving the access status and whether the caller is the médecin traitant; anyone else gets an
empty searchset whose OperationOutcome says, in French, why and what they can do — never a trait.

``POST /fhir/Consent`` records the patient's consent collected by the professional (origin « fhir »);
``GET /fhir/Consent/{id}`` and ``GET /fhir/Consent?patient.identifier=…`` give the professional their
consents back, « inactive » once the patient withdrew them (the reading is in the patient's history).

Each route authenticates the caller with the SMART v2 scope it needs (``carnet.fhir.auth.fhir_actor``),
parses the request, calls one use case of ``carnet.access.service.consents`` and turns the plain views it
returns into FHIR resources. Who may do what is decided by the policy, through the service and the hall; a
refusal's rule is worded here.
Extension and code system URLs: docs/api.md, « Accès : TD0.2 et Consent ».
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from fhir.resources.R4B.bundle import Bundle as BundleModel
from fhir.resources.R4B.consent import Consent as ConsentModel
from fhir.resources.R4B.patient import Patient as PatientModel
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from carnet.access.service import consents
from carnet.access.service.consents import ConsentView
from carnet.access.service.grants import Status
from carnet.bootstrap import Services
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.body import load_object, read_bounded
from carnet.fhir.problems import PYDANTIC_FR, Issue, Problem
from carnet.fhir.search import is_fhir_id
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied
from carnet.people.model.identifiers import INS_NIR_OID, INS_NIR_TEST_OID, IdentifierError, parse_nir

router = APIRouter(prefix="/fhir")

BASE = "https://carnet.example/fhir"
EXT_ACCESS_STATUS = f"{BASE}/StructureDefinition/access-status"  # valueCode, see ACCESS_STATUSES
EXT_EMERGENCY_UNTIL = f"{BASE}/StructureDefinition/access-emergency-until"  # valueDateTime
EXT_MEDECIN_TRAITANT = f"{BASE}/StructureDefinition/medecin-traitant"  # valueBoolean: is the caller the MT
EXT_CONSENT_ORIGIN = f"{BASE}/StructureDefinition/consent-origin"  # valueCode: patient | oral | fhir
EXT_CONSENT_ROLE = f"{BASE}/StructureDefinition/consent-role"  # valueCode: reader | administrator | medecin-traitant
OUTCOME_SYSTEM = f"{BASE}/CodeSystem/access-outcome"  # why a TD0.2 look-up found nobody
ACCESS_STATUSES = ("authorised", "administrator", "medecin-traitant", "emergency")

INS_PARAMETER = "urn:oid:1.2.250.1.213.1.4.8|<INS>"
INS_SYSTEMS = {f"urn:oid:{INS_NIR_OID}", f"urn:oid:{INS_NIR_TEST_OID}"}
FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
IDNPS_SYSTEM = "urn:oid:1.2.250.1.71.4.2.1"  # identifiant national des professionnels de santé: « 8 » + RPPS
RPPS_SYSTEM = "https://rpps.esante.gouv.fr"
CONSENT_SCOPE = ("http://terminology.hl7.org/CodeSystem/consentscope", "patient-privacy")
LOINC = "http://loinc.org"
CONSENT_CATEGORIES = {  # what a patient-privacy consent is filed as (R4 examples and the ACT vocabulary)
    (LOINC, "59284-0"),  # Patient Consent
    (LOINC, "57016-8"),  # Privacy policy acknowledgment Document
    (LOINC, "64292-6"),  # Release of information consent
    ("http://terminology.hl7.org/CodeSystem/v3-ActCode", "INFA"),  # information access
}
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
MAX_BODY = 256 * 1024
FR_ERRORS = {
    **PYDANTIC_FR,
    "string_pattern_mismatch": "format invalide",
    "value_error": "valeur invalide",
    "literal_error": "valeur non permise",
    "date_from_datetime_parsing": "date invalide",
    "datetime_from_date_parsing": "date et heure invalides",
    "model_type": "doit être un objet",
    "json_invalid": "doit être un objet",
    "model_attributes_type": "doit être un objet",
}
ROLE_CODES = {"reader": "reader", "administrator": "administrator", "medecin_traitant": "medecin-traitant"}
NO_SPACE = (
    "Aucun espace santé ouvert n'existe pour cet INS : vérifiez le matricule (INSi), ou la personne a fermé son espace."
)


def _search_problem(text: str, path: str) -> Problem:
    return Problem([("invalid", text, path)])


def _only(params: Any, allowed: set[str]) -> None:
    unknown = set(params) - allowed
    if unknown:
        name = sorted(unknown)[0][:40]
        raise Problem([("not-supported", f"Paramètre de recherche non pris en charge : {name}.", name)])


def _ins_of(system: str | None, value: str | None, path: str) -> str:
    """The 15-character INS of ``system|value``; ``Problem`` (400, French) otherwise."""
    if system not in INS_SYSTEMS:
        raise _search_problem(
            f"Le patient doit être désigné par son matricule INS : {path}={INS_PARAMETER} "
            "(OID du NIR, ou 1.2.250.1.213.1.4.10 pour les INS de test).",
            path,
        )
    try:
        return parse_nir(value or "").value
    except IdentifierError as exc:
        raise _search_problem(f"Matricule INS invalide — {exc.message}", path) from exc


def _ins_parameter(params: Any, name: str) -> str:
    values = params.getlist(name)
    if len(values) != 1:
        raise _search_problem(
            f"Le paramètre {name}={INS_PARAMETER} est obligatoire, une seule fois."
            if not values
            else f"Un seul paramètre {name} est accepté.",
            name,
        )
    system, bar, value = values[0].partition("|")
    return _ins_of(system if bar else None, value, name)


def _outcome(severity: str, code: str, reason: str, text: str, path: str | None = None) -> dict[str, Any]:
    issue: dict[str, Any] = {
        "severity": severity,
        "code": code,
        "details": {"coding": [{"system": OUTCOME_SYSTEM, "code": reason}]},
        "diagnostics": text,
    }
    if path:
        issue["expression"] = [path]
    return {"resourceType": "OperationOutcome", "issue": [issue]}


def _searchset(
    request: Request, matches: list[dict[str, Any]], outcome: dict[str, Any] | None = None
) -> dict[str, Any]:
    entries = [{**m, "search": {"mode": "match"}} for m in matches]
    if outcome is not None:
        entries.append({"resource": outcome, "search": {"mode": "outcome"}})
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(matches),
        "link": [{"relation": "self", "url": str(request.url)}],
    }
    if entries:
        bundle["entry"] = entries
    BundleModel.model_validate(bundle)
    return bundle


# ---------------------------------------------------------------------------------------------- TD0.2


def _access_code(status: Status) -> str:
    if status.medecin_traitant:
        return "medecin-traitant"
    if status.administrator:
        return "administrator"
    if status.emergency_until is not None:
        return "emergency"
    return "authorised"


def patient_resource(status: Status, base_url: str) -> dict[str, Any]:
    """The INS identity (FR Core INS slice) with the caller's access status in Carnet extensions."""
    patient = status.patient
    extensions: list[dict[str, Any]] = [
        {"url": EXT_ACCESS_STATUS, "valueCode": _access_code(status)},
        {"url": EXT_MEDECIN_TRAITANT, "valueBoolean": status.medecin_traitant},
    ]
    if status.emergency_until is not None:
        extensions.append({"url": EXT_EMERGENCY_UNTIL, "valueDateTime": status.emergency_until.isoformat()})
    names: list[dict[str, Any]] = [
        {"use": "official", "family": patient.birth_name, "given": patient.first_names.split()}
    ]
    if patient.used_name and patient.used_name != patient.birth_name:
        names.append({"use": "usual", "family": patient.used_name})
    test = patient.ins_oid == INS_NIR_TEST_OID
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": patient.id,
        "extension": extensions,
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": FR_CORE_V2_0203, "code": "INS-NIR-TEST" if test else "INS-NIR"}]},
                "system": f"urn:oid:{patient.ins_oid}",
                "value": patient.ins,
            }
        ],
        "active": True,
        "name": names,
        "gender": {"F": "female", "M": "male"}.get(patient.sex, "unknown"),
        "birthDate": patient.birth_date.isoformat(),
    }
    PatientModel.model_validate(resource)
    return resource


def refusal(why: str, status: Status) -> tuple[str, str]:
    """(code, French diagnostics) for a caller who may not read (``why``, as the service found it): why, and
    what they can do."""
    deposit = "Vous pouvez toujours y déposer des documents."
    if why == "establishment":
        return (
            "establishment",
            "Un établissement ne consulte pas l'espace santé d'une personne : seul un professionnel de santé "
            "identifié par son RPPS, et autorisé par elle, le peut (client créé avec --rpps). " + deposit,
        )
    if why == "blocked":
        return (
            "blocked",
            "La personne vous a bloqué : vous ne pouvez plus consulter son espace santé, même en urgence. "
            "Seule elle peut lever ce blocage et vous autoriser à nouveau, depuis la rubrique « Accès » de son "
            "espace. " + deposit,
        )
    emergency = (
        "En cas d'urgence, l'accès en mode bris de glace reste possible depuis votre espace professionnel "
        "Carnet (motif obligatoire, 2 heures, la personne et son médecin traitant en sont informés)."
        if status.emergency_possible
        else "La personne a refusé l'accès en urgence à son espace santé."
    )
    return (
        "no-consent",
        "La personne ne vous a pas autorisé à consulter son espace santé. Pour y accéder, recueillez son "
        "consentement et enregistrez-le (POST /fhir/Consent depuis votre logiciel, ou « consentement oral » "
        "dans votre espace professionnel Carnet), ou demandez-lui de vous autoriser depuis la rubrique « Accès » "
        f"de son espace. {emergency} {deposit}",
    )


def _look_up_bundle(request: Request, services: Services, found: consents.LookUp) -> dict[str, Any]:
    status = found.status
    if status is None:
        return _searchset(request, [], _outcome("information", "not-found", "unknown-space", NO_SPACE, "identifier"))
    if not status.allowed:
        code, text = refusal(found.refusal, status)
        return _searchset(request, [], _outcome("warning", "forbidden", code, text))
    base = services.settings.base_url
    entry = {"fullUrl": f"{base}/fhir/Patient/{status.patient.id}", "resource": patient_resource(status, base)}
    return _searchset(request, [entry])


@router.get("/Patient")
def find_patient(request: Request) -> Response:
    """TD0.2: does an open space exist for this INS, may the caller read it, are they the médecin traitant."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, "system/Patient.s")
    try:
        _only(request.query_params, {"identifier", "_format", "_count"})
        ins = _ins_parameter(request.query_params, "identifier")
        count = _count(request.query_params)
    except Problem as problem:
        return problem.response()
    found = _look_up_bundle(request, services, consents.find_space(services, actor, ins))
    if count == 0:  # _count=0: the total only (the outcome, if any, stays: it is no match)
        kept = [e for e in found.pop("entry", []) if e["search"]["mode"] != "match"]
        if kept:
            found["entry"] = kept
    return FhirResponse(found)


def _count(params: Any) -> int | None:
    """``_count`` (one match at most: any integer from 0 is accepted, as FHIR clients send it by default)."""
    values = params.getlist("_count")
    if not values:
        return None
    if len(values) > 1 or not re.fullmatch(r"\d{1,7}", values[0]):
        raise _search_problem("Le paramètre _count est un entier positif, donné une fois.", "_count")
    return int(values[0])


@router.get("/Patient/{patient_id}")
def read_patient(request: Request, patient_id: str) -> Response:
    """The ``fullUrl`` of a TD0.2 match: the same patient, to those allowed only (404 to anyone else)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, "system/Patient.r")
    status = consents.space_status(services, actor, patient_id) if is_fhir_id(patient_id) else None
    if status is None:
        return Problem([("not-found", "Ce patient n'existe pas ou ne vous est pas accessible.", "")], 404).response()
    return FhirResponse(patient_resource(status, services.settings.base_url))


# --------------------------------------------------------------------------------------------- Consent


def consent_resource(consent: ConsentView) -> dict[str, Any]:
    """A stored authorisation as an R4B Consent: « active » until the patient withdraws it."""
    period: dict[str, str] = {"start": consent.granted_at.isoformat()}
    if consent.revoked_at is not None:
        period["end"] = consent.revoked_at.isoformat()
    patient = {"system": f"urn:oid:{consent.patient_ins_oid}", "value": consent.patient_ins}
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": consent.id,
        "meta": {"lastUpdated": (consent.revoked_at or consent.granted_at).isoformat()},
        "extension": [
            {"url": EXT_CONSENT_ORIGIN, "valueCode": consent.origin},
            {"url": EXT_CONSENT_ROLE, "valueCode": ROLE_CODES.get(consent.role, consent.role)},
        ],
        "status": "active" if consent.revoked_at is None else "inactive",
        "scope": {"coding": [{"system": CONSENT_SCOPE[0], "code": CONSENT_SCOPE[1]}]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"identifier": patient},
        "dateTime": consent.granted_at.isoformat(),
        "performer": [{"identifier": patient}],
        "policyRule": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "OPTIN"}]},
        "provision": {
            "type": "permit",
            "period": period,
            "actor": [
                {
                    "role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]},
                    "reference": {
                        "identifier": {"system": IDNPS_SYSTEM, "value": f"8{consent.professional_rpps}"},
                        **({"display": consent.professional_name} if consent.professional_name else {}),
                    },
                }
            ],
        },
    }
    ConsentModel.model_validate(resource)
    return resource


@dataclass(frozen=True)
class ConsentRequest:
    ins: str
    rpps: str
    rpps_path: str


def _path(loc: tuple[Any, ...]) -> str:
    out = "Consent"
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _codings(concept: Any) -> list[dict[str, Any]]:
    codings = concept.get("coding") if isinstance(concept, dict) else None
    return [c for c in codings or [] if isinstance(c, dict)]


def _rpps_of(identifier: Any, path: str) -> str | None:
    """The RPPS in an identifier of the professional (IdNatPs « 8 » + RPPS, or the bare RPPS), or None."""
    if not isinstance(identifier, dict) or identifier.get("system") not in {IDNPS_SYSTEM, RPPS_SYSTEM}:
        return None
    value = str(identifier.get("value") or "").strip()
    if identifier["system"] == IDNPS_SYSTEM and re.fullmatch(r"8\d{11}", value):
        return value[1:]
    if re.fullmatch(r"\d{11}", value):
        return value
    raise Problem(
        [
            (
                "invalid",
                "Identifiant du professionnel invalide : « 8 » suivi des 11 chiffres du RPPS "
                f"({IDNPS_SYSTEM}), ou le RPPS seul (11 chiffres).",
                f"{path}.value",
            )
        ]
    )


def _check_model(raw: dict[str, Any]) -> None:
    """The Consent as FHIR R4B (fhir.resources): ``Problem`` with the faulty elements, in French."""
    if raw.get("resourceType") != "Consent":
        raise Problem([("invalid", "La ressource envoyée doit être un Consent (resourceType).", "resourceType")])
    try:
        ConsentModel.model_validate(raw)
    except (ValidationError, ValueError, TypeError, LookupError, RecursionError) as exc:  # a contained resourceType
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        raise Problem(
            [
                (
                    "structure",
                    f"{_path(tuple(err['loc']))} : {FR_ERRORS.get(err['type'], 'valeur invalide')}.",
                    _path(tuple(err["loc"])),
                )
                for err in errors[:20]
            ]
            or [("structure", "Le Consent n'est pas une ressource FHIR R4 valide.", "Consent")]
        ) from exc


def _kind_issues(raw: dict[str, Any]) -> list[Issue]:
    """An active patient-privacy consent, filed as one: status, scope, category."""
    issues: list[Issue] = []
    status = raw.get("status")
    if status != "active":
        issues.append(
            (
                "value",
                f"Le consentement doit avoir le statut « active » (reçu : « {str(status)[:20]} ») : un brouillon ou "
                "un refus ne s'enregistre pas.",
                "Consent.status",
            )
        )
    if not any((c.get("system"), c.get("code")) == CONSENT_SCOPE for c in _codings(raw.get("scope"))):
        issues.append(
            (
                "code-invalid",
                f"La portée (scope) doit être {CONSENT_SCOPE[1]} ({CONSENT_SCOPE[0]}).",
                "Consent.scope",
            )
        )
    categories = {(c.get("system"), c.get("code")) for cat in raw.get("category") or [] for c in _codings(cat)}
    if not categories & CONSENT_CATEGORIES:
        issues.append(
            (
                "code-invalid",
                "La catégorie (category) doit être LOINC 59284-0 « Patient Consent » (ou 57016-8, 64292-6, "
                "v3-ActCode INFA).",
                "Consent.category",
            )
        )
    return issues


def _patient_ins(raw: dict[str, Any], issues: list[Issue]) -> str:
    """The INS of ``Consent.patient`` (an identifier, or a conditional reference); issues are added."""
    patient = _dict(raw.get("patient"))
    identifier = _dict(patient.get("identifier"))
    match = re.fullmatch(r"Patient\?identifier=([^|]+)\|(.+)", str(patient.get("reference") or ""))
    system, value = match.groups() if match else (identifier.get("system"), identifier.get("value"))
    if not patient:
        issues.append(
            (
                "required",
                "Le patient est obligatoire : patient.identifier (system urn:oid:1.2.250.1.213.1.4.8, valeur l'INS).",
                "Consent.patient",
            )
        )
        return ""
    try:
        return _ins_of(system, value, "patient.identifier")
    except Problem as problem:
        issues += [(code, text, "Consent.patient.identifier") for code, text, _ in problem.issues]
        return ""


def _candidates(raw: dict[str, Any], provision: dict[str, Any], issues: list[Issue]) -> list[tuple[str, str]]:
    """The RPPS the Consent names (provision.actor, performer), each with its path; issues are added."""
    named: list[tuple[Any, str]] = []
    for index, item in enumerate(provision.get("actor") or []):
        reference = _dict(_dict(item).get("reference"))
        named.append((reference.get("identifier"), f"Consent.provision.actor[{index}].reference.identifier"))
    for index, item in enumerate(raw.get("performer") or []):
        named.append((_dict(item).get("identifier"), f"Consent.performer[{index}].identifier"))
    candidates: list[tuple[str, str]] = []
    for identifier, path in named:
        try:
            found = _rpps_of(identifier, path)
        except Problem as problem:
            issues += problem.issues
            continue
        if found:
            candidates.append((found, path))
    return candidates


def _professional_issues(raw: dict[str, Any], issues: list[Issue]) -> list[tuple[str, str]]:
    """A permit naming one professional, by their RPPS; issues are added."""
    provision = _dict(raw.get("provision"))
    if provision.get("type") != "permit":
        issues.append(
            (
                "value",
                "Seule une autorisation s'enregistre ici : provision.type doit être « permit ». Pour retirer son "
                "consentement, la personne le fait depuis la rubrique « Accès » de son espace.",
                "Consent.provision.type" if provision else "Consent.provision",
            )
        )
    candidates = _candidates(raw, provision, issues)
    if not candidates and not any(
        path.startswith(("Consent.provision.actor", "Consent.performer")) for _, _, path in issues
    ):
        issues.append(
            (
                "required",
                "Le professionnel autorisé doit être désigné par son RPPS : provision.actor.reference.identifier "
                f"(system {IDNPS_SYSTEM}, valeur « 8 » + RPPS).",
                "Consent.provision.actor",
            )
        )
    if len({rpps for rpps, _ in candidates}) > 1:
        issues.append(
            (
                "business-rule",
                "Un consentement enregistré par un professionnel ne peut autoriser que lui-même : un seul RPPS.",
                candidates[1][1],
            )
        )
    return candidates


def parse_consent(raw: dict[str, Any]) -> ConsentRequest:
    """Check an incoming Consent as FHIR (fhir.resources R4B), then as what Carnet records; ``Problem``
    lists every issue, each with the faulty element."""
    _check_model(raw)
    issues = _kind_issues(raw)
    ins = _patient_ins(raw, issues)
    candidates = _professional_issues(raw, issues)
    if issues:
        raise Problem(issues)
    return ConsentRequest(ins, candidates[0][0], candidates[0][1])


PROFESSIONALS_ONLY = (
    "Seul un professionnel de santé identifié par son RPPS (client créé avec --rpps) enregistre ou lit des "
    "consentements ; un établissement ne le peut pas."
)
NOT_FOR_ONESELF = (
    "Vous ne pouvez enregistrer un consentement que pour vous-même : le RPPS du professionnel autorisé n'est pas "
    "celui de votre logiciel."
)


def _refused(denied: AccessDenied, path: str) -> Problem:
    """The policy's refusal of a consent, worded for the professional's software."""
    rule = denied.decision.rule
    if rule == "unknown_space":
        return Problem([("not-found", NO_SPACE, "Consent.patient.identifier")], 404)
    if rule == "professionals_only":
        return Problem([("forbidden", PROFESSIONALS_ONLY, path)], 403)
    if rule == "consent_not_own":
        return Problem([("forbidden", NOT_FOR_ONESELF, path)], 403)
    return Problem([("forbidden", denied.decision.reason, path)], 403)


@router.post("/Consent")
async def create_consent(request: Request) -> Response:
    """ACC-1: the professional's software records the patient's consent to their reading the space."""
    services: Services = request.app.state.services
    actor = await run_in_threadpool(fhir_actor, request, services, "system/Consent.c")  # the token before the body
    try:
        raw = await read_bounded(request, MAX_BODY, "Le Consent dépasse 256 Ko.")
        return await run_in_threadpool(_create_consent, services, actor, raw)
    except Problem as problem:
        return problem.response()


def _create_consent(services: Services, actor: Actor, raw: bytes) -> Response:
    asked = parse_consent(load_object(raw, "Consent"))
    try:
        recorded = consents.record_fhir_consent(services, actor, asked.ins, asked.rpps)
    except AccessDenied as denied:
        raise _refused(denied, asked.rpps_path) from denied
    location = f"{services.settings.base_url}/fhir/Consent/{recorded.consent.id}"
    body = consent_resource(recorded.consent)
    return FhirResponse(body, status_code=201 if recorded.created else 200, headers={"Location": location})


@router.get("/Consent/{consent_id}")
def read_consent(request: Request, consent_id: str) -> Response:
    """A consent, to the professional it authorises only (404 to anyone else, without saying whether it exists)."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, "system/Consent.r")
    consent = consents.read_consent(services, actor, consent_id) if is_fhir_id(consent_id) else None
    if consent is None:
        return Problem([("not-found", "Ce consentement n'existe pas ou ne vous concerne pas.", "")], 404).response()
    return FhirResponse(consent_resource(consent))


@router.get("/Consent")
def search_consents(request: Request) -> Response:
    """The caller's consents for one patient, newest first (``status=active|inactive`` to filter)."""
    services: Services = request.app.state.services
    params = request.query_params
    actor = fhir_actor(request, services, "system/Consent.s")
    try:
        _only(params, {"patient.identifier", "status", "_format"})
        ins = _ins_parameter(params, "patient.identifier")
        wanted = params.get("status")
        if wanted not in {None, "active", "inactive"}:
            raise _search_problem("Le paramètre status vaut active ou inactive.", "status")
        try:
            found = consents.search_consents(services, actor, ins, wanted)
        except AccessDenied as denied:
            raise _refused(denied, "patient.identifier") from denied
    except Problem as problem:
        return problem.response()
    if not found.space_found:
        outcome = _outcome("information", "not-found", "unknown-space", NO_SPACE, "patient.identifier")
        return FhirResponse(_searchset(request, [], outcome))
    base = services.settings.base_url
    entries = [{"fullUrl": f"{base}/fhir/Consent/{c.id}", "resource": consent_resource(c)} for c in found.consents]
    return FhirResponse(_searchset(request, entries))
