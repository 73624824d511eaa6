"""ENR-3: spaces are created when the 6 weeks have passed without objection (injected time), never for an
objector; an objector may change their mind; ``carnet spaces open INS`` opens one space at once, audited."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

from sqlalchemy import event, select

from carnet.bootstrap import Services
from carnet.enrolment.service import campaigns, opposition
from carnet.enrolment.tables import Campaign, Objection
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.jobs.runner import housekeeping
from carnet.people.model.identifiers import format_nir
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from tests.conftest import outbox_messages
from tests.support.enrolment import add_registered, code_in

OPERATOR = Actor(ActorKind.OPERATOR, None, "Conseiller de test")


def status_of(services: Services, patient_id: str) -> str:
    with services.db.unit_of_work() as db:
        patient = db.get(Patient, patient_id)
        assert patient is not None
        return patient.status


def code_for(services: Services, email: str | None) -> str:
    return next(code_in(m) for m in outbox_messages(services) if m["To"] == email)  # type: ignore[index,arg-type]


def test_spaces_are_created_after_six_weeks_but_never_for_an_objector(services: Services) -> None:
    quiet, objector, changed_mind = add_registered(services, 3, "2A", with_email=True)
    campaigns.start_campaign(services, "2A", OPERATOR)
    sent = utcnow()
    assert campaigns.send_pending(services, now=sent).sent == 3
    opposition.object_online(services, code_for(services, objector.email), objector.ins, "14/03/1985", now=sent)
    opposition.object_online(services, code_for(services, changed_mind.email), changed_mind.ins, "14/03/1985", now=sent)

    # 6 weeks + the 7 days every invitation gets for printing and post (issue #15-13: e-mail and letter alike)
    assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=48)) == 0
    assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=50)) == 1
    assert [status_of(services, p.id) for p in (quiet, objector, changed_mind)] == ["active", "opposed", "opposed"]

    # Changing one's mind after the period: the next run of the job creates the space.
    outcome = opposition.object_online(
        services, code_for(services, changed_mind.email), changed_mind.ins, "14/03/1985", withdraw=True
    )
    assert outcome.kind == "withdrawn" and status_of(services, changed_mind.id) == "registered"
    assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=100)) == 1
    assert status_of(services, changed_mind.id) == "active"
    assert status_of(services, objector.id) == "opposed"
    with services.db.unit_of_work() as db:
        created = db.scalars(select(AuditEntry).where(AuditEntry.action == "space.created")).all()
        assert {entry.patient_id for entry in created} == {quiet.id, changed_mind.id}
        assert {entry.actor_kind for entry in created} == {"system"}
        opened = db.get(Patient, quiet.id)
        assert opened is not None and opened.opened_at is not None
        _, breaks = audit.verify(db)
        assert breaks == []


def test_the_job_runner_sends_invitations_and_creates_due_spaces(services: Services) -> None:
    person = add_registered(services, 1, "2B", with_email=True)[0]
    campaigns.start_campaign(services, "2B", OPERATOR)
    housekeeping(services)
    assert [m["To"] for m in outbox_messages(services)] == [person.email]  # type: ignore[index]
    assert status_of(services, person.id) == "registered"


def test_an_objection_after_the_six_weeks_explains_the_space_exists(services: Services) -> None:
    person = add_registered(services, 1, "2A", with_email=True)[0]
    campaigns.start_campaign(services, "2A", OPERATOR)
    sent = utcnow()
    campaigns.send_pending(services, now=sent)
    code = code_for(services, person.email)

    late = opposition.object_online(services, code, person.ins, "14/03/1985", now=sent + timedelta(days=52))

    assert late.kind == "too_late" and status_of(services, person.id) == "registered"
    campaigns.auto_create_spaces(services, now=sent + timedelta(days=52))
    assert opposition.object_online(services, code, person.ins, "14/03/1985").kind == "space_open"
    with services.db.unit_of_work() as db:
        assert db.scalar(select(Objection)) is None


def campaign_of(services: Services) -> Campaign:
    with services.db.unit_of_work() as db:
        campaign = db.scalar(select(Campaign))
        assert campaign is not None
        return campaign


def test_before_the_deadline_the_job_reads_no_invitation(services: Services) -> None:
    """#18: the job walks a campaign's invitations only once its earliest deadline has come — not every minute."""
    add_registered(services, 3, "2A", with_email=True)
    campaigns.start_campaign(services, "2A", OPERATOR)
    sent = utcnow()
    campaigns.send_pending(services, now=sent)
    statements: list[str] = []
    event.listen(services.db.engine, "before_cursor_execute", lambda *a: statements.append(a[2]))
    assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=30)) == 0
    assert statements and not [s for s in statements if "invitations" in s]
    assert campaigns.auto_create_spaces(services, now=sent + timedelta(days=50)) == 3
    assert [s for s in statements if "invitations" in s]


