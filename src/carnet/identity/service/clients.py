"""API clients (establishments, professionals' software) and OAuth 2 client-credentials tokens."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import bindparam, delete, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.identity.model import ScopeError, narrow
from carnet.identity.tables import AccessToken, ApiClient
from carnet.people.model.identifiers import validate_finess, validate_rpps
from carnet.people.model.professions import profession_label
from carnet.people.tables import Establishment, Professional
from carnet.storage.base import columns, table_of
from carnet.storage.types import utcnow

TOKEN_LIFETIME = timedelta(hours=1)


class ClientError(CarnetError):
    pass


@dataclass(frozen=True)
class NewClient:
    client_id: str
    client_secret: str
    name: str


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def register_client(
    services: Services, actor: Actor, name: str, finess: str | None = None, rpps: str | None = None
) -> NewClient:
    """VLT-2: an operator registers a system for the FHIR API (the policy decides; recorded on the service's
    own chain). Its secret is shown once, here. Raises ``ClientError``, ``IdentifierError`` or ``AccessDenied``."""
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.CLIENT_MANAGE, Resource("api_client"))
        created = create_client(db, name, finess=finess, rpps=rpps)
        audit.record(
            db,
            actor,
            str(Action.CLIENT_MANAGE),
            resource_type="api_client",
            resource_id=created.client_id,
            details={"nom": name, "finess": finess, "rpps": rpps},
        )
        return created


def create_client(db: Session, name: str, finess: str | None = None, rpps: str | None = None) -> NewClient:
    """A client acts as one establishment (FINESS) or one professional of the directory (RPPS)."""
    if bool(finess) == bool(rpps):
        raise ClientError("Indiquez soit --finess (établissement), soit --rpps (professionnel).")
    establishment_id = professional_id = None
    if finess:
        finess = validate_finess(finess)
        establishment = db.scalar(select(Establishment).where(Establishment.finess == finess))
        if establishment is None:
            establishment = Establishment(finess=finess, name=name, kind="établissement")
            db.add(establishment)
            db.flush()
        establishment_id = establishment.id
    else:
        rpps = validate_rpps(rpps or "")
        professional = db.scalar(select(Professional).where(Professional.rpps == rpps))
        if professional is None:
            raise ClientError(
                f"Aucun professionnel de l'annuaire n'a le RPPS {rpps} : ajoutez-le d'abord "
                "(carnet professionals add, ou carnet professionals import de l'extraction de l'Annuaire Santé)."
            )
        professional_id = professional.id
    client_id = "carnet-" + secrets.token_hex(10)
    secret = secrets.token_urlsafe(32)
    db.add(
        ApiClient(
            client_id=client_id,
            secret_hash=_digest(secret),
            name=name,
            establishment_id=establishment_id,
            professional_id=professional_id,
        )
    )
    return NewClient(client_id, secret, name)


def issue_token(db: Session, client_id: str, client_secret: str, scope: str | None) -> tuple[str, int, str]:
    """Client-credentials grant; raises ``ClientError`` (invalid_client) without saying which part was wrong."""
    # a control character is in no client id (and NUL is refused by PostgreSQL): the same invalid_client
    client = db.scalar(select(ApiClient).where(ApiClient.client_id == client_id)) if client_id.isprintable() else None
    expected = client.secret_hash if client else _digest(secrets.token_urlsafe(32))
    if not hmac.compare_digest(expected, _digest(client_secret)) or client is None or client.revoked_at:
        raise ClientError("Identifiants du client invalides.")
    granted = narrow(scope)  # SMART Backend Services: the request may narrow the scopes, never widen them
    if not granted:
        raise ScopeError("Aucune des portées demandées n'est disponible.")
    token = secrets.token_urlsafe(32)
    now = utcnow()
    db.execute(delete(AccessToken).where(AccessToken.client_id == client.id, AccessToken.expires_at <= now))
    db.add(AccessToken(token_hash=_digest(token), client_id=client.id, scope=granted, expires_at=now + TOKEN_LIFETIME))
    return token, int(TOKEN_LIFETIME.total_seconds()), granted


@dataclass(frozen=True)
class Grant:
    """Who a bearer token acts for, and the scopes it was granted."""

    actor: Actor
    scope: str


def request_token(services: Services, client_id: str, client_secret: str, scope: str | None) -> tuple[str, int, str]:
    """Client-credentials grant in its own unit of work; raises ``ClientError`` or ``ScopeError``."""
    with services.db.unit_of_work() as db:
        return issue_token(db, client_id, client_secret, scope)


_T, _C, _P, _E = columns(AccessToken), columns(ApiClient), columns(Professional), columns(Establishment)
_GRANT = (  # one query per FHIR request: the token, its client, and whom the client acts for (Core: issue #14)
    select(
        _T.scope,
        _T.expires_at,
        _C.id,
        _C.revoked_at,
        _P.id,
        _P.rpps,
        _P.first_name,
        _P.last_name,
        _P.profession_code,
        _E.id,
        _E.name,
        _E.finess,
    )
    .join_from(table_of(AccessToken), table_of(ApiClient), _C.id == _T.client_id)
    .outerjoin(table_of(Professional), _P.id == _C.professional_id)
    .outerjoin(table_of(Establishment), _E.id == _C.establishment_id)
    .where(_T.token_hash == bindparam("hash"))
)


def authenticate(services: Services, token: str) -> Grant | None:
    """The grant behind a bearer token; None when absent, expired or revoked."""
    with services.db.reading() as db:
        row = db.execute(_GRANT, {"hash": _digest(token)}).first()
    if row is None or row[1] <= utcnow() or row[3] is not None:
        return None
    scope, _, client_id, _, pro_id, rpps, first, last, profession, est_id, est_name, finess = row
    if pro_id is not None:
        title = "Dr " if profession in {"10", "40"} else ""
        actor = Actor(
            ActorKind.PROFESSIONAL,
            client_id,
            f"{title}{first} {last}",
            professional_id=pro_id,
            rpps=rpps,
            profession_code=profession,
        )
        return Grant(actor, scope)
    if est_id is None:
        return None
    return Grant(Actor(ActorKind.ESTABLISHMENT, client_id, est_name, finess=finess, establishment_id=est_id), scope)


def describe(actor: Actor) -> str:
    if actor.profession_code:
        return f"{actor.label} ({profession_label(actor.profession_code).lower()})"
    return actor.label
