"""A person of the register as a FHIR R4 ``Patient`` (FR Core), and the patient element the other resources of an
export name them by — pure.

The INS is the official identifier (``urn:oid:`` of its kind: 1.2.250.1.213.1.4.8 for an INS-NIR, …10 for a test
INS), typed with FR Core's ``INS-NIR`` / ``INS-NIR-TEST`` codes; the five INS traits follow: birth name (official
name) and first names, the used name (usual name) when there is one, sex, birth date and birth place (the INSEE
code of the commune, FR Core's ``fr-core-address-insee-code`` in the ``patient-birthPlace`` extension) — so that
another Carnet can recreate the space for the same person. Then what the space holds to reach them: e-mail and
telephone, postal address.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Protocol

from carnet.people.model.identifiers import INS_NIA_OID, INS_NIA_TEST_OID, INS_NIR_OID, INS_NIR_TEST_OID

FR_CORE_V2_0203 = "https://hl7.fr/ig/fhir/core/CodeSystem/fr-core-cs-v2-0203"
BIRTH_PLACE = "http://hl7.org/fhir/StructureDefinition/patient-birthPlace"
INSEE_CODE = "https://hl7.fr/ig/fhir/core/StructureDefinition/fr-core-address-insee-code"
INSEE_COMMUNES = "https://mos.esante.gouv.fr/NOS/TRE_R13-CommuneOM/FHIR/TRE-R13-CommuneOM"
INS_TYPES = {
    INS_NIR_OID: "INS-NIR",
    INS_NIA_OID: "INS-NIA",
    INS_NIR_TEST_OID: "INS-NIR-TEST",
    INS_NIA_TEST_OID: "INS-NIA-TEST",
}
GENDERS = {"F": "female", "M": "male"}


class PersonFields(Protocol):
    """What the Patient resource is built from (a row of the register has all of it)."""

    @property
    def id(self) -> str: ...
    @property
    def ins(self) -> str: ...
    @property
    def ins_oid(self) -> str: ...
    @property
    def birth_name(self) -> str: ...
    @property
    def first_names(self) -> str: ...
    @property
    def used_name(self) -> str | None: ...
    @property
    def birth_date(self) -> date: ...
    @property
    def sex(self) -> str: ...
    @property
    def birth_place(self) -> str: ...
    @property
    def email(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def postal_code(self) -> str | None: ...
    @property
    def city(self) -> str | None: ...


def ins_identifier(ins: str, ins_oid: str) -> dict[str, str]:
    return {"system": f"urn:oid:{ins_oid}", "value": ins}


def patient_element(patient_id: str, ins: str, ins_oid: str) -> dict[str, Any]:
    """How every resource of an export names its patient: the Patient of the Bundle and the INS."""
    return {"reference": f"Patient/{patient_id}", "identifier": ins_identifier(ins, ins_oid)}


def _names(person: PersonFields) -> list[dict[str, Any]]:
    names: list[dict[str, Any]] = [
        {"use": "official", "family": person.birth_name, "given": person.first_names.split()}
    ]
    if person.used_name and person.used_name != person.birth_name:
        names.append({"use": "usual", "family": person.used_name})
    return names


def _address(person: PersonFields) -> list[dict[str, Any]]:
    postal: dict[str, Any] = {}
    if person.address:
        postal["line"] = [person.address]
    if person.postal_code:
        postal["postalCode"] = person.postal_code
    if person.city:
        postal["city"] = person.city
    return [{"use": "home", "type": "postal", **postal, "country": "FR"}] if postal else []


def patient_resource(person: PersonFields) -> dict[str, Any]:
    """The person as an R4 Patient: INS and its traits, contact details and address as the space holds them."""
    telecom = [
        {"system": system, "value": value, "use": "home"}
        for system, value in (("email", person.email), ("phone", person.phone))
        if value
    ]
    resource: dict[str, Any] = {
        "resourceType": "Patient",
        "id": person.id,
        "identifier": [
            {
                "use": "official",
                "type": {"coding": [{"system": FR_CORE_V2_0203, "code": INS_TYPES.get(person.ins_oid, "INS-NIR")}]},
                **ins_identifier(person.ins, person.ins_oid),
            }
        ],
        "active": True,
        "name": _names(person),
        "gender": GENDERS.get(person.sex, "unknown"),
        "birthDate": person.birth_date.isoformat(),
    }
    if person.birth_place:
        place = {"url": INSEE_CODE, "valueCoding": {"system": INSEE_COMMUNES, "code": person.birth_place}}
        resource["extension"] = [{"url": BIRTH_PLACE, "valueAddress": {"extension": [place]}}]
    if telecom:
        resource["telecom"] = telecom
    address = _address(person)
    if address:
        resource["address"] = address
    return resource


def person_of(resource: dict[str, Any]) -> dict[str, Any]:
    """The register's fields of a Patient written by ``patient_resource`` (an archive's, to recreate the space);
    ``ValueError`` with a French reason when one is missing."""
    official = next(
        (i for i in resource.get("identifier") or [] if isinstance(i, dict) and i.get("use") == "official"), None
    )
    system = str((official or {}).get("system") or "")
    if official is None or not system.startswith("urn:oid:") or not official.get("value"):
        raise ValueError("Patient de l'archive sans INS (identifiant officiel).")
    names = [n for n in resource.get("name") or [] if isinstance(n, dict)]
    birth = next((n for n in names if n.get("use") == "official"), None)
    if birth is None or not birth.get("family") or not birth.get("given"):
        raise ValueError("Patient de l'archive sans nom de naissance ni prénoms.")
    usual = next((n.get("family") for n in names if n.get("use") == "usual"), None)
    sexes = {value: key for key, value in GENDERS.items()}
    try:
        born = date.fromisoformat(str(resource.get("birthDate")))
    except ValueError as exc:
        raise ValueError("Patient de l'archive sans date de naissance lisible.") from exc
    place = ""
    for extension in resource.get("extension") or []:
        if isinstance(extension, dict) and extension.get("url") == BIRTH_PLACE:
            for part in (extension.get("valueAddress") or {}).get("extension") or []:
                if part.get("url") == INSEE_CODE:
                    place = str((part.get("valueCoding") or {}).get("code") or "")
    telecom = {t.get("system"): t.get("value") for t in resource.get("telecom") or [] if isinstance(t, dict)}
    postal = next((a for a in resource.get("address") or [] if isinstance(a, dict)), {})
    return {
        "ins": str(official["value"]),
        "ins_oid": system.removeprefix("urn:oid:"),
        "birth_name": str(birth["family"]),
        "first_names": " ".join(str(g) for g in birth["given"]),
        "used_name": usual,
        "birth_date": born,
        "sex": sexes.get(str(resource.get("gender")), "I"),
        "birth_place": place,
        "email": telecom.get("email"),
        "phone": telecom.get("phone"),
        "address": " ".join(postal.get("line") or []) or None,
        "postal_code": postal.get("postalCode"),
        "city": postal.get("city"),
    }
