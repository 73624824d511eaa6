"""The single access-decision point (ACC-5).

``decide`` is pure: the service layer gathers the ``Facts`` about the actor and the patient
(from storage) and asks; the answer says allow/deny and, always, why. Rules are tried in
order and the first one that has an opinion wins; when none has, access is denied.
Consent, médecin traitant, blocking, emergency, legal representatives and caregivers are rules
here over facts in ``Facts``; later capabilities (apps) add theirs the same way — never a check of
their own in a route or a query. A search is decided once: the decision carries the scope (and,
for professionals, the categories and whether masked documents count) that the query applies.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from carnet.access.model import matrix as access_matrix
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import PatientStatus
from carnet.profile.model.sections import profile_sections_for


class Action(StrEnum):
    """What an actor wants to do to a patient's space."""

    SPACE_VIEW = "space.view"
    HISTORY_READ = "history.read"
    SETTINGS_READ = "settings.read"
    SETTINGS_WRITE = "settings.write"
    SPACE_FIND = "space.find"
    DOCUMENT_DEPOSIT = "document.deposit"
    DOCUMENT_SEARCH = "document.search"
    DOCUMENT_READ = "document.read"
    DOCUMENT_MASK = "document.mask"
    DOCUMENT_DELETE = "document.delete"
    DOCUMENT_UPDATE = "document.update"
    FOLDER_WRITE = "folder.write"
    SPACE_CLOSE = "space.close"
    SPACE_REOPEN = "space.reopen"
    SPACE_DELETE = "space.delete"
    ENROLMENT_MANAGE = "enrolment.manage"  # campaigns, progress, letter batches (the service-wide "-" space)
    ENROLMENT_OBJECT = "enrolment.object"  # record or withdraw an objection to the creation of a space
    ENROLMENT_LETTER = "enrolment.letter"  # print one person's invitation letter again (it carries the code)
    SPACE_OPEN = "space.open"  # create (open) a registered person's space: after 6 weeks, or by an operator
    ACCESS_MANAGE = "access.manage"  # authorise, revoke, block, unblock, médecin traitant, administrators
    CONSENT_RECORD = "consent.record"  # a professional records the patient's consent (oral, or over FHIR)
    CONSENT_READ = "consent.read"  # a professional reads back the consents that authorise them (over FHIR)
    EMERGENCY_START = "emergency.start"  # break-the-glass, or the SAMU regulator on a call
    FAMILY_MANAGE = "family.manage"  # invite the second legal representative, invite or remove caregivers
    HISTORY_REPORT = "history.report"  # report a suspicious entry of the history
    CARE_TEAM_MANAGE = "care_team.manage"  # create a care team, add or remove a member (the service-wide "-" space)
    DIRECTORY_MANAGE = "directory.manage"  # add or update a professional, import the Annuaire Santé (idem)
    CLIENT_MANAGE = "client.manage"  # register a system (establishment, professional's software) for the FHIR API
    PROFILE_READ = "profile.read"  # the medical profile (PRF-1..3): a section's items, or one item
    PROFILE_WRITE = "profile.write"  # add an item or a measure; correct or delete one already there
    PROFILE_MASK = "profile.mask"  # the person masks (or shows again) an item a professional entered
    AGENDA_READ = "agenda.read"  # the agenda (AGD-1): appointments and reminders, the calendar feed
    AGENDA_WRITE = "agenda.write"  # add, change or cancel an appointment or a reminder; manage the feed
    PREVENTION_READ = "prevention.read"  # the recommended examinations and vaccines (AGD-2)
    PREVENTION_WRITE = "prevention.write"  # the person says an examination was done, or not done
    MESSAGE_READ = "message.read"  # the conversations (MSG-1): the list, one conversation, its attachments
    MESSAGE_WRITE = "message.write"  # start a conversation, answer in one, delete one from the space
    MESSAGE_CLOSE = "message.close"  # the professional ends a conversation (« X a mis fin à vos échanges »)
    SPACE_EXPORT = "space.export"  # ENR-7: ask for, and download, the archive of the whole space
    APP_CONNECT = "app.connect"  # CAT-2: connect an app to the space, disconnect it, report it
    APP_MANAGE = "app.manage"  # CAT-1: register an app, review it, publish, suspend, dereference, renew


