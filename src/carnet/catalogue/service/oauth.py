"""CAT-2: the OAuth 2 authorisation server of the catalogue — SMART App Launch 2, standalone patient launch.

1. ``consent_screen`` / ``grant`` — ``GET``/``POST /oauth/authorize``: the client must be a live app and the
   ``redirect_uri`` one of its registered addresses, exactly; otherwise the person is told so and nobody is
   redirected (``RedirectRefused``). Every other problem (``response_type``, PKCE — ``S256`` only —, scopes
   beyond what the app is referenced for) is sent back to the app as ``error=…&state=…``. The logged-in person
   (the policy's ``APP_CONNECT`` in the space) sees each scope in French and decides; a yes records the consent
   (kept per space, re-asked when the app's scopes change) and gives a code: random, stored as its SHA-256,
   single use, 60 seconds, bound to the redirect URI and the PKCE challenge.
2. ``exchange_code`` / ``refresh`` — ``POST /oauth/token`` (``carnet.identity.api`` hands these two grant types
   here): the verifier must match the challenge; a code used twice revokes every token it gave; refresh tokens
   rotate (each one is used once), a reused one revokes its whole family, and a refresh may narrow the scopes,
   never widen them. A failed exchange changes nothing but the revocations just said.
3. ``revoke`` (RFC 7009), ``introspect`` (RFC 7662), ``authenticate`` (the FHIR API's bearer check: the token,
   its consent still live, the app still ``EN_LIGNE`` — one query, at every request).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Table, bindparam, delete, insert, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.catalogue.model import pkce
from carnet.catalogue.model import scopes as smart
from carnet.catalogue.model.apps import AppStatus, is_live
from carnet.catalogue.service.common import AppView, CatalogueError, app_view, digest
from carnet.catalogue.service.labels import OPS
from carnet.catalogue.tables import App, AppConsent, AppToken, AuthorizationCode, RedirectUri
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.service.lookup import PatientView, patient_view
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=90)
_TOKENS = cast(Table, AppToken.__table__)  # Core statements on the token endpoint: no ORM bookkeeping (#13)
ACCESS_PREFIX = "cat."  # an app's access token: the FHIR API knows where to look it up


class RedirectRefused(CatalogueError):
    """Unknown client or a redirect URI not registered: told to the person, never redirected to."""


class OAuthError(CatalogueError):
    """An OAuth error (``error`` code, French description), answered to the app."""

    def __init__(self, error: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.error = error
        self.status = status


@dataclass(frozen=True)
class AuthorizationRequest:
    client_id: str
    redirect_uri: str
    response_type: str = ""
    scope: str = ""
    state: str = ""
    code_challenge: str = ""
    code_challenge_method: str = ""


@dataclass(frozen=True)
class ConsentScreen:
    app: AppView
    request: AuthorizationRequest
    scope: str
    permissions: list[tuple[str, str]]
    patient: PatientView
    renewal: bool  # the app was connected before with other scopes: the person consents again


@dataclass(frozen=True)
class Issued:
    access_token: str
    expires_in: int
    scope: str
    patient_id: str
    refresh_token: str | None


@dataclass(frozen=True)
class AppGrant:
    actor: Actor
    scopes: smart.Scopes


def back_to_app(redirect_uri: str, **params: str) -> str:
    """The redirect URI with ``params`` added to its query (``code``/``error`` and ``state``)."""
    separator = "&" if urlsplit(redirect_uri).query else "?"
    return redirect_uri + separator + urlencode({k: v for k, v in params.items() if v})


def _checked(db: Session, request: AuthorizationRequest) -> tuple[App, smart.Scopes]:
    """The app and the scopes asked for; ``RedirectRefused`` or ``OAuthError`` (French) otherwise."""
    app = db.scalar(select(App).where(App.client_id == request.client_id)) if request.client_id.isprintable() else None
    if app is None or not is_live(app.status, app.referenced_until, utcnow()):
        raise RedirectRefused("Cette application est inconnue ou n'est pas référencée dans le catalogue de Carnet.")
    registered = db.get(RedirectUri, (app.id, request.redirect_uri)) if request.redirect_uri.isprintable() else None
    if registered is None:
        raise RedirectRefused(
            "L'adresse de retour demandée n'est pas une de celles déclarées par l'application : "
            "par sécurité, vous n'y êtes pas renvoyé(e)."
        )
    if request.response_type != "code":
        raise OAuthError("unsupported_response_type", "Seul response_type=code est accepté.")
    problem = pkce.challenge_problem(request.code_challenge, request.code_challenge_method)
    if problem:
        raise OAuthError("invalid_request", problem)
    referenced = smart.parse(app.scope)
    try:
        asked = smart.parse(request.scope) if request.scope.strip() else referenced
    except smart.ScopeError as exc:
        raise OAuthError("invalid_scope", str(exc)) from exc
    if not smart.Scopes(asked.resources).within(referenced):
        raise OAuthError("invalid_scope", "L'application demande plus que ce pour quoi elle est référencée.")
    if not asked.resources:
        raise OAuthError("invalid_scope", "Aucune portée patient/… demandée.")
    return app, asked


def _live_consent(db: Session, app_id: str, patient_id: str) -> AppConsent | None:
    return db.scalar(
        select(AppConsent)
        .where(AppConsent.app_id == app_id, AppConsent.patient_id == patient_id, AppConsent.revoked_at.is_(None))
        .order_by(AppConsent.granted_at.desc())
        .limit(1)
    )


def consent_screen(services: Services, actor: Actor, patient_id: str, request: AuthorizationRequest) -> ConsentScreen:
    """What the person is asked (``AccessDenied`` when they may not connect apps to this space)."""
    with services.db.unit_of_work() as db:
        app, asked = _checked(db, request)
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("app", app.id))
        patient = db.get(Patient, patient_id)
        assert patient is not None
        before = _live_consent(db, app.id, patient_id)
        renewal = before is not None and before.scope_version != app.scope_version
        return ConsentScreen(app_view(app), request, asked.text(), smart.wording(asked), patient_view(patient), renewal)


def grant(services: Services, actor: Actor, patient_id: str, request: AuthorizationRequest) -> str:
    """The person said yes: the consent is recorded in the history, and the app is sent back with a code."""
    with services.db.unit_of_work() as db:
        app, asked = _checked(db, request)
        guard(db, actor, patient_id, Action.APP_CONNECT, Resource("app", app.id))
        now = utcnow()
        consent = _live_consent(db, app.id, patient_id)
        if consent is None:
            consent = AppConsent(app_id=app.id, patient_id=patient_id)
            db.add(consent)
        consent.scope, consent.scope_version = asked.text(), app.scope_version
        consent.granted_by_label, consent.granted_at = actor.label[:200], now
        db.flush()
        code = secrets.token_urlsafe(32)
        db.add(
            AuthorizationCode(
                code_hash=digest(code),
                consent_id=consent.id,
                redirect_uri=request.redirect_uri,
                code_challenge=request.code_challenge,
                scope=asked.text(),
                expires_at=now + CODE_LIFETIME,
            )
        )
        details = {
            "op": "connect",
            "fait": OPS["connect"].format(nom=app.name),
            "nom": app.name,
            "portees": asked.text(),
        }
        audit.record(
            db, actor, str(Action.APP_CONNECT), patient_id=patient_id, resource_type="app", resource_id=app.id,
            details=details,
        )  # fmt: skip
        return back_to_app(request.redirect_uri, code=code, state=request.state)


def refusal(services: Services, request: AuthorizationRequest) -> str:
    """The person said no (or the request was wrong after the redirect URI was checked): where to send them."""
    return back_to_app(request.redirect_uri, error="access_denied", state=request.state)


def check(services: Services, request: AuthorizationRequest) -> None:
    """Only the request's checks (``RedirectRefused``, ``OAuthError``), before anyone is logged in."""
    with services.db.unit_of_work() as db:
        _checked(db, request)


