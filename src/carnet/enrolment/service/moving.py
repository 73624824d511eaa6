"""A person whose space was imported from another Carnet (ENR-7, item 5): how they reach it here.

Their space is open already (it was where it comes from), so there is no objection period; what they need is an
account on this instance. They get an activation code as everyone does (ENR-4) — by e-mail when the archive gave
an address, else by post (the letter job prints it) — in a one-person campaign named after the import, and activate
at ``/activation`` with it, their NIR and their birth date; « Recevoir un nouveau code » works as for anyone.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import objection_deadline
from carnet.enrolment.tables import Campaign, Invitation
from carnet.hall.actors import Actor
from carnet.hall.vocabulary import InvitationStatus
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.tables import Patient
from carnet.storage.types import new_id, utcnow

MOVED_SUBJECT = "Votre espace santé Carnet vous attend"
MOVED_TEXT = (
    "Bonjour,\n\nVotre espace santé a été transféré sur ce service à votre demande.\n\n"
    "Pour y accéder, activez-le sur {url}/activation avec ce code : {code}\n"
    "(il vous sera demandé avec votre numéro de sécurité sociale et votre date de naissance).\n\n"
    "Pour votre sécurité, cet e-mail ne contient aucune information médicale.\n\nCarnet — ne répondez pas à ce message."
)


def invite_moved_person(db: Session, services: Services, actor: Actor, patient: Patient) -> str:
    """The activation code of a moved person, sent; the channel (« email » or « courrier »)."""
    now = utcnow()
    campaign = Campaign(
        id=new_id(),
        departements=[patient.departement] if patient.departement else [],
        started_at=now,
        opening_due_at=objection_deadline(now),
    )
    campaign.started_by = f"Import d'archive ({actor.label})"[:200]
    db.add(campaign)
    db.flush()
    code = codes.new_code()
    by_email = bool(patient.email and "@" in patient.email)
    db.add(
        Invitation(
            id=new_id(),
            patient_id=patient.id,
            campaign_id=campaign.id,
            channel="email" if by_email else "letter",
            status=InvitationStatus.SENT if by_email else InvitationStatus.TO_PRINT,
            code_hash=services.keys.mac(codes.MAC_PURPOSE, code),
            code_sealed=services.keys.seal(code, codes.SEAL_PURPOSE),
            code_expires_at=now + codes.VALIDITY,
            sent_at=now if by_email else None,
            attempts=0,
        )
    )
    if by_email:
        text = MOVED_TEXT.format(url=services.settings.base_url, code=codes.format_code(code))
        send_or_queue(db, services.keys, services.mailer, Mail(patient.email or "", MOVED_SUBJECT, text))
    return "email" if by_email else "courrier"
