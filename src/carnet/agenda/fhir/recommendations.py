"""The vaccines of the prevention calendar over FHIR R4 (AGD-2): ``ImmunizationRecommendation``.

``GET /fhir/ImmunizationRecommendation?patient.identifier=<INS system>|<INS>`` (or ``patient=Patient/<id>``)
answers a searchset Bundle with one ImmunizationRecommendation for the patient — id ``prevention-<patient id>``,
computed on the day, never stored — holding one ``recommendation`` per vaccine item of the calendar that applies
to them today (none: an empty Bundle, as a recommendation needs at least one). ``GET
/fhir/ImmunizationRecommendation/prevention-<patient id>`` reads the same resource. Scopes
``system/ImmunizationRecommendation.s`` and ``.r``; the policy's ``PREVENTION_READ`` (a standing in the space,
a profession that reads the vaccinations); every error is an OperationOutcome in French.

Each recommendation: ``vaccineCode`` (text = the calendar's French label, coding = Carnet's item code in
``urn:carnet:prevention:<calendar version>``), ``forecastStatus`` (below), ``dateCriterion`` with the due date
(LOINC 30980-7 « Date vaccine due ») when the calendar gives one, ``doseNumberPositiveInt`` and
``seriesDosesPositiveInt`` for a dose of a series, ``series`` (the vaccine family), ``description`` in French.

forecastStatus (http://terminology.hl7.org/CodeSystem/immunization-recommendation-status) — Carnet's five statuses
onto the code system's due / overdue / complete (``immune`` and ``contraindicated`` are never said: Carnet does not
know them); the French status stays in ``forecastStatus.text``:

- à planifier → ``due``;  en retard → ``overdue``;  réalisé → ``complete``;
- non réalisé (the person said it was not done, or declined it) → ``overdue`` when its due date has passed,
  else ``due``: the calendar still recommends it;
- non renseigné (a seasonal vaccine between two campaigns, nothing recorded this season) → ``due``, its date the
  next campaign.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import Response

from carnet.agenda.model.prevention import STATUS_LABELS
from carnet.agenda.service import prevention
from carnet.agenda.service.prevention import Line, Recommendation
from carnet.bootstrap import Services
from carnet.fhir.auth import fhir_actor
from carnet.fhir.base import FhirResponse
from carnet.fhir.problems import Problem
from carnet.fhir.search import InputError, designation, grouped
from carnet.hall.guard import AccessDenied
from carnet.vault.service.mhd import MhdError

router = APIRouter(prefix="/fhir")

TYPE = "ImmunizationRecommendation"
STATUS_SYSTEM = "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
STATUS_DISPLAY = {"due": "Due", "overdue": "Overdue", "complete": "Complete"}
LOINC = "http://loinc.org"
DATE_DUE = {"system": LOINC, "code": "30980-7", "display": "Date vaccine due"}
SEARCH_PARAMETERS = frozenset({"patient", "patient.identifier", "_format"})
ID_PREFIX = "prevention-"
NOT_FOUND = "Aucune recommandation vaccinale trouvée."


def forecast_code(line: Line, today: Any) -> str:
    """Carnet's status as the HL7 code system's (see the module docstring)."""
    status, due = line.status.status, line.status.due
    if status == "realise":
        return "complete"
    if status == "en_retard" or (status == "non_realise" and due is not None and due < today):
        return "overdue"
    return "due"


def _description(line: Line) -> str:
    status = line.status
    text = f"{status.libelle} — {STATUS_LABELS[status.status]}"
    if status.catch_up:
        text += " (rattrapage)"
    if status.dose and status.doses:
        text += f", dose {status.dose} sur {status.doses}"
    if status.last_done:
        text += f", fait le {status.last_done:%d/%m/%Y}"
        text += " (profil médical)" if line.from_profile else " (déclaré par la personne)"
    elif line.answer is not None and line.answer.answer == "non_fait":
        text += f", déclaré non fait le {line.answer.day:%d/%m/%Y}"
    return text


def _recommendation(line: Line, found: Recommendation) -> dict[str, Any]:
    status = line.status
    code = forecast_code(line, found.today)
    item: dict[str, Any] = {
        "vaccineCode": [
            {
                "coding": [
                    {
                        "system": f"urn:carnet:prevention:{found.calendar.version}",
                        "code": status.code,
                        "display": status.libelle,
                    }
                ],
                "text": status.libelle,
            }
        ],
        "forecastStatus": {
            "coding": [{"system": STATUS_SYSTEM, "code": code, "display": STATUS_DISPLAY[code]}],
            "text": STATUS_LABELS[status.status],
        },
        "description": _description(line),
    }
    if status.due is not None:
        item["dateCriterion"] = [
            {"code": {"coding": [DATE_DUE], "text": "Date prévue"}, "value": status.due.isoformat()}
        ]
    if status.family:
        item["series"] = status.family
    if status.dose:
        item["doseNumberPositiveInt"] = status.dose
        if status.doses:
            item["seriesDosesPositiveInt"] = status.doses
    return item


def resource(found: Recommendation) -> dict[str, Any]:
    """The ImmunizationRecommendation of one patient on the day (at least one recommendation: the caller checks)."""
    subject = found.subject
    calendar = found.calendar
    return {
        "resourceType": TYPE,
        "id": f"{ID_PREFIX}{subject.id}",
        "meta": {"lastUpdated": found.generated_at.isoformat()},
        "patient": {
            "reference": f"Patient/{subject.id}",
            "identifier": {"system": f"urn:oid:{subject.ins_oid}", "value": subject.ins},
        },
        "date": found.generated_at.isoformat(),
        "authority": {"display": f"{calendar.titre} (version {calendar.version})"},
        "recommendation": [_recommendation(line, found) for line in found.lines],
    }


def _refused(denied: AccessDenied, path: str) -> Problem:
    if denied.decision.rule == "unknown_space":
        return Problem([("not-found", "Aucun espace santé ouvert pour ce patient.", path)], 404)
    return Problem([("forbidden", denied.decision.reason, path)], 403)


def _search(services: Services, request: Request) -> dict[str, Any]:
    actor = fhir_actor(request, services, f"system/{TYPE}.s")
    try:
        values = grouped(request.query_params.multi_items(), SEARCH_PARAMETERS)
        designated, path = designation(values)
    except InputError as error:
        raise Problem(list(error.issues), error.status) from None
    try:
        found = prevention.recommendation(services, actor, designated, path)
    except MhdError as error:  # not designated by INS (400), no open space (404)
        raise Problem([(code, text, path) for code, text, _ in error.issues], error.status) from None
    except AccessDenied as denied:
        raise _refused(denied, path) from None
    base = services.settings.base_url
    bundle: dict[str, Any] = {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": 1 if found.lines else 0,
        "link": [{"relation": "self", "url": f"{base}/fhir/{TYPE}?{urlencode(request.query_params.multi_items())}"}],
    }
    if found.lines:
        entry = resource(found)
        bundle["entry"] = [
            {"fullUrl": f"{base}/fhir/{TYPE}/{entry['id']}", "resource": entry, "search": {"mode": "match"}}
        ]
    return bundle


@router.get(f"/{TYPE}", name="prevention_search_recommendation")
def search(request: Request) -> Response:
    """AGD-2: the vaccines the 2025 calendar recommends to one patient, with their status and due date."""
    services: Services = request.app.state.services
    try:
        return FhirResponse(_search(services, request))
    except Problem as problem:
        return problem.response()


@router.get(f"/{TYPE}/{{resource_id}}", name="prevention_read_recommendation")
def read(request: Request, resource_id: str) -> Response:
    """AGD-2: the same resource by id; unknown, not readable, and without any vaccine are the same 404."""
    services: Services = request.app.state.services
    actor = fhir_actor(request, services, f"system/{TYPE}.r")
    not_found = Problem([("not-found", NOT_FOUND, "")], 404)
    patient_id = resource_id.removeprefix(ID_PREFIX)
    well_formed = patient_id.isascii() and patient_id.replace("-", "").isalnum() and len(patient_id) <= 40
    if not resource_id.startswith(ID_PREFIX) or not well_formed:
        return not_found.response()
    try:
        found = prevention.recommendation_of(services, actor, patient_id)
    except (MhdError, AccessDenied):
        return not_found.response()
    if not found.lines:
        return not_found.response()
    return FhirResponse(resource(found))