# ------------------------------------------------------------------ the token endpoint


def _client(db: Session, client_id: str, client_secret: str) -> App:
    """The app calling the token, revocation or introspection endpoint; ``invalid_client`` (401) otherwise."""
    app = db.scalar(select(App).where(App.client_id == client_id)) if client_id.isprintable() else None
    if app is None:
        raise OAuthError("invalid_client", "Identifiants du client invalides.", 401)
    _check_secret(app, client_secret)
    return app


def _check_secret(app: App, client_secret: str) -> None:
    """A confidential app's secret, compared in constant time (a public app has none: PKCE protects it)."""
    if app.secret_hash and not secrets.compare_digest(app.secret_hash, digest(client_secret) if client_secret else ""):
        raise OAuthError("invalid_client", "Identifiants du client invalides.", 401)


def _issue(db: Session, consent: AppConsent, scope: smart.Scopes, family: str) -> Issued:
    """An access token, and a refresh token when ``offline_access`` was granted: one Core ``INSERT`` (the token
    endpoint is the catalogue's hottest path, issue #13)."""
    now = utcnow()
    access = ACCESS_PREFIX + secrets.token_urlsafe(32)
    text = scope.text()
    common = {"consent_id": consent.id, "family": family, "scope": text, "used_at": None, "revoked_at": None}
    rows = [{"token_hash": digest(access), "kind": "access", "expires_at": now + ACCESS_LIFETIME, **common}]
    refresh = None
    if smart.OFFLINE in scope.context:
        refresh = secrets.token_urlsafe(32)
        rows.append({"token_hash": digest(refresh), "kind": "refresh", "expires_at": now + REFRESH_LIFETIME, **common})
    db.execute(insert(_TOKENS), rows)
    return Issued(access, int(ACCESS_LIFETIME.total_seconds()), text, consent.patient_id, refresh)


