"""The agenda in the portal (AGD-1): the list, the month and the week, one appointment or reminder, adding,
changing, cancelling and deleting one, the ``.ics`` download and the private subscription links; the private link
itself (``/agenda/abonnement/<token>.ics``, no login); and the professional's page of the appointments they gave.

Each route parses its request, calls a use case of ``carnet.agenda.service.portal`` or ``.calendar`` (which ask the
policy and write the history) and renders what they return. An unknown event and one the viewer may not read get
the same 404 page; nothing typed travels in an address (ids, a view and a date only).
"""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, date, datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.access.service import pro_view
from carnet.agenda.model import events as rules
from carnet.agenda.service import calendar, portal
from carnet.agenda.service.events import NOT_FOUND, EventNotFound, EventView
from carnet.bootstrap import Services
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "ajoute": "Le rendez-vous a été ajouté à l'agenda.",
    "rappel-ajoute": "Le rappel a été ajouté à l'agenda.",
    "modifie": "Les modifications ont été enregistrées.",
    "annule": "Le rendez-vous est annulé : il reste dans l'agenda, barré.",
    "supprime": "L'élément a été retiré de l'agenda.",
    "lien-retire": "Le lien d'abonnement est retiré : il ne fonctionne plus.",
}
FIELDS = {  # the form's names → the model's fields
    "titre": "title",
    "date": "day",
    "debut": "start",
    "fin": "end",
    "lieu": "place",
    "avec": "with_whom",
    "commentaire": "comment",
}
ICS = "text/calendar; charset=utf-8"


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/agenda"


def _pro_base(patient_id: str) -> str:
    return f"/pro/patients/{quote(patient_id, safe='')}"


def _today() -> date:
    return datetime.now(UTC).astimezone(PARIS).date()


def view_url(base: str, view: str, day: date | None = None, page: int | None = None) -> str:
    params: list[tuple[str, str]] = [("vue", view)]
    if day is not None:
        params.append(("date", day.isoformat()))
    if page is not None and page > 1:
        params.append(("page", str(page)))
    return f"{base}?{urlencode(params)}"


def entered(event: EventView) -> str:
    """Who put the event in the agenda, in French."""
    when = event.created_at.astimezone(PARIS).strftime("le %d/%m/%Y")
    if event.from_space:
        return f"Ajouté par {event.author_label or 'la personne'}, {when}"
    return f"{event.source_words} : {event.author_label}, {when}"


HELPERS: dict[str, Any] = {
    "long_day": rules.long_day,
    "entered": entered,
    "kinds": rules.KINDS,
}


def _not_found(request: Request, services: Services) -> HTMLResponse:
    return render(request, services, "error.html", status_code=404, title="Élément introuvable", message=NOT_FOUND)


def _refused(request: Request, services: Services, reason: str) -> HTMLResponse:
    return render(request, services, "error.html", status_code=403, title="Action impossible", message=reason)


# ------------------------------------------------------------------ the agenda (AGD-1)


def _navigation(base: str, view: str, day: date, today: date) -> dict[str, Any]:
    if view == "liste":
        return {"heading": "Prochains rendez-vous et rappels"}
    heading = rules.month_title(day) if view == "mois" else rules.week_title(day)
    return {
        "heading": heading[:1].upper() + heading[1:],
        "previous_url": view_url(base, view, rules.step(view, day, forward=False)),
        "next_url": view_url(base, view, rules.step(view, day, forward=True)),
        "today_url": view_url(base, view, today),
        "previous_label": "Mois précédent" if view == "mois" else "Semaine précédente",
        "next_label": "Mois suivant" if view == "mois" else "Semaine suivante",
        "weeks": rules.month_weeks(day) if view == "mois" else [],
        "week": rules.week_days(day) if view == "semaine" else [],
        "short_weekdays": rules.SHORT_WEEKDAYS,
    }


