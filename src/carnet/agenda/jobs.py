"""The agenda's background job: the daily reminders (AGD-3), run by ``carnet worker`` and, on the embedded
default, inside ``carnet serve`` (``carnet.jobs.schedule``)."""

from __future__ import annotations

from datetime import timedelta

from carnet.agenda.service import reminders
from carnet.jobs.worker import Job

# A whole-Corsica run takes minutes: the lease covers it with room to spare. A worker killed mid-run gives the job
# back when the lease ends; the next run claims only what was not claimed (carnet.agenda.service.reminders).
JOBS = [Job("agenda.reminders", timedelta(days=1), reminders.job, lease=timedelta(minutes=30))]
