"""Request-scoped helpers shared by every page module: services, the logged-in viewer, CSRF, rendering.

No capability logic lives here: who may do what is the policy's business, reached through services.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse

from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.identity.service import auth
from carnet.identity.service.auth import AccountView
from carnet.web.security import CSRF_FIELD, UNSAFE_METHODS, check_csrf, csrf_token_for


def session_cookie_name(services: Services) -> str:
    return "__Host-carnet_session" if services.settings.https else "carnet_session"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class LoginRequired(Exception):
    pass


class UnreadableForm(Exception):
    """A form field holds a character nobody types (NUL): answered 400 with a French page, nothing read further."""


async def csrf_protect(request: Request, services: ServicesDep) -> None:
    """Router-level dependency: every unsafe request of the portal needs a valid token."""
    if request.method in UNSAFE_METHODS:
        submitted = request.headers.get("X-CSRF-Token")
        if submitted is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
            # A NUL typed in a field is no text anyone writes, and PostgreSQL refuses it: a 400, never a 500.
            if any(isinstance(field, str) and "\x00" in field for field in form.values()):
                raise UnreadableForm
        check_csrf(services, request.cookies.get("carnet_csrf"), submitted)


@dataclass(frozen=True)
class Viewer:
    """The logged-in account (plain data) and the actor it acts as."""

    account: AccountView
    actor: Actor
    session_key: str


def session_token(request: Request, services: Services) -> str | None:
    return request.cookies.get(session_cookie_name(services))


def load_viewer(request: Request, services: Services, stage: str = auth.FULL_STAGE) -> Viewer | None:
    session = auth.current_session(services, session_token(request, services), stage)
    if session is None:
        return None
    return Viewer(session.account, session.actor, session.key)


def require_viewer(request: Request, services: Services) -> Viewer:
    viewer = load_viewer(request, services)
    if viewer is None:
        raise LoginRequired
    request.state.viewer = viewer
    return viewer


def client_address(request: Request) -> str:
    return request.client.host if request.client else "inconnu"


def template_context(request: Request, services: Services, **extra: Any) -> dict[str, Any]:
    return {
        "request": request,
        "csrf_token": csrf_token_for(services, request.state.csrf_seed),
        "dev_pages": services.settings.show_dev_pages,
        **extra,
    }


def render(
    request: Request, services: Services, template: str, status_code: int = 200, **context: object
) -> HTMLResponse:
    templates = request.app.state.templates
    response: HTMLResponse = templates.TemplateResponse(
        request, template, template_context(request, services, **context), status_code=status_code
    )
    return response


def home_url(actor: Actor) -> str:
    """Where each kind of actor lands after logging in."""
    if actor.kind == ActorKind.PATIENT and actor.patient_id:
        return f"/espace/{actor.patient_id}"
    if actor.kind == ActorKind.OPERATOR:
        return "/operateur"
    return "/pro"
