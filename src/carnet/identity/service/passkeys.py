"""Passkeys (WebAuthn, issue #16-3): a person registers one or several in « Paramètres », then logs in with one
instead of the password and the code, or gives one instead of the code after the password.

The relying party is the configured ``CARNET_BASE_URL``: its host is the RP id, its origin the only origin an
answer may come from (a page of another site — a phishing copy — gets an answer the server refuses). The
challenges stay on the server (``passkey_challenges``, the cookie carries a random token whose SHA-256 is the
key): each serves once — it is deleted by the answer, right or wrong — and expires after CHALLENGE_MINUTES. A
signature counter that does not grow means a copied authenticator: refused, and told in the history. Every
registration and removal is in the history and e-mailed to the person. The e-mailed code stays the way back
into an account whose passkeys are lost: nothing here replaces it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import (
    base64url_to_bytes,
    bytes_to_base64url,
    parse_authentication_credential_json,
    parse_registration_credential_json,
)
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import (
    AttestationConveyancePreference,
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied, guard, refuse
from carnet.hall.policy import Action, Decision, Resource
from carnet.hall.vocabulary import PARIS
from carnet.identity.service import auth
from carnet.identity.tables import LoginThrottle, Passkey, PasskeyChallenge
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.tables import Account
from carnet.storage.types import utcnow

CHALLENGE_MINUTES = 5
MAX_PASSKEYS = 10
NAME_MAX = 60
MAX_ANSWER = 20_000  # characters of a browser's JSON answer: far above any real one
REGISTER, LOGIN, MFA = "register", "login", "mfa"
COOKIE = "carnet_cle_acces"

EXPIRED = "La demande a expiré ou a déjà servi. Recommencez."
REFUSED_REGISTRATION = "La clé d'accès n'a pas pu être enregistrée. Recommencez, ou essayez une autre clé."
ALREADY = "Cette clé d'accès est déjà enregistrée pour votre compte."
TOO_MANY = f"Vous avez déjà {MAX_PASSKEYS} clés d'accès : retirez-en une avant d'en ajouter une autre."
BAD_NAME = f"Donnez un nom à cette clé d'accès (1 à {NAME_MAX} caractères), par exemple « Téléphone »."
REFUSED_LOGIN = (
    "Cette clé d'accès n'a pas permis de vous connecter. Utilisez votre identifiant, votre mot de passe et le "
    "code reçu par e-mail."
)
NONE_FOR_ACCOUNT = "Aucune clé d'accès n'est enregistrée pour ce compte : utilisez le code reçu par e-mail."
UNAVAILABLE = "Les clés d'accès ne sont pas disponibles sur cette adresse du service."


class PasskeyError(CarnetError):
    pass


@dataclass(frozen=True)
class PasskeyView:
    id: str
    name: str
    created_at: datetime
    last_used_at: datetime | None
    transports: tuple[str, ...]


@dataclass(frozen=True)
class Ceremony:
    """What the browser needs (the options, JSON) and the token of the challenge kept here (its cookie)."""

    token: str
    options: str


# --- the relying party ---------------------------------------------------------------------------------


def relying_party(settings: Settings) -> tuple[str, str]:
    """(RP id, origin) from ``CARNET_BASE_URL``: its host, and scheme://host[:port]."""
    parts = urlsplit(settings.base_url)
    host = (parts.hostname or "").lower()
    return host, f"{parts.scheme}://{parts.netloc.lower()}"


def available(settings: Settings) -> bool:
    """Browsers accept passkeys on a host name (``localhost`` included), never on an IP address."""
    host = relying_party(settings)[0]
    if not host:
        return False
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


