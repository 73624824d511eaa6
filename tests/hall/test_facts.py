"""ACC-1..4, FAM-1..3: what the hall knows when it asks the policy (``hall.facts_for``), read from storage.

The policy itself is tested as a table (tests/unit/test_policy.py); here the facts it is given: grants (the
professional's own, through a care team), revoked grants, blocking and lifting (an earlier team grant no longer
counts, a new one does), the emergency access and its expiry, the patient's toggles, and who is a minor's legal
representative — until the 18th birthday, 29 February included. Changes go through the access services (the
hall and the audit), as the portal would make them. SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.service import grants as access
from carnet.access.tables import CareTeam, CareTeamMember
from carnet.bootstrap import Services
from carnet.family.tables import Caregiver, LegalRepresentative
from carnet.hall import guard as hall
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Facts, Resource
from carnet.identity.service import auth
from carnet.people.service import preferences
from carnet.people.tables import Account, Patient, Professional
from carnet.storage.types import utcnow


@dataclass(frozen=True)
class People:
    marie_ange: Actor  # the patient (médecin traitant Dr Ferracci, pharmacist Anna Maria Peretti authorised)
    pierre_paul: Actor  # another patient
    laetitia: Actor  # parent of Lisandru (attached)
    lisandru: str  # the minor's space
    ferracci: Actor  # médecin, GP, médecin traitant of Marie-Ange
    peretti: Actor  # pharmacien, authorised
    orsini: Actor  # chirurgien-dentiste, not authorised
    santucci: Actor  # SAMU regulator, not authorised


def actor_of(db: Session, login: str) -> Actor:
    account = db.scalar(select(Account).where(Account.login == login))
    assert account is not None, login
    return auth.actor_for(db, account)


@pytest.fixture
def people(demo: Services) -> People:
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
        assert child is not None
        return People(
            marie_ange=actor_of(db, "marie-ange.santoni"),
            pierre_paul=actor_of(db, "pierre-paul.luciani"),
            laetitia=actor_of(db, "laetitia.casanova"),
            lisandru=child,
            ferracci=actor_of(db, "dr.ferracci"),
            peretti=actor_of(db, "anna-maria.peretti"),
            orsini=actor_of(db, "dominique.orsini"),
            santucci=actor_of(db, "dr.santucci"),
        )


def facts(services: Services, actor: Actor, patient_id: str) -> Facts:
    with services.db.unit_of_work() as db:
        return facts_for(db, actor, patient_id)


def space_of(actor: Actor) -> str:
    assert actor.patient_id
    return actor.patient_id


def pro_id(actor: Actor) -> str:
    assert actor.professional_id
    return actor.professional_id


def may_view(services: Services, actor: Actor, patient_id: str) -> bool:
    with services.db.unit_of_work() as db:
        try:
            guard(db, actor, patient_id, Action.SPACE_VIEW, Resource("space"))
        except AccessDenied:
            return False
    return True


def team_with(services: Services, *members: Actor) -> str:
    with services.db.unit_of_work() as db:
        team = CareTeam(name="Équipe de soins de suite — CH de Bastia")
        db.add(team)
        db.flush()
        db.add_all(CareTeamMember(team_id=team.id, professional_id=pro_id(m)) for m in members)
        return team.id


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[datetime]]:
    """The hall's "now", settable: ``clock[0] = moment``."""
    moment = [utcnow()]
    monkeypatch.setattr(hall, "utcnow", lambda: moment[0])
    yield moment


# ------------------------------------------------------------------ grants (ACC-1, ACC-2)


def test_the_demo_grants_give_the_medecin_traitant_and_the_pharmacist_their_standing(
    demo: Services, people: People
) -> None:
    patient = space_of(people.marie_ange)
    doctor = facts(demo, people.ferracci, patient)
    assert (doctor.consent, doctor.administrator, doctor.blocked, doctor.emergency) == (True, True, False, None)
    pharmacist = facts(demo, people.peretti, patient)
    assert (pharmacist.consent, pharmacist.administrator) == (True, False)
    for stranger in (people.orsini, people.santucci):
        assert not facts(demo, stranger, patient).consent
    assert facts(demo, people.santucci, patient).samu_regulator
    assert not facts(demo, people.ferracci, patient).samu_regulator
    # Grants are per patient: Marie-Ange's médecin traitant is nobody's for Pierre-Paul.
    other = facts(demo, people.ferracci, space_of(people.pierre_paul))
    assert (other.consent, other.administrator) == (False, False)
    assert [may_view(demo, p, patient) for p in (people.ferracci, people.peretti, people.orsini)] == [True, True, False]


