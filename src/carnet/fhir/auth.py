"""Bearer authentication of the systems calling ``/fhir`` (OAuth 2 client credentials) and SMART v2 scopes.

Every FHIR interaction names the scope it needs (``system/DocumentReference.c`` to deposit, ``.s`` to
search, ``.r`` to read, ``.u`` to change…). A missing, expired or revoked token answers 401; a token
without the scope answers 403 with an OperationOutcome naming the missing scope. What the actor may then
do in a given space is still the policy's business, asked by the service.
"""

from __future__ import annotations

from fastapi import Request

from carnet.bootstrap import Services
from carnet.errors import CarnetError
from carnet.hall.actors import Actor
from carnet.identity.model import permits
from carnet.identity.service import clients


class FhirAuthError(CarnetError):
    """Answered by the app as an OperationOutcome (``code`` login or forbidden) with this status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def fhir_actor(request: Request, services: Services, scope: str) -> Actor:
    header = request.headers.get("authorization", "")
    grant = clients.authenticate(services, header[7:].strip()) if header.lower().startswith("bearer ") else None
    if grant is None:
        raise FhirAuthError(401, "Jeton d'accès absent, invalide ou expiré (OAuth 2, /oauth/token).")
    if not permits(grant.scope, scope):
        raise FhirAuthError(
            403, f"Le jeton n'a pas la portée nécessaire : {scope} (portées accordées : {grant.scope})."
        )
    return grant.actor
