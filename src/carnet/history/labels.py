"""The words of the history (TRC-2): every action the audit log records, told in plain French.

Each action has two phrasings: what was done (« a consulté un document ») and what was attempted when
the policy refused it (« a tenté une consultation d'un document — refusée »: a feminine noun, after
« une »). Every action string recorded anywhere (``audit.record``, ``guard.refuse``, the policy's
``Action``) must have its words here: tests/history/test_labels.py reads the sources and checks it.

A capability may keep the words of its own actions in its service (``carnet.access.service.labels``):
``ACTIONS`` gathers them, and their ``KIND_ACTIONS`` join the history's filters.
"""

from __future__ import annotations

from typing import Final

from carnet.access.service import labels as access_labels
from carnet.agenda.service import labels as agenda_labels
from carnet.catalogue.service import labels as catalogue_labels
from carnet.messaging.service import labels as messaging_labels
from carnet.profile.service import labels as profile_labels

# each has ACTIONS, and may have KIND_ACTIONS (filter → actions) and DETAILED (action → words with its details)
CAPABILITY_WORDS: Final = (access_labels, profile_labels, agenda_labels, messaging_labels, catalogue_labels)

_WORDS: Final[dict[str, tuple[str, str]]] = {  # action: (what was done, what was attempted when refused)
    "auth.login": ("s'est connecté(e) à l'espace", "connexion"),
    "auth.login_failed": ("a échoué à se connecter (mot de passe incorrect)", "connexion"),
    "auth.mfa_failed": ("a échoué à se connecter (code de connexion incorrect)", "connexion"),
    "auth.logout": ("s'est déconnecté(e)", "déconnexion"),
    "auth.totp_enabled": ("a activé la validation par application d'authentification", "activation"),
    "auth.totp_disabled": ("a désactivé la validation par application d'authentification", "désactivation"),
    # issue #16-3: passkeys (WebAuthn)
    "auth.passkey_added": ("a ajouté une clé d'accès pour se connecter", "ajout d'une clé d'accès"),
    "auth.passkey_removed": ("a retiré une clé d'accès", "suppression d'une clé d'accès"),
    "auth.passkey_renamed": ("a renommé une clé d'accès", "modification d'une clé d'accès"),
    "auth.passkey_failed": ("a échoué à se connecter (clé d'accès refusée)", "connexion avec une clé d'accès"),
    "client.manage": ("a enregistré un logiciel autorisé à appeler l'API FHIR", "enregistrement d'un logiciel"),
    "history.read": ("a consulté l'historique", "consultation de l'historique"),
    "space.view": ("a ouvert l'espace santé", "ouverture de l'espace santé"),
    "space.export": ("a demandé ou téléchargé l'archive de l'espace", "demande d'archive de l'espace"),
    "space.find": ("a recherché l'espace santé", "recherche de l'espace santé"),
    "settings.read": ("a consulté les paramètres", "consultation des paramètres"),
    "settings.write": ("a modifié les paramètres", "modification des paramètres"),
    "space.created": ("a créé l'espace santé", "création de l'espace santé"),
    "space.open": ("a créé l'espace santé", "création de l'espace santé"),
    "space.import": ("a importé l'espace santé depuis l'archive d'un autre service Carnet", "import de l'espace"),
    "history.imported": ("— entrée importée d'un autre service Carnet", "import d'une entrée d'historique"),
    # ENR-1..6: enrolment, objection, activation, closing
    "enrolment.objection": ("s'est opposé(e) à la création de l'espace santé", "opposition"),
    "enrolment.objection_withdrawn": ("a retiré l'opposition à la création de l'espace santé", "retrait d'opposition"),
    "enrolment.object": (
        "a enregistré ou retiré une opposition à la création de l'espace santé",
        "démarche d'opposition",
    ),
    "enrolment.receipt_printed": ("a imprimé le récépissé d'opposition", "impression du récépissé"),
    "enrolment.letter_reprinted": ("a réimprimé le courrier d'invitation", "réimpression du courrier"),
    "enrolment.letter": ("a réimprimé le courrier d'invitation", "réimpression du courrier"),
    "enrolment.manage": (
        "a géré les campagnes d'ouverture des espaces santé",
        "gestion des campagnes d'ouverture",
    ),
    "campaign.started": (
        "a lancé une campagne d'ouverture des espaces santé",
        "gestion des campagnes d'ouverture",
    ),
    "letters.produced": ("a produit les courriers d'invitation d'une campagne", "production de courriers d'invitation"),
    "letters.downloaded": ("a téléchargé un lot de courriers d'invitation", "récupération de courriers d'invitation"),
    "registry.import": ("a importé le registre des assurés", "importation du registre des assurés"),
    "activation.new_code": ("a envoyé un nouveau code d'activation", "demande de nouveau code d'activation"),
    "space.activated": ("a activé l'espace santé", "activation de l'espace santé"),
    "space.closed": ("a fermé l'espace santé", "fermeture de l'espace santé"),
    "space.reopened": ("a rouvert l'espace santé", "réouverture de l'espace santé"),
    "space.deleted": ("a supprimé définitivement l'espace santé", "suppression de l'espace santé"),
    "space.purged": (
        "a détruit l'espace santé, fermé depuis plus de dix ans",
        "destruction de l'espace santé",
    ),
    "space.close": ("a fermé l'espace santé", "fermeture de l'espace santé"),
    "space.reopen": ("a rouvert l'espace santé", "réouverture de l'espace santé"),
    "space.delete": ("a supprimé l'espace santé", "suppression de l'espace santé"),
    # VLT-1..8: documents and folders
    "folder.create": ("a créé un dossier", "création d'un dossier"),
    "folder.write": ("a modifié un dossier", "modification d'un dossier"),
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
    # The directory of professionals and care teams (events about no patient; listed so that every action has words)
    "directory.professional_added": ("a ajouté un professionnel à l'annuaire", "modification de l'annuaire"),
    "directory.professional_updated": ("a mis à jour un professionnel de l'annuaire", "modification de l'annuaire"),
    "directory.establishment_added": ("a ajouté un établissement à l'annuaire", "modification de l'annuaire"),
    "directory.establishment_updated": (
        "a mis à jour un établissement de l'annuaire",
        "modification de l'annuaire",
    ),
    "directory.import": ("a importé l'annuaire des professionnels", "importation de l'annuaire"),
    "care_team.create": ("a créé une équipe de soins", "création d'une équipe de soins"),
    "care_team.member_add": ("a ajouté un membre à une équipe de soins", "modification d'une équipe de soins"),
    "care_team.member_remove": ("a retiré un membre d'une équipe de soins", "modification d'une équipe de soins"),
}
ACTIONS: Final[dict[str, tuple[str, str]]] = {
    **{action: phrases for module in CAPABILITY_WORDS for action, phrases in module.ACTIONS.items()},
    **_WORDS,
}
KIND_EXTRAS: Final[dict[str, set[str]]] = {}  # the history's filters, completed by the capabilities' words
for _module in CAPABILITY_WORDS:
    for _kind, _actions in getattr(_module, "KIND_ACTIONS", {}).items():
        KIND_EXTRAS.setdefault(_kind, set()).update(_actions)

