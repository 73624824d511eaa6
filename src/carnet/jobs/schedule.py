"""Every capability's periodic jobs, gathered for the worker (part of the composition root)."""

from __future__ import annotations

from carnet.access import jobs as access_jobs
from carnet.agenda import jobs as agenda_jobs
from carnet.catalogue import jobs as catalogue_jobs
from carnet.enrolment import jobs as enrolment_jobs
from carnet.export import jobs as export_jobs
from carnet.family import jobs as family_jobs
from carnet.identity import jobs as identity_jobs
from carnet.jobs.worker import Job
from carnet.messaging import jobs as messaging_jobs
from carnet.vault import jobs as vault_jobs


def all_jobs() -> list[Job]:
    return [
        *identity_jobs.JOBS,
        *vault_jobs.JOBS,
        *access_jobs.JOBS,
        *enrolment_jobs.JOBS,
        *family_jobs.JOBS,
        *agenda_jobs.JOBS,
        *messaging_jobs.JOBS,
        *export_jobs.JOBS,
        *catalogue_jobs.JOBS,
    ]
