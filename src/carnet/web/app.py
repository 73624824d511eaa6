"""The web application factory: the composition root of the HTTP interfaces."""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from carnet.access import fhir as fhir_access
from carnet.access.pages import patient as access_pages
from carnet.access.pages import pro as pro_pages
from carnet.agenda.fhir import appointments as fhir_appointments
from carnet.agenda.fhir import recommendations as fhir_recommendations
from carnet.agenda.pages import events as agenda_pages
from carnet.agenda.pages import prevention as prevention_pages
from carnet.bootstrap import Services, build_services
from carnet.catalogue import api as catalogue_api
from carnet.catalogue import pages as catalogue_pages
from carnet.config import Settings
from carnet.enrolment.pages import activation
from carnet.enrolment.pages import lifecycle as lifecycle_pages
from carnet.enrolment.pages import operator as operator_pages
from carnet.enrolment.pages import opposition as opposition_pages
from carnet.errors import Unavailable
from carnet.export import pages as export_pages
from carnet.family import pages as family_pages
from carnet.fhir import base as fhir
from carnet.fhir.auth import FhirAuthError
from carnet.fhir.formats import check_json
from carnet.fhir.problems import Problem
from carnet.hall.guard import AccessDenied
from carnet.hall.vocabulary import PARIS
from carnet.history import pages as history_pages
from carnet.identity import api as oauth
from carnet.identity import pages as login_pages
from carnet.messaging.pages import portal as messaging_pages
from carnet.messaging.pages import pro as pro_messaging_pages
from carnet.people import pages as space_pages
from carnet.profile import fhir as profile_fhir
from carnet.profile import pages as profile_pages
from carnet.vault import fhir as mhd
from carnet.vault import pages as vault_pages
from carnet.web import api, dev_pages, pwa, security
from carnet.web.deps import LoginRequired, UnreadableForm, template_context

# the FHIR endpoints answer JSON only: XML asked for (_format, Accept) is a 406 OperationOutcome (issue #14-7)
FHIR_JSON_ONLY = [Depends(check_json)]

HERE = Path(__file__).parent


def date_fr(moment: datetime) -> str:
    """« 26/11/2026 à 09:05 », in French time."""
    return moment.astimezone(PARIS).strftime("%d/%m/%Y à %H:%M")


log = logging.getLogger("carnet")


def _error_page(request: Request, services: Services, status: int, title: str, message: str) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    return templates.TemplateResponse(
        request, "error.html", template_context(request, services, title=title, message=message), status_code=status
    )


def kind(request: Request) -> str:
    """Which way an error is answered: ``fhir`` (OperationOutcome), ``api`` (RFC 7807 problem) or ``page``."""
    path = request.url.path
    if path == "/oauth/authorize":  # CAT-2: the consent screen is a page of the portal
        return "page"
    return "fhir" if path.startswith("/fhir") else "api" if path.startswith(("/api", "/oauth")) else "page"


