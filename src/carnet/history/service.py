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
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, String, and_, cast, false, or_, select
from sqlalchemy.orm import Session

from carnet.access.service.grants import professional_name
from carnet.access.tables import EmergencyAccess, FirstAccess
from carnet.hall import audit
from carnet.hall.actors import Actor
from carnet.hall.guard import facts_for, guard
from carnet.hall.policy import Action, Resource, Scope, decide
from carnet.hall.tables import AuditEntry
from carnet.history.tables import AccessReport
from carnet.people.model.professions import profession_label
from carnet.people.tables import Account, Professional
from carnet.storage.types import utcnow
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document

ACTIONS = {  # action: (what was done, what was attempted when refused)
    "auth.login": ("s'est connecté(e) à l'espace", "connexion"),
    "auth.login_failed": ("a échoué à se connecter (mot de passe incorrect)", "connexion"),
    "auth.logout": ("s'est déconnecté(e)", "déconnexion"),
    "auth.totp_enabled": ("a activé la validation par application d'authentification", "activation"),
    "auth.totp_disabled": ("a désactivé la validation par application d'authentification", "désactivation"),
    "history.read": ("a consulté l'historique", "consultation de l'historique"),
    "space.view": ("a ouvert l'espace santé", "ouverture de l'espace santé"),
    "space.find": ("a recherché l'espace santé", "recherche de l'espace santé"),
    "settings.read": ("a consulté les paramètres", "consultation des paramètres"),
    "settings.write": ("a modifié les paramètres", "modification des paramètres"),
    "space.created": ("a créé l'espace santé", "création de l'espace santé"),
    "enrolment.objection": ("s'est opposé(e) à la création de l'espace santé", "opposition"),
    "enrolment.objection_withdrawn": ("a retiré l'opposition à la création de l'espace santé", "retrait d'opposition"),
    "enrolment.receipt_printed": ("a imprimé le récépissé d'opposition", "impression du récépissé"),
    "enrolment.letter_reprinted": ("a réimprimé le courrier d'invitation", "réimpression du courrier"),
    "space.activated": ("a activé l'espace santé", "activation de l'espace santé"),
    "space.closed": ("a fermé l'espace santé", "fermeture de l'espace santé"),
    "space.reopened": ("a rouvert l'espace santé", "réouverture de l'espace santé"),
    "space.deleted": ("a supprimé définitivement l'espace santé", "suppression de l'espace santé"),
    "folder.create": ("a créé un dossier", "création d'un dossier"),
    "document.deposit": ("a déposé un document", "dépôt d'un document"),
    "document.replace": ("a remplacé un document par une nouvelle version", "remplacement d'un document"),
    "document.search": ("a consulté la liste des documents", "consultation de la liste des documents"),
    "document.read": ("a consulté un document", "consultation d'un document"),
    "document.metadata": ("a consulté la description d'un document", "consultation d'un document"),
    "document.download": ("a téléchargé un document", "téléchargement d'un document"),
    "document.mask": ("a masqué un document aux professionnels", "masquage d'un document"),
    "document.unmask": ("a rendu un document visible aux professionnels", "démasquage d'un document"),
    "document.delete": ("a supprimé un document", "suppression d'un document"),
    "document.labels": ("a changé la confidentialité d'un document", "modification d'un document"),
    "document.entered_in_error": ("a annulé un document déposé par erreur", "annulation d'un document"),
    "document.revealed": ("a rendu visible un document après la consultation d'annonce", "révélation"),
    "document.update": ("a modifié un document", "modification d'un document"),
    "folder.write": ("a modifié un dossier", "modification d'un dossier"),
    "space.close": ("a fermé l'espace santé", "fermeture de l'espace santé"),
    "space.reopen": ("a rouvert l'espace santé", "réouverture de l'espace santé"),
    "space.delete": ("a supprimé l'espace santé", "suppression de l'espace santé"),
    # ACC-1..4: access to the space (refused attempts are recorded under the policy's action names)
    "access.grant": ("a autorisé un professionnel ou une équipe de soins", "modification des accès"),
    "access.revoke": ("a retiré une autorisation d'accès", "modification des accès"),
    "access.block": ("a bloqué un professionnel", "modification des accès"),
    "access.unblock": ("a débloqué un professionnel", "modification des accès"),
    "access.consent_recorded": (
        "a enregistré le consentement à l'accès à l'espace santé",
        "déclaration de consentement",
    ),
    "access.manage": ("a modifié les accès à l'espace santé", "modification des accès"),
    "consent.record": ("a enregistré le consentement à l'accès à l'espace santé", "déclaration de consentement"),
    "emergency.access": ("a accédé à l'espace santé en urgence", "demande d'accès en urgence"),
    "emergency.start": ("a accédé à l'espace santé en urgence", "demande d'accès en urgence"),
    "history.report": ("a signalé une entrée de l'historique", "démarche de signalement"),
    # FAM-1..3: legal representatives and caregivers
    "family.manage": ("a géré les représentants légaux et les aidants", "gestion des représentants légaux et aidants"),
    "family.representative_invited": ("a invité le second représentant légal", "invitation d'un représentant légal"),
    "family.representative_added": (
        "a accepté l'invitation et devient représentant légal dans l'espace santé",
        "acceptation d'une invitation",
    ),
    "family.caregiver_invited": ("a invité un aidant", "invitation d'un aidant"),
    "family.caregiver_added": (
        "a accepté l'invitation et devient aidant dans l'espace santé",
        "acceptation d'une invitation",
    ),
    "family.invitation_cancelled": ("a annulé une invitation", "annulation d'une invitation"),
    "family.accept": ("a accepté une invitation", "acceptation d'une invitation"),
    "family.caregiver_removed": ("a retiré un aidant", "gestion des aidants"),
    "family.majority": (
        "a confié l'espace santé à la personne devenue majeure : ses représentants légaux n'y ont plus accès",
        "prise en main à la majorité",
    ),
    # The directory of professionals (events about no patient; listed here so that every action has words)
    "directory.professional_added": ("a ajouté un professionnel à l'annuaire", "modification de l'annuaire"),
    "directory.professional_updated": ("a mis à jour un professionnel de l'annuaire", "modification de l'annuaire"),
    "directory.import": ("a importé l'annuaire des professionnels", "importation de l'annuaire"),
    "care_team.create": ("a créé une équipe de soins", "création d'une équipe de soins"),
    "care_team.member_add": ("a ajouté un membre à une équipe de soins", "modification d'une équipe de soins"),
    "care_team.member_remove": ("a retiré un membre d'une équipe de soins", "modification d'une équipe de soins"),
}
DETAILED = {  # the same actions told with what the audit entry's details name (who, which status, why)
    "access.grant": "a autorisé {qui} — {statut}",
    "access.revoke": "a retiré l'accès de {qui} — {statut}",
    "access.block": "a bloqué {qui}",
    "access.unblock": "a débloqué {qui}",
    "family.caregiver_removed": "a retiré l'aidant {qui}",
    "access.consent_recorded": "a enregistré le consentement à l'accès à l'espace santé ({origine})",
    "emergency.access": "a accédé à l'espace santé en urgence ({type}) — motif : « {motif} »",
}
ACTOR_KINDS = {
    "patient": "",
    "representative": "représentant légal",
    "caregiver": "aidant",
    "professional": "professionnel de santé",
    "establishment": "établissement",
    "app": "service connecté",
    "operator": "conseiller Carnet",
    "system": "",
}
PREFIXES = {  # words for actions added later under a known family of actions
    "access.": ("a modifié les accès à l'espace santé", "modification des accès"),
    "family.": ("a modifié les représentants légaux ou les aidants", "gestion des représentants légaux et aidants"),
    "directory.": ("a modifié l'annuaire des professionnels", "modification de l'annuaire"),
    "emergency.": ("a accédé à l'espace santé en urgence", "demande d'accès en urgence"),
}

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
KIND_PREFIXES = {"acces": ("family.", "access.")}
LIMIT = 100
EMERGENCY_SHOWN_FOR = timedelta(days=365)
ALERTS_FOR = timedelta(days=30)
COMMENT_MAX = 1000
REPORTED = "Votre signalement a été transmis."


