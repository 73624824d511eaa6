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
