"""The inbound gateway over real SMTP (MSG-3): what it accepts is stored sealed, audited and threaded before its
250; every refusal is an SMTP reply and leaves nothing behind — a MIME corpus of what real mail systems send."""

from __future__ import annotations

import io
import zipfile

from sqlalchemy import func, select

from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.messaging.service import conversations
from carnet.messaging.tables import Attachment, Message, Thread
from tests.messaging.conftest import DENTIST_MAIL, LAB_MAIL, Gateway, mail
from tests.support.documents import make_pdf


def counts(gateway: Gateway) -> tuple[int, int, int]:
    with gateway.services.db.unit_of_work() as db:
        return tuple(  # type: ignore[return-value]
            int(db.scalar(select(func.count()).select_from(table)) or 0) for table in (Thread, Message, Attachment)
        )


def blobs(gateway: Gateway) -> set[str]:
    root = gateway.services.settings.resolved_data_dir / "blobs"
    return {p.name for p in root.rglob("msg-*")}


def the_patient(gateway: Gateway) -> Actor:
    return Actor(ActorKind.PATIENT, "test", "Marie-Ange SANTONI", patient_id=gateway.patient_id)


def test_a_doctors_mail_with_a_pdf_is_stored_sealed_and_audited_before_its_250(gateway: Gateway) -> None:
    pdf = make_pdf("Hémoglobine glyquée 6,9 %")
    code, _ = gateway.send(mail(files=[("résultats HbA1c.pdf", "application/pdf", pdf)]))
    assert code == 250
    with gateway.services.db.unit_of_work() as db:
        message = db.scalars(select(Message)).one()
        assert b"compte rendu" not in message.sealed and message.via == "smtp"
        entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "message.write")).one()
        assert entry.patient_id == gateway.patient_id and "Hémoglobine" not in str(entry.details)
    stored = blobs(gateway)
    assert len(stored) == 1
    raw = next((gateway.services.settings.resolved_data_dir / "blobs").rglob("msg-*")).read_bytes()
    assert b"%PDF" not in raw  # the store holds ciphertext only
    inbox = conversations.inbox(gateway.services, the_patient(gateway), gateway.patient_id)
    assert inbox.unread == 1 and inbox.threads[0].subject == "Vos résultats"
    assert inbox.threads[0].counterpart.label == "Dr Jean-Baptiste FERRACCI"
    seen = conversations.conversation(gateway.services, the_patient(gateway), inbox.threads[0].id, gateway.patient_id)
    assert seen.messages[0].text == "Bonjour,\nvoici le compte rendu."
    assert seen.messages[0].attachments[0].name == "résultats HbA1c.pdf"
    body = conversations.attachment_content(
        gateway.services, the_patient(gateway), seen.messages[0].attachments[0].id, gateway.patient_id
    )
    assert body.body == pdf and body.mime_type == "application/pdf"


def test_an_answer_naming_an_earlier_message_continues_its_conversation(gateway: Gateway) -> None:
    assert gateway.send(mail(Message_ID="<premier@cabinet.exemple.fr>"))[0] == 250
    later = mail("Re: Vos résultats", "Suite", In_Reply_To="<premier@cabinet.exemple.fr>")
    assert gateway.send(later)[0] == 250
    other = mail("Autre sujet", "Nouveau", In_Reply_To="<inconnu@ailleurs>")
    assert gateway.send(other)[0] == 250
    threads, messages, _ = counts(gateway)
    assert (threads, messages) == (2, 3)


def test_an_establishment_known_to_the_directory_writes_too(gateway: Gateway) -> None:
    code, _ = gateway.send(mail("Résultats disponibles", From=LAB_MAIL), sender=LAB_MAIL)
    assert code == 250
    inbox = conversations.inbox(gateway.services, the_patient(gateway), gateway.patient_id)
    assert inbox.threads[0].counterpart.kind == "establishment"


def test_a_sender_unknown_to_the_directory_is_refused_at_mail_from(gateway: Gateway) -> None:
    code, answer = gateway.send(mail(), sender="inconnu@gmail.com")
    assert code == 550 and b"5.7.1" in answer
    assert counts(gateway) == (0, 0, 0)


def test_unknown_malformed_and_foreign_recipients_are_refused_at_rcpt(gateway: Gateway) -> None:
    for rcpt in (
        "123456789012345@patient.carnet.localhost",
        "personne@patient.carnet.localhost",
        f"{gateway.ins}@ailleurs.fr",
    ):
        code, answer = gateway.send(mail(), to=[rcpt])
        assert code == 550 and b"5.1.1" in answer, rcpt
    assert counts(gateway) == (0, 0, 0)


def test_a_closed_space_is_refused_like_an_unknown_one(gateway: Gateway) -> None:
    from carnet.enrolment.service import lifecycle
    from carnet.people.tables import Patient

    with gateway.services.db.unit_of_work() as db:
        patient = db.get(Patient, gateway.patient_id)
        assert patient is not None
        lifecycle.close_space(db, gateway.services, the_patient(gateway), patient)
    code, _ = gateway.send(mail())
    assert code == 550
    assert counts(gateway) == (0, 0, 0)