def test_a_long_walk_goes_on_at_the_next_run_and_ends_with_the_next_deadline(services: Services) -> None:
    """#18: a region's walk spans several runs (here 2 invitations a transaction, no time left after one), each
    resuming where the last stopped; a letter printed later is opened when its own deadline comes."""
    people = add_registered(services, 6, "2A", with_email=True) + add_registered(services, 1, "2A", False, start=9)
    campaigns.start_campaign(services, "2A", OPERATOR)
    sent = utcnow()
    assert campaigns.send_pending(services, now=sent).sent == 6
    due = sent + timedelta(days=50)
    opened = [campaigns.auto_create_spaces(services, now=due, chunk=2, seconds=0) for _ in range(5)]
    # 7 invitations read 2 a run (the letter's among them, in id order): the 6 e-mails opened over 4 runs, each run
    # resuming where the last stopped; the walk then ended, and the fifth run found nothing to walk
    assert sum(opened) == 6 and max(opened) == 2 and opened[3:] in ([1, 0], [0, 0])
    assert campaign_of(services).opening_due_at == due + timedelta(days=1)  # the letter not printed: seen tomorrow
    assert status_of(services, people[-1].id) == "registered"
    printed = due + timedelta(days=1)
    campaigns.render_pending_letters(services, now=printed)
    assert campaigns.auto_create_spaces(services, now=printed) == 0  # its own six weeks start at the printing
    waiting = campaign_of(services).opening_due_at
    assert waiting is not None and printed + timedelta(days=48) < waiting < printed + timedelta(days=51)
    assert campaigns.auto_create_spaces(services, now=waiting) == 1
    assert status_of(services, people[-1].id) == "active"
    assert campaign_of(services).opening_due_at is None  # no one left waiting: the campaign is not walked again


def carnet(services: Services, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(services.settings.resolved_data_dir),
        "CARNET_DATABASE_URL": services.settings.resolved_database_url,
        "CARNET_ARGON2_PROFILE": "test",
        "CARNET_SMTP_URL": "outbox:",
    }
    return subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, timeout=120)


def test_carnet_spaces_open_opens_one_space_at_once_but_never_over_an_objection(services: Services) -> None:
    person, objector = add_registered(services, 2, "2A", with_email=False)
    opposition.object_by_phone(services, OPERATOR, objector.ins, "14/03/1985")

    done = carnet(services, "spaces", "open", format_nir(person.ins))

    assert done.returncode == 0, done.stderr
    assert "Espace ouvert" in done.stdout
    assert status_of(services, person.id) == "active"
    again = carnet(services, "spaces", "open", person.ins)
    assert again.returncode == 0 and "déjà ouvert" in again.stdout
    refused = carnet(services, "spaces", "open", objector.ins)
    assert refused.returncode == 1
    assert "s'est opposée" in refused.stderr and "retirer son opposition" in refused.stderr
    assert status_of(services, objector.id) == "opposed"
    unknown = carnet(services, "spaces", "open", "1 23 45 67 890 123 45")
    assert unknown.returncode == 1 and "NIR" in unknown.stderr
    with services.db.unit_of_work() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "space.created"))
        assert entry is not None and entry.patient_id == person.id and entry.actor_kind == "operator"
        assert "ligne de commande" in entry.actor_label


def test_carnet_campaign_start_send_and_letters(services: Services) -> None:
    people = add_registered(services, 5, "2A") + add_registered(services, 1, "2B", start=50)

    started = carnet(services, "campaign", "start", "--departements", "2a", "--send", "--connexions", "2")

    assert started.returncode == 0, started.stderr
    assert "5 personne(s) invitée(s), 2 par e-mail, 3 par courrier" in started.stdout
    assert "E-mails envoyés : 2" in started.stdout
    assert (
        sorted(m["To"] for m in outbox_messages(services))
        == sorted(  # type: ignore[index]
            p.email for p in people[:5] if p.email
        )
    )
    campaign_id = started.stdout.split()[1]
    refused = carnet(services, "campaign", "letters", campaign_id, "--processus", "0")
    assert refused.returncode == 2 and "Valeur invalide pour '--processus'" in refused.stderr
    letters = carnet(services, "campaign", "letters", campaign_id, "--processus", "2")
    assert letters.returncode == 0, letters.stderr
    assert "3 courrier(s) produit(s) en 1 lot(s)" in letters.stdout
    assert carnet(services, "campaign", "send").returncode == 0
    bad = carnet(services, "campaign", "start", "--departements", "2C")
    assert bad.returncode == 2 and "Département inconnu" in bad.stderr
