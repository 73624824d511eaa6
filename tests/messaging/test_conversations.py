"""The messaging's use cases (MSG-1, MSG-2, MSG-4): a professional starts, the space answers — by mail too, threaded
for the professional's client (a real SMTP server receives it) —, the professional closes and the space writes again;
who may do what (a legal representative for a minor, a caregiver not, another professional not); the notice e-mail
without health content; the quota; everything gone with the space."""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select

from carnet.bootstrap import Services, build_services
from carnet.demo import DEMO_PASSWORD, load_demo, secure_mail_of
from carnet.enrolment.service import lifecycle
from carnet.family.tables import Caregiver
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.messaging.model.messages import MessageError, QuotaExceeded, SentFile
from carnet.messaging.service import conversations, notifications
from carnet.messaging.service.store import ThreadNotFound
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.people.tables import Account, Patient, Professional
from tests.conftest import empty_tables, make_settings, outbox_messages
from tests.messaging.conftest import free_port
from tests.support.actors import PATIENT, PROFESSIONAL, UNAUTHORISED
from tests.support.documents import make_pdf


def person(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def professional(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        pro = db.get(Professional, account.professional_id)
        assert pro is not None
        return Actor(
            ActorKind.PROFESSIONAL,
            account.id,
            account.display_name,
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )


def space_of(services: Services, first_names: str) -> str:
    with services.db.unit_of_work() as db:
        found = db.scalar(select(Patient.id).where(Patient.first_names == first_names))
        assert found
        return str(found)


class Collect:
    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.senders: list[str] = []

    async def handle_DATA(self, server: object, session: object, envelope: object) -> str:
        self.senders.append(envelope.mail_from)  # type: ignore[attr-defined]
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))  # type: ignore[attr-defined,arg-type]
        return "250 OK"


@pytest.fixture
def relay(tmp_path: Path, database_url: str) -> object:
    port = free_port()
    handler = Collect()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    services = build_services(make_settings(tmp_path, database_url, smtp_url=f"smtp://127.0.0.1:{port}"))
    empty_tables(services)
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    try:
        yield services, handler
    finally:
        controller.stop()
        services.db.dispose()


def test_the_spaces_answer_leaves_by_mail_threaded_for_the_professionals_client(relay: object) -> None:
    services, sink = relay  # type: ignore[misc]
    doctor, marie = professional(services, PROFESSIONAL), person(services, PATIENT)
    space = marie.patient_id
    assert space
    thread_id = conversations.start(services, doctor, space, "Résultats de la prise de sang", "Bonjour, tout va bien.")
    pdf = make_pdf("Ordonnance")
    conversations.answer(
        services, marie, thread_id, "Merci docteur.", [SentFile("ordonnance.pdf", "application/pdf", pdf)], space
    )
    assert len(sink.messages) == 1
    sent = sink.messages[0]
    with services.db.unit_of_work() as db:
        first, answer = db.scalars(
            select(Message.mail_id).where(Message.thread_id == thread_id).order_by(Message.created_at)
        ).all()
        ins = db.scalar(select(Patient.ins).where(Patient.id == space))
    assert sent["To"] == secure_mail_of(PROFESSIONAL)
    assert sent["Subject"] == "Re: Résultats de la prise de sang"
    assert sent["In-Reply-To"] == first and sent["References"] == first and sent["Message-ID"] == answer
    assert sink.senders[0] == f"{ins}@{services.settings.messaging_domain}"
    assert sent.get_body(preferencelist=("plain",)).get_content().strip() == "Merci docteur."  # type: ignore[union-attr]
    attached = next(sent.iter_attachments())
    assert attached.get_filename() == "ordonnance.pdf" and attached.get_content() == pdf


def test_a_professionals_own_answer_does_not_go_back_by_mail(relay: object) -> None:
    services, sink = relay  # type: ignore[misc]
    doctor, marie = professional(services, PROFESSIONAL), person(services, PATIENT)
    assert marie.patient_id
    thread_id = conversations.start(services, doctor, marie.patient_id, "Rendez-vous", "Pouvez-vous venir jeudi ?")
    conversations.answer(services, doctor, thread_id, "Ou vendredi.")
    assert sink.messages == []


