"""Login pages (ENR-5): password, second factor (e-mailed code, TOTP or a passkey), logout; passkeys (issue #16-3):
logging in with one, and managing one's own in « Paramètres ».

They parse the form, call one use case of ``carnet.identity.service.auth`` and render; the service owns
the transaction, the throttling and the history entries.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.hall.policy import Action, Resource
from carnet.identity.service import auth, passkeys
from carnet.people.service.lookup import open_space
from carnet.web.deps import (
    ServicesDep,
    client_address,
    csrf_protect,
    home_url,
    load_viewer,
    render,
    require_viewer,
    session_cookie_name,
    session_token,
)

router = APIRouter(dependencies=[Depends(csrf_protect)])
RETURN_COOKIE = "carnet_suite"
MFA_TITLE = "Vérification en deux étapes"
WRONG_CODE = "Code incorrect ou expiré. Vérifiez les 6 chiffres ou demandez un nouveau code."


def _set_session_cookie(services: Services, response: Response, token: str) -> None:
    response.set_cookie(
        session_cookie_name(services), token, httponly=True, secure=services.settings.https, samesite="lax", path="/"
    )


@router.get("/", include_in_schema=False)
def index(request: Request, services: ServicesDep) -> Response:
    viewer = load_viewer(request, services)
    return RedirectResponse(home_url(viewer.actor) if viewer else "/connexion", status_code=303)


def _login_page(request: Request, services: Services, status: int = 200, **context: object) -> Response:
    return render(
        request,
        services,
        "login.html",
        status_code=status,
        title="Connexion",
        passkeys_available=passkeys.available(services.settings),
        **context,
    )


def safe_return(value: str | None) -> str | None:
    """An address of this site to come back to after logging in (an e-mailed invitation link): a local
    path only — no scheme, no host, no "//" — and never the login pages themselves. Up to 2,000 characters: an
    app's consent screen (``/oauth/authorize?…``) carries its whole request."""
    if not value or len(value) > 2000 or not value.startswith("/") or value.startswith("//"):
        return None
    if "\\" in value or any(ord(c) < 32 for c in value) or value.startswith(("/connexion", "/deconnexion")):
        return None
    return value


@router.get("/connexion", response_class=HTMLResponse)
def login_page(request: Request, services: ServicesDep, suite: str = "") -> Response:
    response = _login_page(request, services)
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
    missing = [
        name
        for name, value in (("votre identifiant", identifiant.strip()), ("votre mot de passe", mot_de_passe))
        if not value
    ]
    if missing:  # nothing typed is not a wrong password (issue #15-12): say what is missing, count nothing
        return _login_page(
            request, services, 400, error="Saisissez " + " et ".join(missing) + ".", identifiant=identifiant
        )
    try:
        started = auth.log_in(services, identifiant, mot_de_passe, client_address(request))
    except auth.LoginError as exc:
        status = 429 if exc.message in {auth.IP_LIMITED} or "Trop de tentatives" in exc.message else 400
        return _login_page(request, services, status, error=exc.message, identifiant=identifiant)
    delayed = "&retard=1" if started.delayed else ""
    response = RedirectResponse(f"/connexion/verification?methode={started.method}{delayed}", status_code=303)
    _set_session_cookie(services, response, started.token)
    return response


def _mask_email(email: str) -> str:
    name, _, domain = email.partition("@")
    return f"{name[:1]}•••@{domain}"


def _mfa_page(request: Request, services: Services, method: str, status: int = 200, error: str = "") -> Response:
    half = load_viewer(request, services, auth.MFA_STAGE)
    if half is None:
        return RedirectResponse("/connexion", status_code=303)
    has_totp = half.account.has_totp
    return render(
        request,
        services,
        "mfa.html",
        status_code=status,
        title=MFA_TITLE,
        method="totp" if method == "totp" and has_totp else "email",
        has_totp=has_totp,
        email_hint=_mask_email(half.account.email),
        error=error or None,
        has_passkeys=passkeys.available(services.settings)
        and passkeys.has_passkeys(services, session_token(request, services)),
    )


@router.get("/connexion/verification", response_class=HTMLResponse)
def mfa_page(request: Request, services: ServicesDep, methode: str = "email") -> Response:
    return _mfa_page(request, services, methode)


