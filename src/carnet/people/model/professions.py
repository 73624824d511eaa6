"""Health professions: the ANS nomenclature TRE_G15 « ProfessionSante » (code → French label).

These are the codes of the « Code profession » column of the Annuaire Santé extract and of the
``profession_code`` of a professional of the directory (ACC-1).  Labels follow the ANS wording, with
Carnet's capitalisation (only the first letter upper-case).
"""

from __future__ import annotations

from typing import Final

PROFESSIONS: Final[dict[str, str]] = {
    "10": "Médecin",
    "21": "Pharmacien",
    "26": "Audioprothésiste",
    "28": "Opticien-lunetier",
    "31": "Assistant dentaire",
    "32": "Physicien médical",
    "35": "Aide-soignant",
    "36": "Ambulancier",
    "37": "Auxiliaire de puériculture",
    "38": "Préparateur en pharmacie hospitalière",
    "39": "Préparateur en pharmacie",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
    "69": "Infirmier psychiatrique",
    "70": "Masseur-kinésithérapeute",
    "80": "Pédicure-podologue",
    "81": "Orthoprothésiste",
    "82": "Podo-orthésiste",
    "83": "Orthopédiste-orthésiste",
    "84": "Oculariste",
    "85": "Épithésiste",
    "86": "Technicien de laboratoire médical",
    "91": "Orthophoniste",
    "92": "Orthoptiste",
    "94": "Ergothérapeute",
    "95": "Diététicien",
    "96": "Psychomotricien",
    "98": "Manipulateur d'électroradiologie médicale",
}


def profession_label(code: str) -> str:
    return PROFESSIONS.get(code, f"Profession {code}")


def professions_listing() -> str:
    """« 10 (médecin), 21 (pharmacien), … » — every known code, for help texts and error messages."""
    return ", ".join(f"{code} ({label.lower()})" for code, label in PROFESSIONS.items())
