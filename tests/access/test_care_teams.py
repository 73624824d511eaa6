"""ACC-1: a care team (a named group at an establishment) is authorised as a whole — ``carnet teams …`` on
SQLite and PostgreSQL, then a team grant read through the vault: members read, others do not, and a member
taken out of the team reads no more."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from carnet.access.service import care_teams, directory_search
from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied, guard
from carnet.hall.policy import Action, Resource
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Establishment, Patient, Professional
from carnet.vault.service import documents as vault
from tests.support.documents import make_pdf

LAB_FINESS = "2B0000020"
DENTIST = "10003456789"  # Dr Orsini: never authorised by Marie-Ange
SAMU = "10004567891"  # Dr Santucci: never authorised either, and not in the team
TEAM = "Équipe mobile de soins palliatifs"


def carnet(*args: str, settings: Settings) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CARNET_DATA_DIR": str(settings.data_dir),
        "CARNET_DATABASE_URL": settings.database_url or "",
        "CARNET_ARGON2_PROFILE": "test",
    }
    return subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True, timeout=300)


def professional(services: Services, rpps: str) -> Actor:
    """The professional as their software's API client acts (``clients.authenticate``)."""
    with services.db.unit_of_work() as db:
        pro = db.scalar(select(Professional).where(Professional.rpps == rpps))
        assert pro is not None
        return Actor(
            ActorKind.PROFESSIONAL,
            f"client-{rpps}",
            access.professional_name(pro),
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )


def marie_ange(services: Services) -> Actor:
    with services.db.unit_of_work() as db:
        patient_id = db.scalar(select(Patient.id).where(Patient.email == "marie-ange.santoni@exemple.fr"))
    assert patient_id
    return Actor(ActorKind.PATIENT, "compte-marie-ange", "Marie-Ange SANTONI", patient_id=patient_id)


def deposit_lab_result(services: Services, patient_id: str) -> None:
    with services.db.unit_of_work() as db:
        lab = db.scalar(select(Establishment).where(Establishment.finess == LAB_FINESS))
        assert lab is not None
        actor = Actor(ActorKind.ESTABLISHMENT, "client-lab", lab.name, finess=lab.finess, establishment_id=lab.id)
    pdf = make_pdf("Créatininémie")
    vault.deposit_many(
        services,
        actor,
        [vault.NewDocument(patient_id, "http://loinc.org", "11502-2", "Créatininémie", "application/pdf", pdf)],
    )


def documents_seen(services: Services, actor: Actor, patient_id: str) -> int:
    with services.db.unit_of_work() as db:
        return vault.search(services, db, actor, patient_id, vault.SearchFilters()).total


def may_open(services: Services, actor: Actor, patient_id: str) -> bool:
    with services.db.unit_of_work() as db:
        try:
            guard(db, actor, patient_id, Action.SPACE_VIEW, Resource("space"))
        except AccessDenied:
            return False
    return True


def test_a_team_authorised_by_the_patient_is_read_by_its_members_only(demo: Services, settings: Settings) -> None:
    created = carnet("teams", "create", "--nom", f"  {TEAM} ", "--finess", LAB_FINESS, settings=settings)
    assert created.returncode == 0, created.stderr
    team_id = created.stdout.strip()
    assert team_id and "\n" not in team_id and "créée" in created.stderr
    added = carnet("teams", "add-member", team_id, "--rpps", DENTIST, settings=settings)
    assert added.returncode == 0 and "ajouté(e) à l'équipe" in added.stdout, added.stderr
    listed = carnet("teams", "list", "--finess", LAB_FINESS, settings=settings)
    assert listed.returncode == 0, listed.stderr
    assert f"{team_id}  {TEAM} — Laboratoire de biologie médicale" in listed.stdout
    assert f"RPPS {DENTIST}  Dr Dominique ORSINI, chirurgien-dentiste" in listed.stdout

    patient = marie_ange(demo)
    assert patient.patient_id is not None
    deposit_lab_result(demo, patient.patient_id)
    member, outsider = professional(demo, DENTIST), professional(demo, SAMU)
    assert documents_seen(demo, member, patient.patient_id) == 0 and not may_open(demo, member, patient.patient_id)

    with demo.db.unit_of_work() as db:
        (team,) = directory_search.search_care_teams(db, "equipe MOBILE")  # case and accents aside
        assert team.id == team_id
        access.grant(db, patient, patient.patient_id, care_team_id=team_id)
    assert may_open(demo, member, patient.patient_id)
    assert documents_seen(demo, member, patient.patient_id) == 1
    assert not may_open(demo, outsider, patient.patient_id)
    assert documents_seen(demo, outsider, patient.patient_id) == 0

    removed = carnet("teams", "remove-member", team_id, "--rpps", DENTIST, settings=settings)
    assert removed.returncode == 0 and "retiré(e) de l'équipe" in removed.stdout, removed.stderr
    assert not may_open(demo, member, patient.patient_id)
    assert documents_seen(demo, member, patient.patient_id) == 0

    with demo.db.unit_of_work() as db:
        entries = db.scalars(
            select(AuditEntry).where(AuditEntry.resource_type == "care_team").order_by(AuditEntry.seq)
        ).all()
        assert [(e.action, e.actor_kind, e.patient_id) for e in entries] == [
            ("care_team.create", "operator", None),
            ("care_team.member_add", "operator", None),
            ("care_team.member_remove", "operator", None),
        ]
        assert entries[0].details == {"équipe": TEAM, "finess": LAB_FINESS}
        assert entries[2].details["rpps"] == DENTIST


