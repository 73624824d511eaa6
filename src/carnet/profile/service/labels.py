"""The words of the history (TRC-2) for the medical profile's actions, merged into ``carnet.history.labels``
(action → (what was done, what was attempted when refused — a feminine noun, after « une »)).

``profile.write`` covers adding, correcting and deleting an item or a measure (the entry's ``details.op``
says which); ``profile.mask`` masking an item a professional entered, or showing it again.
"""

from __future__ import annotations

from typing import Final

ACTIONS: Final[dict[str, tuple[str, str]]] = {
    "profile.read": ("a consulté le profil médical", "consultation du profil médical"),
    "profile.write": ("a modifié le profil médical", "modification du profil médical"),
    "profile.mask": ("a masqué ou démasqué un élément du profil médical", "modification de la visibilité d'un élément"),
}
KIND_ACTIONS: Final[dict[str, set[str]]] = {
    "consultations": {"profile.read"},
}