# --- challenges -----------------------------------------------------------------------------------------


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _new_challenge(db: Session, purpose: str, account_id: str | None, challenge: bytes) -> str:
    now = utcnow()
    db.execute(delete(PasskeyChallenge).where(PasskeyChallenge.expires_at <= now))
    token = secrets.token_urlsafe(32)
    db.add(
        PasskeyChallenge(
            id=_key(token),
            purpose=purpose,
            account_id=account_id,
            challenge=challenge,
            expires_at=now + timedelta(minutes=CHALLENGE_MINUTES),
            created_at=now,
        )
    )
    return token


def _take_challenge(db: Session, token: str | None, purposes: set[str]) -> PasskeyChallenge | None:
    """The live challenge of this token for one of ``purposes``; deleted whatever follows (single use)."""
    if not token or len(token) > 100:
        return None
    row = db.get(PasskeyChallenge, _key(token))
    if row is None:
        return None
    db.delete(row)
    db.flush()
    if row.purpose not in purposes or row.expires_at <= utcnow():
        return None
    return row


# --- history and e-mail ---------------------------------------------------------------------------------


def _record(
    db: Session, account: Account, action: str, passkey_id: str, outcome: str = "allow", reason: str = ""
) -> None:
    audit.record(
        db,
        auth.actor_for(db, account),
        action,
        patient_id=account.patient_id,
        outcome=outcome,
        reason=reason,
        resource_type="passkey",
        resource_id=passkey_id,
    )


def _tell(services: Services, db: Session, account: Account, added: bool) -> None:
    """The person is told of every registration and removal (nothing else: no name, no health data)."""
    when = utcnow().astimezone(PARIS).strftime("le %d/%m/%Y à %H:%M")
    if added:
        subject = "Une clé d'accès a été ajoutée à votre compte Carnet"
        what = f"Une nouvelle clé d'accès a été ajoutée à votre compte Carnet {when}."
        advice = (
            "Si ce n'est pas vous, connectez-vous avec votre mot de passe et le code reçu par e-mail, retirez cette "
            "clé dans « Paramètres », puis changez votre mot de passe."
        )
    else:
        subject = "Une clé d'accès a été retirée de votre compte Carnet"
        what = f"Une clé d'accès a été retirée de votre compte Carnet {when} : elle ne permet plus de vous connecter."
        advice = "Si ce n'est pas vous, connectez-vous et changez votre mot de passe dès que possible."
    send_or_queue(
        db,
        services.keys,
        services.mailer,
        Mail(
            to=account.email,
            subject=subject,
            text=f"Bonjour,\n\n{what}\n\n{advice}\n\nCarnet — ne répondez pas à ce message.",
        ),
    )


# --- managing one's passkeys (in « Paramètres ») ----------------------------------------------------------


def _own_account(db: Session, actor: Actor, patient_id: str, action: Action) -> Account:
    """The logged-in person's own account, in their own space: passkeys are credentials, which nobody manages
    for another (not a legal representative, not a caregiver — FAM-3)."""
    guard(db, actor, patient_id, action, Resource("settings"))
    account = db.get(Account, actor.id) if actor.id else None
    if account is None or actor.patient_id != patient_id or account.patient_id != patient_id:
        reason = "Les clés d'accès se gèrent dans son propre espace."
        refuse(db, actor, str(action), patient_id, reason, Resource("passkey"))
        raise AccessDenied(Decision(False, reason, "passkeys_own_space_only"))
    return account


def _view(row: Passkey) -> PasskeyView:
    return PasskeyView(
        row.id, row.name, row.created_at, row.last_used_at, tuple(t for t in row.transports.split(",") if t)
    )


def _passkeys_of(db: Session, account_id: str) -> list[Passkey]:
    return list(
        db.scalars(select(Passkey).where(Passkey.account_id == account_id).order_by(Passkey.created_at, Passkey.id))
    )


def list_passkeys(services: Services, actor: Actor, patient_id: str) -> list[PasskeyView]:
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id, Action.SETTINGS_READ)
        return [_view(row) for row in _passkeys_of(db, account.id)]