def _revoke_family(db: Session, family: str) -> None:
    db.execute(
        update(AppToken).where(AppToken.family == family, AppToken.revoked_at.is_(None)).values(revoked_at=utcnow())
    )


def _consent_live(db: Session, consent: AppConsent | None, app: App) -> bool:
    return (
        consent is not None
        and consent.revoked_at is None
        and consent.scope_version == app.scope_version
        and is_live(app.status, app.referenced_until, utcnow())
    )


def exchange_code(
    services: Services, client_id: str, client_secret: str, code: str, redirect_uri: str, verifier: str
) -> Issued:
    """``grant_type=authorization_code``: ``OAuthError`` (invalid_client, invalid_grant) on anything wrong."""
    failure: OAuthError | None = None
    with services.db.unit_of_work() as db:
        app = _client(db, client_id, client_secret)
        code_hash = digest(code)
        query = select(AuthorizationCode).where(AuthorizationCode.code_hash == code_hash)
        row = db.scalar(query.with_for_update()) if code.isprintable() and code else None
        consent = db.get(AppConsent, row.consent_id) if row is not None else None
        if row is None or consent is None or consent.app_id != app.id:
            raise OAuthError("invalid_grant", "Code d'autorisation inconnu.")
        if row.used_at is not None:  # replayed: what it gave is revoked (RFC 6749 §4.1.2)
            _revoke_family(db, code_hash)
            failure = OAuthError(
                "invalid_grant",
                "Ce code d'autorisation a déjà été utilisé : les jetons obtenus avec lui sont révoqués.",
            )
        elif row.expires_at <= utcnow():
            raise OAuthError("invalid_grant", "Ce code d'autorisation a expiré (60 secondes) : recommencez.")
        elif row.redirect_uri != redirect_uri:
            raise OAuthError("invalid_grant", "redirect_uri différente de celle de la demande d'autorisation.")
        elif not pkce.verifies(verifier, row.code_challenge):
            raise OAuthError("invalid_grant", "code_verifier absent ou incorrect (PKCE S256).")
        elif not _consent_live(db, consent, app):
            raise OAuthError("invalid_grant", "La personne a déconnecté l'application, ou elle n'est plus référencée.")
        else:
            row.used_at = utcnow()
            return _issue(db, consent, smart.parse(row.scope), code_hash)
    assert failure is not None  # committed the revocation first
    raise failure


_REFRESHING = (
    select(AppToken, AppConsent, App)
    .join(AppConsent, AppConsent.id == AppToken.consent_id)
    .join(App, App.id == AppConsent.app_id)
    .where(AppToken.token_hash == bindparam("hash"), AppToken.kind == "refresh")
    .with_for_update(of=AppToken)
)  # built once: its cache key is memoised, a request only binds the hash
_MARK_USED = update(_TOKENS).where(_TOKENS.c.token_hash == bindparam("hash")).values(used_at=bindparam("now"))


