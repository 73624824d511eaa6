"""Access's background job: the e-mails after an emergency access or a first consultation (ACC-4, TRC-3)."""

from __future__ import annotations

from datetime import timedelta

from carnet.access.service import grants
from carnet.jobs.worker import Job

JOBS = [Job("access.notices", timedelta(seconds=15), grants.send_notices)]