def _descriptor(row: Passkey) -> PublicKeyCredentialDescriptor:
    transports = []
    for name in row.transports.split(","):
        try:
            transports.append(AuthenticatorTransport(name))
        except ValueError:
            continue
    return PublicKeyCredentialDescriptor(id=base64url_to_bytes(row.credential_id), transports=transports or None)


def begin_registration(services: Services, actor: Actor, patient_id: str) -> Ceremony:
    """Options for ``navigator.credentials.create``: a discoverable credential verified by the person (PIN,
    fingerprint, face), so that it can stand for the password and the code together."""
    settings = services.settings
    if not available(settings):
        raise PasskeyError(UNAVAILABLE)
    rp_id, _ = relying_party(settings)
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id, Action.SETTINGS_WRITE)
        existing = _passkeys_of(db, account.id)
        if len(existing) < MAX_PASSKEYS:
            options = generate_registration_options(
                rp_id=rp_id,
                rp_name="Carnet",
                user_name=account.login,
                user_id=account.id.encode(),
                user_display_name=account.display_name,
                timeout=CHALLENGE_MINUTES * 60_000,
                attestation=AttestationConveyancePreference.NONE,
                authenticator_selection=AuthenticatorSelectionCriteria(
                    resident_key=ResidentKeyRequirement.REQUIRED,
                    require_resident_key=True,
                    user_verification=UserVerificationRequirement.REQUIRED,
                ),
                exclude_credentials=[_descriptor(row) for row in existing],
            )
            token = _new_challenge(db, REGISTER, account.id, options.challenge)
            return Ceremony(token, options_to_json(options))
    raise PasskeyError(TOO_MANY)


def clean_name(name: str) -> str | None:
    cleaned = " ".join(name.split())
    if not cleaned or len(cleaned) > NAME_MAX or not cleaned.isprintable():
        return None
    return cleaned


def finish_registration(
    services: Services, actor: Actor, patient_id: str, token: str | None, answer: str, name: str
) -> PasskeyView:
    """The browser's answer to the registration: checked (challenge, origin, RP id, user verification) and kept.
    ``PasskeyError`` (French) otherwise — the challenge is spent either way."""
    rp_id, origin = relying_party(services.settings)
    cleaned = clean_name(name)
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id, Action.SETTINGS_WRITE)
        challenge = _take_challenge(db, token, {REGISTER})
        if cleaned is None:
            refusal = PasskeyError(BAD_NAME)
        elif challenge is None or challenge.account_id != account.id:
            refusal = PasskeyError(EXPIRED)
        elif len(answer) > MAX_ANSWER:
            refusal = PasskeyError(REFUSED_REGISTRATION)
        else:
            try:
                credential = parse_registration_credential_json(answer)
                verified = verify_registration_response(
                    credential=credential,
                    expected_challenge=challenge.challenge,
                    expected_rp_id=rp_id,
                    expected_origin=origin,
                    require_user_verification=True,
                )
            except (WebAuthnException, ValueError, TypeError, KeyError):
                refusal = PasskeyError(REFUSED_REGISTRATION)
            else:
                credential_id = bytes_to_base64url(verified.credential_id)
                count = db.scalar(select(func.count()).select_from(Passkey).where(Passkey.account_id == account.id))
                if db.scalar(select(Passkey.id).where(Passkey.credential_id == credential_id)) is not None:
                    refusal = PasskeyError(ALREADY)
                elif (count or 0) >= MAX_PASSKEYS:
                    refusal = PasskeyError(TOO_MANY)
                else:
                    transports = ",".join(str(t.value) for t in (credential.response.transports or []))
                    row = Passkey(
                        account_id=account.id,
                        credential_id=credential_id,
                        public_key=verified.credential_public_key,
                        sign_count=verified.sign_count,
                        name=cleaned,
                        transports=transports[:200],
                        created_at=utcnow(),
                    )
                    db.add(row)
                    db.flush()
                    _record(db, account, "auth.passkey_added", row.id)
                    _tell(services, db, account, added=True)
                    return _view(row)
    raise refusal