def _install_error_handlers(app: FastAPI, services: Services) -> None:
    def respond(request: Request, status: int, detail: str, page_title: str) -> Response:
        where = kind(request)
        if where == "fhir":
            return fhir.operation_outcome(status, fhir.FHIR_CODES.get(status, "exception"), detail)
        if where == "api":
            return api.problem(status, detail)
        return _error_page(request, services, status, page_title, detail)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        messages = {
            404: ("Page introuvable", "La page demandée n'existe pas."),
            405: ("Action impossible", "Cette action n'est pas possible à cette adresse."),
        }
        title, detail = messages.get(exc.status_code, ("Erreur", "La requête n'a pas pu aboutir."))
        return respond(request, exc.status_code, detail, title)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        fields = ", ".join(".".join(str(p) for p in err.get("loc", ())[1:]) or "requête" for err in exc.errors())
        return respond(
            request, 422 if kind(request) == "api" else 400, f"Données invalides : {fields}.", "Données invalides"
        )

    @app.exception_handler(security.CsrfError)
    async def csrf_failed(request: Request, exc: security.CsrfError) -> Response:
        return respond(
            request,
            403,
            "Le formulaire a expiré ou ne provient pas de Carnet. Rechargez la page et recommencez.",
            "Formulaire expiré",
        )

    @app.exception_handler(UnreadableForm)
    async def unreadable_form(request: Request, exc: UnreadableForm) -> Response:
        return respond(
            request,
            400,
            "Un caractère invalide (caractère nul) a été saisi dans le formulaire : corrigez la saisie et recommencez.",
            "Saisie invalide",
        )

    @app.exception_handler(LoginRequired)
    async def login_required(request: Request, exc: LoginRequired) -> Response:
        if kind(request) != "page":
            return respond(request, 401, "Authentification requise.", "Connexion requise")
        return RedirectResponse("/connexion", status_code=303)

    @app.exception_handler(FhirAuthError)
    async def fhir_auth_failed(request: Request, exc: FhirAuthError) -> Response:
        response = fhir.operation_outcome(exc.status, "login" if exc.status == 401 else "forbidden", exc.message)
        if exc.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="carnet"'
        return response

    @app.exception_handler(Problem)
    async def fhir_problem(request: Request, exc: Problem) -> Response:
        return exc.response()

    @app.exception_handler(AccessDenied)
    async def denied(request: Request, exc: AccessDenied) -> Response:
        if exc.decision.rule.endswith("not_found"):  # an unknown item of a space one may use: not a refusal
            return respond(request, 404, exc.decision.reason, "Page introuvable")
        return respond(request, 403, "Vous n'avez pas accès à cet espace.", "Accès refusé")

    @app.exception_handler(Unavailable)  # a store Carnet needs is down (S3, #18-1; the store logs why): nothing written
    async def unavailable(request: Request, exc: Unavailable) -> Response:
        response = respond(request, 503, exc.message, "Service momentanément indisponible")
        response.headers["Retry-After"] = "120"
        return response

    @app.exception_handler(Exception)
    async def crashed(request: Request, exc: Exception) -> Response:
        log.error(
            "erreur interne sur %s %s: %s", request.method, security.loggable_path(request.url.path), type(exc).__name__
        )
        return respond(request, 500, "Une erreur inattendue est survenue. Réessayez plus tard.", "Erreur inattendue")


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    """The ASGI application; ``carnet serve`` calls it as a factory in each server process."""
    services = services or build_services(settings or Settings())
    app = FastAPI(
        title="Carnet",
        version="0.1.0",
        docs_url="/api/docs",
        redoc_url=None,
        openapi_url="/api/openapi.json",
        dependencies=[Depends(pro_pages.patients_only)],  # the patient portal is for patients (ACC-1)
    )
    app.state.services = services
    templates = Jinja2Templates(directory=HERE / "templates")
    templates.env.filters["date_fr"] = date_fr
    app.state.templates = templates
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.add_middleware(security.SecurityMiddleware, services=services)
    _install_error_handlers(app, services)
    # The machine-facing routers first: the router tries each included router in turn (about 2 ms for the twenty
    # page routers), and /api, /fhir and /oauth carry the load (ITI-65, ITI-67, tokens); their paths and the
    # pages' never overlap.
    app.include_router(oauth.router)
    # CAT-2: /oauth/authorize (the consent page), /oauth/revoke, /oauth/introspect
    app.include_router(catalogue_api.router)
    app.include_router(catalogue_api.authorize_router)
    app.include_router(mhd.router)
    app.include_router(fhir.router)
    app.include_router(fhir_access.router, dependencies=FHIR_JSON_ONLY)
    app.include_router(profile_fhir.router, dependencies=FHIR_JSON_ONLY)
    app.include_router(fhir_appointments.router, dependencies=FHIR_JSON_ONLY)
    app.include_router(fhir_recommendations.router, dependencies=FHIR_JSON_ONLY)
    app.include_router(api.router)
    app.include_router(login_pages.router)
    app.include_router(space_pages.router)
    app.include_router(history_pages.router)
    app.include_router(dev_pages.router)
    app.include_router(pwa.router)
    app.include_router(activation.router)
    app.include_router(lifecycle_pages.router)
    app.include_router(vault_pages.router)
    app.include_router(profile_pages.router)
    app.include_router(agenda_pages.router)
    app.include_router(prevention_pages.router)
    app.include_router(messaging_pages.router)
    app.include_router(pro_messaging_pages.router)
    app.include_router(export_pages.router)
    app.include_router(access_pages.router)
    pro_pages.install(app)
    app.include_router(opposition_pages.router)
    app.include_router(operator_pages.router)
    family_pages.install(app)
    app.include_router(catalogue_pages.portal_router)
    app.include_router(catalogue_pages.operator_router)
    return app