def _refused(request: Request, services: Services, method: str, refusal: auth.LoginError) -> Response:
    """A bound of the second step was reached: said on the code page, or on the login page when the half
    session ended with the lock."""
    if load_viewer(request, services, auth.MFA_STAGE) is not None:
        return _mfa_page(request, services, method, status=429, error=refusal.message)
    return _login_page(request, services, 429, error=refusal.message)


@router.post("/connexion/verification/email", response_class=HTMLResponse)
def mfa_send_email(request: Request, services: ServicesDep) -> Response:
    try:
        sent = auth.resend_login_code(services, session_token(request, services))
    except auth.LoginError as refusal:
        return _refused(request, services, "email", refusal)
    if sent is None:
        return RedirectResponse("/connexion", status_code=303)
    return RedirectResponse(f"/connexion/verification?methode=email&{sent}=1", status_code=303)


@router.post("/connexion/verification", response_class=HTMLResponse)
def mfa_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form(max_length=12)] = "",
    methode: Annotated[str, Form(max_length=10)] = "email",
) -> Response:
    half = load_viewer(request, services, auth.MFA_STAGE)
    if half is None:
        return RedirectResponse("/connexion", status_code=303)
    method = "totp" if methode == "totp" and half.account.has_totp else "email"
    try:
        done = auth.finish_login(services, session_token(request, services), method, code, client_address(request))
    except auth.LoginError as refusal:
        return _refused(request, services, method, refusal)
    if done is None:
        return _mfa_page(request, services, method, status=400, error=WRONG_CODE)
    token, actor = done
    response = RedirectResponse(safe_return(request.cookies.get(RETURN_COOKIE)) or home_url(actor), status_code=303)
    _set_session_cookie(services, response, token)
    response.delete_cookie(RETURN_COOKIE, path="/connexion")
    return response


@router.post("/deconnexion")
def logout(request: Request, services: ServicesDep) -> Response:
    auth.log_out(services, session_token(request, services))
    response = RedirectResponse("/connexion?deconnecte=1", status_code=303)
    response.delete_cookie(session_cookie_name(services), path="/")
    return response


# --- passkeys (issue #16-3) ---------------------------------------------------------------------------------

PASSKEYS_TITLE = "Clés d'accès"
MAX_ANSWER_FIELD = passkeys.MAX_ANSWER


def _set_challenge_cookie(services: Services, response: Response, token: str) -> None:
    response.set_cookie(
        passkeys.COOKIE,
        token,
        max_age=passkeys.CHALLENGE_MINUTES * 60,
        httponly=True,
        secure=services.settings.https,
        samesite="strict",
        path="/",
    )


def _ceremony(services: Services, ceremony: passkeys.Ceremony) -> Response:
    response = Response(ceremony.options, media_type="application/json")
    _set_challenge_cookie(services, response, ceremony.token)
    return response


def _json_error(message: str, status: int = 400) -> Response:
    return JSONResponse({"erreur": message}, status_code=status)


@router.post("/connexion/cle-acces/options")
def passkey_login_options(request: Request, services: ServicesDep) -> Response:
    """The options of ``navigator.credentials.get`` (JSON): after the password, the account's passkeys; before,
    any passkey of this site."""
    try:
        ceremony = passkeys.begin_login(services, session_token(request, services), client_address(request))
    except auth.LoginError as exc:
        return _json_error(exc.message, 429)
    except passkeys.PasskeyError as exc:
        return _json_error(exc.message)
    return _ceremony(services, ceremony)


@router.post("/connexion/cle-acces", response_class=HTMLResponse)
def passkey_login(
    request: Request, services: ServicesDep, reponse: Annotated[str, Form(max_length=MAX_ANSWER_FIELD)] = ""
) -> Response:
    """The authenticator's answer (posted by static/passkeys.js): a full session, or the French refusal on the
    page the person came from."""
    token = session_token(request, services)
    half = load_viewer(request, services, auth.MFA_STAGE)
    try:
        actor_token, actor = passkeys.finish_login(
            services, request.cookies.get(passkeys.COOKIE), reponse, token, client_address(request)
        )
    except auth.LoginError as refusal:
        status = 429 if "Trop de" in refusal.message else 400
        if half is not None and load_viewer(request, services, auth.MFA_STAGE) is not None:
            response = _mfa_page(request, services, "email", status=status, error=refusal.message)
        else:
            response = _login_page(request, services, status, error=refusal.message)
        response.delete_cookie(passkeys.COOKIE, path="/")
        return response
    response = RedirectResponse(safe_return(request.cookies.get(RETURN_COOKIE)) or home_url(actor), status_code=303)
    _set_session_cookie(services, response, actor_token)
    response.delete_cookie(RETURN_COOKIE, path="/connexion")
    response.delete_cookie(passkeys.COOKIE, path="/")
    return response


