"""HTTP hardening: security headers, CSRF tokens, request logging without health data."""

from __future__ import annotations

import hmac
import logging
import secrets
import time

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from carnet.bootstrap import Services

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
        "worker-src 'self'",  # the service worker /sw.js (issue #16-2)
        "manifest-src 'self'",  # /manifest.webmanifest
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)


class CsrfError(Exception):
    pass


SECRET_PATHS = ("/agenda/abonnement/",)  # the rest of these paths is a secret token (a calendar subscription link)


def loggable_path(path: str) -> str:
    """The path as the logs may keep it: a secret token in the path (``/agenda/abonnement/<token>.ics``) is
    replaced by « *** »."""
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "***"
    return path


def without_nul(scope: Scope) -> None:
    """A NUL in the address (path or query string, as ``%00``) becomes U+FFFD (issue #15-2): no id, token or search
    term holds one, and PostgreSQL refuses NUL in a text parameter — the request is then answered like any unknown
    id or bad value (404, 400), never with a 500."""
    if "\x00" in scope["path"]:
        scope["path"] = scope["path"].replace("\x00", "\ufffd")
    query: bytes = scope.get("query_string", b"")
    if b"%00" in query or b"\x00" in query:
        scope["query_string"] = query.replace(b"%00", b"%EF%BF%BD").replace(b"\x00", b"%EF%BF%BD")


def csrf_token_for(services: Services, seed: str) -> str:
    return services.keys.mac("csrf", seed)


def check_csrf(services: Services, seed: str | None, submitted: str | None) -> None:
    """Double-submit check: the form carries an HMAC of the (HttpOnly) cookie's random seed."""
    expected = csrf_token_for(services, seed or "")
    if not seed or not submitted or not hmac.compare_digest(expected, submitted):
        raise CsrfError


class SecurityMiddleware:
    """Pure ASGI middleware: security headers, the CSRF seed cookie, and a request log without health data."""

    def __init__(self, app: ASGIApp, services: Services) -> None:
        self.app = app
        self.settings = services.settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        without_nul(scope)
        path: str = scope["path"]
        seed = cookie_parser(Headers(scope=scope).get("cookie", "")).get(CSRF_COOKIE)
        new_seed = None
        if not seed or len(seed) != 43:
            seed = new_seed = secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_seed"] = seed
        status = 500

        async def send_with_headers(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Frame-Options", "DENY")
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=()"
                headers["Cross-Origin-Opener-Policy"] = "same-origin"
                if self.settings.https:
                    headers["Strict-Transport-Security"] = "max-age=63072000; includeSubDomains"
                if not path.startswith("/static/"):
                    headers.setdefault("Cache-Control", "no-store")
                if new_seed and not path.startswith(("/static/", "/fhir", "/api", "/oauth", *SECRET_PATHS)):
                    secure = "; Secure" if self.settings.https else ""
                    headers.append("Set-Cookie", f"{CSRF_COOKIE}={new_seed}; HttpOnly; Path=/; SameSite=strict{secure}")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            # Path only: query strings may carry identifiers and must never reach the logs; nor may a secret token.
            shown = loggable_path(path)
            log.info("%s %s %s %.1fms", scope["method"], shown, status, (time.perf_counter() - started) * 1000)
