"""Print-ready PDFs of enrolment (ENR-2, ENR-3): invitation letters and objection receipts.

Letters are A4, in French, for a DL envelope with a window on the right: the address block sits
105 mm from the left edge and 50 mm from the top, fold marks are printed at 99 and 198 mm. The
fonts (Bitstream Vera, shipped with reportlab) are embedded, as printers require.

Speed: the letters of a batch of 1,000 share their production date and deadlines, so everything
but the name, the address, the code and the reference is drawn once into a PDF form (XObject) that
each page reuses — the QR code too, since it points to the activation page, not to a person. A page then
costs a few text operators (≈ 0.3 ms), and 69,000 letters render in well under a minute.
The QR code carries no code: a photographed or shared letter image does not leak the code by the
URL, and the address logs of the activation page never see one.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final

import reportlab
import segno
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas

from carnet.enrolment.model.opposition import PARIS, date_fr

FONT: Final = "CarnetVera"
BOLD: Final = "CarnetVeraBd"
_FONTS_DIR = os.path.join(os.path.dirname(reportlab.__file__), "fonts")
pdfmetrics.registerFont(TTFont(FONT, os.path.join(_FONTS_DIR, "Vera.ttf")))
pdfmetrics.registerFont(TTFont(BOLD, os.path.join(_FONTS_DIR, "VeraBd.ttf")))

PAGE_WIDTH, PAGE_HEIGHT = A4
LEFT: Final = 20 * mm
RIGHT: Final = PAGE_WIDTH - 20 * mm
TEXT_WIDTH: Final = RIGHT - LEFT
WINDOW_LEFT: Final = 105 * mm  # DL window on the right: 100–190 mm from the left edge
WINDOW_TOP: Final = 50 * mm  # first address line, from the top edge (window 45–90 mm)
WINDOW_WIDTH: Final = 85 * mm
CODE_BOX_HEIGHT: Final = 24 * mm
QR_SIZE: Final = 30 * mm


def _y(from_top_mm: float) -> float:
    return PAGE_HEIGHT - from_top_mm * mm


@dataclass(frozen=True)
class LetterDates:
    """What every letter of a batch shares: the production day and the deadlines it prints."""

    produced: date
    objection_last_day: date  # last day on which objecting is possible
    creation_day: date  # the space is created on this day without objection
    code_valid_until: date


@dataclass(frozen=True)
class Letter:
    """What one letter prints about its addressee (no health data, ever)."""

    addressee: str  # « Madame Marie-Ange SANTONI » or the child's name for a minor
    address_lines: tuple[str, ...]
    code: str  # formatted, « ABCD-EFGH-JKMN »
    minor: bool
    reference: str


@dataclass(frozen=True)
class Contact:
    base_url: str
    phone: str


_FRENCH_SPACES: Final = ((" :", "\u00a0:"), (" ;", "\u00a0;"), (" ?", "\u00a0?"), ("« ", "«\u00a0"), (" »", "\u00a0»"))


def wrap(text: str, font: str, size: float, width: float) -> list[str]:
    """Lines of at most ``width``, broken at ordinary spaces only (never before « : » or after « « »)."""
    for plain, tied in _FRENCH_SPACES:
        text = text.replace(plain, tied)
    lines: list[str] = []
    current = ""
    for word in text.split(" "):
        candidate = f"{current} {word}" if current else word
        if current and pdfmetrics.stringWidth(candidate, font, size) > width:
            lines.append(current)
            current = word
        else:
            current = candidate
    return [*lines, current] if current else lines


class _Flow:
    """A cursor writing wrapped paragraphs downwards."""

    def __init__(self, canvas: Canvas, top: float) -> None:
        self.canvas = canvas
        self.y = top

    def paragraph(
        self, text: str, size: float = 9.5, font: str = FONT, width: float = TEXT_WIDTH, after: float = 2.2 * mm
    ) -> None:
        leading = size * 1.3
        self.canvas.setFont(font, size)
        for line in wrap(text, font, size, width):
            self.y -= leading
            self.canvas.drawString(LEFT, self.y, line)
        self.y -= after

    def skip(self, height: float) -> None:
        self.y -= height


def _draw_qr(canvas: Canvas, url: str, x: float, y: float, size: float) -> None:
    """The QR code as vector rectangles (one per run of dark modules), bottom-left corner at (x, y)."""
    qr = segno.make(url, error="m")
    rows = [list(row) for row in qr.matrix]
    border = 2
    module = size / (len(rows) + 2 * border)
    path = canvas.beginPath()
    for r, row in enumerate(rows):
        c = 0
        while c < len(row):
            if row[c] & 1:
                start = c
                while c < len(row) and row[c] & 1:
                    c += 1
                top = y + size - (border + r) * module
                path.rect(x + (border + start) * module, top - module, (c - start) * module, module)
            else:
                c += 1
    canvas.setFillColorRGB(0, 0, 0)
    canvas.drawPath(path, stroke=0, fill=1)


def _letter_body(canvas: Canvas, dates: LetterDates, contact: Contact, minor: bool) -> float:
    """Everything but the addressee: returns the baseline where the code is printed."""
    base = contact.base_url.rstrip("/")
    _letterhead(canvas, dates)
    flow = _Flow(canvas, _y(101))
    _opening(flow, dates, minor)
    code_baseline = _code_box(canvas, flow, dates, base)
    _objection_and_after(canvas, flow, dates, contact, base, minor)
    return code_baseline


def _letterhead(canvas: Canvas, dates: LetterDates) -> None:
    """The sender, the fold marks and the date."""
    canvas.setFont(BOLD, 18)
    canvas.drawString(LEFT, _y(22), "Carnet")
    canvas.setFont(FONT, 9)
    canvas.drawString(LEFT, _y(27), "Votre espace santé numérique")
    canvas.drawString(LEFT, _y(31.5), "Service des espaces santé")
    canvas.setLineWidth(0.3)
    for fold in (99, 198):  # fold marks for a DL envelope (A4 in three)
        canvas.line(0, _y(fold), 5 * mm, _y(fold))
    canvas.setFont(FONT, 9.5)
    canvas.drawString(WINDOW_LEFT, _y(96), f"Le {date_fr(dates.produced)}")


def _opening(flow: _Flow, dates: LetterDates, minor: bool) -> None:
    """The subject, what Carnet is, and the day the space is created without objection."""
    whose = "l'espace santé de votre enfant" if minor else "votre espace santé"
    flow.paragraph(f"Objet : création de {whose} Carnet", font=BOLD, size=10.5, after=2.5 * mm)
    flow.paragraph("Madame, Monsieur,", after=1.5 * mm)
    if minor:
        intro = (
            "En tant que représentant légal de l'enfant nommé dans l'adresse ci-dessus, vous recevez ce courrier : "
            "Carnet, l'espace santé numérique, va lui être ouvert. Il permet de conserver ses documents de santé "
            "(comptes rendus, ordonnances, résultats, vaccinations) en un lieu sûr et de les partager avec les "
            "professionnels de santé de votre choix. Le service est gratuit et les données sont chiffrées."
        )
    else:
        intro = (
            "Carnet, l'espace santé numérique, va vous être ouvert. Il vous permet de conserver vos documents de "
            "santé (comptes rendus, ordonnances, résultats, vaccinations) en un lieu sûr et de les partager avec "
            "les professionnels de santé de votre choix. Le service est gratuit et vos données sont chiffrées : "
            "seuls les professionnels que vous autorisez peuvent les consulter, et chaque accès est inscrit dans "
            "votre historique."
        )
    flow.paragraph(intro)
    flow.paragraph(
        f"Sans opposition de votre part, cet espace sera créé automatiquement le {date_fr(dates.creation_day)}. "
        "Vous pouvez aussi l'activer dès maintenant avec le code personnel ci-dessous.",
        after=3 * mm,
    )


def _code_box(canvas: Canvas, flow: _Flow, dates: LetterDates, base: str) -> float:
    """The framed code (filled in per letter: its baseline is returned), the QR code and how to activate."""
    box_top = flow.y
    canvas.setLineWidth(0.8)
    canvas.rect(LEFT, box_top - CODE_BOX_HEIGHT, TEXT_WIDTH - QR_SIZE - 6 * mm, CODE_BOX_HEIGHT, stroke=1, fill=0)
    canvas.setFont(FONT, 9.5)
    canvas.drawString(LEFT + 4 * mm, box_top - 6 * mm, "Code d'activation personnel (12 caractères)")
    code_baseline = box_top - 14.5 * mm
    canvas.setFont(FONT, 8.5)
    canvas.drawString(
        LEFT + 4 * mm,
        box_top - 20.5 * mm,
        f"Valable jusqu'au {date_fr(dates.code_valid_until)}. Ne le communiquez à personne.",
    )
    qr_x = RIGHT - QR_SIZE
    _draw_qr(canvas, f"{base}/activation", qr_x, box_top - CODE_BOX_HEIGHT - 3 * mm, QR_SIZE)
    flow.y = box_top - CODE_BOX_HEIGHT - 6 * mm
    canvas.setFont(FONT, 7.5)
    canvas.drawCentredString(qr_x + QR_SIZE / 2, flow.y - 0.5 * mm, "Scannez pour activer")
    flow.skip(1 * mm)
    flow.paragraph(
        f"Pour activer l'espace : rendez-vous sur {base}/activation (ou scannez le code QR), saisissez ce code, "
        "puis laissez-vous guider ; munissez-vous de la carte Vitale.",
        width=TEXT_WIDTH - QR_SIZE - 6 * mm,
        after=3 * mm,
    )
    return code_baseline


def _objection_and_after(
    canvas: Canvas, flow: _Flow, dates: LetterDates, contact: Contact, base: str, minor: bool
) -> None:
    """How to object, and what comes next; the closing and the footer."""
    flow.paragraph("Vous ne souhaitez pas d'espace santé ? Vous pouvez vous y opposer.", font=BOLD, size=10)
    identity = (
        "le numéro de sécurité sociale de l'enfant (ou le vôtre s'il vous est rattaché) et sa date de naissance"
        if minor
        else "votre numéro de sécurité sociale et votre date de naissance"
    )
    flow.paragraph(
        f"Vous avez jusqu'au {date_fr(dates.objection_last_day)} inclus pour vous opposer à sa création, sans créer "
        f"de compte : sur {base}/opposition, avec le code ci-dessus, {identity} ; ou par téléphone au "
        f"{contact.phone}, auprès d'un conseiller. Un récépissé vous est remis. Vous pourrez changer d'avis plus "
        f"tard (sur {base}/opposition/annuler ou par téléphone).",
    )
    flow.paragraph("Et ensuite ?", font=BOLD, size=10)
    flow.paragraph(
        "L'espace peut être fermé à tout moment, depuis sa rubrique « Paramètres » ou par téléphone auprès d'un "
        "conseiller : les données sont alors archivées pendant 10 ans puis supprimées, ou supprimées aussitôt "
        "sur simple demande. Votre opposition ou la fermeture de l'espace ne change rien à vos remboursements."
    )
    flow.paragraph(
        "Nous vous prions d'agréer, Madame, Monsieur, l'expression de nos salutations distinguées.", after=1 * mm
    )
    flow.paragraph("Le service Carnet", font=BOLD)
    canvas.setFont(FONT, 7.5)
    canvas.drawString(
        LEFT,
        _y(286),
        "Ce courrier ne contient aucune information médicale. Conservez-le : il porte un code personnel.",
    )


class LetterBook:
    """One PDF of many letters; the shared part of each variant (adult or minor, dates) is drawn once."""

    def __init__(self, contact: Contact, title: str) -> None:
        self.buffer = io.BytesIO()
        self.canvas = Canvas(self.buffer, pagesize=A4, pageCompression=0, invariant=0)
        self.canvas.setTitle(title)
        self.canvas.setAuthor("Carnet")
        self.canvas.setSubject("Invitations à l'espace santé")
        self.contact = contact
        self._forms: dict[tuple[bool, LetterDates], tuple[str, float]] = {}

    def _form(self, minor: bool, dates: LetterDates) -> tuple[str, float]:
        key = (minor, dates)
        if key not in self._forms:
            name = f"lettre{len(self._forms)}"
            self.canvas.beginForm(name)
            code_baseline = _letter_body(self.canvas, dates, self.contact, minor)
            self.canvas.endForm()
            self._forms[key] = (name, code_baseline)
        return self._forms[key]

    def add(self, letter: Letter, dates: LetterDates) -> None:
        canvas = self.canvas
        name, code_baseline = self._form(letter.minor, dates)
        canvas.doForm(name)
        lines = (["Aux représentants légaux de"] if letter.minor else []) + [letter.addressee, *letter.address_lines]
        y = _y(WINDOW_TOP / mm)
        for line in lines[:6]:
            size = 10.5
            while size > 7 and pdfmetrics.stringWidth(line, FONT, size) > WINDOW_WIDTH:
                size -= 0.5
            canvas.setFont(FONT, size)
            canvas.drawString(WINDOW_LEFT, y, line)
            y -= 4.6 * mm
        canvas.setFont(BOLD, 20)
        canvas.drawString(LEFT + 4 * mm, code_baseline, letter.code)
        canvas.setFont(FONT, 7)
        canvas.drawRightString(RIGHT, _y(290), f"Réf. {letter.reference}")
        canvas.showPage()

    def finish(self) -> bytes:
        self.canvas.save()
        return self.buffer.getvalue()


def render_letters(letters: Sequence[tuple[Letter, LetterDates]], contact: Contact, title: str) -> bytes:
    book = LetterBook(contact, title)
    for letter, dates in letters:
        book.add(letter, dates)
    return book.finish()


@dataclass(frozen=True)
class Receipt:
    number: str
    recorded_at: datetime
    person: str  # « Marie-Ange SANTONI, née le 14 mars 1985 »
    channel: str  # « en ligne » / « par téléphone auprès d'un conseiller »
    by_representative: bool


def render_receipt(receipt: Receipt, contact: Contact) -> bytes:
    """The objection receipt (ENR-3): number, date, person, what it means, how to change one's mind."""
    base = contact.base_url.rstrip("/")
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=A4, invariant=0)
    canvas.setTitle(f"Récépissé d'opposition {receipt.number}")
    canvas.setAuthor("Carnet")
    canvas.setFont(BOLD, 18)
    canvas.drawString(LEFT, _y(22), "Carnet")
    canvas.setFont(FONT, 9)
    canvas.drawString(LEFT, _y(27), "Votre espace santé numérique")
    flow = _Flow(canvas, _y(45))
    flow.paragraph("Récépissé d'opposition à la création de l'espace santé", font=BOLD, size=15, after=5 * mm)
    moment = receipt.recorded_at.astimezone(PARIS)
    for label, value in (
        ("Numéro de récépissé", receipt.number),
        ("Date d'enregistrement", f"{date_fr(moment.date())} à {moment:%H:%M} (heure de Paris)"),
        ("Personne concernée", receipt.person),
        ("Opposition faite", receipt.channel + (" par son représentant légal" if receipt.by_representative else "")),
    ):
        flow.paragraph(f"{label} : {value}", size=10.5, after=1.2 * mm)
    flow.skip(4 * mm)
    flow.paragraph("Ce que cela signifie", font=BOLD, size=11)
    flow.paragraph(
        "L'opposition à la création de l'espace santé Carnet de la personne nommée ci-dessus est enregistrée. "
        "Aucun espace ne sera créé : aucun document de santé n'y sera déposé et aucun professionnel ne pourra y "
        "accéder. Cette décision ne change rien aux remboursements ni aux droits à l'assurance maladie.",
        size=10,
    )
    flow.paragraph("Changer d'avis", font=BOLD, size=11)
    flow.paragraph(
        f"Vous pouvez revenir sur cette opposition à tout moment : sur {base}/opposition/annuler, avec le code "
        "d'activation reçu par courrier ou par e-mail, le numéro de sécurité sociale et la date de naissance, "
        f"ou par téléphone au {contact.phone} auprès d'un conseiller. L'espace santé sera alors créé.",
        size=10,
    )
    flow.paragraph(
        "Conservez ce récépissé. Il ne contient aucune information médicale.",
        size=9,
    )
    canvas.showPage()
    canvas.save()
    return buffer.getvalue()
