"""The JSON API at ``/api``; errors are RFC 7807 problem details."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from carnet import __version__

router = APIRouter(prefix="/api/v1")
PROBLEM_JSON = "application/problem+json"


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_JSON


TITLES = {
    400: "Requête invalide",
    401: "Authentification requise",
    403: "Accès refusé",
    404: "Ressource introuvable",
    405: "Méthode non autorisée",
    413: "Contenu trop volumineux",
    415: "Type de contenu non pris en charge",
    422: "Données invalides",
    429: "Trop de requêtes",
    500: "Erreur interne",
}


def problem(status: int, detail: str, type_: str = "about:blank", **extra: object) -> ProblemResponse:
    body = {"type": type_, "title": TITLES.get(status, "Erreur"), "status": status, "detail": detail, **extra}
    return ProblemResponse(body, status_code=status)


@router.get("/sante")
def health() -> dict[str, str]:
    """Liveness probe for operators and load balancers."""
    return {"statut": "ok", "version": __version__}
