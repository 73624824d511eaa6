"""The words of the history (TRC-2) for the messaging's actions, merged into ``carnet.history.labels`` (action →
(what was done, what was attempted when refused — a feminine noun, after « une »)).

``message.write`` covers starting a conversation, answering in one, writing again and deleting one: the entry's
``details.op`` says which, ``details.fait`` says it in French (``DETAILED``). Nothing of what was written is in the
history: no subject, no text, no file name.
"""

from __future__ import annotations

from typing import Final

ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "message.read": ("a consulté la messagerie", "consultation de la messagerie"),
    "message.write": ("a écrit un message", "écriture d'un message"),
    "message.close": ("a mis fin à un échange", "clôture d'un échange"),
}
DETAILED: Final[dict[str, str]] = {
    "message.write": "{fait}",
}
KIND_ACTIONS: Final[dict[str, set[str]]] = {
    "consultations": {"message.read"},
    "modifications": {"message.write", "message.close"},
}
