"""OAuth 2 token endpoint: client credentials (RFC 6749 §4.4) for systems calling ``/fhir``; the apps of the
catalogue's ``authorization_code`` and ``refresh_token`` grants are handed to ``carnet.catalogue.service.oauth``."""

from __future__ import annotations

import base64
import binascii
from urllib.parse import unquote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from carnet.catalogue.service import oauth as app_oauth
from carnet.identity.model import ScopeError
from carnet.identity.service import clients
from carnet.web.deps import ServicesDep, client_address

router = APIRouter(prefix="/oauth")


def oauth_error(status: int, error: str, description: str) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="carnet"'} if status == 401 else {}
    headers["Cache-Control"] = "no-store"
    return JSONResponse({"error": error, "error_description": description}, status_code=status, headers=headers)


def _basic(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("authorization", "")
    if not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:], validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)


# The token endpoint's fields and their longest accepted value.
TOKEN_FIELDS = {
    "grant_type": 40, "client_id": 100, "client_secret": 200, "scope": 500, "code": 200, "redirect_uri": 500,
    "code_verifier": 200, "refresh_token": 200,
}  # fmt: skip


@router.post("/token")
async def token(request: Request, services: ServicesDep) -> JSONResponse:
    """The form is read here once rather than field by field through the framework's dependencies: this is the
    busiest small route (every app refreshes its token), issue #13. A field too long or repeated, or a body that
    is not a form, is an ``invalid_request`` (RFC 6749 §5.2)."""
    not_a_form = oauth_error(
        400, "invalid_request", "Le corps de la demande doit être un formulaire (x-www-form-urlencoded)."
    )
    if request.headers.get("content-type", "").partition(";")[0].strip().lower() != "application/x-www-form-urlencoded":
        return not_a_form
    try:
        form = await request.form(max_files=0, max_fields=2 * len(TOKEN_FIELDS))
    except HTTPException:  # an unreadable form
        return not_a_form
    values: dict[str, str] = {}
    for name, longest in TOKEN_FIELDS.items():
        given = form.getlist(name)
        if len(given) > 1 or not all(isinstance(v, str) and len(v) <= longest for v in given):
            return oauth_error(
                400, "invalid_request", f"Paramètre « {name} » invalide (une fois, {longest} caractères au plus)."
            )
        values[name] = str(given[0]) if given else ""
    return await run_in_threadpool(_token, request, services, **values)


def _token(
    request: Request,
    services: ServicesDep,
    grant_type: str,
    client_id: str,
    client_secret: str,
    scope: str,
    code: str,
    redirect_uri: str,
    code_verifier: str,
    refresh_token: str,
) -> JSONResponse:
    if not services.ip_limiter.hit("oauth:" + client_address(request)):
        return oauth_error(429, "slow_down", "Trop de demandes de jeton ; réessayez dans une minute.")
    credentials = _basic(request) or (client_id, client_secret)
    if grant_type in {"authorization_code", "refresh_token"}:  # CAT-2: an app of the catalogue
        return _app_token(services, grant_type, credentials, code, redirect_uri, code_verifier, refresh_token, scope)
    if grant_type != "client_credentials":
        return oauth_error(
            400, "unsupported_grant_type", "grant_type accepté : client_credentials, authorization_code, refresh_token."
        )
    try:
        access_token, expires_in, granted = clients.request_token(services, *credentials, scope or None)
    except clients.ClientError as exc:
        return oauth_error(401, "invalid_client", exc.message)
    except ScopeError as exc:
        return oauth_error(400, "invalid_scope", str(exc))
    return JSONResponse(
        {"access_token": access_token, "token_type": "Bearer", "expires_in": expires_in, "scope": granted},
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


def _app_token(
    services: ServicesDep,
    grant_type: str,
    credentials: tuple[str, str],
    code: str,
    redirect_uri: str,
    verifier: str,
    refresh_token: str,
    scope: str,
) -> JSONResponse:
    try:
        if grant_type == "authorization_code":
            issued = app_oauth.exchange_code(services, *credentials, code, redirect_uri, verifier)
        else:
            issued = app_oauth.refresh(services, *credentials, refresh_token, scope)
    except app_oauth.OAuthError as exc:
        return oauth_error(exc.status, exc.error, exc.message)
    body = {
        "access_token": issued.access_token,
        "token_type": "Bearer",
        "expires_in": issued.expires_in,
        "scope": issued.scope,
        "patient": issued.patient_id,
        **({"refresh_token": issued.refresh_token} if issued.refresh_token else {}),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})
