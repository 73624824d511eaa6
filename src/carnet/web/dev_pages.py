"""Dev-only pages of the embedded default: the local outbox (no mail server needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from carnet.web.deps import ServicesDep, render

router = APIRouter()


@router.get("/dev/boite-mail", response_class=HTMLResponse)
def dev_outbox(request: Request, services: ServicesDep) -> Response:
    """Dev-only: the local outbox of the embedded default (no mail server needed)."""
    if not services.settings.show_dev_pages or not hasattr(services.mailer, "messages"):
        return render(
            request,
            services,
            "error.html",
            status_code=404,
            title="Page introuvable",
            message="Cette page n'existe pas.",
        )
    messages = []
    for message in services.mailer.messages():
        body = message.get_body(preferencelist=("plain",))
        messages.append(
            {
                "to": message["To"],
                "subject": message["Subject"],
                "date": message["Date"],
                "text": body.get_content() if body else "",
            }
        )
    return render(request, services, "outbox.html", title="Boîte d'envoi (développement)", messages=messages)
