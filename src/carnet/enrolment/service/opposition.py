"""The right to object (ENR-3): online without an account, or through an operator; receipts; changing one's mind.

Online, the person (or their legal representative) proves who they are with the three things the
invitation gave them or they know: the activation code, the NIR and the date of birth. The code
finds the invitation; the NIR may be the person's own or, for a minor, the one of the person they
are attached to. A mismatch says nothing about which of the three was wrong, and the comparison
does the same work whether the code exists or not.

Every objection and withdrawal goes through the hall (``guard``) and the audit log. The receipt is
a PDF made on demand; its download link carries an encrypted, authenticated token (AES-GCM under
the instance secret) holding only the objection id and an expiry: no identifier or name in the URL.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta

from cryptography.exceptions import InvalidTag
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import can_object, date_fr, new_receipt_number, paris_day
from carnet.enrolment.service import letters as pdf
from carnet.enrolment.service.campaigns.creation import active_objection, rearm
from carnet.enrolment.service.campaigns.printing import contact
from carnet.enrolment.service.campaigns.queue import SERVICE_SPACE
from carnet.enrolment.service.identify import (
    NotIdentified,
    parse_birth_date,
    parse_code_field,
    parse_nir_field,
    patient_by_identity,
)
from carnet.enrolment.service.messages import objection_mail, withdrawal_mail
from carnet.enrolment.tables import Invitation, Objection
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.hall.vocabulary import PatientStatus
from carnet.mail.outbound import Mail
from carnet.people.model.identifiers import display_name
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

log = logging.getLogger("carnet.opposition")

RECEIPT_LINK_TTL = timedelta(minutes=30)
RECEIPT_PURPOSE = "objection-receipt"
_ABSENT = "00000000-0000-0000-0000-000000000000"  # looked up when the code matches nothing: same work
_DUMMY_NIR = "0" * 15
_DUMMY_DATE = "0000-00-00"
CHANNELS = {"online": "en ligne", "phone": "par téléphone auprès d'un conseiller"}


@dataclass(frozen=True)
class Outcome:
    """What happened, for the page or the console to explain.

    ``kind``: recorded | already | too_late | space_open | space_closed | withdrawn | nothing_to_withdraw
    """

    kind: str
    patient_id: str
    name: str
    objection_id: str | None = None
    receipt_number: str | None = None
    deadline: datetime | None = None
    invited: bool = True
    receipt_token: str | None = None  # online: the short-lived token of the receipt's download link


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())


def _identify(services: Services, db: Session, code: str, nir: str, born: date) -> tuple[Actor, Patient, Invitation]:
    invitation = db.scalar(select(Invitation).where(Invitation.code_hash == services.keys.mac(codes.MAC_PURPOSE, code)))
    patient = db.get(Patient, invitation.patient_id if invitation else _ABSENT)
    guardian = db.get(Patient, (patient.attached_to_id if patient else None) or _ABSENT)
    own_nir = patient.ins if patient else _DUMMY_NIR
    guardian_nirs = [guardian.ins if guardian else _DUMMY_NIR, (patient.ouvrant_droit_ins if patient else None) or ""]
    own = _same(nir, own_nir)
    by_guardian = any([_same(nir, candidate) for candidate in guardian_nirs if candidate])  # every one compared
    born_ok = _same(born.isoformat(), patient.birth_date.isoformat() if patient else _DUMMY_DATE)
    if invitation is None or patient is None or not born_ok or not (own or by_guardian):
        raise NotIdentified
    name = display_name(patient.first_names, patient.birth_name, patient.used_name)
    if own:
        actor = Actor(ActorKind.PATIENT, None, f"{name} (avec son code d'activation)", patient_id=patient.id)
    else:
        label = display_name(guardian.first_names, guardian.birth_name, guardian.used_name) if guardian else ""
        actor = Actor(
            ActorKind.REPRESENTATIVE,
            None,
            f"{label or 'Représentant légal'} (avec le code d'activation de {name})",
            patient_id=patient.id,  # acts for this person, identified by their invitation's code
        )
    return actor, patient, invitation


def _record(
    db: Session,
    actor: Actor,
    patient: Patient,
    invitation: Invitation | None,
    channel: str,
    recorded_by: str,
    now: datetime,
) -> Outcome:
    guard(db, actor, patient.id, Action.ENROLMENT_OBJECT, Resource("objection"))
    name = display_name(patient.first_names, patient.birth_name, patient.used_name)
    deadline = invitation.objection_deadline if invitation else None
    invited = invitation is not None
    existing = active_objection(db, patient.id)
    if existing is not None:
        return Outcome("already", patient.id, name, existing.id, existing.receipt_number, deadline, invited)
    if patient.status == PatientStatus.ACTIVE:
        return Outcome("space_open", patient.id, name, deadline=deadline, invited=invited)
    if patient.status not in {PatientStatus.REGISTERED, PatientStatus.OPPOSED}:
        return Outcome("space_closed", patient.id, name, deadline=deadline, invited=invited)
    if not can_object(deadline, now):
        return Outcome("too_late", patient.id, name, deadline=deadline, invited=invited)
    objection = Objection(
        patient_id=patient.id,
        channel=channel,
        recorded_at=now,
        recorded_by=recorded_by[:200],
        receipt_number=new_receipt_number(now),
    )
    db.add(objection)
    patient.status = PatientStatus.OPPOSED
    db.flush()
    audit.record(
        db,
        actor,
        "enrolment.objection",
        patient_id=patient.id,
        resource_type="objection",
        resource_id=objection.id,
        details={"canal": channel, "récépissé": objection.receipt_number},
    )
    return Outcome("recorded", patient.id, name, objection.id, objection.receipt_number, deadline, invited)


def _withdraw(db: Session, actor: Actor, patient: Patient, invitation: Invitation | None, now: datetime) -> Outcome:
    guard(db, actor, patient.id, Action.ENROLMENT_OBJECT, Resource("objection"))
    name = display_name(patient.first_names, patient.birth_name, patient.used_name)
    deadline = invitation.objection_deadline if invitation else None
    existing = active_objection(db, patient.id)
    if existing is None:
        return Outcome("nothing_to_withdraw", patient.id, name, deadline=deadline, invited=invitation is not None)
    existing.withdrawn_at = now
    if patient.status == PatientStatus.OPPOSED:
        # created by the job once the period is over (its campaign walked again), or activated by the person
        patient.status = PatientStatus.REGISTERED
        rearm(db, invitation, now)
    audit.record(
        db,
        actor,
        "enrolment.objection_withdrawn",
        patient_id=patient.id,
        resource_type="objection",
        resource_id=existing.id,
        details={"récépissé": existing.receipt_number},
    )
    return Outcome(
        "withdrawn", patient.id, name, existing.id, existing.receipt_number, deadline, invitation is not None
    )


def _notify(services: Services, mail: Mail | None) -> None:
    if mail is None:
        return
    try:
        services.mailer.send(mail)
    except Exception as exc:  # the objection stands; the page and the receipt say it too
        log.warning("confirmation d'opposition non envoyée : %s", type(exc).__name__)


def _confirmation(services: Services, outcome: Outcome, email: str | None, now: datetime) -> Mail | None:
    if not email:
        return None
    settings = services.settings
    if outcome.kind == "recorded" and outcome.receipt_number:
        return objection_mail(
            email, outcome.name, outcome.receipt_number, paris_day(now), settings.base_url, settings.support_phone
        )
    if outcome.kind == "withdrawn":
        return withdrawal_mail(email, outcome.name, paris_day(now), settings.base_url)
    return None


def object_online(
    services: Services, code: str, nir: str, birth: str, now: datetime | None = None, withdraw: bool = False
) -> Outcome:
    """The person objects (or, ``withdraw``, changes their mind) with code + NIR + date of birth, no account."""
    now = now or utcnow()
    code_value, nir_value, born = parse_code_field(code), parse_nir_field(nir), parse_birth_date(birth)
    with services.db.unit_of_work() as db:
        actor, patient, invitation = _identify(services, db, code_value, nir_value, born)
        if withdraw:
            outcome = _withdraw(db, actor, patient, invitation, now)
        else:
            recorded_by = "Représentant légal, en ligne" if actor.kind == ActorKind.REPRESENTATIVE else "En ligne"
            outcome = _record(db, actor, patient, invitation, "online", recorded_by, now)
        email = patient.email
    _notify(services, _confirmation(services, outcome, email, now))
    if outcome.objection_id and outcome.kind in {"recorded", "already"}:
        outcome = replace(outcome, receipt_token=receipt_token(services, outcome.objection_id))
    return outcome


def object_by_phone(
    services: Services,
    actor: Actor,
    nir: str,
    birth: str,
    caller: str = "personne",
    now: datetime | None = None,
    withdraw: bool = False,
) -> Outcome:
    """An operator records (or withdraws) an objection asked for by phone; the person is found by NIR + birth date."""
    now = now or utcnow()
    nir_value, born = parse_nir_field(nir), parse_birth_date(birth)
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("person"))  # before any look-up
        patient = patient_by_identity(db, nir_value, born)
        invitation = db.scalar(select(Invitation).where(Invitation.patient_id == patient.id))
        if withdraw:
            outcome = _withdraw(db, actor, patient, invitation, now)
        else:
            who = "à la demande du représentant légal" if caller == "representant" else "à la demande de la personne"
            outcome = _record(db, actor, patient, invitation, "phone", f"{actor.label}, par téléphone, {who}", now)
        email = patient.email
    _notify(services, _confirmation(services, outcome, email, now))
    return outcome


# --- receipts -------------------------------------------------------------------------------------------


def receipt_token(services: Services, objection_id: str, now: datetime | None = None) -> str:
    """A short-lived download token: encrypted and authenticated, it reveals nothing in the URL."""
    expires = int(((now or utcnow()) + RECEIPT_LINK_TTL).timestamp())
    return services.keys.seal(f"{objection_id}|{expires}", RECEIPT_PURPOSE)


def objection_from_token(services: Services, token: str, now: datetime | None = None) -> str | None:
    try:
        objection_id, _, expires = services.keys.unseal(token, RECEIPT_PURPOSE).partition("|")
    except (InvalidTag, ValueError, UnicodeError):
        return None
    if not expires.isdigit() or int(expires) < (now or utcnow()).timestamp():
        return None
    return objection_id


def _receipt_pdf(services: Services, db: Session, objection: Objection) -> bytes:
    patient = db.get(Patient, objection.patient_id)
    assert patient is not None
    born = "née" if patient.sex == "F" else "né"
    person = (
        f"{display_name(patient.first_names, patient.birth_name, patient.used_name)}, "
        f"{born} le {date_fr(patient.birth_date)}"
    )
    receipt = pdf.Receipt(
        number=objection.receipt_number,
        recorded_at=objection.recorded_at,
        person=person,
        channel=CHANNELS.get(objection.channel, objection.channel),
        by_representative="représentant légal" in objection.recorded_by.lower(),
    )
    return pdf.render_receipt(receipt, contact(services))


def receipt_by_token(services: Services, token: str, now: datetime | None = None) -> bytes | None:
    """The person's receipt, from the link of the confirmation page (valid ``RECEIPT_LINK_TTL``)."""
    objection_id = objection_from_token(services, token, now)
    if objection_id is None:
        return None
    with services.db.unit_of_work() as db:
        objection = db.get(Objection, objection_id)
        if objection is None:
            return None
        return _receipt_pdf(services, db, objection)


def receipt_for_operator(services: Services, actor: Actor, objection_id: str) -> bytes | None:
    """An objection's receipt printed again by an operator (operators only, checked before any look-up; audited)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, SERVICE_SPACE, Action.ENROLMENT_MANAGE, Resource("objection", objection_id[:64]))
        objection = db.get(Objection, objection_id)
        if objection is None:
            return None
        guard(db, actor, objection.patient_id, Action.ENROLMENT_OBJECT, Resource("objection", objection.id))
        audit.record(
            db,
            actor,
            "enrolment.receipt_printed",
            patient_id=objection.patient_id,
            resource_type="objection",
            resource_id=objection.id,
        )
        return _receipt_pdf(services, db, objection)
