"""ENR-2 letters: one print-ready PDF per batch (0600), name + address + code + deadline, a QR code that scans.

The QR code is checked the way a phone sees it: the PDF page is rasterised by poppler's ``pdftoppm``
(Debian poppler-utils, installed by scripts/test) and decoded by zxing-cpp.
"""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader
from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import PARIS, creation_day, date_fr, last_day, objection_deadline
from carnet.enrolment.service import admin, campaigns
from carnet.enrolment.service.campaigns import printing
from carnet.enrolment.tables import Invitation
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.people.tables import Patient
from carnet.storage.types import utcnow
from tests.conftest import IN_CI, outbox_messages
from tests.support.enrolment import add_registered, text_part

OPERATOR = Actor(ActorKind.OPERATOR, None, "Opérateur de test")


def words(text: str) -> str:
    return " ".join(text.split())


def page_image(pdf: Path, page: int, tmp_path: Path) -> Image.Image:
    if shutil.which("pdftoppm") is None:
        message = "pdftoppm (Debian poppler-utils) absent : lancez scripts/test qui l'installe"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    prefix = tmp_path / f"page{page}"
    subprocess.run(
        ["pdftoppm", "-f", str(page), "-l", str(page), "-r", "150", "-png", "-singlefile", str(pdf), str(prefix)],
        check=True,
        capture_output=True,
    )
    return Image.open(prefix.with_suffix(".png"))


def test_letters_are_batched_into_print_ready_pdfs_with_everything_the_person_needs(
    services: Services, tmp_path: Path
) -> None:
    people = add_registered(services, 7, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)

    batches = campaigns.render_pending_letters(services, batch_size=3)

    assert [batch.count for batch in batches] == [3, 3, 1]
    assert {batch.campaign_id for batch in batches} == {campaign.id}
    letters_dir = services.settings.resolved_data_dir / "letters" / campaign.id
    assert sorted(letters_dir.iterdir()) == sorted(batch.path for batch in batches)
    by_person = {p.id: p for p in people}
    seen = 0
    for batch in batches:
        assert batch.path == letters_dir / f"{batch.batch}.pdf"
        assert stat.S_IMODE(batch.path.stat().st_mode) == 0o600, "les courriers portent des codes"
        reader = PdfReader(batch.path)
        assert len(reader.pages) == batch.count
        width, height = (float(v) for v in reader.pages[0].mediabox.upper_right)
        assert (round(width), round(height)) == (595, 842)  # A4 portrait
        fonts = reader.pages[0]["/Resources"]["/Font"]
        assert fonts  # embedded TrueType subsets, as printers require
        with services.db.unit_of_work() as db:
            rows = db.scalars(
                select(Invitation).where(Invitation.letter_batch == batch.batch).order_by(Invitation.id)
            ).all()
        for invitation in rows:
            person = by_person[invitation.patient_id]
            code = codes.format_code(services.keys.unseal(invitation.code_sealed, codes.SEAL_PURPOSE))
            texts = [words(page.extract_text()) for page in reader.pages]
            page_text = next(text for text in texts if code in text)
            assert f"Madame {person.name}" in page_text
            assert f"{person.name.split()[1][3:]} cours Napoléon" in page_text
            assert "20000 AJACCIO" in page_text
            assert invitation.status == "letter" and invitation.channel == "letter"
            assert invitation.objection_deadline is not None and invitation.sent_at is not None
            assert invitation.objection_deadline - invitation.sent_at >= timedelta(days=42 + 7)  # post delay
            assert f"jusqu'au {date_fr(last_day(invitation.objection_deadline))} inclus" in page_text
            assert "/opposition" in page_text and "Et ensuite" in page_text and "fermé à tout moment" in page_text
            assert person.ins not in page_text
            seen += 1
    assert seen == 7
    image = page_image(batches[0].path, 1, tmp_path)
    found = zxingcpp.read_barcodes(image)
    assert [(b.format, b.text) for b in found] == [(zxingcpp.BarcodeFormat.QRCode, "http://127.0.0.1:8000/activation")]
    # the address sits in the right-hand window of a DL envelope: 100-190 mm from the left, 45-90 mm from the top
    dpi_mm = 150 / 25.4
    window = image.convert("L").crop((int(100 * dpi_mm), int(40 * dpi_mm), int(190 * dpi_mm), int(92 * dpi_mm)))
    assert window.getextrema()[0] < 100, "rien n'est imprimé dans la fenêtre"
    left_of_window = image.convert("L").crop((0, int(40 * dpi_mm), int(95 * dpi_mm), int(92 * dpi_mm)))
    assert left_of_window.getextrema()[0] > 200, "le bloc adresse déborde de la fenêtre"


