"""Care teams (ACC-1): a named group of professionals at one establishment, authorised as a whole.

The service's operators keep the teams (``carnet teams …``); a patient authorises a team from their
« Accès » page (``access.grant(…, care_team_id=…)``), and every member then reads the space under that
consent — what consent means for reading is the policy's business (``hall.professional_facts`` gathers
the memberships, ``policy.rule_professional`` decides). Membership is read at each request: adding a
member gives access at once, removing one ends it at once.

Every change is asked of the policy first (``Action.CARE_TEAM_MANAGE``: the service's operators only, a
refusal recorded) and recorded on the audit's no-patient chain (a team is not a patient's data); a removed
membership is deleted, the audit entry keeps the trace.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from carnet.access.tables import CareTeam, CareTeamMember
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource
from carnet.people.model.identifiers import IdentifierError, validate_finess, validate_rpps
from carnet.people.model.professions import profession_label
from carnet.people.tables import Establishment, Professional

MAX_NAME = 200


class CareTeamError(CarnetError):
    """A request that cannot be done as asked; ``message`` is French."""


@dataclass(frozen=True)
class Member:
    professional_id: str
    rpps: str
    name: str
    profession: str


@dataclass(frozen=True)
class TeamView:
    id: str
    name: str
    finess: str | None
    establishment: str | None
    members: list[Member]

    @property
    def label(self) -> str:
        """« Équipe mobile de soins palliatifs — CH de Bastia »: what a patient reads when choosing a team."""
        return f"{self.name} — {self.establishment}" if self.establishment else self.name


def _folded(text: str) -> str:
    """Case, accents and spaces aside (« Équipe  mobile » ≈ « equipe mobile »), the same on every database."""
    decomposed = unicodedata.normalize("NFKD", " ".join((text or "").split()).casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _clean_name(name: str) -> str:
    cleaned = " ".join((name or "").split())
    if not cleaned:
        raise CareTeamError("Indiquez le nom de l'équipe de soins.")
    if len(cleaned) > MAX_NAME:
        raise CareTeamError(f"Le nom de l'équipe ne doit pas dépasser {MAX_NAME} caractères.")
    return cleaned


def _establishment(db: Session, finess: str) -> Establishment:
    try:
        number = validate_finess(finess)
    except IdentifierError as exc:
        raise CareTeamError(exc.message) from exc
    establishment = db.scalar(select(Establishment).where(Establishment.finess == number))
    if establishment is None:
        raise CareTeamError(
            f"Aucun établissement n'a le FINESS {number} dans Carnet : il est créé avec son client "
            "(carnet clients create --finess)."
        )
    return establishment


def _team(db: Session, team_id: str) -> CareTeam:
    team = db.get(CareTeam, (team_id or "").strip())
    if team is None:
        raise CareTeamError("Cette équipe de soins n'existe pas (carnet teams list donne les identifiants).")
    return team


def _professional(db: Session, rpps: str) -> Professional:
    try:
        number = validate_rpps(rpps)
    except IdentifierError as exc:
        raise CareTeamError(exc.message) from exc
    pro = db.scalar(select(Professional).where(Professional.rpps == number))
    if pro is None:
        raise CareTeamError(
            f"Aucun professionnel de l'annuaire n'a le RPPS {number} : ajoutez-le d'abord (carnet professionals add)."
        )
    return pro


def _who(pro: Professional) -> str:
    title = "Dr " if pro.profession_code in {"10", "40"} else ""
    return f"{title}{pro.first_name} {pro.last_name}"


def _record(db: Session, actor: Actor, action: str, team: CareTeam, details: dict[str, object]) -> None:
    audit.record(db, actor, action, patient_id=None, resource_type="care_team", resource_id=team.id, details=details)


def _may_manage(db: Session, actor: Actor, team_id: str | None = None) -> None:
    """ACC-1: the policy decides who keeps the care teams (a refusal is recorded, ``AccessDenied`` raised)."""
    guard(db, actor, audit.NO_PATIENT_CHAIN, Action.CARE_TEAM_MANAGE, Resource("care_team", team_id))


def create(db: Session, actor: Actor, name: str, finess: str) -> CareTeam:
    """A new team at an establishment already known to Carnet; two teams of one establishment cannot share a
    name (case and spaces aside)."""
    _may_manage(db, actor)
    cleaned = _clean_name(name)
    establishment = _establishment(db, finess)
    same = next(
        (
            team_id
            for team_id, existing in db.execute(
                select(CareTeam.id, CareTeam.name).where(CareTeam.establishment_id == establishment.id)
            )
            if _folded(existing) == _folded(cleaned)
        ),
        None,
    )
    if same is not None:
        raise CareTeamError(f"L'établissement a déjà une équipe « {cleaned} » (identifiant {same}).")
    team = CareTeam(name=cleaned, establishment_id=establishment.id)
    db.add(team)
    db.flush()
    _record(db, actor, "care_team.create", team, {"équipe": cleaned, "finess": establishment.finess})
    return team


def add_member(db: Session, actor: Actor, team_id: str, rpps: str) -> tuple[Professional, bool]:
    """Add a professional of the directory to the team; ``(professional, False)`` if already a member."""
    _may_manage(db, actor, (team_id or "").strip()[:64])
    team = _team(db, team_id)
    pro = _professional(db, rpps)
    if db.get(CareTeamMember, (team.id, pro.id)) is not None:
        return pro, False
    db.add(CareTeamMember(team_id=team.id, professional_id=pro.id))
    db.flush()
    _record(db, actor, "care_team.member_add", team, {"équipe": team.name, "rpps": pro.rpps, "qui": _who(pro)})
    return pro, True


def remove_member(db: Session, actor: Actor, team_id: str, rpps: str) -> Professional:
    """Take a professional out of the team: what they read through the team's authorisations ends at once."""
    _may_manage(db, actor, (team_id or "").strip()[:64])
    team = _team(db, team_id)
    pro = _professional(db, rpps)
    member = db.get(CareTeamMember, (team.id, pro.id))
    if member is None:
        raise CareTeamError(f"{_who(pro)} (RPPS {pro.rpps}) ne fait pas partie de l'équipe « {team.name} ».")
    db.delete(member)
    db.flush()
    _record(db, actor, "care_team.member_remove", team, {"équipe": team.name, "rpps": pro.rpps, "qui": _who(pro)})
    return pro


