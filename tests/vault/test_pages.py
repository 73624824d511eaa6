"""The patient's vault in the portal (VLT-1, 3, 4, 5, 7): every route with the three actors, uploads and
their errors, search, filters, folders, preview, download, masking and deletion — SQLite and PostgreSQL."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.identity.service import auth
from carnet.people.tables import Account, Patient
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR, categories
from carnet.vault.service import documents as vault
from carnet.vault.tables import Document, Folder
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

FHIR = {"Content-Type": "application/fhir+json"}
SECRET = "Bilan confidentiel Santoni"
CSP_FRAME = "frame-ancestors 'self'"


def seen(response: Any) -> str:
    """The words a person reads on the page (tags removed, spaces collapsed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", text_of(response)).split())


def url(actors: Actors, suffix: str = "") -> str:
    return f"/espace/{actors.patient_id}/documents{suffix}"


def token(client: TestClient, page: str) -> str:
    return csrf_of(client.get(page, follow_redirects=True).text)


def upload(
    actors: Actors,
    body: bytes | None,
    filename: str = "bilan.pdf",
    mime: str = "application/pdf",
    *,
    type_code: str = "DOCPAT05",
    title: str = SECRET,
    folder: str = "",
) -> Any:
    data = {"csrf_token": token(actors.patient, url(actors, "/ajouter")), "type": type_code, "titre": title}
    if folder:
        data["dossier"] = folder
    files = {"fichier": (filename, body, mime)} if body is not None else None
    return actors.patient.post(url(actors, "/ajouter"), data=data, files=files)


def uploaded(actors: Actors, body: bytes, *args: str, **kwargs: Any) -> str:
    response = upload(actors, body, *args, **kwargs)
    assert response.status_code == 303, text_of(response)
    assert response.headers["location"] == url(actors, "?message=ajoute")
    return only_id(actors, kwargs.get("title", SECRET))


def only_id(actors: Actors, title: str) -> str:
    listing = text_of(actors.patient.get(url(actors)))
    ids = re.findall(rf'<a href="{url(actors)}/([0-9a-f-]{{36}})">{re.escape(title)}</a>', listing)
    assert len(ids) == 1, ids
    return ids[0]


def documents(services: Services) -> list[Document]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(Document)))


def count(services: Services, model: type) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(model)) or 0)


def deposit_pro(f: Feeders, body: bytes, title: str, labels: list[tuple[str, str]] | None = None) -> str:
    bundle = provide_bundle(document_entry(f.ins, body, title=title, labels=labels))
    response = f.client.post("/fhir", json=bundle, headers={**f.lab, **FHIR})
    assert response.status_code == 200, response.text
    return str(response.json()["entry"][1]["response"]["location"].split("/")[1])


def patient_actor(services: Services, patient_id: str) -> Any:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.patient_id == patient_id))
        assert account is not None
        return auth.actor_for(db, account)


# ------------------------------------------------------------------ every route, three actors

GETS = ["", "/ajouter", "/{id}", "/{id}/apercu", "/{id}/telecharger", "/supprimer?ids={id}"]
POSTS = {
    "/ajouter": {"type": "DOCPAT01", "titre": "Intrus"},
    "/dossiers": {"nom": "Dossier intrus"},
    "/{id}/masquage": {"masquer": "oui"},
    "/masquage-par-defaut": {"actif": "oui"},
    "/supprimer": {"ids": "{id}", "confirmer": "oui"},
}


