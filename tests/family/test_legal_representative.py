"""FAM-1 / FAM-2 (first part, with activation ENR-4): a parent sees the attached child's space, but not the
documents the minor asked to hide from their legal representatives; other people see nothing."""

from __future__ import annotations

from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.people.tables import Patient
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR
from tests.conftest import log_in, text_of
from tests.support.actors import Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle


def test_the_parent_opens_the_childs_space_without_the_hidden_documents(
    actors: Actors, feeders: Feeders, demo: Services, new_client: object
) -> None:
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient).where(Patient.first_names == "Lisandru"))
        assert child is not None
        child_id, child_ins = child.id, child.ins
    hidden = [(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_REPRESENTANTS_LEGAUX")]
    bundle = provide_bundle(
        document_entry(child_ins, make_pdf("Vaccins"), title="Carnet de vaccination"),
        document_entry(
            child_ins, make_pdf("Consultation confidentielle"), title="Consultation confidentielle", labels=hidden
        ),
    )
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200
    parent = new_client()  # type: ignore[operator]
    log_in(parent, demo, "laetitia.casanova")
    home = text_of(parent.get("/espace", follow_redirects=True))
    assert "Espace de Lisandru CASANOVA" in home
    space = parent.get(f"/espace/{child_id}")
    assert space.status_code == 200 and "Bonjour Lisandru" in text_of(space)
    listing = text_of(parent.get(f"/espace/{child_id}/documents"))
    assert "Carnet de vaccination" in listing and "Consultation confidentielle" not in listing
    for stranger in (actors.patient, actors.professional):
        refused = stranger.get(f"/espace/{child_id}/documents", follow_redirects=True)
        assert refused.status_code == 403 and "Carnet de vaccination" not in text_of(refused)
