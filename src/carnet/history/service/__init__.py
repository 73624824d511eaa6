"""The patient's history (TRC-2): audit entries told in plain French, in tabs, with filters, and the
"Signaler" action on what someone else did; the portal's alerts (TRC-3).

Tabs follow who acted: professionals and establishments; the person themselves (and the service's
automatic work); legal representatives and caregivers (any other person acting in the space);
synchronised services (apps). Reading the history and reporting an entry are decided by the policy
(``HISTORY_READ``, ``HISTORY_REPORT``); a report is stored and recorded in the history itself.

Professionals read a history too ("the médecin traitant and the author see theirs"): the policy's decision
carries the scope this module applies — ``Scope.ALL`` (the médecin traitant / administrator: the whole
history) or ``Scope.OWN_ACTIONS`` (any other professional: the entries of their own actions only). They
never report an entry (``HISTORY_REPORT`` is the person's).

Pages call the use cases (``history_page``, ``report_page``, ``report_entry``), which open the unit of
work; ``history_view`` and ``alerts`` are the helpers other services call inside theirs. The words of
each action live in ``carnet.history.labels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, false, or_, select
from sqlalchemy.orm import Session

from carnet.access.service import history_facts
from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for, guard
from carnet.hall.policy import Action, Resource, Scope, decide
from carnet.hall.tables import AuditEntry
from carnet.history.labels import ACTOR_KINDS, DETAILED, KIND_EXTRAS, words
from carnet.history.tables import AccessReport
from carnet.people.service.lookup import PatientView, enter_space
from carnet.people.tables import Account
from carnet.storage.types import utcnow
from carnet.vault.service.hidden import unseen_documents

ALL = "tout"
PROFESSIONALS = "professionnels"
MINE = "activites"
REPRESENTATIVES = "representants"
SERVICES = "services"
TABS = {
    ALL: "Tout",
    PROFESSIONALS: "Professionnels",
    MINE: "Mes activités",
    REPRESENTATIVES: "Représentants légaux et aidants",
    SERVICES: "Services synchronisés",
}
TABS_FOR_PROFESSIONALS = {**TABS, MINE: "Activités de la personne"}  # a professional reading the whole history
KINDS = {
    "consultations": "Consultations",
    "depots": "Dépôts",
    "modifications": "Modifications",
    "acces": "Accès et autorisations",
    "urgences": "Urgences",
    "refus": "Refus",
}
KIND_ACTIONS = {
    "consultations": {
        "document.search",
        "document.read",
        "document.metadata",
        "document.download",
        "space.view",
        "space.find",
        "history.read",
        "settings.read",
    },
    "depots": {"document.deposit", "document.replace", "folder.create"},
    "modifications": {
        "document.mask",
        "document.unmask",
        "document.delete",
        "document.labels",
        "document.entered_in_error",
        "document.revealed",
        "document.update",
        "folder.write",
        "settings.write",
        "auth.totp_enabled",
        "auth.totp_disabled",
        "space.activated",
        "space.closed",
        "space.reopened",
        "space.close",
        "space.reopen",
        "space.delete",
    },
    "acces": {
        "access.grant",
        "access.revoke",
        "access.block",
        "access.unblock",
        "access.consent_recorded",
        "access.manage",
        "consent.record",
        "auth.login",
        "auth.login_failed",
        "auth.logout",
        "family.manage",
        "history.report",
    },
    "urgences": {"emergency.access", "emergency.start"},
}
for _kind, _more in KIND_EXTRAS.items():  # actions whose words another capability keeps
    KIND_ACTIONS.setdefault(_kind, set()).update(_more)
KIND_PREFIXES = {"acces": ("family.", "access.")}
LIMIT = 100
EMERGENCY_SHOWN_FOR = timedelta(days=365)
ALERTS_FOR = timedelta(days=30)
COMMENT_MAX = 1000
REPORTED = "Votre signalement a été transmis."


class HistoryError(CarnetError):
    """A request about the history that cannot be done; ``message`` is French, ``status`` the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    who: str
    what: str
    denied: bool
    reason: str
    id: int = 0
    tab: str = MINE
    reportable: bool = False  # done by someone else: the viewer may report it (if the policy lets them)
    reported: bool = False


@dataclass(frozen=True)
class EmergencyLine:
    at: datetime
    who: str
    kind: str
    reason: str


@dataclass(frozen=True)
class HistoryQuery:
    """The tab and the filters of the history page."""

    tab: str = ALL
    kind: str = ""
    date_from: datetime | None = None  # inclusive, UTC
    date_to: datetime | None = None  # exclusive, UTC
    limit: int = LIMIT


@dataclass(frozen=True)
class HistoryView:
    lines: list[HistoryLine]
    emergencies: list[EmergencyLine]
    can_report: bool
    more: bool  # older entries exist beyond ``limit`` (narrow the period to see them)
    own_actions: bool = False  # the policy gave the viewer only the entries of their own actions