@router.get("/espace/{patient_id}/agenda", response_class=HTMLResponse)
def agenda(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    vue: Annotated[str, Query(max_length=10)] = "liste",
    jour: Annotated[str, Query(alias="date", max_length=10)] = "",
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    """AGD-1: the agenda as a list (upcoming first, past ones below, by pages), a month or a week."""
    viewer = require_viewer(request, services)
    today = _today()
    day = rules.parse_day(jour, today)
    view = portal.agenda(services, viewer.actor, patient_id, rules.view_of(vue), day, page)
    base = _base(patient_id)
    return render(
        request,
        services,
        "agenda/agenda.html",
        title="Agenda",
        viewer=viewer,
        patient=view.patient,
        page=view,
        base=base,
        views={
            key: (label, view_url(base, key, None if key == "liste" else day)) for key, label in rules.VIEWS.items()
        },
        new_url=f"{base}/nouveau",
        add_day=day.isoformat() if view.view != "liste" else "",
        prevention_url=f"/espace/{quote(patient_id, safe='')}/prevention",
        older_url=view_url(base, "liste", page=view.page + 1) if view.page < view.pages else "",
        newer_url=view_url(base, "liste", page=view.page - 1) if view.page > 1 else "",
        message=MESSAGES.get(message, ""),
        current="agenda",
        **_navigation(base, view.view, day, view.today),
        **HELPERS,
    )


# ------------------------------------------------------------------ adding and changing


def _typed(kind: str, form: dict[str, str], all_day: bool) -> rules.TypedEvent:
    return rules.TypedEvent(kind=kind, all_day=all_day, **{FIELDS[name]: form.get(name, "") for name in FIELDS})


def _values(typed: rules.TypedEvent) -> dict[str, Any]:
    fields = asdict(typed)
    return {name: fields[key] for name, key in FIELDS.items()} | {"journee": typed.all_day}


async def posted(request: Request) -> dict[str, str]:
    """The fields of the event's form as typed (the model decides what it keeps)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and (k in FIELDS or k in {"type", "journee"})}


PostedDep = Annotated[dict[str, str], Depends(posted)]


def _form_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient: Any,
    action: str,
    kind: str,
    values: dict[str, Any],
    *,
    editing: bool = False,
    error: rules.EventError | None = None,
) -> HTMLResponse:
    base = _base(patient.id)
    noun = "rendez-vous" if kind == rules.APPOINTMENT else "rappel"
    return render(
        request,
        services,
        "agenda/form.html",
        status_code=400 if error else 200,
        title=f"Modifier le {noun}" if editing else f"Ajouter un {noun}",
        viewer=viewer,
        patient=patient,
        base=base,
        action=action,
        kind=kind,
        values=values,
        editing=editing,
        error=error.message if error else "",
        error_field=next((n for n, f in FIELDS.items() if error and f == error.field), ""),
        limits={"titre": rules.TITLE_MAX, "lieu": rules.PLACE_MAX, "avec": rules.WITH_MAX},
        comment_max=rules.COMMENT_MAX,
        current="agenda",
    )


@router.get("/espace/{patient_id}/agenda/nouveau", response_class=HTMLResponse)
def new_event(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    type_: Annotated[str, Query(alias="type", max_length=20)] = rules.APPOINTMENT,
    jour: Annotated[str, Query(alias="date", max_length=10)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    patient = portal.new_form(services, viewer.actor, patient_id)
    kind = type_ if type_ in rules.KINDS else rules.APPOINTMENT
    day = rules.parse_day(jour, _today())
    values = {"date": day.isoformat()}
    return _form_page(request, services, viewer, patient, f"{_base(patient_id)}/nouveau", kind, values)


@router.post("/espace/{patient_id}/agenda/nouveau", response_class=HTMLResponse)
def add_event(request: Request, services: ServicesDep, patient_id: str, form: PostedDep) -> Response:
    """AGD-1: « Ajouter un rendez-vous » / « Ajouter un rappel »."""
    viewer = require_viewer(request, services)
    kind = form.get("type", "") if form.get("type") in rules.KINDS else rules.APPOINTMENT
    typed = _typed(kind, form, form.get("journee") == "oui")
    try:
        added = portal.add(services, viewer.actor, patient_id, typed)
    except rules.EventError as error:
        patient = portal.new_form(services, viewer.actor, patient_id)
        action = f"{_base(patient_id)}/nouveau"
        return _form_page(request, services, viewer, patient, action, kind, _values(typed), error=error)
    done = "ajoute" if kind == rules.APPOINTMENT else "rappel-ajoute"
    target = view_url(_base(patient_id), "liste") + f"&message={done}"
    if added.day < _today():  # a past one is not among the next ones: its own page
        target = f"{_base(patient_id)}/evenements/{added.id}?message={done}"
    return RedirectResponse(target, 303)


@router.get("/espace/{patient_id}/agenda/evenements/{event_id}", response_class=HTMLResponse)
def event_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    event_id: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = portal.event_page(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return _not_found(request, services)
    return render(
        request,
        services,
        "agenda/event.html",
        title=shown.event.title or shown.event.kind_label,
        viewer=viewer,
        patient=shown.patient,
        event=shown.event,
        people_of_space=shown.people_of_space,
        base=_base(patient_id),
        month_url=view_url(_base(patient_id), "mois", shown.event.day),
        message=MESSAGES.get(message, ""),
        current="agenda",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/agenda/evenements/{event_id}/modifier", response_class=HTMLResponse)
def edit_event(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = portal.edit_form(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return _not_found(request, services)
    except (AccessDenied, portal.EventLocked) as exc:
        return _refused(request, services, exc.decision.reason if isinstance(exc, AccessDenied) else exc.message)
    e = shown.event
    typed = rules.typed_of(e.kind, e.title, e.starts_at, e.ends_at, e.all_day, e.place, e.with_whom, e.comment)
    action = f"{_base(patient_id)}/evenements/{e.id}/modifier"
    return _form_page(request, services, viewer, shown.patient, action, e.kind, _values(typed), editing=True)


@router.post("/espace/{patient_id}/agenda/evenements/{event_id}/modifier", response_class=HTMLResponse)
def update_event(request: Request, services: ServicesDep, patient_id: str, event_id: str, form: PostedDep) -> Response:
    viewer = require_viewer(request, services)
    typed = _typed(rules.APPOINTMENT, form, form.get("journee") == "oui")  # the event keeps its own kind
    try:
        portal.update(services, viewer.actor, patient_id, event_id, typed)
    except EventNotFound:
        return _not_found(request, services)
    except (AccessDenied, portal.EventLocked) as exc:
        return _refused(request, services, exc.decision.reason if isinstance(exc, AccessDenied) else exc.message)
    except rules.EventError as error:
        shown = portal.edit_form(services, viewer.actor, patient_id, event_id)
        action = f"{_base(patient_id)}/evenements/{event_id}/modifier"
        kind, values = shown.event.kind, _values(typed)
        return _form_page(request, services, viewer, shown.patient, action, kind, values, editing=True, error=error)
    return RedirectResponse(f"{_base(patient_id)}/evenements/{quote(event_id, safe='')}?message=modifie", 303)


# ------------------------------------------------------------------ cancelling and deleting (a confirmation first)


def _confirm_page(request: Request, services: Services, patient_id: str, event_id: str, act: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = portal.removal(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    return render(
        request,
        services,
        "agenda/confirm.html",
        title="Annuler" if act == "annuler" else "Retirer de l'agenda",
        viewer=viewer,
        patient=shown.patient,
        event=shown.event,
        act=act,
        base=_base(patient_id),
        current="agenda",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/agenda/evenements/{event_id}/annuler", response_class=HTMLResponse)
def cancel_confirm(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    return _confirm_page(request, services, patient_id, event_id, "annuler")


@router.get("/espace/{patient_id}/agenda/evenements/{event_id}/supprimer", response_class=HTMLResponse)
def delete_confirm(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    return _confirm_page(request, services, patient_id, event_id, "supprimer")


@router.post("/espace/{patient_id}/agenda/evenements/{event_id}/annuler", response_class=HTMLResponse)
def cancel_event(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        portal.cancel(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    return RedirectResponse(f"{_base(patient_id)}/evenements/{quote(event_id, safe='')}?message=annule", 303)


@router.post("/espace/{patient_id}/agenda/evenements/{event_id}/supprimer", response_class=HTMLResponse)
def delete_event(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        portal.delete(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    return RedirectResponse(view_url(_base(patient_id), "liste") + "&message=supprime", 303)


# ------------------------------------------------------------------ iCalendar: the download and the private links


@router.get("/espace/{patient_id}/agenda.ics")
def download(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """AGD-1: the agenda as an iCalendar file (RFC 5545), every detail (the person is logged in)."""
    viewer = require_viewer(request, services)
    body = calendar.export(services, viewer.actor, patient_id)
    disposition = 'attachment; filename="agenda-carnet.ics"'
    return Response(body, media_type=ICS, headers={"Content-Disposition": disposition})


@router.post("/espace/{patient_id}/agenda/abonnements", response_class=HTMLResponse)
def create_feed(
    request: Request, services: ServicesDep, patient_id: str, details: Annotated[str, Form(max_length=5)] = ""
) -> Response:
    """A private subscription link: its address is shown this once (only its SHA-256 is kept)."""
    viewer = require_viewer(request, services)
    try:
        created = calendar.create_feed(services, viewer.actor, patient_id, details == "oui")
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    except calendar.FeedError as exc:
        return _refused(request, services, exc.message)
    patient = portal.new_form(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "agenda/feed_created.html",
        title="Lien d'abonnement créé",
        viewer=viewer,
        patient=patient,
        feed=created.feed,
        url=created.url(services.settings.base_url),
        base=_base(patient_id),
        current="agenda",
    )


@router.post("/espace/{patient_id}/agenda/abonnements/{feed_id}/retirer", response_class=HTMLResponse)
def revoke_feed(request: Request, services: ServicesDep, patient_id: str, feed_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        calendar.revoke_feed(services, viewer.actor, patient_id, feed_id)
    except EventNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    return RedirectResponse(view_url(_base(patient_id), "liste") + "&message=lien-retire#abonnements", 303)


@router.api_route("/agenda/abonnement/{token}.ics", methods=["GET", "HEAD"], include_in_schema=False)
def subscription(request: Request, services: ServicesDep, token: str) -> Response:
    """A private subscription link: no login; unknown and revoked are the same 404 (nothing said of why)."""
    body = calendar.serve_feed(services, token)
    if body is None:
        return Response("Lien d'abonnement inconnu ou retiré.\n", status_code=404, media_type="text/plain")
    return Response(body, media_type=ICS, headers={"Content-Disposition": 'inline; filename="agenda-carnet.ics"'})


# ------------------------------------------------------------------ the professional (AGD-1, ACC-3)


def _pro_context(request: Request, services: Services, viewer: Viewer, patient_id: str) -> dict[str, Any] | Response:
    """The professional's status in the space, as their menu shows it; the name only when they may read the space.
    Giving an appointment needs no standing (like a deposit): only an open space."""
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return render(
            request,
            services,
            "pro_refused.html",
            status_code=403,
            title="Accès refusé",
            viewer=viewer,
            reason=exc.decision.reason,
            current="pro",
        )
    status = space.status
    until = status.emergency_until.astimezone(PARIS).strftime("%H:%M") if status.emergency_until else ""
    return {
        "status": status,
        "person": status.patient if status.allowed else None,
        "role": status.role,
        "until": until,
        "explanation": f"Accès en urgence jusqu'à {until}." if until else "",
        "base": _pro_base(patient_id),
        "current": "pro",
    }


def _pro_page(
    request: Request,
    services: Services,
    patient_id: str,
    *,
    message: str = "",
    error: rules.EventError | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    viewer = require_viewer(request, services)
    context = _pro_context(request, services, viewer, patient_id)
    if isinstance(context, Response):
        return context
    given = portal.agenda(services, viewer.actor, patient_id, "liste", _today())
    return render(
        request,
        services,
        "agenda/pro_agenda.html",
        status_code=400 if error else 200,
        title="Agenda : rendez-vous donnés",
        viewer=viewer,
        given=given,
        values=values or {"date": _today().isoformat()},
        error=error.message if error else "",
        error_field=next((n for n, f in FIELDS.items() if error and f == error.field), ""),
        message=MESSAGES.get(message, ""),
        limits={"titre": rules.TITLE_MAX, "lieu": rules.PLACE_MAX, "avec": rules.WITH_MAX},
        comment_max=rules.COMMENT_MAX,
        **context,
        **HELPERS,
    )


@router.get("/pro/patients/{patient_id}/agenda", response_class=HTMLResponse)
def pro_agenda(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=30)] = ""
) -> Response:
    """AGD-1: the appointments this professional gave to the person, and the form to give one."""
    return _pro_page(request, services, patient_id, message=message)


@router.post("/pro/patients/{patient_id}/agenda", response_class=HTMLResponse)
def pro_give(request: Request, services: ServicesDep, patient_id: str, form: PostedDep) -> Response:
    """A professional gives an appointment in any open space (it is shown to the person with who gave it)."""
    viewer = require_viewer(request, services)
    typed = _typed(rules.APPOINTMENT, form, form.get("journee") == "oui")
    try:
        portal.add(services, viewer.actor, patient_id, typed)
    except rules.EventError as error:
        return _pro_page(request, services, patient_id, error=error, values=_values(typed))
    except AccessDenied as exc:
        return render(
            request,
            services,
            "pro_refused.html",
            status_code=403,
            title="Accès refusé",
            viewer=viewer,
            reason=exc.decision.reason,
            current="pro",
        )
    return RedirectResponse(f"{_pro_base(patient_id)}/agenda?message=ajoute", 303)


@router.get("/pro/patients/{patient_id}/agenda/{event_id}/annuler", response_class=HTMLResponse)
def pro_cancel_confirm(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    viewer = require_viewer(request, services)
    context = _pro_context(request, services, viewer, patient_id)
    if isinstance(context, Response):
        return context
    try:
        shown = portal.removal(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return render(
            request,
            services,
            "pro_refused.html",
            status_code=404,
            title="Élément introuvable",
            viewer=viewer,
            reason=NOT_FOUND,
            current="pro",
        )
    return render(
        request,
        services,
        "agenda/pro_cancel.html",
        title="Annuler un rendez-vous",
        viewer=viewer,
        event=shown.event,
        **context,
        **HELPERS,
    )


@router.post("/pro/patients/{patient_id}/agenda/{event_id}/annuler", response_class=HTMLResponse)
def pro_cancel(request: Request, services: ServicesDep, patient_id: str, event_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        portal.cancel(services, viewer.actor, patient_id, event_id)
    except EventNotFound:
        return render(
            request,
            services,
            "pro_refused.html",
            status_code=404,
            title="Élément introuvable",
            viewer=viewer,
            reason=NOT_FOUND,
            current="pro",
        )
    return RedirectResponse(f"{_pro_base(patient_id)}/agenda?message=annule", 303)
