"""Activation of a space by the person invited (ENR-4).

Step 1 proves the person holds the letter or e-mail (activation code) and knows the traits
(date of birth, NIR — for a minor, the NIR of the person who received the letter — carte Vitale
serial); step 2 confirms a contact e-mail with a one-time code; step 3 chooses a login and a
password. Every failure says what to fix; failures count against the invitation (5 → the code is
locked and a new one must be requested) and against the client address (rate limit).

Each step is one public function opening its own transaction; a failure that counts against the
invitation is committed before the error reaches the page.
"""

from __future__ import annotations

import hmac
import json
import secrets
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TypeVar

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.tables import Invitation, QueuedEmail
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import InvitationStatus, PatientStatus
from carnet.identity.model import password_problems
from carnet.identity.service.auth import hash_password
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.model.identifiers import IdentifierError, is_minor, parse_nir
from carnet.people.service.lookup import patient_by_ins
from carnet.people.tables import Account, Patient
from carnet.storage.types import utcnow

MAIL_DOWN = "Nous ne pouvons pas envoyer d'e-mail pour le moment. Réessayez dans quelques minutes."

MAX_FAILURES = 5
STATE_MINUTES = 30
LOGIN_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789.-_@")
T = TypeVar("T")


class ActivationError(CarnetError):
    """A refusal naming what to fix (French) and, when one, the form field concerned."""

    def __init__(self, message: str, field: str = "") -> None:
        super().__init__(message)
        self.field = field

    def __reduce__(self) -> tuple[type[ActivationError], tuple[str, str]]:
        return (type(self), (self.message, self.field))


@dataclass(frozen=True)
class State:
    """What the browser carries between steps, sealed (AES-GCM) with the instance secret."""

    invitation_id: str
    step: str
    expires: float
    email: str = ""
    code_mac: str = ""

    def seal(self, services: Services) -> str:
        return services.keys.seal(json.dumps(self.__dict__), "activation-state")

    @classmethod
    def unseal(cls, services: Services, token: str | None) -> State | None:
        if not token:
            return None
        try:
            state = cls(**json.loads(services.keys.unseal(token, "activation-state")))
        except Exception:
            return None
        return state if state.expires > utcnow().timestamp() else None


def _counted(services: Services, step: Callable[[Session], T]) -> T:
    """Run one step in its own transaction; a refusal keeps what it counted (``_fail``) before being raised."""
    with services.db.unit_of_work() as db:
        try:
            return step(db)
        except ActivationError as exc:
            failure = exc
    raise failure


def _fail(db: Session, invitation: Invitation, message: str, field: str) -> ActivationError:
    """Count a failed attempt against the invitation; the error to raise (the code is locked at 5)."""
    invitation.attempts += 1
    if invitation.attempts >= MAX_FAILURES:
        return ActivationError("Trop d'essais infructueux : ce code est bloqué. Demandez un nouveau code.", "code")
    return ActivationError(message, field)


def check_identity(services: Services, code: str, birth_date: date | None, nir: str, vitale: str) -> State:
    """Step 1; raises ``ActivationError`` naming what to fix."""
    return _counted(services, lambda db: _check_identity(services, db, code, birth_date, nir, vitale))


def _check_identity(
    services: Services, db: Session, code: str, birth_date: date | None, nir: str, vitale: str
) -> State:
    normalised = codes.normalise(code)
    if len(normalised) != codes.LENGTH:
        raise ActivationError(
            "Le code d'activation comporte 12 lettres ou chiffres : vérifiez votre courrier ou votre e-mail.", "code"
        )
    invitation = db.scalar(
        select(Invitation).where(Invitation.code_hash == services.keys.mac(codes.MAC_PURPOSE, normalised))
    )
    if invitation is None or invitation.code_used_at is not None:
        raise ActivationError(
            "Ce code d'activation est inconnu ou a déjà servi. Vérifiez-le, ou demandez un nouveau code.", "code"
        )
    if invitation.attempts >= MAX_FAILURES:
        raise ActivationError("Trop d'essais infructueux : ce code est bloqué. Demandez un nouveau code.", "code")
    if invitation.code_expires_at <= utcnow():
        raise ActivationError("Ce code d'activation a expiré. Demandez un nouveau code.", "code")
    patient = db.get(Patient, invitation.patient_id)
    if patient is None or patient.status not in {PatientStatus.REGISTERED, PatientStatus.ACTIVE}:
        raise ActivationError(
            "Cet espace ne peut pas être activé : contactez votre caisse d'assurance maladie.", "code"
        )
    if birth_date is None or birth_date != patient.birth_date:
        raise _fail(
            db, invitation, "La date de naissance ne correspond pas à celle de la personne invitée.", "date_naissance"
        )
    try:
        given = parse_nir(nir).value
    except IdentifierError as exc:
        raise ActivationError(exc.message, "nir") from exc
    if not hmac.compare_digest(given, patient.ins) and not (
        patient.ouvrant_droit_ins and hmac.compare_digest(given, patient.ouvrant_droit_ins)
    ):
        raise _fail(
            db,
            invitation,
            "Le numéro de sécurité sociale ne correspond pas. Pour un enfant, saisissez "
            "celui de la personne qui a reçu le courrier.",
            "nir",
        )
    serial = "".join(vitale.split())
    if patient.vitale_serial:  # issue #15-9: without a serial on record, the code, birth date and NIR suffice
        if not serial:
            raise ActivationError("Saisissez le numéro de série de votre carte Vitale (au dos de la carte).", "vitale")
        if not (serial.isdigit() and 8 <= len(serial) <= 13):
            raise ActivationError("Le numéro de série de la carte Vitale comporte de 8 à 13 chiffres.", "vitale")
        if not hmac.compare_digest(serial, patient.vitale_serial):
            raise _fail(db, invitation, "Le numéro de série de la carte Vitale ne correspond pas.", "vitale")
    return State(invitation.id, "contact", utcnow().timestamp() + STATE_MINUTES * 60, email=patient.email or "")


