"""Shared fixtures: every test that touches storage runs on SQLite AND on PostgreSQL.

Each run creates its own PostgreSQL database (unique name) and drops it at the end; between
tests, tables are emptied. Without a reachable PostgreSQL, the PostgreSQL half is reported
as not done (loudly); with CI=true it is an error.
"""

from __future__ import annotations

import html
import os
import re
import shutil
import uuid
from collections.abc import Iterator
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text

from carnet.bootstrap import Services, build_services
from carnet.config import Settings
from carnet.demo import DEMO_PASSWORD, load_demo
from carnet.schema import metadata
from carnet.storage.migrate import upgrade
from carnet.web.app import create_app

PG_ADMIN_URL = os.environ.get("CARNET_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
_pg_problem: list[str] = []
_s3_problem: list[str] = []


def _pg_available() -> str | None:
    try:
        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}".splitlines()[0]


def pytest_sessionstart(session: pytest.Session) -> None:
    problem = _pg_available()
    if problem:
        if IN_CI:
            raise pytest.UsageError(f"CI=true mais PostgreSQL est injoignable ({PG_ADMIN_URL}) : {problem}")
        _pg_problem.append(problem)
    if shutil.which("radosgw") is None:  # the real S3 server of tests/storage (scripts/s3-test-server)
        if IN_CI:
            raise pytest.UsageError("CI=true mais radosgw n'est pas installé (ceph-mon ceph-osd ceph-mgr radosgw)")
        _s3_problem.append("radosgw n'est pas installé")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _s3_problem:
        terminalreporter.write_sep("!", "EXÉCUTION S3 NON FAITE", red=True, bold=True)
        terminalreporter.write_line(f"Stockage objet : {_s3_problem[0]} ; les tests S3 ont été sautés.")
    if _pg_problem:
        terminalreporter.write_sep("!", "EXÉCUTION POSTGRESQL NON FAITE", red=True, bold=True)
        terminalreporter.write_line(f"PostgreSQL injoignable ({PG_ADMIN_URL}) : {_pg_problem[0]}")
        terminalreporter.write_line("Seule la moitié SQLite de la suite a tourné. En CI (CI=true) c'est une erreur.")


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One migrated database per backend for the whole run."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'carnet.sqlite3'}"
        upgrade(url)
        yield url
        return
    for url in postgresql_database("carnet_test"):
        upgrade(url)
        yield url


def postgresql_database(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (named ``prefix`` and a random suffix), dropped when the generator ends; the
    test is skipped — loudly, and an error in CI — when PostgreSQL is unreachable."""
    if _pg_problem:
        pytest.skip(f"PostgreSQL injoignable — exécution PostgreSQL NON faite ({_pg_problem[0]})")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield re.sub(r"/[^/]*$", f"/{name}", PG_ADMIN_URL)
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def empty_tables(services: Services) -> None:
    empty_database(services.db.engine)


def empty_database(engine: Engine) -> None:
    """Every table emptied, sequences back to 1. DELETE, not TRUNCATE: a TRUNCATE makes new files for every table and
    partition on PostgreSQL (1.9 s a test with the tables partitioned by patient, against 4 ms for these DELETEs)."""
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(text(f'DELETE FROM "{table.name}"'))
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT setval(oid, 1, false) FROM pg_class WHERE relkind = 'S'"))


def make_settings(data_dir: Path, database_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "data_dir": data_dir,
        "database_url": database_url,
        "argon2_profile": "test",
        "smtp_url": "outbox:",
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return make_settings(tmp_path / "data", database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = build_services(settings)
    empty_tables(services)
    yield services
    services.db.dispose()


@pytest.fixture
def demo(services: Services) -> Services:
    """Services with the Corsican demo data loaded."""
    with services.db.unit_of_work() as db:
        load_demo(services, db)
    return services


@pytest.fixture
def client(demo: Services) -> Iterator[TestClient]:
    with TestClient(create_app(services=demo), follow_redirects=False) as test_client:
        yield test_client


@pytest.fixture
def new_client(demo: Services) -> Iterator[object]:
    """Factory of independent browsers-like clients (separate cookie jars)."""
    clients: list[TestClient] = []

    def make() -> TestClient:
        test_client = TestClient(create_app(services=demo), follow_redirects=False)
        clients.append(test_client)
        return test_client

    yield make
    for test_client in clients:
        test_client.close()


def outbox_messages(services: Services) -> list[object]:
    folder = services.settings.resolved_data_dir / "outbox"
    parser = BytesParser(policy=policy.default)
    return [parser.parsebytes(path.read_bytes()) for path in sorted(folder.glob("*.eml"))]


def last_code_for(services: Services, email: str) -> str:
    for message in reversed(outbox_messages(services)):
        if message["To"] == email:  # type: ignore[index]
            body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
            match = re.search(r"\b(\d{6})\b", body)
            assert match, body
            return match.group(1)
    raise AssertionError(f"aucun e-mail pour {email}")


def csrf_of(page_html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page_html)
    assert match, "pas de jeton CSRF dans la page"
    return match.group(1)


def log_in(client: TestClient, services: Services, login: str, password: str = DEMO_PASSWORD) -> Any:
    """The whole login journey through the pages: password, then the e-mailed code; returns the last answer
    (a redirect to where the person lands)."""
    page = client.get("/connexion")
    response = client.post(
        "/connexion", data={"identifiant": login, "mot_de_passe": password, "csrf_token": csrf_of(page.text)}
    )
    assert response.status_code == 303, response.text
    page = client.get(response.headers["location"])
    email = f"{login}@exemple.fr"
    response = client.post(
        "/connexion/verification",
        data={"code": last_code_for(services, email), "methode": "email", "csrf_token": csrf_of(page.text)},
    )
    assert response.status_code == 303, response.text
    return response


def text_of(response: object) -> str:
    """The page as a person reads it (HTML entities decoded)."""
    return html.unescape(response.text)  # type: ignore[attr-defined]


# The actors of every protected page (patient, authorised professional, strangers) for every test folder.
from tests.support.actors import actors, feeders  # noqa: E402, F401
