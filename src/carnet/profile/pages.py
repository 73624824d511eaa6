"""The medical profile in the portal (PRF-1, PRF-2): the overview, a section with its form, an item corrected,
deleted or masked, a measure over time (a chart and the same values as a table) with its form; and the
professional's read-only view of what the policy lets them read.

Each route parses its request, calls a use case of ``carnet.profile.service.portal`` (which asks the policy and
writes the history) and renders what it returns. The professional's pages first learn their status in the space
from ``access`` (the menu and the refusal of the other professional pages). An unknown section, measure or entry
and one the viewer may not read get the same 404 page; nothing typed travels in an address (ids only).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.access.service import pro_view
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.profile.model import growth
from carnet.profile.model import measures as catalogue
from carnet.profile.model.sections import SECTIONS, Section
from carnet.profile.service import portal
from carnet.profile.service.entries import NOT_FOUND, EntryNotFound, EntryView
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer
from carnet.web.security import CSRF_FIELD

router = APIRouter(dependencies=[Depends(csrf_protect)])

MESSAGES = {
    "ajoute": "L'élément a été ajouté à votre profil.",
    "modifie": "L'élément a été modifié.",
    "supprime": "L'élément a été supprimé.",
    "masque": "L'élément est maintenant masqué aux professionnels, sauf votre médecin traitant et vos administrateurs.",
    "demasque": "L'élément est de nouveau visible des professionnels que vous autorisez.",
    "mesure": "La mesure a été enregistrée.",
    "mesure-supprimee": "La mesure a été supprimée.",
    "objectif": "Votre objectif a été enregistré.",
}
PERIOD_LABELS = {"3m": "3 derniers mois", "1a": "12 derniers mois", "5a": "5 dernières années", "tout": "Tout"}
BAD_MOMENT = "La date ou l'heure de la mesure n'est pas valide : choisissez un jour et une heure."
DIRECTIVES_CATEGORY = "DIR_ANT"  # the vault's category of the advance directives (a document, not a profile item)
EXAMPLES = {  # what the value field of a measure's form suggests
    "weight": "63,5",
    "height": "165",
    "heart_rate": "72",
    "waist": "80",
    "steps": "8000",
    "head_circumference": "45,5",
    "pain": "3",
    "temperature": "37,2",
    "glucose": "1,05",
    "interstitial_glucose": "1,10",
    "hba1c": "6,8",
    "gmi": "6,9",
}
CHILD_EXAMPLES = {"weight": "18,5", "height": "110", "head_circumference": "50"}
SOURCES = {
    "patient": "Saisi par {who}",
    "professional": "Saisi par {who}, professionnel de santé",
    "establishment": "Transmis par {who} (établissement de santé)",
    "app": "Transmis par l'application {who}",
}


def _base(patient_id: str) -> str:
    return f"/espace/{quote(patient_id, safe='')}/profil"


def _pro_base(patient_id: str) -> str:
    return f"/pro/patients/{quote(patient_id, safe='')}"


# ------------------------------------------------------------------ what the templates show


def entered(entry: EntryView) -> str:
    """Who entered an entry and when, in French."""
    when = entry.created_at.astimezone(PARIS).strftime("le %d/%m/%Y à %H:%M")
    who = SOURCES.get(entry.source, "{who}").format(who=entry.author_label or "inconnu")
    text = f"{who}, {when}"
    if entry.version > 1:
        text += entry.updated_at.astimezone(PARIS).strftime(" ; modifié le %d/%m/%Y à %H:%M")
    return text


def field_text(section: Section, name: str, value: str) -> str:
    """A field's value as a person reads it (dates in the French way)."""
    field = next((f for f in section.fields if f.name == name), None)
    if field is not None and field.kind == "date":
        try:
            return date.fromisoformat(value).strftime("%d/%m/%Y")
        except ValueError:
            return value
    return value


def item_details(section: Section, entry: EntryView) -> list[tuple[str, str]]:
    """The fields of an item after its name, as (label, value)."""
    return [
        (f.label, field_text(section, f.name, entry.fields[f.name]))
        for f in section.fields[1:]
        if entry.fields.get(f.name)
    ]


