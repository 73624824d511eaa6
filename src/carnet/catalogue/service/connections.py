"""CAT-2: the apps connected to a space — the list (« Services connectés »), « Déconnecter » (every token of the
consent stops at the app's next request), « Signaler » (a report to the operator). Each is the space's act
(``APP_CONNECT``: the person, or a minor's legal representative) and goes to the history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.catalogue.model import scopes as smart
from carnet.catalogue.model.apps import is_live
from carnet.catalogue.service.common import AppNotFound, CatalogueError, app_view
from carnet.catalogue.service.labels import OPS
from carnet.catalogue.tables import App, AppConsent, AppReport, AppToken
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

REPORT_MAX = 2000


@dataclass(frozen=True)
class Connection:
    app_id: str
    name: str
    editor: str
    granted_at: datetime
    granted_by: str
    permissions: list[tuple[str, str]]
    status_label: str
    live: bool  # the app may still act (EN_LIGNE, referenced); otherwise it is listed as stopped
    stale: bool  # the app's scopes changed since: it must ask again


@dataclass(frozen=True)
class Connections:
    patient: PatientView
    connections: list[Connection]


def connected(services: Services, actor: Actor, patient_id: str) -> Connections:
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("app_connections"))
        patient = db.get(Patient, patient_id)
        assert patient is not None
        rows = db.execute(
            select(AppConsent, App)
            .join(App, App.id == AppConsent.app_id)
            .where(AppConsent.patient_id == patient_id, AppConsent.revoked_at.is_(None))
            .order_by(AppConsent.granted_at.desc())
        ).all()
        now = utcnow()
        found = [
            Connection(
                app.id,
                app.name,
                app.editor,
                consent.granted_at,
                consent.granted_by_label,
                smart.wording(smart.parse(consent.scope)),
                app_view(app).status_label,
                is_live(app.status, app.referenced_until, now),
                consent.scope_version != app.scope_version,
            )
            for consent, app in rows
        ]
        return Connections(patient_view(patient), found)


def connected_names(services: Services, actor: Actor, patient_id: str) -> list[str]:
    """The names of the apps connected to a space (the every-90-days e-mail, TRC-3)."""
    return [c.name for c in connected(services, actor, patient_id).connections]


def disconnect(services: Services, actor: Actor, patient_id: str, app_id: str) -> str:
    """« Déconnecter »: the consent ends and every token it gave stops now; returns the app's name."""
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("app", app_id[:36]))
        app = db.get(App, app_id) if len(app_id) <= 36 else None
        if app is None:
            raise AppNotFound()
        now = utcnow()
        consents = select(AppConsent.id).where(
            AppConsent.app_id == app.id, AppConsent.patient_id == patient_id, AppConsent.revoked_at.is_(None)
        )
        ids = list(db.scalars(consents))
        if not ids:
            raise CatalogueError(f"« {app.name} » n'est pas connectée à cet espace.")
        db.execute(
            update(AppToken).where(AppToken.consent_id.in_(ids), AppToken.revoked_at.is_(None)).values(revoked_at=now)
        )
        db.execute(update(AppConsent).where(AppConsent.id.in_(ids)).values(revoked_at=now))
        audit.record(
            db, actor, str(Action.APP_CONNECT), patient_id=patient_id, resource_type="app", resource_id=app.id,
            details={"op": "disconnect", "fait": OPS["disconnect"].format(nom=app.name), "nom": app.name},
        )  # fmt: skip
        return app.name


def report(services: Services, actor: Actor, patient_id: str, app_id: str, reason: str) -> str:
    """« Signaler »: the person tells the operator what is wrong with an app; returns the app's name."""
    reason = reason.strip()
    if not reason:
        raise CatalogueError("Dites en quelques mots ce qui ne va pas avec cette application.")
    if len(reason) > REPORT_MAX:
        raise CatalogueError(f"Votre signalement dépasse {REPORT_MAX} caractères : raccourcissez-le.")
    with services.db.unit_of_work() as db:
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("app", app_id[:36]))
        app = db.get(App, app_id) if len(app_id) <= 36 else None
        if app is None:
            raise AppNotFound()
        db.add(AppReport(app_id=app.id, patient_id=patient_id, reason=reason))
        audit.record(
            db, actor, str(Action.APP_CONNECT), patient_id=patient_id, resource_type="app", resource_id=app.id,
            details={"op": "report", "fait": OPS["report"].format(nom=app.name), "nom": app.name},
        )  # fmt: skip
        return app.name
