"""The catalogue's background jobs: every 90 days, the list of a space's connected apps e-mailed (TRC-3); expired
tokens and codes deleted."""

from __future__ import annotations

from datetime import timedelta

from carnet.catalogue.service import oauth, summaries
from carnet.jobs.worker import Job

JOBS = [
    Job("apps.summaries", timedelta(hours=6), summaries.send_due),
    Job("apps.tokens", timedelta(hours=1), oauth.purge_expired),
]
