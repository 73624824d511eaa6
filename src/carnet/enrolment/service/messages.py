"""The e-mails of enrolment (ENR-2, ENR-3), in French, text + HTML, without any health data.

They name the person (so the message is recognised), carry the activation code and say how to
activate, how to object before the deadline (online without an account, or by phone) and how to
close the space later. Paragraphs are single lines: mail clients wrap them, and a campaign's
SMTP traffic stays small.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from html import escape

from carnet.enrolment.model.opposition import date_fr
from carnet.mail.outbound import Mail

INVITATION_SUBJECT = "Votre espace santé Carnet va être créé"
MINOR_INVITATION_SUBJECT = "L'espace santé Carnet de votre enfant va être créé"
OBJECTION_SUBJECT = "Votre opposition à la création de l'espace santé est enregistrée"
WITHDRAWAL_SUBJECT = "Votre opposition à l'espace santé est retirée"
FOOTER = (
    "Ce message ne contient aucune information médicale. Le code est personnel : ne le transférez pas. "
    "Carnet ne vous demandera jamais votre mot de passe par e-mail."
)


@dataclass(frozen=True)
class InvitationText:
    name: str  # « Marie-Ange SANTONI »
    code: str  # formatted
    minor: bool
    creation_day: date
    objection_last_day: date
    code_valid_until: date


def _paragraphs(facts: InvitationText, base: str, phone: str) -> list[tuple[str, str]]:
    """(text, html) of each paragraph; the HTML adds links and emphasis only."""
    whose = f"l'espace santé de {facts.name}" if facts.minor else "votre espace santé"
    greeting = "Bonjour," if facts.minor else f"Bonjour {facts.name},"
    intro = (
        f"Vous êtes le représentant légal de {facts.name} : Carnet, l'espace santé numérique, va lui être ouvert."
        if facts.minor
        else "Carnet, l'espace santé numérique, va vous être ouvert."
    )
    what = (
        "Il permet de conserver les documents de santé (comptes rendus, ordonnances, résultats, vaccinations) en "
        "un lieu sûr et de les partager avec les professionnels de santé de votre choix. Le service est gratuit et "
        "les données sont chiffrées : seuls les professionnels autorisés peuvent les consulter, et chaque accès est "
        "inscrit dans l'historique."
    )
    creation = f"Sans opposition de votre part, {whose} sera créé automatiquement le {date_fr(facts.creation_day)}."
    code_line = f"Code d'activation personnel : {facts.code} (valable jusqu'au {date_fr(facts.code_valid_until)})."
    activation = f"Pour activer l'espace dès maintenant : {base}/activation (munissez-vous de la carte Vitale)."
    identity = (
        "le numéro de sécurité sociale de l'enfant (ou le vôtre s'il vous est rattaché) et sa date de naissance"
        if facts.minor
        else "votre numéro de sécurité sociale et votre date de naissance"
    )
    objection = (
        f"Vous ne souhaitez pas d'espace santé ? Vous pouvez vous y opposer jusqu'au "
        f"{date_fr(facts.objection_last_day)} inclus, sans créer de compte : sur {base}/opposition avec ce code, "
        f"{identity}, ou par téléphone au {phone}. Un récépissé vous sera remis, et vous pourrez changer d'avis "
        "plus tard."
    )
    closing = (
        "L'espace peut aussi être fermé à tout moment, depuis sa rubrique Paramètres ou auprès d'un conseiller : "
        "les données sont alors archivées 10 ans puis supprimées, ou supprimées aussitôt sur simple demande."
    )
    html_activation = (
        f'Pour activer l\'espace dès maintenant : <a href="{escape(base)}/activation">{escape(base)}/activation</a> '
        "(munissez-vous de la carte Vitale)."
    )
    html_objection = escape(objection).replace(
        f"{escape(base)}/opposition", f'<a href="{escape(base)}/opposition">{escape(base)}/opposition</a>'
    )
    return [
        (greeting, escape(greeting)),
        (f"{intro} {what}", f"{escape(intro)} {escape(what)}"),
        (creation, f"<strong>{escape(creation)}</strong>"),
        (
            code_line,
            f"Code d'activation personnel : <strong>{escape(facts.code)}</strong> "
            f"(valable jusqu'au {escape(date_fr(facts.code_valid_until))}).",
        ),
        (activation, html_activation),
        (objection, html_objection),
        (closing, escape(closing)),
        (FOOTER, f"<small>{escape(FOOTER)}</small>"),
        ("Carnet — ne répondez pas à ce message.", "Carnet — ne répondez pas à ce message."),
    ]


def _lines(pieces: Iterable[str], limit: int = 900) -> str:
    """Join HTML pieces into as few lines as possible, each under SMTP's 998-byte limit (fewer lines to relay)."""
    lines: list[str] = []
    for piece in pieces:
        if lines and len((lines[-1] + piece).encode()) <= limit:
            lines[-1] += piece
        else:
            lines.append(piece)
    return "\n".join(lines)