@pytest.mark.parametrize("who", ["unauthorised", "stranger"])
def test_others_are_refused_every_route_and_learn_nothing(actors: Actors, demo: Services, who: str) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine 14 g/dl"))
    client: TestClient = getattr(actors, who)
    csrf = token(client, "/pro" if who == "unauthorised" else "/espace")
    for path in GETS:
        response = client.get(url(actors, path.format(id=document_id)), follow_redirects=True)
        assert response.status_code == 403, path  # a professional is sent to the professional view first
        assert "Vous n'avez pas accès à cet espace." in text_of(response) or who == "unauthorised"
        assert SECRET not in text_of(response) and "SANTONI" not in text_of(response), path
    for path, data in POSTS.items():
        form = {k: v.format(id=document_id) for k, v in data.items()}
        files = {"fichier": ("intrus.pdf", make_pdf("intrus"), "application/pdf")} if path == "/ajouter" else None
        response = client.post(url(actors, path.format(id=document_id)), data={**form, "csrf_token": csrf}, files=files)
        assert response.status_code == 403, path
        assert SECRET not in text_of(response) and "SANTONI" not in text_of(response), path
    [document] = documents(demo)
    assert (document.id, document.masked, document.title) == (document_id, False, SECRET)
    assert count(demo, Folder) == 0
    assert "checked" not in actors.patient.get(url(actors)).text.split('id="masquage-defaut"')[1][:40]


def test_anonymous_visitors_are_sent_to_the_login_page_on_every_route(actors: Actors) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine"))
    for path in GETS:
        response = actors.anonymous.get(url(actors, path.format(id=document_id)))
        assert (response.status_code, response.headers["location"]) == (303, "/connexion"), path
    csrf = token(actors.anonymous, "/connexion")
    for path, data in POSTS.items():
        form = {k: v.format(id=document_id) for k, v in data.items()}
        response = actors.anonymous.post(url(actors, path.format(id=document_id)), data={**form, "csrf_token": csrf})
        assert (response.status_code, response.headers["location"]) == (303, "/connexion"), path


def test_the_patient_opens_every_page(actors: Actors) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine"))
    for path in GETS:
        response = actors.patient.get(url(actors, path.format(id=document_id)))
        assert response.status_code == 200, path


def test_a_post_without_the_form_token_is_refused(actors: Actors, demo: Services) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine"))
    response = actors.patient.post(url(actors, f"/{document_id}/masquage"), data={"masquer": "oui"})
    assert response.status_code == 403
    assert "Le formulaire a expiré" in text_of(response)
    forged = actors.patient.post(
        url(actors, "/supprimer"), data={"ids": document_id, "confirmer": "oui", "csrf_token": "x"}
    )
    assert forged.status_code == 403
    [document] = documents(demo)
    assert not document.masked


# ------------------------------------------------------------------ list, search, filters (VLT-1, VLT-4)


def test_an_uploaded_pdf_is_listed_under_its_category_with_its_badges(actors: Actors, demo: Services) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine glyquée 6,5 %"))
    page = actors.patient.get(url(actors, "?message=ajoute"))
    text = seen(page)
    assert "Votre document a été ajouté." in text
    for label in categories().values():
        assert label in text
    assert "Résultats de biologie (1)" in text and "Tous les documents (1)" in text and "Comptes rendus (0)" in text
    assert SECRET in text and "Déposé par vous" in text and "Marie-Ange SANTONI" in text
    assert re.search(r"ajouté le \d{2}/\d{2}/\d{4} à \d{2}:\d{2}", text)
    assert f'href="{url(actors)}/{document_id}"' in page.text
    assert f'href="{url(actors)}/{document_id}/telecharger"' in page.text
    assert f'name="ids" value="{document_id}"' in page.text
    assert "Masqué aux professionnels" not in text
    assert "Page 1 sur 1" in text
    [stored] = documents(demo)
    assert (stored.category, stored.type_code, stored.source) == ("BIOLOGIE", "DOCPAT05", "patient")


def test_search_finds_words_without_accents_and_by_stem(actors: Actors) -> None:
    uploaded(actors, make_pdf("Taux d'Hémoglobine normal"), title="Prise de sang")
    uploaded(actors, make_pdf("Cholestérol total"), title="Lipides")
    found = seen(actors.patient.get(url(actors, "?q=hemoglobine")))
    assert "Prise de sang" in found and "Lipides" not in found
    assert "1 document" in found
    assert "Lipides" in seen(actors.patient.get(url(actors, "?q=cholesterols")))
    nothing = seen(actors.patient.get(url(actors, "?q=radiographie")))
    assert "Aucun document ne correspond à votre recherche." in nothing


