"""Blobs in S3-compatible object storage (issue #18-1): ``CARNET_BLOB_URL=s3://bucket[/prefix]?endpoint=…&region=…``.

The store only ever receives what the callers sealed with the patient's data key (ciphertext). Objects are named like
the local folder's files, ``<prefix><key[:2]>/<key[2:4]>/<key>``. Large bodies go in parts (multipart upload: a part
that fails is retried, an upload that fails is aborted, so no half-written object is ever visible); every request
has connect and read timeouts and is retried with back-off (botocore's « standard » mode). When the store is down or
refuses after those retries, ``BlobStoreUnavailable`` (a French 503 for people, the technical cause for the log).

Credentials come from the environment the way every S3 tool reads them (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, an instance role…): never from the URL, never in the repository.

Two clients share those credentials (boto3's chain). The requests of every deposit and every read — one object put
whole, read or deleted — go through obstore (Rust's ``object_store``): 0.37 ms of CPU a 100 KiB put instead of
boto3's 1.9 ms, and the GIL released while it waits (issue #18). boto3 keeps what obstore does not do or does not
do as this store promises: large bodies in parts (a failed upload aborted), listings, unfinished uploads, buckets.
obstore's runtime does not survive ``fork``: a forked child must build its own store (Carnet forks only the
registry import's parser, which stores nothing).
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import boto3
import obstore
from boto3.exceptions import S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from obstore.auth.boto3 import Boto3CredentialProvider
from obstore.exceptions import BaseError as ObstoreError
from obstore.store import S3Store

from carnet.storage.blobs import KEY_PATTERN, BlobNotFound, BlobStoreUnavailable, BlobUrlError, check_key

logger = logging.getLogger("carnet")

MIB = 1024 * 1024
MULTIPART_THRESHOLD = 8 * MIB  # bodies from this size go in parts of PART_SIZE
PART_SIZE = 8 * MIB
CONNECT_TIMEOUT = 3.0  # seconds
READ_TIMEOUT = 20.0
MAX_ATTEMPTS = 4  # botocore « standard » retries: exponential back-off with jitter, on throttling and 5xx
MISSING = {"404", "NoSuchKey", "NotFound"}
URL_OPTIONS = {"endpoint", "region", "addressing"}
OCTETS = "application/octet-stream"  # what the store holds: sealed bytes


class S3BlobStore:
    """The ``BlobStore`` protocol on one bucket (and an optional prefix inside it)."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint: str | None = None,
        region: str | None = None,
        addressing: str | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
        read_timeout: float = READ_TIMEOUT,
        max_attempts: int = MAX_ATTEMPTS,
        multipart_threshold: int = MULTIPART_THRESHOLD,
        part_size: int = PART_SIZE,
        page_size: int = 1000,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.endpoint = endpoint
        self.page_size = page_size  # keys per listing request (S3's maximum: 1000)
        config = Config(
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"mode": "standard", "max_attempts": max_attempts},
            # a self-hosted server (radosgw, Garage…) answers at one address: bucket in the path
            s3={"addressing_style": addressing or ("path" if endpoint else "auto")},
            max_pool_connections=20,
        )
        session = boto3.session.Session()
        self.client: Any = session.client("s3", endpoint_url=endpoint, region_name=region or "us-east-1", config=config)
        self.transfer = TransferConfig(
            multipart_threshold=multipart_threshold, multipart_chunksize=part_size, max_concurrency=4
        )
        self.objects = S3Store(
            bucket,
            endpoint=endpoint,
            region=region or "us-east-1",
            virtual_hosted_style_request=addressing == "virtual" or (addressing is None and not endpoint),
            client_options={
                "allow_http": bool(endpoint and endpoint.startswith("http://")),
                "connect_timeout": timedelta(seconds=connect_timeout),
                "timeout": timedelta(seconds=read_timeout),
            },
            retry_config={
                "max_retries": max_attempts - 1,
                "retry_timeout": timedelta(seconds=read_timeout),
                "backoff": {
                    "init_backoff": timedelta(milliseconds=100),
                    "max_backoff": timedelta(seconds=5),
                    "base": 2,
                },
            },
            # boto3's credentials chain; none found: obstore's own (environment, instance role), refused at first use
            credential_provider=Boto3CredentialProvider(session) if session.get_credentials() else None,
        )

    @classmethod
    def from_url(cls, url: str) -> S3BlobStore:
        """``s3://bucket[/prefix]?endpoint=https://host:port&region=eu-west-3&addressing=path|virtual``."""
        parts = urlsplit(url)
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
        unknown = sorted(set(options) - URL_OPTIONS)
        if parts.scheme != "s3" or not parts.hostname or unknown or parts.username or parts.password:
            raise BlobUrlError(
                "CARNET_BLOB_URL invalide : attendu s3://compartiment[/préfixe]?endpoint=https://…&region=…"
                " (les identifiants viennent de l'environnement : AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)"
                + (f" ; option inconnue : {', '.join(unknown)}" if unknown else "")
            )
        if options.get("addressing") not in {None, "path", "virtual"}:
            raise BlobUrlError("CARNET_BLOB_URL invalide : addressing vaut path ou virtual")
        return cls(
            parts.netloc,
            prefix=parts.path,
            endpoint=options.get("endpoint") or None,
            region=options.get("region") or None,
            addressing=options.get("addressing"),
        )

    def describe(self) -> str:
        """Where the store is, for people (no credentials: they are never in the URL)."""
        where = f"s3://{self.bucket}/{self.prefix}"
        return f"{where} ({self.endpoint})" if self.endpoint else where

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}{key[:2]}/{key[2:4]}/{key}"

    # --- the protocol ---------------------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> None:
        name = self.object_key(key)
        with self._talking("put"):
            if len(data) < self.transfer.multipart_threshold:  # one request
                obstore.put(self.objects, name, data, use_multipart=False, attributes={"Content-Type": OCTETS})
                return
            self.client.upload_fileobj(
                io.BytesIO(data),
                self.bucket,
                name,
                ExtraArgs={"ContentType": OCTETS},
                Config=self.transfer,
            )

    def get(self, key: str) -> bytes:
        name = self.object_key(key)
        with self._talking("get"):
            try:
                return bytes(obstore.get(self.objects, name).bytes())
            except FileNotFoundError:  # no such object — or no such bucket, which is the store's failure
                self.client.head_bucket(Bucket=self.bucket)
        raise BlobNotFound(key)

    def delete(self, key: str) -> None:
        name = self.object_key(key)
        with self._talking("delete"):
            obstore.delete(self.objects, name)  # a missing object is not an error in S3

    def exists(self, key: str) -> bool:
        return self.size_of(key) is not None

    def size_of(self, key: str) -> int | None:
        """The stored object's size, or ``None`` when there is none."""
        name = self.object_key(key)
        with self._talking("head"):
            try:
                answer = self.client.head_object(Bucket=self.bucket, Key=name)
            except ClientError as exc:
                if _code(exc) in MISSING:
                    return None
                raise
        return int(answer["ContentLength"])

    def older_than(self, cutoff: datetime) -> Iterator[str]:
        """Keys of objects last written before ``cutoff``, page by page (ListObjectsV2); multipart uploads a crash left
        unfinished that old are aborted on the way (the object store's half-written files)."""
        limit = cutoff if cutoff.tzinfo else cutoff.replace(tzinfo=UTC)
        self._abort_stale_uploads(limit)
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix, PaginationConfig={"PageSize": self.page_size}
        )
        with self._talking("list"):
            for page in pages:
                for item in page.get("Contents", ()):
                    name = item["Key"].rsplit("/", 1)[-1]
                    if item["LastModified"] < limit and KEY_PATTERN.fullmatch(name):
                        yield name

    # --- the operator's side ----------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist yet (``carnet blobs move-to-s3``)."""
        with self._talking("bucket"):
            try:
                self.client.head_bucket(Bucket=self.bucket)
            except ClientError as exc:
                if _code(exc) not in MISSING | {"NoSuchBucket"}:
                    raise
                self.client.create_bucket(Bucket=self.bucket)

    def _abort_stale_uploads(self, limit: datetime) -> None:
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self.prefix)
        with self._talking("list"):
            for page in pages:
                for upload in page.get("Uploads", ()):
                    if upload["Initiated"] < limit:
                        self.client.abort_multipart_upload(
                            Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                        )

    @contextmanager
    def _talking(self, operation: str) -> Iterator[None]:
        """Every failure of the store (unreachable, timeout, 5xx after the retries, refused credentials, no bucket)
        becomes ``BlobStoreUnavailable``; the log names the operation and the cause, never a key or a body."""
        try:
            yield
        except (BotoCoreError, ClientError, S3UploadFailedError, ObstoreError, FileNotFoundError) as exc:
            cause = f"{type(exc).__name__} {_code(exc) or ''}".strip()  # obstore's messages name the key: not logged
            logger.warning("stockage objet indisponible (%s sur %s) : %s", operation, self.bucket, cause)
            raise BlobStoreUnavailable(f"{operation}: {cause}") from exc


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    cause = exc.__cause__ or exc.__context__
    return _code(cause) if isinstance(cause, ClientError) else ""
