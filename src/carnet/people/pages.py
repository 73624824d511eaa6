"""A space's home and settings pages (VLT-5, TRC-3, ACC-4, ENR-5 second factor, AGD-3 reminders)."""

from __future__ import annotations

from typing import Annotated

import segno
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from carnet.bootstrap import Services
from carnet.hall.policy import Action, Resource
from carnet.identity.service import auth
from carnet.people.service import home, preferences
from carnet.people.service.lookup import open_space
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, home_url, render, require_viewer

router = APIRouter(dependencies=[Depends(csrf_protect)])
SECTIONS = [
    ("Documents", "Vos comptes rendus, ordonnances, résultats et documents, classés et chiffrés."),
    ("Profil médical", "Allergies, traitements, antécédents, vaccinations et mesures."),
    ("Agenda", "Rendez-vous, rappels de vaccination et de dépistage."),
    ("Messagerie", "Échanges sécurisés avec vos professionnels de santé."),
]
NOTIFICATION_KINDS = [
    ("notify_documents", "Documents", "Un professionnel a déposé un document dans votre espace."),
    ("notify_messages", "Messagerie", "Vous avez reçu un message."),
]
REMINDER_KINDS = [  # AGD-3: what the daily reminder e-mail may speak of
    (
        "notify_appointments",
        "Rendez-vous et rappels de l'agenda",
        "Un rendez-vous ou un rappel de votre agenda approche.",
    ),
    (
        "notify_exams",
        "Vaccinations et examens recommandés",
        "Un vaccin, un examen de l'enfant, un bilan bucco-dentaire ou un bilan prévention est bientôt à faire.",
    ),
    (
        "notify_screening",
        "Dépistages organisés",
        "Un dépistage des cancers (sein, côlon, col de l'utérus) est bientôt à faire.",
    ),
]
DETAILS_WARNING = (
    "Attention : un e-mail peut être lu par d'autres que vous (boîte partagée, téléphone prêté, messagerie "
    "d'un employeur). Avec cette option, il nommera le vaccin, l'examen ou le rendez-vous."
)
EMERGENCY_KINDS = [  # ACC-4: the three toggles
    (
        "emergency_samu",
        "Le SAMU peut accéder à mon espace en cas d'urgence",
        "Le médecin régulateur du SAMU (le 15) peut consulter votre espace pendant un appel d'urgence.",
    ),
    (
        "emergency_professionals",
        "Un professionnel de santé peut accéder à mon espace en cas d'urgence (bris de glace)",
        "Quand vous ne pouvez pas donner votre accord, un professionnel peut consulter votre espace pendant "
        "2 heures en indiquant le motif.",
    ),
    (
        "emergency_masked",
        "Mes documents masqués restent visibles lors d'un accès en urgence",
        "Sans cette case, les documents que vous avez masqués restent cachés même en urgence.",
    ),
]
WRONG_TOTP = "Le code ne correspond pas. Vérifiez l'heure de votre téléphone et saisissez le code affiché."


@router.get("/espace", include_in_schema=False)
def my_space(request: Request, services: ServicesDep) -> Response:
    viewer = require_viewer(request, services)
    return RedirectResponse(home_url(viewer.actor), status_code=303)


