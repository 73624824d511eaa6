"""Login (ENR-5): password (Argon2), second factor (TOTP or e-mailed code), sessions.

Failure paths take the same time whether the login exists or not (a dummy hash is
verified), failures are counted per typed login so unknown logins lock the same way,
and per client address by an in-process limiter.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.identity.tables import LoginThrottle, OneTimeCode, WebSession
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.tables import Account, Professional
from carnet.storage.types import utcnow

GENERIC_FAILURE = "Identifiant ou mot de passe incorrect."
LOCKED = "Trop de tentatives de connexion. Par sécurité, réessayez dans {minutes} minutes."
IP_LIMITED = "Trop de tentatives depuis votre connexion. Patientez une minute avant de réessayer."
MFA_STAGE = "mfa"
FULL_STAGE = "full"
MFA_MINUTES = 10
OTP_MAX_ATTEMPTS = 5
# The second factor (issue #15-1): wrong codes per account, whatever the code, its method (TOTP or e-mail)
# and how many codes were sent, before the account's second step is locked for login_lockout_minutes; and
# e-mailed codes per account in that period. docs/deployment.md gives what this leaves an attacker per hour.
MFA_MAX_FAILURES = 10
MFA_MAX_SENDS = 5
MFA_LOCKED = (
    "Trop de codes erronés. Par sécurité, la connexion à ce compte est bloquée pendant {minutes} minutes. "
    "Un e-mail vous a été envoyé."
)
SENDS_LIMITED = (
    "Vous avez demandé beaucoup de codes. Utilisez le dernier reçu, ou patientez {minutes} minutes "
    "avant d'en demander un nouveau."
)


class LoginError(CarnetError):
    pass


@cache
def hasher(profile: str) -> PasswordHasher:
    if profile == "test":
        return PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    return PasswordHasher()


@cache
def _dummy_hash(profile: str) -> str:
    return hasher(profile).hash(secrets.token_urlsafe(16))


def hash_password(services: Services, password: str) -> str:
    return hasher(services.settings.argon2_profile).hash(password)


def _verify(services: Services, stored: str | None, password: str) -> bool:
    profile = services.settings.argon2_profile
    try:
        return hasher(profile).verify(stored or _dummy_hash(profile), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def actor_for(db: Session, account: Account) -> Actor:
    """The ``Actor`` an account acts as."""
    if account.kind == "patient":
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)
    if account.kind == "professional" and account.professional_id:
        pro = db.get(Professional, account.professional_id)
        if pro is not None:
            return Actor(
                ActorKind.PROFESSIONAL,
                account.id,
                account.display_name,
                professional_id=pro.id,
                rpps=pro.rpps,
                profession_code=pro.profession_code,
            )
    if account.kind == "operator":
        return Actor(ActorKind.OPERATOR, account.id, account.display_name)
    raise ValueError(f"compte de type inconnu: {account.kind}")


def _audit_account(
    db: Session,
    account: Account,
    action: str,
    outcome: str = "allow",
    reason: str = "",
    details: dict[str, object] | None = None,
) -> None:
    audit.record(
        db,
        actor_for(db, account),
        action,
        patient_id=account.patient_id,
        outcome=outcome,
        reason=reason,
        resource_type="account",
        resource_id=account.id,
        details=details,
    )


def check_password(services: Services, db: Session, login: str, password: str, client: str) -> Account:
    """First step of login; raises ``LoginError`` with a French message on any failure."""
    settings = services.settings
    if not services.ip_limiter.hit(client):
        raise LoginError(IP_LIMITED)
    login = login.strip().lower()
    key = services.keys.mac("login", login)
    now = utcnow()
    throttle = db.get(LoginThrottle, key)
    # no login holds a control character (and PostgreSQL refuses NUL): such a login is an unknown one
    account = db.scalar(select(Account).where(Account.login == login)) if login and login.isprintable() else None
    ok = _verify(services, account.password_hash if account else None, password)
    locked_message = LOCKED.format(minutes=settings.login_lockout_minutes)
    if throttle and throttle.locked_until and throttle.locked_until > now:
        raise LoginError(locked_message)
    if ok and account is not None:
        if throttle:
            db.delete(throttle)
        if hasher(settings.argon2_profile).check_needs_rehash(account.password_hash):
            account.password_hash = hash_password(services, password)
        return account
    if throttle is None:
        throttle = LoginThrottle(login_key=key, failures=0)
        db.add(throttle)
    throttle.failures = (throttle.failures or 0) + 1
    throttle.updated_at = now
    locked = throttle.failures >= settings.login_max_failures
    if locked:
        throttle.failures = 0
        throttle.locked_until = now + timedelta(minutes=settings.login_lockout_minutes)
    if account is not None:
        _audit_account(
            db,
            account,
            "auth.login_failed",
            outcome="deny",
            reason="mot de passe incorrect" + (", compte verrouillé" if locked else ""),
        )
    raise LoginError(locked_message if locked else GENERIC_FAILURE)


# --- sessions -------------------------------------------------------------------------


def _session_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(services: Services, db: Session, account: Account, stage: str) -> str:
    token = secrets.token_urlsafe(32)
    now = utcnow()
    lifetime = (
        timedelta(minutes=MFA_MINUTES) if stage == MFA_STAGE else timedelta(hours=services.settings.session_max_hours)
    )
    db.add(
        WebSession(
            id=_session_key(token),
            account_id=account.id,
            stage=stage,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return token


@dataclass(frozen=True)
class SessionInfo:
    key: str
    stage: str
    account: Account


def load_session(services: Services, db: Session, token: str | None) -> SessionInfo | None:
    """The live session for a cookie token; expired or idle sessions are removed."""
    if not token:
        return None
    row = db.get(WebSession, _session_key(token))
    if row is None:
        return None
    now = utcnow()
    idle = timedelta(minutes=services.settings.session_idle_minutes)
    if row.expires_at <= now or (row.stage == FULL_STAGE and row.last_seen_at + idle <= now):
        db.delete(row)
        return None
    account = db.get(Account, row.account_id)
    if account is None:
        return None
    if (now - row.last_seen_at).total_seconds() > 30:
        row.last_seen_at = now
    return SessionInfo(row.id, row.stage, account)


def end_session(db: Session, key: str) -> None:
    db.execute(delete(WebSession).where(WebSession.id == key))


def complete_login(services: Services, db: Session, session: SessionInfo, method: str) -> str:
    """Second factor passed: replace the half session by a full one (no fixation)."""
    end_session(db, session.key)
    session.account.last_login_at = utcnow()
    _audit_account(db, session.account, "auth.login", details={"second_factor": method})
    return start_session(services, db, session.account, FULL_STAGE)


def purge_expired(db: Session) -> int:
    now = utcnow()
    result = db.execute(delete(WebSession).where(WebSession.expires_at <= now))
    db.execute(delete(OneTimeCode).where(OneTimeCode.expires_at <= now - timedelta(days=1)))
    return int(getattr(result, "rowcount", 0) or 0)


# --- second factors ---------------------------------------------------------------------


def send_email_code(services: Services, db: Session, account: Account) -> bool:
    """E-mail a fresh 6-digit code; earlier unused codes stop working. False when the relay could not take it:
    the e-mail is queued (it goes when the relay is back, unless the code has expired by then)."""
    now = utcnow()
    for old in db.scalars(
        select(OneTimeCode).where(OneTimeCode.account_id == account.id, OneTimeCode.used_at.is_(None))
    ):
        old.used_at = now
    code = f"{secrets.randbelow(1_000_000):06d}"
    ttl = services.settings.otp_ttl_minutes
    db.add(
        OneTimeCode(
            account_id=account.id,
            purpose="login",
            code_hash=services.keys.mac("otp", f"{account.id}:{code}"),
            expires_at=now + timedelta(minutes=ttl),
        )
    )
    return send_or_queue(
        db,
        services.keys,
        services.mailer,
        Mail(
            to=account.email,
            subject="Votre code de connexion Carnet",
            text=(
                f"Bonjour,\n\nVotre code de connexion à Carnet est : {code}\n\n"
                f"Il est valable {ttl} minutes et ne peut servir qu'une fois.\n"
                "Si vous n'essayez pas de vous connecter, ignorez ce message et changez votre mot de passe.\n\n"
                "Carnet — ne répondez pas à ce message."
            ),
        ),
        discard_after=now + timedelta(minutes=ttl),
    )


def _throttle(services: Services, db: Session, purpose: str, account: Account) -> LoginThrottle:
    """The account's counter for ``purpose`` (``mfa``: wrong codes, ``mfa-send``: codes sent), reset once
    the lock period has passed since its last change."""
    key = services.keys.mac(purpose, account.id)
    row = db.get(LoginThrottle, key)
    now = utcnow()
    window = timedelta(minutes=services.settings.login_lockout_minutes)
    if row is None:
        row = LoginThrottle(login_key=key, failures=0, updated_at=now)
        db.add(row)
    elif (row.locked_until is None or row.locked_until <= now) and row.updated_at + window <= now:
        row.failures, row.locked_until = 0, None
    return row


def second_factor_locked(services: Services, db: Session, account: Account) -> bool:
    locked_until = _throttle(services, db, "mfa", account).locked_until
    return locked_until is not None and locked_until > utcnow()


def may_send_code(services: Services, db: Session, account: Account) -> bool:
    """Counts one more e-mailed code; False (nothing to send) beyond MFA_MAX_SENDS in the period."""
    row = _throttle(services, db, "mfa-send", account)
    if row.failures >= MFA_MAX_SENDS:
        return False
    row.failures += 1
    row.updated_at = utcnow()
    return True


def _second_factor_failed(services: Services, db: Session, info: SessionInfo, method: str) -> bool:
    """One more wrong code; at MFA_MAX_FAILURES the second step is locked, the half session and the codes
    sent end, the person is told by e-mail and the history says it. True when this failure locked it."""
    account = info.account
    row = _throttle(services, db, "mfa", account)
    now = utcnow()
    row.failures += 1
    row.updated_at = now
    locked = row.failures >= MFA_MAX_FAILURES
    reason = f"code {'TOTP' if method == 'totp' else 'e-mail'} incorrect" + (", connexion bloquée" if locked else "")
    _audit_account(db, account, "auth.mfa_failed", outcome="deny", reason=reason)
    if not locked:
        return False
    minutes = services.settings.login_lockout_minutes
    row.failures, row.locked_until = 0, now + timedelta(minutes=minutes)
    end_session(db, info.key)
    for code in db.scalars(
        select(OneTimeCode).where(OneTimeCode.account_id == account.id, OneTimeCode.used_at.is_(None))
    ):
        code.used_at = now
    send_or_queue(
        db,
        services.keys,
        services.mailer,
        Mail(
            to=account.email,
            subject="Connexion à Carnet bloquée",
            text=(
                "Bonjour,\n\nQuelqu'un a saisi plusieurs codes de connexion erronés pour votre compte Carnet, "
                "après avoir donné votre mot de passe. Par sécurité, la connexion est bloquée pendant "
                f"{minutes} minutes.\n\nSi ce n'était pas vous, changez votre mot de passe dès que possible.\n\n"
                "Carnet — ne répondez pas à ce message."
            ),
        ),
    )
    return True


def verify_email_code(services: Services, db: Session, account: Account, code: str) -> bool:
    now = utcnow()
    row = db.scalar(
        select(OneTimeCode)
        .where(OneTimeCode.account_id == account.id, OneTimeCode.purpose == "login", OneTimeCode.used_at.is_(None))
        .order_by(OneTimeCode.created_at.desc())
    )
    expected = services.keys.mac("otp", f"{account.id}:{code.strip()}")
    if row is None or row.expires_at <= now or row.attempts >= OTP_MAX_ATTEMPTS:
        hmac.compare_digest(expected, expected)
        return False
    if hmac.compare_digest(row.code_hash, expected):
        row.used_at = now
        return True
    row.attempts += 1
    return False


def new_totp_secret() -> str:
    return pyotp.random_base32()


def totp_uri(secret: str, account: Account) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account.login, issuer_name="Carnet")


def _totp_step(secret: str, code: str) -> int | None:
    totp = pyotp.TOTP(secret)
    now = utcnow()
    for offset in (0, -1, 1):
        moment = now + timedelta(seconds=30 * offset)
        if hmac.compare_digest(totp.at(moment), code.strip()):
            return int(totp.timecode(moment))
    return None


def verify_totp(services: Services, account: Account, code: str) -> bool:
    """Check a TOTP code (±30 s); a code already used cannot be replayed."""
    if not account.totp_secret:
        return False
    secret = services.keys.unseal(account.totp_secret, "totp")
    step = _totp_step(secret, code)
    if step is None or (account.totp_last_step is not None and step <= account.totp_last_step):
        return False
    account.totp_last_step = step
    return True


def enable_totp(services: Services, db: Session, account: Account, secret: str, code: str) -> bool:
    step = _totp_step(secret, code)
    if step is None:
        return False
    account.totp_secret = services.keys.seal(secret, "totp")
    account.totp_last_step = step
    _audit_account(db, account, "auth.totp_enabled")
    return True


def disable_totp(db: Session, account: Account) -> None:
    account.totp_secret = None
    account.totp_last_step = None
    _audit_account(db, account, "auth.totp_disabled")


# --- use cases: each opens its own unit of work and returns plain data ----------------------------


@dataclass(frozen=True)
class AccountView:
    """What the interfaces may know of the logged-in account (never the ORM row, never a secret)."""

    id: str
    login: str
    display_name: str
    email: str
    kind: str
    has_totp: bool
    patient_id: str | None
    professional_id: str | None


@dataclass(frozen=True)
class SessionView:
    key: str
    stage: str
    account: AccountView
    actor: Actor


@dataclass(frozen=True)
class LoginStarted:
    token: str
    method: str  # "totp" or "email"
    delayed: bool = False  # the code's e-mail is queued: the relay did not take it (issue #15-3)


def _account_view(account: Account) -> AccountView:
    return AccountView(
        id=account.id,
        login=account.login,
        display_name=account.display_name,
        email=account.email,
        kind=account.kind,
        has_totp=bool(account.totp_secret),
        patient_id=account.patient_id,
        professional_id=account.professional_id,
    )


def current_session(services: Services, token: str | None, stage: str) -> SessionView | None:
    """The live session of a cookie token at this stage, with the actor it acts as (None otherwise)."""
    if not token:
        return None
    with services.db.unit_of_work() as db:
        info = load_session(services, db, token)
        if info is None or info.stage != stage:
            return None
        return SessionView(info.key, info.stage, _account_view(info.account), actor_for(db, info.account))


def _checked(services: Services, db: Session, login: str, password: str, client: str) -> Account | LoginError:
    """The password check; a refusal is returned, not raised, so that the caller's transaction still
    commits the failure counters and the history entry before the error reaches the interface."""
    try:
        return check_password(services, db, login, password, client)
    except LoginError as exc:
        return exc


def log_in(services: Services, login: str, password: str, client: str) -> LoginStarted:
    """First step (ENR-5): the password; starts a half session and e-mails a code unless TOTP is set."""
    with services.db.unit_of_work() as db:
        account = _checked(services, db, login, password, client)
        if isinstance(account, LoginError):
            refusal = account
        else:
            token = start_session(services, db, account, MFA_STAGE)
            method = "totp" if account.totp_secret else "email"
            sendable = method == "email" and not second_factor_locked(services, db, account)
            delayed = sendable and may_send_code(services, db, account) and not send_email_code(services, db, account)
            return LoginStarted(token, method, delayed)
    raise refusal


def _half_session(services: Services, db: Session, token: str | None) -> SessionInfo | None:
    info = load_session(services, db, token)
    return info if info is not None and info.stage == MFA_STAGE else None


def resend_login_code(services: Services, token: str | None) -> str | None:
    """A new e-mailed code for a half-logged-in session: "envoye", "retard" (queued: the relay did not take it),
    or None when there is no such session. ``LoginError`` when the second step is locked or too many codes
    were sent in the period."""
    minutes = services.settings.login_lockout_minutes
    with services.db.unit_of_work() as db:
        info = _half_session(services, db, token)
        if info is None:
            return None
        if second_factor_locked(services, db, info.account):
            refusal = LoginError(MFA_LOCKED.format(minutes=minutes))
        elif not may_send_code(services, db, info.account):
            refusal = LoginError(SENDS_LIMITED.format(minutes=minutes))
        else:
            return "envoye" if send_email_code(services, db, info.account) else "retard"
    raise refusal


def finish_login(
    services: Services, token: str | None, method: str, code: str, client: str = ""
) -> tuple[str, Actor] | None:
    """Second step: a valid code replaces the half session by a full one (new token, no fixation). None for a
    wrong code (or no half session); ``LoginError`` when the source address or the account's second step is
    over its bound — the failure counters are committed before the error reaches the interface."""
    if client and not services.ip_limiter.hit(client):
        raise LoginError(IP_LIMITED)
    cleaned = code.replace(" ", "")
    minutes = services.settings.login_lockout_minutes
    with services.db.unit_of_work() as db:
        info = _half_session(services, db, token)
        if info is None:
            return None
        if second_factor_locked(services, db, info.account):
            refusal = LoginError(MFA_LOCKED.format(minutes=minutes))
        else:
            well_formed = cleaned.isdigit() and len(cleaned) == 6
            if method == "totp":
                ok = well_formed and verify_totp(services, info.account, cleaned)
            else:
                ok = well_formed and verify_email_code(services, db, info.account, cleaned)
            if ok:
                db.delete(_throttle(services, db, "mfa", info.account))
                return complete_login(services, db, info, method), actor_for(db, info.account)
            if not _second_factor_failed(services, db, info, method):
                return None
            refusal = LoginError(MFA_LOCKED.format(minutes=minutes))
    raise refusal


def log_out(services: Services, token: str | None) -> None:
    with services.db.unit_of_work() as db:
        info = load_session(services, db, token)
        if info is not None:
            _audit_account(db, info.account, "auth.logout")
            end_session(db, info.key)


def end_sessions_of(db: Session, account_ids: list[str]) -> None:
    """Log these accounts out everywhere (inside the caller's transaction)."""
    if account_ids:
        db.execute(delete(WebSession).where(WebSession.account_id.in_(account_ids)))


def purge_expired_sessions(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return purge_expired(db)


@dataclass(frozen=True)
class TotpSetup:
    secret: str
    uri: str
    sealed: str


def _own_account(db: Session, actor: Actor, patient_id: str) -> Account:
    guard(db, actor, patient_id, Action.SETTINGS_WRITE, Resource("settings"))
    account = db.get(Account, actor.id) if actor.id else None
    if account is None:
        raise LookupError("compte introuvable")
    return account


def totp_begin(services: Services, actor: Actor, patient_id: str) -> TotpSetup:
    """A new secret to scan; it travels sealed in the form until confirmed (nothing stored yet)."""
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id)
        secret = new_totp_secret()
        return TotpSetup(secret, totp_uri(secret, account), services.keys.seal(secret, "totp-setup:" + account.id))


def totp_confirm(services: Services, actor: Actor, patient_id: str, sealed: str, code: str) -> TotpSetup | None:
    """None when enabled; otherwise the same setup to show again (wrong code). Raises ``ValueError`` on a
    forged or foreign sealed secret."""
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id)
        try:
            secret = services.keys.unseal(sealed, "totp-setup:" + account.id)
        except Exception as exc:
            raise ValueError("secret scellé invalide") from exc
        if enable_totp(services, db, account, secret, code.replace(" ", "")):
            return None
        return TotpSetup(secret, totp_uri(secret, account), sealed)