def item_name(section: Section, entry: EntryView) -> str:
    """How an item is named in a list (the role first for a person of the entourage or a professional)."""
    name = entry.fields.get(section.main.name) or entry.fields.get("label") or section.title
    return f"{name} — {entry.fields['label']}" if section.main.name == "role" and entry.fields.get("label") else name


def _plain(value: float) -> str:
    """A number with the decimals it needs (at most 2), the French way: 110, 5,5."""
    text = catalogue.french_number(value, 2)
    return text.rstrip("0").rstrip(",") if "," in text else text


def value_text(measure: catalogue.Measure, entry: EntryView) -> str:
    if entry.components:
        parts = [catalogue.french_number(entry.components.get(c.key, 0), measure.decimals) for c in measure.components]
        return f"{' / '.join(parts)} {measure.unit.label}"
    return catalogue.format_value(measure, entry.value or 0)


def typed_text(measure: catalogue.Measure, entry: EntryView) -> str:
    """The value as typed, when it was typed in another unit than the one shown (« saisi : 110 mg/dL »)."""
    unit = next((u for u in measure.units if u.code == entry.unit_entered), None)
    if unit is None or unit == measure.unit or entry.value is None:
        return ""
    return f"saisi : {_plain((entry.value - unit.offset) / unit.factor)} {unit.label}"


def age_text(birth: date, moment: datetime | None) -> str:
    if moment is None:
        return ""
    day = moment.astimezone(PARIS).date()
    months = (day.year - birth.year) * 12 + day.month - birth.month - (day.day < birth.day)
    if months < 24:
        return f"{months} mois"
    years, rest = divmod(months, 12)
    return f"{years} ans" + (f" {rest} mois" if rest else "")


def _age_months(birth: date, moment: datetime) -> float:
    return round((moment.astimezone(PARIS).date() - birth).days / 30.4375, 2)


@dataclass(frozen=True)
class Row:
    """One line of the table under a chart."""

    entry: EntryView
    cells: list[str]  # one per value column (blood pressure: systolic, diastolic)
    typed: str
    age: str
    percentile: str


def _percentile(page: portal.MeasurePage, entry: EntryView) -> str:
    if not page.growth or entry.value is None or entry.effective_at is None:
        return ""
    months = _age_months(page.growth["birth_date"], entry.effective_at)
    value = growth.percentile_of(page.measure.key, page.growth["sex"], months, entry.value)
    if value is None:
        return ""
    if value < 1:
        return "moins de 1"
    return "plus de 99" if value > 99 else f"{value:.0f}e"


def rows_of(page: portal.MeasurePage) -> list[Row]:
    measure = page.measure
    rows = []
    for entry in page.rows:
        if measure.components:
            values = entry.components or {}
            cells = [catalogue.format_value(measure, values.get(c.key, 0)) for c in measure.components]
        else:
            cells = [catalogue.format_value(measure, entry.value or 0)]
        birth = page.growth["birth_date"] if page.growth else None
        age = age_text(birth, entry.effective_at) if birth else ""
        rows.append(Row(entry, cells, typed_text(measure, entry), age, _percentile(page, entry)))
    return rows


def columns_of(measure: catalogue.Measure) -> list[str]:
    if measure.components:
        return [c.label for c in measure.components]
    return [measure.label]


def _stamp(moment: datetime | None) -> int | None:
    return int(moment.timestamp()) if moment else None


def chart_of(page: portal.MeasurePage) -> dict[str, Any] | None:
    """What ``static/charts.js`` draws: the measure over time, or a child's growth against the WHO curves."""
    measure = page.measure
    points = [p for p in page.points if p.effective_at is not None]
    spec: dict[str, Any] = {"title": measure.label, "unit": measure.unit.label}
    if page.growth:
        birth = page.growth["birth_date"]
        spec |= {"x": "number", "x_label": "Âge (mois)"}
        spec["series"] = [
            {
                "label": measure.label,
                "points": [[_age_months(birth, p.effective_at), p.value] for p in points if p.effective_at],
            }
        ]
        spec["bands"] = [
            {
                "label": f"{percentile}e percentile (OMS)",
                "short": f"{percentile}e",
                "points": [[age, round(value, 2)] for age, value in curve],
            }
            for percentile, curve in sorted(page.growth["curves"].items())
        ]
        return spec
    if not points:
        return None
    if measure.components:
        spec["series"] = [
            {"label": c.label, "points": [[_stamp(p.effective_at), (p.components or {}).get(c.key)] for p in points]}
            for c in measure.components
        ]
    else:
        spec["series"] = [{"label": measure.label, "points": [[_stamp(p.effective_at), p.value] for p in points]}]
    if page.target is not None and measure.default_target is not None:
        first, last = _stamp(points[0].effective_at) or 0, _stamp(points[-1].effective_at) or 0
        if first == last:
            first, last = first - 86400, last + 86400
        label = f"Objectif : {catalogue.format_value(measure, page.target)}"
        spec["bands"] = [{"label": label, "short": "Objectif", "points": [[first, page.target], [last, page.target]]}]
    return spec


