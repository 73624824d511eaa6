"""TRC-3: every 90 days the person gets an e-mail listing the apps connected to their space — their names and when
each was connected, nothing they read or wrote — and nothing once no app is connected any more."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from carnet.bootstrap import Services
from carnet.catalogue.service import connections, summaries
from carnet.storage.types import utcnow
from tests.catalogue.conftest import ReferencedApp, consent, reference
from tests.catalogue.test_bad_inputs import authorize_url
from tests.conftest import outbox_messages
from tests.export.test_exported_resources import actor_of


def summaries_sent(services: Services) -> list[str]:
    return [
        m.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
        for m in outbox_messages(services)
        if m["Subject"] == summaries.SUBJECT  # type: ignore[index]
    ]


def test_trc3_the_connected_apps_are_listed_every_ninety_days_and_no_longer_once_disconnected(
    demo: Services, patient_browser: TestClient, app: ReferencedApp
) -> None:
    other = reference(demo, "Journal de glycémie")
    consent(patient_browser, authorize_url(app))
    consent(patient_browser, authorize_url(other))
    now = utcnow()
    assert summaries.send_due(demo, now) == 0  # not before 90 days
    assert summaries.send_due(demo, now + timedelta(days=91)) == 1
    (text,) = summaries_sent(demo)
    assert "Balance connectée Tensio (connecté le" in text and "Journal de glycémie" in text
    assert "Services connectés" in text and "kg" not in text  # names and dates only, nothing read or written
    assert summaries.send_due(demo, now + timedelta(days=120)) == 0  # once per 90 days
    assert summaries.send_due(demo, now + timedelta(days=182)) == 1
    marie = actor_of(demo, "marie-ange.santoni")
    assert marie.patient_id
    for connected in (app, other):  # « Déconnecter », both
        connections.disconnect(demo, marie, marie.patient_id, connected.id)
    assert summaries.send_due(demo, now + timedelta(days=400)) == 0  # nothing connected: nothing sent
