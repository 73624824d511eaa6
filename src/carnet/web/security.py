"""HTTP hardening: security headers, CSRF tokens, request logging without health data."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable

from fastapi import Request, Response

from carnet.services.context import Services

log = logging.getLogger("carnet.http")
CSRF_COOKIE = "carnet_csrf"
CSRF_FIELD = "csrf_token"
UNSAFE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class CsrfError(Exception):
    pass


def csrf_token_for(services: Services, seed: str) -> str:
    return services.keys.mac("csrf", seed)


def check_csrf(services: Services, seed: str | None, submitted: str | None) -> None:
    """Double-submit check: the form carries an HMAC of the (HttpOnly) cookie's random seed."""
    expected = csrf_token_for(services, seed or "")
    if not seed or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfError


def install(app: object, services: Services) -> None:
    from fastapi import FastAPI

    assert isinstance(app, FastAPI)
    settings = services.settings

    @app.middleware("http")
    async def harden(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        seed = request.cookies.get(CSRF_COOKIE)
        new_seed = None
        if not seed or len(seed) != 43:
            seed = new_seed = secrets.token_urlsafe(32)
        request.state.csrf_seed = seed
        response = await call_next(request)
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CSP)
        headers["X-Content-Type-Options"] = "nosniff"
        headers["X-Frame-Options"] = "DENY"
        headers["Referrer-Policy"] = "same-origin"
        headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if settings.https:
            headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
        if not request.url.path.startswith("/static/"):
            headers.setdefault("Cache-Control", "no-store")
        if new_seed and not request.url.path.startswith(("/static/", "/fhir", "/api", "/oauth")):
            response.set_cookie(
                CSRF_COOKIE, new_seed, httponly=True, secure=settings.https, samesite="strict", path="/"
            )
        # Path only: query strings may carry identifiers and must never reach the logs.
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.url.path,
            response.status_code,
            (time.perf_counter() - started) * 1000,
        )
        return response