@dataclass(frozen=True)
class HistoryPage:
    """The history page of a space: whose space it is (the header) and what the viewer may read of it."""

    patient: PatientView
    view: HistoryView


@dataclass(frozen=True)
class ReportPage:
    """The « Signaler » form: the entry to report, and why the last attempt failed (French), if it did."""

    patient: PatientView
    line: HistoryLine
    error: str = ""


def _own_accounts(db: Session, patient_id: str) -> set[str]:
    """The accounts of the person whose space it is (their own activity)."""
    return set(db.scalars(select(Account.id).where(Account.patient_id == patient_id)))


def tab_of(entry: AuditEntry, own: set[str]) -> str:
    kind = entry.actor_kind
    if kind in {"professional", "establishment"}:
        return PROFESSIONALS
    if kind == "app":
        return SERVICES
    if kind in {"representative", "caregiver"}:
        return REPRESENTATIVES
    if kind == "patient" and entry.actor_id not in own:
        return REPRESENTATIVES
    return MINE  # the person, the service's automatic work, a Carnet adviser (enrolment)


def _tab_condition(tab: str, own: set[str]) -> ColumnElement[bool] | None:
    kind = AuditEntry.actor_kind
    mine = AuditEntry.actor_id.in_(sorted(own)) if own else false()
    if tab == PROFESSIONALS:
        return kind.in_(["professional", "establishment"])
    if tab == SERVICES:
        return kind == "app"
    if tab == REPRESENTATIVES:
        return or_(
            kind.in_(["representative", "caregiver"]),
            and_(kind == "patient", or_(AuditEntry.actor_id.is_(None), ~mine)),
        )
    if tab == MINE:
        return or_(
            kind.not_in(["professional", "establishment", "app", "representative", "caregiver", "patient"]),
            and_(kind == "patient", mine),
        )
    return None


def _kind_condition(kind: str) -> ColumnElement[bool] | None:
    if kind == "refus":
        return AuditEntry.outcome == "deny"
    if kind not in KIND_ACTIONS:
        return None
    conditions: list[ColumnElement[bool]] = [AuditEntry.action.in_(sorted(KIND_ACTIONS[kind]))]
    conditions += [AuditEntry.action.startswith(prefix) for prefix in KIND_PREFIXES.get(kind, ())]
    return or_(*conditions)


def _detailed(entry: AuditEntry) -> str | None:
    template = DETAILED.get(entry.action)
    details: dict[str, Any] = entry.details if isinstance(entry.details, dict) else {}
    if template is None:
        return None
    try:
        return template.format_map({k: str(v) for k, v in details.items()})
    except (KeyError, ValueError):
        return None


def second_person(what: str) -> str:
    """The words of an action told to the one who did it (issue #15-12): « Vous avez consulté… », « Vous vous êtes
    connecté(e) », not « Vous a consulté ». The words are all in the passé composé, with « a » or « s'est »."""
    if what.startswith("s'est "):
        return "vous êtes " + what.removeprefix("s'est ")
    if what.startswith("a "):
        return "avez " + what.removeprefix("a ")
    return what


def describe(entry: AuditEntry, viewer: Actor, own: set[str] | None = None, reported: bool = False) -> HistoryLine:
    if viewer.id is not None and entry.actor_id == viewer.id:
        who = "Vous"
    else:
        kind = ACTOR_KINDS.get(entry.actor_kind, "")
        who = f"{entry.actor_label} ({kind})" if kind else entry.actor_label
    done, attempted = words(entry.action)
    denied = entry.outcome == "deny"
    if denied and entry.action != "auth.login_failed":
        what = f"a tenté une {attempted} — refusée"
    else:
        what = _detailed(entry) or done
    if who == "Vous":
        what = second_person(what)
    own = own or set()
    someone_else = entry.actor_kind != "system" and entry.actor_id not in own and entry.actor_id != viewer.id
    return HistoryLine(entry.at, who, what, denied, entry.reason, entry.id, tab_of(entry, own), someone_else, reported)


def _reported_ids(db: Session, patient_id: str, ids: list[int]) -> set[int]:
    if not ids:
        return set()
    query = select(AccessReport.audit_entry_id).where(
        AccessReport.patient_id == patient_id, AccessReport.audit_entry_id.in_(ids)
    )
    return set(db.scalars(query))


def _may(db: Session, actor: Actor, patient_id: str, action: Action, resource: Resource) -> bool:
    """Ask the policy without recording a refusal (to show or hide a button, never to protect anything)."""
    return decide(actor, patient_id, action, resource, facts_for(db, actor, patient_id)).allowed