@router.get("/espace/{patient_id}", response_class=HTMLResponse)
def space_home(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    page = home.space_home(services, viewer.actor, patient_id)
    if isinstance(page, home.ClosedSpace):
        return render(request, services, "space_closed.html", title="Espace fermé", viewer=viewer, closed=page.patient)
    return render(
        request,
        services,
        "space_home.html",
        title="Mon espace santé",
        viewer=viewer,
        patient=page.patient,
        sections=SECTIONS,
        children=page.children,
        alerts=page.alerts,
        unread_messages=page.unread_messages,
        current="accueil",
    )


def _settings_page(
    request: Request,
    services: Services,
    viewer: Viewer,
    patient_id: str,
    reminders_error: str = "",
    typed_days: str = "",
) -> Response:
    patient, prefs = home.read_settings(services, viewer.actor, patient_id)
    return render(
        request,
        services,
        "settings.html",
        status_code=400 if reminders_error else 200,
        title="Paramètres",
        viewer=viewer,
        patient=patient,
        totp_enabled=viewer.account.has_totp,
        prefs=prefs,
        notification_kinds=NOTIFICATION_KINDS,
        reminder_kinds=REMINDER_KINDS,
        details_warning=DETAILS_WARNING,
        reminders_error=reminders_error,
        typed_days=typed_days or str(prefs.reminder_days),
        emergency_kinds=EMERGENCY_KINDS,
        current="parametres",
    )


@router.get("/espace/{patient_id}/parametres", response_class=HTMLResponse)
def space_settings(request: Request, services: ServicesDep, patient_id: str) -> Response:
    viewer = require_viewer(request, services)
    return _settings_page(request, services, viewer, patient_id)


@router.post("/espace/{patient_id}/parametres/rappels", response_class=HTMLResponse)
def settings_reminders(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    notify_appointments: Annotated[str, Form(max_length=10)] = "",
    notify_exams: Annotated[str, Form(max_length=10)] = "",
    notify_screening: Annotated[str, Form(max_length=10)] = "",
    reminder_details: Annotated[str, Form(max_length=10)] = "",
    reminder_days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """AGD-3: the reminders e-mailed (appointments, vaccinations and examinations, screenings), how many days
    ahead (1 to 30), and whether the e-mail may name what it reminds of."""
    viewer = require_viewer(request, services)
    try:
        home.change_reminders(
            services,
            viewer.actor,
            patient_id,
            reminder_days,
            notify_appointments=notify_appointments == "oui",
            notify_exams=notify_exams == "oui",
            notify_screening=notify_screening == "oui",
            reminder_details=reminder_details == "oui",
        )
    except preferences.SettingsError as exc:
        return _settings_page(request, services, viewer, patient_id, exc.message, reminder_days)
    return RedirectResponse(f"/espace/{patient_id}/parametres?rappels=1#rappels", status_code=303)


async def _save_checkboxes(
    request: Request, services: Services, patient_id: str, kinds: list[tuple[str, str, str]]
) -> None:
    """Checkboxes: a missing box means « non »."""
    form = await request.form()
    chosen = {name: form.get(name) == "oui" for name, _, _ in kinds}

    def save() -> None:
        viewer = require_viewer(request, services)
        home.change_settings(services, viewer.actor, patient_id, **chosen)

    await run_in_threadpool(save)


@router.post("/espace/{patient_id}/parametres/notifications", response_class=HTMLResponse)
async def settings_notifications(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """TRC-3: e-mail notifications per kind."""
    await _save_checkboxes(request, services, patient_id, NOTIFICATION_KINDS)
    return RedirectResponse(f"/espace/{patient_id}/parametres?notifications=1", status_code=303)


@router.post("/espace/{patient_id}/parametres/urgence", response_class=HTMLResponse)
async def settings_emergency(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """ACC-4: the three emergency toggles."""
    await _save_checkboxes(request, services, patient_id, EMERGENCY_KINDS)
    return RedirectResponse(f"/espace/{patient_id}/parametres?urgence=1#urgence", status_code=303)


def _totp_page(
    request: Request, services: Services, viewer: Viewer, patient_id: str, setup: auth.TotpSetup, error: str | None
) -> Response:
    patient = open_space(services, viewer.actor, patient_id, Action.SETTINGS_WRITE, Resource("settings"))
    qr_svg = segno.make(setup.uri, error="m").svg_inline(
        scale=4, title="QR code à scanner avec votre application d'authentification"
    )
    return render(
        request,
        services,
        "totp_setup.html",
        status_code=400 if error else 200,
        title="Activer une application d'authentification",
        viewer=viewer,
        patient=patient,
        qr_svg=qr_svg,
        secret=setup.secret,
        sealed=setup.sealed,
        error=error,
        current="parametres",
    )


@router.post("/espace/{patient_id}/parametres/totp", response_class=HTMLResponse)
def settings_totp(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    etape: Annotated[str, Form(max_length=12)] = "commencer",
    secret_scelle: Annotated[str, Form(max_length=400)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    """ENR-5: turn an authenticator app on (scan, then confirm with a code) or off."""
    viewer = require_viewer(request, services)
    if etape == "desactiver":
        auth.totp_disable(services, viewer.actor, patient_id)
        return RedirectResponse(f"/espace/{patient_id}/parametres?totp=desactive", status_code=303)
    if etape != "confirmer":
        return _totp_page(
            request, services, viewer, patient_id, auth.totp_begin(services, viewer.actor, patient_id), None
        )
    try:
        again = auth.totp_confirm(services, viewer.actor, patient_id, secret_scelle, code)
    except ValueError:
        return RedirectResponse(f"/espace/{patient_id}/parametres", status_code=303)
    if again is None:
        return RedirectResponse(f"/espace/{patient_id}/parametres?totp=active", status_code=303)
    return _totp_page(request, services, viewer, patient_id, again, WRONG_TOTP)
