"""The "matrice d'habilitation" (ACC-1): which document categories each profession may see.

Pure: the matrix is data (``carnet/data/access_matrix.json``, explained in ``docs/access-matrix.md``),
read once at import and checked against the reference tables (``document_types.json``): a category
or a type code the vault does not know is a ``ValueError`` at import, never a silent hole.

Rows are keyed by TRE_G15 profession codes; a missing or unlisted code gets the ``default`` row.
``deny_types`` holds type-level exceptions inside a category (none so far). The matrix is what a
professional sees by consent or by emergency access (ACC-4); the médecin traitant and the patient's
administrator professionals see everything, masked documents included (ACC-2) — that is the
policy's business (``carnet.hall.policy``), not this table's.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

__all__ = ["MATRIX_CATEGORIES", "categories_for", "may_see"]

DEFAULT = "default"
_KEYS = {DEFAULT, "professions", "deny_types"}


@dataclass(frozen=True)
class _Matrix:
    categories: frozenset[str]
    default: frozenset[str]
    rows: Mapping[str, frozenset[str]]
    deny_types: Mapping[str, frozenset[str]]

    def categories_for(self, profession_code: str | None) -> frozenset[str]:
        if profession_code is None:
            return self.default
        return self.rows.get(profession_code, self.default)

    def may_see(self, profession_code: str | None, category: str, type_code: str | None = None) -> bool:
        if category not in self.categories_for(profession_code):
            return False
        if type_code is None:
            return True
        row = profession_code if profession_code is not None and profession_code in self.rows else DEFAULT
        return type_code not in self.deny_types.get(row, frozenset())


def _read(name: str) -> dict[str, Any]:
    text = resources.files("carnet.data").joinpath(name).read_text(encoding="utf-8")
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError(f"{name}: un objet JSON est attendu")
    return data


def _names(value: object, where: str, known: frozenset[str], what: str) -> frozenset[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"access_matrix.json, {where} : une liste de codes est attendue")
    if len(set(value)) != len(value):
        raise ValueError(f"access_matrix.json, {where} : code en double")
    unknown = sorted(set(value) - known)
    if unknown:
        raise ValueError(f"access_matrix.json, {where} : {what} inconnu(s) de document_types.json : {unknown}")
    return frozenset(value)


def _build(matrix: Mapping[str, Any], reference: Mapping[str, Any]) -> _Matrix:
    """Check the matrix against the reference tables and freeze it (ValueError names what is wrong)."""
    categories = frozenset(reference["categories"])
    type_codes = frozenset(code for codes in reference["types"].values() for code in codes)
    stray = sorted(k for k in matrix if not k.startswith("_") and k not in _KEYS)
    if stray:
        raise ValueError(f"access_matrix.json : clé(s) inconnue(s) {stray}")
    default = _names(matrix.get(DEFAULT), DEFAULT, categories, "catégorie(s)")
    professions = matrix.get("professions")
    if not isinstance(professions, dict) or not professions:
        raise ValueError("access_matrix.json : « professions » doit associer des codes TRE_G15 à des catégories")
    rows: dict[str, frozenset[str]] = {}
    for code, row in professions.items():
        if not code.isdigit():
            raise ValueError(f"access_matrix.json : « {code} » n'est pas un code de profession TRE_G15")
        rows[code] = _names(row, f"profession {code}", categories, "catégorie(s)")
    deny = matrix.get("deny_types", {})
    if not isinstance(deny, dict):
        raise ValueError("access_matrix.json : « deny_types » doit associer des professions à des codes de type")
    deny_types: dict[str, frozenset[str]] = {}
    for code, types in deny.items():
        if code != DEFAULT and code not in rows:
            raise ValueError(f"access_matrix.json, deny_types : profession {code} sans ligne dans la matrice")
        deny_types[code] = _names(types, f"deny_types {code}", type_codes, "type(s) de document")
    return _Matrix(categories, default, MappingProxyType(rows), MappingProxyType(deny_types))


_MATRIX = _build(_read("access_matrix.json"), _read("document_types.json"))

MATRIX_CATEGORIES: frozenset[str] = _MATRIX.categories


def categories_for(profession_code: str | None) -> frozenset[str]:
    """The categories a profession may see (ACC-1); a missing or unlisted code gets the default row."""
    return _MATRIX.categories_for(profession_code)


def may_see(profession_code: str | None, category: str, type_code: str | None = None) -> bool:
    """Whether a profession may see a document of this category (and type code, for type-level exceptions)."""
    return _MATRIX.may_see(profession_code, category, type_code)
