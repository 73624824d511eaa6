"""Documents in S3-compatible object storage (issue #18-1), against a real radosgw (tests/storage/conftest.py):
the BlobStore protocol, multipart bodies, ciphertext only in the bucket, and a clear error with nothing written when
the store is down — through the vault's FHIR API, the portal and the messaging gateway, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.identity.service.clients import create_client
from carnet.messaging.smtp import GatewayController
from carnet.messaging.tables import Message
from carnet.people.tables import Patient
from carnet.storage.blobs import (
    UNAVAILABLE,
    BlobNotFound,
    BlobStore,
    BlobStoreUnavailable,
    BlobUrlError,
    LocalBlobStore,
    blob_store_from,
)
from carnet.storage.s3 import S3BlobStore
from carnet.storage.types import utcnow
from carnet.vault.tables import Document
from carnet.web.app import create_app
from tests.conftest import text_of
from tests.messaging.conftest import Gateway, free_port, mail
from tests.support.actors import PATIENT, bearer
from tests.support.documents import document_entry, make_cda_level1, make_pdf, provide_bundle
from tests.vault.test_pages import seen, token

KEY = "AbCdEf0123456789_-xyz"
FHIR = {"Content-Type": "application/fhir+json"}
SECRET = "Hemoglobine glyquee Santoni 6,9 pour cent"


def objects(store: S3BlobStore) -> dict[str, bytes]:
    """Every object of the store's bucket, read straight from S3 (not through the store)."""
    found: dict[str, bytes] = {}
    for page in store.client.get_paginator("list_objects_v2").paginate(Bucket=store.bucket):
        for item in page.get("Contents", ()):
            found[item["Key"]] = store.client.get_object(Bucket=store.bucket, Key=item["Key"])["Body"].read()
    return found


def down_store() -> S3BlobStore:
    """A store whose server is not there: a closed port of this machine (connection refused), short timeouts."""
    return S3BlobStore("carnet-docs", endpoint=f"http://127.0.0.1:{free_port()}", connect_timeout=1, read_timeout=2)


def documents_of(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(Document)) or 0)


# --- the protocol -------------------------------------------------------------------------------------------------


def test_the_blob_store_protocol_on_a_real_s3_server(s3_store: S3BlobStore) -> None:
    """#18-1: put / get / exists / delete, a missing key, an overwrite; objects named like the local files."""
    assert isinstance(s3_store, BlobStore)
    assert not s3_store.exists(KEY)
    with pytest.raises(BlobNotFound):
        s3_store.get(KEY)
    s3_store.put(KEY, b"\x00premier\xff")
    assert s3_store.exists(KEY) and s3_store.get(KEY) == b"\x00premier\xff"
    assert objects(s3_store) == {f"Ab/Cd/{KEY}": b"\x00premier\xff"}
    s3_store.put(KEY, b"second")  # replaces
    assert s3_store.get(KEY) == b"second" and s3_store.size_of(KEY) == 6
    s3_store.put(KEY, b"")
    assert s3_store.get(KEY) == b"" and s3_store.exists(KEY)
    s3_store.delete(KEY)
    assert not s3_store.exists(KEY) and objects(s3_store) == {}
    s3_store.delete(KEY)  # deleting a missing blob is not an error
    for bad in ("../../etc/passwd", "court", "a/b" * 10):
        with pytest.raises(ValueError):
            s3_store.put(bad, b"x")


def test_older_than_pages_through_the_listing_and_aborts_stale_uploads(s3_server: Any, s3_url: str) -> None:
    """#18-1: older_than lists page by page (ListObjectsV2, 3 keys a page here), keeps only blob keys under the
    store's prefix, and aborts multipart uploads a crash left unfinished."""
    store = S3BlobStore.from_url(s3_url.replace("?", "/instance-a?"))
    store.page_size = 3
    assert store.prefix == "instance-a/"
    keys = sorted(f"{uuid.uuid4().hex}b" for _ in range(7))
    for key in keys:
        store.put(key, b"sealed")
    other = S3BlobStore.from_url(s3_url.replace("?", "/instance-b?"))  # another prefix of the same bucket
    other.put(KEY, b"someone else's")
    store.client.put_object(Bucket=store.bucket, Key="instance-a/notes/README.txt", Body=b"not a blob")
    stale = store.client.create_multipart_upload(Bucket=store.bucket, Key=store.object_key(KEY))["UploadId"]

    assert sorted(store.older_than(utcnow() - timedelta(hours=1))) == []
    assert store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads")  # not old enough yet
    assert sorted(store.older_than(utcnow() + timedelta(minutes=5))) == keys
    uploads = store.client.list_multipart_uploads(Bucket=store.bucket).get("Uploads") or []
    assert stale not in {upload["UploadId"] for upload in uploads}
    assert list(other.older_than(utcnow() + timedelta(minutes=5))) == [KEY]


