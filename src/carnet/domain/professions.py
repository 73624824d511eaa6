"""Profession codes of the ANS nomenclature TRE_G15 (the ones Carnet uses so far)."""

from __future__ import annotations

PROFESSIONS = {
    "10": "Médecin",
    "21": "Pharmacien",
    "40": "Chirurgien-dentiste",
    "50": "Sage-femme",
    "60": "Infirmier",
}


def profession_label(code: str) -> str:
    return PROFESSIONS.get(code, f"Profession {code}")
