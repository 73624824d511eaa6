"""The patient's « Accès » page (ACC-1..4) as use cases: who may read the space, the médecin traitant,
authorising a professional or a care team, blocking and unblocking, the emergency accesses.

Each function opens its unit of work. Entering the page is the policy's ``SETTINGS_READ`` (the person, their
legal representatives, their caregivers — read only): anyone else gets ``AccessDenied``, the space's usual
403, and learns nothing. Every change is ``ACCESS_MANAGE``, asked by ``grants`` (the hall records the
refusals, ``grants`` the changes). A change refused — by the policy or because it cannot be done as asked —
comes back as the page to show again (``Shown``) with the French reason and the HTTP status.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.orm import Session

from carnet.access.service import directory_search, grants
from carnet.access.service.directory_search import CareTeamHit, ProfessionalHit, SearchError
from carnet.access.service.grants import AccessError, EmergencyView, GrantView
from carnet.bootstrap import Services
from carnet.hall.actors import Actor
from carnet.hall.guard import AccessDenied, facts_for, guard
from carnet.hall.policy import Action, Resource, decide
from carnet.people.service.lookup import PatientView, enter_space
from carnet.people.tables import Professional

PATIENT_ROLES = ("reader", "administrator")  # what the person gives from this page (ACC-1, ACC-2)
NOT_IN_DIRECTORY = "Ce professionnel n'est pas dans l'annuaire."


@dataclass(frozen=True)
class DirectorySearch:
    """A search of the directory typed in one of the page's three forms (``target``: medecin | pro | equipe),
    and what it found — or why it could not run (``error``)."""

    target: str = ""
    text: str = ""
    role: str = "reader"
    professionals: tuple[ProfessionalHit, ...] = ()
    teams: tuple[CareTeamHit, ...] = ()
    error: str = ""


@dataclass(frozen=True)
class AccessPage:
    patient: PatientView
    grants: list[GrantView]
    blocked: list[tuple[str, str, datetime]]  # professional id, name, since
    blocked_ids: frozenset[str]
    emergencies: list[EmergencyView]
    medecin: GrantView | None
    can_manage: bool  # the forms are shown to whom the policy lets change access (each change asks again)
    search: DirectorySearch = field(default_factory=DirectorySearch)


@dataclass(frozen=True)
class Shown:
    """The page to show (again): with the reason a change was refused, and the HTTP status."""

    page: AccessPage
    error: str = ""
    status: int = 200


@dataclass(frozen=True)
class Done:
    """A change made: ``message`` names what the page says about it (medecin, autorise, retire…)."""

    message: str


@dataclass(frozen=True)
class BlockConfirmation:
    """ACC-3: what the confirmation page names before a block."""

    patient: PatientView
    professional_id: str
    name: str


def _enter(db: Session, actor: Actor, patient_id: str) -> PatientView:
    """Who may read the space's access settings comes in; anyone else: ``AccessDenied``."""
    return enter_space(db, actor, patient_id, Action.SETTINGS_READ, Resource("access"))


def _page(db: Session, actor: Actor, patient: PatientView, search: DirectorySearch | None = None) -> AccessPage:
    overview = grants.overview(db, actor, patient.id)
    facts = facts_for(db, actor, patient.id)
    return AccessPage(
        patient=patient,
        grants=overview.grants,
        blocked=overview.blocked,
        blocked_ids=frozenset(professional_id for professional_id, _, _ in overview.blocked),
        emergencies=overview.emergencies,
        medecin=next((g for g in overview.grants if g.role == grants.ROLES["medecin_traitant"]), None),
        can_manage=decide(actor, patient.id, Action.ACCESS_MANAGE, Resource("access"), facts).allowed,
        search=search or DirectorySearch(),
    )


def access_page(services: Services, actor: Actor, patient_id: str) -> AccessPage:
    """The page as it stands; ``AccessDenied`` for whoever may not read the space's access settings."""
    with services.db.unit_of_work() as db:
        return _page(db, actor, _enter(db, actor, patient_id))


def _manage(db: Session, actor: Actor, patient_id: str) -> None:
    guard(db, actor, patient_id, Action.ACCESS_MANAGE, Resource("access"))


