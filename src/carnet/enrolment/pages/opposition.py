"""ENR-3 pages without login: object to the creation of a space, or change one's mind; the receipt.

Attempts are limited per client address (``ATTEMPTS`` per ``WINDOW_SECONDS``); a mismatch gives one
generic message whatever field was wrong. The receipt link carries an encrypted, short-lived token.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, Response

from carnet.bootstrap import Services
from carnet.enrolment.model.opposition import creation_day, date_fr, last_day
from carnet.enrolment.service import opposition
from carnet.enrolment.service.identify import FormError, NotIdentified
from carnet.identity.service.ratelimit import RateLimiter
from carnet.web.deps import ServicesDep, client_address, csrf_protect, render

router = APIRouter(dependencies=[Depends(csrf_protect)])

ATTEMPTS = 10
WINDOW_SECONDS = 15 * 60.0
GENERIC_ERROR = (
    "Nous n'avons pas pu vérifier ces informations. Vérifiez le code d'activation, le numéro de sécurité "
    "sociale et la date de naissance, puis réessayez."
)
MODES = {
    "objection": {"title": "S'opposer à la création de l'espace santé", "action": "/opposition"},
    "withdraw": {"title": "Retirer une opposition à l'espace santé", "action": "/opposition/annuler"},
}


def _limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter | None = getattr(request.app.state, "opposition_limiter", None)
    if limiter is None:
        limiter = RateLimiter(ATTEMPTS, WINDOW_SECONDS)
        request.app.state.opposition_limiter = limiter
    return limiter


def _form(
    request: Request,
    services: Services,
    mode: str,
    status_code: int = 200,
    error: str | None = None,
    field: str | None = None,
    values: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request,
        services,
        "opposition/form.html",
        status_code=status_code,
        title=MODES[mode]["title"],
        mode=mode,
        form_action=MODES[mode]["action"],
        error=error,
        field=field,
        values=values or {},
        phone=services.settings.support_phone,
    )


def _submit(request: Request, services: Services, mode: str, code: str, nir: str, naissance: str) -> Response:
    values = {"code": code, "naissance": naissance}  # the NIR is never echoed back into the page
    if not _limiter(request).hit(client_address(request)):
        return _form(
            request,
            services,
            mode,
            429,
            "Trop de tentatives depuis votre connexion. Réessayez dans 15 minutes, ou appelez un conseiller au "
            f"{services.settings.support_phone}.",
            values=values,
        )
    try:
        outcome = opposition.object_online(services, code, nir, naissance, withdraw=mode == "withdraw")
    except FormError as exc:
        return _form(request, services, mode, 400, exc.message, exc.field, values)
    except NotIdentified:
        return _form(request, services, mode, 400, GENERIC_ERROR, values=values)
    receipt_url = "/opposition/recepisse/" + outcome.receipt_token if outcome.receipt_token else None
    deadline = outcome.deadline
    return render(
        request,
        services,
        "opposition/result.html",
        title="Votre demande",
        outcome=outcome,
        receipt_url=receipt_url,
        last_day=date_fr(last_day(deadline)) if deadline else None,
        creation_day=date_fr(creation_day(deadline)) if deadline else None,
        phone=services.settings.support_phone,
    )


@router.get("/opposition", response_class=HTMLResponse)
def objection_page(request: Request, services: ServicesDep) -> Response:
    return _form(request, services, "objection")


@router.post("/opposition", response_class=HTMLResponse)
def objection_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form(max_length=30)] = "",
    nir: Annotated[str, Form(max_length=30)] = "",
    naissance: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return _submit(request, services, "objection", code, nir, naissance)


@router.get("/opposition/annuler", response_class=HTMLResponse)
def withdraw_page(request: Request, services: ServicesDep) -> Response:
    return _form(request, services, "withdraw")


@router.post("/opposition/annuler", response_class=HTMLResponse)
def withdraw_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form(max_length=30)] = "",
    nir: Annotated[str, Form(max_length=30)] = "",
    naissance: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    return _submit(request, services, "withdraw", code, nir, naissance)


@router.get("/opposition/recepisse/{token}")
def receipt(request: Request, services: ServicesDep, token: str) -> Response:
    document = opposition.receipt_by_token(services, token) if len(token) <= 200 else None
    if document is None:
        return render(
            request,
            services,
            "error.html",
            status_code=404,
            title="Lien expiré",
            message="Ce lien de téléchargement a expiré (il est valable 30 minutes). Recommencez la démarche "
            "d'opposition pour obtenir un nouveau lien : votre opposition déjà enregistrée ne sera pas dupliquée.",
        )
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="recepisse-opposition.pdf"'},
    )
