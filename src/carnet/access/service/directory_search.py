"""Finding a professional or a care team in the directory, for the patient's "Accès" page (ACC-1, ACC-2).

The directory is public information (the RPPS extract of the Annuaire Santé, the care teams of
establishments): these queries read no patient data and decide nothing. The page that calls them first
asks the policy whether the viewer may manage the space's access.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from carnet.access.service.grants import professional_name
from carnet.access.tables import CareTeam, CareTeamMember
from carnet.errors import CarnetError
from carnet.people.model.professions import profession_label
from carnet.people.tables import Establishment, Professional

LIMIT = 20
MIN_LETTERS = 2
TOO_SHORT = "Saisissez au moins 2 lettres du nom, ou le numéro RPPS (11 chiffres)."
TEAM_TOO_SHORT = "Saisissez au moins 2 lettres du nom de l'équipe de soins."
DOCTORS = frozenset({"10"})  # a médecin traitant is a physician (TRE_G15 code 10)


class SearchError(CarnetError):
    """A query that cannot be run as typed; ``message`` is French."""


@dataclass(frozen=True)
class ProfessionalHit:
    id: str
    name: str
    profession: str
    specialty: str | None
    city: str | None
    rpps: str


@dataclass(frozen=True)
class CareTeamHit:
    id: str
    name: str
    establishment: str | None
    city: str | None
    members: int


def _without_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"{escaped}%"


def search_professionals(
    db: Session, text: str, *, professions: Collection[str] | None = None, limit: int = LIMIT
) -> list[ProfessionalHit]:
    """Professionals whose last name starts with one of the typed words (case and accents ignored
    where the database allows), or whose RPPS starts with the typed digits; at most ``limit``."""
    typed = " ".join(text.split())[:100]
    compact = typed.replace(" ", "")
    if compact.isdigit():
        condition = Professional.rpps == compact if len(compact) == 11 else Professional.rpps.like(compact + "%")
        if len(compact) < MIN_LETTERS:
            raise SearchError(TOO_SHORT)
    else:
        words = [w for w in typed.replace(",", " ").split() if len(w) >= MIN_LETTERS]
        if not words:
            raise SearchError(TOO_SHORT)
        forms = {form for word in words for form in (word.upper(), _without_accents(word).upper())}
        last_name = func.upper(Professional.last_name)
        condition = or_(*(last_name.like(_like_prefix(form), escape="\\") for form in sorted(forms)))
    query = select(Professional).where(condition)
    if professions is not None:
        query = query.where(Professional.profession_code.in_(sorted(professions)))
    query = query.order_by(Professional.last_name, Professional.first_name, Professional.rpps).limit(limit)
    return [
        ProfessionalHit(
            pro.id,
            professional_name(pro),
            profession_label(pro.profession_code),
            pro.specialty,
            pro.city,
            pro.rpps,
        )
        for pro in db.scalars(query)
    ]


def search_care_teams(db: Session, text: str, *, limit: int = LIMIT) -> list[CareTeamHit]:
    """Care teams whose name or establishment contains the typed text, case and accents aside ("equipe"
    finds "Équipe"). Teams are few (a handful per establishment): they are matched in Python, the same way
    on SQLite and PostgreSQL."""
    typed = " ".join(text.split())[:100]
    if len(typed) < MIN_LETTERS:
        raise SearchError(TEAM_TOO_SHORT)
    wanted = _without_accents(typed).lower()
    members = (
        select(func.count())
        .select_from(CareTeamMember)
        .where(CareTeamMember.team_id == CareTeam.id)
        .correlate(CareTeam)
        .scalar_subquery()
    )
    query = (
        select(CareTeam.id, CareTeam.name, Establishment.name, Establishment.city, members)
        .outerjoin(Establishment, Establishment.id == CareTeam.establishment_id)
        .order_by(CareTeam.name, CareTeam.id)
    )
    hits = [
        CareTeamHit(team_id, name, establishment, city, int(count or 0))
        for team_id, name, establishment, city, count in db.execute(query)
        if wanted in _without_accents(f"{name} {establishment or ''}").lower()
    ]
    return hits[:limit]
