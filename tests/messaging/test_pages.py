"""The messaging's pages (MSG-1, MSG-2) through HTTP, on SQLite and PostgreSQL: the person's conversations (unread
counts, search, pages, quota), one conversation (answer, write again after the professional closed it, delete it
after a confirmation), attachments (download headers, « Ajouter à mes documents »), the professional's side (/pro:
their conversations, answer, close, write to a patient) and the home card — with the actors of every page: the
person, a legal representative for a minor, a caregiver (refused), the authorised professional (sent to /pro),
another professional, a stranger patient and anonymous visitors; uploads over the limits and forged forms store
nothing."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.family.tables import Caregiver
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.messaging.model.messages import SentFile
from carnet.messaging.service import conversations
from carnet.messaging.tables import Attachment, Message, Thread
from carnet.people.tables import Account, Patient, Professional
from tests.conftest import csrf_of, log_in
from tests.messaging.conftest import Gateway, mail
from tests.support.actors import PROFESSIONAL, UNAUTHORISED, Actors
from tests.support.documents import make_pdf

DOCTOR = "Dr Jean-Baptiste FERRACCI"
UNKNOWN = "00000000-0000-4000-8000-000000000000"


def seen(response: Any) -> str:
    """The words a person reads on the page (tags removed, spaces collapsed)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def pro_actor(services: Services, login: str = PROFESSIONAL) -> Actor:
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


def write(
    services: Services,
    patient_id: str,
    subject: str = "Résultats de la prise de sang",
    text: str = "Bonjour,\nvos résultats sont normaux.\nBien à vous.",
    files: list[SentFile] | None = None,
    login: str = PROFESSIONAL,
) -> str:
    """The doctor starts a conversation (as /pro or the gateway would); its id."""
    return conversations.start(services, pro_actor(services, login), patient_id, subject, text, files)


def pdf_file(name: str = "compte-rendu.pdf", text: str = "Compte rendu") -> SentFile:
    return SentFile(name, "application/pdf", make_pdf(text))


def count(services: Services, table: type) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(table)) or 0)


def attachment_ids(services: Services, thread_id: str) -> list[str]:
    with services.db.unit_of_work() as db:
        query = select(Attachment.id).join(Message).where(Message.thread_id == thread_id).order_by(Attachment.id)
        return list(db.scalars(query))


def token(client: TestClient, page: str) -> str:
    return csrf_of(client.get(page, follow_redirects=True).text)


def base(actors: Actors, suffix: str = "") -> str:
    return f"/espace/{actors.patient_id}/messages{suffix}"


def space_of(services: Services, first_names: str) -> str:
    with services.db.unit_of_work() as db:
        found = db.scalar(select(Patient.id).where(Patient.first_names == first_names))
        assert found
        return str(found)


# ------------------------------------------------------------------ the person's conversations


