"""The operator console (ENR-1, ENR-2, ENR-3): the registry file, campaigns and their progress, phone objections,
letters.

Routes turn the request into an actor and call the services, which ask the hall: a patient or a
professional gets the 403 page, an anonymous visitor is sent to the login page. The console never
shows health data (the policy refuses it to operators whatever the route).
"""

from __future__ import annotations

import io
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from carnet.bootstrap import Services
from carnet.enrolment.model.opposition import date_fr, last_day
from carnet.enrolment.model.registry import COLUMNS, REQUIRED_COLUMNS
from carnet.enrolment.service import admin, campaigns, opposition
from carnet.enrolment.service.identify import FormError, NotIdentified
from carnet.enrolment.service.registry import RegistryFileError
from carnet.web.deps import ServicesDep, Viewer, csrf_protect, render, require_viewer

router = APIRouter(prefix="/operateur", dependencies=[Depends(csrf_protect)])
LETTER_BATCHES_PER_CLICK = 20  # ≈ 20,000 letters, a few seconds; the rest on the next click or by the CLI
NOTICES = {
    "demarree": "Campagne lancée : les e-mails partent en tâche de fond.",
    "courriers": "Les courriers en attente ont été produits.",
}
NOT_FOUND = "Aucune personne ne correspond à ce NIR et à cette date de naissance."
REPORT_LINES = 500  # refused lines and warnings shown on the page; the count of the others is given


def _console(
    request: Request, services: Services, viewer: Viewer, status_code: int = 200, **context: object
) -> HTMLResponse:
    progress = campaigns.campaign_progress(services, viewer.actor)
    notice = NOTICES.get(request.query_params.get("fait", ""))
    return render(
        request,
        services,
        "operator/console.html",
        status_code=status_code,
        title="Console des conseillers",
        viewer=viewer,
        current="operateur",
        progress=progress,
        notice=notice,
        registry_columns=[(column, column in REQUIRED_COLUMNS) for column in COLUMNS],
        upload_max_mb=admin.UPLOAD_MAX_BYTES // 1_048_576,
        report_lines=REPORT_LINES,
        **context,
    )


@router.get("", response_class=HTMLResponse)
def console(request: Request, services: ServicesDep) -> Response:
    return _console(request, services, require_viewer(request, services))


@router.post("/registre", response_class=HTMLResponse)
def registry_upload(
    request: Request, services: ServicesDep, fichier: Annotated[UploadFile | None, File()] = None
) -> Response:
    """ENR-1 from the console: the same import and the same line-by-line report as ``carnet registry import``."""
    viewer = require_viewer(request, services)
    filename = ((fichier.filename or "") if fichier else "").replace("\\", "/").split("/")[-1]
    try:
        report = admin.import_registry_upload(
            services,
            viewer.actor,
            fichier.file if fichier else io.BytesIO(),
            filename,
            fichier.size if fichier else None,
        )
    except RegistryFileError as exc:
        return _console(request, services, viewer, 400, error=exc.message)
    return _console(request, services, viewer, registry=report, registry_file=filename)


@router.post("/campagnes", response_class=HTMLResponse)
def start(request: Request, services: ServicesDep, departements: Annotated[str, Form(max_length=100)] = "") -> Response:
    viewer = require_viewer(request, services)
    try:
        campaign = campaigns.start_campaign(services, departements, viewer.actor)
    except campaigns.CampaignError as exc:
        return _console(request, services, viewer, 400, error=exc.message, departements=departements)
    return RedirectResponse(f"/operateur/campagnes/{campaign.id}?fait=demarree", status_code=303)


@router.get("/campagnes/{campaign_id}", response_class=HTMLResponse)
def campaign_page(request: Request, services: ServicesDep, campaign_id: str) -> Response:
    viewer = require_viewer(request, services)
    found = campaigns.campaign_progress(services, viewer.actor, campaign_id)
    if not found:
        return render(
            request, services, "error.html", 404, title="Campagne introuvable", message="Cette campagne n'existe pas."
        )
    return render(
        request,
        services,
        "operator/campaign.html",
        title="Campagne",
        viewer=viewer,
        current="operateur",
        item=found[0],
        notice=NOTICES.get(request.query_params.get("fait", "")),
    )


