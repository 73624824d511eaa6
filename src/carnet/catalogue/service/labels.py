"""The words of the history (TRC-2) for the catalogue's actions, merged into ``carnet.history.labels``.

``app.connect`` covers connecting, disconnecting and reporting an app (``details.op``); the app's name is in the
entry. What a connected app itself does is recorded under the usual actions (``document.search``,
``profile.write``…) with the app as the actor: the history shows it in « Services synchronisés ».
"""

from __future__ import annotations

from typing import Final

ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "app.connect": ("a modifié les applications connectées", "gestion des applications connectées"),
    "app.manage": ("a modifié le catalogue d'applications", "modification du catalogue d'applications"),
    "apps.summary_sent": (
        "a envoyé par e-mail la liste des services connectés (tous les 90 jours)",
        "envoi de la liste des services connectés",
    ),
}
OPS: Final[dict[str, str]] = {  # details.op → details.fait, written by the services
    "connect": "a connecté l'application « {nom} »",
    "disconnect": "a déconnecté l'application « {nom} »",
    "report": "a signalé l'application « {nom} »",
}
DETAILED: Final[dict[str, str]] = {"app.connect": "{fait}"}
KIND_ACTIONS: Final[dict[str, set[str]]] = {"acces": {"app.connect"}}
