"""Enrolment's background jobs: invitation e-mails (ENR-2), spaces opened after six weeks (ENR-3), archives
destroyed after ten years (ENR-6)."""

from __future__ import annotations

from datetime import timedelta

from carnet.bootstrap import Services
from carnet.enrolment.service import campaigns, lifecycle
from carnet.jobs.worker import Job

CAMPAIGN_SECONDS_PER_RUN = 10.0  # a bounded slice per run, so that the other jobs keep their pace


def send_invitations(services: Services) -> int:
    report = campaigns.send_pending(services, connections=2, max_seconds=CAMPAIGN_SECONDS_PER_RUN)
    return report.handled


JOBS = [
    Job("enrolment.invitations", timedelta(seconds=5), send_invitations),
    Job("enrolment.auto_create", timedelta(minutes=1), campaigns.auto_create_spaces),
    Job("enrolment.purge_archives", timedelta(hours=6), lifecycle.purge_archives),
]
