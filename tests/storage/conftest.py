"""A real S3 server for the run (issue #18-1): Debian's Ceph radosgw, one node, memory-backed
(``scripts/s3-test-server``), started once for all pytest-xdist workers and stopped by the last one.

The workers agree through a lock file and a state file in the run's shared temporary folder: the first to ask starts
the server (free ports, random credentials), each one counts itself in, the last one out stops it. When it cannot
start: with CI=true the tests that need it are errors; otherwise they are skipped with a loud reason (and the run's
summary says « EXÉCUTION S3 NON FAITE », tests/conftest.py).
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from carnet.bootstrap import Services, build_services
from carnet.demo import load_demo
from carnet.storage.s3 import S3BlobStore
from tests.conftest import IN_CI, empty_tables, make_settings
from tests.messaging.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "s3-test-server"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str

    def url(self, bucket: str, prefix: str = "") -> str:
        return f"s3://{bucket}{'/' + prefix if prefix else ''}?endpoint={self.endpoint}&region=us-east-1"


def _shared_folder(factory: pytest.TempPathFactory) -> Path:
    base = factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base  # xdist: basetemp/popen-gwN


@contextmanager
def _locked(folder: Path) -> Iterator[Path]:
    with open(folder / "s3-server.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield folder / "s3-server.json"
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _start() -> dict[str, object]:
    if shutil.which("radosgw") is None:
        return {"failed": "radosgw n'est pas installé (paquets ceph-mon ceph-osd ceph-mgr radosgw)"}
    folder = tempfile.mkdtemp(prefix="carnet-s3-")  # short: Ceph's admin sockets are Unix socket paths
    access, secret = "T" + secrets.token_hex(9).upper(), secrets.token_urlsafe(30)
    env = {
        **os.environ,
        "S3_MON_PORT": str(free_port()),
        "S3_PORT": str(free_port()),
        "S3_ACCESS_KEY": access,
        "S3_SECRET_KEY": secret,
        # the run's main process (xdist: the workers' parent): if it is killed, the server stops too
        "S3_WATCH_PID": str(os.getppid() if os.environ.get("PYTEST_XDIST_WORKER") else os.getpid()),
    }
    try:
        subprocess.run(["bash", str(SCRIPT), "start", folder], env=env, check=True, capture_output=True, timeout=150)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
        output = (getattr(exc, "stderr", b"") or b"").decode(errors="replace").strip().splitlines()
        shutil.rmtree(folder, ignore_errors=True)
        return {"failed": f"radosgw n'a pas démarré : {output[-1] if output else type(exc).__name__}"}
    endpoint = (Path(folder) / "endpoint").read_text().strip()
    return {"folder": folder, "endpoint": endpoint, "access": access, "secret": secret, "users": 0}


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    shared = _shared_folder(tmp_path_factory)
    with _locked(shared) as state_file:
        state = json.loads(state_file.read_text()) if state_file.exists() else _start()
        if "failed" not in state:
            state["users"] = int(state["users"]) + 1  # type: ignore[call-overload]
        state_file.write_text(json.dumps(state))
    if "failed" in state:
        if IN_CI:
            pytest.fail(f"CI=true mais le serveur S3 de test est indisponible : {state['failed']}", pytrace=False)
        pytest.skip(f"serveur S3 indisponible — tests S3 NON faits ({state['failed']})")
    server = S3Server(str(state["endpoint"]), str(state["access"]), str(state["secret"]))
    saved = {name: os.environ.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    # boto3's own chain reads the credentials from the environment, as in production
    os.environ.update(
        AWS_ACCESS_KEY_ID=server.access_key, AWS_SECRET_ACCESS_KEY=server.secret_key, AWS_EC2_METADATA_DISABLED="true"
    )
    try:
        yield server
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        with _locked(shared) as state_file:
            state = json.loads(state_file.read_text())
            state["users"] = int(state["users"]) - 1
            if state["users"] <= 0:
                subprocess.run(["bash", str(SCRIPT), "stop", str(state["folder"])], check=False, timeout=60)
                shutil.rmtree(str(state["folder"]), ignore_errors=True)
                state_file.unlink()
            else:
                state_file.write_text(json.dumps(state))


@pytest.fixture
def s3_url(s3_server: S3Server) -> str:
    """A new, empty bucket of the test server, as CARNET_BLOB_URL names it."""
    bucket = f"carnet-{uuid.uuid4().hex[:16]}"
    url = s3_server.url(bucket)
    S3BlobStore.from_url(url).ensure_bucket()
    return url


@pytest.fixture
def s3_store(s3_url: str) -> S3BlobStore:
    return S3BlobStore.from_url(s3_url)


@pytest.fixture
def s3_services(tmp_path: Path, database_url: str, s3_url: str) -> Iterator[Services]:
    """The services of an instance configured with CARNET_BLOB_URL=s3://… (on SQLite and PostgreSQL), demo data
    loaded."""
    services = build_services(make_settings(tmp_path / "data", database_url, blob_url=s3_url))
    assert isinstance(services.blobs, S3BlobStore)
    empty_tables(services)
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    yield services
    services.db.dispose()
