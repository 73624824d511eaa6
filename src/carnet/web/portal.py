"""The portal's pages (server-rendered, French): login, second factor, homes, history, settings."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import segno
from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from carnet.bootstrap import Services
from carnet.hall import audit
from carnet.hall.actors import ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.history import service as history
from carnet.identity.service import auth
from carnet.people.service import lookup as people
from carnet.people.service import preferences
from carnet.people.tables import Patient
from carnet.web.deps import (
    LoginRequired,
    ServicesDep,
    Viewer,
    csrf_protect,
    load_viewer,
    session_cookie_name,
    template_context,
)

router = APIRouter(dependencies=[Depends(csrf_protect)])
PARIS = ZoneInfo("Europe/Paris")
SECTIONS = [
    ("Documents", "Vos comptes rendus, ordonnances, résultats et documents, classés et chiffrés."),
    ("Profil médical", "Allergies, traitements, antécédents, vaccinations et mesures."),
    ("Agenda", "Rendez-vous, rappels de vaccination et de dépistage."),
    ("Messagerie", "Échanges sécurisés avec vos professionnels de santé."),
]


def render(
    request: Request, services: Services, template: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, template_context(request, services, **context), status_code=status_code
    )
    return response


def _client(request: Request) -> str:
    return request.client.host if request.client else "inconnu"


def _set_session_cookie(services: Services, response: Response, token: str) -> None:
    response.set_cookie(
        session_cookie_name(services), token, httponly=True, secure=services.settings.https, samesite="lax", path="/"
    )


def require_viewer(request: Request, services: Services, db: Session) -> Viewer:
    viewer = load_viewer(request, services, db, auth.FULL_STAGE)
    if viewer is None:
        raise LoginRequired
    request.state.viewer = viewer
    return viewer


def _home_url(viewer: Viewer) -> str:
    if viewer.actor.kind == ActorKind.PATIENT and viewer.actor.patient_id:
        return f"/espace/{viewer.actor.patient_id}"
    if viewer.actor.kind == ActorKind.OPERATOR:
        return "/operateur"
    return "/pro"


@router.get("/", include_in_schema=False)
def index(request: Request, services: ServicesDep) -> Response:
    with services.db.unit_of_work() as db:
        viewer = load_viewer(request, services, db, auth.FULL_STAGE)
    return RedirectResponse(_home_url(viewer) if viewer else "/connexion", status_code=303)


RETURN_COOKIE = "carnet_suite"


def safe_return(value: str | None) -> str | None:
    """An address of this site to come back to after logging in (an e-mailed invitation link): a local
    path only — no scheme, no host, no "//" — and never the login pages themselves."""
    if not value or len(value) > 500 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 32 for c in value) or value.startswith(("/connexion", "/deconnexion")):
        return None
    return value


@router.get("/connexion", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep, suite: str = "") -> Response:
    response = render(request, services, "login.html", title="Connexion")
    back = safe_return(suite)
    if back:  # kept for the two steps of the login, in a cookie the login pages only receive
        response.set_cookie(
            RETURN_COOKIE,
            back,
            max_age=900,
            httponly=True,
            secure=services.settings.https,
            samesite="lax",
            path="/connexion",
        )
    return response


@router.post("/connexion", response_class=HTMLResponse)
def login_submit(
    request: Request,
    services: ServicesDep,
    identifiant: Annotated[str, Form(max_length=100)] = "",
    mot_de_passe: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    error = None
    with services.db.unit_of_work() as db:
        try:
            account = auth.check_password(services, db, identifiant, mot_de_passe, _client(request))
        except auth.LoginError as exc:
            error = exc.message
        else:
            token = auth.start_session(services, db, account, auth.MFA_STAGE)
            method = "totp" if account.totp_secret else "email"
            if method == "email":
                auth.send_email_code(services, db, account)
    if error:
        status = 429 if "Trop de tentatives" in error else 400
        return render(
            request, services, "login.html", status_code=status, title="Connexion", error=error, identifiant=identifiant
        )
    response = RedirectResponse(f"/connexion/verification?methode={method}", status_code=303)
    _set_session_cookie(services, response, token)
    return response


@router.get("/connexion/verification", response_class=HTMLResponse)
def mfa_page(request: Request, services: ServicesDep, methode: str = "email") -> Response:
    with services.db.unit_of_work() as db:
        viewer = load_viewer(request, services, db, auth.MFA_STAGE)
        if viewer is None:
            return RedirectResponse("/connexion", status_code=303)
        has_totp = bool(viewer.account.totp_secret)
        email_hint = _mask_email(viewer.account.email)
    method = "totp" if methode == "totp" and has_totp else "email"
    return render(
        request,
        services,
        "mfa.html",
        title="Vérification en deux étapes",
        method=method,
        has_totp=has_totp,
        email_hint=email_hint,
    )


def _mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}•••@{domain}"


@router.post("/connexion/verification/email", response_class=HTMLResponse)
def mfa_send_email(request: Request, services: ServicesDep) -> Response:
    with services.db.unit_of_work() as db:
        viewer = load_viewer(request, services, db, auth.MFA_STAGE)
        if viewer is None:
            return RedirectResponse("/connexion", status_code=303)
        auth.send_email_code(services, db, viewer.account)
    return RedirectResponse("/connexion/verification?methode=email&envoye=1", status_code=303)


@router.post("/connexion/verification", response_class=HTMLResponse)
def mfa_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form(max_length=12)] = "",
    methode: Annotated[str, Form(max_length=10)] = "email",
) -> Response:
    token = None
    with services.db.unit_of_work() as db:
        viewer = load_viewer(request, services, db, auth.MFA_STAGE)
        if viewer is None:
            return RedirectResponse("/connexion", status_code=303)
        has_totp = bool(viewer.account.totp_secret)
        email_hint = _mask_email(viewer.account.email)
        method = "totp" if methode == "totp" and has_totp else "email"
        cleaned = code.replace(" ", "")
        if not (cleaned.isdigit() and len(cleaned) == 6):
            ok = False
        elif method == "totp":
            ok = auth.verify_totp(services, viewer.account, cleaned)
        else:
            ok = auth.verify_email_code(services, db, viewer.account, cleaned)
        if ok:
            info = auth.SessionInfo(viewer.session_key, auth.MFA_STAGE, viewer.account)
            token = auth.complete_login(services, db, info, method)
            home = _home_url(Viewer(viewer.account, auth.actor_for(db, viewer.account), ""))
    if token is None:
        return render(
            request,
            services,
            "mfa.html",
            status_code=400,
            title="Vérification en deux étapes",
            method=method,
            has_totp=has_totp,
            email_hint=email_hint,
            error="Code incorrect ou expiré. Vérifiez les 6 chiffres ou demandez un nouveau code.",
        )
    response = RedirectResponse(safe_return(request.cookies.get(RETURN_COOKIE)) or home, status_code=303)
    _set_session_cookie(services, response, token)
    response.delete_cookie(RETURN_COOKIE, path="/connexion")
    return response


@router.post("/deconnexion")
def logout(request: Request, services: ServicesDep) -> Response:
    with services.db.unit_of_work() as db:
        info = auth.load_session(services, db, request.cookies.get(session_cookie_name(services)))
        if info is not None:
            actor = auth.actor_for(db, info.account)
            audit.record(
                db,
                actor,
                "auth.logout",
                patient_id=info.account.patient_id,
                resource_type="account",
                resource_id=info.account.id,
            )
            auth.end_session(db, info.key)
    response = RedirectResponse("/connexion?deconnecte=1", status_code=303)
    response.delete_cookie(session_cookie_name(services), path="/")
    return response


@router.get("/espace", include_in_schema=False)
def my_space(request: Request, services: ServicesDep) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
    return RedirectResponse(_home_url(viewer), status_code=303)


def _space(
    request: Request, services: Services, db: Session, patient_id: str, action: Action, resource: Resource
) -> tuple[Viewer, Patient]:
    viewer = require_viewer(request, services, db)
    guard(db, viewer.actor, patient_id, action, resource)
    patient = db.get(Patient, patient_id)
    assert patient is not None  # the policy denies unknown spaces
    return viewer, patient


@router.get("/espace/{patient_id}", response_class=HTMLResponse)
def space_home(request: Request, services: ServicesDep, patient_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        own = db.get(Patient, patient_id) if viewer.actor.patient_id == patient_id else None
        if own is not None and own.status == "closed":  # ENR-6: the owner may reopen (decided by the policy)
            return render(request, services, "space_closed.html", title="Espace fermé", viewer=viewer, closed=own)
        viewer, patient = _space(request, services, db, patient_id, Action.SPACE_VIEW, Resource("space"))
        audit.record(db, viewer.actor, str(Action.SPACE_VIEW), patient_id=patient_id, resource_type="space")
        children = people.attached_children(db, patient_id)
        alerts = history.alerts(db, viewer.actor, patient_id)  # TRC-3 in the portal
    return render(
        request,
        services,
        "space_home.html",
        title="Mon espace santé",
        viewer=viewer,
        patient=patient,
        sections=SECTIONS,
        children=children,
        alerts=alerts,
        current="accueil",
    )


HISTORY_MESSAGES = {"signale": history.REPORTED}


def _history_day(value: str, label: str, errors: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        errors.append(f"La date « {label} » n'est pas valide : choisissez une date (jour, mois, année).")
        return None


def _paris_midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=PARIS).astimezone(UTC)


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
    errors: list[str] = []
    day_from = _history_day(du, "du", errors)
    day_to = _history_day(au, "au", errors)
    if day_from and day_to and day_to < day_from:
        errors.append("La fin de la période est avant son début : vérifiez les dates.")
    query = history.HistoryQuery(
        tab=tab,
        kind=kind,
        date_from=_paris_midnight(day_from) if day_from and not errors else None,
        date_to=_paris_midnight(day_to + timedelta(days=1)) if day_to and not errors else None,
    )
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        view = history.history_view(db, viewer.actor, patient_id, query)
        patient = db.get(Patient, patient_id)
    filters = {"du": du.strip(), "au": au.strip(), "type": kind}
    return render(
        request,
        services,
        "history.html",
        status_code=400 if errors else 200,
        title="Historique",
        viewer=viewer,
        patient=patient,
        view=view,
        lines=view.lines,
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
    patient: Patient | None,
    line: history.HistoryLine,
    *,
    comment: str = "",
    error: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    return render(
        request,
        services,
        "history_report.html",
        status_code=status_code,
        title="Signaler une entrée de l'historique",
        viewer=viewer,
        patient=patient,
        line=line,
        comment=comment,
        error=error,
        comment_max=history.COMMENT_MAX,
        current="historique",
    )


def _history_error(request: Request, services: Services, viewer: Viewer, exc: history.HistoryError) -> HTMLResponse:
    title = "Entrée introuvable" if exc.status == 404 else "Signalement impossible"
    return render(request, services, "error.html", status_code=exc.status, title=title, message=exc.message)


@router.get("/espace/{patient_id}/historique/{entry_id}/signaler", response_class=HTMLResponse)
def history_report_form(request: Request, services: ServicesDep, patient_id: str, entry_id: int) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            line = history.entry_to_report(db, viewer.actor, patient_id, entry_id)
        except history.HistoryError as exc:
            return _history_error(request, services, viewer, exc)
        patient = db.get(Patient, patient_id)
    return _report_page(request, services, viewer, patient, line)


@router.post("/espace/{patient_id}/historique/{entry_id}/signaler", response_class=HTMLResponse)
def history_report_submit(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    entry_id: int,
    commentaire: Annotated[str, Form(max_length=5000)] = "",
) -> Response:
    """TRC-2: « Signaler » — stored for the service's staff, recorded in the history."""
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        try:
            history.report(db, viewer.actor, patient_id, entry_id, commentaire)
        except history.HistoryError as exc:
            try:
                line = history.entry_to_report(db, viewer.actor, patient_id, entry_id)
            except history.HistoryError as again:
                return _history_error(request, services, viewer, again)
            patient = db.get(Patient, patient_id)
            return _report_page(
                request, services, viewer, patient, line, comment=commentaire, error=exc.message, status_code=400
            )
    return RedirectResponse(f"/espace/{patient_id}/historique?message=signale", status_code=303)