def test_a_person_who_blocked_the_sender_receives_nothing_from_them(gateway: Gateway) -> None:
    from carnet.access.service import patient_access
    from carnet.people.tables import Professional

    with gateway.services.db.unit_of_work() as db:
        dentist = db.scalar(select(Professional.id).where(Professional.email == DENTIST_MAIL))
    assert dentist
    patient_access.block(gateway.services, the_patient(gateway), gateway.patient_id, dentist)
    code, answer = gateway.send(mail(From=DENTIST_MAIL), sender=DENTIST_MAIL)
    assert code == 550 and b"5.7.1" in answer
    assert counts(gateway) == (0, 0, 0)


def test_a_message_over_the_size_limit_gets_552_and_nothing_is_stored(gateway: Gateway) -> None:
    big = mail(files=[("scanner.pdf", "application/pdf", make_pdf("x", padding=23_000_000))])
    code, _ = gateway.send(big)
    assert code == 552
    assert counts(gateway) == (0, 0, 0) and not blobs(gateway)


def zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("rapport.pdf", b"\0" * 50_000_000)
    return buffer.getvalue()


BAD_BASE64 = (
    b"From: x@y\r\nSubject: t\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"
    b"--b\r\nContent-Type: text/plain\r\n\r\nBonjour\r\n--b\r\nContent-Type: application/pdf\r\n"
    b"Content-Disposition: attachment; filename=a.pdf\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    b"JVBERi0xLjQKA\r\n--b--\r\n"  # 13 characters: not base64
)


def test_unreadable_or_refused_mime_gets_554_and_nothing_is_stored(gateway: Gateway) -> None:
    good = mail(files=[("a.pdf", "application/pdf", make_pdf("a"))]).as_bytes()
    broken = good.replace(b"--===", b"--xxx")  # boundaries announced, never found
    corpus = {
        "broken boundaries": broken,
        "zip bomb named .pdf": mail(files=[("compte-rendu.pdf", "application/pdf", zip_bomb())]),
        "empty attachment": mail(files=[("vide.pdf", "application/pdf", b"")]),
        "executable": mail(files=[("ordonnance.exe", "application/octet-stream", b"MZ\x90\x00" * 100)]),
        "bad base64": BAD_BASE64,
    }
    for name, message in corpus.items():
        code, answer = gateway.send(message)
        assert code == 554, (name, answer)
        assert b"5.6.0" in answer
    assert counts(gateway) == (0, 0, 0) and not blobs(gateway)


def test_encoded_names_nested_parts_and_quoted_printable_are_read_as_sent(gateway: Gateway) -> None:
    pdf = make_pdf("Compte rendu")
    outer = mail("=?utf-8?q?Compte_rendu_op=C3=A9ratoire?=", "")
    outer.clear_content()
    outer.make_mixed()
    inner = mail("x", "Texte en « quoted-printable » : éàü.\nLigne 2")
    inner.replace_header("Content-Transfer-Encoding", "quoted-printable") if False else None
    alternative = mail("x", "Bonjour Mme Santoni, éàü")
    alternative.add_alternative("<p>Bonjour <b>Mme Santoni</b>, éàü</p>", subtype="html")
    outer.attach(alternative)
    attachment = mail("x", "")
    attachment.set_content(
        pdf, maintype="application", subtype="pdf", filename="=?utf-8?b?Y29tcHRlLXJlbmR1LcOpLnBkZg==?="
    )
    outer.attach(attachment)
    code, answer = gateway.send(outer)
    assert code == 250, answer
    inbox = conversations.inbox(gateway.services, the_patient(gateway), gateway.patient_id)
    seen = conversations.conversation(gateway.services, the_patient(gateway), inbox.threads[0].id, gateway.patient_id)
    assert inbox.threads[0].subject == "Compte rendu opératoire"
    assert seen.messages[0].text == "Bonjour Mme Santoni, éàü"
    assert seen.messages[0].attachments[0].name == "compte-rendu-é.pdf"


def test_a_space_whose_messaging_is_full_gets_552_and_keeps_what_it_had(gateway: Gateway) -> None:
    gateway.services.settings.messaging_quota_mb = 1
    pdf = make_pdf("x", padding=700_000)
    assert gateway.send(mail(files=[("a.pdf", "application/pdf", pdf)]))[0] == 250
    code, answer = gateway.send(mail(files=[("b.pdf", "application/pdf", pdf)]))
    assert code == 552 and b"5.2.2" in answer
    assert counts(gateway) == (1, 1, 1) and len(blobs(gateway)) == 1
    assert gateway.send(mail("Sans pièce jointe"))[0] == 250  # words still arrive


def test_starttls_is_offered_when_a_certificate_is_configured(demo: object, tmp_path: object) -> None:
    import datetime as dt
    import ssl
    from pathlib import Path

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    from carnet.messaging.smtp import GatewayController
    from tests.messaging.conftest import free_port

    folder = Path(str(tmp_path))
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "patient.carnet.localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    services = demo  # type: ignore[assignment]
    services.settings.gateway_tls_cert = folder / "cert.pem"  # type: ignore[attr-defined]
    services.settings.gateway_tls_key = folder / "key.pem"  # type: ignore[attr-defined]
    port = free_port()
    controller = GatewayController(services, "127.0.0.1", port)  # type: ignore[arg-type]
    controller.start()
    try:
        import smtplib

        with smtplib.SMTP("127.0.0.1", port, timeout=30) as smtp:
            smtp.ehlo("cabinet.exemple.fr")
            assert smtp.has_extn("starttls")
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            smtp.starttls(context=context)
            smtp.ehlo("cabinet.exemple.fr")
            assert smtp.sock is not None and smtp.sock.version() is not None  # type: ignore[attr-defined]
    finally:
        controller.stop()