DOCUMENT_ACTIONS = {a for a in Action if a.value.startswith("document.")}
ENROLMENT_ACTIONS = {Action.ENROLMENT_MANAGE, Action.ENROLMENT_OBJECT, Action.ENROLMENT_LETTER, Action.SPACE_OPEN}
OPERATOR_ACTIONS = {Action.CARE_TEAM_MANAGE, Action.DIRECTORY_MANAGE, Action.CLIENT_MANAGE, Action.APP_MANAGE}
CONSENT_ACTIONS = {Action.CONSENT_RECORD, Action.CONSENT_READ}
PROFILE_ACTIONS = {Action.PROFILE_READ, Action.PROFILE_WRITE, Action.PROFILE_MASK}
AGENDA_ACTIONS = {Action.AGENDA_READ, Action.AGENDA_WRITE, Action.PREVENTION_READ, Action.PREVENTION_WRITE}
MESSAGE_ACTIONS = {Action.MESSAGE_READ, Action.MESSAGE_WRITE, Action.MESSAGE_CLOSE}
# MSG-1, MSG-2: acts of the people of the space on their messaging, never of the correspondent (``MESSAGE_WRITE`` on
# a resource of these types): deleting a conversation, filing an attachment into the documents
SPACE_ONLY_MESSAGE_ACTS = {"message_thread_deletion", "message_attachment_filing"}


@dataclass(frozen=True)
class Resource:
    """What is acted on; for a document, who wrote it and how it is labelled."""

    type: str
    id: str | None = None
    author_id: str | None = None
    source: str | None = None
    labels: frozenset[str] = frozenset()
    hidden_from_patient: bool = False
    category: str | None = None  # a document's category; a profile item's section

    @property
    def is_item(self) -> bool:
        """One item already in the profile (not the profile as a whole, nor a new item)."""
        return self.type == "profile_item" and self.id is not None

    @property
    def is_event(self) -> bool:
        """One appointment or reminder already in the agenda (not the agenda as a whole, nor a new one)."""
        return self.type == "agenda_event" and self.id is not None

    @property
    def is_thread(self) -> bool:
        """One conversation already there (not the messaging as a whole, nor a conversation to start)."""
        return self.type == "message_thread" and self.id is not None

    @property
    def masked(self) -> bool:
        return "MASQUE_PS" in self.labels


@dataclass(frozen=True)
class Facts:
    """What the service layer knows about the actor and the patient when it asks."""

    patient_exists: bool = True
    patient_status: str = PatientStatus.ACTIVE
    legal_representative: bool = False  # a legal representative of this minor (FAM-1)
    caregiver: bool = False  # a caregiver the person chose (FAM-3)
    consent: bool = False  # an active authorisation of the professional, or of a care team they are in (ACC-1)
    administrator: bool = False  # médecin traitant, or given the same status by the patient (ACC-2)
    blocked: bool = False  # the patient blocked this professional (ACC-3)
    emergency: str | None = None  # an active emergency access of this professional: bris_de_glace | samu
    samu_regulator: bool = False  # the professional is a SAMU regulator
    emergency_samu: bool = True  # the patient's three emergency toggles (ACC-4)
    emergency_professionals: bool = True
    emergency_masked: bool = False
    app_connected: bool = False  # CAT-3: a live consent of this space to this app, and the app EN_LIGNE


class Scope(StrEnum):
    """Which documents a search may return — or, for ``HISTORY_READ``, which entries of the history
    may be read — as decided by the policy (applied by the query)."""

    PATIENT = "patient"  # the patient's own view: all but those still hidden from the patient
    AUTHORED = "authored"  # only documents the actor wrote
    REPRESENTATIVE = "representative"  # the patient's view minus INVISIBLE_REPRESENTANTS_LEGAUX
    PROFESSIONAL = "professional"  # what the actor wrote + the decision's categories (and masked ones if said)
    OWN_ACTIONS = "own_actions"  # the history (TRC-2): only the entries of the actor's own actions in the space
    ALL = "all"


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str
    rule: str
    scope: Scope | None = None
    categories: frozenset[str] | None = None  # Scope.PROFESSIONAL: the categories seen (None: all)
    include_masked: bool = False  # Scope.PROFESSIONAL: documents the patient masked are seen too

    def __bool__(self) -> bool:
        return self.allowed