def test_filters_by_category_author_and_date(actors: Actors, feeders: Feeders) -> None:
    uploaded(actors, make_pdf("Hémoglobine"), title="Prise de sang")
    uploaded(actors, make_pdf("Carte vitale"), title="Attestation", type_code="DOCPAT09")
    deposit_pro(feeders, make_pdf("Ferritine"), "Ferritine du laboratoire")
    page = actors.patient.get(url(actors, "?categorie=DOC_ADM"))
    text = seen(page)
    assert "Attestation" in text and "Prise de sang" not in text and "Ferritine du laboratoire" not in text
    assert re.search(r'aria-current="page">Pièces administratives', page.text)
    by_author = seen(actors.patient.get(url(actors, "?auteur=laboratoire")))
    assert "Ferritine du laboratoire" in by_author and "Attestation" not in by_author
    assert "Document d'un professionnel : il peut être masqué, pas supprimé." in by_author
    later = seen(actors.patient.get(url(actors, "?du=2999-01-01")))
    assert "Aucun document ne correspond à votre recherche." in later
    bad = seen(actors.patient.get(url(actors, "?du=31-12-2024")))
    assert "n'est pas valide" in bad


def test_twenty_five_documents_make_two_pages(actors: Actors, demo: Services) -> None:
    actor = patient_actor(demo, actors.patient_id)
    batch = [
        vault.NewDocument(actors.patient_id, "urn:carnet:docpat", "DOCPAT09", f"Pièce {n:02d}", "text/plain", b"x")
        for n in range(25)
    ]
    vault.deposit_many(demo, actor, batch)
    first_page = actors.patient.get(url(actors))
    first = seen(first_page)
    assert "Page 1 sur 2" in first and first_page.text.count('<h3 class="fr-card__title">') == 20
    assert "Page suivante" in first and "Tous les documents (25)" in first
    second_page = actors.patient.get(url(actors, "?page=2"))
    second = seen(second_page)
    assert "Page 2 sur 2" in second and second_page.text.count('<h3 class="fr-card__title">') == 5
    assert f'href="{url(actors)}"' in second_page.text  # previous page link: page 1 is the bare address


