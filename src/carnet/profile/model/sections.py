"""The sections of the medical profile (PRF-1) and what each profession may read of them (ACC-1).

Pure: a section is a French title, the fields a person fills in (the same description drives the form,
the checks and the display), whether it holds one item only (groupe sanguin, don d'organes) and the FHIR
resource it is exchanged as (PRF-3) when there is one. Measures (PRF-2) are the ``measures`` pseudo-section:
their catalogue is ``carnet.profile.model.measures``.

Which sections a profession may read is data (``carnet/data/profile_access.json``), read at import and
checked against the sections: an unknown section is a ``ValueError``, never a silent hole.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from importlib import resources
from types import MappingProxyType

from carnet.errors import CarnetError

__all__ = [
    "MEASURES_SECTION",
    "SECTIONS",
    "Field",
    "ItemError",
    "Section",
    "clean_fields",
    "profile_sections_for",
]

MEASURES_SECTION = "measures"


class ItemError(CarnetError):
    """What a person typed cannot be kept as it is (the French reason)."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    kind: str = "text"  # text | date | choice | long
    required: bool = False
    choices: tuple[str, ...] = ()
    hint: str = ""
    max_length: int = 200


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    intro: str
    fields: tuple[Field, ...]
    fhir_type: str | None = None
    single: bool = False  # one item at most (a new one replaces it)
    adults_only: bool = False

    @property
    def main(self) -> Field:
        """The field that names an item in a list."""
        return self.fields[0]


NOTE = Field("note", "Commentaire", "long", max_length=1000)
RELATIVES = (
    "Mère",
    "Père",
    "Sœur",
    "Frère",
    "Fille",
    "Fils",
    "Grand-mère maternelle",
    "Grand-père maternel",
    "Grand-mère paternelle",
    "Grand-père paternel",
    "Tante",
    "Oncle",
    "Autre membre de la famille",
)
TRUSTED_PERSON = "Personne de confiance"

_SECTIONS = (
    Section(
        "conditions",
        "Maladies et sujets de santé",
        "Vos maladies, actuelles ou passées, et les sujets de santé à connaître.",
        (
            Field("label", "Maladie ou sujet de santé", required=True),
            Field("since", "Depuis le", "date"),
            Field("status", "Situation", "choice", choices=("En cours", "Guérie ou terminée")),
            NOTE,
        ),
        fhir_type="Condition",
    ),
    Section(
        "treatments",
        "Traitements",
        "Les médicaments que vous prenez ou avez pris.",
        (
            Field("label", "Médicament", required=True),
            Field("dosage", "Posologie", hint="Par exemple : 1 comprimé le matin"),
            Field("start", "Début", "date"),
            Field("end", "Fin", "date"),
            NOTE,
        ),
        fhir_type="MedicationStatement",
    ),
    Section(
        "hospitalisations",
        "Hospitalisations",
        "Vos séjours à l'hôpital ou en clinique.",
        (
            Field("label", "Motif", required=True),
            Field("place", "Établissement"),
            Field("start", "Entrée le", "date"),
            Field("end", "Sortie le", "date"),
            NOTE,
        ),
    ),
    Section(
        "disabilities",
        "Handicaps",
        "Un handicap et, si vous le connaissez, le taux d'incapacité reconnu.",
        (
            Field(
                "label",
                "Type de handicap",
                "choice",
                required=True,
                choices=("Moteur", "Sensoriel", "Psychique", "Mental", "Cognitif", "Polyhandicap", "Autre"),
            ),
            Field("rate", "Taux d'incapacité", "choice", choices=("Moins de 50 %", "De 50 à 79 %", "80 % ou plus")),
            NOTE,
        ),
    ),
    Section(
        "blood_group",
        "Groupe sanguin",
        "Votre groupe sanguin et votre rhésus.",
        (Field("label", "Groupe sanguin", "choice", True, ("A+", "A−", "B+", "B−", "AB+", "AB−", "O+", "O−")),),
        single=True,
    ),
    Section(
        "allergies",
        "Allergies",
        "Les substances auxquelles vous êtes allergique (médicaments, aliments, autres).",
        (
            Field("label", "Allergie à", required=True),
            Field("reaction", "Réaction"),
            Field("severity", "Gravité", "choice", choices=("Légère", "Modérée", "Sévère")),
            Field("since", "Depuis le", "date"),
            NOTE,
        ),
        fhir_type="AllergyIntolerance",
    ),
    Section(
        "family_history",
        "Antécédents familiaux",
        "Les maladies de vos proches parents qui peuvent compter pour votre santé.",
        (
            Field("label", "Maladie", required=True),
            Field("relative", "Membre de la famille", "choice", True, RELATIVES),
            NOTE,
        ),
        fhir_type="FamilyMemberHistory",
    ),
    Section(
        "vaccinations",
        "Vaccinations",
        "Les vaccins que vous avez reçus.",
        (
            Field("label", "Vaccin", required=True),
            Field("date", "Date de la vaccination", "date", required=True),
            Field("dose", "Dose ou rappel", hint="Par exemple : 2e dose, rappel des 25 ans"),
            Field("lot", "Numéro de lot"),
            NOTE,
        ),
        fhir_type="Immunization",
    ),
    Section(
        "lifestyle",
        "Habitudes de vie",
        "Tabac, alcool, activité physique, alimentation, sommeil.",
        (
            Field(
                "label",
                "Thème",
                "choice",
                True,
                ("Tabac", "Alcool", "Activité physique", "Alimentation", "Sommeil", "Autre"),
            ),
            Field("detail", "Ce que vous souhaitez indiquer", "long", required=True, max_length=1000),
        ),
    ),
    Section(
        "professionals",
        "Professionnels de santé",
        "Votre pharmacien correspondant et votre sage-femme référente. Votre médecin traitant se déclare "
        "dans la page « Accès ».",
        (
            Field("role", "Rôle", "choice", True, ("Pharmacien correspondant", "Sage-femme référente")),
            Field("label", "Nom", required=True),
            Field("place", "Lieu d'exercice"),
            Field("phone", "Téléphone", max_length=30),
        ),
    ),
    Section(
        "entourage",
        "Entourage",
        "Les personnes à prévenir en cas d'urgence et votre personne de confiance (une seule). Vos aidants se "
        "gèrent dans la page « Proches ».",
        (
            Field("role", "Rôle", "choice", True, ("Personne à prévenir en cas d'urgence", TRUSTED_PERSON)),
            Field("label", "Nom", required=True),
            Field("relation", "Lien avec vous", hint="Par exemple : conjointe, fils, voisin"),
            Field("phone", "Téléphone", max_length=30),
        ),
    ),
    Section(
        "organ_donation",
        "Don d'organes",
        "Votre position sur le don d'organes et de tissus après votre décès. Pour refuser tout prélèvement, "
        "l'inscription au registre national des refus reste la démarche officielle.",
        (
            Field(
                "label",
                "Ma position",
                "choice",
                True,
                (
                    "Je souhaite donner mes organes et tissus",
                    "Je refuse le prélèvement de mes organes et tissus",
                    "Je ne souhaite pas me prononcer",
                ),
            ),
            NOTE,
        ),
        single=True,
    ),
)

