"""Every 90 days, the list of the apps connected to a space, e-mailed (TRC-3).

A person forgets what they once connected; the spec asks that every 90 days an e-mail lists the synchronised
services. The first one goes 90 days after the space's first connection still live, the next ones 90 days after
the previous (``catalogue_summaries``), to the person and to the legal representatives of a minor — the apps'
names and when each was connected, and where to disconnect them; nothing of what they read or wrote. A space with
no app connected any more gets nothing. The job runs daily; a space is claimed (its ``sent_at`` written) in the
transaction that queues its e-mails, so two workers never send it twice.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.catalogue.tables import App, AppConsent, AppsSummary
from carnet.family import service as family
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.vocabulary import PARIS
from carnet.mail.outbound import Mail
from carnet.mail.queue import send_or_queue
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

PERIOD = timedelta(days=90)
BATCH = 200
SUBJECT = "Les services connectés à votre espace santé"
TEXT = (
    "Bonjour,\n\nComme tous les trois mois, voici les services connectés {whose} :\n\n{lines}\n\n"
    "Ils lisent et ajoutent seulement ce que vous avez accepté. Vous pouvez déconnecter chacun d'eux à tout moment : "
    "connectez-vous sur {url}, puis ouvrez « Services connectés ».\n\nCarnet — ne répondez pas à ce message."
)


def _due(services: Services, now: datetime) -> list[str]:
    with services.db.unit_of_work() as db:
        first = (
            select(AppConsent.patient_id, func.min(AppConsent.granted_at))
            .where(AppConsent.revoked_at.is_(None))
            .group_by(AppConsent.patient_id)
        )
        last = dict(db.execute(select(AppsSummary.patient_id, AppsSummary.sent_at)).all())
        return [pid for pid, since in db.execute(first).all() if (last.get(pid) or since) <= now - PERIOD][:BATCH]


def send_due(services: Services, now: datetime | None = None) -> int:
    """The summaries due, sent or queued; how many e-mails."""
    now = now or utcnow()
    sent = 0
    for patient_id in _due(services, now):
        with services.db.unit_of_work() as db:
            claimed = db.get(AppsSummary, patient_id)
            if claimed is not None and claimed.sent_at > now - PERIOD:  # another worker was first
                continue
            patient = db.get(Patient, patient_id)
            rows = db.execute(
                select(App.name, func.min(AppConsent.granted_at))
                .join(App, App.id == AppConsent.app_id)
                .where(AppConsent.patient_id == patient_id, AppConsent.revoked_at.is_(None))
                .group_by(App.name)
                .order_by(App.name)
            ).all()
            if patient is None or not rows:
                continue
            if claimed is None:
                db.add(AppsSummary(patient_id=patient_id, sent_at=now))
            else:
                claimed.sent_at = now
            lines = "\n".join(f"- {name} (connecté le {since.astimezone(PARIS):%d/%m/%Y})" for name, since in rows)
            for whose, email in _recipients(db, patient):
                text = TEXT.format(whose=whose, lines=lines, url=services.settings.base_url)
                send_or_queue(db, services.keys, services.mailer, Mail(email, SUBJECT, text))
                sent += 1
            audit.record(
                db, Actor.system(), "apps.summary_sent", patient_id=patient_id, details={"services": len(rows)}
            )
    return sent


def _recipients(db: object, patient: Patient) -> list[tuple[str, str]]:
    """(whose space, address): the person, and the legal representatives of a minor."""
    out: list[tuple[str, str]] = []
    if patient.email:
        out.append(("à votre espace santé", patient.email))
    for representative in family.representatives_of(db, patient):  # type: ignore[arg-type]
        if representative.email and representative.email != patient.email:
            out.append((f"à l'espace santé de {patient.first_names.split(' ')[0]}", representative.email))
    return out
