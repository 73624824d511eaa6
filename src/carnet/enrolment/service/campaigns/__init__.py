"""Invitation campaigns by territory (ENR-2) and the automatic creation of spaces (ENR-3).

The ``invitations`` table is the queue; every step is a short transaction, so the work survives a
restart and several workers (the server's job runner, ``carnet campaign send``) can share it.

States of an invitation::

    e-mail:  pending ──claim──▶ sending ──delivered──▶ sent
                ▲                  │ 5xx for this recipient ──▶ bounced (channel becomes letter)
                └── temporary failure (4xx, server down), or a claim older than LEASE (crash)
    letter:  to_print | bounced | pending ──claim──▶ printing ──PDF written──▶ letter

A person without e-mail waits as ``to_print``, not ``pending``: the e-mail queue is read through the
(status, campaign) index, and 69,000 letters waiting among the pending rows would be walked over again
at every claim. (``pending`` letters still exist: a new code asked for by post, see activation.)

At-least-once e-mail, with a bound (``sending``): a crash loses no e-mail and re-sends at most
``CHUNK`` = 50 e-mails per SMTP connection in flight. Letters are exactly-once per batch (``printing``).

The modules, one concern each:

* ``queue``: the states, the claim shared by e-mails and letters, the limits (``CHUNK``, ``LEASE`` …);
* ``targeting``: the départements of a campaign and the invitations it queues;
* ``sending``: the e-mail workers (threads, processes);
* ``printing``: the letters queue, print-ready batches, one person's letter again;
* ``creation``: spaces created after the objection period, or at once by an operator;
* ``reporting``: the progress counters of the console and the CLI.
"""

from carnet.enrolment.service.campaigns.creation import (
    OPEN_CHUNK,
    Opened,
    active_objection,
    auto_create_spaces,
    open_space,
)
from carnet.enrolment.service.campaigns.printing import (
    LetterBatch,
    batch_path,
    contact,
    letter_batch_file,
    letter_for_patient,
    letters_dir,
    produce_letters,
    render_letters,
    render_pending_letters,
    render_with_processes,
    reprint_letter,
)
from carnet.enrolment.service.campaigns.queue import (
    BOUNCE,
    CHUNK,
    INSERT_PAGE,
    LEASE,
    LETTER_BATCH,
    MAX_ATTEMPTS,
    SERVICE_SPACE,
    CampaignError,
)
from carnet.enrolment.service.campaigns.reporting import CampaignProgress, campaign_progress
from carnet.enrolment.service.campaigns.sending import (
    SendReport,
    email_backlog,
    recover_abandoned,
    send_pending,
    send_with_processes,
)
from carnet.enrolment.service.campaigns.targeting import (
    DEPARTEMENTS,
    CampaignView,
    count_invitations,
    parse_departements,
    start_campaign,
)
from carnet.people.model.identifiers import display_name

__all__ = [
    "BOUNCE",
    "CHUNK",
    "DEPARTEMENTS",
    "INSERT_PAGE",
    "LEASE",
    "LETTER_BATCH",
    "MAX_ATTEMPTS",
    "OPEN_CHUNK",
    "SERVICE_SPACE",
    "CampaignError",
    "CampaignProgress",
    "CampaignView",
    "LetterBatch",
    "Opened",
    "SendReport",
    "active_objection",
    "auto_create_spaces",
    "batch_path",
    "campaign_progress",
    "contact",
    "count_invitations",
    "display_name",
    "email_backlog",
    "letter_batch_file",
    "letter_for_patient",
    "letters_dir",
    "open_space",
    "parse_departements",
    "produce_letters",
    "recover_abandoned",
    "render_letters",
    "render_pending_letters",
    "render_with_processes",
    "reprint_letter",
    "send_pending",
    "send_with_processes",
    "start_campaign",
]