SECTIONS: Mapping[str, Section] = MappingProxyType({s.key: s for s in _SECTIONS})
READABLE = frozenset(SECTIONS) | {MEASURES_SECTION}


def _fail(field: Field, reason: str) -> ItemError:
    return ItemError(f"« {field.label} » : {reason}")


def _clean(field: Field, raw: str, today: date) -> str:
    value = " ".join(raw.split()) if field.kind != "long" else raw.strip()
    if not value:
        if field.required:
            raise _fail(field, "ce champ est obligatoire.")
        return ""
    if len(value) > field.max_length:
        raise _fail(field, f"{field.max_length} caractères au plus.")
    if any(ord(c) < 32 and c not in "\n\r\t" for c in value):
        raise _fail(field, "caractères non autorisés.")
    if field.kind == "choice" and value not in field.choices:
        raise _fail(field, "choisissez une des valeurs proposées.")
    if field.kind == "date":
        try:
            day = date.fromisoformat(value)
        except ValueError:
            raise _fail(field, "date invalide (format attendu : AAAA-MM-JJ).") from None
        if day > today or day.year < 1900:
            raise _fail(field, "la date doit être passée et postérieure à 1900.")
        value = day.isoformat()
    return value


def clean_fields(section: Section, raw: Mapping[str, str], today: date) -> dict[str, str]:
    """What a person typed for an item of ``section``, checked and tidied (``ItemError`` with the reason)."""
    stray = set(raw) - {f.name for f in section.fields}
    if stray:
        raise ItemError(f"Champ inconnu : {sorted(stray)[0][:40]}.")
    values = {f.name: _clean(f, str(raw.get(f.name, "")), today) for f in section.fields}
    if "start" in values and values.get("end") and values["start"] and values["end"] < values["start"]:
        raise ItemError("La date de fin doit suivre la date de début.")
    return {name: value for name, value in values.items() if value}


def _read_matrix() -> tuple[frozenset[str], Mapping[str, frozenset[str]]]:
    data = json.loads(resources.files("carnet.data").joinpath("profile_access.json").read_text(encoding="utf-8"))

    def row(value: object, where: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ValueError(f"profile_access.json, {where} : une liste de sections est attendue")
        unknown = sorted(set(value) - READABLE)
        if unknown:
            raise ValueError(f"profile_access.json, {where} : section(s) inconnue(s) {unknown}")
        return frozenset(value)

    professions = data.get("professions")
    if not isinstance(professions, dict):
        raise ValueError("profile_access.json : « professions » doit associer des codes TRE_G15 à des sections")
    for code in professions:
        if not code.isdigit():
            raise ValueError(f"profile_access.json : « {code} » n'est pas un code de profession TRE_G15")
    return row(data.get("default"), "default"), MappingProxyType(
        {code: row(value, f"profession {code}") for code, value in professions.items()}
    )


_DEFAULT, _ROWS = _read_matrix()


def profile_sections_for(profession_code: str | None) -> frozenset[str]:
    """The profile sections (``measures`` included) a profession may read by consent or emergency (ACC-1)."""
    return _ROWS.get(profession_code or "", _DEFAULT)