def _passkeys_page(
    request: Request,
    services: Services,
    patient_id: str,
    status: int = 200,
    error: str = "",
    name: str = "",
    error_title: str = "La clé d'accès n'a pas été ajoutée",
) -> Response:
    viewer = require_viewer(request, services)
    items = passkeys.list_passkeys(services, viewer.actor, patient_id)
    patient = open_space(services, viewer.actor, patient_id, Action.SETTINGS_READ, Resource("settings"))
    return render(
        request,
        services,
        "passkeys.html",
        status_code=status,
        title=PASSKEYS_TITLE,
        viewer=viewer,
        patient=patient,
        passkeys=items,
        available=passkeys.available(services.settings),
        max_passkeys=passkeys.MAX_PASSKEYS,
        name_max=passkeys.NAME_MAX,
        error=error or None,
        error_title=error_title,
        typed_name=name,
        current="parametres",
    )


@router.get("/espace/{patient_id}/parametres/cles-acces", response_class=HTMLResponse)
def passkeys_page(request: Request, services: ServicesDep, patient_id: str) -> Response:
    return _passkeys_page(request, services, patient_id)


@router.post("/espace/{patient_id}/parametres/cles-acces/options")
def passkey_registration_options(request: Request, services: ServicesDep, patient_id: str) -> Response:
    """The options of ``navigator.credentials.create`` (JSON)."""
    viewer = require_viewer(request, services)
    try:
        ceremony = passkeys.begin_registration(services, viewer.actor, patient_id)
    except passkeys.PasskeyError as exc:
        return _json_error(exc.message)
    return _ceremony(services, ceremony)


@router.post("/espace/{patient_id}/parametres/cles-acces", response_class=HTMLResponse)
def passkey_register(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    nom: Annotated[str, Form(max_length=200)] = "",
    reponse: Annotated[str, Form(max_length=MAX_ANSWER_FIELD)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        passkeys.finish_registration(
            services, viewer.actor, patient_id, request.cookies.get(passkeys.COOKIE), reponse, nom
        )
    except passkeys.PasskeyError as exc:
        response = _passkeys_page(request, services, patient_id, 400, exc.message, nom[: passkeys.NAME_MAX])
    else:
        response = RedirectResponse(f"/espace/{patient_id}/parametres/cles-acces?ajoutee=1", status_code=303)
    response.delete_cookie(passkeys.COOKIE, path="/")
    return response


@router.post("/espace/{patient_id}/parametres/cles-acces/{passkey_id}/supprimer", response_class=HTMLResponse)
def passkey_remove(request: Request, services: ServicesDep, patient_id: str, passkey_id: str) -> Response:
    viewer = require_viewer(request, services)
    if not passkeys.remove_passkey(services, viewer.actor, patient_id, passkey_id):
        raise HTTPException(404, "Cette clé d'accès n'existe pas ou a déjà été retirée.")
    return RedirectResponse(f"/espace/{patient_id}/parametres/cles-acces?retiree=1", status_code=303)


@router.post("/espace/{patient_id}/parametres/cles-acces/{passkey_id}/renommer", response_class=HTMLResponse)
def passkey_rename(
    request: Request,
    services: ServicesDep,
    patient_id: str,
    passkey_id: str,
    nom: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        found = passkeys.rename_passkey(services, viewer.actor, patient_id, passkey_id, nom)
    except passkeys.PasskeyError as exc:
        return _passkeys_page(request, services, patient_id, 400, exc.message, error_title="Le nom n'a pas été changé")
    if not found:
        raise HTTPException(404, "Cette clé d'accès n'existe pas ou a été retirée.")
    return RedirectResponse(f"/espace/{patient_id}/parametres/cles-acces?renommee=1", status_code=303)