def test_an_invisible_patient_document_is_hidden_everywhere_from_the_patient(actors: Actors, feeders: Feeders) -> None:
    hidden_id = deposit_pro(
        feeders,
        make_pdf("Annonce tumeur maligne"),
        "Compte rendu d'annonce",
        labels=[(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_PATIENT")],
    )
    listing = seen(actors.patient.get(url(actors)))
    assert "Compte rendu d'annonce" not in listing
    assert "Tous les documents (0)" in listing and "Résultats de biologie (0)" in listing
    assert "Compte rendu d'annonce" not in seen(actors.patient.get(url(actors, "?q=tumeur")))
    assert "Compte rendu d'annonce" not in seen(actors.patient.get(url(actors, "?categorie=BIOLOGIE")))
    for path in (f"/{hidden_id}", f"/{hidden_id}/apercu", f"/{hidden_id}/telecharger"):
        response = actors.patient.get(url(actors, path))
        assert response.status_code == 404, path  # like a document that does not exist
        assert "Compte rendu d'annonce" not in seen(response)


# ------------------------------------------------------------------ upload errors (VLT-3)

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" * 8


@pytest.mark.parametrize(
    ("filename", "body", "mime", "message"),
    [
        ("facture.pdf", EXE, "application/pdf", "Le contenu du fichier ne correspond pas au format annoncé"),
        ("gros.pdf", b"%PDF-1.4\n" + b"0" * (6 * 1024 * 1024), "application/pdf", "dépasse la taille maximale de 5 Mo"),
        ("bilan.docx", make_pdf("Hémoglobine"), "application/pdf", "L'extension du fichier « bilan.docx »"),
        ("programme.exe", EXE, "application/x-msdownload", "Format non accepté"),
        ("", b"", "application/octet-stream", "Choisissez le fichier à ajouter."),
        (None, None, None, "Choisissez le fichier à ajouter."),
    ],
    ids=["exe-renomme-pdf", "6-Mo", "mauvaise-extension", "exe", "sans-fichier-navigateur", "sans-fichier"],
)
def test_a_refused_upload_says_why_in_french_and_stores_nothing(
    actors: Actors, demo: Services, filename: str | None, body: bytes | None, mime: str | None, message: str
) -> None:
    if filename is None:
        response = upload(actors, None, title="Mon titre gardé")
    else:
        response = upload(actors, body, filename, mime or "", title="Mon titre gardé")
    assert response.status_code == 400
    text = seen(response)
    assert "Le document n'a pas été ajouté" in text and message in text
    assert 'class="fr-alert fr-alert--error' in response.text
    assert 'value="Mon titre gardé"' in text_of(response) and '<option value="DOCPAT05" selected>' in response.text
    assert count(demo, Document) == 0
    assert not [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]


def test_an_upload_needs_a_type(actors: Actors, demo: Services) -> None:
    response = upload(actors, make_pdf("x"), type_code="")
    assert response.status_code == 400 and "Choisissez le type du document." in seen(response)
    assert count(demo, Document) == 0


def test_the_upload_form_lists_the_nine_types_and_accepted_formats(actors: Actors) -> None:
    page = actors.patient.get(url(actors, "/ajouter"))
    assert 'accept=".pdf,.txt,.rtf,.jpg,.jpeg,.png,.tif,.tiff"' in page.text
    assert len(re.findall(r'<option value="DOCPAT0\d"', page.text)) == 9
    assert "Synthèse (document personnel)" in seen(page)
    assert 'enctype="multipart/form-data"' in page.text


# ------------------------------------------------------------------ folders (VLT-1)


def test_a_patient_makes_a_folder_and_files_a_document_in_it(actors: Actors, demo: Services) -> None:
    csrf = token(actors.patient, url(actors))
    created = actors.patient.post(url(actors, "/dossiers"), data={"nom": "  Grossesse 2025 ", "csrf_token": csrf})
    assert created.status_code == 303
    with demo.db.unit_of_work() as db:
        folder = db.scalar(select(Folder))
        assert folder is not None and folder.name == "Grossesse 2025"
        actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == folder.id)))
    assert actions == ["folder.create"]
    assert created.headers["location"] == url(actors, f"?dossier={folder.id}&message=dossier")
    assert "Grossesse 2025 (0)" in seen(actors.patient.get(created.headers["location"]))
    uploaded(actors, make_pdf("Échographie"), title="Écho T1", type_code="DOCPAT04", folder=folder.id)
    uploaded(actors, make_pdf("Autre"), title="Hors dossier")
    in_folder = actors.patient.get(url(actors, f"?dossier={folder.id}"))
    text = seen(in_folder)
    assert "Écho T1" in text and "Hors dossier" not in text and "Grossesse 2025 (1)" in text
    assert re.search(r'aria-current="page">Grossesse 2025', in_folder.text)
    form = actors.patient.get(url(actors, f"/ajouter?dossier={folder.id}")).text
    assert f'<option value="{folder.id}" selected>Grossesse 2025</option>' in form


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "Donnez un nom au dossier."), ("x" * 101, "ne doit pas dépasser 100 caractères")],
)
def test_a_folder_needs_a_short_name(actors: Actors, demo: Services, name: str, message: str) -> None:
    csrf = token(actors.patient, url(actors))
    response = actors.patient.post(url(actors, "/dossiers"), data={"nom": name, "csrf_token": csrf})
    assert response.status_code == 400 and message in seen(response)
    assert count(demo, Folder) == 0


