"""The operator's enrolment work at the command line (``carnet registry …``, ``carnet campaign …``): one use
case per command, on the services; each step keeps the transactions of the service it calls.

``carnet spaces open`` needs nothing more than :func:`carnet.enrolment.service.campaigns.open_space`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from carnet.enrolment.service import campaigns
from carnet.enrolment.service.registry import ImportReport, import_registry
from carnet.hall import audit
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource

if TYPE_CHECKING:
    from carnet.bootstrap import Services
    from carnet.hall.actors import Actor

__all__ = [
    "CampaignStarted",
    "InvitationsSent",
    "import_registry_file",
    "launch_campaign",
    "print_campaign_letters",
    "send_invitations",
]


def import_registry_file(
    services: Services, actor: Actor, path: Path, progress: Callable[[int], None] | None = None
) -> ImportReport:
    """Import or update the insured persons of a registry CSV (ENR-1); ``progress`` gets the bytes handled.

    Raises ``AccessDenied`` for anyone but the service's operators (the policy decides, the refusal is kept)
    and :class:`carnet.enrolment.service.registry.RegistryFileError` when the file as a whole is refused.
    """
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.ENROLMENT_MANAGE, Resource("registry"))
    return import_registry(services.db, path, actor, progress)


@dataclass(frozen=True)
class CampaignStarted:
    id: str
    departements: tuple[str, ...]
    invited: int
    by_email: int
    by_letter: int


def launch_campaign(services: Services, actor: Actor, departements: str) -> CampaignStarted:
    """Start a campaign in these départements (ENR-2): everyone registered there and not yet invited is
    invited, by e-mail when they have an address, by letter otherwise. :class:`CampaignError` if refused."""
    campaign = campaigns.start_campaign(services, departements, actor)
    counts = campaigns.count_invitations(services, campaign.id)
    return CampaignStarted(
        campaign.id,
        tuple(campaign.departements),
        sum(counts.values()),
        counts.get("email", 0),
        counts.get("letter", 0),
    )


@dataclass(frozen=True)
class InvitationsSent:
    sent: int
    refused: int  # refused by the recipient's server, or given up: a letter instead
    retried: int  # temporary failures: to send again


def send_invitations(
    services: Services, connections: int, processes: int = 1, progress: Callable[[int, int], None] | None = None
) -> InvitationsSent:
    """Send every invitation e-mail waiting (resumes without loss after an interruption).

    ``progress(handled, total)`` is called once before sending, with the e-mails waiting, then as they go.
    """
    total = campaigns.email_backlog(services)
    if progress is not None:
        progress(0, total)

    def advanced(report: campaigns.SendReport) -> None:
        if progress is not None:
            progress(report.handled, total)

    report = campaigns.send_with_processes(services, processes, connections, on_progress=advanced)
    return InvitationsSent(report.sent, report.bounced + report.to_letter, report.retried)


def print_campaign_letters(
    services: Services, actor: Actor, campaign_id: str, batch_size: int
) -> list[campaigns.LetterBatch]:
    """Render the letters waiting in this campaign, one PDF per ``batch_size`` (for the printer);
    :class:`CampaignError` for an unknown campaign."""
    if not campaigns.campaign_progress(services, actor, campaign_id):
        raise campaigns.CampaignError("campagne inconnue.")
    return campaigns.render_pending_letters(services, campaign_id, batch_size=batch_size)