def search_directory(
    services: Services, actor: Actor, patient_id: str, target: str, text: str, role: str = "reader"
) -> Shown:
    """Search the directory for the médecin traitant (physicians only), a professional or a care team — for
    whom the policy lets change the space's access."""
    asked = DirectorySearch(target, text, role)
    with services.db.unit_of_work() as db:
        patient = _enter(db, actor, patient_id)
        try:
            _manage(db, actor, patient_id)
        except AccessDenied as exc:
            return Shown(_page(db, actor, patient), exc.decision.reason, 403)
        try:
            if target == "equipe":
                found = replace(asked, teams=tuple(directory_search.search_care_teams(db, text)))
            else:
                professions = directory_search.DOCTORS if target == "medecin" else None
                hits = directory_search.search_professionals(db, text, professions=professions)
                found = replace(asked, professionals=tuple(hits))
        except SearchError as exc:
            return Shown(_page(db, actor, patient, replace(asked, error=exc.message)), status=400)
        return Shown(_page(db, actor, patient, found))


def _change(services: Services, actor: Actor, patient_id: str, operation: Callable[[Session], str]) -> Done | Shown:
    """Run one change in the page's transaction; a refusal gives the page back, saying why."""
    with services.db.unit_of_work() as db:
        patient = _enter(db, actor, patient_id)
        try:
            message = operation(db)
        except (AccessError, SearchError) as exc:
            return Shown(_page(db, actor, patient), exc.message, 400)
        except AccessDenied as exc:
            return Shown(_page(db, actor, patient), exc.decision.reason, 403)
    return Done(message)


def declare_medecin_traitant(services: Services, actor: Actor, patient_id: str, professional_id: str) -> Done | Shown:
    """ACC-2: declare (or change) the médecin traitant — a physician of the directory."""

    def operation(db: Session) -> str:
        grants.grant(db, actor, patient_id, professional_id=professional_id, role="medecin_traitant")
        return "medecin"

    return _change(services, actor, patient_id, operation)


def authorise_professional(
    services: Services, actor: Actor, patient_id: str, professional_id: str, role: str
) -> Done | Shown:
    """ACC-1, ACC-2: authorise a professional, as « autorisé » (reader) or « administrateur »."""

    def operation(db: Session) -> str:
        if role not in PATIENT_ROLES:
            raise AccessError("Choisissez le statut : autorisé ou administrateur.")
        grants.grant(db, actor, patient_id, professional_id=professional_id or None, role=role)
        return "autorise"

    return _change(services, actor, patient_id, operation)


def authorise_team(services: Services, actor: Actor, patient_id: str, team_id: str) -> Done | Shown:
    """ACC-1: authorise a care team as a whole."""

    def operation(db: Session) -> str:
        grants.grant(db, actor, patient_id, care_team_id=team_id or None)
        return "equipe"

    return _change(services, actor, patient_id, operation)


def withdraw(services: Services, actor: Actor, patient_id: str, grant_id: str) -> Done | Shown:
    """ACC-1: withdraw an authorisation (given by the person, or the consent a professional recorded)."""

    def operation(db: Session) -> str:
        grants.revoke(db, actor, patient_id, grant_id)
        return "retire"

    return _change(services, actor, patient_id, operation)


def confirm_block(services: Services, actor: Actor, patient_id: str, professional_id: str) -> BlockConfirmation | Shown:
    """ACC-3: who is about to be blocked, for the confirmation page (nothing changes yet)."""
    with services.db.unit_of_work() as db:
        patient = _enter(db, actor, patient_id)
        try:
            _manage(db, actor, patient_id)
        except AccessDenied as exc:
            return Shown(_page(db, actor, patient), exc.decision.reason, 403)
        pro = db.get(Professional, professional_id) if professional_id else None
        if pro is None:
            return Shown(_page(db, actor, patient), NOT_IN_DIRECTORY, 400)
        return BlockConfirmation(patient, pro.id, grants.professional_name(pro))


def block(services: Services, actor: Actor, patient_id: str, professional_id: str) -> Done | Shown:
    """ACC-3: block a professional (after the confirmation): no more reading, deposits still arrive."""

    def operation(db: Session) -> str:
        grants.block(db, actor, patient_id, professional_id)
        return "bloque"

    return _change(services, actor, patient_id, operation)


def unblock(services: Services, actor: Actor, patient_id: str, professional_id: str) -> Done | Shown:
    """ACC-3: lift a block; a new authorisation is needed for the professional to read again."""

    def operation(db: Session) -> str:
        grants.unblock(db, actor, patient_id, professional_id)
        return "debloque"

    return _change(services, actor, patient_id, operation)
