"""SMART App Launch 2 scopes an app may ask for, and their French wording on the consent screen (CAT-2).

An app acts for one patient: its scopes are ``patient/<Resource>.<cruds>`` (v2; the v1 names ``read``,
``write`` and ``*`` are accepted in requests and written as v2), plus ``launch/patient`` (the patient context
of a standalone launch) and ``offline_access`` (a refresh token). What a patient scope lets the app do on the
FHIR API is checked like a system scope (``patient/Observation.r`` covers reading Observation), restricted to
the one space that consented — the policy's business (``carnet.hall.policy.rule_apps``).
"""

from __future__ import annotations

from dataclasses import dataclass

PERMISSIONS = "cruds"
V1_ALIASES = {"read": "rs", "write": "cud", "*": "cruds"}
LAUNCH_PATIENT = "launch/patient"
OFFLINE = "offline_access"
CONTEXT_SCOPES = (LAUNCH_PATIENT, OFFLINE, "openid", "fhirUser")

APP_SCOPES: dict[str, str] = {  # what a referenced app may ever be granted (CAT-3)
    "DocumentReference": "crs",  # documents: ITI-65 (c), ITI-67 (s), read (r)
    "Binary": "r",  # ITI-68: the document's content
    "Observation": "crus",  # measures from connected devices (u: correcting its own, once the FHIR API serves it)
    "Condition": "rs",
    "AllergyIntolerance": "rs",
    "MedicationStatement": "rs",
    "Immunization": "rs",
    "Appointment": "crs",  # the agenda
}

WHAT = {  # the data, as a patient reads it
    "DocumentReference": "vos documents de santé (comptes rendus, ordonnances, résultats…)",
    "Binary": "le contenu de vos documents de santé",
    "Observation": "vos mesures (poids, tension, glycémie, pas…)",
    "Condition": "vos maladies et problèmes de santé",
    "AllergyIntolerance": "vos allergies",
    "MedicationStatement": "vos traitements",
    "Immunization": "vos vaccinations",
    "Appointment": "votre agenda de rendez-vous",
}
VERBS = {"c": "ajouter", "r": "lire", "u": "modifier", "d": "supprimer", "s": "rechercher"}
CONTEXT_WORDS = {
    LAUNCH_PATIENT: "Savoir à quel espace santé elle est connectée (le vôtre)",
    OFFLINE: "Rester connectée quand vous n'utilisez pas Carnet, jusqu'à ce que vous la déconnectiez",
    "openid": "Connaître l'identifiant de votre compte",
    "fhirUser": "Connaître l'identifiant de votre compte",
}


class ScopeError(ValueError):
    """A scope Carnet does not know or does not give to apps (the message is French)."""


@dataclass(frozen=True)
class Scopes:
    """Parsed scopes: resource → permissions, and the context scopes (``launch/patient``, ``offline_access``)."""

    resources: dict[str, frozenset[str]]
    context: frozenset[str] = frozenset()

    def text(self) -> str:
        parts = [
            f"patient/{resource}.{''.join(p for p in PERMISSIONS if p in perms)}"
            for resource, perms in sorted(self.resources.items())
            if perms
        ]
        return " ".join([*(c for c in CONTEXT_SCOPES if c in self.context), *parts])

    def within(self, other: Scopes) -> bool:
        """Every permission here is also in ``other`` (no escalation)."""
        return self.context <= other.context and all(
            perms <= other.resources.get(resource, frozenset()) for resource, perms in self.resources.items()
        )

    def as_system(self) -> str:
        """The same permissions written as system scopes, for ``carnet.identity.model.permits``."""
        return " ".join(
            f"system/{r}.{''.join(p for p in PERMISSIONS if p in perms)}"
            for r, perms in self.resources.items()
            if perms
        )


def parse(text: str) -> Scopes:
    """``"launch/patient patient/Observation.cru"`` → ``Scopes``; ``ScopeError`` on anything else, and on a
    permission Carnet never gives to apps (``APP_SCOPES``)."""
    resources: dict[str, set[str]] = {}
    context: set[str] = set()
    for item in text.split():
        if item in CONTEXT_SCOPES:
            context.add(item)
            continue
        kind, _, rest = item.partition("/")
        resource, _, permissions = rest.partition(".")
        permissions = V1_ALIASES.get(permissions, permissions)
        if kind != "patient" or not resource or not permissions or set(permissions) - set(PERMISSIONS):
            raise ScopeError(f"Portée non reconnue : « {item[:80]} » (attendu par exemple patient/Observation.cru).")
        if resource not in APP_SCOPES or set(permissions) - set(APP_SCOPES[resource]):
            raise ScopeError(f"Portée non proposée aux applications : « {item[:80]} ».")
        resources.setdefault(resource, set()).update(permissions)
    return Scopes({r: frozenset(p) for r, p in resources.items()}, frozenset(context))


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " et " + words[-1]


def wording(scopes: Scopes) -> list[tuple[str, str]]:
    """Each scope with its French sentence, for the consent screen and the catalogue:
    ``("patient/Observation.cr", "Lire et ajouter vos mesures (poids, tension, glycémie, pas…)")``."""
    lines = []
    for resource, perms in sorted(scopes.resources.items()):
        letters = "".join(p for p in "rscud" if p in perms)
        verbs = _join([VERBS[p] for p in letters])
        code = f"patient/{resource}.{''.join(p for p in PERMISSIONS if p in perms)}"
        lines.append((code, f"{verbs[0].upper()}{verbs[1:]} {WHAT[resource]}"))
    lines += [(c, CONTEXT_WORDS[c]) for c in CONTEXT_SCOPES if c in scopes.context]
    return lines


def writes(scopes: Scopes) -> bool:
    return any(perms & {"c", "u", "d"} for perms in scopes.resources.values())