def test_the_person_reads_her_conversations_and_the_unread_count_goes_down(actors: Actors, demo: Services) -> None:
    home = actors.patient.get(f"/espace/{actors.patient_id}")
    assert "Aucun nouveau message" in seen(home) and f'href="{base(actors)}"' in home.text
    first = write(demo, actors.patient_id, "Vaccin contre la grippe", "La campagne commence.")
    second = write(demo, actors.patient_id)
    conversations.answer(demo, pro_actor(demo), second, "J'ajoute le compte rendu.", [pdf_file()])
    home = actors.patient.get(f"/espace/{actors.patient_id}")
    assert "3 messages non lus" in seen(home)
    menu = home.text.split('aria-label="Menu de l\'espace santé"')[1].split("</nav>")[0]
    assert f'href="{base(actors)}"' in menu and "Messagerie" in menu

    inbox = actors.patient.get(base(actors))
    assert inbox.status_code == 200
    text = seen(inbox)
    assert text.index("Résultats de la prise de sang") < text.index("Vaccin contre la grippe")  # latest first
    assert "2 non lus" in text and "1 non lu" in text and DOCTOR in text
    assert "J'ajoute le compte rendu." in text  # the excerpt: the last message
    assert "Mo utilisés sur 200 Mo" in text and "3 messages non lus" in text

    opened = actors.patient.get(base(actors, f"/{second}"))
    assert opened.status_code == 200
    assert "Bonjour,\nvos résultats sont normaux.\nBien à vous." in html.unescape(opened.text)  # line breaks kept
    assert "compte-rendu.pdf" in seen(opened) and "Télécharger" in seen(opened)
    assert "Ajouter à mes documents" in seen(opened)
    assert f'action="{base(actors, f"/{second}")}/repondre"' in opened.text and 'type="file"' in opened.text
    assert "multiple" in opened.text.split('name="fichiers"')[1].split(">")[0]
    assert "1 message non lu" in seen(actors.patient.get(f"/espace/{actors.patient_id}"))
    actors.patient.get(base(actors, f"/{first}"))
    assert "Aucun nouveau message" in seen(actors.patient.get(f"/espace/{actors.patient_id}"))
    assert "non lu" not in seen(actors.patient.get(base(actors))).replace("Aucun nouveau message", "")


def test_the_empty_messaging_says_what_will_come(actors: Actors) -> None:
    page = actors.patient.get(base(actors))
    assert page.status_code == 200
    assert "Vous n'avez encore reçu aucun message." in seen(page)
    assert "0,0 Mo utilisés sur 200 Mo" in seen(page)


def test_the_search_finds_subjects_texts_and_correspondents(actors: Actors, demo: Services) -> None:
    write(demo, actors.patient_id, "Vaccin contre la grippe", "La campagne commence en octobre.")
    write(demo, actors.patient_id, "Bilan sanguin", "Votre hémoglobine glyquée est à 6,8 %.")
    write(demo, actors.patient_id, "Rendez-vous", "Le cabinet sera fermé.", login=UNAUTHORISED)
    for words, found, absent in (
        ("grippe", "Vaccin contre la grippe", "Bilan sanguin"),
        ("HEMOGLOBINE", "Bilan sanguin", "Vaccin contre la grippe"),  # case and accents aside, in a text
        ("orsini", "Rendez-vous", "Bilan sanguin"),  # the correspondent
    ):
        page = actors.patient.get(base(actors), params={"q": words})
        assert page.status_code == 200
        text = seen(page)
        assert "Résultats de la recherche (1)" in text, words
        assert found in text and absent not in text, words
    nothing = actors.patient.get(base(actors), params={"q": "radiographie"})
    assert "Aucun échange ne correspond à votre recherche." in seen(nothing)
    assert actors.patient.get(base(actors), params={"q": "x" * 201}).status_code == 400


def test_the_conversations_come_by_pages_of_twenty(actors: Actors, demo: Services) -> None:
    for number in range(21):
        write(demo, actors.patient_id, f"Message numéro {number:02d}", "Bonjour")
    first = actors.patient.get(base(actors))
    assert "Page 1 sur 2" in seen(first) and "Message numéro 20" in seen(first)
    assert "Message numéro 00" not in seen(first)
    assert f'href="{base(actors)}?page=2"' in first.text
    second = actors.patient.get(base(actors), params={"page": 2})
    assert "Page 2 sur 2" in seen(second) and "Message numéro 00" in seen(second)
    assert "Message numéro 20" not in seen(second)
    assert actors.patient.get(base(actors), params={"page": 99}).status_code == 200


