"""Issue #15-16: an authorised professional — Dr Ferracci, Marie-Ange's médecin traitant, and Anna-Maria Peretti,
the pharmacist she authorised — on the patient's own vault pages over HTTP (VLT-1, 3, 5, 7): upload, folders,
masking, default masking and deletion. They read her documents from ``/pro``; what the patient's pages do stays
hers: masking, folders, settings and deletion are refused (403) and change nothing. An upload is a professional's
deposit like any other (any professional deposits in an open space, ACC-1): filed as theirs, never as hers, so she
may mask it but not delete it. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.vault.tables import Document, Folder
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import Actors
from tests.support.documents import make_pdf
from tests.vault.test_pages import SECRET, count, documents, seen, token, uploaded, url

REFUSED = "Vous n'avez pas accès à cet espace."
PHARMACIST = "anna-maria.peretti"  # authorised by Marie-Ange (demo grant), not her médecin traitant


@pytest.fixture(params=["médecin traitant", "pharmacien autorisé"])
def professional(
    request: pytest.FixtureRequest, actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> TestClient:
    if request.param == "médecin traitant":
        return actors.professional
    client = new_client()
    log_in(client, demo, PHARMACIST)
    return client


def listing(actors: Actors) -> str:
    """The patient's own list of documents, as she reads it."""
    return seen(actors.patient.get(url(actors)))


def test_the_patients_pages_send_an_authorised_professional_to_the_professional_view(
    actors: Actors, professional: TestClient
) -> None:
    """ACC-1: the professional reads the space from /pro, not from the patient's pages."""
    document_id = uploaded(actors, make_pdf("Hémoglobine"))
    for path in ("", "/ajouter", f"/{document_id}", f"/supprimer?ids={document_id}"):
        answer = professional.get(url(actors, path))
        assert answer.status_code == 303, path
        assert answer.headers["location"] == f"/pro/patients/{actors.patient_id}/documents", path
    assert professional.get(f"/pro/patients/{actors.patient_id}/documents").status_code == 200


def test_an_authorised_professional_cannot_mask_or_unmask_the_patients_documents(
    actors: Actors, professional: TestClient, demo: Services
) -> None:
    """VLT-5: masking is the patient's choice — a professional who reads the document is refused (403); one the
    pharmacist may not read (masked) is answered like an unknown one (404); nothing changes."""
    mine = uploaded(actors, make_pdf("Hémoglobine"))
    masked = uploaded(actors, make_pdf("Ferritine"), title="Ferritine masquée")
    csrf = token(actors.patient, url(actors))
    done = actors.patient.post(url(actors, f"/{masked}/masquage"), data={"masquer": "oui", "csrf_token": csrf})
    assert done.status_code == 303
    pro_csrf = token(professional, "/pro")
    for document_id, wanted in ((mine, "oui"), (masked, "non")):
        answer = professional.post(
            url(actors, f"/{document_id}/masquage"), data={"masquer": wanted, "csrf_token": pro_csrf}
        )
        reads_it = document_id == mine or professional is actors.professional  # the médecin traitant sees masked ones
        assert answer.status_code == (403 if reads_it else 404), wanted
        assert (REFUSED if reads_it else "introuvable") in text_of(answer), wanted
    with demo.db.unit_of_work() as db:
        states = {d.id: (d.masked, d.confidentiality) for d in db.scalars(select(Document))}
    assert states == {mine: (False, []), masked: (True, ["MASQUE_PS"])}
    assert listing(actors).count("Masqué aux professionnels") == 1


def test_an_authorised_professional_cannot_change_the_default_masking(actors: Actors, professional: TestClient) -> None:
    """VLT-5: the default masking is a setting of the person's."""
    answer = professional.post(
        url(actors, "/masquage-par-defaut"), data={"actif": "oui", "csrf_token": token(professional, "/pro")}
    )
    assert answer.status_code == 403 and REFUSED in text_of(answer)
    page = actors.patient.get(url(actors)).text
    assert "checked" not in page.split('id="masquage-defaut"')[1][:40]


def test_an_authorised_professional_cannot_delete_the_patients_documents(
    actors: Actors, professional: TestClient, demo: Services
) -> None:
    """VLT-7: only the patient deletes, and only her own uploads; the confirmation page is not the professional's."""
    first = uploaded(actors, make_pdf("Un"), title="Premier")
    second = uploaded(actors, make_pdf("Deux"), title="Second")
    before = listing(actors)
    pro_csrf = token(professional, "/pro")
    for ids in ([first], [first, second]):
        answer = professional.post(
            url(actors, "/supprimer"), data={"ids": ids, "confirmer": "oui", "csrf_token": pro_csrf}
        )
        assert answer.status_code == 403 and REFUSED in text_of(answer), ids
    assert sorted(d.id for d in documents(demo)) == sorted([first, second])
    assert listing(actors) == before
    blobs = [p for p in (demo.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file()]
    assert len(blobs) == 2


def test_an_authorised_professional_cannot_make_folders_in_the_patients_space(
    actors: Actors, professional: TestClient, demo: Services
) -> None:
    """VLT-1: the folders are the person's way of filing her documents."""
    answer = professional.post(
        url(actors, "/dossiers"), data={"nom": "Dossier du cabinet", "csrf_token": token(professional, "/pro")}
    )
    assert answer.status_code == 403 and REFUSED in text_of(answer)
    assert count(demo, Folder) == 0
    assert "Dossier du cabinet" not in listing(actors)


def test_an_upload_by_an_authorised_professional_is_filed_as_theirs_and_cannot_be_deleted_by_the_patient(
    actors: Actors, professional: TestClient, demo: Services
) -> None:
    """VLT-3 and ACC-1: a professional's upload (a stale or forged form: the page itself sends them to /pro) is a
    deposit like /pro's — filed under their name, a professional document the patient masks but does not delete;
    never filed as hers, and never into one of her folders."""
    csrf = token(actors.patient, url(actors))
    actors.patient.post(url(actors, "/dossiers"), data={"nom": "Grossesse", "csrf_token": csrf})
    with demo.db.unit_of_work() as db:
        folder_id = db.scalar(select(Folder.id))
    assert folder_id
    form = {"type": "DOCPAT01", "titre": "Compte rendu du cabinet", "csrf_token": token(professional, "/pro")}
    files = {"fichier": ("cr.pdf", make_pdf("Compte rendu"), "application/pdf")}
    in_folder = professional.post(url(actors, "/ajouter"), data={**form, "dossier": folder_id}, files=files)
    assert in_folder.status_code == 403 and REFUSED in text_of(in_folder)
    assert documents(demo) == []
    answer = professional.post(url(actors, "/ajouter"), data=form, files=files)
    assert answer.status_code == 303, text_of(answer)
    [document] = documents(demo)
    assert document.source == "professional" and document.author_label != "Marie-Ange SANTONI"
    assert document.folder_id is None
    page = actors.patient.get(url(actors))
    assert "Compte rendu du cabinet" in seen(page)
    assert f'value="{document.id}" form="suppression"' not in page.text
    refused = actors.patient.post(
        url(actors, "/supprimer"), data={"ids": document.id, "confirmer": "oui", "csrf_token": csrf_of(page.text)}
    )
    assert refused.status_code == 403 and [d.id for d in documents(demo)] == [document.id]
    assert SECRET not in seen(answer)