def _views(db: Session, teams: list[CareTeam]) -> list[TeamView]:
    if not teams:
        return []
    ids = [t.id for t in teams]
    establishments = {
        e.id: e
        for e in db.scalars(
            select(Establishment).where(Establishment.id.in_({t.establishment_id for t in teams if t.establishment_id}))
        )
    }
    members: dict[str, list[Member]] = {team_id: [] for team_id in ids}
    rows = db.execute(
        select(CareTeamMember.team_id, Professional)
        .join(Professional, Professional.id == CareTeamMember.professional_id)
        .where(CareTeamMember.team_id.in_(ids))
        .order_by(Professional.last_name, Professional.first_name)
    ).all()
    for team_id, pro in rows:
        members[team_id].append(Member(pro.id, pro.rpps, _who(pro), profession_label(pro.profession_code)))
    views = []
    for team in teams:
        establishment = establishments.get(team.establishment_id or "")
        views.append(
            TeamView(
                team.id,
                team.name,
                establishment.finess if establishment else None,
                establishment.name if establishment else None,
                members[team.id],
            )
        )
    return views


def list_teams(db: Session, finess: str | None = None) -> list[TeamView]:
    """All teams (of one establishment when ``finess`` is given), by establishment then name, with members."""
    query = select(CareTeam).outerjoin(Establishment, Establishment.id == CareTeam.establishment_id)
    if finess:
        query = query.where(CareTeam.establishment_id == _establishment(db, finess).id)
    teams = list(db.scalars(query.order_by(Establishment.name, CareTeam.name, CareTeam.id)))
    return _views(db, teams)


def get(db: Session, team_id: str) -> TeamView:
    """One team with its members; ``CareTeamError`` if unknown."""
    return _views(db, [_team(db, team_id)])[0]