def test_a_mail_through_the_gateway_arrives_in_the_portal(actors: Actors, gateway: Gateway) -> None:
    pdf = make_pdf("Bilan")
    code, _ = gateway.send(
        mail("Bilan sanguin", "Bonjour,\nci-joint le bilan.", [("bilan.pdf", "application/pdf", pdf)])
    )
    assert code == 250
    inbox = actors.patient.get(base(actors))
    assert "Bilan sanguin" in seen(inbox) and "1 non lu" in seen(inbox)
    thread_id = re.findall(rf'href="{base(actors)}/([0-9a-f-]{{36}})"', inbox.text)[0]
    page = actors.patient.get(base(actors, f"/{thread_id}"))
    assert "par messagerie sécurisée" in seen(page) and "bilan.pdf" in seen(page)
    (piece,) = attachment_ids(gateway.services, thread_id)
    assert actors.patient.get(base(actors, f"/pieces/{piece}")).content == pdf


# ------------------------------------------------------------------ answering, writing again, deleting


def test_the_person_answers_with_a_file_and_the_professional_reads_it(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id)
    url = base(actors, f"/{thread_id}")
    pdf = make_pdf("Ordonnance")
    sent = actors.patient.post(
        f"{url}/repondre",
        data={"texte": "Merci docteur.\nÀ bientôt.", "csrf_token": token(actors.patient, url)},
        files=[("fichiers", ("ordonnance.pdf", pdf, "application/pdf"))],
    )
    assert sent.status_code == 303 and sent.headers["location"] == f"{url}?message=envoye"
    assert "Merci" not in sent.headers["location"]
    page = actors.patient.get(sent.headers["location"])
    assert "Votre message a été envoyé." in seen(page)
    assert "Merci docteur.\nÀ bientôt." in html.unescape(page.text) and "ordonnance.pdf" in seen(page)

    mine = actors.professional.get("/pro/messages")
    assert mine.status_code == 200
    assert "Résultats de la prise de sang" in seen(mine) and "Marie-Ange SANTONI" in seen(mine)
    assert "1 non lu" in seen(mine)
    assert 'href="/pro/messages"' in mine.text  # « Messagerie » in the /pro menu
    pro_page = actors.professional.get(f"/pro/messages/{thread_id}")
    assert pro_page.status_code == 200 and "Merci docteur." in seen(pro_page)
    (piece,) = attachment_ids(demo, thread_id)
    assert actors.professional.get(f"/pro/messages/pieces/{piece}").content == pdf
    assert "Ajouter à mes documents" not in seen(pro_page)
    assert "non lu" not in seen(actors.professional.get("/pro/messages")).replace("Aucun nouveau message", "")

    answered = actors.professional.post(
        f"/pro/messages/{thread_id}/repondre",
        data={"texte": "Parfait.", "csrf_token": csrf_of(pro_page.text)},
    )
    assert answered.status_code == 303
    assert "Parfait." in seen(actors.patient.get(url))


def test_a_refused_answer_comes_back_with_the_reason_and_the_typed_text(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id)
    url = base(actors, f"/{thread_id}")
    messages, blobs = count(demo, Message), count(demo, Attachment)
    too_big = b"%PDF-1.4\n" + b"0" * (5 * 1024 * 1024)  # one MB too many begins here
    for files, reason in (
        ([("fichiers", ("scanner.pdf", too_big, "application/pdf"))], "La pièce jointe « scanner.pdf » dépasse 5 Mo"),
        ([("fichiers", ("outil.exe", b"MZ" * 100, "application/octet-stream"))], "format non accepté"),
        ([("fichiers", ("faux.pdf", b"PK\x03\x04" * 50, "application/pdf"))], "ne correspond pas"),
        (
            [("fichiers", (f"p{n}.pdf", make_pdf("x"), "application/pdf")) for n in range(11)],
            "10 pièces jointes au plus",
        ),
    ):
        refused = actors.patient.post(
            f"{url}/repondre",
            data={"texte": "Ma réponse <importante>\ndeuxième ligne", "csrf_token": token(actors.patient, url)},
            files=files,
        )
        assert refused.status_code == 400, reason
        assert reason in seen(refused) and "Le message n'a pas été envoyé" in seen(refused)
        assert "Ma réponse &lt;importante&gt;\ndeuxième ligne</textarea>" in refused.text  # kept, escaped
    empty = actors.patient.post(f"{url}/repondre", data={"texte": "  ", "csrf_token": token(actors.patient, url)})
    assert empty.status_code == 400 and "Le message est vide" in seen(empty)
    assert count(demo, Message) == messages and count(demo, Attachment) == blobs


