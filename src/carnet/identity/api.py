"""OAuth 2 token endpoint: client credentials (RFC 6749 §4.4) for systems calling ``/fhir``; the apps of the
catalogue's ``authorization_code`` and ``refresh_token`` grants are handed to ``carnet.catalogue.service.oauth``."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse

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


@router.post("/token")
def token(
    request: Request,
    services: ServicesDep,
    grant_type: Annotated[str, Form(max_length=40)] = "",
    client_id: Annotated[str, Form(max_length=100)] = "",
    client_secret: Annotated[str, Form(max_length=200)] = "",
    scope: Annotated[str, Form(max_length=500)] = "",
    code: Annotated[str, Form(max_length=200)] = "",
    redirect_uri: Annotated[str, Form(max_length=500)] = "",
    code_verifier: Annotated[str, Form(max_length=200)] = "",
    refresh_token: Annotated[str, Form(max_length=200)] = "",
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