def _own_actions(actor: Actor) -> ColumnElement[bool]:
    """The entries of the actor's own actions (``Scope.OWN_ACTIONS``): those recorded under their id."""
    return AuditEntry.actor_id == actor.id if actor.id is not None else false()


def emergencies(db: Session, patient_id: str, since: datetime, by: Actor | None = None) -> list[EmergencyLine]:
    """Emergency accesses as the history recorded them (who, when, SAMU or break-the-glass, why); only
    ``by``'s own when given (a professional who reads only their own actions)."""
    query = (
        select(AuditEntry)
        .where(
            AuditEntry.chain == patient_id,
            AuditEntry.action == "emergency.access",
            AuditEntry.outcome == "allow",
            AuditEntry.at >= since,
        )
        .order_by(AuditEntry.seq.desc())
        .limit(20)
    )
    if by is not None:
        query = query.where(_own_actions(by))
    lines = []
    for entry in db.scalars(query):
        details = entry.details if isinstance(entry.details, dict) else {}
        lines.append(
            EmergencyLine(entry.at, entry.actor_label, str(details.get("type", "")), str(details.get("motif", "")))
        )
    return lines


def _entries_query(
    db: Session, actor: Actor, patient_id: str, query: HistoryQuery, own: set[str], own_actions: bool
) -> Select[AuditEntry]:
    """The entries of this space the reader may read, in this tab, for these filters (most recent first)."""
    select_entries = select(AuditEntry).where(AuditEntry.chain == patient_id)
    if own_actions:
        select_entries = select_entries.where(_own_actions(actor))
    for condition in (_tab_condition(query.tab, own), _kind_condition(query.kind)):
        if condition is not None:
            select_entries = select_entries.where(condition)
    if query.date_from is not None:
        select_entries = select_entries.where(AuditEntry.at >= query.date_from)
    if query.date_to is not None:
        select_entries = select_entries.where(AuditEntry.at < query.date_to)
    # FAM-2, VLT-6: nothing of documents the reader may not read — not their deposit, not a refused look —
    # so that the history reads as if they did not exist (the audit keeps everything).
    unseen = unseen_documents(db, actor, patient_id)
    if unseen:
        select_entries = select_entries.where(
            or_(AuditEntry.resource_id.is_(None), AuditEntry.resource_id.not_in(unseen))
        )
    return select_entries.order_by(AuditEntry.seq.desc()).limit(query.limit + 1)


def history_view(db: Session, actor: Actor, patient_id: str, query: HistoryQuery | None = None) -> HistoryView:
    """TRC-2: one tab of the history, filtered, with the emergency accesses on top whatever the tab.

    The policy decides who reads it and which entries (the decision's scope, applied here as the vault
    applies a search's): the person, their legal representatives and caregivers, the médecin traitant or
    an administrator (``Scope.ALL``) read the whole history — minus what concerns documents they may not
    see; any other professional (``Scope.OWN_ACTIONS``) reads only the entries recorded under their own
    id: what they did in the portal (look-ups, refused attempts, deposits, consultations). Actions of their
    software are recorded under the API client's id, so they are not among them. Reading is recorded.
    """
    query = query or HistoryQuery()
    decision = guard(db, actor, patient_id, Action.HISTORY_READ, Resource("history"))
    own_actions = decision.scope == Scope.OWN_ACTIONS
    own = _own_accounts(db, patient_id)
    entries = list(db.scalars(_entries_query(db, actor, patient_id, query, own, own_actions)))
    more = len(entries) > query.limit
    entries = entries[: query.limit]
    reported = _reported_ids(db, patient_id, [entry.id for entry in entries])
    lines = [describe(entry, actor, own, entry.id in reported) for entry in entries]
    urgent = emergencies(db, patient_id, utcnow() - EMERGENCY_SHOWN_FOR, actor if own_actions else None)
    can_report = _may(db, actor, patient_id, Action.HISTORY_REPORT, Resource("history"))
    audit.record(db, actor, str(Action.HISTORY_READ), patient_id=patient_id, resource_type="history")
    return HistoryView(lines, urgent, can_report, more, own_actions)


def history_page(services: Services, actor: Actor, patient_id: str, query: HistoryQuery | None = None) -> HistoryPage:
    """TRC-2, the history page of a space: one tab, filtered (``history_view``), and whose space it is.
    A reader the policy refuses gets ``AccessDenied`` (the refusal is in the history)."""
    with services.db.unit_of_work() as db:
        view = history_view(db, actor, patient_id, query)
        patient = enter_space(db, actor, patient_id, Action.HISTORY_READ, Resource("history"))
        return HistoryPage(patient, view)


def space_history(services: Services, actor: Actor, patient_id: str, query: HistoryQuery | None = None) -> HistoryView:
    """``history_view`` in its own unit of work, for an interface that shows its own header."""
    with services.db.unit_of_work() as db:
        return history_view(db, actor, patient_id, query)


