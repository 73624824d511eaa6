"""``carnet blobs move-to-s3`` (issue #18-1): a real vault's folder moved to a real S3 server (radosgw), interrupted
then resumed, verified by hash; the instance, switched to CARNET_BLOB_URL, reads every document back byte-exact — on
SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from carnet.bootstrap import Services, build_services
from carnet.cli import app
from carnet.maintenance import prepare_blob_move
from carnet.storage.s3 import S3BlobStore
from carnet.web.app import create_app
from tests.conftest import make_settings
from tests.storage.test_s3_blobs import FHIR, objects
from tests.support.actors import Feeders
from tests.support.documents import document_entry, make_cda_level1, make_pdf, provide_bundle


def local_files(services: Services) -> list[Path]:
    return sorted(p for p in (services.settings.resolved_data_dir / "blobs").rglob("*") if p.is_file())


def cli_env(services: Services) -> dict[str, str]:
    return {
        "CARNET_DATA_DIR": str(services.settings.resolved_data_dir),
        "CARNET_DATABASE_URL": services.settings.resolved_database_url,
        "CARNET_BLOB_URL": "",
    }


def test_a_folder_moves_to_s3_interrupted_resumed_and_the_app_reads_it_back(
    feeders: Feeders, demo: Services, s3_url: str
) -> None:
    """#18-1: four documents (one CDA with its preview: five sealed files); the move stops after two (Ctrl-C), a
    third object is found in S3 with the right size but the wrong bytes; the command run again skips the two
    verified, copies the rest (the wrong one again), checks each by SHA-256, removes the local copies, says what to
    set; the instance on CARNET_BLOB_URL reads every document back exact."""
    bodies = {}
    for index, body in enumerate(
        [make_pdf(f"Compte rendu {n}", padding=n * 30_000) for n in range(3)] + [make_cda_level1(make_pdf("CDA"))]
    ):
        mime = "text/xml" if index == 3 else "application/pdf"
        bundle = provide_bundle(document_entry(feeders.ins, body, mime=mime, title=f"Document {index}"))
        answer = feeders.client.post("/fhir", json=bundle, headers={**feeders.lab, **FHIR})
        assert answer.status_code == 200, answer.text
        bodies[answer.json()["entry"][1]["response"]["location"].split("/")[1]] = body
    files = {path.name: path.read_bytes() for path in local_files(demo)}
    assert len(files) == 5

    move = prepare_blob_move(demo.settings, s3_url)
    assert move.keys == sorted(files)
    done: list[int] = []

    def interrupt_after_two(step: int) -> None:
        done.append(step)
        if len(done) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        move.run(advance=interrupt_after_two)
    store = S3BlobStore.from_url(s3_url)
    assert sorted(objects(store)) == [store.object_key(key) for key in move.keys[:2]]
    wrong = move.keys[2]
    store.put(wrong, files[wrong][::-1])  # same size, other bytes: a copy that cannot be trusted

    result = CliRunner().invoke(app, ["blobs", "move-to-s3", "--vers", s3_url, "--supprimer-local"], env=cli_env(demo))
    assert result.exit_code == 0, result.output
    said = " ".join(result.output.split())
    assert "5 fichier(s) chiffré(s) à déplacer" in said
    assert "3 fichier(s) copié(s) et vérifié(s)" in said and "2 déjà présent(s) et identique(s)" in said
    assert "5 copie(s) locale(s) supprimée(s)" in said
    assert f"réglez CARNET_BLOB_URL={s3_url}" in said
    assert {re.sub(r"^.*/", "", name): data for name, data in objects(store).items()} == files
    assert local_files(demo) == [] and not list(demo.settings.resolved_data_dir.glob("move-to-s3-*"))

    again = CliRunner().invoke(app, ["blobs", "move-to-s3", "--vers", s3_url], env=cli_env(demo))
    assert again.exit_code == 0 and "0 fichier(s) chiffré(s) à déplacer" in again.output

    switched = build_services(
        make_settings(demo.settings.resolved_data_dir, demo.settings.database_url, blob_url=s3_url)
    )
    try:
        assert isinstance(switched.blobs, S3BlobStore)
        with TestClient(create_app(services=switched), follow_redirects=False) as client:
            for document_id, body in bodies.items():
                answer = client.get(f"/fhir/Binary/{document_id}", headers=feeders.lab)
                assert answer.status_code == 200 and answer.content == body
    finally:
        switched.db.dispose()


def test_the_move_refuses_clearly_without_a_destination_or_when_s3_is_down(demo: Services) -> None:
    """#18-1: no S3 address, or an unreachable store: exit 1, a French line, the local copies untouched."""
    (demo.settings.resolved_data_dir / "blobs" / "ab" / "cd").mkdir(parents=True)
    kept = demo.settings.resolved_data_dir / "blobs" / "ab" / "cd" / "abcdef0123456789abcdef0123456789b"
    kept.write_bytes(b"sealed")
    runner = CliRunner()
    missing = runner.invoke(app, ["blobs", "move-to-s3"], env=cli_env(demo))
    assert missing.exit_code == 1 and "indiquez le stockage objet de destination" in missing.output
    down = runner.invoke(
        app,
        ["blobs", "move-to-s3", "--vers", "s3://carnet?endpoint=http://127.0.0.1:9", "--supprimer-local"],
        env=cli_env(demo),
    )
    assert down.exit_code == 1
    assert "Le stockage des documents est momentanément indisponible" in down.output
    assert "Relancez la même commande pour reprendre" in down.output
    assert kept.read_bytes() == b"sealed"
