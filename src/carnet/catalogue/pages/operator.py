"""CAT-1 for the operator: ``/operateur/applications`` lists every app (status, referencing end, reports, live
connections) with the decisions its status allows; a decision is one POST. Anyone but an operator gets the 403
page (the policy's ``APP_MANAGE``), an anonymous visitor the login page."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.catalogue.model.apps import DECISION_LABELS, DECISIONS, TRANSITIONS, AppStatus
from carnet.catalogue.service import apps
from carnet.catalogue.service.common import AppNotFound, CatalogueError
from carnet.web.deps import ServicesDep, csrf_protect, render, require_viewer

router = APIRouter(prefix="/operateur", dependencies=[Depends(csrf_protect)])


def decisions_for(status: str) -> list[tuple[str, str]]:
    """The decisions a status allows, with their French words (renewal for a published or offline app)."""
    allowed = [
        (word, DECISION_LABELS[word]) for word, target in DECISIONS.items() if target in TRANSITIONS[AppStatus(status)]
    ]
    if status in {AppStatus.EN_LIGNE, AppStatus.HORS_LIGNE}:
        allowed.append(("renew", DECISION_LABELS["renew"]))
    return allowed


@router.get("/applications", response_class=HTMLResponse)
def review_page(
    request: Request,
    services: ServicesDep,
    fait: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    rows = apps.review(services, viewer.actor)
    return render(
        request, services, "catalogue/operator.html", title="Catalogue d'applications", viewer=viewer, rows=rows,
        decisions_for=decisions_for, notice=fait, current="operateur",
    )  # fmt: skip


@router.post("/applications/{app_id}/decision")
def decide(
    request: Request, services: ServicesDep, app_id: str, decision: Annotated[str, Form(max_length=20)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    try:
        app = apps.decide(services, viewer.actor, app_id, decision)
    except AppNotFound:
        return render(
            request, services, "error.html", status_code=404, title="Application introuvable",
            message="Cette application n'existe pas.", viewer=viewer,
        )  # fmt: skip
    except CatalogueError as exc:
        return render(
            request, services, "error.html", status_code=400, title="Décision impossible", message=exc.message,
            viewer=viewer,
        )  # fmt: skip
    return RedirectResponse(f"/operateur/applications?fait={app.status}", status_code=303)
