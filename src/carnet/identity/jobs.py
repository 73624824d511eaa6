"""Identity's background jobs: expired sessions and old one-time codes removed; the e-mails (login and
activation codes first of all) a relay outage held back, sent again when the relay is back."""

from __future__ import annotations

from datetime import timedelta

from carnet.identity.service import auth
from carnet.jobs.worker import Job
from carnet.mail import queue

JOBS = [
    Job("identity.sessions", timedelta(minutes=5), auth.purge_expired_sessions),
    Job("mail.retry", timedelta(seconds=15), queue.retry_job),
]
