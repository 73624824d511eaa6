"""Reading inbound mail (MSG-3), pure: the parts as real mail clients build them, whatever the line endings; what
cannot be read whole is refused with its reason, never half-read."""

from __future__ import annotations

from email import policy
from email.message import EmailMessage

import pytest

from carnet.messaging.model.inbound import UnreadableMail, read_mail
from tests.support.documents import make_pdf


def outlook_like() -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = "=?iso-8859-1?q?R=E9sultats_d=27analyses?="
    message["Message-ID"] = "<m1@labo.exemple.fr>"
    message["References"] = "<a@x> <b@x>"
    message["In-Reply-To"] = "<b@x>"
    message.set_content("Résultats ci-joints.\nCordialement", cte="quoted-printable")
    message.add_alternative("<html><head><style>p{}</style></head><body><p>Résultats</p></body></html>", subtype="html")
    message.add_attachment(make_pdf("CR"), maintype="application", subtype="pdf", filename="compte rendu été.pdf")
    return message


@pytest.mark.parametrize("endings", [policy.SMTP, policy.default], ids=["crlf", "lf"])
def test_a_mixed_message_with_an_alternative_and_a_pdf_is_read_whole(endings: policy.Policy) -> None:
    read = read_mail(outlook_like().as_bytes(policy=endings))
    assert read.message.subject == "Résultats d'analyses"
    assert read.message.text == "Résultats ci-joints.\nCordialement"
    assert [(f.filename, f.mime_type) for f in read.message.files] == [("compte rendu été.pdf", "application/pdf")]
    assert read.message_id == "<m1@labo.exemple.fr>" and read.in_reply_to == ("<b@x>", "<a@x>")


def test_an_html_only_message_keeps_its_words_not_its_markup() -> None:
    message = EmailMessage()
    message["Subject"] = "Info"
    message.set_content("<p>Bonjour,<br>votre <b>rendez-vous</b> est confirmé.</p><script>x()</script>", subtype="html")
    assert read_mail(message.as_bytes()).message.text == "Bonjour,\nvotre rendez-vous est confirmé."


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nt\n", "structure"),
        (b"Subject: x\nContent-Type: multipart/mixed\n\npas de d\xe9limiteur\n", "structure"),
        (
            b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: application/pdf\n"
            b"Content-Disposition: attachment; filename=a.pdf\nContent-Transfer-Encoding: base64\n\nJVBE*i0x\n--b--\n",
            "décodée",
        ),
        (
            b"Subject: x\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: message/rfc822\n\n"
            b"Subject: transfert\n\nbonjour\n--b--\n",
            "format non accepté",
        ),
    ],
    ids=["no close delimiter", "no boundary", "not base64", "forwarded message"],
)
def test_what_cannot_be_read_whole_is_refused_with_its_reason(raw: bytes, why: str) -> None:
    with pytest.raises(UnreadableMail) as refused:
        read_mail(raw)
    assert why in refused.value.message


def test_nesting_deeper_than_the_limit_is_refused() -> None:
    raw = b"Subject: x\nContent-Type: text/plain\n\nfin\n"
    for level in range(12):
        raw = (
            f"Content-Type: multipart/mixed; boundary=n{level}\n\n--n{level}\n".encode()
            + raw
            + f"\n--n{level}--\n".encode()
        )
    with pytest.raises(UnreadableMail) as refused:
        read_mail(b"Subject: x\n" + raw)
    assert "imbriquées" in refused.value.message