DETAILED: Final[dict[str, str]] = {  # the same actions told with what the entry's details name (who, status, why)
    "space.export": "{fait}",
    "space.import": "a importé l'espace santé depuis l'archive d'un autre service Carnet ({documents} documents)",
    "history.imported": "{fait} — le {le}, entrée importée d'un autre service Carnet",
    "access.grant": "a autorisé {qui} — {statut}",
    "access.revoke": "a retiré l'accès de {qui} — {statut}",
    "access.block": "a bloqué {qui}",
    "access.unblock": "a débloqué {qui}",
    "family.caregiver_removed": "a retiré l'aidant {qui}",
    "access.consent_recorded": "a enregistré le consentement à l'accès à l'espace santé ({origine})",
    "emergency.access": "a accédé à l'espace santé en urgence ({type}) — motif : « {motif} »",
}
for _module in CAPABILITY_WORDS:
    DETAILED.update(getattr(_module, "DETAILED", {}))
ACTOR_KINDS: Final[dict[str, str]] = {
    "patient": "",
    "representative": "représentant légal",
    "caregiver": "aidant",
    "professional": "professionnel de santé",
    "establishment": "établissement",
    "app": "service connecté",
    "operator": "conseiller Carnet",
    "system": "",
}
PREFIXES: Final[dict[str, tuple[str, str]]] = {  # words for an entry whose action has none of its own
    "access.": ("a modifié les accès à l'espace santé", "modification des accès"),
    "family.": ("a modifié les représentants légaux ou les aidants", "gestion des représentants légaux et aidants"),
    "directory.": ("a modifié l'annuaire des professionnels", "modification de l'annuaire"),
    "emergency.": ("a accédé à l'espace santé en urgence", "demande d'accès en urgence"),
}


def words(action: str) -> tuple[str, str]:
    """What was done, and what was attempted, in French; a plain fallback for an action without words
    (tests/history/test_labels.py keeps every recorded action out of it)."""
    if action in ACTIONS:
        return ACTIONS[action]
    for prefix, found in PREFIXES.items():
        if action.startswith(prefix):
            return found
    return (f"a effectué l'action « {action} »", action)
