"""The developer outbox page shows login codes: only on a loopback base URL with the local outbox (issue #15-5)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from carnet.bootstrap import build_services
from carnet.web.app import create_app
from tests.conftest import make_settings


@pytest.mark.parametrize(
    ("base_url", "smtp_url", "shown"),
    [
        ("http://127.0.0.1:8000", "outbox:", True),
        ("http://localhost:8000", "outbox:", True),
        ("http://[::1]:8000", "outbox:", True),
        ("http://carnet.example.org", "outbox:", False),  # a reachable host: the codes would be public
        ("http://10.0.0.5:8000", "outbox:", False),
        ("https://127.0.0.1:8443", "outbox:", False),
        ("http://127.0.0.1:8000", "smtp://127.0.0.1:2525", False),
    ],
)
def test_the_outbox_page_exists_only_on_the_loopback(tmp_path: Path, base_url: str, smtp_url: str, shown: bool) -> None:
    settings = make_settings(tmp_path, "", base_url=base_url, smtp_url=smtp_url)
    assert settings.show_dev_pages is shown
    services = build_services(settings)
    try:
        with TestClient(create_app(services=services)) as client:
            answer = client.get("/dev/boite-mail")
            assert answer.status_code == (200 if shown else 404)
            assert ("Boîte d'envoi" in answer.text) is shown
    finally:
        services.db.dispose()


def test_the_operator_may_force_it_either_way(tmp_path: Path) -> None:
    assert make_settings(tmp_path, "", base_url="http://carnet.example.org", dev_pages=True).show_dev_pages
    assert not make_settings(tmp_path, "", dev_pages=False).show_dev_pages
