"""The catalogue's OAuth 2 endpoints (CAT-2), beside ``/oauth/token`` (``carnet.identity.api``, which hands the
``authorization_code`` and ``refresh_token`` grants to ``carnet.catalogue.service.oauth``):

- ``GET /oauth/authorize`` — the consent screen, a page of the portal: the person must be logged in (the portal's
  session); an unknown client or a redirect URI not registered is a French page, never a redirect; any other
  problem goes back to the app as ``error=…&state=…``.
- ``POST /oauth/authorize`` — the person's decision (CSRF-protected form), then a 303 back to the app with
  ``code`` and ``state``, or ``error=access_denied``. The page's Content-Security-Policy lets its form lead to
  the app's redirect URI, and nowhere else.
- ``POST /oauth/revoke`` (RFC 7009) and ``POST /oauth/introspect`` (RFC 7662), for the app itself (its client id,
  and its secret for a confidential client).
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote, urlencode, urlsplit

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.catalogue.service import oauth
from carnet.catalogue.service.oauth import AuthorizationRequest, OAuthError, RedirectRefused
from carnet.hall.guard import AccessDenied
from carnet.web.deps import ServicesDep, Viewer, client_address, csrf_protect, load_viewer, render
from carnet.web.security import CSP

router = APIRouter(prefix="/oauth")
authorize_router = APIRouter(prefix="/oauth", dependencies=[Depends(csrf_protect)])

Short = Annotated[str, Query(max_length=500)]
ShortForm = Annotated[str, Form(max_length=500)]
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def _refused_page(request: Request, services: Services, message: str, status: int = 400) -> HTMLResponse:
    return render(
        request, services, "catalogue/authorize_error.html", status_code=status, title="Connexion impossible",
        message=message,
    )  # fmt: skip


def _back(request: AuthorizationRequest, error: OAuthError) -> RedirectResponse:
    url = oauth.back_to_app(
        request.redirect_uri, error=error.error, error_description=error.message, state=request.state
    )
    return RedirectResponse(url, status_code=303)


def _consent_page(
    request: Request, services: Services, viewer: Viewer, space: str, asked: AuthorizationRequest
) -> Response:
    try:
        screen = oauth.consent_screen(services, viewer.actor, space, asked)
    except AccessDenied:
        return _refused_page(
            request,
            services,
            "Seule la personne (ou son représentant légal) connecte une application à son espace.",
            403,
        )
    response = render(
        request, services, "catalogue/consent.html", title=f"Connecter « {screen.app.name} »", screen=screen,
        space=space, viewer=viewer,
    )  # fmt: skip
    parts = urlsplit(asked.redirect_uri)
    origin = f"{parts.scheme}://{parts.netloc}"
    response.headers["Content-Security-Policy"] = CSP.replace("form-action 'self'", f"form-action 'self' {origin}")
    return response


@router.get("/authorize", response_class=HTMLResponse)
def authorize(
    request: Request,
    services: ServicesDep,
    client_id: Short = "",
    redirect_uri: Short = "",
    response_type: Short = "",
    scope: Short = "",
    state: Short = "",
    code_challenge: Short = "",
    code_challenge_method: Short = "",
    espace: Annotated[str, Query(max_length=36)] = "",
) -> Response:
    """The consent screen: each scope the app asks for, in French (SMART App Launch, standalone launch)."""
    asked = AuthorizationRequest(
        client_id, redirect_uri, response_type, scope, state, code_challenge, code_challenge_method
    )
    try:
        oauth.check(services, asked)
    except RedirectRefused as refused:
        return _refused_page(request, services, refused.message)
    except OAuthError as error:
        return _back(asked, error)
    viewer = load_viewer(request, services)
    if viewer is None:  # logged in, the person comes back to this very screen
        back = f"{request.url.path}?{request.url.query}"
        return RedirectResponse(f"/connexion?{urlencode({'suite': back})}", status_code=303)
    request.state.viewer = viewer
    return _consent_page(request, services, viewer, espace or viewer.actor.patient_id or "-", asked)


@authorize_router.post("/authorize")
def decide(
    request: Request,
    services: ServicesDep,
    client_id: ShortForm = "",
    redirect_uri: ShortForm = "",
    response_type: ShortForm = "",
    scope: ShortForm = "",
    state: ShortForm = "",
    code_challenge: ShortForm = "",
    code_challenge_method: ShortForm = "",
    espace: Annotated[str, Form(max_length=36)] = "",
    decision: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    """The person's answer: back to the app with a code (``autoriser``), or with ``access_denied``."""
    asked = AuthorizationRequest(
        client_id, redirect_uri, response_type, scope, state, code_challenge, code_challenge_method
    )
    viewer = load_viewer(request, services)
    if viewer is None:
        return RedirectResponse("/connexion", status_code=303)
    request.state.viewer = viewer
    try:
        if decision == "autoriser":
            url = oauth.grant(services, viewer.actor, espace or viewer.actor.patient_id or "-", asked)
        else:
            oauth.check(services, asked)
            url = oauth.refusal(services, asked)
    except RedirectRefused as refused:
        return _refused_page(request, services, refused.message)
    except OAuthError as error:
        return _back(asked, error)
    except AccessDenied:
        return _refused_page(
            request,
            services,
            "Seule la personne (ou son représentant légal) connecte une application à son espace.",
            403,
        )
    return RedirectResponse(url, status_code=303)


def client_credentials(request: Request, client_id: str, client_secret: str) -> tuple[str, str]:
    """HTTP Basic (client_secret_basic) or the form (client_secret_post, or a public client's id alone)."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("basic "):
        try:
            user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return "", ""
        return unquote(user), unquote(password)
    return client_id, client_secret


def oauth_error(error: OAuthError) -> JSONResponse:
    headers = {**NO_STORE, **({"WWW-Authenticate": 'Basic realm="carnet"'} if error.status == 401 else {})}
    return JSONResponse(
        {"error": error.error, "error_description": error.message}, status_code=error.status, headers=headers
    )


def _limited(request: Request, services: Services) -> JSONResponse | None:
    if services.ip_limiter.hit("oauth:" + client_address(request)):
        return None
    return JSONResponse(
        {"error": "slow_down", "error_description": "Trop de demandes ; réessayez dans une minute."},
        status_code=429,
        headers=NO_STORE,
    )


@router.post("/revoke")
def revoke(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(max_length=200)] = "",
    token_type_hint: Annotated[str, Form(max_length=40)] = "",
    client_id: Annotated[str, Form(max_length=100)] = "",
    client_secret: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """RFC 7009: 200 whatever the token (an unknown one included); a refresh token takes its whole series along."""
    limited = _limited(request, services)
    if limited is not None:
        return limited
    try:
        oauth.revoke(services, *client_credentials(request, client_id, client_secret), token)
    except OAuthError as error:
        return oauth_error(error)
    return Response(status_code=200, headers=NO_STORE)


@router.post("/introspect")
def introspect(
    request: Request,
    services: ServicesDep,
    token: Annotated[str, Form(max_length=200)] = "",
    token_type_hint: Annotated[str, Form(max_length=40)] = "",
    client_id: Annotated[str, Form(max_length=100)] = "",
    client_secret: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    """RFC 7662, for the app that holds the token: ``active``, and for a live one its scope, expiry and patient."""
    limited = _limited(request, services)
    if limited is not None:
        return limited
    try:
        answer = oauth.introspect(services, *client_credentials(request, client_id, client_secret), token)
    except OAuthError as error:
        return oauth_error(error)
    return JSONResponse(answer, headers=NO_STORE)