@router.get("/espace/{patient_id}/parametres", response_class=HTMLResponse)
def space_settings(request: Request, services: ServicesDep, patient_id: str) -> Response:
    with services.db.unit_of_work() as db:
        viewer = require_viewer(request, services, db)
        prefs = preferences.read(db, viewer.actor, patient_id)
        patient = db.get(Patient, patient_id)
        totp_enabled = bool(viewer.account.totp_secret)
    return render(
        request,
        services,
        "settings.html",
        title="Paramètres",
        viewer=viewer,
        patient=patient,
        totp_enabled=totp_enabled,
        prefs=prefs,
        notification_kinds=NOTIFICATION_KINDS,
        emergency_kinds=EMERGENCY_KINDS,
        current="parametres",
    )


NOTIFICATION_KINDS = [
    ("notify_documents", "Documents", "Un professionnel a déposé un document dans votre espace."),
    ("notify_messages", "Messagerie", "Vous avez reçu un message."),
    ("notify_exams", "Examens médicaux et vaccinations", "Un rappel d'examen ou de vaccination arrive."),
    ("notify_screening", "Dépistages organisés", "Un dépistage vous est recommandé."),
]


@router.post("/espace/{patient_id}/parametres/notifications", response_class=HTMLResponse)
async def settings_notifications(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """TRC-3: e-mail notifications per kind (checkboxes: a missing box means « off »)."""
    form = await request.form()
    chosen = {name: form.get(name) == "oui" for name, _, _ in NOTIFICATION_KINDS}

    def save() -> None:
        with services.db.unit_of_work() as db:
            viewer = require_viewer(request, services, db)
            preferences.update(db, viewer.actor, patient_id, **chosen)

    await run_in_threadpool(save)
    return RedirectResponse(f"/espace/{patient_id}/parametres?notifications=1", status_code=303)


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


@router.post("/espace/{patient_id}/parametres/urgence", response_class=HTMLResponse)
async def settings_emergency(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """ACC-4: the three emergency toggles (checkboxes: a missing box means « non »)."""
    form = await request.form()
    chosen = {name: form.get(name) == "oui" for name, _, _ in EMERGENCY_KINDS}

    def save() -> None:
        with services.db.unit_of_work() as db:
            viewer = require_viewer(request, services, db)
            preferences.update(db, viewer.actor, patient_id, **chosen)

    await run_in_threadpool(save)
    return RedirectResponse(f"/espace/{patient_id}/parametres?urgence=1#urgence", status_code=303)


@router.post("/espace/{patient_id}/parametres/totp", response_class=HTMLResponse)
def settings_totp(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    etape: Annotated[str, Form(max_length=12)] = "commencer",
    secret_scelle: Annotated[str, Form(max_length=400)] = "",
    code: Annotated[str, Form(max_length=12)] = "",
) -> Response:
    with services.db.unit_of_work() as db:
        viewer, patient = _space(request, services, db, patient_id, Action.SETTINGS_WRITE, Resource("settings"))
        account = viewer.account
        if etape == "desactiver":
            auth.disable_totp(db, account)
            return RedirectResponse(f"/espace/{patient_id}/parametres?totp=desactive", status_code=303)
        error = None
        if etape == "confirmer":
            try:
                secret = services.keys.unseal(secret_scelle, "totp-setup:" + account.id)
            except Exception:
                return RedirectResponse(f"/espace/{patient_id}/parametres", status_code=303)
            if auth.enable_totp(services, db, account, secret, code.replace(" ", "")):
                return RedirectResponse(f"/espace/{patient_id}/parametres?totp=active", status_code=303)
            error = "Le code ne correspond pas. Vérifiez l'heure de votre téléphone et saisissez le code affiché."
        else:
            secret = auth.new_totp_secret()
        qr_svg = segno.make(auth.totp_uri(secret, account), error="m").svg_inline(
            scale=4, title="QR code à scanner avec votre application d'authentification"
        )
        sealed = services.keys.seal(secret, "totp-setup:" + account.id)
    return render(
        request,
        services,
        "totp_setup.html",
        status_code=400 if error else 200,
        title="Activer une application d'authentification",
        viewer=viewer,
        patient=patient,
        qr_svg=qr_svg,
        secret=secret,
        sealed=sealed,
        error=error,
        current="parametres",
    )


@router.get("/dev/boite-mail", response_class=HTMLResponse)
def dev_outbox(request: Request, services: ServicesDep) -> Response:
    """Dev-only: the local outbox of the embedded default (no mail server needed)."""
    if not services.settings.show_dev_pages or not hasattr(services.mailer, "messages"):
        return render(
            request,
            services,
            "error.html",
            status_code=404,
            title="Page introuvable",
            message="Cette page n'existe pas.",
        )
    messages = []
    for message in services.mailer.messages():
        body = message.get_body(preferencelist=("plain",))
        messages.append(
            {
                "to": message["To"],
                "subject": message["Subject"],
                "date": message["Date"],
                "text": body.get_content() if body else "",
            }
        )
    return render(request, services, "outbox.html", title="Boîte d'envoi (développement)", messages=messages)
