"""Request-scoped helpers for the portal: services, the logged-in account, CSRF."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.hall.actors import Actor
from carnet.identity.service import auth
from carnet.people.tables import Account
from carnet.web.security import CSRF_FIELD, UNSAFE_METHODS, check_csrf, csrf_token_for


def session_cookie_name(services: Services) -> str:
    return "__Host-carnet_session" if services.settings.https else "carnet_session"


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


class LoginRequired(Exception):
    pass


async def csrf_protect(request: Request, services: ServicesDep) -> None:
    """Router-level dependency: every unsafe request of the portal needs a valid token."""
    if request.method in UNSAFE_METHODS:
        submitted = request.headers.get("X-CSRF-Token")
        if submitted is None:
            form = await request.form()
            value = form.get(CSRF_FIELD)
            submitted = value if isinstance(value, str) else None
        check_csrf(services, request.cookies.get("carnet_csrf"), submitted)


@dataclass
class Viewer:
    """The logged-in account and the actor it acts as."""

    account: Account
    actor: Actor
    session_key: str


def load_viewer(request: Request, services: Services, db: Session, stage: str) -> Viewer | None:
    info = auth.load_session(services, db, request.cookies.get(session_cookie_name(services)))
    if info is None or info.stage != stage:
        return None
    return Viewer(info.account, auth.actor_for(db, info.account), info.key)


def template_context(request: Request, services: Services, **extra: Any) -> dict[str, Any]:
    return {
        "request": request,
        "csrf_token": csrf_token_for(services, request.state.csrf_seed),
        "dev_pages": services.settings.show_dev_pages,
        **extra,
    }