def test_the_professional_closes_and_the_person_writes_again(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id)
    pro_url = f"/pro/messages/{thread_id}"
    assert "Mettre fin à l'échange" in seen(actors.professional.get(pro_url))
    confirm = actors.professional.get(f"{pro_url}/terminer")
    assert confirm.status_code == 200 and "La personne ne pourra plus répondre dans cet échange" in seen(confirm)
    closed = actors.professional.post(f"{pro_url}/terminer", data={"csrf_token": csrf_of(confirm.text)})
    assert closed.status_code == 303
    after = actors.professional.get(closed.headers["location"])
    assert "L'échange est terminé" in seen(after) and "Mettre fin à l'échange" not in seen(after)
    assert 'action="/pro/messages/' not in after.text  # no answer form any more

    inbox = actors.patient.get(base(actors))
    assert "Échange terminé" in seen(inbox)
    url = base(actors, f"/{thread_id}")
    page = actors.patient.get(url)
    assert f"{DOCTOR} a mis fin à vos échanges" in seen(page)
    assert f"{url}/repondre" not in page.text and f"Écrire à nouveau à {DOCTOR}" in seen(page)
    late = actors.patient.post(
        f"{url}/repondre", data={"texte": "Encore une question", "csrf_token": csrf_of(page.text)}
    )
    assert late.status_code == 403 and "écrire à nouveau à ce professionnel" in seen(late)

    no_subject = actors.patient.post(
        f"{url}/ecrire", data={"objet": "", "texte": "Bonjour docteur", "csrf_token": csrf_of(page.text)}
    )
    assert no_subject.status_code == 400 and "Indiquez l'objet du message." in seen(no_subject)
    assert "Bonjour docteur</textarea>" in no_subject.text
    again = actors.patient.post(
        f"{url}/ecrire",
        data={"objet": "Nouvelle question", "texte": "Bonjour docteur", "csrf_token": csrf_of(page.text)},
    )
    assert again.status_code == 303
    new_id = again.headers["location"].split("/")[-1].split("?")[0]
    assert new_id != thread_id
    new_page = actors.patient.get(again.headers["location"])
    assert "Nouvelle question" in seen(new_page) and "Votre message a été envoyé." in seen(new_page)
    assert "Nouvelle question" in seen(actors.professional.get("/pro/messages"))


def test_deleting_a_conversation_asks_first_and_names_what_is_lost(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id, files=[pdf_file("radio-thorax.pdf")])
    (piece,) = attachment_ids(demo, thread_id)
    url = base(actors, f"/{thread_id}")
    assert f'href="{url}/supprimer"' in actors.patient.get(url).text
    confirm = actors.patient.get(f"{url}/supprimer")
    assert confirm.status_code == 200
    text = seen(confirm)
    assert "Les pièces jointes que vous n'avez pas ajoutées à vos documents seront perdues" in text
    assert "radio-thorax.pdf" in text
    with demo.db.unit_of_work() as db:
        blob = db.scalar(select(Attachment.blob_key).where(Attachment.id == piece))
    assert blob and demo.blobs.exists(blob)
    gone = actors.patient.post(f"{url}/supprimer", data={"csrf_token": csrf_of(confirm.text)})
    assert gone.status_code == 303 and gone.headers["location"] == f"{base(actors)}?message=supprime"
    assert "L'échange a été supprimé." in seen(actors.patient.get(gone.headers["location"]))
    assert count(demo, Thread) == 0 and not demo.blobs.exists(blob)
    assert actors.patient.get(url).status_code == 404
    assert actors.professional.get(f"/pro/messages/{thread_id}").status_code == 404


