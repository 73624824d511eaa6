"""Family's background job: at 18 the person takes over their own space (FAM-2)."""

from __future__ import annotations

from datetime import timedelta

from carnet.family import service as family
from carnet.jobs.worker import Job

JOBS = [Job("family.majority", timedelta(hours=1), family.majority)]
