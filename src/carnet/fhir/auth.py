"""Bearer authentication of the systems calling ``/fhir`` (OAuth 2 client credentials) and SMART v2 scopes.

Every FHIR interaction names the scope it needs (``system/DocumentReference.c`` to deposit, ``.s`` to
search, ``.r`` to read, ``.u`` to change…). A missing, expired or revoked token answers 401; a token
without the scope answers 403 with an OperationOutcome naming the missing scope. What the actor may then
do in a given space is still the policy's business, asked by the service.

A connected app (CAT-3) holds an access token of the catalogue (``cat.…``) with ``patient/`` scopes: the same
check, ``patient/Observation.r`` covering a read of Observation; the actor is the app bound to the one space that
consented, looked up with its consent and the app's status at every request (a disconnection or a suspension
answers 401 at the next call).
"""

from __future__ import annotations

from fastapi import Request

from carnet.bootstrap import Services
from carnet.catalogue.service import oauth as app_tokens
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
    bearer = header[7:].strip() if header.lower().startswith("bearer ") else ""
    if bearer.startswith(app_tokens.ACCESS_PREFIX):
        return _app_actor(services, bearer, scope)
    grant = clients.authenticate(services, header[7:].strip()) if header.lower().startswith("bearer ") else None
    if grant is None:
        raise FhirAuthError(401, "Jeton d'accès absent, invalide ou expiré (OAuth 2, /oauth/token).")
    if not permits(grant.scope, scope):
        raise FhirAuthError(
            403, f"Le jeton n'a pas la portée nécessaire : {scope} (portées accordées : {grant.scope})."
        )
    return grant.actor


def _app_actor(services: Services, token: str, scope: str) -> Actor:
    app = app_tokens.authenticate(services, token)
    if app is None:
        raise FhirAuthError(
            401, "Jeton d'accès absent, invalide ou expiré, ou application déconnectée par la personne (/oauth/token)."
        )
    if not permits(app.scopes.as_system(), scope):
        needed = "patient/" + scope.partition("/")[2]
        raise FhirAuthError(
            403, f"Le jeton n'a pas la portée nécessaire : {needed} (portées accordées : {app.scopes.text()})."
        )
    return app.actor