def invitation_mail(to: str, facts: InvitationText, base_url: str, phone: str) -> Mail:
    paragraphs = _paragraphs(facts, base_url.rstrip("/"), phone)
    text = "\n\n".join(text for text, _ in paragraphs) + "\n"
    html = (
        '<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Carnet</title></head><body>\n'
        + _lines(f"<p>{part}</p>" for _, part in paragraphs)
        + "\n</body></html>\n"
    )
    subject = MINOR_INVITATION_SUBJECT if facts.minor else INVITATION_SUBJECT
    return Mail(to, subject, text, html)


_NAME, _CODE = "\ue000", "\ue001"  # private-use characters: placeholders no name or code contains


class InvitationTemplates:
    """The invitation e-mails of one sending chunk (same dates): each variant (adult, minor) is written once,
    then only the name and the code change — a campaign writes 10⁵ of them."""

    def __init__(
        self, creation_day: date, objection_last_day: date, code_valid_until: date, base_url: str, phone: str
    ) -> None:
        self.dates = (creation_day, objection_last_day, code_valid_until)
        self.base_url = base_url
        self.phone = phone
        self._variants: dict[bool, Mail] = {}

    def mail(self, to: str, name: str, code: str, minor: bool) -> Mail:
        template = self._variants.get(minor)
        if template is None:
            facts = InvitationText(_NAME, _CODE, minor, *self.dates)
            template = self._variants[minor] = invitation_mail("", facts, self.base_url, self.phone)
        html = (template.html or "").replace(_NAME, escape(name)).replace(_CODE, code)
        return Mail(to, template.subject, template.text.replace(_NAME, name).replace(_CODE, code), html)


def objection_mail(to: str, name: str, number: str, day: date, base_url: str, phone: str) -> Mail:
    base = base_url.rstrip("/")
    text = (
        f"Bonjour,\n\nL'opposition à la création de l'espace santé Carnet de {name} a été enregistrée le "
        f"{date_fr(day)} (récépissé n° {number}). Aucun espace ne sera créé.\n\n"
        f"Vous pouvez changer d'avis à tout moment : sur {base}/opposition/annuler avec le code d'activation, le "
        f"numéro de sécurité sociale et la date de naissance, ou par téléphone au {phone}.\n\n"
        "Ce message ne contient aucune information médicale.\n\nCarnet — ne répondez pas à ce message.\n"
    )
    return Mail(to, OBJECTION_SUBJECT, text)


def withdrawal_mail(to: str, name: str, day: date, base_url: str) -> Mail:
    text = (
        f"Bonjour,\n\nL'opposition à la création de l'espace santé Carnet de {name} a été retirée le {date_fr(day)}. "
        f"L'espace sera créé à l'issue du délai d'opposition, ou dès son activation sur {base_url.rstrip('/')}/"
        "activation.\n\nCe message ne contient aucune information médicale.\n\n"
        "Carnet — ne répondez pas à ce message.\n"
    )
    return Mail(to, WITHDRAWAL_SUBJECT, text)