Rule = Callable[[Actor, str, Action, Resource | None, Facts], Decision | None]


def _allow(rule: str, reason: str, scope: Scope | None = None) -> Decision:
    return Decision(True, reason, rule, scope)


def _deny(rule: str, reason: str) -> Decision:
    return Decision(False, reason, rule)


def rule_owner_lifecycle(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ENR-6: only the person closes, reopens or deletes their space — a closed one included."""
    if action not in {Action.SPACE_CLOSE, Action.SPACE_REOPEN, Action.SPACE_DELETE}:
        return None
    if actor.kind != ActorKind.PATIENT or actor.patient_id != patient_id or not facts.patient_exists:
        return _deny(
            "lifecycle_owner_only", "Seule la personne elle-même peut fermer, rouvrir ou supprimer son espace."
        )
    allowed_from = {
        Action.SPACE_CLOSE: {PatientStatus.ACTIVE},
        Action.SPACE_REOPEN: {PatientStatus.CLOSED},
        Action.SPACE_DELETE: {PatientStatus.ACTIVE, PatientStatus.CLOSED},
    }[action]
    if facts.patient_status not in allowed_from:
        return _deny("lifecycle_state", "Cette action n'est pas possible dans l'état actuel de l'espace.")
    return _allow("lifecycle_owner", "La personne gère la vie de son espace.")


def rule_enrolment(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ENR-2, ENR-3: enrolment happens before a space is open, so this rule decides whatever the status.

    Operators and the service's automatic work run campaigns, record objections, print letters and
    open spaces; the person (or their legal representative), identified by the activation code and
    their identity traits, objects or withdraws an objection for themselves only.
    """
    if action not in ENROLMENT_ACTIONS:
        return None
    if action != Action.ENROLMENT_MANAGE and not facts.patient_exists:
        return _deny("unknown_space", "Cet espace n'existe pas ou n'est pas ouvert.")
    if actor.kind in {ActorKind.OPERATOR, ActorKind.SYSTEM}:
        return _allow("enrolment_operator", "Les conseillers gèrent les campagnes, les oppositions et l'ouverture.")
    own = actor.patient_id == patient_id and actor.kind in {ActorKind.PATIENT, ActorKind.REPRESENTATIVE}
    if action == Action.ENROLMENT_OBJECT and own:
        return _allow("enrolment_self", "La personne (ou son représentant légal) décide pour elle-même.")
    return _deny("enrolment_operators_only", "Seuls les conseillers du service peuvent effectuer cette action.")


def rule_operator_work(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ACC-1: the service's operators (and its automatic work) keep the directory of professionals and the care
    teams that patients authorise; these concern no one's space, so this rule decides whatever the status."""
    if action not in OPERATOR_ACTIONS:
        return None
    if actor.kind in {ActorKind.OPERATOR, ActorKind.SYSTEM}:
        return _allow(
            "directory_operator", "Les conseillers du service tiennent l'annuaire des professionnels et les équipes."
        )
    return _deny(
        "directory_operators_only",
        "Seuls les conseillers du service tiennent l'annuaire des professionnels et les équipes de soins.",
    )


def rule_consents(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ACC-1: a consent collected by a professional is recorded, and read back, by an identified professional
    only — whatever the space, so that anyone else learns nothing about it — and for themselves only: a
    ``Resource("consent")`` names (``author_id``) the professional the consent authorises. What remains (an
    open space, a block) is decided by the rules below."""
    if action not in CONSENT_ACTIONS:
        return None
    if actor.kind != ActorKind.PROFESSIONAL or not actor.professional_id:
        return _deny("professionals_only", "Seul un professionnel de santé identifié peut faire cette démarche.")
    if resource is not None and resource.type == "consent" and resource.author_id != actor.professional_id:
        return _deny(
            "consent_not_own", "Un professionnel n'enregistre et ne lit que les consentements qui l'autorisent."
        )
    return None


def rule_operator_no_health_data(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """Operators manage enrolment (above) and never see documents, history or settings."""
    if actor.kind == ActorKind.OPERATOR:
        return _deny("operator_no_health_data", "Un conseiller n'accède jamais aux données de santé ni à l'historique.")
    return None


# CAT-3: what a connected app may do in the space that connected it (its scopes narrowed the FHIR calls already)
APP_ACTS = {
    Action.SPACE_FIND,
    Action.DOCUMENT_SEARCH,
    Action.DOCUMENT_READ,
    Action.DOCUMENT_DEPOSIT,
    Action.PROFILE_READ,
    Action.PROFILE_WRITE,
    Action.AGENDA_READ,
    Action.AGENDA_WRITE,
}


def rule_apps(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """CAT-3: a connected app acts only in the one space whose person consented (``actor.patient_id``), only
    while that consent is live and the app EN_LIGNE, only for the acts of ``APP_ACTS``: it reads what the person
    reads (never what is still hidden from them) and adds; it changes only what it added itself."""
    if actor.kind != ActorKind.APP:
        return None
    if actor.patient_id != patient_id:
        return _deny("app_other_space", "Une application n'agit que dans l'espace de la personne qui l'a autorisée.")
    if not facts.app_connected:
        return _deny(
            "app_not_connected", "L'application a été déconnectée de cet espace, ou elle n'est plus référencée."
        )
    if action not in APP_ACTS:
        return _deny("app_act_refused", "Une application connectée ne peut pas effectuer cette action.")
    if resource is not None and resource.hidden_from_patient:
        return _deny("invisible_patient", "Ce document sera visible après la consultation d'annonce.")
    changes = action in {Action.PROFILE_WRITE, Action.AGENDA_WRITE}
    if changes and resource is not None and (resource.is_item or resource.is_event) and resource.author_id != actor.id:
        return _deny("app_not_author", "Une application ne modifie que ce qu'elle a elle-même ajouté.")
    return _allow("app_connected", "La personne a connecté cette application à son espace (CAT-3).", Scope.PATIENT)


def space_is_open(status: str) -> bool:
    """Only an open (active) space can be used: any other is answered like an unknown one."""
    return status == PatientStatus.ACTIVE


def rule_unknown_space(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if not facts.patient_exists or not space_is_open(facts.patient_status):
        return _deny("unknown_space", "Cet espace n'existe pas ou n'est pas ouvert.")
    return None


def author_keys(actor: Actor) -> set[str]:
    """The identities under which an actor's documents are filed (a professional, an establishment)."""
    return {key for key in (actor.professional_id, actor.establishment_id) if key}


PROFESSIONAL_ACTS = {Action.CONSENT_RECORD, Action.EMERGENCY_START}


def rule_professional_acts(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ACC-1, ACC-4: recording a consent and starting an emergency access are acts of an identified professional."""
    if action in PROFESSIONAL_ACTS and actor.kind != ActorKind.PROFESSIONAL:
        return _deny("professionals_only", "Seul un professionnel de santé identifié peut faire cette démarche.")
    return None


def rule_patient_documents(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """VLT-5..7 for the patient in their own space."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id != patient_id or action not in DOCUMENT_ACTIONS:
        return None
    if action == Action.DOCUMENT_SEARCH:
        return _allow("patient_documents", "La personne consulte ses documents.", Scope.PATIENT)
    if resource is not None and resource.hidden_from_patient and action != Action.DOCUMENT_DEPOSIT:
        return _deny("invisible_patient", "Ce document sera visible après la consultation d'annonce.")
    if action == Action.DOCUMENT_DELETE and resource is not None and resource.source != "patient":
        return _deny(
            "professional_document_kept",
            "Un document déposé par un professionnel ne peut pas être supprimé : vous pouvez le masquer.",
        )
    if action == Action.DOCUMENT_UPDATE and resource is not None and resource.source != "patient":
        return _deny("not_author", "Seul l'auteur d'un document peut le corriger ou le remplacer.")
    return _allow("patient_documents", "La personne agit sur ses documents.")


def rule_profile_people(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """PRF-1 for the people of the space (the person, a legal representative, a caregiver): what someone of
    the space entered they correct and delete; what a professional entered is kept, and may be masked."""
    own = actor.kind == ActorKind.PATIENT and actor.patient_id == patient_id
    helper = actor.kind == ActorKind.PATIENT and (facts.legal_representative or facts.caregiver)
    if action not in PROFILE_ACTIONS or not (own or helper):
        return None
    if resource is not None and resource.is_item:
        from_space = resource.source == "patient"
        if action == Action.PROFILE_WRITE and not from_space:
            return _deny(
                "professional_item_kept",
                "Un élément saisi par un professionnel ne peut être ni modifié ni supprimé : vous pouvez le masquer.",
            )
        if action == Action.PROFILE_MASK and from_space:
            return _deny(
                "own_item_not_masked",
                "Ce que vous avez saisi se modifie ou se supprime ; seuls les éléments des professionnels se masquent.",
            )
    if own:
        scope = Scope.PATIENT if action == Action.PROFILE_READ else None
        return _allow("patient_profile", "La personne tient son profil médical.", scope)
    return None


def emergency_permitted(facts: Facts, samu: bool) -> bool:
    """ACC-4: the patient's toggle for this kind of emergency access."""
    return facts.emergency_samu if samu else facts.emergency_professionals


def standing(facts: Facts) -> str | None:
    """How a professional may read this space: administrator > emergency > consent; blocked: none."""
    if facts.blocked:
        return None
    if facts.administrator:
        return "administrator"
    if facts.emergency and emergency_permitted(facts, facts.emergency == "samu"):
        return "emergency"
    if facts.consent:
        return "consent"
    return None


READING_REASONS = {
    "administrator": "Médecin traitant ou professionnel administrateur de l'espace.",
    "emergency": "Accès en urgence.",
    "consent": "La personne a autorisé ce professionnel.",
}


def _professional_profile(
    actor: Actor, action: Action, resource: Resource | None, facts: Facts, person: bool
) -> Decision:
    """PRF-1..3, ACC-1..4 on the profile: professionals (and establishments) feed it like the vault (VLT-2) and
    correct what they entered; reading takes a standing, and the profession's sections (``profile_access.json``)."""
    item = resource is not None and resource.is_item
    authored = resource is not None and item and bool(resource.author_id) and resource.author_id in author_keys(actor)
    if action == Action.PROFILE_MASK:
        return _deny("patient_masks", "Seule la personne ou son représentant masque un élément de son profil.")
    if action == Action.PROFILE_WRITE:
        if not item:
            return _allow("professional_profile_feed", "Les professionnels alimentent le profil médical.")
        if authored:
            return _allow("profile_author", "L'auteur corrige ce qu'il a saisi.")
        return _deny("not_author", "Seul l'auteur d'un élément du profil peut le corriger ou le supprimer.")
    if authored:
        return _allow("profile_author", "L'auteur consulte ce qu'il a saisi.")
    level = standing(facts) if person else None
    if level is None:
        if not item:
            return _allow("professional_own_items", "Profil limité aux éléments saisis par l'auteur.", Scope.AUTHORED)
        return _no_standing(facts)
    sections = None if level == "administrator" else profile_sections_for(actor.profession_code)
    include_masked = level == "administrator" or (level == "emergency" and facts.emergency_masked)
    if not item:
        return Decision(
            True, READING_REASONS[level], f"professional_{level}", Scope.PROFESSIONAL, sections, include_masked
        )
    assert resource is not None
    if sections is not None and resource.category not in sections:
        return _deny("profile_matrix", "Votre profession n'a pas accès à cette partie du profil.")
    if resource.masked and not include_masked:
        return _deny("masked", "La personne a masqué cet élément aux professionnels.")
    return _allow(f"professional_{level}", READING_REASONS[level])


def _professional_agenda(
    actor: Actor, action: Action, resource: Resource | None, facts: Facts, person: bool
) -> Decision:
    """AGD-1, AGD-2: a professional or an establishment puts an appointment in any open space (like a deposit)
    and reads, changes or cancels only the ones they put there — the person's agenda stays the person's.
    The recommended examinations are read with a standing, by a profession that reads the vaccinations; what
    was done is said by the person (or recorded in the profile and the vault), never by a professional here."""
    if action == Action.PREVENTION_WRITE:
        return _deny("patient_answers", "Seule la personne ou son représentant indique ce qui a été fait.")
    if action == Action.PREVENTION_READ:
        level = standing(facts) if person else None
        if level is None:
            return _no_standing(facts)
        sections = None if level == "administrator" else profile_sections_for(actor.profession_code)
        if sections is not None and "vaccinations" not in sections:
            return _deny("profile_matrix", "Votre profession n'a pas accès aux vaccinations et dépistages.")
        return _allow(f"professional_{level}", READING_REASONS[level])
    if resource is not None and resource.type == "agenda_feed":
        return _deny("feed_people_only", "Seules la personne et ses proches gèrent les liens d'abonnement à l'agenda.")
    event = resource is not None and resource.is_event
    if not event:
        if action == Action.AGENDA_WRITE:
            return _allow("professional_agenda_feed", "Les professionnels proposent des rendez-vous.")
        return _allow("professional_own_events", "Agenda limité aux rendez-vous de l'auteur.", Scope.AUTHORED)
    assert resource is not None
    if resource.author_id and resource.author_id in author_keys(actor):
        return _allow("agenda_author", "L'auteur gère le rendez-vous qu'il a donné.")
    return _deny("not_author", "L'agenda de la personne ne se consulte pas : seuls vos propres rendez-vous.")


def _professional_messages(actor: Actor, action: Action, resource: Resource | None, facts: Facts) -> Decision:
    """MSG-1: a professional or an establishment starts a conversation with any open space — unless the person
    blocked them — and reads, answers and closes only their own conversations (``author_id`` of a thread: its
    professional or establishment). A closed conversation is read, not answered."""
    if resource is not None and resource.type in SPACE_ONLY_MESSAGE_ACTS:
        return _deny(
            "space_only", "Seule la personne (ou son représentant) supprime un échange ou en classe une pièce jointe."
        )
    if facts.blocked:
        return _deny("blocked", "La personne vous a bloqué : vous ne pouvez plus lui écrire.")
    if resource is None or not resource.is_thread:
        if action == Action.MESSAGE_WRITE:
            return _allow("professional_writes", "Les professionnels et les établissements écrivent aux patients.")
        return _allow("professional_own_threads", "Messagerie limitée à vos propres échanges.", Scope.AUTHORED)
    if not resource.author_id or resource.author_id not in author_keys(actor):
        return _deny("not_correspondent", "Cet échange ne vous concerne pas.")
    if action == Action.MESSAGE_WRITE and resource.source == "clos":
        return _deny("thread_closed", "Vous avez mis fin à cet échange : écrivez un nouveau message.")
    return _allow("correspondent", "Le professionnel correspond avec la personne.")


def rule_messages_people(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """MSG-1 for the people of the space: the person — or, for a minor, a legal representative — reads the
    conversations and answers in them, or writes again (a new conversation) to a professional who already wrote
    (``source`` "correspondant" of the resource); only the professional closes one, and a closed one is not answered.
    Caregivers do not read the messaging: it stays personal correspondence (docs/decisions.md)."""
    if action not in MESSAGE_ACTIONS or actor.kind != ActorKind.PATIENT:
        return None
    own = actor.patient_id == patient_id
    if not own and not facts.legal_representative:
        if facts.caregiver:
            return _deny("messages_personal", "La messagerie reste personnelle : un aidant n'y a pas accès.")
        return None
    if action == Action.MESSAGE_CLOSE:
        return _deny("professional_closes", "Seul le professionnel met fin à un échange.")
    if action == Action.MESSAGE_WRITE and resource is not None:
        if resource.is_thread and resource.source == "clos":
            return _deny("thread_closed", "Cet échange est terminé : vous pouvez écrire à nouveau à ce professionnel.")
        if not resource.is_thread and resource.type == "message_thread" and resource.source != "correspondant":
            return _deny(
                "professionals_start",
                "Seuls les professionnels et les établissements commencent un échange : vous écrivez à ceux qui "
                "vous ont déjà écrit.",
            )
    if own:
        return _allow("patient_messages", "La personne correspond avec ses soignants.")
    return _allow(
        "legal_representative", "Le représentant légal agit dans l'espace de la personne.", Scope.REPRESENTATIVE
    )


def _no_standing(facts: Facts) -> Decision:
    if facts.blocked:
        return _deny("blocked", "La personne vous a bloqué : vous ne pouvez plus consulter son espace santé.")
    return _deny("no_consent", "La personne ne vous a pas autorisé à consulter son espace santé.")


def rule_professional(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """ACC-1..4 and VLT-2: professionals feed any open space (even when blocked) and read what they wrote;
    reading more takes consent (the profession's categories), an emergency access the patient allows
    (the profession's categories, masked documents if the patient allows that too) or the médecin traitant
    / administrator status (everything, masked documents included). Blocking stops all reading. The history
    (TRC-2): the médecin traitant / administrator reads all of it, any other professional their own actions;
    establishments do not read it."""
    if actor.kind not in {ActorKind.PROFESSIONAL, ActorKind.ESTABLISHMENT}:
        return None
    person = actor.kind == ActorKind.PROFESSIONAL
    if action == Action.DOCUMENT_DEPOSIT:
        return _allow("professional_deposit", "Les professionnels alimentent l'espace santé.")
    if action == Action.SPACE_FIND:
        return _allow("professional_find", "Un professionnel vérifie l'existence de l'espace et ses droits.")
    if action == Action.CONSENT_READ:  # an identified professional, their own consents (rule_consents)
        return _allow("consent_read", "Le professionnel relit les consentements qui l'autorisent.")
    if action in PROFESSIONAL_ACTS:  # an identified professional (rule_professional_acts)
        if facts.blocked:
            return _deny("blocked", "La personne vous a bloqué : seule elle peut vous autoriser à nouveau.")
        if action == Action.CONSENT_RECORD:
            return _allow("consent_record", "Le professionnel enregistre le consentement de la personne.")
        if not emergency_permitted(facts, facts.samu_regulator):
            who = "par le SAMU" if facts.samu_regulator else "des professionnels en urgence"
            return _deny("emergency_refused", f"La personne a refusé l'accès {who} à son espace santé.")
        return _allow("emergency_start", "Accès en urgence : la personne ne l'a pas refusé.")
    if action == Action.HISTORY_READ:  # TRC-2 "the médecin traitant and the author see theirs"
        if not person:
            return _deny("establishment_no_history", "Un établissement ne consulte pas l'historique de l'espace santé.")
        if facts.administrator and not facts.blocked:  # neither consent nor an emergency widens the history
            return _allow("professional_history_all", "Médecin traitant ou administrateur de l'espace.", Scope.ALL)
        return _allow(
            "professional_history_own",
            "Un professionnel consulte l'historique de ses propres actions.",
            Scope.OWN_ACTIONS,
        )
    if action in PROFILE_ACTIONS:
        return _professional_profile(actor, action, resource, facts, person)
    if action in AGENDA_ACTIONS:
        return _professional_agenda(actor, action, resource, facts, person)
    if action in MESSAGE_ACTIONS:
        return _professional_messages(actor, action, resource, facts)
    authored = resource is not None and bool(resource.author_id) and resource.author_id in author_keys(actor)
    if action in {Action.DOCUMENT_READ, Action.DOCUMENT_UPDATE} and authored:
        return _allow("document_author", "L'auteur accède à son propre document.")
    if action not in {Action.SPACE_VIEW, Action.DOCUMENT_SEARCH, Action.DOCUMENT_READ}:
        return None
    level = standing(facts) if person else None
    if level is None:
        if action == Action.DOCUMENT_SEARCH:
            return _allow("professional_own_documents", "Recherche limitée aux documents de l'auteur.", Scope.AUTHORED)
        return _no_standing(facts)
    categories = None if level == "administrator" else access_matrix.categories_for(actor.profession_code)
    include_masked = level == "administrator" or (level == "emergency" and facts.emergency_masked)
    reason = READING_REASONS[level]
    rule = f"professional_{level}"
    if action == Action.SPACE_VIEW:
        return _allow(rule, reason)
    if action == Action.DOCUMENT_SEARCH:
        return Decision(True, reason, rule, Scope.PROFESSIONAL, categories, include_masked)
    if resource is None:
        return _deny("no_document", "Document inconnu.")
    if categories is not None and resource.category not in categories:
        return _deny("profession_matrix", "Votre profession n'a pas accès à ce type de document.")
    if resource.masked and not include_masked:
        return _deny("masked", "La personne a masqué ce document aux professionnels.")
    return _allow(rule, reason)


CAREGIVER_ACTIONS = {  # FAM-3: read, add, edit — not credentials, contact details, consent, closing, deleting
    Action.SPACE_VIEW,
    Action.HISTORY_READ,
    Action.DOCUMENT_SEARCH,
    Action.DOCUMENT_READ,
    Action.DOCUMENT_DEPOSIT,
    Action.DOCUMENT_MASK,
    Action.FOLDER_WRITE,
    Action.SETTINGS_READ,
    Action.PROFILE_READ,
    Action.PROFILE_WRITE,
    Action.PROFILE_MASK,
    Action.AGENDA_READ,
    Action.AGENDA_WRITE,
    Action.PREVENTION_READ,
    Action.PREVENTION_WRITE,
}
REPRESENTATIVE_ACTIONS = CAREGIVER_ACTIONS | {  # FAM-1: the parent manages the child's space
    Action.SPACE_EXPORT,  # ENR-7: and takes the child's record away (never a caregiver: FAM-3)
    Action.SETTINGS_WRITE,
    Action.ACCESS_MANAGE,
    Action.FAMILY_MANAGE,
    Action.HISTORY_REPORT,
    Action.APP_CONNECT,  # CAT-2: connects and disconnects the child's apps
}


def _on_behalf(
    actor: Actor, action: Action, resource: Resource | None, rule: str, who: str, allowed: set[Action]
) -> Decision:
    """A legal representative or a caregiver: the patient's view minus what is hidden from them."""
    if resource is not None and ("INVISIBLE_REPRESENTANTS_LEGAUX" in resource.labels or resource.hidden_from_patient):
        return _deny(f"hidden_from_{rule}", f"Ce document n'est pas visible des {who}s.")
    if action not in allowed:
        return _deny(f"not_for_{rule}", f"Un {who} ne peut pas effectuer cette action.")
    return _allow(rule, f"Le {who} agit dans l'espace de la personne.", Scope.REPRESENTATIVE)


def rule_legal_representative(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """FAM-1, FAM-2: a legal representative of a minor acts in the child's space; documents the minor
    asked to hide from their representatives stay hidden."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id == patient_id or not facts.legal_representative:
        return None
    return _on_behalf(actor, action, resource, "legal_representative", "représentant légal", REPRESENTATIVE_ACTIONS)


def rule_caregiver(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    """FAM-3: a caregiver reads, adds and edits; never credentials, contact details, consent, closing,
    deleting or exporting."""
    if actor.kind != ActorKind.PATIENT or actor.patient_id == patient_id or not facts.caregiver:
        return None
    return _on_behalf(actor, action, resource, "caregiver", "aidant", CAREGIVER_ACTIONS)


def rule_own_space(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if actor.kind == ActorKind.PATIENT and actor.patient_id == patient_id:
        if action == Action.FAMILY_MANAGE and resource is not None and resource.type == "representative_invitation":
            return _deny(
                "representatives_only",
                "Seul un représentant légal de l'enfant peut inviter le second représentant légal.",
            )
        return _allow("own_space", "La personne agit dans son propre espace.")
    return None


def rule_system(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None, facts: Facts
) -> Decision | None:
    if actor.kind == ActorKind.SYSTEM:
        return _allow("system", "Traitement automatique du service.", Scope.ALL)
    return None


RULES: list[Rule] = [
    rule_operator_work,
    rule_enrolment,
    rule_owner_lifecycle,
    rule_consents,
    rule_unknown_space,
    rule_operator_no_health_data,
    rule_apps,
    rule_professional_acts,
    rule_profile_people,
    rule_messages_people,
    rule_patient_documents,
    rule_professional,
    rule_own_space,
    rule_legal_representative,
    rule_caregiver,
    rule_system,
]

DEFAULT_DENY = _deny("no_rule", "Vous n'êtes pas autorisé à accéder à cet espace.")


def decide(
    actor: Actor, patient_id: str, action: Action, resource: Resource | None = None, facts: Facts | None = None
) -> Decision:
    """Allow or deny ``action`` by ``actor`` on ``patient_id``'s space, with the reason."""
    facts = facts or Facts()
    for rule in RULES:
        decision = rule(actor, patient_id, action, resource, facts)
        if decision is not None:
            return decision
    return DEFAULT_DENY
