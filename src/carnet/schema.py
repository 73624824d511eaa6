"""Every table of every capability, gathered into one metadata (migrations, tests, ``carnet migrate``).

Each capability keeps its tables in its own ``tables.py``; this module imports them all so that
``metadata`` is complete and foreign keys by table name resolve.
"""

from __future__ import annotations

from carnet.access import tables as access_tables
from carnet.agenda import tables as agenda_tables
from carnet.catalogue import tables as catalogue_tables
from carnet.enrolment import tables as enrolment_tables
from carnet.export import tables as export_tables
from carnet.family import tables as family_tables
from carnet.hall import tables as hall_tables
from carnet.history import tables as history_tables
from carnet.identity import tables as identity_tables
from carnet.jobs import tables as jobs_tables
from carnet.mail import tables as mail_tables
from carnet.messaging import tables as messaging_tables
from carnet.people import tables as people_tables
from carnet.profile import tables as profile_tables
from carnet.storage import tables as storage_tables
from carnet.storage.base import Base
from carnet.vault import tables as vault_tables

metadata = Base.metadata
MODULES = (
    people_tables,
    identity_tables,
    hall_tables,
    storage_tables,
    vault_tables,
    enrolment_tables,
    access_tables,
    family_tables,
    history_tables,
    jobs_tables,
    profile_tables,
    agenda_tables,
    mail_tables,
    messaging_tables,
    export_tables,
    catalogue_tables,
)