def test_a_grant_given_by_the_patient_or_the_professionals_own_record_counts(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    with demo.db.unit_of_work() as db:
        access.grant(db, people.marie_ange, patient, professional_id=pro_id(people.orsini))
        access.record_consent(db, people.santucci, patient)
    assert facts(demo, people.orsini, patient).consent
    assert facts(demo, people.santucci, patient).consent
    with demo.db.unit_of_work() as db:
        access.grant(db, people.marie_ange, patient, professional_id=pro_id(people.peretti), role="administrator")
    assert facts(demo, people.peretti, patient).administrator


def test_a_care_team_grant_covers_its_members_and_only_them(demo: Services, people: People) -> None:
    """ACC-1: "consent for a care team covers the team"."""
    patient = space_of(people.marie_ange)
    team = team_with(demo, people.orsini)
    with demo.db.unit_of_work() as db:
        access.grant(db, people.marie_ange, patient, care_team_id=team)
    assert facts(demo, people.orsini, patient).consent
    assert not facts(demo, people.santucci, patient).consent  # not a member
    assert not facts(demo, people.orsini, space_of(people.pierre_paul)).consent  # another patient
    assert may_view(demo, people.orsini, patient)
    with demo.db.unit_of_work() as db:  # leaving the team ends what the team's grant gave
        member = db.get(CareTeamMember, (team, pro_id(people.orsini)))
        db.delete(member)
    assert not facts(demo, people.orsini, patient).consent


def test_revoked_grants_are_ignored(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    team = team_with(demo, people.orsini)
    with demo.db.unit_of_work() as db:
        team_grant = access.grant(db, people.marie_ange, patient, care_team_id=team).id
        grants = access.overview(db, people.marie_ange, patient).grants
    for grant in grants:
        if grant.professional_id in {pro_id(people.ferracci), pro_id(people.peretti)}:
            with demo.db.unit_of_work() as db:
                access.revoke(db, people.marie_ange, patient, grant.id)
    with demo.db.unit_of_work() as db:
        access.revoke(db, people.marie_ange, patient, team_grant)
    for professional in (people.ferracci, people.peretti, people.orsini):
        now = facts(demo, professional, patient)
        assert (now.consent, now.administrator) == (False, False), professional.label
        assert not may_view(demo, professional, patient)


# ------------------------------------------------------------------ blocking (ACC-3)


def test_a_block_stops_reading_and_lifting_it_needs_a_new_consent(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    dentist = pro_id(people.orsini)
    team = team_with(demo, people.orsini, people.santucci)
    with demo.db.unit_of_work() as db:
        access.grant(db, people.marie_ange, patient, professional_id=dentist)
        old_team_grant = access.grant(db, people.marie_ange, patient, care_team_id=team).id
    assert may_view(demo, people.orsini, patient)

    with demo.db.unit_of_work() as db:
        access.block(db, people.marie_ange, patient, dentist)
    blocked = facts(demo, people.orsini, patient)
    assert blocked.blocked and blocked.consent  # still authorised, but blocked: the policy refuses
    assert not may_view(demo, people.orsini, patient)
    assert may_view(demo, people.santucci, patient)  # the block is the dentist's, the team's grant still covers others

    with demo.db.unit_of_work() as db:
        access.unblock(db, people.marie_ange, patient, dentist)
    lifted = facts(demo, people.orsini, patient)
    assert not lifted.blocked
    assert not lifted.consent  # own grant revoked by the lift; the team's was given before it
    assert not may_view(demo, people.orsini, patient)
    assert facts(demo, people.santucci, patient).consent  # the team's grant is untouched for the others

    with demo.db.unit_of_work() as db:  # the patient authorises the team again, after the lift: it counts
        access.revoke(db, people.marie_ange, patient, old_team_grant)
        access.grant(db, people.marie_ange, patient, care_team_id=team)
    assert facts(demo, people.orsini, patient).consent
    assert may_view(demo, people.orsini, patient)


def test_after_a_lift_a_personal_consent_counts_again(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    doctor = pro_id(people.ferracci)
    with demo.db.unit_of_work() as db:
        access.block(db, people.marie_ange, patient, doctor)
    assert facts(demo, people.ferracci, patient).blocked
    with demo.db.unit_of_work() as db:
        access.unblock(db, people.marie_ange, patient, doctor)
    assert facts(demo, people.ferracci, patient) == Facts()  # no longer médecin traitant: a new consent is needed
    with demo.db.unit_of_work() as db:
        access.record_consent(db, people.ferracci, patient)
    assert facts(demo, people.ferracci, patient).consent
    with demo.db.unit_of_work() as db:  # blocked twice, lifted twice: only the last lift matters
        access.block(db, people.marie_ange, patient, doctor)
        access.unblock(db, people.marie_ange, patient, doctor)
        access.grant(db, people.marie_ange, patient, professional_id=doctor, role="medecin_traitant")
    again = facts(demo, people.ferracci, patient)
    assert (again.blocked, again.consent, again.administrator) == (False, True, True)


def test_a_blocked_professional_can_neither_record_consent_nor_break_the_glass(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    with demo.db.unit_of_work() as db:
        access.block(db, people.marie_ange, patient, pro_id(people.orsini))
    for attempt in (
        lambda db: access.record_consent(db, people.orsini, patient),
        lambda db: access.start_emergency(db, people.orsini, patient, "Patient inconscient au cabinet"),
    ):
        with pytest.raises(AccessDenied), demo.db.unit_of_work() as db:
            attempt(db)
    assert not facts(demo, people.orsini, patient).consent
    assert facts(demo, people.orsini, patient).emergency is None


# ------------------------------------------------------------------ emergency (ACC-4)


def test_an_emergency_access_lasts_two_hours(demo: Services, people: People, clock: list[datetime]) -> None:
    patient = space_of(people.marie_ange)
    with demo.db.unit_of_work() as db:
        row = access.start_emergency(db, people.orsini, patient, "Malaise au fauteuil, patiente inconsciente")
        started, expires = row.started_at, row.expires_at
    with demo.db.unit_of_work() as db:
        access.start_emergency(db, people.santucci, patient, "Appel au centre 15, détresse respiratoire")
    assert expires - started == timedelta(hours=2)
    clock[0] = expires - timedelta(seconds=1)
    assert facts(demo, people.orsini, patient).emergency == "bris_de_glace"
    assert facts(demo, people.santucci, patient).emergency == "samu"
    assert may_view(demo, people.orsini, patient)
    clock[0] = expires + timedelta(seconds=1)
    assert facts(demo, people.orsini, patient).emergency is None
    assert facts(demo, people.santucci, patient).emergency is None
    assert not may_view(demo, people.orsini, patient)


def test_the_patients_toggles_reach_the_policy(demo: Services, people: People) -> None:
    patient = space_of(people.marie_ange)
    defaults = facts(demo, people.orsini, patient)  # never changed: no settings row yet
    assert (defaults.emergency_samu, defaults.emergency_professionals, defaults.emergency_masked) == (True, True, False)
    with demo.db.unit_of_work() as db:
        access.start_emergency(db, people.orsini, patient, "Malaise au fauteuil, patiente inconsciente")
    assert may_view(demo, people.orsini, patient)
    with demo.db.unit_of_work() as db:
        preferences.update(
            db, people.marie_ange, patient, emergency_samu=False, emergency_professionals=False, emergency_masked=True
        )
    now = facts(demo, people.orsini, patient)
    assert (now.emergency_samu, now.emergency_professionals, now.emergency_masked) == (False, False, True)
    assert now.emergency == "bris_de_glace"  # the access exists, but the patient now refuses it: no reading
    assert not may_view(demo, people.orsini, patient)
    for professional in (people.orsini, people.santucci):
        with pytest.raises(AccessDenied), demo.db.unit_of_work() as db:
            access.start_emergency(db, professional, patient, "Appel au centre 15, détresse respiratoire")
    with demo.db.unit_of_work() as db:
        preferences.update(db, people.marie_ange, patient, emergency_samu=True)
        access.start_emergency(db, people.santucci, patient, "Appel au centre 15, détresse respiratoire")
    assert may_view(demo, people.santucci, patient)


# ------------------------------------------------------------------ legal representatives, caregivers (FAM-1..3)


def set_birth_date(services: Services, patient_id: str, born: date) -> None:
    with services.db.unit_of_work() as db:
        patient = db.get(Patient, patient_id)
        assert patient is not None
        patient.birth_date = born


def at(day: date, hour: int = 12) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC)


@pytest.mark.parametrize(
    ("born", "last_minor_day", "first_adult_day"),
    [
        (date(2017, 5, 9), date(2035, 5, 8), date(2035, 5, 9)),  # Lisandru's own birthday
        (date(2008, 2, 29), date(2026, 2, 28), date(2026, 3, 1)),  # born on 29 February: of age on 1 March
        (date(2012, 2, 29), date(2030, 2, 28), date(2030, 3, 1)),
    ],
    ids=["9-mai", "29-fevrier-2008", "29-fevrier-2012"],
)
def test_the_parent_represents_the_child_until_the_18th_birthday(
    demo: Services, people: People, clock: list[datetime], born: date, last_minor_day: date, first_adult_day: date
) -> None:
    """FAM-1, FAM-2: at 18 the person takes over their own space (the day is the UTC date, as the hall's)."""
    child = people.lisandru
    set_birth_date(demo, child, born)
    clock[0] = at(last_minor_day, 23)
    assert facts(demo, people.laetitia, child).legal_representative
    assert may_view(demo, people.laetitia, child)
    clock[0] = at(first_adult_day, 0)
    assert not facts(demo, people.laetitia, child).legal_representative
    assert not may_view(demo, people.laetitia, child)


def test_a_second_legal_representative_is_one_too_and_strangers_are_not(
    demo: Services, people: People, clock: list[datetime]
) -> None:
    child = people.lisandru
    second = space_of(people.pierre_paul)
    assert not facts(demo, people.pierre_paul, child).legal_representative
    with demo.db.unit_of_work() as db:
        db.add(LegalRepresentative(minor_id=child, representative_id=second))
    assert facts(demo, people.pierre_paul, child).legal_representative
    assert not facts(demo, people.marie_ange, child).legal_representative
    set_birth_date(demo, child, date(2008, 2, 29))
    clock[0] = at(date(2026, 3, 1), 0)
    assert not facts(demo, people.pierre_paul, child).legal_representative
    # A parent is not their adult child's representative, nor the other way round.
    assert not facts(demo, Actor(ActorKind.PATIENT, "x", "Lisandru", patient_id=child), second).legal_representative


def test_a_caregiver_is_one_whatever_the_age_and_only_for_the_person_helped(demo: Services, people: People) -> None:
    """FAM-3."""
    helped, helper = space_of(people.pierre_paul), space_of(people.marie_ange)
    assert not facts(demo, people.marie_ange, helped).caregiver
    with demo.db.unit_of_work() as db:
        db.add(Caregiver(helped_id=helped, caregiver_id=helper))
    both = facts(demo, people.marie_ange, helped)
    assert (both.caregiver, both.legal_representative) == (True, False)
    assert may_view(demo, people.marie_ange, helped)
    assert not facts(demo, people.pierre_paul, helper).caregiver  # not the other way round
    assert not facts(demo, people.laetitia, helped).caregiver


# ------------------------------------------------------------------ the space itself


def test_unknown_and_closed_spaces(demo: Services, people: People) -> None:
    assert facts(demo, people.ferracci, "inexistant") == Facts(patient_exists=False)
    assert facts(demo, people.marie_ange, "inexistant") == Facts(patient_exists=False)
    patient = space_of(people.marie_ange)
    with demo.db.unit_of_work() as db:
        row = db.get(Patient, patient)
        assert row is not None
        row.status = "closed"
    assert facts(demo, people.marie_ange, patient).patient_status == "closed"
    assert facts(demo, people.ferracci, patient).patient_status == "closed"
    assert not may_view(demo, people.ferracci, patient)


def test_a_professional_without_account_is_still_a_professional(demo: Services, people: People) -> None:
    """The actor of an API client (by RPPS) gets the same facts as the same professional logged in."""
    with demo.db.unit_of_work() as db:
        pro = db.get(Professional, pro_id(people.ferracci))
        assert pro is not None
        software = Actor(
            ActorKind.PROFESSIONAL,
            "client-logiciel",
            "Logiciel du Dr Ferracci",
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )
    patient = space_of(people.marie_ange)
    assert facts(demo, software, patient) == facts(demo, people.ferracci, patient)
