"""The catalogue's background job: every 90 days, the list of a space's connected apps e-mailed (TRC-3)."""

from __future__ import annotations

from datetime import timedelta

from carnet.catalogue.service import summaries
from carnet.jobs.worker import Job

JOBS = [Job("apps.summaries", timedelta(hours=6), summaries.send_due)]
