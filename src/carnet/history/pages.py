"""The patient's history pages (TRC-2): tabs, filters, « Signaler ».

Each route parses the request, calls one use case of ``carnet.history.service`` (which asks the policy,
records the reading and returns plain data) and renders it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.history import service as history
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer
from carnet.web.forms import paris_midnight, parse_day

router = APIRouter(dependencies=[Depends(csrf_protect)])

HISTORY_MESSAGES = {"signale": history.REPORTED}


def _query(tab: str, kind: str, du: str, au: str) -> tuple[history.HistoryQuery, list[str]]:
    """The tab and filters asked for, and what is wrong with the dates typed (French)."""
    errors: list[str] = []
    day_from = parse_day(du, "du", errors)
    day_to = parse_day(au, "au", errors)
    if day_from and day_to and day_to < day_from:
        errors.append("La fin de la période est avant son début : vérifiez les dates.")
    query = history.HistoryQuery(
        tab=tab,
        kind=kind,
        date_from=paris_midnight(day_from) if day_from and not errors else None,
        date_to=paris_midnight(day_to + timedelta(days=1)) if day_to and not errors else None,
    )
    return query, errors


@router.get("/espace/{patient_id}/historique", response_class=HTMLResponse)
def space_history(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    onglet: Annotated[str, Query(max_length=20)] = history.ALL,
    du: Annotated[str, Query(max_length=10)] = "",
    au: Annotated[str, Query(max_length=10)] = "",
    kind_filter: Annotated[str, Query(alias="type", max_length=20)] = "",
    message: Annotated[str, Query(max_length=20)] = "",
) -> Response:
    """TRC-2: the history in tabs (who acted), filtered by period and kind of action."""
    tab = onglet if onglet in history.TABS else history.ALL
    kind = kind_filter if kind_filter in history.KINDS else ""
    query, errors = _query(tab, kind, du, au)
    viewer = require_viewer(request, services)
    page = history.history_page(services, viewer.actor, patient_id, query)
    filters = {"du": du.strip(), "au": au.strip(), "type": kind}
    return render(
        request,
        services,
        "history.html",
        status_code=400 if errors else 200,
        title="Historique",
        viewer=viewer,
        patient=page.patient,
        view=page.view,
        lines=page.view.lines,
        tab=tab,
        tabs=history.TABS,
        kinds=history.KINDS,
        filters=filters,
        filter_query=urlencode({k: v for k, v in filters.items() if v}),
        errors=errors,
        message=HISTORY_MESSAGES.get(message, ""),
        current="historique",
    )


def _report_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    page: history.ReportPage,
    *,
    comment: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        services,
        "history_report.html",
        status_code=status_code,
        title="Signaler une entrée de l'historique",
        viewer=viewer,
        patient=page.patient,
        line=page.line,
        comment=comment,
        error=page.error,
        comment_max=history.COMMENT_MAX,
        current="historique",
    )


def _history_error(request: Request, services: Services, exc: history.HistoryError) -> HTMLResponse:
    title = "Entrée introuvable" if exc.status == 404 else "Signalement impossible"
    return render(request, services, "error.html", status_code=exc.status, title=title, message=exc.message)


@router.get("/espace/{patient_id}/historique/{entry_id}/signaler", response_class=HTMLResponse)
def history_report_form(request: Request, services: ServicesDep, patient_id: str, entry_id: int) -> Response:
    viewer = require_viewer(request, services)
    try:
        page = history.report_page(services, viewer.actor, patient_id, entry_id)
    except history.HistoryError as exc:
        return _history_error(request, services, exc)
    return _report_page(request, services, viewer, page)


@router.post("/espace/{patient_id}/historique/{entry_id}/signaler", response_class=HTMLResponse)
def history_report_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    entry_id: int,
    commentaire: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """TRC-2: « Signaler » — stored for the service's staff, recorded in the history."""
    viewer = require_viewer(request, services)
    try:
        again = history.report_entry(services, viewer.actor, patient_id, entry_id, commentaire)
    except history.HistoryError as exc:
        return _history_error(request, services, exc)
    if again is not None:
        return _report_page(request, services, viewer, again, comment=commentaire, status_code=400)
    return RedirectResponse(f"/espace/{patient_id}/historique?message=signale", status_code=303)