def refresh(services: Services, client_id: str, client_secret: str, token: str, scope: str) -> Issued:
    """``grant_type=refresh_token``: rotates; a reused token revokes its family; no scope beyond the original.

    The token, its consent and its app come in one query; the client is checked against that app (a separate
    look-up only when the token is unknown or another app's)."""
    failure: OAuthError | None = None
    with services.db.unit_of_work() as db:
        found = db.execute(_REFRESHING, {"hash": digest(token)}).first() if token.isprintable() and token else None
        if found is None or found[2].client_id != client_id:
            _client(db, client_id, client_secret)  # invalid_client first, as for every grant
            raise OAuthError("invalid_grant", "Jeton de rafraîchissement inconnu.")
        row, consent, app = found
        _check_secret(app, client_secret)
        if row.used_at is not None:
            _revoke_family(db, row.family)
            failure = OAuthError(
                "invalid_grant", "Jeton de rafraîchissement déjà utilisé : toute la série est révoquée."
            )
        elif row.revoked_at is not None or row.expires_at <= utcnow() or not _consent_live(db, consent, app):
            raise OAuthError("invalid_grant", "Jeton de rafraîchissement révoqué ou expiré.")
        else:
            granted = smart.parse(row.scope)
            try:
                wanted = smart.parse(scope) if scope.strip() else granted
            except smart.ScopeError as exc:
                raise OAuthError("invalid_scope", str(exc)) from exc
            if not wanted.within(granted):
                raise OAuthError("invalid_scope", "Un rafraîchissement ne peut pas élargir les portées accordées.")
            db.execute(_MARK_USED, {"hash": row.token_hash, "now": utcnow()})
            return _issue(db, consent, wanted, row.family)
    assert failure is not None  # committed the revocation first
    raise failure


PURGE_GRACE = timedelta(days=1)


def purge_expired(services: Services, now: datetime | None = None) -> int:
    """Tokens and codes a day past their expiry are deleted (job ``apps.tokens``): nothing can use them any more,
    and a replay that late is refused as unknown rather than as reused. Returns how many rows went."""
    cutoff = (now or utcnow()) - PURGE_GRACE
    with services.db.unit_of_work() as db:
        tokens = db.execute(delete(_TOKENS).where(_TOKENS.c.expires_at < cutoff))
        codes = db.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < cutoff))
    return int(getattr(tokens, "rowcount", 0) or 0) + int(getattr(codes, "rowcount", 0) or 0)


def revoke(services: Services, client_id: str, client_secret: str, token: str) -> None:
    """RFC 7009: a refresh token revokes its family, an access token itself; an unknown token is no error."""
    with services.db.unit_of_work() as db:
        app = _client(db, client_id, client_secret)
        row = db.get(AppToken, digest(token)) if token.isprintable() and token else None
        consent = db.get(AppConsent, row.consent_id) if row is not None else None
        if row is None or consent is None or consent.app_id != app.id:
            return
        if row.kind == "refresh":
            _revoke_family(db, row.family)
        elif row.revoked_at is None:
            row.revoked_at = utcnow()


def introspect(services: Services, client_id: str, client_secret: str, token: str) -> dict[str, Any]:
    """RFC 7662, for the app itself: ``{"active": false}`` for anything not live."""
    with services.db.unit_of_work() as db:
        app = _client(db, client_id, client_secret)
        row = db.get(AppToken, digest(token)) if token.isprintable() and token else None
        consent = db.get(AppConsent, row.consent_id) if row is not None else None
        if row is None or consent is None or consent.app_id != app.id:
            return {"active": False}
        live = row.revoked_at is None and row.expires_at > utcnow() and _consent_live(db, consent, app)
        if not live or (row.kind == "refresh" and row.used_at is not None):
            return {"active": False}
        return {
            "active": True,
            "scope": row.scope,
            "client_id": app.client_id,
            "token_type": "Bearer" if row.kind == "access" else "refresh_token",
            "exp": int(row.expires_at.timestamp()),
            "patient": consent.patient_id,
        }


_BEARER = (
    select(AppToken.scope, App.id, App.name, AppConsent.patient_id)
    .join(AppConsent, AppConsent.id == AppToken.consent_id)
    .join(App, App.id == AppConsent.app_id)
    .where(
        AppToken.token_hash == bindparam("hash"),
        AppToken.kind == "access",
        AppToken.revoked_at.is_(None),
        AppToken.expires_at > bindparam("now"),
        AppConsent.revoked_at.is_(None),
        AppConsent.scope_version == App.scope_version,
        App.status == AppStatus.EN_LIGNE,
        App.referenced_until > bindparam("now"),
    )
)


def authenticate(services: Services, token: str) -> AppGrant | None:
    """The app and the one space behind an access token — None when absent, expired, revoked, disconnected, or the
    app no longer ``EN_LIGNE`` (checked at every request)."""
    if not token.startswith(ACCESS_PREFIX) or not token.isprintable():
        return None
    with services.db.reading() as db:
        row = db.execute(_BEARER, {"hash": digest(token), "now": utcnow()}).first()
    if row is None:
        return None
    scope, app_id, name, patient_id = row
    return AppGrant(Actor(ActorKind.APP, app_id, name, patient_id=patient_id), smart.parse(scope))