def test_teams_commands_refuse_in_french_and_change_nothing(demo: Services, settings: Settings) -> None:
    unknown_place = carnet("teams", "create", "--nom", "Cardiologie", "--finess", "2A0000999", settings=settings)
    assert unknown_place.returncode == 1 and "Aucun établissement n'a le FINESS 2A0000999" in unknown_place.stderr
    bad_finess = carnet("teams", "create", "--nom", "Cardiologie", "--finess", "XX", settings=settings)
    assert bad_finess.returncode == 1 and "Numéro FINESS" in bad_finess.stderr
    operator = Actor(ActorKind.OPERATOR, None, "Opérateur de test")
    with demo.db.unit_of_work() as db:
        team = care_teams.create(db, operator, "Cardiologie", LAB_FINESS)
        team_id = team.id
    same_name = carnet("teams", "create", "--nom", "CARDIOLOGIE", "--finess", LAB_FINESS, settings=settings)
    assert same_name.returncode == 1 and "déjà une équipe « CARDIOLOGIE »" in same_name.stderr
    stranger = carnet("teams", "add-member", team_id, "--rpps", "19999999999", settings=settings)
    assert stranger.returncode == 1 and "Aucun professionnel de l'annuaire n'a le RPPS" in stranger.stderr
    not_member = carnet("teams", "remove-member", team_id, "--rpps", DENTIST, settings=settings)
    assert not_member.returncode == 1 and "ne fait pas partie de l'équipe « Cardiologie »" in not_member.stderr
    no_team = carnet("teams", "add-member", "inconnue", "--rpps", DENTIST, settings=settings)
    assert no_team.returncode == 1 and "Cette équipe de soins n'existe pas" in no_team.stderr
    with demo.db.unit_of_work() as db:
        assert [t.name for t in care_teams.list_teams(db)] == ["Cardiologie"]
        assert care_teams.get(db, team_id).members == []
        assert care_teams.add_member(db, operator, team_id, DENTIST)[1] is True
        assert care_teams.add_member(db, operator, team_id, DENTIST)[1] is False  # already in: nothing recorded
        actions = db.scalars(select(AuditEntry.action).where(AuditEntry.resource_type == "care_team")).all()
    assert actions == ["care_team.create", "care_team.member_add"]


def test_only_the_services_operators_keep_the_care_teams(demo: Services) -> None:
    """ACC-1: creating a team, adding or removing a member are asked of the policy (``care_team.manage``):
    a professional or a patient is refused, the refusal is recorded on the service's chain, nothing changes."""
    operator = Actor(ActorKind.OPERATOR, None, "Opérateur de test")
    with demo.db.unit_of_work() as db:
        team_id = care_teams.create(db, operator, "Cardiologie", LAB_FINESS).id
    for outsider in (professional(demo, DENTIST), marie_ange(demo)):
        for attempt in (
            lambda db, who=outsider: care_teams.create(db, who, "Pneumologie", LAB_FINESS),
            lambda db, who=outsider: care_teams.add_member(db, who, team_id, DENTIST),
            lambda db, who=outsider: care_teams.remove_member(db, who, team_id, DENTIST),
        ):
            with demo.db.unit_of_work() as db, pytest.raises(AccessDenied) as refused:
                attempt(db)
            assert refused.value.decision.reason.startswith("Seuls les conseillers du service")
    with demo.db.unit_of_work() as db:
        assert [(t.name, t.members) for t in care_teams.list_teams(db)] == [("Cardiologie", [])]
        denied = db.scalars(
            select(AuditEntry).where(AuditEntry.action == "care_team.manage").order_by(AuditEntry.seq)
        ).all()
    assert [(e.outcome, e.actor_kind, e.chain) for e in denied] == [("deny", "professional", "-")] * 3 + [
        ("deny", "patient", "-")
    ] * 3
    assert [e.resource_id for e in denied[:3]] == [None, team_id, team_id]