@router.post("/campagnes/{campaign_id}/courriers")
def produce_letters(request: Request, services: ServicesDep, campaign_id: str) -> Response:
    viewer = require_viewer(request, services)
    campaigns.produce_letters(services, viewer.actor, campaign_id, max_batches=LETTER_BATCHES_PER_CLICK)
    return RedirectResponse(f"/operateur/campagnes/{campaign_id}?fait=courriers", status_code=303)


@router.get("/campagnes/{campaign_id}/courriers/{batch}.pdf")
def letter_batch(request: Request, services: ServicesDep, campaign_id: str, batch: str) -> Response:
    viewer = require_viewer(request, services)
    try:
        path = campaigns.letter_batch_file(services, viewer.actor, campaign_id, batch)
    except campaigns.CampaignError as exc:
        return render(request, services, "error.html", 404, title="Lot introuvable", message=exc.message)
    return FileResponse(path, media_type="application/pdf", filename=f"courriers-{batch[:8]}.pdf")


def _explain(outcome: opposition.Outcome) -> tuple[str, str]:
    deadline = f" le {date_fr(last_day(outcome.deadline))}" if outcome.deadline else ""
    return {
        "recorded": ("Opposition enregistrée", f"Aucun espace ne sera créé pour {outcome.name}."),
        "already": ("Opposition déjà enregistrée", f"{outcome.name} s'était déjà opposé(e)."),
        "withdrawn": (
            "Opposition retirée",
            f"L'espace de {outcome.name} sera créé à l'issue du délai d'opposition, ou dès son activation.",
        ),
        "nothing_to_withdraw": ("Aucune opposition en cours", f"{outcome.name} ne s'est pas opposé(e)."),
        "too_late": (
            "Délai d'opposition dépassé",
            f"Le délai de {outcome.name} s'est terminé{deadline} : l'espace est créé ; la personne peut le fermer "
            "à tout moment.",
        ),
        "space_open": (
            "Espace déjà créé",
            f"L'espace de {outcome.name} existe : la personne peut le fermer à tout moment depuis ses Paramètres.",
        ),
        "space_closed": ("Espace fermé", f"L'espace de {outcome.name} a été fermé : rien à enregistrer."),
    }[outcome.kind]


@router.post("/oppositions", response_class=HTMLResponse)
def phone_objection(
    request: Request,
    services: ServicesDep,
    nir: Annotated[str, Form(max_length=30)] = "",
    naissance: Annotated[str, Form(max_length=20)] = "",
    appelant: Annotated[str, Form(max_length=20)] = "personne",
    operation: Annotated[str, Form(max_length=10)] = "opposer",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        outcome = opposition.object_by_phone(
            services, viewer.actor, nir, naissance, caller=appelant, withdraw=operation == "retirer"
        )
    except FormError as exc:
        return _console(request, services, viewer, 400, error=exc.message)
    except NotIdentified:
        return _console(request, services, viewer, 400, error=NOT_FOUND)
    title, text = _explain(outcome)
    receipt_url = (
        f"/operateur/oppositions/{outcome.objection_id}/recepisse"
        if outcome.objection_id and outcome.kind in {"recorded", "already"}
        else None
    )
    return _console(
        request, services, viewer, outcome=outcome, outcome_title=title, outcome_text=text, receipt_url=receipt_url
    )


@router.get("/oppositions/{objection_id}/recepisse")
def operator_receipt(request: Request, services: ServicesDep, objection_id: str) -> Response:
    viewer = require_viewer(request, services)
    document = opposition.receipt_for_operator(services, viewer.actor, objection_id)
    if document is None:
        return render(
            request, services, "error.html", 404, title="Récépissé introuvable", message="Ce récépissé n'existe pas."
        )
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="recepisse-opposition.pdf"'},
    )


@router.post("/courrier", response_class=HTMLResponse)
def reprint_letter(
    request: Request,
    services: ServicesDep,
    nir: Annotated[str, Form(max_length=30)] = "",
    naissance: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    viewer = require_viewer(request, services)
    try:
        document = campaigns.reprint_letter(services, viewer.actor, nir, naissance)
    except FormError as exc:
        return _console(request, services, viewer, 400, error=exc.message)
    except NotIdentified:
        return _console(request, services, viewer, 400, error=NOT_FOUND)
    except campaigns.CampaignError as exc:
        return _console(request, services, viewer, 400, error=exc.message)
    return Response(
        document,
        media_type="application/pdf",
        headers={"Content-Disposition": 'attachment; filename="courrier-carnet.pdf"'},
    )