class HistoryError(ValueError):
    """A request about the history that cannot be done; ``message`` is French, ``status`` the HTTP answer."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
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


def _words(action: str) -> tuple[str, str]:
    if action in ACTIONS:
        return ACTIONS[action]
    for prefix, words in PREFIXES.items():
        if action.startswith(prefix):
            return words
    return (f"a effectué l'action « {action} »", action)


def _detailed(entry: AuditEntry) -> str | None:
    template = DETAILED.get(entry.action)
    details: dict[str, Any] = entry.details if isinstance(entry.details, dict) else {}
    if template is None:
        return None
    try:
        return template.format_map({k: str(v) for k, v in details.items()})
    except (KeyError, ValueError):
        return None


def describe(entry: AuditEntry, viewer: Actor, own: set[str] | None = None, reported: bool = False) -> HistoryLine:
    if viewer.id is not None and entry.actor_id == viewer.id:
        who = "Vous"
    else:
        kind = ACTOR_KINDS.get(entry.actor_kind, "")
        who = f"{entry.actor_label} ({kind})" if kind else entry.actor_label
    done, attempted = _words(entry.action)
    denied = entry.outcome == "deny"
    if denied and entry.action != "auth.login_failed":
        what = f"a tenté une {attempted} — refusée"
    else:
        what = _detailed(entry) or done
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


def _unseen_documents(db: Session, actor: Actor, patient_id: str) -> set[str]:
    """Documents the viewer may not read (FAM-2, VLT-6): the history says nothing of them — not their
    deposit, not a refused look — so that it reads as if they did not exist (the audit keeps everything).
    Only labelled documents can be hidden from the patient's side (INVISIBLE_PATIENT,
    INVISIBLE_REPRESENTANTS_LEGAUX), so only those are put to the policy."""
    labelled = cast(Document.confidentiality, String).like("%INVISIBLE%")
    candidates = db.scalars(select(Document).where(Document.patient_id == patient_id, labelled))
    facts = facts_for(db, actor, patient_id)
    now = utcnow()
    return {
        document.id
        for document in candidates
        if not decide(actor, patient_id, Action.DOCUMENT_READ, vault.resource_of(document, now), facts).allowed
    }


def history_view(db: Session, actor: Actor, patient_id: str, query: HistoryQuery | None = None) -> HistoryView:
    """TRC-2: one tab of the history, filtered, with the emergency accesses on top whatever the tab.

    The policy decides who reads it and which entries (the decision's scope, applied here as the vault
    applies a search's): the person, their legal representatives and caregivers, the médecin traitant or
    an administrator (``Scope.ALL``) read the whole history — minus what concerns documents they may not
    see; any other professional (``Scope.OWN_ACTIONS``) reads only the entries recorded under their own
    id: what they did in the portal (look-ups, refused attempts, deposits, consultations). Actions of their
    software are recorded under the API client's id, so they are not among them.
    """
    query = query or HistoryQuery()
    decision = guard(db, actor, patient_id, Action.HISTORY_READ, Resource("history"))
    own_actions = decision.scope == Scope.OWN_ACTIONS
    own = _own_accounts(db, patient_id)
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
    unseen = _unseen_documents(db, actor, patient_id)
    if unseen:
        select_entries = select_entries.where(
            or_(AuditEntry.resource_id.is_(None), AuditEntry.resource_id.not_in(unseen))
        )
    entries = list(db.scalars(select_entries.order_by(AuditEntry.seq.desc()).limit(query.limit + 1)))
    more = len(entries) > query.limit
    entries = entries[: query.limit]
    reported = _reported_ids(db, patient_id, [entry.id for entry in entries])
    lines = [describe(entry, actor, own, entry.id in reported) for entry in entries]
    urgent = emergencies(db, patient_id, utcnow() - EMERGENCY_SHOWN_FOR, actor if own_actions else None)
    can_report = _may(db, actor, patient_id, Action.HISTORY_REPORT, Resource("history"))
    audit.record(db, actor, str(Action.HISTORY_READ), patient_id=patient_id, resource_type="history")
    return HistoryView(lines, urgent, can_report, more, own_actions)


def read_history(db: Session, actor: Actor, patient_id: str, limit: int = LIMIT) -> list[HistoryLine]:
    """The history the policy lets ``actor`` read, most recent first (every tab): the whole of it, or a
    professional's own actions (see ``history_view``)."""
    return history_view(db, actor, patient_id, HistoryQuery(limit=limit)).lines


def _entry_of(db: Session, actor: Actor, patient_id: str, entry_id: int) -> tuple[AuditEntry, set[str]]:
    guard(db, actor, patient_id, Action.HISTORY_REPORT, Resource("history"))
    entry = db.get(AuditEntry, entry_id)
    if entry is None or entry.chain != patient_id:
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


def report(db: Session, actor: Actor, patient_id: str, entry_id: int, comment: str = "") -> AccessReport:
    """TRC-2: the person reports an access or an action they find suspicious; stored for the service's
    staff, recorded in the history (without the comment, which may speak of health)."""
    comment = comment.strip()
    if len(comment) > COMMENT_MAX:
        raise HistoryError(f"Votre commentaire dépasse {COMMENT_MAX} caractères : raccourcissez-le.")
    entry, _ = _entry_of(db, actor, patient_id, entry_id)
    existing = db.scalar(
        select(AccessReport).where(AccessReport.patient_id == patient_id, AccessReport.audit_entry_id == entry.id)
    )
    if existing is not None:
        return existing
    row = AccessReport(patient_id=patient_id, audit_entry_id=entry.id, comment=comment, reported_by=actor.label)
    db.add(row)
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
    return row


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
    found: list[Alert] = []
    urgent = db.execute(
        select(EmergencyAccess, Professional)
        .join(Professional, Professional.id == EmergencyAccess.professional_id)
        .where(EmergencyAccess.patient_id == patient_id, EmergencyAccess.started_at >= since)
        .order_by(EmergencyAccess.started_at.desc())
        .limit(20)
    )
    for row, pro in urgent:
        kind = "SAMU" if row.kind == "samu" else "bris de glace"
        text = f"Accès en urgence ({kind}) par {professional_name(pro)} — motif : « {row.reason} »"
        found.append(Alert(row.started_at, "urgence", text))
    first = db.execute(
        select(FirstAccess, Professional)
        .join(Professional, Professional.id == FirstAccess.professional_id)
        .where(FirstAccess.patient_id == patient_id, FirstAccess.at >= since)
        .order_by(FirstAccess.at.desc())
        .limit(20)
    )
    for consulted, by in first:
        who = f"{professional_name(by)} ({profession_label(by.profession_code).lower()})"
        found.append(Alert(consulted.at, "premiere_consultation", f"Première consultation de l'espace par {who}"))
    return sorted(found, key=lambda alert: alert.at, reverse=True)
