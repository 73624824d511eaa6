"""CAT-1: referencing. An editor applies (the CLI or the operator's form registers the application: ``PRESERIE``);
the operator reviews and decides (publish, take offline, suspend, dereference, renew for a year). Every decision
is the policy's (``APP_MANAGE``, operators only) and is written to the service's own history chain. Suspending or
dereferencing revokes every token of the app in the same transaction — and authentication reads the live status
anyway, so nothing issued before keeps working at the next request.

CAT-2: the person browses the catalogue of their space (apps ``EN_LIGNE``, referencing not expired), searches it
and opens one app's page: what it reads and writes, in plain French.
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.catalogue.model import scopes as smart
from carnet.catalogue.model.apps import AppStatus, TransitionError, is_live, next_status, referenced_until
from carnet.catalogue.service.common import AppNotFound, AppView, CatalogueError, app_view, digest
from carnet.catalogue.tables import App, AppConsent, AppReport, AppToken, RedirectUri
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

RESOURCE = Resource("app")


@dataclass(frozen=True)
class Application:
    """What an editor declares when applying for referencing (CAT-1)."""

    name: str
    editor: str
    redirect_uris: tuple[str, ...]
    scope: str
    description: str = ""
    purpose: str = ""
    retention: str = ""
    consent_wording: str = ""
    security: str = ""
    category: str = ""
    logo_url: str | None = None
    confidential: bool = False


@dataclass(frozen=True)
class Registered:
    app: AppView
    client_secret: str | None  # shown once, for a confidential client


@dataclass(frozen=True)
class ReviewRow:
    app: AppView
    reports: int
    connections: int


@dataclass(frozen=True)
class Catalogue:
    patient: PatientView
    apps: list[AppView]
    query: str
    connected: set[str] = field(default_factory=set)


def _redirect_problem(uri: str) -> str | None:
    parts = urlsplit(uri)
    local = parts.scheme == "http" and parts.hostname in {"127.0.0.1", "localhost", "[::1]", "::1"}
    if len(uri) > 500 or not parts.netloc or parts.fragment or not (parts.scheme == "https" or local):
        return f"Adresse de retour refusée : « {uri[:80]} » (https://…, sans fragment ; http seulement en local)."
    return None


def _check(application: Application) -> str:
    """The application's scopes, normalised; ``CatalogueError`` (French) on anything wrong."""
    if not application.name.strip() or len(application.name) > 120:
        raise CatalogueError("Le nom de l'application est obligatoire (120 caractères au plus).")
    if not application.editor.strip() or len(application.editor) > 200:
        raise CatalogueError("Le nom de l'éditeur est obligatoire (200 caractères au plus).")
    if not application.redirect_uris:
        raise CatalogueError("Indiquez au moins une adresse de retour (--redirect-uri).")
    for uri in application.redirect_uris:
        problem = _redirect_problem(uri)
        if problem:
            raise CatalogueError(problem)
    try:
        parsed = smart.parse(application.scope)
    except smart.ScopeError as exc:
        raise CatalogueError(str(exc)) from exc
    if not parsed.resources:
        raise CatalogueError("Indiquez au moins une portée patient/… (par exemple patient/Observation.cru).")
    return parsed.text()


def register(services: Services, actor: Actor, application: Application) -> Registered:
    """An application for referencing: the app starts ``PRESERIE``; a confidential client's secret is shown once."""
    scope = _check(application)
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.APP_MANAGE, RESOURCE)
        secret = secrets.token_urlsafe(32) if application.confidential else None
        app = App(
            client_id="app-" + secrets.token_hex(10),
            secret_hash=digest(secret) if secret else None,
            name=application.name.strip(),
            editor=application.editor.strip(),
            description=application.description,
            purpose=application.purpose,
            retention=application.retention,
            consent_wording=application.consent_wording,
            security=application.security,
            category=application.category,
            logo_url=application.logo_url,
            scope=scope,
            status=AppStatus.PRESERIE,
        )
        db.add(app)
        db.flush()
        uris = tuple(dict.fromkeys(application.redirect_uris))
        db.add_all(RedirectUri(app_id=app.id, uri=uri) for uri in uris)
        details = {
            "nom": app.name,
            "op": "register",
            "fait": f"a enregistré la demande de référencement de « {app.name} »",
        }
        audit.record(db, actor, str(Action.APP_MANAGE), resource_type="app", resource_id=app.id, details=details)
        return Registered(app_view(app, uris), secret)


def _load(db: Session, app_id: str) -> App:
    app = db.get(App, app_id) if len(app_id) <= 36 else None
    if app is None:
        app = db.scalar(select(App).where(App.client_id == app_id)) if len(app_id) <= 64 else None
    if app is None:
        raise AppNotFound()
    return app


