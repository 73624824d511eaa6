"""ENR-2 with a real SMTP server (aiosmtpd): campaign e-mails, bounces, and sending that survives a crash."""

from __future__ import annotations

import re
import socket
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import Connection, func, inspect, select, text, update

from carnet.bootstrap import Services, build_services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import date_fr, last_day
from carnet.enrolment.service import campaigns
from carnet.enrolment.service.activation import renew_code
from carnet.enrolment.service.campaigns import targeting
from carnet.enrolment.tables import Invitation
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.mail.outbound import Delivery, Mail, SmtpMailer
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from tests.conftest import empty_tables, make_settings
from tests.support.enrolment import add_registered, code_in, html_part, text_part

OPERATOR = Actor(ActorKind.OPERATOR, None, "Opérateur de test")


@dataclass
class Inbox:
    """An SMTP server that keeps what it accepts; some recipients are refused for good (550) or for now (451)."""

    refused: set[str] = field(default_factory=set)
    busy: set[str] = field(default_factory=set)
    busy_once: set[str] = field(default_factory=set)  # 451 the first time only
    messages: list[EmailMessage] = field(default_factory=list)
    pipelining: bool = False  # offered as Postfix does (RFC 2920): the mailer then sends a message per round trip

    async def handle_EHLO(
        self, server: object, session: object, envelope: object, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname  # type: ignore[attr-defined]
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(
        self, server: object, session: object, envelope: object, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.refused:
            return "550 5.1.1 Adresse inconnue"
        if address in self.busy or address in self.busy_once:
            self.busy_once.discard(address)
            return "451 4.3.0 Réessayez plus tard"
        envelope.rcpt_tos.append(address)  # type: ignore[attr-defined]
        return "250 OK"

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[attr-defined,arg-type]
        return "250 Message accepted for delivery"

    def to(self) -> Counter[str]:
        return Counter(str(message["To"]) for message in self.messages)


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def inbox(request: pytest.FixtureRequest) -> Iterator[tuple[Inbox, int]]:
    handler = Inbox(pipelining=request.param)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def smtp_services(tmp_path: Path, database_url: str, inbox: tuple[Inbox, int]) -> Iterator[Services]:
    settings = make_settings(
        tmp_path / "data", database_url, smtp_url=f"smtp://127.0.0.1:{inbox[1]}", base_url="https://carnet.exemple.fr"
    )
    services = build_services(settings)
    empty_tables(services)
    yield services
    services.db.dispose()


def test_each_invited_person_receives_a_french_text_and_html_email_with_a_valid_code(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    """ENR-2: one e-mail per person with an address, none for the others (they get a letter)."""
    server, _ = inbox
    people = add_registered(smtp_services, 6, "2A") + add_registered(smtp_services, 2, "2B", start=100)
    other = add_registered(smtp_services, 2, "06", start=200)  # not in the campaign's territory
    campaign = campaigns.start_campaign(smtp_services, "2A,2B", OPERATOR)
    assert campaigns.count_invitations(smtp_services, campaign.id) == {"email": 4, "letter": 4}

    report = campaigns.send_pending(smtp_services)

    assert report.sent == 4 and report.bounced == report.retried == 0
    with_email = {p.email: p for p in people if p.email}
    assert set(server.to()) == set(with_email) and max(server.to().values()) == 1
    assert not {p.email for p in other} & set(server.to())
    for message in server.messages:
        person = with_email[str(message["To"])]
        text, html = text_part(message), html_part(message)
        assert message["Subject"] == "Votre espace santé Carnet va être créé"
        assert f"Bonjour {person.name}," in text
        assert "https://carnet.exemple.fr/activation" in text and "https://carnet.exemple.fr/opposition" in text
        assert "vous y opposer" in text and "fermé à tout moment" in text
        assert "aucune information médicale" in text
        assert 'href="https://carnet.exemple.fr/opposition"' in html and "<strong>" in html
        # no health data, and no identifier either: neither the NIR nor the date of birth
        assert person.ins not in text and person.ins not in html
        assert "14/03/1985" not in text and "1985" not in text
        assert not [part for part in message.iter_attachments()]
        code = code_in(message)
        with smtp_services.db.unit_of_work() as db:
            invitation = db.scalar(
                select(Invitation).where(Invitation.code_hash == smtp_services.keys.mac(codes.MAC_PURPOSE, code))
            )
            assert invitation is not None and invitation.patient_id == person.id
            assert invitation.status == "sent" and invitation.sent_at is not None
            assert invitation.objection_deadline is not None
            assert invitation.objection_deadline - invitation.sent_at >= timedelta(days=42 + 7)  # as a letter's
            assert invitation.objection_deadline - invitation.sent_at < timedelta(days=50)
            assert f"jusqu'au {date_fr(last_day(invitation.objection_deadline))} inclus" in text
            assert smtp_services.keys.unseal(invitation.code_sealed, codes.SEAL_PURPOSE) == code
    with smtp_services.db.unit_of_work() as db:
        started = db.scalar(select(func.count()).where(AuditEntry.action == "campaign.started"))
    assert started == 1


def test_a_second_campaign_does_not_invite_the_same_people_again(smtp_services: Services) -> None:
    add_registered(smtp_services, 4, "2A")
    first = campaigns.start_campaign(smtp_services, ["2A"], OPERATOR)
    with pytest.raises(campaigns.CampaignError, match="Personne à inviter dans le département 2A") as refused:
        campaigns.start_campaign(smtp_services, ["2A"], OPERATOR)  # issue #15-13: nobody left, no campaign
    assert "(4) ont toutes déjà été invitées" in refused.value.message and "Aucune campagne" in refused.value.message
    assert sum(campaigns.count_invitations(smtp_services, first.id).values()) == 4
    assert [p.campaign.id for p in campaigns.campaign_progress(smtp_services, OPERATOR)] == [first.id]


def test_a_campaign_reads_the_registry_as_a_stream_and_writes_it_page_by_page(
    smtp_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A region of 12 M people is never held in memory: the eligible people are read in pages, each page's
    invitations committed before the next is read (here 3 a page), and nobody is invited twice."""
    earlier = add_registered(smtp_services, 2, "2B")
    campaigns.start_campaign(smtp_services, ["2B"], OPERATOR)
    people = add_registered(smtp_services, 8, "2A", start=10)
    monkeypatch.setattr(targeting, "INSERT_PAGE", 3)

    campaign = campaigns.start_campaign(smtp_services, ["2A", "2B"], OPERATOR)

    assert campaigns.count_invitations(smtp_services, campaign.id) == {"email": 4, "letter": 4}
    with smtp_services.db.unit_of_work() as db:
        per_person = dict(db.execute(select(Invitation.patient_id, func.count()).group_by(Invitation.patient_id)).all())
    assert per_person == {p.id: 1 for p in [*earlier, *people]}


def test_a_code_drawn_twice_gets_the_second_person_a_new_one_and_leaves_nobody_out(
    smtp_services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ENR-2: codes have 59 bits, so in a country two people may draw the same one. The second is not skipped
    (the unique look-up hash would refuse the row): they get a new code in the same page."""
    first = add_registered(smtp_services, 1, "2B")
    drawn = iter(["2345ABCDEFGH", "2345ABCDEFGH", "3456ABCDEFGH", "4567ABCDEFGH", "5678ABCDEFGH"])
    monkeypatch.setattr(codes, "new_code", lambda: next(drawn))
    campaigns.start_campaign(smtp_services, ["2B"], OPERATOR)
    people = add_registered(smtp_services, 3, "2A", start=10)

    campaign = campaigns.start_campaign(smtp_services, ["2A"], OPERATOR)

    assert sum(campaigns.count_invitations(smtp_services, campaign.id).values()) == 3
    assert next(drawn, None) is None  # the three people's codes, then one more for the one who drew twice
    with smtp_services.db.unit_of_work() as db:
        owners = {
            smtp_services.keys.unseal(sealed, codes.SEAL_PURPOSE): patient
            for sealed, patient in db.execute(select(Invitation.code_sealed, Invitation.patient_id))
        }
    assert owners["2345ABCDEFGH"] == first[0].id
    assert sorted(owners.values()) == sorted(p.id for p in [*first, *people])


def test_a_bounced_address_gets_a_letter_instead(smtp_services: Services, inbox: tuple[Inbox, int]) -> None:
    """A permanent refusal (550) for one recipient: bounced, then a letter; the others are delivered."""
    server, _ = inbox
    people = add_registered(smtp_services, 3, "2A", with_email=True)
    server.refused.add(people[1].email or "")
    campaign = campaigns.start_campaign(smtp_services, "2A", OPERATOR)

    report = campaigns.send_pending(smtp_services)

    assert (report.sent, report.bounced) == (2, 1)
    assert set(server.to()) == {people[0].email, people[2].email}
    with smtp_services.db.unit_of_work() as db:
        bounced = db.scalar(select(Invitation).where(Invitation.patient_id == people[1].id))
        assert bounced is not None
        assert (bounced.status, bounced.channel) == ("bounced", "letter")
        assert bounced.last_error and bounced.last_error.startswith("rebond : 550")
    progress = campaigns.campaign_progress(smtp_services, OPERATOR)[0]
    assert (progress.sent, progress.bounced, progress.letters_waiting) == (2, 1, 1)
    assert campaigns.email_backlog(smtp_services) == 0, "the delivered and the bounced leave the e-mails' queue"

    batches = campaigns.render_pending_letters(smtp_services)

    assert [batch.count for batch in batches] == [1]
    progress = campaigns.campaign_progress(smtp_services, OPERATOR, campaign.id)[0]
    assert (progress.bounced, progress.letters, progress.letters_waiting) == (1, 1, 0)


def test_a_temporary_refusal_is_tried_again_then_becomes_a_letter(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    server, _ = inbox
    person = add_registered(smtp_services, 1, "2A", with_email=True)[0]
    server.busy.add(person.email or "")
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    for attempt in range(1, campaigns.MAX_ATTEMPTS):
        assert campaigns.send_pending(smtp_services).retried == 1
        with smtp_services.db.unit_of_work() as db:
            invitation = db.scalar(select(Invitation))
            assert invitation is not None
            assert (invitation.status, invitation.channel, invitation.attempts) == ("pending", "email", attempt)
        assert campaigns.email_backlog(smtp_services) == 1, "tried again: still queued"
    assert campaigns.send_pending(smtp_services).to_letter == 1
    assert campaigns.email_backlog(smtp_services) == 0
    with smtp_services.db.unit_of_work() as db:
        invitation = db.scalar(select(Invitation))
        assert invitation is not None and (invitation.status, invitation.channel) == ("to_print", "letter")
    assert server.messages == []


def test_an_email_put_back_is_sent_again_before_the_run_ends(smtp_services: Services, inbox: tuple[Inbox, int]) -> None:
    """The claims walk the queue forward (PostgreSQL: in id order, from where the last claim stopped); at its end
    they start again from the beginning, for the e-mails put back meanwhile."""
    server, _ = inbox
    people = add_registered(smtp_services, 2 * campaigns.CHUNK + 5, "2A", with_email=True)
    server.busy_once.add(people[0].email or "")
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)

    report = campaigns.send_pending(smtp_services, connections=2)

    assert (report.sent, report.retried) == (len(people), 1)
    assert server.to() == Counter({p.email: 1 for p in people})


def test_a_new_code_by_post_takes_the_person_out_of_the_emails_queue(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    """ENR-4: a person whose code is renewed by post before the campaign's e-mail left gets the letter only."""
    server, _ = inbox
    people = add_registered(smtp_services, 2, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    with smtp_services.db.unit_of_work() as db:
        patient = db.get(Patient, people[0].id)
        assert patient is not None and renew_code(smtp_services, db, patient, by_letter=True)

    assert campaigns.send_pending(smtp_services).sent == 1

    assert server.to() == Counter({people[1].email: 1})
    assert campaigns.email_backlog(smtp_services) == 0
    assert [batch.count for batch in campaigns.render_pending_letters(smtp_services)] == [1]


def test_an_email_listed_but_no_longer_to_send_is_passed_by(smtp_services: Services, inbox: tuple[Inbox, int]) -> None:
    """An invitation handled otherwise while still listed in the queue (an old sender running during migration
    0018): nobody gets a second e-mail, the others are sent, and on PostgreSQL the claim takes it out of the queue."""
    server, _ = inbox
    people = add_registered(smtp_services, 3, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    with smtp_services.db.unit_of_work() as db:
        db.execute(update(Invitation).where(Invitation.patient_id == people[0].id).values(status="sent"))

    assert campaigns.send_pending(smtp_services).sent == 2

    assert server.to() == Counter({people[1].email: 1, people[2].email: 1})
    assert campaigns.email_backlog(smtp_services) == (1 if smtp_services.db.is_sqlite else 0)


def _indexes(connection: Connection, table: str) -> tuple[list[set[str]], str]:
    """The columns of each index of ``table`` (unique constraints and primary key included), and the SQL of them all
    (with their WHERE)."""
    found = inspect(connection)
    keys = [
        *(index["column_names"] for index in found.get_indexes(table)),
        *(unique["column_names"] for unique in found.get_unique_constraints(table)),
        found.get_pk_constraint(table)["constrained_columns"],
    ]
    if connection.dialect.name == "postgresql":
        sql = "SELECT indexdef FROM pg_indexes WHERE tablename = :t"
    else:
        sql = "SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"
    definitions = " ".join(str(row[0] or "") for row in connection.execute(text(sql), {"t": table}))
    return [{str(column) for column in columns if column} for columns in keys], definitions


def test_marking_emails_sent_changes_no_indexed_column_so_postgresql_updates_in_place(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    """#18: on PostgreSQL the sending's update of an invitation is HOT (no index entry written, the new version in
    the same page) only if no index of ``invitations`` holds a column it changes, in its key or in its WHERE, and its
    pages keep room. The columns changed are read from the rows before and after a real sending."""
    add_registered(smtp_services, 3, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    table = Invitation.__table__

    def rows() -> dict[str, dict[str, object]]:
        with smtp_services.db.unit_of_work() as db:
            return {row.id: dict(row._mapping) for row in db.execute(select(table))}

    before = rows()
    assert campaigns.send_pending(smtp_services).sent == 3
    after = rows()

    changed = {name for key, row in before.items() for name, value in row.items() if after[key][name] != value}
    assert {"status", "sent_at"} <= changed
    with smtp_services.db.engine.connect() as connection:
        keys, definitions = _indexes(connection, "invitations")
        assert len(keys) >= 4 and "letter_batch" in definitions  # the inspection sees the indexes
        for columns in keys:
            assert not columns & changed, f"un index porte {columns & changed}"
        mentioned = {name for name in changed if re.search(rf"\b{name}\b", definitions)}
        assert not mentioned, f"un index (ou son WHERE) nomme {mentioned}"
        if connection.dialect.name == "postgresql":
            options = connection.scalar(text("SELECT reloptions FROM pg_class WHERE relname = 'invitations'"))
            assert "fillfactor=70" in (options or [])


class Crash(BaseException):
    """The process dies (kill -9, power cut): nothing after this point runs."""


class CrashingMailer:
    """Delivers through the real SMTP mailer, and dies after ``after`` messages."""

    def __init__(self, inner: SmtpMailer, after: int) -> None:
        self.inner = inner
        self.after = after
        self.delivered = 0

    def send(self, mail: Mail) -> None:  # pragma: no cover - not used by campaigns
        self.inner.send(mail)

    def send_many(self, mails: Sequence[Mail]) -> list[Delivery]:
        results: list[Delivery] = []
        for mail in mails:
            if self.delivered == self.after:
                raise Crash
            results += self.inner.send_many([mail])
            self.delivered += 1
        return results


def test_a_crash_mid_chunk_loses_nobody_and_duplicates_at_most_one_chunk(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    """The documented bound: a crash re-sends at most CHUNK e-mails (one chunk per connection), each once."""
    server, _ = inbox
    chunk = campaigns.CHUNK
    total = 2 * chunk + 20
    crash_after = chunk + 20  # the second chunk dies after 20 deliveries
    people = add_registered(smtp_services, total, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    real_mailer = smtp_services.mailer
    assert isinstance(real_mailer, SmtpMailer)
    started = utcnow()

    smtp_services.mailer = CrashingMailer(real_mailer, crash_after)  # type: ignore[assignment]
    with pytest.raises(Crash):
        campaigns.send_pending(smtp_services, now=started)
    assert len(server.messages) == crash_after

    smtp_services.mailer = real_mailer
    restarted = campaigns.send_pending(smtp_services, now=started + timedelta(minutes=1)).sent
    with smtp_services.db.unit_of_work() as db:
        in_flight = db.scalar(select(func.count()).where(Invitation.status == "sending"))
    later = started + campaigns.LEASE + timedelta(minutes=1)
    if smtp_services.db.is_sqlite:
        # Restarted at once: the chunk that was in flight is still claimed (its lease runs), the rest goes out.
        assert (restarted, in_flight) == (total - 2 * chunk, chunk)
        # Once the lease is over, the abandoned chunk is sent again.
        assert campaigns.send_pending(smtp_services, now=later).sent == chunk
    else:
        # PostgreSQL: the chunk was locked in the transaction the crash rolled back, so it is queued again at once.
        assert (restarted, in_flight) == (total - chunk, 0)
        assert campaigns.send_pending(smtp_services, now=later).sent == 0

    received = server.to()
    assert set(received) == {p.email for p in people}, "personne n'est perdu"
    duplicated = [address for address, count in received.items() if count > 1]
    assert max(received.values()) == 2, "jamais plus d'un doublon par personne"
    assert len(duplicated) == crash_after - chunk <= chunk, "au plus un lot renvoyé"
    codes_by_person: dict[str, set[str]] = {}
    for message in server.messages:
        codes_by_person.setdefault(str(message["To"]), set()).add(code_in(message))
    assert all(len(found) == 1 for found in codes_by_person.values()), "le doublon porte le même code"
    with smtp_services.db.unit_of_work() as db:
        statuses = dict(db.execute(select(Invitation.status, func.count()).group_by(Invitation.status)).all())
    assert statuses == {"sent": total}


def test_parallel_connections_send_each_email_once(smtp_services: Services, inbox: tuple[Inbox, int]) -> None:
    server, _ = inbox
    people = add_registered(smtp_services, 3 * campaigns.CHUNK + 7, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    seen: list[int] = []
    report = campaigns.send_pending(smtp_services, connections=4, on_progress=lambda r: seen.append(r.handled))
    assert report.sent == len(people)
    assert server.to() == Counter({p.email: 1 for p in people})
    assert seen == sorted(seen) and seen[-1] == len(people)


def test_the_limit_and_an_unreachable_server_leave_the_rest_queued(smtp_services: Services) -> None:
    add_registered(smtp_services, 5, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    assert campaigns.send_pending(smtp_services, limit=2).sent == 2
    smtp_services.mailer = SmtpMailer("smtp://127.0.0.1:9", "Carnet <ne-pas-repondre@carnet.localhost>")
    report = campaigns.send_pending(smtp_services)
    assert report.sent == 0 and report.retried == 3
    with smtp_services.db.unit_of_work() as db:
        pending = db.scalar(select(func.count()).where(Invitation.status == "pending"))
        registered = db.scalar(select(func.count()).where(Patient.status == "registered"))
    assert pending == 3 and registered == 5


def test_several_sending_processes_share_the_queue_without_sending_twice(
    smtp_services: Services, inbox: tuple[Inbox, int]
) -> None:
    """``carnet campaign send --processus 2``: the claims keep the processes apart (SQLite and PostgreSQL)."""
    server, _ = inbox
    people = add_registered(smtp_services, 4 * campaigns.CHUNK + 3, "2A", with_email=True)
    campaigns.start_campaign(smtp_services, "2A", OPERATOR)
    seen: list[int] = []

    report = campaigns.send_with_processes(smtp_services, 2, 2, on_progress=lambda r: seen.append(r.sent))

    assert report.sent == len(people)
    assert server.to() == Counter({p.email: 1 for p in people})
    assert campaigns.email_backlog(smtp_services) == 0 and seen[-1] == len(people)
