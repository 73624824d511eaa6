"""What the catalogue's use cases share: hashing of secrets, the plain views they return, French errors."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime

from carnet.catalogue.model import scopes as smart
from carnet.catalogue.model.apps import STATUS_LABELS, AppStatus
from carnet.catalogue.tables import App
from carnet.errors import CarnetError


class CatalogueError(CarnetError):
    """A French message for the person, the editor or the operator."""


class AppNotFound(CatalogueError):
    def __init__(self) -> None:
        super().__init__("Application inconnue.")


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class AppView:
    id: str
    client_id: str
    name: str
    editor: str
    description: str
    purpose: str
    retention: str
    consent_wording: str
    security: str
    category: str
    logo_url: str | None
    scope: str
    status: str
    referenced_until: datetime | None
    redirect_uris: tuple[str, ...]
    confidential: bool

    @property
    def status_label(self) -> str:
        return STATUS_LABELS[AppStatus(self.status)]

    @property
    def permissions(self) -> list[tuple[str, str]]:
        """Each referenced scope with its French sentence."""
        return smart.wording(smart.parse(self.scope))

    @property
    def writes(self) -> bool:
        return smart.writes(smart.parse(self.scope))


def app_view(app: App, redirect_uris: tuple[str, ...] = ()) -> AppView:
    return AppView(
        id=app.id,
        client_id=app.client_id,
        name=app.name,
        editor=app.editor,
        description=app.description,
        purpose=app.purpose,
        retention=app.retention,
        consent_wording=app.consent_wording,
        security=app.security,
        category=app.category,
        logo_url=app.logo_url,
        scope=app.scope,
        status=app.status,
        referenced_until=app.referenced_until,
        redirect_uris=redirect_uris,
        confidential=app.secret_hash is not None,
    )
