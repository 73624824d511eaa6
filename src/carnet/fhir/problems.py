"""What the FHIR interfaces answer when a request cannot be served: an OperationOutcome listing every issue.

``Problem`` is raised by the FHIR routes (``carnet.vault.fhir``, ``carnet.access.fhir``) and turned into the
answer by the route itself; each issue is ``(code, French diagnostics, FHIRPath expression or "")``.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from carnet.fhir.base import FhirResponse

Issue = tuple[str, str, str]

PYDANTIC_FR = {
    "missing": "champ obligatoire manquant",
    "string_type": "doit être une chaîne de caractères",
    "list_type": "doit être une liste",
    "dict_type": "doit être un objet",
    "extra_forbidden": "élément inconnu dans cette ressource",
    "int_type": "doit être un entier",
    "bool_type": "doit être un booléen",
}


class Problem(Exception):
    def __init__(self, issues: list[Issue], status: int = 400) -> None:
        super().__init__(issues[0][1])
        self.issues = issues
        self.status = status

    def response(self) -> FhirResponse:
        body = {
            "resourceType": "OperationOutcome",
            "issue": [
                {"severity": "error", "code": code, "diagnostics": text, **({"expression": [path]} if path else {})}
                for code, text, path in self.issues
            ],
        }
        return FhirResponse(body, status_code=self.status)


def structure_issues(exc: ValidationError, root: str, limit: int = 20) -> list[Issue]:
    """The FHIR models' validation errors, in French, each with the path of the element (``root`` first)."""
    errors: list[Any] = exc.errors()[:limit]
    return [
        ("structure", PYDANTIC_FR.get(err["type"], "valeur invalide"), root + "." + ".".join(map(str, err["loc"])))
        for err in errors
    ]