def test_the_professional_closes_and_the_space_writes_again_in_a_new_conversation(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    space = marie.patient_id
    assert space
    thread_id = conversations.start(demo, doctor, space, "Suivi", "Comment allez-vous ?")
    conversations.close(demo, doctor, thread_id)
    seen = conversations.conversation(demo, marie, thread_id, space)
    assert seen.thread.closed and seen.thread.closed_by_label == "Dr Jean-Baptiste FERRACCI"
    assert not seen.may_answer and seen.may_write_again and not seen.may_close
    with pytest.raises(AccessDenied) as refused:
        conversations.answer(demo, marie, thread_id, "Encore une question", space=space)
    assert "écrire à nouveau" in refused.value.decision.reason
    again = conversations.write_again(demo, marie, thread_id, "Nouvelle question", "Bonjour docteur", space=space)
    assert again != thread_id
    mine = conversations.pro_inbox(demo, doctor)
    assert {t.id for t in mine.threads} == {thread_id, again} and mine.unread == 1


def test_the_space_does_not_start_a_conversation_and_does_not_close_one(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    with pytest.raises(AccessDenied):
        conversations.start(demo, marie, marie.patient_id, "Bonjour", "Je voudrais un rendez-vous")
    thread_id = conversations.start(demo, doctor, marie.patient_id, "Suivi", "Bonjour")
    with pytest.raises(AccessDenied):
        conversations.close(demo, marie, thread_id)


def test_another_professional_neither_reads_nor_answers_nor_closes_the_conversation(demo: Services) -> None:
    doctor, dentist, marie = professional(demo, PROFESSIONAL), professional(demo, UNAUTHORISED), person(demo, PATIENT)
    assert marie.patient_id
    thread_id = conversations.start(demo, doctor, marie.patient_id, "Suivi", "Bonjour")
    for attempt in (
        lambda: conversations.conversation(demo, dentist, thread_id),
        lambda: conversations.answer(demo, dentist, thread_id, "Bonjour"),
        lambda: conversations.close(demo, dentist, thread_id),
    ):
        with pytest.raises(ThreadNotFound):
            attempt()
    assert conversations.pro_inbox(demo, dentist).threads == []


def test_a_legal_representative_reads_and_answers_for_the_minor_a_caregiver_does_not(demo: Services) -> None:
    doctor, mother = professional(demo, PROFESSIONAL), person(demo, "laetitia.casanova")
    child = space_of(demo, "Lisandru")
    thread_id = conversations.start(demo, doctor, child, "Vaccin", "Le rappel est à faire.")
    inbox = conversations.inbox(demo, mother, child)
    assert inbox.unread == 1 and inbox.threads[0].id == thread_id
    conversations.answer(demo, mother, thread_id, "Nous viendrons mardi.", space=child)
    marie, caregiver = person(demo, PATIENT), person(demo, "pierre-paul.luciani")
    assert marie.patient_id
    with demo.db.unit_of_work() as db:  # Pierre-Paul becomes Marie-Ange's caregiver (FAM-3)
        db.add(Caregiver(helped_id=marie.patient_id, caregiver_id=caregiver.patient_id))
    with pytest.raises(AccessDenied) as refused:
        conversations.inbox(demo, caregiver, marie.patient_id)
    assert "aidant" in refused.value.decision.reason
    assert conversations.unread_count(demo, caregiver, marie.patient_id) is None


def test_a_typed_message_is_checked_and_nothing_is_stored_when_refused(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    for subject, text, files, words in (
        ("", "Bonjour", [], "objet"),
        ("Objet", "  ", [], "vide"),
        ("Objet", "x" * 20_001, [], "trop long"),
        ("Objet", "Bonjour", [SentFile("script.exe", "application/octet-stream", b"MZ" * 10)], "format non accepté"),
        ("Objet", "Bonjour", [SentFile("faux.pdf", "application/pdf", b"PK\x03\x04" * 10)], "ne correspond pas"),
    ):
        with pytest.raises(MessageError) as refused:
            conversations.start(demo, doctor, marie.patient_id, subject, text, files)
        assert words in refused.value.message
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Thread)) == 0


def test_a_full_messaging_refuses_attachments_with_a_clear_message_and_keeps_the_words(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    demo.settings.messaging_quota_mb = 1
    pdf = make_pdf("x", padding=900_000)
    conversations.start(
        demo, doctor, marie.patient_id, "Imagerie", "Voici", [SentFile("a.pdf", "application/pdf", pdf)]
    )
    with pytest.raises(QuotaExceeded) as full:
        conversations.start(
            demo, doctor, marie.patient_id, "Encore", "Voici", [SentFile("b.pdf", "application/pdf", pdf)]
        )
    assert "pleine" in full.value.message
    conversations.start(demo, doctor, marie.patient_id, "Sans pièce jointe", "Bonjour")
    inbox = conversations.inbox(demo, marie, marie.patient_id)
    assert inbox.total == 2 and inbox.nearly_full and not inbox.full


def test_filing_an_attachment_makes_it_a_document_seen_like_any_other(demo: Services) -> None:
    from carnet.vault.service import portal
    from carnet.vault.service.documents import SearchFilters

    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    space = marie.patient_id
    assert space
    pdf = make_pdf("Compte rendu opératoire")
    thread_id = conversations.start(demo, doctor, space, "CR", "Ci-joint", [SentFile("cr.pdf", "application/pdf", pdf)])
    attachment = conversations.conversation(demo, marie, thread_id, space).messages[0].attachments[0]
    before = portal.list_documents(demo, marie, space, SearchFilters()).counts.total
    document_id = conversations.file_attachment(demo, marie, attachment.id, space, _a_type(), "Compte rendu")
    assert conversations.file_attachment(demo, marie, attachment.id, space, _a_type()) == document_id  # once
    after = portal.list_documents(demo, marie, space, SearchFilters()).counts.total
    assert after == before + 1
    with demo.db.unit_of_work() as db:
        actions = set(db.scalars(select(AuditEntry.action).where(AuditEntry.resource_id.in_([document_id, thread_id]))))
    assert {"document.deposit", "message.write"} <= actions


def _a_type() -> str:
    from carnet.vault.model.documents import patient_types

    return patient_types()[0].code


def test_the_notice_says_a_message_waits_and_nothing_else_once_per_space(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    child = space_of(demo, "Lisandru")
    conversations.start(demo, doctor, marie.patient_id, "Résultats VIH", "Votre sérologie est négative.")
    conversations.start(demo, doctor, marie.patient_id, "Diabète", "HbA1c à 6,9 %")
    conversations.start(demo, doctor, child, "Vaccin ROR", "Rappel à faire")
    before = len(outbox_messages(demo))
    assert notifications.send_pending(demo) == 3  # Marie-Ange; Lisandru (the family's address) and his mother
    mails = outbox_messages(demo)[: len(outbox_messages(demo)) - before]
    words = " ".join(str(m["Subject"]) + m.get_body(preferencelist=("plain",)).get_content() for m in mails)  # type: ignore[union-attr,attr-defined]
    for secret in ("VIH", "sérologie", "Diabète", "HbA1c", "ROR", "FERRACCI", "Médecine"):
        assert secret not in words
    assert {str(m["To"]) for m in mails} == {
        f"{PATIENT}@exemple.fr",
        "famille.casanova@exemple.fr",
        "laetitia.casanova@exemple.fr",
    }
    assert notifications.send_pending(demo) == 0  # told once


def test_a_space_that_turned_notices_off_is_not_told(demo: Services) -> None:
    from carnet.people.service import preferences

    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    with demo.db.unit_of_work() as db:
        chosen = preferences.settings_of(db, marie.patient_id)
        chosen.notify_messages = False
        db.add(chosen)
    conversations.start(demo, doctor, marie.patient_id, "Suivi", "Bonjour")
    assert notifications.send_pending(demo) == 0


def test_deleting_the_space_erases_its_conversations_and_their_sealed_files(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    space = marie.patient_id
    assert space
    conversations.start(demo, doctor, space, "CR", "Ci-joint", [SentFile("cr.pdf", "application/pdf", make_pdf("x"))])
    blobs = demo.settings.resolved_data_dir / "blobs"
    assert list(blobs.rglob("msg-*"))
    done = lifecycle.delete_own_space(demo, marie, PATIENT, DEMO_PASSWORD, "test", space, lifecycle.CONFIRM_WORD)
    assert done.error is None
    with demo.db.unit_of_work() as db:
        assert not db.scalar(select(func.count()).select_from(Message).where(Message.patient_id == space))
        assert not db.scalar(select(func.count()).select_from(Attachment).where(Attachment.patient_id == space))
    assert not list(blobs.rglob("msg-*"))


def test_the_people_of_the_space_delete_a_conversation_and_free_its_quota(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    space = marie.patient_id
    assert space
    thread_id = conversations.start(
        demo, doctor, space, "CR", "Ci-joint", [SentFile("cr.pdf", "application/pdf", make_pdf("x"))]
    )
    assert conversations.inbox(demo, marie, space).quota_used > 0
    conversations.delete(demo, marie, thread_id, space)
    assert conversations.inbox(demo, marie, space).quota_used == 0
    with pytest.raises(ThreadNotFound):
        conversations.conversation(demo, doctor, thread_id)


def test_the_demo_messaging_is_loaded_once_and_reads_like_a_real_one(demo: Services) -> None:
    from carnet.demo import load_messaging_demo

    load_messaging_demo(demo)
    load_messaging_demo(demo)
    marie = person(demo, PATIENT)
    assert marie.patient_id
    inbox = conversations.inbox(demo, marie, marie.patient_id)
    assert inbox.total == 2 and inbox.unread == 2
    doctor_thread = next(t for t in inbox.threads if t.counterpart.kind == "professional")
    seen = conversations.conversation(demo, marie, doctor_thread.id, marie.patient_id)
    assert [m.from_space for m in seen.messages] == [False, True, False]
    assert seen.messages[0].attachments[0].mime_type == "application/pdf"


def test_an_attachment_body_a_crash_left_without_its_row_is_swept_after_the_grace(demo: Services) -> None:
    from datetime import timedelta

    from carnet.messaging.service import housekeeping
    from carnet.storage.types import utcnow

    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    assert marie.patient_id
    conversations.start(
        demo, doctor, marie.patient_id, "CR", "x", [SentFile("a.pdf", "application/pdf", make_pdf("a"))]
    )
    demo.blobs.put("msg-00000000-0000-0000-0000-000000000000", b"sealed bytes of a delivery killed before commit")
    assert housekeeping.sweep_orphan_blobs(demo) == 0  # within the grace: a delivery may still commit
    assert housekeeping.sweep_orphan_blobs(demo, now=utcnow() + timedelta(hours=2)) == 1
    blobs = demo.settings.resolved_data_dir / "blobs"
    assert len(list(blobs.rglob("msg-*"))) == 1  # the real attachment stays


def test_the_correspondent_neither_deletes_the_conversation_nor_files_its_attachments(demo: Services) -> None:
    doctor, marie = professional(demo, PROFESSIONAL), person(demo, PATIENT)
    space = marie.patient_id
    assert space
    pdf = make_pdf("CR")
    thread_id = conversations.start(demo, doctor, space, "CR", "x", [SentFile("cr.pdf", "application/pdf", pdf)])
    attachment = conversations.conversation(demo, doctor, thread_id).messages[0].attachments[0]
    for attempt in (
        lambda: conversations.delete(demo, doctor, thread_id, space),
        lambda: conversations.file_attachment(demo, doctor, attachment.id, space, _a_type()),
        lambda: conversations.filing(demo, doctor, attachment.id, space),
    ):
        with pytest.raises(AccessDenied) as refused:
            attempt()
        assert refused.value.decision.rule == "space_only"
    assert not conversations.conversation(demo, doctor, thread_id).may_delete
    assert conversations.conversation(demo, marie, thread_id, space).may_delete
