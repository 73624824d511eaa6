"""The operator's enrolment work at the command line (``carnet registry …``, ``carnet campaign …``) and the
registry file sent from the console: one use case per command, on the services; each step keeps the
transactions of the service it calls.

``carnet spaces open`` needs nothing more than :func:`carnet.enrolment.service.campaigns.open_space`.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Final

from carnet.enrolment.service import campaigns
from carnet.enrolment.service.registry import ImportReport, RegistryFileError, import_registry
from carnet.hall import audit
from carnet.hall.guard import guard
from carnet.hall.policy import Action, Resource

if TYPE_CHECKING:
    from carnet.bootstrap import Services
    from carnet.hall.actors import Actor

__all__ = [
    "UPLOAD_MAX_BYTES",
    "CampaignStarted",
    "InvitationsSent",
    "import_registry_file",
    "import_registry_upload",
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


UPLOAD_MAX_BYTES: Final = 20 * 1024 * 1024  # ≈ 140,000 lines, ≈ 15 s; a whole region goes by the command line
_UPLOAD_SUFFIXES: Final = (".csv",)
_UPLOAD_LEFTOVER_AGE: Final = 24 * 3600  # seconds: a copy a killed server left behind is removed by the next upload
_CHUNK: Final = 1 << 20


def _too_big(size: int) -> RegistryFileError:
    sent = f"{size / 1_048_576:.1f}".replace(".", ",")
    limit = UPLOAD_MAX_BYTES // 1_048_576
    return RegistryFileError(
        f"Le fichier dépasse {limit} Mo ({sent} Mo) : importez-le en ligne de commande (carnet registry import), "
        "ou découpez-le en plusieurs fichiers portant chacun la ligne d'en-tête. Rien n'a été importé."
    )


def _private_copy(services: Services, source: BinaryIO) -> Path:
    """Copy the sent file into the data folder (0700), readable by the service only (0600), at most
    ``UPLOAD_MAX_BYTES`` — the import reads a path, twice; the registry holds NIRs, nothing goes to /tmp."""
    folder = services.settings.resolved_data_dir / "imports"
    folder.mkdir(mode=0o700, exist_ok=True)
    for stale in folder.glob("registre-*.csv"):
        with contextlib.suppress(OSError):  # another upload may be removing it
            if time.time() - stale.stat().st_mtime > _UPLOAD_LEFTOVER_AGE:
                stale.unlink()
    fd, name = tempfile.mkstemp(prefix="registre-", suffix=".csv", dir=folder)  # 0600
    path = Path(name)
    size = 0
    try:
        with os.fdopen(fd, "wb") as copy:
            while chunk := source.read(_CHUNK):
                size += len(chunk)
                if size > UPLOAD_MAX_BYTES:
                    raise _too_big(size)
                copy.write(chunk)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path


def import_registry_upload(
    services: Services, actor: Actor, source: BinaryIO, filename: str, size: int | None = None
) -> ImportReport:
    """The registry CSV sent from the operator console (ENR-1): the same import, the same report as
    ``carnet registry import`` — operators only (the hall decides before the file is read).

    Raises ``AccessDenied``, or :class:`RegistryFileError` when the file is refused as a whole (not a CSV,
    larger than ``UPLOAD_MAX_BYTES``, not UTF-8, wrong header …)."""
    with services.db.unit_of_work() as db:
        guard(db, actor, audit.NO_PATIENT_CHAIN, Action.ENROLMENT_MANAGE, Resource("registry"))
    if not filename.strip():
        raise RegistryFileError("Choisissez le fichier du registre à importer.")
    if not filename.lower().endswith(_UPLOAD_SUFFIXES):
        raise RegistryFileError(
            "Le registre doit être un fichier CSV (.csv) : dans un tableur, « Enregistrer sous » puis « CSV UTF-8 ». "
            "Rien n'a été importé."
        )
    if size is not None and size > UPLOAD_MAX_BYTES:
        raise _too_big(size)
    path = _private_copy(services, source)
    try:
        return import_registry(services.db, path, actor, parallel=False)  # never fork a web server
    finally:
        path.unlink(missing_ok=True)


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
    services: Services, actor: Actor, campaign_id: str, batch_size: int, processes: int = 1
) -> list[campaigns.LetterBatch]:
    """Render the letters waiting in this campaign, one PDF per ``batch_size`` (for the printer), in ``processes``
    processes; :class:`CampaignError` for an unknown campaign."""
    if not campaigns.campaign_progress(services, actor, campaign_id):
        raise campaigns.CampaignError("campagne inconnue.")
    return campaigns.render_with_processes(services, campaign_id, batch_size, processes)
