"""The patient's history (TRC-2): audit entries told in plain French."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.orm import Session

from carnet.domain.actors import Actor
from carnet.domain.policy import Action, Resource
from carnet.services import audit
from carnet.services.hall import guard
from carnet.storage.tables import AuditEntry

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


@dataclass(frozen=True)
class HistoryLine:
    at: datetime
    who: str
    what: str
    denied: bool
    reason: str


def describe(entry: AuditEntry, viewer: Actor) -> HistoryLine:
    if viewer.id is not None and entry.actor_id == viewer.id:
        who = "Vous"
    else:
        kind = ACTOR_KINDS.get(entry.actor_kind, "")
        who = f"{entry.actor_label} ({kind})" if kind else entry.actor_label
    done, attempted = ACTIONS.get(entry.action, (f"a effectué l'action « {entry.action} »", entry.action))
    denied = entry.outcome == "deny"
    what = f"a tenté une {attempted} — refusée" if denied and entry.action != "auth.login_failed" else done
    return HistoryLine(entry.at, who, what, denied, entry.reason)


def read_history(db: Session, actor: Actor, patient_id: str, limit: int = 100) -> list[HistoryLine]:
    guard(db, actor, patient_id, Action.HISTORY_READ, Resource("history"))
    lines = [describe(entry, actor) for entry in audit.entries_for_patient(db, patient_id, limit=limit)]
    audit.record(db, actor, str(Action.HISTORY_READ), patient_id=patient_id, resource_type="history")
    return lines