def test_a_large_body_goes_in_parts_and_comes_back_byte_exact(s3_store: S3BlobStore) -> None:
    """#18-1: multipart from 8 MiB (parts of 8 MiB): 20 MiB + 1 byte is three parts, read back byte for byte."""
    body = os.urandom(20 * 1024 * 1024 + 1)
    s3_store.put(KEY, body)
    head = s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.object_key(KEY))
    assert head["ETag"].strip('"').endswith("-3")  # the ETag of a multipart object names its parts
    assert s3_store.get(KEY) == body
    small = os.urandom(1024)
    s3_store.put(KEY, small)  # a single PUT, replacing the large one
    assert "-" not in s3_store.client.head_object(Bucket=s3_store.bucket, Key=s3_store.object_key(KEY))["ETag"]
    assert s3_store.get(KEY) == small


def test_a_store_that_is_down_gives_the_clear_error_on_every_operation() -> None:
    """#18-1: unreachable (after the retries, within the timeouts): BlobStoreUnavailable, in French."""
    store = down_store()
    for operation, call in (
        ("put", lambda: store.put(KEY, b"x")),  # obstore
        ("get", lambda: store.get(KEY)),
        ("delete", lambda: store.delete(KEY)),
        ("head", lambda: store.exists(KEY)),  # boto3
        ("list", lambda: list(store.older_than(utcnow()))),
    ):
        with pytest.raises(BlobStoreUnavailable) as caught:
            call()
        assert caught.value.message == UNAVAILABLE
        assert caught.value.reason in {f"{operation}: GenericError", f"{operation}: EndpointConnectionError"}