def rename_passkey(services: Services, actor: Actor, patient_id: str, passkey_id: str, name: str) -> bool:
    """False when the person has no such passkey; ``PasskeyError`` for a name that is empty or too long."""
    cleaned = clean_name(name)
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id, Action.SETTINGS_WRITE)
        row = db.get(Passkey, passkey_id[:36])
        if row is None or row.account_id != account.id:
            return False
        if cleaned is not None:
            row.name = cleaned
            _record(db, account, "auth.passkey_renamed", row.id)
            return True
    raise PasskeyError(BAD_NAME)


def remove_passkey(services: Services, actor: Actor, patient_id: str, passkey_id: str) -> bool:
    """False when the person has no such passkey (someone else's is no different from none)."""
    with services.db.unit_of_work() as db:
        account = _own_account(db, actor, patient_id, Action.SETTINGS_WRITE)
        row = db.get(Passkey, passkey_id[:36])
        if row is None or row.account_id != account.id:
            return False
        db.delete(row)
        _record(db, account, "auth.passkey_removed", passkey_id)
        _tell(services, db, account, added=False)
        return True


def has_passkeys(services: Services, session_token: str | None) -> bool:
    """Whether the half-logged-in account (password given) may give a passkey instead of the code."""
    with services.db.unit_of_work() as db:
        info = auth.load_session(services, db, session_token)
        if info is None or info.stage != auth.MFA_STAGE:
            return False
        return db.scalar(select(Passkey.id).where(Passkey.account_id == info.account.id).limit(1)) is not None


# --- logging in with a passkey ------------------------------------------------------------------------------


def begin_login(services: Services, session_token: str | None, client: str) -> Ceremony:
    """Options for ``navigator.credentials.get``. After the password (a half session): the account's passkeys,
    instead of the code. Without it: any passkey of this site the authenticator holds (no login typed, so
    nothing tells whether an account exists or has passkeys), verified by the person."""
    settings = services.settings
    if not available(settings):
        raise PasskeyError(UNAVAILABLE)
    rp_id, _ = relying_party(settings)
    with services.db.unit_of_work() as db:
        info = auth.load_session(services, db, session_token)
        half = info if info is not None and info.stage == auth.MFA_STAGE else None
        if half is None:
            if not services.ip_limiter.hit(client):  # anyone may ask: bounded per address, as passwords are
                raise auth.LoginError(auth.IP_LIMITED)
            options = generate_authentication_options(
                rp_id=rp_id,
                timeout=CHALLENGE_MINUTES * 60_000,
                user_verification=UserVerificationRequirement.REQUIRED,
            )
            return Ceremony(_new_challenge(db, LOGIN, None, options.challenge), options_to_json(options))
        mine = _passkeys_of(db, half.account.id)
        if mine:
            options = generate_authentication_options(
                rp_id=rp_id,
                timeout=CHALLENGE_MINUTES * 60_000,
                allow_credentials=[_descriptor(row) for row in mine],
                user_verification=UserVerificationRequirement.PREFERRED,
            )
            return Ceremony(_new_challenge(db, MFA, half.account.id, options.challenge), options_to_json(options))
    raise PasskeyError(NONE_FOR_ACCOUNT)


def _failed(services: Services, db: Session, account: Account, passkey_id: str, reason: str, mfa: bool) -> None:
    """A passkey answer refused for a known account: in its history; after the password it counts with the wrong
    codes (``auth.MFA_MAX_FAILURES``)."""
    _record(db, account, "auth.passkey_failed", passkey_id, outcome="deny", reason=reason)
    if mfa:
        key = services.keys.mac("mfa", account.id)
        row = db.get(LoginThrottle, key)
        now = utcnow()
        if row is None:
            row = LoginThrottle(login_key=key, failures=0, updated_at=now)
            db.add(row)
        row.failures = (row.failures or 0) + 1
        row.updated_at = now
        if row.failures >= auth.MFA_MAX_FAILURES:
            minutes = services.settings.login_lockout_minutes
            row.failures, row.locked_until = 0, now + timedelta(minutes=minutes)