def test_one_persons_letter_is_printed_again_with_the_same_code_and_audited(services: Services) -> None:
    person = add_registered(services, 1, "2B", with_email=False)[0]
    campaigns.start_campaign(services, "2B", OPERATOR)
    campaigns.render_pending_letters(services)
    with services.db.unit_of_work() as db:
        invitation = db.scalar(select(Invitation))
        assert invitation is not None and invitation.objection_deadline is not None
        code = codes.format_code(services.keys.unseal(invitation.code_sealed, codes.SEAL_PURPOSE))
        deadline = invitation.objection_deadline

    document = campaigns.letter_for_patient(services, OPERATOR, person.id)

    tmp = services.settings.resolved_data_dir / "duplicata.pdf"
    tmp.write_bytes(document)
    text = words(PdfReader(tmp).pages[0].extract_text())
    assert code in text and f"Madame {person.name}" in text and "20200 BASTIA" in text
    assert f"jusqu'au {date_fr(last_day(deadline))} inclus" in text
    with services.db.unit_of_work() as db:
        entry = db.scalar(select(AuditEntry).where(AuditEntry.action == "enrolment.letter_reprinted"))
        assert entry is not None and entry.patient_id == person.id and entry.actor_kind == "operator"
    patient_actor = Actor(ActorKind.PATIENT, "x", "Quelqu'un", patient_id=person.id)
    with pytest.raises(AccessDenied):
        campaigns.letter_for_patient(services, patient_actor, person.id)


def test_letters_are_streamed_in_postal_order_batch_by_batch_and_a_bounded_run_leaves_the_rest_waiting(
    services: Services,
) -> None:
    """ENR-2: the printer's bundles follow the postal sorting across batches; the waiting letters are read as a
    stream (memory flat for a region), and ``max_batches`` (the operator's page) stops with the rest still owed."""
    people = add_registered(services, 6, "2A", with_email=False)
    postal = {
        p.id: code for p, code in zip(people, ["20167", "20000", "20220", "20090", "20137", "20110"], strict=True)
    }
    with services.db.unit_of_work() as db:
        for patient_id, code in postal.items():
            db.execute(update(Patient).where(Patient.id == patient_id).values(postal_code=code))
    campaigns.start_campaign(services, "2A", OPERATOR)

    first = campaigns.render_pending_letters(services, batch_size=2, max_batches=2)
    rest = campaigns.render_pending_letters(services, batch_size=2)

    assert [b.count for b in first] == [2, 2] and [b.count for b in rest] == [2]
    with services.db.unit_of_work() as db:
        batch_of = dict(db.execute(select(Invitation.patient_id, Invitation.letter_batch)).all())
    order = [b.batch for b in first + rest]
    by_batch = sorted(postal, key=lambda patient_id: (order.index(batch_of[patient_id]), postal[patient_id]))
    assert [postal[p] for p in by_batch] == sorted(postal.values())


def test_several_rendering_processes_share_the_queue_and_render_each_letter_once(services: Services) -> None:
    """``carnet campaign letters --processus 2``: the claims keep the processes apart (SQLite and PostgreSQL);
    every letter is in exactly one batch, every batch in one PDF holding its letters."""
    people = add_registered(services, 40, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)

    batches = campaigns.render_with_processes(services, campaign.id, batch_size=3, processes=2)

    assert sum(batch.count for batch in batches) == len(people)
    assert len({batch.batch for batch in batches}) == len(batches)
    for batch in batches:
        assert len(PdfReader(batch.path).pages) == batch.count
    with services.db.unit_of_work() as db:
        rows = db.execute(select(Invitation.status, Invitation.letter_batch)).all()
    assert {status for status, _ in rows} == {"letter"}
    assert Counter(batch for _, batch in rows) == {batch.batch: batch.count for batch in batches}
    assert campaigns.render_with_processes(services, campaign.id, batch_size=3, processes=2) == []


def test_a_batch_interrupted_while_printing_is_rendered_again_under_the_same_name(services: Services) -> None:
    add_registered(services, 4, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)
    started = utcnow()
    with services.db.unit_of_work() as db:
        waiting = list(db.scalars(printing._waiting_letters(campaign.id)))
    claimed = printing._claim_letters(services, waiting, started)  # the process dies after this
    assert claimed is not None

    assert campaigns.render_pending_letters(services, now=started + timedelta(minutes=1)) == []  # still leased
    batches = campaigns.render_pending_letters(services, now=started + campaigns.LEASE + timedelta(minutes=1))

    assert [(b.batch, b.count) for b in batches] == [(claimed, 4)]
    with services.db.unit_of_work() as db:
        statuses = set(db.scalars(select(Invitation.status)))
    assert statuses == {"letter"}