def test_wrong_credentials_or_a_missing_bucket_are_the_same_clear_error(
    s3_server: Any, s3_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """#18-1: a store that refuses (no such bucket, unknown key) is « indisponible » too, never a 500's stack."""
    with pytest.raises(BlobStoreUnavailable):
        S3BlobStore.from_url(s3_server.url(f"absent-{uuid.uuid4().hex[:8]}")).put(KEY, b"x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "pas-le-bon-secret")
    with pytest.raises(BlobStoreUnavailable) as caught:
        S3BlobStore.from_url(s3_url).put(KEY, b"x")
    assert caught.value.reason == "put: PermissionDeniedError"  # the server's 403, named without the key


def test_the_configuration_chooses_the_store(tmp_path: Path) -> None:
    """#18-1: CARNET_BLOB_URL empty is the local folder; s3://bucket/prefix?endpoint=…&region=… is S3; anything
    else is refused in French."""
    local = blob_store_from(Settings(data_dir=tmp_path))
    assert isinstance(local, LocalBlobStore) and local.root == tmp_path.resolve() / "blobs"
    store = blob_store_from(
        Settings(data_dir=tmp_path, blob_url="s3://carnet-docs/prod/?endpoint=https://s3.exemple.fr&region=eu-west-3")
    )
    assert isinstance(store, S3BlobStore)
    assert (store.bucket, store.prefix, store.endpoint) == ("carnet-docs", "prod/", "https://s3.exemple.fr")
    assert store.client.meta.region_name == "eu-west-3"
    for bad in ("file:///srv/blobs", "s3://", "s3://docs?endpoint=http://x&motdepasse=1", "s3://id:secret@docs"):
        with pytest.raises(BlobUrlError, match="CARNET_BLOB_URL"):
            blob_store_from(Settings(data_dir=tmp_path, blob_url=bad))


# --- through the vault, on SQLite and PostgreSQL -------------------------------------------------------------------


@pytest.fixture
def lab(s3_services: Services) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    """The lab's software depositing over MHD into the S3-backed instance: (client, headers, the patient's INS)."""
    with s3_services.db.unit_of_work() as db:
        credentials = create_client(db, "LBM CH Bastia", finess="2B0000020")
        ins = db.scalar(select(Patient.ins).where(Patient.email == f"{PATIENT}@exemple.fr"))
    assert ins
    with TestClient(create_app(services=s3_services), follow_redirects=False) as client:
        yield client, {**bearer(client, credentials.client_id, credentials.client_secret), **FHIR}, ins


def test_a_deposit_lands_in_s3_as_ciphertext_only_and_reads_back(
    s3_services: Services, lab: tuple[TestClient, dict[str, str], str]
) -> None:
    """#18-1: a document deposited over ITI-65 with CARNET_BLOB_URL=s3://…: one object, sealed (no plaintext, no
    PDF header), nothing in the local folder; ITI-68 gives the exact bytes back."""
    client, headers, ins = lab
    pdf = make_pdf(SECRET, padding=40_000)
    answer = client.post("/fhir", json=provide_bundle(document_entry(ins, pdf, title="Bilan")), headers=headers)
    assert answer.status_code == 200, answer.text
    document_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
    assert isinstance(s3_services.blobs, S3BlobStore)
    stored = objects(s3_services.blobs)
    assert len(stored) == 1
    (sealed,) = stored.values()
    assert b"%PDF" not in sealed and SECRET.encode() not in sealed and pdf[200:264] not in sealed
    assert not (s3_services.settings.resolved_data_dir / "blobs").exists()
    binary = client.get(f"/fhir/Binary/{document_id}", headers={**headers, "Accept": "application/pdf"})
    assert binary.status_code == 200 and binary.content == pdf


class RefusesPreviews:
    """The real S3 store, except that it refuses the second write of a deposit (a CDA's preview) as a store going
    down in the middle would."""

    def __init__(self, store: S3BlobStore) -> None:
        self.store = store

    def put(self, key: str, data: bytes) -> None:
        if key.endswith("p"):
            raise BlobStoreUnavailable("put: injecté")
        self.store.put(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def test_a_store_failing_in_the_middle_of_a_deposit_leaves_no_row_and_no_object(
    s3_services: Services, lab: tuple[TestClient, dict[str, str], str]
) -> None:
    """#18-1: the body was written, its preview refused: 503, the body removed again, no document row."""
    client, headers, ins = lab
    real = s3_services.blobs
    assert isinstance(real, S3BlobStore)
    s3_services.blobs = RefusesPreviews(real)  # type: ignore[assignment]
    cda = make_cda_level1(make_pdf(SECRET))
    bundle = provide_bundle(document_entry(ins, cda, mime="text/xml", title="Compte rendu"))
    answer = client.post("/fhir", json=bundle, headers=headers)
    assert answer.status_code == 503, answer.text
    assert answer.json()["issue"][0]["diagnostics"] == UNAVAILABLE
    assert documents_of(s3_services) == 0 and objects(real) == {}


@pytest.fixture
def broken(demo: Services) -> Services:
    """The demo instance, its object storage down."""
    demo.blobs = down_store()
    return demo


def test_a_deposit_while_s3_is_down_answers_503_in_french_and_writes_nothing(
    broken: Services, feeders: Any, actors: Any
) -> None:
    """#18-1: ITI-65 → 503 OperationOutcome, the portal's upload → 503 French page; no row, nothing written."""
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf(SECRET)))
    answer = feeders.client.post("/fhir", json=bundle, headers={**feeders.lab, **FHIR})
    assert answer.status_code == 503, answer.text
    outcome = answer.json()
    assert outcome["resourceType"] == "OperationOutcome" and outcome["issue"][0]["diagnostics"] == UNAVAILABLE
    assert answer.headers["retry-after"]

    page = f"/espace/{actors.patient_id}/documents/ajouter"
    form = {"csrf_token": token(actors.patient, page), "type": "DOCPAT05", "titre": "Bilan"}
    uploaded = actors.patient.post(
        page, data=form, files={"fichier": ("bilan.pdf", make_pdf(SECRET), "application/pdf")}
    )
    assert uploaded.status_code == 503
    assert UNAVAILABLE in seen(uploaded) and "Traceback" not in text_of(uploaded)
    assert documents_of(broken) == 0
    assert not (broken.settings.resolved_data_dir / "blobs").exists()


def test_reading_a_document_while_s3_is_down_answers_503_not_500(feeders: Any, actors: Any, demo: Services) -> None:
    """#18-1: a document deposited before the store went down: ITI-68 and the portal's download answer 503 in
    French (OperationOutcome, page); the list, which needs no body, still works."""
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf(SECRET), title="Bilan"))
    answer = feeders.client.post("/fhir", json=bundle, headers={**feeders.lab, **FHIR})
    assert answer.status_code == 200, answer.text
    document_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
    demo.blobs = down_store()
    binary = feeders.client.get(f"/fhir/Binary/{document_id}", headers=feeders.lab)
    assert binary.status_code == 503 and binary.json()["issue"][0]["diagnostics"] == UNAVAILABLE
    listing = actors.patient.get(f"/espace/{actors.patient_id}/documents")
    assert listing.status_code == 200 and "Bilan" in seen(listing)
    download = actors.patient.get(f"/espace/{actors.patient_id}/documents/{document_id}/telecharger")
    assert download.status_code == 503 and UNAVAILABLE in seen(download)


def test_the_messaging_gateway_answers_451_when_s3_is_down(broken: Services) -> None:
    """#18-1: a mail with an attachment while the store is down: 451 4.3.0 (the sender tries again), nothing kept."""
    with broken.db.unit_of_work() as db:
        patient = db.scalar(select(Patient).where(Patient.email == f"{PATIENT}@exemple.fr"))
        assert patient is not None
        ins, patient_id = patient.ins, patient.id
    port = free_port()
    controller = GatewayController(broken, "127.0.0.1", port)
    controller.start()
    try:
        gateway = Gateway(broken, port, ins, patient_id, broken.settings.messaging_domain)
        code, answer = gateway.send(mail(files=[("résultats.pdf", "application/pdf", make_pdf(SECRET))]))
    finally:
        controller.stop()
    assert (code, answer[:5]) == (451, b"4.3.0")
    with broken.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(Message)) == 0
