"""The agenda as iCalendar (AGD-1): the file downloaded from the portal, and private subscription links.

A subscription link is ``/agenda/abonnement/<token>.ics`` with a random token (``secrets.token_urlsafe(32)``,
256 bits) shown once to the person who creates it; only its SHA-256 is kept, so the table alone opens nothing. The
link is looked up by that hash (a hash of a random secret: nothing to learn from the time the look-up takes),
works without logging in, and stops for good when revoked (404, like an unknown link) or when the space is no
longer open. Its events carry no health detail unless the person ticked « avec les détails ». Only the people of
the space create, see and revoke links; each fetch updates ``last_used_at`` and is one line a day in the history.
The token never reaches the logs: the request log writes this path without it (``carnet.web.security``).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.agenda.model import ical
from carnet.agenda.service import events
from carnet.agenda.tables import AgendaEvent, CalendarFeed
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource, space_is_open
from carnet.people.tables import Patient
from carnet.storage.types import utcnow

FEED_PATH = "/agenda/abonnement/"
TOKEN = re.compile(r"[A-Za-z0-9_\-]{43}")
MAX_FEEDS = 10  # active links of one space
FEED_PAST = timedelta(days=366)  # a subscription carries the last year and everything to come
FEED_EVENTS = 2000
TOO_MANY = f"Vous avez déjà {MAX_FEEDS} liens d'abonnement actifs : retirez-en un avant d'en créer un autre."
FEED_LABEL = "Lien d'abonnement au calendrier"


class FeedError(CarnetError):
    """A subscription link that cannot be created as asked (the French reason)."""


@dataclass(frozen=True)
class FeedView:
    id: str
    with_details: bool
    created_by_label: str
    created_at: datetime
    last_used_at: datetime | None


@dataclass(frozen=True)
class NewFeed:
    """A link just created: its token is shown this once, never again."""

    feed: FeedView
    token: str

    def url(self, base_url: str) -> str:
        return f"{base_url}{FEED_PATH}{self.token}.ics"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _view(feed: CalendarFeed) -> FeedView:
    return FeedView(feed.id, feed.with_details, feed.created_by_label, feed.created_at, feed.last_used_at)


def active_feeds(db: Session, patient_id: str) -> list[FeedView]:
    """The links of a space that still work, newest first (the caller asked the policy)."""
    query = select(CalendarFeed).where(CalendarFeed.patient_id == patient_id, CalendarFeed.revoked_at.is_(None))
    return [_view(feed) for feed in db.scalars(query.order_by(CalendarFeed.created_at.desc()))]


def _people_of_space(db: Session, actor: Actor, patient_id: str) -> None:
    """The policy's yes to managing the space's links and to reading the whole agenda: only the people of the
    space (a professional, who may add an appointment, reads only what they gave and manages no link)."""
    guard(db, actor, patient_id, Action.AGENDA_WRITE, Resource("agenda_feed"))  # the policy: feed_people_only


def _record(db: Session, actor: Actor, patient_id: str, feed_id: str, op: str, fait: str) -> None:
    audit.record(
        db,
        actor,
        str(Action.AGENDA_WRITE),
        patient_id=patient_id,
        resource_type="agenda_feed",
        resource_id=feed_id,
        details={"op": op, "fait": fait},
    )


def create_feed(services: Services, actor: Actor, patient_id: str, with_details: bool) -> NewFeed:
    """A new private subscription link (its token returned this once)."""
    with services.db.unit_of_work() as db:
        _people_of_space(db, actor, patient_id)
        if len(active_feeds(db, patient_id)) >= MAX_FEEDS:
            raise FeedError(TOO_MANY)
        token = secrets.token_urlsafe(32)
        feed = CalendarFeed(
            patient_id=patient_id,
            token_hash=token_hash(token),
            with_details=with_details,
            created_by_label=actor.label[:200],
            created_at=utcnow(),
        )
        db.add(feed)
        db.flush()
        fait = "a créé un lien d'abonnement à l'agenda" + (" (avec les détails)" if with_details else "")
        _record(db, actor, patient_id, feed.id, "feed_create", fait)
        return NewFeed(_view(feed), token)


def revoke_feed(services: Services, actor: Actor, patient_id: str, feed_id: str) -> None:
    """The link stops working for good (an unknown or already revoked link: ``events.EventNotFound``)."""
    with services.db.unit_of_work() as db:
        _people_of_space(db, actor, patient_id)
        feed = db.get(CalendarFeed, feed_id) if events.well_formed(feed_id) else None
        if feed is None or feed.patient_id != patient_id or feed.revoked_at is not None:
            raise events.EventNotFound()
        feed.revoked_at = utcnow()
        _record(db, actor, patient_id, feed.id, "feed_revoke", "a retiré un lien d'abonnement à l'agenda")


def _feed_events(services: Services, db: Session, patient_id: str) -> list[events.EventView]:
    since = utcnow() - FEED_PAST
    rows = db.scalars(
        select(AgendaEvent)
        .where(AgendaEvent.patient_id == patient_id, AgendaEvent.starts_at >= since)
        .order_by(AgendaEvent.starts_at, AgendaEvent.id)
        .limit(FEED_EVENTS)
    ).all()
    return events.views(services, db, patient_id, rows)


def export(services: Services, actor: Actor, patient_id: str) -> bytes:
    """The whole agenda as the actor may see it, as an ``.ics`` file with every detail (a download from the
    portal, by someone logged in)."""
    with services.db.unit_of_work() as db:
        _, query = events.readable(db, actor, patient_id)
        rows = db.scalars(query.order_by(AgendaEvent.starts_at, AgendaEvent.id).limit(FEED_EVENTS * 5)).all()
        opened = events.views(services, db, patient_id, rows)
        audit.record(
            db, actor, str(Action.AGENDA_READ), patient_id=patient_id, resource_type="agenda", details={"export": "ics"}
        )
        return ical.calendar(opened, details=True)


def serve_feed(services: Services, token: str) -> bytes | None:
    """The calendar of a subscription link, or None (unknown, revoked, or the space no longer open: one answer)."""
    if not TOKEN.fullmatch(token):
        return None
    wanted = token_hash(token)
    with services.db.unit_of_work() as db:
        feed = db.scalar(select(CalendarFeed).where(CalendarFeed.token_hash == wanted))
        if feed is None or feed.revoked_at is not None or not hmac.compare_digest(feed.token_hash, wanted):
            return None
        patient = db.get(Patient, feed.patient_id)
        if patient is None or not space_is_open(patient.status):  # closed or deleted: silent, no refusal per poll
            return None
        reader = Actor(ActorKind.SYSTEM, feed.id, FEED_LABEL)  # the link itself: one line a day per link
        guard(db, reader, feed.patient_id, Action.AGENDA_READ, Resource("agenda"))
        feed.last_used_at = utcnow()
        if not audit.seen_today(db, reader, str(Action.AGENDA_READ), feed.patient_id):
            audit.record(
                db,
                reader,
                str(Action.AGENDA_READ),
                patient_id=feed.patient_id,
                resource_type="agenda_feed",
                resource_id=feed.id,
                details={"abonnement": "avec détails" if feed.with_details else "sans détails"},
            )
        return ical.calendar(_feed_events(services, db, feed.patient_id), details=feed.with_details)