def _verified(
    services: Services, db: Session, challenge: PasskeyChallenge, answer: str, session_token: str | None
) -> tuple[Account, auth.SessionInfo | None] | auth.LoginError:
    """The account a passkey answer proves (and the half session it completes, after the password), or the
    refusal to give; a refusal for a known account is in its history."""
    rp_id, origin = relying_party(services.settings)
    refusal = auth.LoginError(REFUSED_LOGIN)
    if len(answer) > MAX_ANSWER:
        return refusal
    try:
        credential = parse_authentication_credential_json(answer)
    except (WebAuthnException, ValueError, TypeError, KeyError):
        return refusal
    row = db.scalar(select(Passkey).where(Passkey.credential_id == bytes_to_base64url(credential.raw_id)))
    account = db.get(Account, row.account_id) if row is not None else None
    if row is None or account is None:
        return refusal
    mfa = challenge.purpose == MFA
    half = None
    if mfa:
        info = auth.load_session(services, db, session_token)
        half = info if info is not None and info.stage == auth.MFA_STAGE else None
        if half is None or half.account.id != account.id or challenge.account_id != account.id:
            return refusal
        if auth.second_factor_locked(services, db, account):
            return auth.LoginError(auth.MFA_LOCKED.format(minutes=services.settings.login_lockout_minutes))
    handle = credential.response.user_handle
    if handle is not None and handle != account.id.encode():
        _failed(services, db, account, row.id, "clé d'accès d'un autre compte", mfa)
        return refusal
    try:
        # the counter is checked below, once the signature is known to be the authenticator's
        verified = verify_authentication_response(
            credential=credential,
            expected_challenge=challenge.challenge,
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=row.public_key,
            credential_current_sign_count=0,
            require_user_verification=not mfa,
        )
    except (WebAuthnException, ValueError, TypeError, KeyError):
        _failed(services, db, account, row.id, "réponse de la clé d'accès invalide", mfa)
        return refusal
    count = verified.new_sign_count
    if (count > 0 or row.sign_count > 0) and count <= row.sign_count:
        _failed(
            services, db, account, row.id, "compteur de signatures non croissant : clé d'accès peut-être copiée", mfa
        )
        return refusal
    row.sign_count = count
    row.last_used_at = utcnow()
    return account, half


def finish_login(
    services: Services, challenge_token: str | None, answer: str, session_token: str | None, client: str
) -> tuple[str, Actor]:
    """The browser's answer: checked (challenge, origin, RP id, signature, a growing counter, and for a login
    without password the person's verification); then a full session starts (a new token, no fixation). Raises
    ``auth.LoginError`` (French) otherwise — the failure is committed (history, counters) before it is raised."""
    if not services.ip_limiter.hit(client):
        raise auth.LoginError(auth.IP_LIMITED)
    with services.db.unit_of_work() as db:
        challenge = _take_challenge(db, challenge_token, {LOGIN, MFA})
        outcome = (
            auth.LoginError(EXPIRED) if challenge is None else _verified(services, db, challenge, answer, session_token)
        )
        if not isinstance(outcome, auth.LoginError):
            account, half = outcome
            if half is not None:
                throttle = db.get(LoginThrottle, services.keys.mac("mfa", account.id))
                if throttle is not None:
                    db.delete(throttle)
                return auth.complete_login(services, db, half, "passkey"), auth.actor_for(db, account)
            account.last_login_at = utcnow()
            audit.record(
                db,
                auth.actor_for(db, account),
                "auth.login",
                patient_id=account.patient_id,
                resource_type="account",
                resource_id=account.id,
                details={"passkey": "sans mot de passe"},
            )
            return auth.start_session(services, db, account, auth.FULL_STAGE), auth.actor_for(db, account)
    raise outcome
