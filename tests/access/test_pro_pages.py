"""The professional's side of the portal (ACC-1..4): find a patient by INS + identity traits, the TD0.2
status, oral consent, blocking, emergency access (break-the-glass, SAMU), the professional document view
and deposits — with the patient, the médecin traitant, an unauthorised dentist, a stranger, anonymous
visitors, the authorised pharmacist and the SAMU regulator."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from carnet.access.service import grants as access
from carnet.access.tables import AccessGrant, EmergencyAccess
from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.people.model.identifiers import nir_from_body
from carnet.people.service import preferences
from carnet.people.tables import Account, Establishment, Patient, Professional
from carnet.storage.types import utcnow
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document
from tests.conftest import csrf_of, log_in, outbox_messages, text_of
from tests.support.actors import Actors
from tests.support.documents import make_pdf

PHARMACIST = "anna-maria.peretti"  # authorised reader (ACC-1)
SAMU = "dr.santucci"  # SAMU regulator, not authorised (ACC-4)
TRAITS = {"nom": "SANTONI", "prenom": "Marie-Ange", "naissance": "1985-03-14"}
REASON = "Patiente inconsciente aux urgences, recherche d'allergies"


# ------------------------------------------------------------------ helpers


def login(new_client: Callable[[], TestClient], demo: Services, who: str) -> TestClient:
    client = new_client()
    log_in(client, demo, who)
    return client


def ins_of(demo: Services, patient_id: str) -> str:
    with demo.db.unit_of_work() as db:
        patient = db.get(Patient, patient_id)
        assert patient is not None
        return patient.ins


def token(client: TestClient) -> str:
    return csrf_of(client.get("/", follow_redirects=True).text)


def search(client: TestClient, ins: str, **traits: str) -> Any:
    return client.post("/pro/recherche", data={"ins": ins, **{**TRAITS, **traits}, "csrf_token": token(client)})


def base(actors: Actors) -> str:
    return f"/pro/patients/{actors.patient_id}"


def post(client: TestClient, url: str, **data: str) -> Any:
    return client.post(url, data={**data, "csrf_token": token(client)})


def consent(client: TestClient, actors: Actors) -> Any:
    return post(client, f"{base(actors)}/consentement", accord="oui")


def emergency(client: TestClient, actors: Actors, reason: str = REASON, confirmed: bool = True) -> Any:
    data = {"motif": reason, **({"incapacite": "oui"} if confirmed else {})}
    return post(client, f"{base(actors)}/urgence", **data)


def patient_actor(demo: Services, patient_id: str) -> Actor:
    from carnet.identity.service import auth

    with demo.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.patient_id == patient_id))
        assert account is not None
        return auth.actor_for(db, account)


def professional_id(demo: Services, rpps: str) -> str:
    with demo.db.unit_of_work() as db:
        pro_id = db.scalar(select(Professional.id).where(Professional.rpps == rpps))
        assert pro_id
        return pro_id


def lab_deposit(
    demo: Services, patient_id: str, title: str, type_code: str = "11502-2", labels: list[str] | None = None
) -> str:
    """A document from the hospital lab (an establishment), straight through the vault."""
    with demo.db.unit_of_work() as db:
        lab = db.scalar(select(Establishment))
        assert lab is not None
        actor = Actor(ActorKind.ESTABLISHMENT, None, lab.name, finess=lab.finess, establishment_id=lab.id)
    new = vault.NewDocument(
        patient_id, "http://loinc.org", type_code, title, "application/pdf", make_pdf(title), labels or []
    )
    (document,) = vault.deposit_many(demo, actor, [new])
    return document.id


def cards(response: Any) -> int:
    return int(response.text.count('<h3 class="fr-card__title">'))


# ------------------------------------------------------------------ who may use the professional pages


def test_the_professional_home_is_for_professionals(actors: Actors) -> None:
    page = actors.professional.get("/pro")
    assert page.status_code == 200
    text = text_of(page)
    assert "Dr Jean-Baptiste FERRACCI" in text and "RPPS 10001234567" in text and "Médecin" in text
    assert "Marie-Ange SANTONI" in text  # « Mes patients »: she declared him her médecin traitant
    assert actors.patient.get("/pro").headers["location"] == f"/espace/{actors.patient_id}"
    assert actors.stranger.get("/pro").headers["location"].startswith("/espace/")
    assert actors.anonymous.get("/pro").headers["location"] == "/connexion"
    unauthorised = text_of(actors.unauthorised.get("/pro"))
    assert "SANTONI" not in unauthorised and "Aucun patient ne vous a encore autorisé" in unauthorised


def every_route(actors: Actors, demo: Services) -> tuple[list[str], dict[str, dict[str, str]]]:
    document_id = lab_deposit(demo, actors.patient_id, "Ferritine de contrôle")
    gets = [
        base(actors),
        f"{base(actors)}/documents",
        f"{base(actors)}/documents/deposer",
        f"{base(actors)}/documents/{document_id}",
        f"{base(actors)}/documents/{document_id}/apercu",
        f"{base(actors)}/documents/{document_id}/telecharger",
    ]
    posts = {
        "/pro/recherche": {"ins": ins_of(demo, actors.patient_id), **TRAITS},
        f"{base(actors)}/consentement": {"accord": "oui"},
        f"{base(actors)}/urgence": {"motif": REASON, "incapacite": "oui"},
        f"{base(actors)}/documents/deposer": {"type": "11488-4", "titre": "Intrus"},
    }
    return gets, posts


def test_patients_and_strangers_are_sent_home_and_anonymous_visitors_to_the_login(
    actors: Actors, demo: Services
) -> None:
    gets, posts = every_route(actors, demo)
    homes = {"patient": f"/espace/{actors.patient_id}", "stranger": "/espace/", "anonymous": "/connexion"}
    for who, home in homes.items():
        client: TestClient = getattr(actors, who)
        csrf = csrf_of(client.get("/connexion" if who == "anonymous" else "/", follow_redirects=True).text)
        for url in gets:
            response = client.get(url)
            assert response.status_code == 303 and response.headers["location"].startswith(home), (who, url)
        for url, data in posts.items():
            files = {"fichier": ("intrus.pdf", make_pdf("intrus"), "application/pdf")} if "deposer" in url else None
            response = client.post(url, data={**data, "csrf_token": csrf}, files=files)
            assert response.status_code == 303 and response.headers["location"].startswith(home), (who, url)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(EmergencyAccess)) is None
        assert db.scalars(select(AccessGrant.origin)).all() == ["patient", "patient"]  # the demo grants only
        assert [d.title for d in db.scalars(select(Document))] == ["Ferritine de contrôle"]


def test_the_medecin_traitant_opens_every_page(actors: Actors, demo: Services) -> None:
    gets, _ = every_route(actors, demo)
    for url in gets:
        response = actors.professional.get(url)
        assert response.status_code == 200, url
    status = text_of(actors.professional.get(base(actors)))
    assert "Votre accès : Médecin traitant" in status and "Marie-Ange SANTONI" in status
    assert "y compris ceux qu'elle a masqués" in status and "Accéder à l'espace" in status


def test_an_unauthorised_professional_learns_the_status_and_nothing_else(actors: Actors, demo: Services) -> None:
    gets, _ = every_route(actors, demo)
    status = actors.unauthorised.get(gets[0])
    assert status.status_code == 200
    text = text_of(status)
    assert "Votre accès : Non autorisé" in text
    assert "La personne ne vous a pas autorisé à consulter son espace santé." in text
    assert "Enregistrer le consentement oral de la personne" in text and "Accès en urgence (bris de glace)" in text
    assert "Accéder à l'espace" not in text
    deposit = actors.unauthorised.get(gets[2])
    assert deposit.status_code == 200 and "Déposer un document" in text_of(deposit)
    for url in gets[1:2] + gets[3:]:
        response = actors.unauthorised.get(url)
        assert response.status_code in {403, 404}, url
        assert "Ferritine" not in text_of(response), url
    for response in [status, deposit, *(actors.unauthorised.get(url) for url in gets)]:
        page = text_of(response)
        assert "SANTONI" not in page and "Marie-Ange" not in page and "14/03/1985" not in page
    refused = text_of(actors.unauthorised.get(gets[1]))
    assert "La personne ne vous a pas autorisé à consulter son espace santé." in refused


# ------------------------------------------------------------------ search by INS + identity traits (TD0.2)


@pytest.mark.parametrize(
    "traits",
    [
        TRAITS,
        {"nom": "santoni", "prenom": "marie ange", "naissance": "14/03/1985"},
        {"nom": " Santoni ", "prenom": "MARIE-ANGE", "naissance": "1985-03-14"},
    ],
)
def test_search_finds_the_space_when_ins_and_traits_match(
    actors: Actors, demo: Services, traits: dict[str, str]
) -> None:
    response = search(actors.professional, ins_of(demo, actors.patient_id), **traits)
    assert response.status_code == 303
    assert response.headers["location"] == base(actors)  # the internal id: never the INS in an address
    assert "Marie-Ange SANTONI" in text_of(actors.professional.get(response.headers["location"]))


@pytest.mark.parametrize(
    "wrong",
    [{"nom": "SANTINI"}, {"prenom": "Marie"}, {"naissance": "1985-03-15"}],
)
def test_wrong_traits_are_refused_without_revealing_the_right_ones(
    actors: Actors, demo: Services, wrong: dict[str, str]
) -> None:
    typed = {"nom": "SANTINI", "prenom": "Marie", "naissance": "1985-03-15"}  # nothing right but the INS
    response = search(actors.unauthorised, ins_of(demo, actors.patient_id), **{**TRAITS, **wrong})
    assert response.status_code == 400
    assert "Les traits d'identité ne correspondent pas à cet INS." in text_of(response)
    response = search(actors.unauthorised, ins_of(demo, actors.patient_id), **typed)
    text = text_of(response)
    assert "Les traits d'identité ne correspondent pas à cet INS." in text
    assert "SANTONI" not in text and "Marie-Ange" not in text and "14/03/1985" not in text and "1985-03-14" not in text
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "a tenté une recherche de l'espace santé — refusée" in history


def test_an_unknown_ins_and_an_unauthorised_search_differ_only_by_the_status(actors: Actors, demo: Services) -> None:
    unknown = search(actors.unauthorised, nir_from_body("1840699123456"))
    assert unknown.status_code == 404
    assert "Aucun espace santé ouvert ne correspond à cet INS." in text_of(unknown)
    found = search(actors.unauthorised, ins_of(demo, actors.patient_id))
    assert found.status_code == 303 and found.headers["location"] == base(actors)
    status = text_of(actors.unauthorised.get(found.headers["location"]))
    assert "La personne recherchée a un espace santé." in status and "Votre accès : Non autorisé" in status
    assert "SANTONI" not in status and "Marie-Ange" not in status
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "Dr Dominique ORSINI" in history and "a recherché l'espace santé" in history


def test_a_space_that_is_not_open_looks_like_an_unknown_ins(actors: Actors, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        db.execute(update(Patient).where(Patient.id == actors.patient_id).values(status="closed"))
    closed = search(actors.professional, ins_of(demo, actors.patient_id))
    unknown = search(actors.professional, nir_from_body("1840699123456"))
    assert closed.status_code == unknown.status_code == 404
    assert "Aucun espace santé ouvert ne correspond à cet INS." in text_of(closed)
    assert actors.professional.get(base(actors)).status_code == 403
    assert "SANTONI" not in text_of(actors.professional.get(base(actors)))


@pytest.mark.parametrize(
    ("ins", "traits", "message"),
    [
        ("1840512345678 00", {}, "la clé est invalide"),
        ("", {}, "aucun numéro n'a été saisi"),
        ("285032A004117xx", {"nom": ""}, "Nom de naissance : indiquez-le"),
        ("285032A004117xx", {"naissance": "31/02/1985"}, "Date de naissance : saisissez-la au format JJ/MM/AAAA"),
    ],
)
def test_a_malformed_search_gets_a_french_explanation(
    actors: Actors, demo: Services, ins: str, traits: dict[str, str], message: str
) -> None:
    if ins.endswith("xx"):
        ins = ins_of(demo, actors.patient_id)
    response = search(actors.professional, ins, **traits)
    assert response.status_code == 400
    assert message in text_of(response)


# ------------------------------------------------------------------ oral consent (ACC-1)


def test_oral_consent_gives_access_until_the_patient_revokes_it(actors: Actors, demo: Services) -> None:
    lab_deposit(demo, actors.patient_id, "Numération formule sanguine")
    docs = f"{base(actors)}/documents"
    assert actors.unauthorised.get(docs).status_code == 403
    unticked = post(actors.unauthorised, f"{base(actors)}/consentement")
    assert unticked.status_code == 400
    assert "Cochez la case « La personne m'a donné son accord oral »" in text_of(unticked)
    response = consent(actors.unauthorised, actors)
    assert response.status_code == 303 and response.headers["location"] == f"{base(actors)}?message=consentement"
    status = text_of(actors.unauthorised.get(response.headers["location"]))
    assert "Le consentement oral de la personne est enregistré" in status and "Votre accès : Autorisé" in status
    listing = actors.unauthorised.get(docs)
    assert listing.status_code == 200
    assert "Documents de Marie-Ange SANTONI" in text_of(listing) and "Numération formule sanguine" in text_of(listing)
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "a enregistré le consentement à l'accès à l'espace santé" in history
    patient = patient_actor(demo, actors.patient_id)
    with demo.db.unit_of_work() as db:
        grant = db.scalar(select(AccessGrant).where(AccessGrant.origin == "oral"))
        assert grant is not None and grant.role == "reader"
        access.revoke(db, patient, actors.patient_id, grant.id)
    refused = actors.unauthorised.get(docs)
    assert refused.status_code == 403 and "Numération" not in text_of(refused)
    assert "Votre accès : Non autorisé" in text_of(actors.unauthorised.get(base(actors)))


# ------------------------------------------------------------------ blocking (ACC-3)


def test_a_blocked_professional_cannot_read_but_still_deposits_and_needs_a_new_consent(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    pharmacist = login(new_client, demo, PHARMACIST)
    lab_deposit(demo, actors.patient_id, "Bilan lipidique")
    docs = f"{base(actors)}/documents"
    assert "Bilan lipidique" in text_of(pharmacist.get(docs))
    patient = patient_actor(demo, actors.patient_id)
    pharmacist_id = professional_id(demo, "10002345678")
    with demo.db.unit_of_work() as db:
        access.block(db, patient, actors.patient_id, pharmacist_id)
    refused = pharmacist.get(docs)
    assert refused.status_code == 403
    assert "La personne vous a bloqué" in text_of(refused) and "Bilan lipidique" not in text_of(refused)
    status = text_of(pharmacist.get(base(actors)))
    assert "Votre accès : Accès bloqué par la personne" in status and "SANTONI" not in status
    again = consent(pharmacist, actors)
    assert again.status_code == 403 and "seule elle peut vous autoriser à nouveau" in text_of(again)
    form = pharmacist.get(f"{docs}/deposer")
    deposited = pharmacist.post(
        f"{docs}/deposer",
        data={"type": "57833-6", "titre": "Délivrance du 12 mars", "csrf_token": csrf_of(form.text)},
        files={"fichier": ("delivrance.pdf", make_pdf("Délivrance"), "application/pdf")},
    )
    assert deposited.status_code == 303 and deposited.headers["location"] == f"{base(actors)}?message=depose"
    assert "Votre document a été déposé" in text_of(pharmacist.get(deposited.headers["location"]))
    with demo.db.unit_of_work() as db:
        document = db.scalar(select(Document).where(Document.title == "Délivrance du 12 mars"))
        assert document is not None and document.author_id == pharmacist_id and document.category == "ORD_SOIN"
        access.unblock(db, patient, actors.patient_id, pharmacist_id)
    assert pharmacist.get(docs).status_code == 403  # unblocking does not bring the old authorisation back
    assert consent(pharmacist, actors).status_code == 303
    assert "Bilan lipidique" in text_of(pharmacist.get(docs))


# ------------------------------------------------------------------ emergency access (ACC-4)


def test_break_the_glass_needs_a_reason_and_a_confirmation(actors: Actors) -> None:
    short = emergency(actors.unauthorised, actors, reason="urgent")
    assert short.status_code == 400
    assert "Indiquez le motif de l'accès en urgence (au moins 10 caractères)." in text_of(short)
    assert "urgent" in text_of(short)  # the typed reason is kept in the form
    unconfirmed = emergency(actors.unauthorised, actors, confirmed=False)
    assert unconfirmed.status_code == 400
    assert "Cochez la case confirmant que la personne n'est pas en état de donner son accord." in text_of(unconfirmed)
    assert actors.unauthorised.get(f"{base(actors)}/documents").status_code == 403


def test_break_the_glass_opens_the_space_for_two_hours(actors: Actors, demo: Services) -> None:
    lab_deposit(demo, actors.patient_id, "Groupe sanguin")
    response = emergency(actors.unauthorised, actors)
    assert response.status_code == 303
    assert response.headers["location"] == f"{base(actors)}/documents?message=urgence"
    listing = text_of(actors.unauthorised.get(response.headers["location"]))
    assert "Accès en urgence ouvert pour 2 heures" in listing and "Groupe sanguin" in listing
    with demo.db.unit_of_work() as db:
        row = db.scalar(select(EmergencyAccess))
        assert row is not None and row.kind == "bris_de_glace" and row.reason == REASON
        assert timedelta(minutes=119) < row.expires_at - row.started_at <= timedelta(hours=2)
    status = text_of(actors.unauthorised.get(base(actors)))
    assert "Votre accès : Accès en urgence" in status
    assert re.search(r"Accès en urgence jusqu'à \d\d:\d\d", status)
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "a accédé à l'espace santé en urgence" in history
    with demo.db.unit_of_work() as db:  # two hours later
        db.execute(update(EmergencyAccess).values(expires_at=utcnow() - timedelta(minutes=1)))
    expired = actors.unauthorised.get(f"{base(actors)}/documents")
    assert expired.status_code == 403 and "Groupe sanguin" not in text_of(expired)
    assert "Votre accès : Non autorisé" in text_of(actors.unauthorised.get(base(actors)))


def test_the_patient_can_refuse_emergency_access_by_professionals(actors: Actors, demo: Services) -> None:
    patient = patient_actor(demo, actors.patient_id)
    with demo.db.unit_of_work() as db:
        preferences.update(db, patient, actors.patient_id, emergency_professionals=False)
    status = text_of(actors.unauthorised.get(base(actors)))
    assert "La personne a refusé l'accès des professionnels en urgence à son espace santé." in status
    assert 'action="' + base(actors) + '/urgence"' not in status
    refused = emergency(actors.unauthorised, actors)
    assert refused.status_code == 403
    assert "La personne a refusé l'accès des professionnels en urgence à son espace santé." in text_of(refused)
    assert actors.unauthorised.get(f"{base(actors)}/documents").status_code == 403
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(EmergencyAccess)) is None


def test_the_samu_regulator_uses_the_samu_toggle(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    regulator = login(new_client, demo, SAMU)
    patient = patient_actor(demo, actors.patient_id)
    with demo.db.unit_of_work() as db:
        preferences.update(db, patient, actors.patient_id, emergency_professionals=False)
    status = text_of(regulator.get(base(actors)))
    assert "Accès SAMU (régulation)" in status and "Accès en urgence (bris de glace)" not in status
    response = emergency(regulator, actors, reason="Appel au 15 : malaise, patiente inconsciente")
    assert response.status_code == 303
    assert regulator.get(f"{base(actors)}/documents").status_code == 200
    assert re.search(r"Accès SAMU \(régulation\) jusqu'à \d\d:\d\d", text_of(regulator.get(base(actors))))
    with demo.db.unit_of_work() as db:
        assert db.scalars(select(EmergencyAccess.kind)).all() == ["samu"]
        preferences.update(db, patient, actors.patient_id, emergency_samu=False)
    assert regulator.get(f"{base(actors)}/documents").status_code == 403  # the toggle applies at once
    refused = emergency(regulator, actors, reason="Nouvel appel au 15 pour la même patiente")
    assert refused.status_code == 403
    assert "La personne a refusé l'accès par le SAMU à son espace santé." in text_of(refused)


def test_emergency_access_e_mails_the_patient_and_the_medecin_traitant_without_health_data(
    actors: Actors, demo: Services
) -> None:
    lab_deposit(demo, actors.patient_id, "Sérologie VIH confidentielle")
    assert emergency(actors.unauthorised, actors).status_code == 303
    assert "Sérologie" in text_of(actors.unauthorised.get(f"{base(actors)}/documents"))
    before = len(outbox_messages(demo))
    access.send_notices(demo)
    sent = outbox_messages(demo)[before:]
    recipients = {message["To"] for message in sent}  # type: ignore[index]
    assert {"marie-ange.santoni@exemple.fr", "dr.ferracci@exemple.fr"} <= recipients
    for message in sent:
        body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
        content = f"{message['Subject']}\n{body}"  # type: ignore[index]
        for secret in ("Sérologie", "VIH", "inconsciente", "allergies", "SANTONI", "ORSINI"):
            assert secret not in content, (message["To"], secret)  # type: ignore[index]
    home = text_of(actors.professional.get("/pro"))
    assert "Accès en urgence aux espaces de vos patients" in home
    row = home.split("Accès en urgence aux espaces de vos patients")[1]
    assert "Marie-Ange SANTONI" in row and "Dr Dominique ORSINI" in row and "bris de glace" in row
    assert "Aucun accès en urgence récent." in text_of(actors.unauthorised.get("/pro"))


# ------------------------------------------------------------------ what each profession sees (matrix, masking)


def test_a_consented_dentist_sees_neither_advance_directives_nor_masked_documents(
    actors: Actors, demo: Services
) -> None:
    directives = lab_deposit(demo, actors.patient_id, "Directives anticipées signées", type_code="42348-3")
    masked = lab_deposit(demo, actors.patient_id, "Compte rendu masqué", type_code="11488-4", labels=["MASQUE_PS"])
    visible = lab_deposit(demo, actors.patient_id, "Panoramique dentaire", type_code="18748-4")
    docs = f"{base(actors)}/documents"
    assert consent(actors.unauthorised, actors).status_code == 303
    dentist = actors.unauthorised.get(docs)
    text = text_of(dentist)
    assert "Panoramique dentaire" in text and "1 document" in text and cards(dentist) == 1
    assert "Directives anticipées signées" not in text and "Compte rendu masqué" not in text
    for word in ("directives", "masque"):
        found = actors.unauthorised.get(f"{docs}?q={word}")
        assert cards(found) == 0 and "Aucun document ne correspond à votre recherche." in text_of(found)
    assert cards(actors.unauthorised.get(f"{docs}?categorie=DIR_ANT")) == 0
    for document_id in (directives, masked):
        for suffix in ("", "/apercu", "/telecharger"):
            response = actors.unauthorised.get(f"{docs}/{document_id}{suffix}")
            assert response.status_code == 404, suffix
            assert "Ce document n'existe pas ou ne vous est pas accessible." in text_of(response)
    unknown = actors.unauthorised.get(f"{docs}/00000000-0000-4000-8000-000000000000")
    assert unknown.status_code == 404 and text_of(unknown) == text_of(actors.unauthorised.get(f"{docs}/{masked}"))
    assert actors.unauthorised.get(f"{docs}/{visible}").status_code == 200
    doctor = actors.professional.get(docs)
    assert cards(doctor) == 3 and "3 documents" in text_of(doctor)
    assert "Masqué par la personne aux autres professionnels" in text_of(doctor)
    for document_id in (directives, masked):
        assert actors.professional.get(f"{docs}/{document_id}").status_code == 200
        download = actors.professional.get(f"{docs}/{document_id}/telecharger")
        assert download.status_code == 200 and download.content.startswith(b"%PDF-")


# ------------------------------------------------------------------ the document view: search, paging, consultation


def test_search_paging_and_filters_of_the_professional_view(actors: Actors, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        lab = db.scalar(select(Establishment))
        assert lab is not None
        actor = Actor(ActorKind.ESTABLISHMENT, None, lab.name, finess=lab.finess, establishment_id=lab.id)
    batch = [
        vault.NewDocument(actors.patient_id, "http://loinc.org", "11502-2", f"Bilan {n:02d}", "text/plain", b"NFS")
        for n in range(23)
    ]
    batch.append(
        vault.NewDocument(
            actors.patient_id, "http://loinc.org", "18748-4", "Radio du thorax", "text/plain", b"Hemoglobine normale"
        )
    )
    vault.deposit_many(demo, actor, batch)
    docs = f"{base(actors)}/documents"
    first = actors.professional.get(docs)
    assert cards(first) == 20 and "Page 1 sur 2" in text_of(first) and "24 documents" in text_of(first)
    second = actors.professional.get(f"{docs}?page=2")
    assert cards(second) == 4 and "Page 2 sur 2" in text_of(second)
    beyond = actors.professional.get(f"{docs}?page=9")
    assert cards(beyond) == 4 and "Page 2 sur 2" in text_of(beyond)
    found = actors.professional.get(f"{docs}?q=hémoglobine")
    assert cards(found) == 1 and "Radio du thorax" in text_of(found)
    radio = actors.professional.get(f"{docs}?categorie=RADIO_SC")
    assert cards(radio) == 1 and "Radio, écho, scanner, IRM — 1 document" in text_of(radio)
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    assert cards(actors.professional.get(f"{docs}?du={tomorrow}")) == 0
    bad = actors.professional.get(f"{docs}?au=31-12-2024")
    assert "n'est pas valide" in text_of(bad)
    document_id = re.findall(rf'href="{docs}/([0-9a-f-]{{36}})"', found.text)[0]
    page = actors.professional.get(f"{docs}/{document_id}")
    assert page.status_code == 200
    assert "Hemoglobine normale" in text_of(page)  # a text document is shown in the page
    history = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "a consulté un document" in history and "a consulté la liste des documents" in history


def test_preview_is_inline_and_download_an_attachment(actors: Actors, demo: Services) -> None:
    document_id = lab_deposit(demo, actors.patient_id, "Échographie abdominale", type_code="18748-4")
    docs = f"{base(actors)}/documents"
    page = actors.professional.get(f"{docs}/{document_id}")
    assert f'src="{docs}/{document_id}/apercu"' in page.text
    preview = actors.professional.get(f"{docs}/{document_id}/apercu")
    assert preview.status_code == 200 and preview.headers["content-type"] == "application/pdf"
    assert preview.headers["content-disposition"].startswith("inline;")
    assert "frame-ancestors 'self'" in preview.headers["content-security-policy"]
    download = actors.professional.get(f"{docs}/{document_id}/telecharger")
    assert download.headers["content-disposition"] == 'attachment; filename="Echographie-abdominale.pdf"'


# ------------------------------------------------------------------ deposit from the portal


def test_the_deposit_form_offers_the_loinc_types(actors: Actors) -> None:
    form = text_of(actors.professional.get(f"{base(actors)}/documents/deposer"))
    assert "Compte rendu de consultation (Comptes rendus)" in form and "Directives anticipées" in form
    assert "document personnel" not in form


def test_a_professional_deposits_from_the_portal(actors: Actors, demo: Services) -> None:
    url = f"{base(actors)}/documents/deposer"
    form = actors.professional.get(url)
    response = actors.professional.post(
        url,
        data={"type": "11488-4", "titre": "Consultation du 3 mars", "csrf_token": csrf_of(form.text)},
        files={"fichier": ("consultation.pdf", make_pdf("Tension 12/8"), "application/pdf")},
    )
    assert response.status_code == 303 and response.headers["location"] == f"{base(actors)}/documents?message=depose"
    listing = text_of(actors.professional.get(response.headers["location"]))
    assert "Votre document a été déposé" in listing and "Consultation du 3 mars" in listing
    assert "Déposé par vous" in listing
    own = text_of(actors.patient.get(f"/espace/{actors.patient_id}/documents"))
    assert "Consultation du 3 mars" in own and "Dr Jean-Baptiste FERRACCI" in own


@pytest.mark.parametrize(
    ("filename", "body", "mime", "type_code", "message"),
    [
        ("faux.pdf", b"ceci n'est pas un PDF", "application/pdf", "11488-4", "ne correspond pas au format annoncé"),
        ("page.html", b"<html></html>", "text/html", "11488-4", "Format non accepté (text/html)"),
        ("cr.pdf", b"%PDF-1.4", "application/pdf", "DOCPAT01", "Choisissez le type du document."),
        ("", b"", "application/pdf", "11488-4", "Choisissez le fichier à déposer."),
    ],
)
def test_a_refused_deposit_says_why_and_stores_nothing(
    actors: Actors, demo: Services, filename: str, body: bytes, mime: str, type_code: str, message: str
) -> None:
    url = f"{base(actors)}/documents/deposer"
    form = actors.professional.get(url)
    response = actors.professional.post(
        url,
        data={"type": type_code, "csrf_token": csrf_of(form.text)},
        files={"fichier": (filename, body, mime)},
    )
    assert response.status_code == 400
    assert message in text_of(response)
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Document)) is None


def test_a_deposit_to_an_unknown_space_is_refused(actors: Actors, demo: Services) -> None:
    url = "/pro/patients/00000000-0000-4000-8000-000000000000/documents/deposer"
    assert actors.professional.get(url).status_code == 403
    response = actors.professional.post(
        url,
        data={"type": "11488-4", "csrf_token": token(actors.professional)},
        files={"fichier": ("cr.pdf", make_pdf("x"), "application/pdf")},
    )
    assert response.status_code == 403 and "Cet espace n'existe pas ou n'est pas ouvert." in text_of(response)


# ------------------------------------------------------------------ the patient portal is for patients


def test_a_professional_opening_the_patient_portal_is_sent_to_the_professional_view(actors: Actors) -> None:
    for client in (actors.professional, actors.unauthorised):
        for suffix in ("", "/documents", "/historique", "/parametres"):
            response = client.get(f"/espace/{actors.patient_id}{suffix}")
            assert response.status_code == 303, suffix
            assert response.headers["location"] == f"{base(actors)}/documents"
    assert actors.patient.get(f"/espace/{actors.patient_id}").status_code == 200
    assert actors.stranger.get(f"/espace/{actors.patient_id}").status_code == 403
    refused = actors.unauthorised.get(f"/espace/{actors.patient_id}/documents", follow_redirects=True)
    assert refused.status_code == 403 and "SANTONI" not in text_of(refused)