def cut_tokens(db: Session, app_id: str) -> None:
    """Every token of every consent of the app stops now (suspension, dereferencing)."""
    consents = select(AppConsent.id).where(AppConsent.app_id == app_id)
    db.execute(
        update(AppToken)
        .where(AppToken.consent_id.in_(consents), AppToken.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def decide(services: Services, actor: Actor, app_id: str, decision: str) -> AppView:
    """The operator's decision (publish, offline, suspend, dereference, renew); ``CatalogueError`` (French) when
    the current status does not allow it."""
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.APP_MANAGE, RESOURCE)
        app = _load(db, app_id)
        now = utcnow()
        try:
            if decision == "renew":
                if app.status in {AppStatus.DEREFERENCEE}:
                    raise TransitionError("Une application déréférencée ne se renouvelle pas : elle doit redemander.")
                app.referenced_until = referenced_until(now, app.referenced_until)
            else:
                app.status = next_status(app.status, decision)
                if app.status == AppStatus.EN_LIGNE and (app.referenced_until is None or app.referenced_until <= now):
                    app.referenced_until = referenced_until(now, None)
        except TransitionError as exc:
            raise CatalogueError(str(exc)) from exc
        app.decided_at = now
        if app.status in {AppStatus.SUSPENDUE, AppStatus.DEREFERENCEE}:
            cut_tokens(db, app.id)
        details = {"nom": app.name, "op": decision, "statut": app.status}
        audit.record(db, actor, str(Action.APP_MANAGE), resource_type="app", resource_id=app.id, details=details)
        return app_view(app, _uris(db, app.id))


def change_scopes(services: Services, actor: Actor, app_id: str, scope: str) -> AppView:
    """CAT-2: the operator accepts new scopes for an app; its version is bumped, so every connection stops until the
    person consents again (the consent screen says the app's requests changed)."""
    try:
        parsed = smart.parse(scope)
    except smart.ScopeError as exc:
        raise CatalogueError(str(exc)) from exc
    if not parsed.resources:
        raise CatalogueError("Indiquez au moins une portée patient/… (par exemple patient/Observation.cru).")
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.APP_MANAGE, RESOURCE)
        app = _load(db, app_id)
        if parsed.text() != app.scope:
            app.scope, app.scope_version = parsed.text(), app.scope_version + 1
            cut_tokens(db, app.id)
        details = {"nom": app.name, "op": "scopes", "portees": app.scope}
        audit.record(db, actor, str(Action.APP_MANAGE), resource_type="app", resource_id=app.id, details=details)
        return app_view(app, _uris(db, app.id))


def _uris(db: Session, app_id: str) -> tuple[str, ...]:
    return tuple(db.scalars(select(RedirectUri.uri).where(RedirectUri.app_id == app_id).order_by(RedirectUri.uri)))


def review(services: Services, actor: Actor) -> list[ReviewRow]:
    """The operator's list: every app, with its reports and its live connections."""
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.APP_MANAGE, RESOURCE)
        reports = dict(db.execute(select(AppReport.app_id, func.count()).group_by(AppReport.app_id)).all())
        live = select(AppConsent.app_id, func.count()).where(AppConsent.revoked_at.is_(None))
        connections = dict(db.execute(live.group_by(AppConsent.app_id)).all())
        apps = db.scalars(select(App).order_by(App.created_at.desc(), App.name)).all()
        return [
            ReviewRow(app_view(app, _uris(db, app.id)), reports.get(app.id, 0), connections.get(app.id, 0))
            for app in apps
        ]


def report_texts(services: Services, actor: Actor, app_id: str) -> tuple[AppView, list[tuple[str, str]]]:
    """One app and what people reported about it (date, text), for the operator."""
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.APP_MANAGE, RESOURCE)
        app = _load(db, app_id)
        rows = db.execute(
            select(AppReport.created_at, AppReport.reason)
            .where(AppReport.app_id == app.id)
            .order_by(AppReport.created_at.desc())
        ).all()
        return app_view(app, _uris(db, app.id)), [(at.isoformat(), reason) for at, reason in rows]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text.casefold()) if not unicodedata.combining(c))


def browse(services: Services, actor: Actor, patient_id: str, query: str = "") -> Catalogue:
    """CAT-2: the apps a person may connect to this space, searched by name, editor, category or description
    (accents and case ignored); the ones already connected are marked."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("catalogue"))
        now = utcnow()
        rows = db.scalars(select(App).where(App.status == AppStatus.EN_LIGNE).order_by(App.name)).all()
        words = _fold(query).split()
        apps = [
            app_view(app)
            for app in rows
            if is_live(app.status, app.referenced_until, now)
            and all(w in _fold(f"{app.name} {app.editor} {app.category} {app.description}") for w in words)
        ]
        connected = set(
            db.scalars(
                select(AppConsent.app_id).where(AppConsent.patient_id == patient_id, AppConsent.revoked_at.is_(None))
            )
        )
        patient = db.get(Patient, patient_id)
        assert patient is not None
        return Catalogue(patient_view(patient), apps, query, connected)


def detail(services: Services, actor: Actor, patient_id: str, app_id: str) -> tuple[PatientView, AppView]:
    """One app of the catalogue (only a live one: another is « unknown »)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("catalogue"))
        app = _load(db, app_id)
        if not is_live(app.status, app.referenced_until, utcnow()):
            raise AppNotFound()
        patient = db.get(Patient, patient_id)
        assert patient is not None
        return patient_view(patient), app_view(app)