def _entry_of(db: Session, actor: Actor, patient_id: str, entry_id: int) -> tuple[AuditEntry, set[str]]:
    guard(db, actor, patient_id, Action.HISTORY_REPORT, Resource("history"))
    # The chain names the partition (PostgreSQL): one index probe, not one a partition.
    entry = db.scalar(select(AuditEntry).where(AuditEntry.chain == patient_id, AuditEntry.id == entry_id))
    if entry is None:
        raise HistoryError("Cette entrée de l'historique n'existe pas.", 404)
    own = _own_accounts(db, patient_id)
    line = describe(entry, actor, own)
    if not line.reportable:
        raise HistoryError("Vous ne pouvez signaler que ce qu'une autre personne a fait dans l'espace.")
    return entry, own


def entry_to_report(db: Session, actor: Actor, patient_id: str, entry_id: int) -> HistoryLine:
    """The entry the person is about to report (decided by the policy: ``HISTORY_REPORT``)."""
    entry, own = _entry_of(db, actor, patient_id, entry_id)
    return describe(entry, actor, own, bool(_reported_ids(db, patient_id, [entry.id])))


def report(db: Session, actor: Actor, patient_id: str, entry_id: int, comment: str = "") -> None:
    """TRC-2: the person reports an access or an action they find suspicious; stored for the service's
    staff, recorded in the history (without the comment, which may speak of health). Reporting twice
    changes nothing."""
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise HistoryError(f"Votre commentaire dépasse {COMMENT_MAX} caractères : raccourcissez-le.")
    entry, _ = _entry_of(db, actor, patient_id, entry_id)
    existing = db.scalar(
        select(AccessReport.id).where(AccessReport.patient_id == patient_id, AccessReport.audit_entry_id == entry.id)
    )
    if existing is not None:
        return
    db.add(AccessReport(patient_id=patient_id, audit_entry_id=entry.id, comment=comment, reported_by=actor.label))
    db.flush()
    audit.record(
        db,
        actor,
        str(Action.HISTORY_REPORT),
        patient_id=patient_id,
        resource_type="history",
        resource_id=str(entry.id),
        details={"action_signalee": entry.action, "date": entry.at.isoformat()},
    )


def _report_page(db: Session, actor: Actor, patient_id: str, entry_id: int, error: str = "") -> ReportPage:
    line = entry_to_report(db, actor, patient_id, entry_id)
    patient = enter_space(db, actor, patient_id, Action.HISTORY_REPORT, Resource("history"))
    return ReportPage(patient, line, error)


def report_page(services: Services, actor: Actor, patient_id: str, entry_id: int) -> ReportPage:
    """The « Signaler » form of one entry; ``HistoryError`` when there is no such entry (404) or it may not
    be reported (someone else's actions only); ``AccessDenied`` when the policy refuses."""
    with services.db.unit_of_work() as db:
        return _report_page(db, actor, patient_id, entry_id)


def report_entry(
    services: Services, actor: Actor, patient_id: str, entry_id: int, comment: str = ""
) -> ReportPage | None:
    """TRC-2 « Signaler »: None once reported; else the form to show again with the reason (a comment too
    long, an entry that may not be reported). ``HistoryError`` when the entry cannot even be shown."""
    with services.db.unit_of_work() as db:
        try:
            report(db, actor, patient_id, entry_id, comment)
        except HistoryError as exc:
            return _report_page(db, actor, patient_id, entry_id, exc.message)
        return None


@dataclass(frozen=True)
class Alert:
    at: datetime
    kind: str  # urgence | premiere_consultation
    text: str


def alerts(db: Session, actor: Actor, patient_id: str, now: datetime | None = None) -> list[Alert]:
    """TRC-3 in the portal: emergency accesses and first consultations by professionals of the last 30 days.
    Shown to whoever may read the whole history (the policy decides; nothing is recorded for the others) —
    not to a professional who may read only their own actions."""
    decision = decide(actor, patient_id, Action.HISTORY_READ, Resource("history"), facts_for(db, actor, patient_id))
    if not decision.allowed or decision.scope == Scope.OWN_ACTIONS:
        return []
    since = (now or utcnow()) - ALERTS_FOR
    found = [
        Alert(
            urgent.at,
            "urgence",
            f"Accès en urgence ({urgent.kind}) par {urgent.professional} — motif : « {urgent.reason} »",
        )
        for urgent in history_facts.emergencies_since(db, patient_id, since)
    ]
    found += [
        Alert(
            first.at,
            "premiere_consultation",
            f"Première consultation de l'espace par {first.professional} ({first.profession.lower()})",
        )
        for first in history_facts.first_consultations_since(db, patient_id, since)
    ]
    return sorted(found, key=lambda alert: alert.at, reverse=True)
