"""The usual shape of an ITI-65 bundle, recognised without building the FHIR models — pure (issue #14).

Validating a bundle with the fhir.resources R4B models builds some thirty pydantic models; on the deposit's path it
was about a tenth of a server process's time. ``plainly_valid`` walks the bundle once instead, against the elements
an MHD deposit uses (the IHE MHD and ANS PDSm profiles: SubmissionSet ``List``, ``DocumentReference`` with its
``contained`` author, patient and organisation, ``Binary``), and answers **True only when every element is one it
knows and every value is well formed** — by rules at least as strict as the models' (a string without leading or
trailing space, a date that exists, an integer that is not a boolean…). Anything else — an element it does not know,
a ``null``, an empty object, a primitive's ``_extension``, a narrative, a value it is not sure of — answers False, and
the caller validates with the models, which accept or name every fault. So the models still decide every bundle this
module does not recognise, and a bundle it recognises is one they accept (``tests/vault/test_mhd_shape.py`` checks
this on the bundles of the tests and on many variations of them).

The payload of a ``Binary`` (``data``) must be a string here: the vault decodes it strictly, as it does after the
models' validation (which is given a stand-in for it).
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Callable
from datetime import date
from typing import Any

# ------------------------------------------------------------------ primitives (FHIR R4 §2.24.0.1), narrowed

_STRING = re.compile(r"[ \r\n\t\S]+")  # Python's \S is narrower than the models' (Rust's): never looser
_CODE = re.compile(r"[^\s]+( [^\s]+)*")
_URI = re.compile(r"\S+")
_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")
_DATE = re.compile(r"([1-9][0-9]{3})(?:-(0[1-9]|1[0-2])(?:-([0-3][0-9]))?)?")
_DATE_TIME = re.compile(
    r"([1-9][0-9]{3})(?:-(0[1-9]|1[0-2])(?:-([0-3][0-9])"
    r"(T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?(Z|[+-](0[0-9]|1[0-3]):[0-5][0-9]))?)?)?"
)
_INT_MAX = 2**31 - 1


def _string(value: Any) -> bool:
    return type(value) is str and value.strip() == value and _STRING.fullmatch(value) is not None


def _code(value: Any) -> bool:
    return type(value) is str and _CODE.fullmatch(value) is not None


def _uri(value: Any) -> bool:
    return type(value) is str and _URI.fullmatch(value) is not None


def _id(value: Any) -> bool:
    return type(value) is str and _ID.fullmatch(value) is not None


def _exists(year: str, month: str | None, day: str | None) -> bool:
    if day is None:
        return True
    try:
        date(int(year), int(month or 1), int(day))
    except ValueError:
        return False
    return True


def _date(value: Any) -> bool:
    match = _DATE.fullmatch(value) if type(value) is str else None
    return match is not None and _exists(*match.groups())


def _date_time(value: Any) -> bool:
    match = _DATE_TIME.fullmatch(value) if type(value) is str else None
    return match is not None and _exists(*match.groups()[:3])


def _instant(value: Any) -> bool:
    match = _DATE_TIME.fullmatch(value) if type(value) is str else None
    return match is not None and match.group(4) is not None and _exists(*match.groups()[:3])


def _unsigned(value: Any) -> bool:
    return type(value) is int and 0 <= value <= _INT_MAX


def _positive(value: Any) -> bool:
    return type(value) is int and 0 < value <= _INT_MAX


def _boolean(value: Any) -> bool:
    return type(value) is bool


def _base64(value: Any) -> bool:
    if type(value) is not str or not value or len(value) % 4:
        return False
    try:
        binascii.a2b_base64(value, strict_mode=True)
    except binascii.Error:
        return False
    return True


def _payload(value: Any) -> bool:
    """``Binary.data``: a string; the vault decodes it (strictly) and names the entry if it is not base64."""
    return type(value) is str


_PRIMITIVES: dict[str, Callable[[Any], bool]] = {
    "string": _string,
    "code": _code,
    "uri": _uri,
    "id": _id,
    "date": _date,
    "dateTime": _date_time,
    "instant": _instant,
    "unsignedInt": _unsigned,
    "positiveInt": _positive,
    "boolean": _boolean,
    "base64Binary": _base64,
    "payload": _payload,
}

# ------------------------------------------------------------------ the elements an MHD deposit uses (FHIR R4)
# A type: its elements, each « type » or « type[] » (repeating); the required ones end with « ! ».

_PERSON = {  # a Practitioner's or a Patient's elements that the contained resources use
    "identifier": "Identifier[]",
    "active": "boolean",
    "name": "HumanName[]",
    "telecom": "ContactPoint[]",
    "gender": "code",
    "birthDate": "date",
}
_TYPES: dict[str, dict[str, str]] = {
    "Coding": {"system": "uri", "version": "string", "code": "code", "display": "string", "userSelected": "boolean"},
    "CodeableConcept": {"coding": "Coding[]", "text": "string"},
    "Period": {"start": "dateTime", "end": "dateTime"},
    "Identifier": {
        "use": "code",
        "type": "CodeableConcept",
        "system": "uri",
        "value": "string",
        "period": "Period",
        "assigner": "Reference",
    },
    "Reference": {"reference": "string", "type": "uri", "identifier": "Identifier", "display": "string"},
    "HumanName": {
        "use": "code",
        "text": "string",
        "family": "string",
        "given": "string[]",
        "prefix": "string[]",
        "suffix": "string[]",
        "period": "Period",
    },
    "ContactPoint": {"system": "code", "value": "string", "use": "code", "rank": "positiveInt", "period": "Period"},
    "Meta": {"versionId": "id", "lastUpdated": "instant", "source": "uri", "profile": "uri[]", "security": "Coding[]"},
    "Attachment": {
        "contentType": "code",
        "language": "code",
        "data": "base64Binary",
        "url": "uri",
        "size": "unsignedInt",
        "hash": "base64Binary",
        "title": "string",
        "creation": "dateTime",
    },
    "Extension": {  # one value (checked below), of the kinds the French profiles put on a SubmissionSet
        "url": "uri!",
        "valueCoding": "Coding",
        "valueCodeableConcept": "CodeableConcept",
        "valueIdentifier": "Identifier",
        "valueReference": "Reference",
        "valueString": "string",
        "valueCode": "code",
        "valueUri": "uri",
        "valueBoolean": "boolean",
        "valueDateTime": "dateTime",
    },
    "Bundle": {"id": "id", "meta": "Meta", "type": "code!", "entry": "BundleEntry[]"},
    "BundleEntry": {"fullUrl": "uri", "resource": "Resource", "request": "BundleRequest"},
    "BundleRequest": {"method": "code!", "url": "uri!"},
    "List": {
        "identifier": "Identifier[]",
        "status": "code!",
        "mode": "code!",
        "title": "string",
        "code": "CodeableConcept",
        "subject": "Reference",
        "date": "dateTime",
        "source": "Reference",
        "entry": "ListEntry[]",
    },
    "ListEntry": {"flag": "CodeableConcept", "deleted": "boolean", "date": "dateTime", "item": "Reference!"},
    "DocumentReference": {
        "masterIdentifier": "Identifier",
        "identifier": "Identifier[]",
        "status": "code!",
        "docStatus": "code",
        "type": "CodeableConcept",
        "category": "CodeableConcept[]",
        "subject": "Reference",
        "date": "instant",
        "author": "Reference[]",
        "authenticator": "Reference",
        "custodian": "Reference",
        "relatesTo": "RelatesTo[]",
        "description": "string",
        "securityLabel": "CodeableConcept[]",
        "content": "Content[]!",
        "context": "Context",
    },
    "RelatesTo": {"code": "code!", "target": "Reference!"},
    "Content": {"attachment": "Attachment!", "format": "Coding"},
    "Context": {
        "encounter": "Reference[]",
        "event": "CodeableConcept[]",
        "period": "Period",
        "facilityType": "CodeableConcept",
        "practiceSetting": "CodeableConcept",
        "sourcePatientInfo": "Reference",
        "related": "Reference[]",
    },
    "Binary": {"contentType": "code!", "securityContext": "Reference", "data": "payload"},
    # the resources a DocumentReference contains (its author, the patient as the source knew them)
    "Practitioner": _PERSON,
    "PractitionerRole": {
        "identifier": "Identifier[]",
        "active": "boolean",
        "practitioner": "Reference",
        "organization": "Reference",
        "code": "CodeableConcept[]",
        "specialty": "CodeableConcept[]",
        "telecom": "ContactPoint[]",
    },
    "Patient": _PERSON,
    "Organization": {
        "identifier": "Identifier[]",
        "active": "boolean",
        "type": "CodeableConcept[]",
        "name": "string",
        "telecom": "ContactPoint[]",
    },
}
_RESOURCE = {"id": "id", "meta": "Meta", "language": "code", "extension": "Extension[]"}  # every resource's
_ENTRY_RESOURCES = {"List", "DocumentReference", "Binary"}
_CONTAINED = {"Practitioner", "PractitionerRole", "Patient", "Organization"}


def _compile(elements: dict[str, str]) -> tuple[dict[str, tuple[str, bool]], frozenset[str]]:
    """Element → (type, repeats), and the required elements."""
    table, required = {}, set()
    for name, spec in elements.items():
        if spec.endswith("!"):
            required.add(name)
            spec = spec[:-1]
        table[name] = (spec.removesuffix("[]"), spec.endswith("[]"))
    return table, frozenset(required)


_SHAPES = {
    name: _compile({**(_RESOURCE if name in _ENTRY_RESOURCES | _CONTAINED else {}), **elements})
    for name, elements in _TYPES.items()
}
_SHAPES["DocumentReference"][0]["contained"] = ("Contained", True)


def _value(kind: str, value: Any) -> bool:
    check = _PRIMITIVES.get(kind)
    if check is not None:
        return check(value)
    if kind in {"Resource", "Contained"}:
        allowed = _ENTRY_RESOURCES if kind == "Resource" else _CONTAINED
        return (
            type(value) is dict
            and type(value.get("resourceType")) is str
            and value["resourceType"] in allowed
            and _resource(value)
        )
    return type(value) is dict and _complex(kind, value)


def _complex(kind: str, value: dict[str, Any]) -> bool:
    elements, required = _SHAPES[kind]
    if not value or not required <= value.keys():
        return False
    for name, item in value.items():
        shape = elements.get(name)
        if shape is None:
            return False
        element, repeats = shape
        if not repeats:
            if not _value(element, item):
                return False
        elif type(item) is not list or not item or not all(_value(element, one) for one in item):
            return False
    if kind == "Extension":
        return len(value) == 2  # its url and one value[x]
    return True


def _resource(value: dict[str, Any]) -> bool:
    rest = dict(value)
    return _complex(rest.pop("resourceType"), rest)


def plainly_valid(bundle: dict[str, Any]) -> bool:
    """Whether ``bundle`` (parsed JSON) is an ITI-65 Bundle of the usual shape with every value well formed — True
    means the FHIR R4B models accept it too; False means « ask the models »."""
    return bundle.get("resourceType") == "Bundle" and _resource(bundle)
