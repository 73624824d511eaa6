"""The operator's work on the professional directory and the care teams at the command line
(``carnet professionals …``, ``carnet teams …``, ACC-1): one use case per command, each in its own unit of
work, returning frozen views (never a row).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carnet.access.service import care_teams
from carnet.access.service.care_teams import TeamView
from carnet.access.service.directory import (
    AddedEstablishment,
    AddedProfessional,
    DirectoryImportReport,
    add_establishment,
    add_professional,
    import_directory,
)

if TYPE_CHECKING:
    from carnet.bootstrap import Services
    from carnet.hall.actors import Actor

__all__ = [
    "MembershipChange",
    "add_team_member",
    "add_to_directory",
    "create_team",
    "import_directory_file",
    "list_care_teams",
    "remove_team_member",
]


def add_to_directory(
    services: Services,
    actor: Actor,
    *,
    rpps: str,
    last_name: str,
    first_name: str,
    profession_code: str,
    specialty: str | None = None,
    samu_regulator: bool | None = None,
    email: str | None = None,
) -> AddedProfessional:
    """Add a professional to the directory, or update them if their RPPS is known (audited);
    :class:`carnet.access.model.directory.DirectoryError` if refused."""
    with services.db.unit_of_work() as db:
        return add_professional(
            db,
            actor,
            rpps=rpps,
            last_name=last_name,
            first_name=first_name,
            profession_code=profession_code,
            specialty=specialty,
            samu_regulator=samu_regulator,
            email=email,
        )


def add_establishment_to_directory(
    services: Services, actor: Actor, *, finess: str, name: str, email: str | None = None
) -> AddedEstablishment:
    """Add an establishment (or update it by FINESS) with its secure-mail address (audited)."""
    with services.db.unit_of_work() as db:
        return add_establishment(db, actor, finess=finess, name=name, email=email)


def import_directory_file(
    services: Services, actor: Actor, path: Path, progress: Callable[[int], None] | None = None
) -> DirectoryImportReport:
    """Import or update the directory from the Annuaire Santé extract; ``progress`` gets the bytes handled.

    Raises :class:`carnet.access.service.directory.DirectoryFileError` when the file as a whole is refused.
    """
    return import_directory(services.db, path, actor, progress)


@dataclass(frozen=True)
class MembershipChange:
    """The professional whose membership was asked for; ``changed`` is False when there was nothing to do."""

    rpps: str
    first_name: str
    last_name: str
    changed: bool


def create_team(services: Services, actor: Actor, name: str, finess: str) -> TeamView:
    """A new care team at an establishment already known to Carnet (audited); :class:`CareTeamError` if refused."""
    with services.db.unit_of_work() as db:
        team = care_teams.create(db, actor, name, finess)
        return care_teams.get(db, team.id)


def add_team_member(services: Services, actor: Actor, team_id: str, rpps: str) -> MembershipChange:
    """Add a professional of the directory to the team (audited); they read at once the spaces that authorised
    the team. ``changed`` is False when they already were a member."""
    with services.db.unit_of_work() as db:
        pro, added = care_teams.add_member(db, actor, team_id, rpps)
        return MembershipChange(pro.rpps, pro.first_name, pro.last_name, changed=added)


def remove_team_member(services: Services, actor: Actor, team_id: str, rpps: str) -> MembershipChange:
    """Take a professional out of the team (audited): their access through the team ends at once."""
    with services.db.unit_of_work() as db:
        pro = care_teams.remove_member(db, actor, team_id, rpps)
        return MembershipChange(pro.rpps, pro.first_name, pro.last_name, changed=True)


def list_care_teams(services: Services, actor: Actor, finess: str | None = None) -> list[TeamView]:
    """The care teams (of one establishment when ``finess`` is given) with their members, for the operator
    (reading the list concerns no patient: it is not recorded)."""
    with services.db.unit_of_work() as db:
        return care_teams.list_teams(db, finess)