# ------------------------------------------------------------------ attachments: download and filing


def test_the_download_is_an_attachment_with_safe_headers(actors: Actors, demo: Services) -> None:
    pdf = make_pdf("Échographie")
    thread_id = write(demo, actors.patient_id, files=[SentFile('../Écho "abdo"\r\n.pdf', "application/pdf", pdf)])
    (piece,) = attachment_ids(demo, thread_id)
    response = actors.patient.get(base(actors, f"/pieces/{piece}"))
    assert response.status_code == 200 and response.content == pdf
    assert response.headers["content-type"] == "application/pdf"
    disposition = response.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=\"Echo-abdo-.pdf\"; filename*=UTF-8''")
    assert "%C3%89cho%20%22abdo%22.pdf" in disposition and "\r" not in disposition and ".." not in disposition
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    for client in (actors.stranger, actors.unauthorised):
        refused = client.get(base(actors, f"/pieces/{piece}"), follow_redirects=True)
        assert refused.status_code in {403, 404} and refused.content != pdf
    assert actors.unauthorised.get(f"/pro/messages/pieces/{piece}").status_code == 404
    assert actors.patient.get(base(actors, f"/pieces/{UNKNOWN}")).status_code == 404
    assert actors.anonymous.get(base(actors, f"/pieces/{piece}")).headers["location"] == "/connexion"