def chart_json(spec: dict[str, Any] | None) -> str:
    """The chart's data for a ``<script type="application/json">`` block (no ``</script>`` can close it)."""
    text = json.dumps(spec or {}, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


HELPERS: dict[str, Any] = {
    "entered": entered,
    "item_details": item_details,
    "item_name": item_name,
    "value_text": value_text,
}


# ------------------------------------------------------------------ answers shared by the routes


def _not_found(request: Request, services: Services) -> HTMLResponse:
    """An unknown section, measure or entry, and one the viewer may not read: one answer."""
    return render(request, services, "error.html", status_code=404, title="Élément introuvable", message=NOT_FOUND)


def _refused(request: Request, services: Services, reason: str) -> HTMLResponse:
    """A refusal the policy explained to someone who may read the entry (the people of the space)."""
    return render(request, services, "error.html", status_code=403, title="Action impossible", message=reason)


async def posted_fields(request: Request) -> dict[str, str]:
    """The fields of a section's form as typed (the section decides which it knows)."""
    form = await request.form()
    return {k: v for k, v in form.items() if isinstance(v, str) and k != CSRF_FIELD}


FieldsDep = Annotated[dict[str, str], Depends(posted_fields)]


def error_field(section: Section, message: str) -> str:
    """The field a French message of ``clean_fields`` is about (it starts with « Label »), or ""."""
    return next((f.name for f in section.fields if message.startswith(f"« {f.label} »")), "")


# ------------------------------------------------------------------ the overview (PRF-1, PRF-2)


@router.get("/espace/{patient_id}/profil", response_class=HTMLResponse)
def overview(
    request: Request, services: ServicesDep, patient_id: str, message: Annotated[str, Query(max_length=30)] = ""
) -> Response:
    viewer = require_viewer(request, services)
    page = portal.overview(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "profile/overview.html",
        title="Profil médical",
        viewer=viewer,
        patient=page.patient,
        view=page,
        base=_base(patient_id),
        measure_base=f"{_base(patient_id)}/mesures",
        directives_url=f"/espace/{quote(patient_id, safe='')}/documents?categorie={DIRECTIVES_CATEGORY}",
        access_url=f"/espace/{quote(patient_id, safe='')}/acces#medecin",
        message=MESSAGES.get(message, ""),
        current="profil",
        **HELPERS,
    )


# ------------------------------------------------------------------ a section: list and add (PRF-1)


def _section_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    key: str,
    *,
    message: str = "",
    error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        page = portal.section_page(services, viewer.actor, patient_id, key)
    except EntryNotFound:
        return _not_found(request, services)
    return render(
        request,
        services,
        "profile/section.html",
        status_code=status_code,
        title=page.section.title,
        viewer=viewer,
        patient=page.patient,
        view=page,
        section=page.section,
        base=_base(patient_id),
        access_url=f"/espace/{quote(patient_id, safe='')}/acces#medecin",
        family_url=f"/espace/{quote(patient_id, safe='')}/famille",
        message=MESSAGES.get(message, ""),
        error=error,
        error_field=error_field(page.section, error) if error else "",
        values=values or {},
        current="profil",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/profil/{section}", response_class=HTMLResponse)
def section_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    section: str,
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    return _section_page(request, services, viewer, patient_id, section, message=message)


@router.post("/espace/{patient_id}/profil/{section}", response_class=HTMLResponse)
def section_add(request: Request, services: ServicesDep, patient_id: str, section: str, fields: FieldsDep) -> Response:
    viewer = require_viewer(request, services)
    try:
        portal.add_item(services, viewer.actor, patient_id, section, fields)
    except EntryNotFound:
        return _not_found(request, services)
    except CarnetError as exc:
        return _section_page(
            request, services, viewer, patient_id, section, error=exc.message, values=fields, status_code=400
        )
    return RedirectResponse(f"{_base(patient_id)}/{quote(section, safe='')}?message=ajoute", status_code=303)


# ------------------------------------------------------------------ an item: correct, delete, mask (PRF-1)


def _edit_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    entry_id: str,
    *,
    error: str = "",
    values: dict[str, str] | None = None,
) -> Response:
    try:
        form = portal.item_form(services, viewer.actor, patient_id, entry_id)
    except EntryNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    return render(
        request,
        services,
        "profile/edit.html",
        status_code=400 if error else 200,
        title=f"Modifier : {form.section.title}",
        viewer=viewer,
        patient=form.patient,
        section=form.section,
        entry=form.entry,
        base=_base(patient_id),
        error=error,
        error_field=error_field(form.section, error) if error else "",
        values=values if values is not None else form.entry.fields,
        current="profil",
        **HELPERS,
    )


@router.get("/espace/{patient_id}/profil/elements/{entry_id}/modifier", response_class=HTMLResponse)
def item_edit(request: Request, services: ServicesDep, patient_id: str, entry_id: str) -> Response:
    viewer = require_viewer(request, services)
    return _edit_page(request, services, viewer, patient_id, entry_id)


@router.post("/espace/{patient_id}/profil/elements/{entry_id}/modifier", response_class=HTMLResponse)
def item_update(request: Request, services: ServicesDep, patient_id: str, entry_id: str, fields: FieldsDep) -> Response:
    viewer = require_viewer(request, services)
    try:
        section = portal.update_item(services, viewer.actor, patient_id, entry_id, fields)
    except EntryNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    except CarnetError as exc:
        return _edit_page(request, services, viewer, patient_id, entry_id, error=exc.message, values=fields)
    return RedirectResponse(f"{_base(patient_id)}/{section}?message=modifie", status_code=303)


@router.get("/espace/{patient_id}/profil/elements/{entry_id}/supprimer", response_class=HTMLResponse)
def item_delete_confirm(request: Request, services: ServicesDep, patient_id: str, entry_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        shown = portal.removal(services, viewer.actor, patient_id, entry_id)
    except EntryNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    entry = shown.entry
    measure = catalogue.MEASURES.get(entry.measure or "")
    section = SECTIONS.get(entry.section)
    return render(
        request,
        services,
        "profile/delete.html",
        title="Supprimer un élément du profil",
        viewer=viewer,
        patient=shown.patient,
        entry=entry,
        heading=shown.title,
        what=value_text(measure, entry) if measure else item_name(section, entry) if section else shown.title,
        when=entry.effective_at,
        back=f"{_base(patient_id)}/mesures/{measure.key}" if measure else f"{_base(patient_id)}/{entry.section}",
        base=_base(patient_id),
        current="profil",
        **HELPERS,
    )


@router.post("/espace/{patient_id}/profil/elements/{entry_id}/supprimer", response_class=HTMLResponse)
def item_delete(request: Request, services: ServicesDep, patient_id: str, entry_id: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        row = portal.delete_entry(services, viewer.actor, patient_id, entry_id)
    except EntryNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    if row.measure:
        return RedirectResponse(f"{_base(patient_id)}/mesures/{row.measure}?message=mesure-supprimee", status_code=303)
    return RedirectResponse(f"{_base(patient_id)}/{row.section}?message=supprime", status_code=303)


def _mask(request: Request, services: Services, patient_id: str, entry_id: str, masked: bool) -> Response:
    viewer = require_viewer(request, services)
    try:
        row = portal.set_masked(services, viewer.actor, patient_id, entry_id, masked)
    except EntryNotFound:
        return _not_found(request, services)
    except AccessDenied as exc:
        return _refused(request, services, exc.decision.reason)
    where = f"mesures/{row.measure}" if row.measure else row.section
    done = "masque" if masked else "demasque"
    return RedirectResponse(f"{_base(patient_id)}/{where}?message={done}", status_code=303)


@router.post("/espace/{patient_id}/profil/elements/{entry_id}/masquer", response_class=HTMLResponse)
def item_mask(request: Request, services: ServicesDep, patient_id: str, entry_id: str) -> Response:
    """PRF-1: what a professional entered is masked to the other professionals, like a document."""
    return _mask(request, services, patient_id, entry_id, True)


@router.post("/espace/{patient_id}/profil/elements/{entry_id}/demasquer", response_class=HTMLResponse)
def item_unmask(request: Request, services: ServicesDep, patient_id: str, entry_id: str) -> Response:
    return _mask(request, services, patient_id, entry_id, False)


# ------------------------------------------------------------------ a measure over time (PRF-2)


def _now_values() -> dict[str, str]:
    now = datetime.now(UTC).astimezone(PARIS)
    return {"date": now.strftime("%Y-%m-%d"), "heure": now.strftime("%H:%M")}


def _measure_context(page: portal.MeasurePage) -> dict[str, Any]:
    spec = chart_of(page)
    return {
        "view": page,
        "measure": page.measure,
        "rows": rows_of(page),
        "columns": columns_of(page.measure),
        "chart": spec,
        "chart_data": chart_json(spec) if spec else "",
        "periods": PERIOD_LABELS,
        "target_text": catalogue.format_value(page.measure, page.target) if page.target is not None else "",
        "target_value": catalogue.french_number(page.target, page.measure.decimals) if page.target is not None else "",
        "default_target_text": catalogue.format_value(page.measure, page.measure.default_target)
        if page.measure.default_target is not None
        else "",
        "value_example": (CHILD_EXAMPLES if page.growth else EXAMPLES).get(page.measure.key)
        or EXAMPLES.get(page.measure.key, "12,5"),
        "growth_source": page.growth["source"] if page.growth else "",
    }


def _measure_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    key: str,
    period: str | None,
    *,
    message: str = "",
    error: str = "",
    target_error: str = "",
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        page = portal.measure_page(services, viewer.actor, patient_id, key, period)
    except EntryNotFound:
        return _not_found(request, services)
    return render(
        request,
        services,
        "profile/measure.html",
        status_code=status_code,
        title=page.measure.label,
        viewer=viewer,
        patient=page.patient,
        base=_base(patient_id),
        page_url=f"{_base(patient_id)}/mesures/{page.measure.key}",
        message=MESSAGES.get(message, ""),
        error=error,
        target_error=target_error,
        values=values or _now_values(),
        current="profil",
        **_measure_context(page),
        **HELPERS,
    )


@router.get("/espace/{patient_id}/profil/mesures/{key}", response_class=HTMLResponse)
def measure_page(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    key: str,
    periode: Annotated[str, Query(max_length=10)] = "",
    message: Annotated[str, Query(max_length=30)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    return _measure_page(request, services, viewer, patient_id, key, periode or None, message=message)


def _moment(day: str, hour: str) -> datetime | None:
    """The moment typed in the form (French time); None: now. ``CarnetError`` when it is not a date.
    A day without an hour is at noon, or now for today."""
    if not day.strip() and not hour.strip():
        return None
    now = datetime.now(UTC).astimezone(PARIS)
    try:
        typed_day = date.fromisoformat(day.strip()) if day.strip() else now.date()
        typed_hour = time.fromisoformat(hour.strip()) if hour.strip() else None
    except ValueError:
        raise CarnetError(BAD_MOMENT) from None
    if typed_hour is None:
        typed_hour = now.time() if typed_day == now.date() else time(12)
    return datetime.combine(typed_day, typed_hour.replace(tzinfo=None), tzinfo=PARIS)


@router.post("/espace/{patient_id}/profil/mesures/{key}", response_class=HTMLResponse)
def measure_add(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    key: str,
    valeur: Annotated[str, Form(max_length=50)] = "",
    unite: Annotated[str, Form(max_length=30)] = "",
    systolique: Annotated[str, Form(max_length=50)] = "",
    diastolique: Annotated[str, Form(max_length=50)] = "",
    jour: Annotated[str, Form(alias="date", max_length=20)] = "",
    heure: Annotated[str, Form(max_length=20)] = "",
    commentaire: Annotated[str, Form(max_length=1000)] = "",
) -> Response:
    """PRF-2: a value typed in a unit people use, checked against the plausible range, kept in the canonical one."""
    viewer = require_viewer(request, services)
    values = {
        "valeur": valeur,
        "unite": unite,
        "systolique": systolique,
        "diastolique": diastolique,
        "date": jour,
        "heure": heure,
        "commentaire": commentaire,
    }
    try:
        typed = portal.MeasureInput(valeur, unite or None, systolique, diastolique, _moment(jour, heure), commentaire)
        portal.add_measure(services, viewer.actor, patient_id, key, typed)
    except EntryNotFound:
        return _not_found(request, services)
    except CarnetError as exc:
        code = 422 if isinstance(exc, catalogue.ImplausibleValue) else 400
        return _measure_page(
            request, services, viewer, patient_id, key, None, error=exc.message, values=values, status_code=code
        )
    return RedirectResponse(f"{_base(patient_id)}/mesures/{quote(key, safe='')}?message=mesure", status_code=303)


@router.post("/espace/{patient_id}/profil/mesures/{key}/objectif", response_class=HTMLResponse)
def measure_target(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    key: str,
    objectif: Annotated[str, Form(max_length=50)] = "",
) -> Response:
    """PRF-2: the person's HbA1c target (7 % unless they set another)."""
    viewer = require_viewer(request, services)
    try:
        portal.set_target(services, viewer.actor, patient_id, key, objectif)
    except EntryNotFound:
        return _not_found(request, services)
    except CarnetError as exc:
        error = exc.message
        return _measure_page(request, services, viewer, patient_id, key, None, target_error=error, status_code=400)
    return RedirectResponse(f"{_base(patient_id)}/mesures/{quote(key, safe='')}?message=objectif", status_code=303)


# ------------------------------------------------------------------ the professional's view (read only)


def _pro_space(request: Request, services: Services, viewer: Viewer, patient_id: str) -> dict[str, Any] | Response:
    """The professional's status in the space, as the menu of their pages shows it; the refusal page when the
    policy does not let them read it (the same reason as their other pages)."""
    try:
        space = pro_view.space(services, viewer.actor, patient_id)
    except AccessDenied as exc:
        return _pro_refused(request, services, viewer, exc.decision.reason)
    status = space.status
    if not status.allowed:
        return _pro_refused(request, services, viewer, status.reason)
    until = status.emergency_until.astimezone(PARIS).strftime("%H:%M") if status.emergency_until else ""
    return {
        "status": status,
        "person": status.patient,
        "role": status.role,
        "until": until,
        "explanation": f"Accès en urgence jusqu'à {until}. La personne et son médecin traitant sont informés de cet "
        "accès."
        if until
        else "",
        "base": _pro_base(patient_id),
        "current": "pro",
    }


def _pro_refused(
    request: Request, services: Services, viewer: Viewer, reason: str, status_code: int = 403
) -> HTMLResponse:
    return render(
        request,
        services,
        "pro_refused.html",
        status_code=status_code,
        title="Élément introuvable" if status_code == 404 else "Accès refusé",
        viewer=viewer,
        reason=reason,
        current="pro",
    )


@router.get("/pro/patients/{patient_id}/profil", response_class=HTMLResponse)
def pro_overview(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """The profile as the professional's standing and profession let them read it (PRF-1, ACC-1..4)."""
    viewer = require_viewer(request, services)
    context = _pro_space(request, services, viewer, patient_id)
    if isinstance(context, Response):
        return context
    page = portal.overview(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "profile/pro_overview.html",
        title="Profil médical du patient",
        viewer=viewer,
        view=page,
        measure_base=f"{_pro_base(patient_id)}/profil/mesures",
        directives_url=f"{_pro_base(patient_id)}/documents?categorie={DIRECTIVES_CATEGORY}",
        **context,
        **HELPERS,
    )


@router.get("/pro/patients/{patient_id}/profil/mesures/{key}", response_class=HTMLResponse)
def pro_measure(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    key: str,
    periode: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    context = _pro_space(request, services, viewer, patient_id)
    if isinstance(context, Response):
        return context
    try:
        page = portal.measure_page(services, viewer.actor, patient_id, key, periode or None)
    except EntryNotFound:
        return _pro_refused(request, services, viewer, NOT_FOUND, 404)
    return render(
        request,
        services,
        "profile/pro_measure.html",
        title=page.measure.label,
        viewer=viewer,
        page_url=f"{_pro_base(patient_id)}/profil/mesures/{page.measure.key}",
        **_measure_context(page),
        **context,
        **HELPERS,
    )
