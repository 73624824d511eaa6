"""Activation pages (ENR-4): ``/activation`` → contact → verification → account. No login needed."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.enrolment.service.activation import (
    ActivationError,
    State,
    check_contact_code,
    check_identity,
    create_account,
    request_new_code,
)
from carnet.enrolment.service.activation import send_contact_code as send_code
from carnet.web.deps import ServicesDep, client_address, csrf_protect, render

router = APIRouter(prefix="/activation", dependencies=[Depends(csrf_protect)])
COOKIE = "carnet_activation"
TOO_MANY = "Trop de tentatives depuis votre connexion. Patientez une minute avant de réessayer."
STEPS = {"identite": 1, "contact": 2, "verification": 3, "compte": 4, "nouveau_code": 1}


def _page(request: Request, services: Services, step: str, status: int = 200, **context: object) -> Response:
    return render(
        request,
        services,
        f"activation/{step}.html",
        status_code=status,
        title="Activer mon espace santé",
        step_number=STEPS[step],
        steps=len(STEPS),
        **context,
    )


def _state(request: Request, services: Services, step: str) -> State | None:
    state = State.unseal(services, request.cookies.get(COOKIE))
    return state if state and state.step == step else None


def _next(services: Services, state: State, url: str) -> Response:
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        COOKIE,
        state.seal(services),
        httponly=True,
        secure=services.settings.https,
        samesite="strict",
        path="/activation",
        max_age=1800,
    )
    return response


def _limited(request: Request, services: Services) -> bool:
    return not services.ip_limiter.hit("activation:" + client_address(request))


@router.get("")
def identity_form(request: Request, services: ServicesDep) -> Response:
    return _page(request, services, "identite")


@router.post("")
def identity_submit(
    request: Request,
    services: ServicesDep,
    code: Annotated[str, Form(max_length=40)] = "",
    date_naissance: Annotated[str, Form(max_length=10)] = "",
    nir: Annotated[str, Form(max_length=30)] = "",
    vitale: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    form = {"code": code, "date_naissance": date_naissance, "nir": nir, "vitale": vitale}
    if _limited(request, services):
        return _page(request, services, "identite", 429, error=TOO_MANY, field="", form=form)
    try:
        born = date.fromisoformat(date_naissance)
    except ValueError:
        born = None
    try:
        state = check_identity(services, code, born, nir, vitale)
    except ActivationError as exc:
        message = exc.message if born or exc.field != "date_naissance" else "Indiquez votre date de naissance."
        return _page(request, services, "identite", 400, error=message, field=exc.field, form=form)
    return _next(services, state, "/activation/contact")


@router.get("/contact")
def contact_form(request: Request, services: ServicesDep) -> Response:
    state = _state(request, services, "contact")
    if state is None:
        return RedirectResponse("/activation", status_code=303)
    return _page(request, services, "contact", email=state.email)


@router.post("/contact")
def contact_submit(
    request: Request, services: ServicesDep, email: Annotated[str, Form(max_length=254)] = ""
) -> Response:
    state = _state(request, services, "contact") or _state(request, services, "verification")
    if state is None:
        return RedirectResponse("/activation", status_code=303)
    if _limited(request, services):
        return _page(request, services, "contact", 429, error=TOO_MANY, email=email)
    try:
        state = send_code(services, State(state.invitation_id, "contact", state.expires, email=state.email), email)
    except ActivationError as exc:
        return _page(request, services, "contact", 400, error=exc.message, email=email)
    return _next(services, state, "/activation/verification")


@router.get("/verification")
def verification_form(request: Request, services: ServicesDep) -> Response:
    state = _state(request, services, "verification")
    if state is None:
        return RedirectResponse("/activation", status_code=303)
    return _page(request, services, "verification", email=state.email)


@router.post("/verification")
def verification_submit(
    request: Request, services: ServicesDep, code: Annotated[str, Form(max_length=10)] = ""
) -> Response:
    state = _state(request, services, "verification")
    if state is None:
        return RedirectResponse("/activation", status_code=303)
    try:
        state = check_contact_code(services, state, code)
    except ActivationError as exc:
        return _page(request, services, "verification", 400, error=exc.message, email=state.email)
    return _next(services, state, "/activation/compte")


@router.get("/compte")
def account_form(request: Request, services: ServicesDep) -> Response:
    if _state(request, services, "compte") is None:
        return RedirectResponse("/activation", status_code=303)
    return _page(request, services, "compte")


@router.post("/compte")
def account_submit(
    request: Request,
    services: ServicesDep,
    identifiant: Annotated[str, Form(max_length=60)] = "",
    mot_de_passe: Annotated[str, Form(max_length=200)] = "",
    confirmation: Annotated[str, Form(max_length=200)] = "",
) -> Response:
    state = _state(request, services, "compte")
    if state is None:
        return RedirectResponse("/activation", status_code=303)
    try:
        create_account(services, state, identifiant, mot_de_passe, confirmation)
    except ActivationError as exc:
        return _page(request, services, "compte", 400, error=exc.message, field=exc.field, identifiant=identifiant)
    response = RedirectResponse("/connexion?active=1", status_code=303)
    response.delete_cookie(COOKIE, path="/activation")
    return response


@router.get("/nouveau-code")
def new_code_form(request: Request, services: ServicesDep) -> Response:
    return _page(request, services, "nouveau_code")


@router.post("/nouveau-code")
def new_code_submit(
    request: Request,
    services: ServicesDep,
    nir: Annotated[str, Form(max_length=30)] = "",
    date_naissance: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if _limited(request, services):
        return _page(request, services, "nouveau_code", 429, error=TOO_MANY, nir=nir)
    try:
        born = date.fromisoformat(date_naissance)
    except ValueError:
        born = None
    try:
        done = request_new_code(services, nir, born)
    except ActivationError as exc:
        return _page(request, services, "nouveau_code", 400, error=exc.message, nir=nir)
    return _page(request, services, "nouveau_code", done=done)