def totp_disable(services: Services, actor: Actor, patient_id: str) -> None:
    with services.db.unit_of_work() as db:
        disable_totp(db, _own_account(db, actor, patient_id))


# --- asking the second factor again (ENR-7: downloading the archive of a space) ---------------------------


def _account_of(db: Session, actor: Actor) -> Account:
    account = db.get(Account, actor.id) if actor.id else None
    if account is None:
        raise LoginError("Compte introuvable : reconnectez-vous.")
    return account


def send_confirmation_code(services: Services, db: Session, actor: Actor) -> bool | None:
    """E-mail a fresh code to confirm a sensitive act; None when too many were sent (the same bound as at login),
    False when the relay is down (the code is queued)."""
    account = _account_of(db, actor)
    if second_factor_locked(services, db, account) or not may_send_code(services, db, account):
        return None
    return send_email_code(services, db, account)


def confirm_second_factor(services: Services, db: Session, actor: Actor, code: str) -> bool:
    """The person's second factor asked afresh: their TOTP code if they set one up, or the code just e-mailed. Wrong
    codes count with the login's (``MFA_MAX_FAILURES``, then locked and the person told)."""
    account = _account_of(db, actor)
    if second_factor_locked(services, db, account):
        return False
    if verify_totp(services, account, code) or verify_email_code(services, db, account, code):
        return True
    row = _throttle(services, db, "mfa", account)
    row.failures += 1
    row.updated_at = utcnow()
    _audit_account(db, account, "auth.mfa_failed", outcome="deny", reason="code de confirmation incorrect")
    if row.failures >= MFA_MAX_FAILURES:
        row.failures, row.locked_until = 0, utcnow() + timedelta(minutes=services.settings.login_lockout_minutes)
    return False