def send_contact_code(services: Services, state: State, email: str) -> State:
    """Step 2a: e-mail a one-time code to the address the person confirms."""
    email = email.strip()
    if "@" not in email or "." not in email.rsplit("@", 1)[-1] or len(email) > 254 or " " in email:
        raise ActivationError("Adresse e-mail invalide : vérifiez-la (exemple : prenom.nom@exemple.fr).", "email")
    code = f"{secrets.randbelow(1_000_000):06d}"
    try:
        services.mailer.send(
            Mail(
                email,
                "Votre code de confirmation Carnet",
                f"Bonjour,\n\nVotre code de confirmation pour activer votre espace santé est : {code}\n\n"
                "Il est valable 30 minutes.\n\nCarnet — ne répondez pas à ce message.",
            )
        )
    except (OSError, smtplib.SMTPException):  # the relay is down (issue #15-3): say so, nothing is lost
        raise ActivationError(MAIL_DOWN, "email") from None
    return State(
        state.invitation_id,
        "verification",
        state.expires,
        email=email,
        code_mac=services.keys.mac("activation-contact", f"{state.invitation_id}:{email}:{code}"),
    )


def check_contact_code(services: Services, state: State, code: str) -> State:
    """Step 2b: the one-time code e-mailed at step 2a."""
    return _counted(services, lambda db: _check_contact_code(services, db, state, code))


def _check_contact_code(services: Services, db: Session, state: State, code: str) -> State:
    invitation = db.get(Invitation, state.invitation_id)
    if invitation is None or invitation.attempts >= MAX_FAILURES:
        raise ActivationError("Trop d'essais infructueux : ce code est bloqué. Demandez un nouveau code.", "code")
    expected = services.keys.mac("activation-contact", f"{state.invitation_id}:{state.email}:{code.strip()}")
    if not hmac.compare_digest(expected, state.code_mac):
        raise _fail(db, invitation, "Code incorrect : saisissez les 6 chiffres reçus par e-mail.", "code")
    return State(state.invitation_id, "compte", state.expires, email=state.email)


def create_account(services: Services, state: State, login: str, password: str, confirm: str) -> str:
    """Step 3: the account; the space (and those of attached children) opens. Returns the login."""
    with services.db.unit_of_work() as db:
        return _create_account(services, db, state, login, password, confirm)


def _create_account(services: Services, db: Session, state: State, login: str, password: str, confirm: str) -> str:
    login = login.strip().lower()
    if not 3 <= len(login) <= 60 or not set(login) <= LOGIN_CHARS:
        raise ActivationError(
            "L'identifiant doit comporter de 3 à 60 caractères : lettres sans accent, chiffres, "
            "point, tiret, tiret bas ou @.",
            "identifiant",
        )
    problems = password_problems(password)
    if problems:
        raise ActivationError("Le mot de passe doit contenir " + ", ".join(problems) + ".", "mot_de_passe")
    if password != confirm:
        raise ActivationError("Les deux mots de passe ne sont pas identiques.", "confirmation")
    if db.scalar(select(Account.id).where(Account.login == login)):
        raise ActivationError("Cet identifiant est déjà pris : choisissez-en un autre.", "identifiant")
    invitation = db.get(Invitation, state.invitation_id)
    if invitation is None or invitation.code_used_at is not None:
        raise ActivationError("Ce code d'activation a déjà servi.", "code")
    patient = db.get(Patient, invitation.patient_id)
    assert patient is not None
    now = utcnow()
    account = Account(
        kind="patient",
        login=login,
        email=state.email,
        password_hash=hash_password(services, password),
        patient_id=patient.id,
        display_name=f"{patient.first_names} {patient.used_name or patient.birth_name}",
    )
    db.add(account)
    db.flush()
    invitation.code_used_at = now
    patient.email = state.email
    actor = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=patient.id)
    for patient_id in _open_spaces(db, patient, now):
        audit.record(db, actor, "space.activated", patient_id=patient_id, resource_type="space")
    send_or_queue(
        db,
        services.keys,
        services.mailer,
        Mail(
            state.email,
            "Votre espace santé Carnet est activé",
            "Bonjour,\n\nVotre espace santé est activé. Connectez-vous avec l'identifiant "
            f"« {login} » sur {services.settings.base_url}.\n\nSi vous n'êtes pas à l'origine de "
            "cette activation, contactez immédiatement votre caisse d'assurance maladie."
            "\n\nCarnet — ne répondez pas à ce message.",
        ),
    )
    return login


