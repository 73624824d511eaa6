"""The text read inside deposited documents for the search index (VLT-4): every page of a real PDF, a damaged file
read as no text (the deposit goes on), and PDFium — not thread-safe — used from many threads at once."""

from __future__ import annotations

import io
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from carnet.vault.service import content


def pdf_of_pages(lines: list[str]) -> bytes:
    """A real PDF made by reportlab, one line of text on each page."""
    out = io.BytesIO()
    drawing = canvas.Canvas(out, pagesize=A4)
    for line in lines:
        drawing.drawString(72, 720, line)
        drawing.showPage()
    drawing.save()
    return out.getvalue()


def test_the_text_of_every_page_is_read_accents_included() -> None:
    pages = ["Compte rendu opératoire", "Hémoglobine glyquée à 6,5 %", "Créatininémie normale"]
    text = content.extract_text(pdf_of_pages(pages), "application/pdf")
    assert [line.strip() for line in text.splitlines() if line.strip()] == pages


def test_only_the_first_fifty_pages_are_read() -> None:
    pages = [f"Feuillet numéro {n}" for n in range(1, content.MAX_PAGES + 3)]
    text = content.extract_text(pdf_of_pages(pages), "application/pdf")
    assert f"Feuillet numéro {content.MAX_PAGES}" in text
    assert f"Feuillet numéro {content.MAX_PAGES + 1}" not in text


@pytest.mark.parametrize(
    "body",
    [b"%PDF-1.4\n1 0 obj << /Type /Catalog", b"not a pdf at all", b"", pdf_of_pages(["Tronqué"])[:200]],
    ids=["truncated", "other bytes", "empty", "cut short"],
)
def test_a_damaged_pdf_gives_no_text_and_logs_no_content(body: bytes, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="carnet.content"):
        assert content.extract_text(body, "application/pdf") == ""
    assert "Tronqué" not in caplog.text


def test_many_threads_reading_pdfs_at_once_each_get_their_own_text() -> None:
    documents = {n: pdf_of_pages([f"Patient numéro {n}", f"Résultat {n * 7}"]) for n in range(16)}

    def read(n: int) -> tuple[int, str]:
        return n, content.extract_text(documents[n], "application/pdf")

    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(read, [n for n in documents for _ in range(10)]))
    for n, text in answers:
        assert f"Patient numéro {n}" in text and f"Résultat {n * 7}" in text
