"""The words of the history (TRC-2) for the agenda's and the prevention's actions, merged into
``carnet.history.labels`` (action → (what was done, what was attempted when refused — a feminine noun, after
« une »)).

``agenda.write`` covers adding, changing, cancelling and deleting an appointment or a reminder, and creating or
revoking a calendar subscription link: the entry's ``details.op`` says which, and ``details.fait`` says it in
French (``DETAILED``). ``agenda.read`` is reading the agenda (the portal, an ``.ics`` download, a subscription
link, FHIR); ``prevention.read`` the recommended examinations; ``prevention.write`` what the person said was done.
"""

from __future__ import annotations

from typing import Final

ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "agenda.read": ("a consulté l'agenda", "consultation de l'agenda"),
    "agenda.write": ("a modifié l'agenda", "modification de l'agenda"),
    "prevention.read": ("a consulté les examens recommandés", "consultation des examens recommandés"),
    "prevention.write": (
        "a indiqué un examen ou un vaccin réalisé ou non réalisé",
        "mise à jour des examens recommandés",
    ),
}
DETAILED: Final[dict[str, str]] = {
    "agenda.write": "{fait}",
}
KIND_ACTIONS: Final[dict[str, set[str]]] = {
    "consultations": {"agenda.read", "prevention.read"},
    "modifications": {"agenda.write", "prevention.write"},
}