def _open_spaces(db: Session, patient: Patient, now: datetime) -> list[str]:
    """The person's space opens, and those of the minors attached to them (their codes are used up too)."""
    opened = [patient.id]
    if patient.status == PatientStatus.REGISTERED:
        patient.status, patient.opened_at = PatientStatus.ACTIVE, now
    children = db.scalars(
        select(Patient).where(Patient.attached_to_id == patient.id, Patient.status == PatientStatus.REGISTERED)
    )
    for child in children:
        if is_minor(child.birth_date, now.date()):
            child.status, child.opened_at = PatientStatus.ACTIVE, now
            opened.append(child.id)
    db.execute(update(Invitation).where(Invitation.patient_id.in_(opened[1:])).values(code_used_at=now))
    return opened


NEW_CODE_SENT = (
    "Si ces informations correspondent à une personne invitée, un nouveau code vient d'être envoyé à son "
    "adresse e-mail, ou un nouveau courrier lui sera posté si aucune adresse n'est connue."
)


def request_new_code(services: Services, nir: str, birth_date: date | None) -> str:
    """ENR-4: a new code replaces the old one. The answer is the same whether or not someone matched."""
    try:
        ins = parse_nir(nir).value
    except IdentifierError as exc:
        raise ActivationError(exc.message, "nir") from exc
    if birth_date is None:
        raise ActivationError("Indiquez la date de naissance.", "date_naissance")
    with services.db.unit_of_work() as db:
        return _new_code(services, db, ins, birth_date)


def _new_code(services: Services, db: Session, ins: str, birth_date: date) -> str:
    patient = patient_by_ins(db, ins)
    patient = patient if patient is not None and patient.birth_date == birth_date else None
    invitation = db.scalar(select(Invitation).where(Invitation.patient_id == patient.id)) if patient else None
    if patient is None or invitation is None or patient.status != PatientStatus.REGISTERED or invitation.code_used_at:
        return NEW_CODE_SENT
    renew_code(services, db, patient)
    return NEW_CODE_SENT


def renew_code(
    services: Services, db: Session, patient: Patient, *, by_letter: bool = False, now: datetime | None = None
) -> bool:
    """A new activation code replaces the old one (ENR-4), by e-mail when an address is known (and
    ``by_letter`` is false), else by post (queued for the letter job). Also for a young adult whose space a
    parent activated (FAM-2): the used code is replaced too. False when the person has no invitation."""
    now = now or utcnow()
    invitation = db.scalar(select(Invitation).where(Invitation.patient_id == patient.id))
    if invitation is None:
        return False
    code = codes.new_code()
    invitation.code_hash = services.keys.mac(codes.MAC_PURPOSE, code)
    invitation.code_sealed = services.keys.seal(code, codes.SEAL_PURPOSE)
    invitation.code_expires_at = now + codes.VALIDITY
    invitation.code_used_at = None
    invitation.attempts = 0
    by_email = bool(patient.email) and not by_letter
    if by_email:
        send_or_queue(
            db,
            services.keys,
            services.mailer,
            Mail(
                patient.email or "",
                "Votre nouveau code d'activation Carnet",
                "Bonjour,\n\nVoici votre nouveau code d'activation : "
                f"{codes.format_code(code)}\n\nActivez votre espace sur "
                f"{services.settings.base_url}/activation. L'ancien code ne fonctionne plus."
                "\n\nCarnet — ne répondez pas à ce message.",
            ),
        )
    else:
        invitation.channel, invitation.status = InvitationStatus.LETTER, "pending"
        db.execute(delete(QueuedEmail).where(QueuedEmail.invitation_id == invitation.id))  # no campaign e-mail now
    audit.record(
        db,
        Actor.system(),
        "activation.new_code",
        patient_id=patient.id,
        resource_type="invitation",
        details={"canal": "email" if by_email else "courrier"},
    )
    return True
