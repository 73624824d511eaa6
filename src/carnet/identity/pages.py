"""Login pages (ENR-5): password, second factor (e-mailed code or TOTP), logout.

They parse the form, call one use case of ``carnet.identity.service.auth`` and render; the service owns
the transaction, the throttling and the history entries.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.identity.service import auth
from carnet.web.deps import (
    ServicesDep,
    client_address,
    csrf_protect,
    home_url,
    load_viewer,
    render,
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
    missing = [
        name
        for name, value in (("votre identifiant", identifiant.strip()), ("votre mot de passe", mot_de_passe))
        if not value
    ]
    if missing:  # nothing typed is not a wrong password (issue #15-12): say what is missing, count nothing
        return render(
            request,
            services,
            "login.html",
            status_code=400,
            title="Connexion",
            error="Saisissez " + " et ".join(missing) + ".",
            identifiant=identifiant,
        )
    try:
        started = auth.log_in(services, identifiant, mot_de_passe, client_address(request))
    except auth.LoginError as exc:
        status = 429 if exc.message in {auth.IP_LIMITED} or "Trop de tentatives" in exc.message else 400
        return render(
            request,
            services,
            "login.html",
            status_code=status,
            title="Connexion",
            error=exc.message,
            identifiant=identifiant,
        )
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
    )


@router.get("/connexion/verification", response_class=HTMLResponse)
def mfa_page(request: Request, services: ServicesDep, methode: str = "email") -> Response:
    return _mfa_page(request, services, methode)


def _refused(request: Request, services: Services, method: str, refusal: auth.LoginError) -> Response:
    """A bound of the second step was reached: said on the code page, or on the login page when the half
    session ended with the lock."""
    if load_viewer(request, services, auth.MFA_STAGE) is not None:
        return _mfa_page(request, services, method, status=429, error=refusal.message)
    return render(request, services, "login.html", status_code=429, title="Connexion", error=refusal.message)


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