def test_filing_an_attachment_puts_it_in_the_documents_once(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id, files=[pdf_file("bilan-lipidique.pdf", "Cholesterol")])
    (piece,) = attachment_ids(demo, thread_id)
    url = base(actors, f"/pieces/{piece}/classer")
    form = actors.patient.get(url)
    assert form.status_code == 200
    assert "Type de document" in seen(form) and "bilan-lipidique.pdf" in seen(form)
    codes = re.findall(r'<option value="([^"]+)"', form.text)
    assert codes
    missing = actors.patient.post(url, data={"type": "", "titre": "Bilan", "csrf_token": csrf_of(form.text)})
    assert missing.status_code == 400 and "Choisissez le type du document." in seen(missing)
    assert 'value="Bilan"' in missing.text
    filed = actors.patient.post(
        url, data={"type": codes[0], "titre": "Bilan lipidique de mars", "csrf_token": csrf_of(form.text)}
    )
    assert filed.status_code == 303
    match = re.fullmatch(
        rf"/espace/{actors.patient_id}/documents/([0-9a-f-]{{36}})\?message=ajoute", filed.headers["location"]
    )
    assert match, filed.headers["location"]
    document = actors.patient.get(filed.headers["location"])
    assert document.status_code == 200 and "Bilan lipidique de mars" in seen(document)
    assert "Bilan lipidique de mars" in seen(actors.patient.get(f"/espace/{actors.patient_id}/documents"))
    with demo.db.unit_of_work() as db:
        deposits = db.scalars(
            select(AuditEntry.actor_kind).where(
                AuditEntry.action == "document.deposit", AuditEntry.resource_id == match.group(1)
            )
        ).all()
    assert deposits == ["patient"]
    history = seen(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "déposé un document" in history and "ajouté une pièce jointe aux documents" in history

    again = actors.patient.get(url)
    assert "Déjà dans vos documents" in seen(again) and f"/documents/{match.group(1)}" in again.text
    thread_page = actors.patient.get(base(actors, f"/{thread_id}"))
    assert "Déjà dans vos documents" in seen(thread_page)
    twice = actors.patient.post(url, data={"type": codes[0], "csrf_token": csrf_of(again.text)})
    assert twice.headers["location"] == filed.headers["location"]  # the same document, not a copy
    assert actors.stranger.get(url).status_code == 404


# ------------------------------------------------------------------ the quota


def test_a_full_messaging_says_what_to_do_and_refuses_attachments(
    actors: Actors, demo: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    thread_id = write(demo, actors.patient_id, files=[pdf_file()])
    used = sum(1 for _ in attachment_ids(demo, thread_id)) and count(demo, Attachment)
    assert used
    with demo.db.unit_of_work() as db:
        size = int(db.scalar(select(func.sum(Attachment.size))) or 0)
    monkeypatch.setattr(conversations, "quota_bytes", lambda services: int(size / 0.9))
    nearly = seen(actors.patient.get(base(actors)))
    assert "Votre messagerie est presque pleine" in nearly
    monkeypatch.setattr(conversations, "quota_bytes", lambda services: size)
    full = seen(actors.patient.get(base(actors)))
    assert "Votre messagerie est pleine" in full and "supprimez les échanges" in full
    url = base(actors, f"/{thread_id}")
    refused = actors.patient.post(
        f"{url}/repondre",
        data={"texte": "Voici ma carte vitale.", "csrf_token": token(actors.patient, url)},
        files=[("fichiers", ("carte.pdf", make_pdf("Carte"), "application/pdf"))],
    )
    assert refused.status_code == 400 and "La messagerie de cet espace est pleine" in seen(refused)
    assert "Voici ma carte vitale.</textarea>" in refused.text and count(demo, Attachment) == 1


# ------------------------------------------------------------------ who may do what


def test_strangers_and_anonymous_visitors_see_nothing_and_change_nothing(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id, files=[pdf_file()])
    (piece,) = attachment_ids(demo, thread_id)
    refused = actors.stranger.get(base(actors))
    assert refused.status_code == 403 and "Vous n'avez pas accès à cet espace." in seen(refused)
    assert "Résultats" not in seen(refused) and "SANTONI" not in seen(refused)
    for path in (
        f"/{thread_id}",
        f"/{thread_id}/supprimer",
        f"/pieces/{piece}",
        f"/pieces/{piece}/classer",
        f"/{UNKNOWN}",
    ):
        response = actors.stranger.get(base(actors, path))
        assert response.status_code == 404, path
        assert "Échange introuvable." in seen(response) and "Résultats" not in seen(response)
    # the same answer in the stranger's own space: a conversation of another space is not there
    own = actors.stranger.get("/espace", follow_redirects=True).url.path
    assert actors.stranger.get(f"{own}/messages/{thread_id}").status_code == 404
    messages = count(demo, Message)
    csrf = token(actors.stranger, "/espace")
    for path, data in (
        (f"/{thread_id}/repondre", {"texte": "Bonjour"}),
        (f"/{thread_id}/ecrire", {"objet": "Objet", "texte": "Bonjour"}),
        (f"/{thread_id}/supprimer", {}),
        (f"/pieces/{piece}/classer", {"type": "x"}),
    ):
        response = actors.stranger.post(base(actors, path), data={**data, "csrf_token": csrf})
        assert response.status_code in {403, 404}, path
    assert count(demo, Message) == messages and count(demo, Thread) == 1
    anonymous_token = token(actors.anonymous, "/connexion")
    for path in ("", f"/{thread_id}", f"/{thread_id}/supprimer", f"/pieces/{piece}/classer"):
        response = actors.anonymous.get(base(actors, path))
        assert response.status_code == 303 and response.headers["location"] == "/connexion", path
    posted = actors.anonymous.post(
        base(actors, f"/{thread_id}/repondre"), data={"texte": "x", "csrf_token": anonymous_token}
    )
    assert posted.status_code == 303 and posted.headers["location"] == "/connexion"
    for path in ("/pro/messages", f"/pro/messages/{thread_id}", f"/pro/patients/{actors.patient_id}/messages/nouveau"):
        assert actors.anonymous.get(path).headers["location"] == "/connexion"
    assert count(demo, Message) == messages


def test_professionals_use_their_own_side_and_only_their_own_conversations(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id)
    for path in ("", f"/{thread_id}"):
        sent_away = actors.professional.get(base(actors, path))
        assert sent_away.status_code == 303
        assert sent_away.headers["location"] == f"/pro/patients/{actors.patient_id}/documents"
    messages = count(demo, Message)
    csrf = token(actors.professional, "/pro")
    for path in (f"/{thread_id}/repondre", f"/{thread_id}/supprimer"):
        refused = actors.professional.post(base(actors, path), data={"texte": "Bonjour", "csrf_token": csrf})
        assert refused.status_code == 403, path
    assert count(demo, Message) == messages and count(demo, Thread) == 1

    # another professional (the dentist, never authorised) does not see the doctor's conversation
    dentist_csrf = token(actors.unauthorised, "/pro")
    assert "Résultats" not in seen(actors.unauthorised.get("/pro/messages"))
    for response in (
        actors.unauthorised.get(f"/pro/messages/{thread_id}"),
        actors.unauthorised.get(f"/pro/messages/{thread_id}/terminer"),
        actors.unauthorised.post(
            f"/pro/messages/{thread_id}/repondre", data={"texte": "Bonjour", "csrf_token": dentist_csrf}
        ),
        actors.unauthorised.post(f"/pro/messages/{thread_id}/terminer", data={"csrf_token": dentist_csrf}),
    ):
        assert response.status_code == 404 and "Échange introuvable." in seen(response)
        assert "Résultats" not in seen(response)
    assert count(demo, Message) == messages
    with demo.db.unit_of_work() as db:
        row = db.get(Thread, thread_id)
        assert row is not None and row.status == "ouvert"
    # a patient opening the professional's messaging is sent to her space
    mine = actors.patient.get("/pro/messages")
    assert mine.status_code == 303 and mine.headers["location"] == f"/espace/{actors.patient_id}"


def test_the_professional_writes_to_a_patient_from_her_page(actors: Actors, demo: Services) -> None:
    status = actors.professional.get(f"/pro/patients/{actors.patient_id}")
    new_url = f"/pro/patients/{actors.patient_id}/messages/nouveau"
    assert f'href="{new_url}"' in status.text and "Écrire au patient" in seen(status)
    form = actors.professional.get(new_url)
    assert form.status_code == 200 and "Écrire à Marie-Ange SANTONI" in seen(form)
    no_subject = actors.professional.post(
        new_url, data={"objet": " ", "texte": "Votre ordonnance est prête.", "csrf_token": csrf_of(form.text)}
    )
    assert no_subject.status_code == 400 and "Indiquez l'objet du message." in seen(no_subject)
    assert "Votre ordonnance est prête.</textarea>" in no_subject.text and count(demo, Thread) == 0
    pdf = make_pdf("Ordonnance")
    sent = actors.professional.post(
        new_url,
        data={"objet": "Ordonnance", "texte": "Votre ordonnance est prête.", "csrf_token": csrf_of(form.text)},
        files=[("fichiers", ("ordonnance.pdf", pdf, "application/pdf"))],
    )
    assert sent.status_code == 303 and re.fullmatch(
        r"/pro/messages/[0-9a-f-]{36}\?message=envoye", sent.headers["location"]
    )
    page = actors.professional.get(sent.headers["location"])
    assert "Votre message a été envoyé à la personne." in seen(page) and "ordonnance.pdf" in seen(page)
    inbox = actors.patient.get(base(actors))
    assert "Ordonnance" in seen(inbox) and "1 non lu" in seen(inbox)
    # the dentist, never authorised, may write too (like a deposit), without learning the name on the form
    dentist_form = actors.unauthorised.get(new_url)
    assert dentist_form.status_code == 200 and "SANTONI" not in seen(dentist_form)
    assert "Écrire au patient" in seen(dentist_form)
    # an unknown space
    assert actors.professional.get(f"/pro/patients/{UNKNOWN}/messages/nouveau").status_code == 403


def test_a_legal_representative_reads_and_answers_for_the_minor(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    child = space_of(demo, "Lisandru")
    thread_id = write(demo, child, "Rappel du vaccin", "Le rappel DTP est à faire.")
    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    home = mother.get(f"/espace/{child}")
    assert "1 message non lu" in seen(home)
    inbox = mother.get(f"/espace/{child}/messages")
    assert inbox.status_code == 200 and "Rappel du vaccin" in seen(inbox)
    url = f"/espace/{child}/messages/{thread_id}"
    page = mother.get(url)
    assert page.status_code == 200 and "Le rappel DTP est à faire." in seen(page)
    answered = mother.post(f"{url}/repondre", data={"texte": "Nous viendrons mardi.", "csrf_token": csrf_of(page.text)})
    assert answered.status_code == 303
    assert "Nous viendrons mardi." in seen(actors.professional.get(f"/pro/messages/{thread_id}"))
    assert "Laetitia CASANOVA" in seen(mother.get(url))
    # Marie-Ange is a stranger to Lisandru's space
    assert actors.patient.get(f"/espace/{child}/messages").status_code == 403
    assert actors.patient.get(f"/espace/{child}/messages/{thread_id}").status_code == 404


def test_a_caregiver_does_not_read_the_messaging(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id)
    with demo.db.unit_of_work() as db:  # Pierre-Paul (the stranger) becomes Marie-Ange's caregiver (FAM-3)
        helper = db.scalar(select(Account.patient_id).where(Account.login == "pierre-paul.luciani"))
        db.add(Caregiver(helped_id=actors.patient_id, caregiver_id=helper))
    home = actors.stranger.get(f"/espace/{actors.patient_id}")
    assert home.status_code == 200
    assert f'href="{base(actors)}"' not in home.text and "non lu" not in seen(home)
    assert "Aucun nouveau message" not in seen(home)
    refused = actors.stranger.get(base(actors))
    assert refused.status_code == 403
    assert "La messagerie reste personnelle : un aidant n'y a pas accès." in seen(refused)
    assert actors.stranger.get(base(actors, f"/{thread_id}")).status_code == 404
    csrf = csrf_of(home.text)
    posted = actors.stranger.post(base(actors, f"/{thread_id}/repondre"), data={"texte": "Bonjour", "csrf_token": csrf})
    assert posted.status_code == 404 and count(demo, Message) == 1


def test_every_form_needs_its_csrf_token(actors: Actors, demo: Services) -> None:
    thread_id = write(demo, actors.patient_id, files=[pdf_file()])
    (piece,) = attachment_ids(demo, thread_id)
    messages = count(demo, Message)
    for path, data in (
        (base(actors, f"/{thread_id}/repondre"), {"texte": "Bonjour"}),
        (base(actors, f"/{thread_id}/ecrire"), {"objet": "Objet", "texte": "Bonjour"}),
        (base(actors, f"/{thread_id}/supprimer"), {}),
        (base(actors, f"/pieces/{piece}/classer"), {"type": "11502-2"}),
    ):
        forged = actors.patient.post(path, data={**data, "csrf_token": "x"})
        assert forged.status_code == 403 and "Le formulaire a expiré" in seen(forged), path
        assert actors.patient.post(path, data=data).status_code == 403, path
    for path, data in (
        (f"/pro/messages/{thread_id}/repondre", {"texte": "Bonjour"}),
        (f"/pro/messages/{thread_id}/terminer", {}),
        (f"/pro/patients/{actors.patient_id}/messages/nouveau", {"objet": "Objet", "texte": "Bonjour"}),
    ):
        assert actors.professional.post(path, data={**data, "csrf_token": "x"}).status_code == 403, path
    assert count(demo, Message) == messages and count(demo, Thread) == 1
    with demo.db.unit_of_work() as db:
        row = db.get(Thread, thread_id)
        assert row is not None and row.status == "ouvert"
        assert db.scalar(select(Attachment.document_id).where(Attachment.id == piece)) is None
