"""Identity's background job: expired sessions and old one-time codes removed."""

from __future__ import annotations

from datetime import timedelta

from carnet.identity.service import auth
from carnet.jobs.worker import Job

JOBS = [Job("identity.sessions", timedelta(minutes=5), auth.purge_expired_sessions)]