# ------------------------------------------------------------------ preview and download (VLT-4)


def test_preview_is_inline_in_a_frame_and_download_is_an_attachment(actors: Actors, demo: Services) -> None:
    pdf = make_pdf("Hémoglobine glyquée")
    document_id = uploaded(actors, pdf, title="Bilan d'hémoglobine")
    page = actors.patient.get(url(actors, f"/{document_id}"))
    assert page.status_code == 200
    assert f'<iframe class="carnet-preview-frame" src="{url(actors)}/{document_id}/apercu"' in page.text
    assert "Résultats de biologie" in seen(page)
    inline = actors.patient.get(url(actors, f"/{document_id}/apercu"))
    assert inline.status_code == 200 and inline.content == pdf
    assert inline.headers["content-type"] == "application/pdf"
    assert inline.headers["content-disposition"].startswith("inline")
    assert CSP_FRAME in inline.headers["content-security-policy"]
    download = actors.patient.get(url(actors, f"/{document_id}/telecharger"))
    assert download.status_code == 200 and download.content == pdf
    assert download.headers["content-disposition"] == 'attachment; filename="Bilan-d-hemoglobine.pdf"'
    with demo.db.unit_of_work() as db:
        actions = list(db.scalars(select(AuditEntry.action).where(AuditEntry.resource_id == document_id)))
    assert {"document.read", "document.download"} <= set(actions)


def test_text_and_images_are_shown_in_the_page_and_other_formats_are_downloaded(actors: Actors) -> None:
    text_id = uploaded(actors, "Tension 12/8 — à surveiller".encode(), "notes.txt", "text/plain", title="Notes")
    page = actors.patient.get(url(actors, f"/{text_id}"))
    assert '<pre class="carnet-preview-text"' in page.text and "Tension 12/8 — à surveiller" in seen(page)
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
    image_id = uploaded(actors, png, "radio.png", "image/png", title="Radio", type_code="DOCPAT04")
    page = actors.patient.get(url(actors, f"/{image_id}"))
    assert (
        f'<img class="carnet-preview-image" src="{url(actors)}/{image_id}/apercu" alt="Aperçu du document' in page.text
    )
    assert actors.patient.get(url(actors, f"/{image_id}/apercu")).headers["content-type"] == "image/png"
    rtf_id = uploaded(actors, b"{\\rtf1 Lettre}", "lettre.rtf", "application/rtf", title="Lettre")
    page = actors.patient.get(url(actors, f"/{rtf_id}"))
    assert "Aperçu indisponible pour ce format : téléchargez le document." in seen(page)
    assert actors.patient.get(url(actors, f"/{rtf_id}/apercu")).status_code == 415


# ------------------------------------------------------------------ masking (VLT-5)


def test_masking_and_unmasking_changes_the_badge(actors: Actors, demo: Services) -> None:
    document_id = uploaded(actors, make_pdf("Hémoglobine"))
    csrf = token(actors.patient, url(actors))
    masked = actors.patient.post(
        url(actors, f"/{document_id}/masquage"), data={"masquer": "oui", "retour": "q=hemoglobine", "csrf_token": csrf}
    )
    assert masked.status_code == 303 and masked.headers["location"] == url(actors, "?q=hemoglobine&message=masque")
    page = seen(actors.patient.get(masked.headers["location"]))
    assert "Masqué aux professionnels" in page and "maintenant masqué aux professionnels" in page
    assert documents(demo)[0].confidentiality == ["MASQUE_PS"]
    shown = actors.patient.post(
        url(actors, f"/{document_id}/masquage"), data={"masquer": "non", "retour": "document", "csrf_token": csrf}
    )
    assert shown.headers["location"] == url(actors, f"/{document_id}?message=demasque")
    assert "Masqué aux professionnels" not in seen(actors.patient.get(url(actors)))
    assert not documents(demo)[0].masked