def test_only_an_operator_prints_a_campaigns_letters_in_several_processes(services: Services) -> None:
    """The patient, a professional and a stranger are refused by the policy before any letter is claimed."""
    people = add_registered(services, 6, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)
    refused = [
        Actor(ActorKind.PATIENT, "p", "La personne", patient_id=people[0].id),
        Actor(ActorKind.PROFESSIONAL, "10000000001", "Un médecin"),
        Actor(ActorKind.APP, "inconnue", "Un inconnu"),
    ]
    for actor in refused:
        with pytest.raises(AccessDenied):
            admin.print_campaign_letters(services, actor, campaign.id, 2, processes=2)
    with services.db.unit_of_work() as db:
        assert set(db.scalars(select(Invitation.status))) == {"to_print"}

    batches = admin.print_campaign_letters(services, OPERATOR, campaign.id, 2, processes=2)

    assert sum(batch.count for batch in batches) == 6


def test_several_rendering_processes_render_a_batch_a_crashed_run_left_once(services: Services) -> None:
    add_registered(services, 10, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)
    with services.db.unit_of_work() as db:
        waiting = list(db.scalars(printing._waiting_letters(campaign.id)))
    crashed = printing._claim_letters(services, waiting[:4], utcnow() - campaigns.LEASE - timedelta(minutes=1))
    assert crashed is not None

    batches = campaigns.render_with_processes(services, campaign.id, batch_size=3, processes=2)

    assert [batch.count for batch in batches if batch.batch == crashed] == [4]
    assert sum(batch.count for batch in batches) == 10
    with services.db.unit_of_work() as db:
        assert set(db.scalars(select(Invitation.status))) == {"letter"}


def test_each_batch_is_stamped_when_it_is_claimed_so_a_later_run_does_not_take_it_for_abandoned(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run of several hours (a region's letters) claims its last batches long after it started: stamped with the
    start, they looked abandoned to a second run, which rendered them again (seen in bench/campaign.py)."""
    add_registered(services, 9, "2A", with_email=False)
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)
    start = utcnow()
    clock = iter(start + timedelta(minutes=11 * step) for step in range(100))
    monkeypatch.setattr(printing, "utcnow", lambda: next(clock))  # each batch takes longer than LEASE

    batches = campaigns.render_pending_letters(services, campaign.id, batch_size=3)

    with services.db.unit_of_work() as db:
        stamps = {batch: sent for batch, sent in db.execute(select(Invitation.letter_batch, Invitation.sent_at))}
    assert len(batches) == 3
    assert sorted(stamps[batch.batch] for batch in batches) == [
        start + timedelta(minutes=11 * step) for step in (1, 2, 3)
    ]


def test_the_email_and_the_letter_of_one_campaign_day_announce_the_same_dates(services: Services) -> None:
    """Issue #15-13: an e-mail sent at dawn and a letter produced late the same day announce one creation day and
    one last day to object — the ones the service enforces (``objection_deadline``, ``creation_day``)."""
    emailed = add_registered(services, 1, "2A", with_email=True)[0]
    posted = add_registered(services, 1, "2A", with_email=False, start=1)[0]
    campaign = campaigns.start_campaign(services, "2A", OPERATOR)
    dawn = datetime(2026, 11, 26, 0, 30, tzinfo=PARIS)
    night = datetime(2026, 11, 26, 23, 30, tzinfo=PARIS)

    assert campaigns.send_pending(services, now=dawn).sent == 1
    [batch] = campaigns.render_pending_letters(services, campaign.id, now=night)

    deadline = objection_deadline(dawn)
    created = f"sera créé automatiquement le {date_fr(creation_day(deadline))}"
    last = f"jusqu'au {date_fr(last_day(deadline))} inclus"
    [mail] = [m for m in outbox_messages(services) if m["To"] == emailed.email]  # type: ignore[index]
    email_text = words(text_part(mail))  # type: ignore[arg-type]
    letter_text = words(PdfReader(batch.path).pages[0].extract_text())
    assert created in email_text and last in email_text
    assert created in letter_text and last in letter_text
    assert "le 15 janvier 2027" in email_text and "le 15 janvier 2027" in letter_text  # 26 nov. + 7 days + 6 weeks
    with services.db.unit_of_work() as db:
        deadlines = dict(db.execute(select(Invitation.patient_id, Invitation.objection_deadline)).all())
    assert deadlines == {emailed.id: deadline, posted.id: deadline}