def test_default_masking_masks_a_later_professional_deposit(actors: Actors, feeders: Feeders, demo: Services) -> None:
    csrf = token(actors.patient, url(actors))
    response = actors.patient.post(url(actors, "/masquage-par-defaut"), data={"actif": "oui", "csrf_token": csrf})
    assert response.status_code == 303
    page = actors.patient.get(response.headers["location"])
    assert "seront désormais masqués" in seen(page)
    assert re.search(r'id="masquage-defaut" name="actif" value="oui" checked', page.text)
    document_id = deposit_pro(feeders, make_pdf("Ferritine"), "Ferritine")
    listing = seen(actors.patient.get(url(actors)))
    assert "Ferritine" in listing and "Masqué aux professionnels" in listing
    with demo.db.unit_of_work() as db:
        document = db.get(Document, document_id)
        assert document is not None and document.masked and "MASQUE_PS" in document.confidentiality
    off = actors.patient.post(url(actors, "/masquage-par-defaut"), data={"csrf_token": csrf})
    assert "ne seront plus masqués" in seen(actors.patient.get(off.headers["location"]))


# ------------------------------------------------------------------ deletion (VLT-7)


def test_the_patient_deletes_own_uploads_after_confirming(actors: Actors, demo: Services) -> None:
    first = uploaded(actors, make_pdf("Un"), title="Premier")
    second = uploaded(actors, make_pdf("Deux"), title="Second")
    kept = uploaded(actors, make_pdf("Trois"), title="Gardé")
    confirm = actors.patient.get(url(actors, f"/supprimer?ids={first}&ids={second}"))
    assert confirm.status_code == 200
    text = seen(confirm)
    assert "Premier" in text and "Second" in text and "Gardé" not in text and "définitive" in text
    assert count(demo, Document) == 3  # nothing is deleted before confirming
    response = actors.patient.post(
        url(actors, "/supprimer"),
        data={"ids": [first, second], "confirmer": "oui", "csrf_token": csrf_of(confirm.text)},
    )
    assert response.status_code == 303 and response.headers["location"] == url(actors, "?message=supprime")
    assert "supprimés définitivement" in seen(actors.patient.get(response.headers["location"]))
    assert [d.id for d in documents(demo)] == [kept]
    blobs = [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 1


def test_a_professional_document_cannot_be_deleted_only_masked(
    actors: Actors, feeders: Feeders, demo: Services
) -> None:
    document_id = deposit_pro(feeders, make_pdf("Ferritine"), "Ferritine")
    listing = actors.patient.get(url(actors))
    assert f'value="{document_id}" form="suppression"' not in listing.text
    assert "Document d'un professionnel : il peut être masqué, pas supprimé." in seen(listing)
    response = actors.patient.post(
        url(actors, "/supprimer"), data={"ids": document_id, "confirmer": "oui", "csrf_token": csrf_of(listing.text)}
    )
    assert response.status_code == 403
    assert "Un document déposé par un professionnel ne peut pas être supprimé : vous pouvez le masquer." in seen(
        response
    )
    assert [d.id for d in documents(demo)] == [document_id]


def test_a_mixed_deletion_batch_deletes_nothing(actors: Actors, feeders: Feeders, demo: Services) -> None:
    """VLT-7: one refused document in the batch → none is deleted (own uploads and their blobs stay)."""
    professional_id = deposit_pro(feeders, make_pdf("Ferritine"), "Ferritine")
    actor = patient_actor(demo, actors.patient_id)
    new = vault.NewDocument(actors.patient_id, "urn:carnet:docpat", "DOCPAT09", "Ma pièce", "text/plain", b"x")
    (own,) = vault.deposit_many(demo, actor, [new])
    listing = actors.patient.get(url(actors))
    response = actors.patient.post(
        url(actors, "/supprimer"),
        data={"ids": [own.id, professional_id], "confirmer": "oui", "csrf_token": csrf_of(listing.text)},
    )
    assert response.status_code == 403
    assert sorted(d.id for d in documents(demo)) == sorted([own.id, professional_id])
    blobs = [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 2


def test_a_deletion_batch_has_one_to_ten_documents(actors: Actors, demo: Services) -> None:
    actor = patient_actor(demo, actors.patient_id)
    batch = [
        vault.NewDocument(actors.patient_id, "urn:carnet:docpat", "DOCPAT09", f"Pièce {n}", "text/plain", b"x")
        for n in range(11)
    ]
    ids = [d.id for d in vault.deposit_many(demo, actor, batch)]
    none = actors.patient.get(url(actors, "/supprimer"))
    assert none.status_code == 400 and "Choisissez au moins un document à supprimer." in seen(none)
    eleven = actors.patient.get(url(actors, "/supprimer?" + "&".join(f"ids={i}" for i in ids)))
    assert eleven.status_code == 400
    assert "Vous pouvez supprimer au plus 10 documents à la fois : vous en avez choisi 11." in seen(eleven)
    csrf = csrf_of(eleven.text)
    posted = actors.patient.post(url(actors, "/supprimer"), data={"ids": ids, "confirmer": "oui", "csrf_token": csrf})
    assert posted.status_code == 400 and "au plus 10 documents" in seen(posted)
    assert count(demo, Document) == 11
    ten = actors.patient.post(url(actors, "/supprimer"), data={"ids": ids[:10], "confirmer": "oui", "csrf_token": csrf})
    assert ten.status_code == 303
    assert [d.id for d in documents(demo)] == [ids[10]]


# ------------------------------------------------------------------ the space of the address


def test_a_document_is_found_only_in_its_own_space_and_otherwise_like_a_missing_one(
    demo: Services, new_client: Callable[[], TestClient]
) -> None:
    """The mother reads her son's documents in his space; asked for in her own space (the address names
    it), his document answers exactly as a document that does not exist — read, masked or deleted."""
    with demo.db.unit_of_work() as db:
        mother_id = db.scalar(select(Patient.id).where(Patient.email == "laetitia.casanova@exemple.fr"))
        child_id = db.scalar(select(Patient.id).where(Patient.attached_to_id == mother_id))
    assert mother_id and child_id
    new = vault.NewDocument(child_id, "urn:carnet:docpat", "DOCPAT09", "Carnet de vaccination", "text/plain", b"BCG")
    (document,) = vault.deposit_many(demo, patient_actor(demo, mother_id), [new])
    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    assert mother.get(f"/espace/{child_id}/documents/{document.id}").status_code == 200
    own, missing = f"/espace/{mother_id}/documents", "00000000-0000-0000-0000-000000000000"
    for path in ("/{}", "/{}/apercu", "/{}/telecharger", "/supprimer?ids={}"):
        elsewhere = mother.get(own + path.format(document.id))
        assert elsewhere.status_code == 404, path
        assert seen(elsewhere) == seen(mother.get(own + path.format(missing))), path
        assert "Carnet de vaccination" not in seen(elsewhere)
    csrf = csrf_of(mother.get(own).text)
    masked = mother.post(f"{own}/{document.id}/masquage", data={"masquer": "oui", "csrf_token": csrf})
    deleted = mother.post(f"{own}/supprimer", data={"ids": document.id, "confirmer": "oui", "csrf_token": csrf})
    assert (masked.status_code, deleted.status_code) == (404, 404)
    [kept] = documents(demo)
    assert (kept.id, kept.masked) == (document.id, False)


def test_an_unknown_document_of_ones_own_space_is_not_found_not_forbidden(actors: Actors) -> None:
    """Issue #15-12: « introuvable », not « Vous n'avez pas accès à cet espace »."""
    answer = actors.patient.get(f"/espace/{actors.patient_id}/documents/{uuid.uuid4()}")
    assert answer.status_code == 404
    assert "Document introuvable" in answer.text and "pas accès à cet espace" not in answer.text
