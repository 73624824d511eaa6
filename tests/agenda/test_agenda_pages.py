"""The agenda in the portal (AGD-1): the list, the month and the week; adding, changing, cancelling and deleting
an appointment or a reminder; the ``.ics`` download and the private subscription links (with and without details,
revoked, never in the logs); the professional's page of the appointments they gave — every protected page with the
three actors (the person, an authorised professional, strangers), through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import logging
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from icalendar import Calendar
from markupsafe import escape
from sqlalchemy import func, select

from carnet.agenda.tables import AgendaEvent, CalendarFeed
from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.hall.vocabulary import PARIS
from carnet.people.tables import Patient
from tests.conftest import csrf_of, log_in
from tests.support.actors import Actors

SOON = (datetime.now(UTC).astimezone(PARIS).date() + timedelta(days=10)).isoformat()
LONG_AGO = "2024-05-06"


def seen(response: Any) -> str:
    """The words a person reads on the page (tags removed, spaces collapsed)."""
    page = re.sub(r"<script[^>]*>.*?</script>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def agenda(actors: Actors, suffix: str = "") -> str:
    return f"/espace/{actors.patient_id}/agenda{suffix}"


def pro_agenda(actors: Actors, suffix: str = "") -> str:
    return f"/pro/patients/{actors.patient_id}/agenda{suffix}"


def post(client: TestClient, url: str, data: dict[str, str], page: str) -> Any:
    token = csrf_of(client.get(page, follow_redirects=True).text)
    return client.post(url, data={**data, "csrf_token": token})


APPOINTMENT = {
    "type": "rendez_vous",
    "titre": "Cardiologue",
    "date": SOON,
    "debut": "14:30",
    "fin": "15:00",
    "lieu": "Clinique du Golfe, Ajaccio",
    "avec": "Dr Leca, cardiologue",
    "commentaire": "Apporter l'électrocardiogramme",
}


def add(actors: Actors, **fields: str) -> str:
    """Add through the form; the new event's id, read from the agenda's link to it."""
    data = {**APPOINTMENT, **fields}
    response = post(actors.patient, agenda(actors, "/nouveau"), data, agenda(actors, "/nouveau"))
    assert response.status_code == 303, seen(response)
    with_id = re.search(r"/evenements/([0-9a-f-]{36})", response.headers["location"])
    if with_id:
        return with_id.group(1)
    listing = actors.patient.get(response.headers["location"])
    found = re.findall(
        rf'href="{agenda(actors)}/evenements/([0-9a-f-]{{36}})">{re.escape(str(escape(data["titre"])))}<', listing.text
    )
    assert found, seen(listing)
    return found[0]


def rows(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(AgendaEvent)) or 0)


# ------------------------------------------------------------------ the three actors


def test_the_person_creates_an_appointment_and_finds_it_in_every_view(actors: Actors, demo: Services) -> None:
    page = actors.patient.get(agenda(actors))
    assert page.status_code == 200
    assert "Ajouter un rendez-vous" in seen(page) and "Ajouter un rappel" in seen(page)
    assert f'href="/espace/{actors.patient_id}/prevention"' in page.text  # « Examens recommandés »
    event_id = add(actors)
    listing = actors.patient.get(agenda(actors, "?message=ajoute"))
    text = seen(listing)
    assert "Le rendez-vous a été ajouté à l'agenda." in text
    assert "14:30 – 15:00" in text and "Cardiologue" in text and "Avec Dr Leca, cardiologue" in text
    for view in ("mois", "semaine"):
        shown = actors.patient.get(agenda(actors, f"?vue={view}&date={SOON}"))
        assert shown.status_code == 200
        assert f"/evenements/{event_id}" in shown.text and "Cardiologue" in seen(shown)
    elsewhere = actors.patient.get(agenda(actors, f"?vue=mois&date={LONG_AGO}"))
    assert "Cardiologue" not in seen(elsewhere) and "Aucun rendez-vous ni rappel ce mois-ci." in seen(elsewhere)
    one = actors.patient.get(agenda(actors, f"/evenements/{event_id}"))
    assert one.status_code == 200
    assert "Apporter l'électrocardiogramme" in seen(one) and "Clinique du Golfe, Ajaccio" in seen(one)
    assert f"/evenements/{event_id}/modifier" in one.text and f"/evenements/{event_id}/supprimer" in one.text
    assert "Cardiologue" not in one.headers.get("location", "")


def test_a_reminder_for_the_whole_day_and_a_past_appointment(actors: Actors) -> None:
    reminder = {"type": "rappel", "titre": "Renouveler l'ordonnance", "debut": "", "fin": "", "journee": "oui"}
    reminder_id = add(actors, **reminder)
    text = seen(actors.patient.get(agenda(actors)))
    assert "Toute la journée" in text and "Rappel : Renouveler l'ordonnance" in text
    past_id = add(actors, titre="Ophtalmologue", date=LONG_AGO)
    listing = actors.patient.get(agenda(actors))
    upcoming, _, past = seen(listing).partition("Rendez-vous et rappels passés")
    assert "Ophtalmologue" in past and "Ophtalmologue" not in upcoming and "Renouveler" in upcoming
    assert reminder_id != past_id


def test_the_views_work_with_any_address(actors: Actors) -> None:
    for query in ("?vue=mois&date=2026-02-30", "?vue=inconnue", "?vue=semaine&date=", "?page=999"):
        assert actors.patient.get(agenda(actors, query)).status_code == 200, query
    assert actors.patient.get(agenda(actors, "?page=abc")).status_code == 400


def test_strangers_see_nothing_of_the_agenda(actors: Actors, demo: Services) -> None:
    event_id = add(actors)
    for client in (actors.stranger, actors.anonymous):
        for path in (
            "",
            "?vue=mois",
            "/nouveau",
            f"/evenements/{event_id}",
            f"/evenements/{event_id}/modifier",
            ".ics",
        ):
            response = client.get(agenda(actors, path))
            assert response.status_code in {303, 403, 404}, (path, response.status_code)
            assert "Cardiologue" not in response.text
    # the patient portal's address sends a professional to the professional view
    redirected = actors.professional.get(agenda(actors))
    assert redirected.status_code == 303 and redirected.headers["location"].startswith("/pro/patients/")
    # a stranger patient posting into the space is refused and writes nothing
    before = rows(demo)
    token = csrf_of(actors.stranger.get("/espace", follow_redirects=True).text)
    refused = actors.stranger.post(agenda(actors, "/nouveau"), data={**APPOINTMENT, "csrf_token": token})
    assert refused.status_code == 403 and rows(demo) == before
    gone = actors.stranger.post(agenda(actors, f"/evenements/{event_id}/supprimer"), data={"csrf_token": token})
    assert gone.status_code in {403, 404} and rows(demo) == before


def test_a_legal_representative_keeps_the_childs_agenda(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    base = f"/espace/{child}/agenda"
    data = {**APPOINTMENT, "titre": "Vaccin ROR", "avec": "Dr Paoli, pédiatre"}
    added = post(mother, f"{base}/nouveau", data, f"{base}/nouveau")
    assert added.status_code == 303
    assert "Vaccin ROR" in seen(mother.get(base))
    assert create_link_in(mother, base).startswith("agenda/abonnement/")
    assert "Vaccin ROR" not in seen(actors.patient.get(agenda(actors)))  # Marie-Ange's agenda is another one
    assert actors.patient.get(base).status_code == 403


def test_every_form_needs_its_csrf_token(actors: Actors, demo: Services) -> None:
    event_id = add(actors)
    before = rows(demo)
    for path in ("/nouveau", f"/evenements/{event_id}/modifier", f"/evenements/{event_id}/annuler", "/abonnements"):
        forged = actors.patient.post(agenda(actors, path), data={**APPOINTMENT, "csrf_token": "x"})
        assert forged.status_code == 403, path
    forged = actors.patient.post(agenda(actors, f"/evenements/{event_id}/supprimer"), data={})
    assert forged.status_code == 403
    assert rows(demo) == before
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(CalendarFeed)) == 0
        row = db.get(AgendaEvent, event_id)
        assert row is not None and row.status == "prevu" and row.version == 1


# ------------------------------------------------------------------ change, cancel, delete


def test_modify_then_cancel_then_delete_with_confirmation(actors: Actors, demo: Services) -> None:
    event_id = add(actors)
    one = agenda(actors, f"/evenements/{event_id}")
    form = actors.patient.get(f"{one}/modifier")
    assert form.status_code == 200 and 'value="Cardiologue"' in form.text and 'value="14:30"' in form.text
    bad = post(actors.patient, f"{one}/modifier", {**APPOINTMENT, "fin": "13:00"}, f"{one}/modifier")
    assert bad.status_code == 400
    assert "« Heure de fin » : elle doit être après l'heure de début." in seen(bad)
    assert 'aria-invalid="true"' in bad.text
    changed = post(
        actors.patient,
        f"{one}/modifier",
        {**APPOINTMENT, "titre": "Cardiologue (déplacé)", "debut": "16:00", "fin": ""},
        f"{one}/modifier",
    )
    assert changed.status_code == 303
    text = seen(actors.patient.get(changed.headers["location"]))
    assert "Les modifications ont été enregistrées." in text and "Cardiologue (déplacé)" in text and "16:00" in text

    confirm = actors.patient.get(f"{one}/annuler")
    assert confirm.status_code == 200 and "Annuler ce rendez-vous ?" in seen(confirm)
    cancelled = post(actors.patient, f"{one}/annuler", {}, f"{one}/annuler")
    assert cancelled.status_code == 303
    assert "Annulé" in seen(actors.patient.get(cancelled.headers["location"]))
    assert "Annulé" in seen(actors.patient.get(agenda(actors)))

    confirm = actors.patient.get(f"{one}/supprimer")
    assert confirm.status_code == 200 and "Ce retrait est définitif" in seen(confirm)
    deleted = post(actors.patient, f"{one}/supprimer", {}, f"{one}/supprimer")
    assert deleted.status_code == 303 and "L'élément a été retiré de l'agenda." in seen(
        actors.patient.get(deleted.headers["location"])
    )
    assert actors.patient.get(one).status_code == 404
    with demo.db.unit_of_work() as db:
        ops = [
            e.details.get("op")
            for e in db.scalars(select(AuditEntry).where(AuditEntry.action == "agenda.write").order_by(AuditEntry.seq))
        ]
    assert ops == ["add", "change", "cancel", "delete"]
    history = seen(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    for words in (
        "ajouté un rendez-vous à l'agenda",
        "modifié un rendez-vous de l'agenda",
        "annulé un rendez-vous de l'agenda",
        "supprimé un rendez-vous de l'agenda",
        "consulté l'agenda",
    ):
        assert words in history, words


def test_bad_input_is_told_in_french_and_nothing_is_kept(actors: Actors, demo: Services) -> None:
    cases = [
        ({"titre": ""}, "« Titre » : ce champ est obligatoire."),
        ({"date": "2026-13-01"}, "« Date » : la date n'est pas valide"),
        ({"debut": ""}, "« Heure de début » : indiquez l'heure, ou cochez « Toute la journée »."),
        ({"debut": "ab"}, "« Heure de début » : l'heure n'est pas valide"),
        ({"titre": "x" * 250}, "« Titre » : 200 caractères au plus."),
    ]
    for fields, message in cases:
        response = post(
            actors.patient, agenda(actors, "/nouveau"), {**APPOINTMENT, **fields}, agenda(actors, "/nouveau")
        )
        assert response.status_code == 400, fields
        assert message in seen(response), seen(response)
    assert rows(demo) == 0


def test_an_appointment_given_by_a_professional_shows_who_and_keeps_its_words(actors: Actors, demo: Services) -> None:
    given = post(
        actors.professional, pro_agenda(actors), {**APPOINTMENT, "titre": "Suivi du diabète"}, pro_agenda(actors)
    )
    assert given.status_code == 303
    assert "Le rendez-vous a été ajouté" in seen(actors.professional.get(given.headers["location"]))
    listing = seen(actors.patient.get(agenda(actors)))
    assert (
        "Suivi du diabète" in listing and "Donné par un professionnel de santé : Dr Jean-Baptiste FERRACCI" in listing
    )
    with demo.db.unit_of_work() as db:
        event_id = db.scalar(select(AgendaEvent.id).where(AgendaEvent.source == "professional"))
    one = agenda(actors, f"/evenements/{event_id}")
    page = actors.patient.get(one)
    assert "Vous ne pouvez pas le modifier" in seen(page) and f"{one}/modifier" not in page.text
    refused = actors.patient.get(f"{one}/modifier")
    assert refused.status_code == 403 and "ne se modifie pas" in seen(refused)
    refused = post(actors.patient, f"{one}/modifier", APPOINTMENT, one)
    assert refused.status_code == 403
    assert post(actors.patient, f"{one}/annuler", {}, one).status_code == 303  # she may cancel it
    pro_page = seen(actors.professional.get(pro_agenda(actors)))
    assert "Suivi du diabète" in pro_page and "Annulé" in pro_page


# ------------------------------------------------------------------ the professional's page


def test_the_professional_sees_only_what_they_gave(actors: Actors, demo: Services) -> None:
    add(actors, titre="Rendez-vous privé de la personne")
    page = actors.professional.get(pro_agenda(actors))
    assert page.status_code == 200
    assert "Rendez-vous privé" not in page.text and "Aucun rendez-vous à venir donné par vous." in seen(page)
    assert f'href="{pro_agenda(actors)}"' in page.text  # the professional menu's « Agenda »
    # a professional without any authorisation still gives appointments (any open space), without the name
    other = actors.unauthorised.get(pro_agenda(actors))
    assert other.status_code == 200 and "Marie-Ange" not in seen(other)
    given = post(actors.unauthorised, pro_agenda(actors), {**APPOINTMENT, "titre": "Détartrage"}, pro_agenda(actors))
    assert given.status_code == 303
    dentist_page = seen(actors.unauthorised.get(pro_agenda(actors)))
    assert "Détartrage" in dentist_page and "Rendez-vous privé" not in dentist_page
    assert "Détartrage" not in seen(actors.professional.get(pro_agenda(actors)))
    with demo.db.unit_of_work() as db:
        dentist_event = db.scalar(select(AgendaEvent.id).where(AgendaEvent.source == "professional"))
    # the médecin traitant cannot cancel the dentist's appointment: the same 404 as an unknown one
    assert actors.professional.get(pro_agenda(actors, f"/{dentist_event}/annuler")).status_code == 404
    confirm = actors.unauthorised.get(pro_agenda(actors, f"/{dentist_event}/annuler"))
    assert confirm.status_code == 200
    done = post(actors.unauthorised, pro_agenda(actors, f"/{dentist_event}/annuler"), {}, pro_agenda(actors))
    assert done.status_code == 303
    assert "Annulé" in seen(actors.unauthorised.get(pro_agenda(actors)))
    bad = post(actors.unauthorised, pro_agenda(actors), {**APPOINTMENT, "date": ""}, pro_agenda(actors))
    assert bad.status_code == 400 and "« Date » : ce champ est obligatoire." in seen(bad)
    assert actors.patient.get(pro_agenda(actors)).status_code == 303  # not a professional: sent home


# ------------------------------------------------------------------ iCalendar: download and subscription links


def parsed(body: bytes) -> Calendar:
    return Calendar.from_ical(body)


def test_the_download_is_an_icalendar_with_every_detail(actors: Actors) -> None:
    event_id = add(actors)
    response = actors.patient.get(agenda(actors, ".ics"))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/calendar")
    calendar = parsed(response.content)
    [event] = calendar.walk("VEVENT")
    assert str(event["UID"]) == f"{event_id}@carnet" and str(event["SUMMARY"]) == "Cardiologue"
    assert str(event["LOCATION"]) == "Clinique du Golfe, Ajaccio" and "Dr Leca" in str(event["DESCRIPTION"])
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event.decoded("DTSTART").strftime("%H:%M") == "14:30"
    assert actors.stranger.get(agenda(actors, ".ics")).status_code == 403
    assert actors.anonymous.get(agenda(actors, ".ics")).status_code == 303


def create_link(actors: Actors, details: bool) -> str:
    return create_link_in(actors.patient, agenda(actors), details)


def create_link_in(client: TestClient, base: str, details: bool = False) -> str:
    """Create a subscription link on the agenda page; its path (read from the page that shows it once)."""
    data = {"details": "oui"} if details else {}
    page = post(client, f"{base}/abonnements", data, base)
    assert page.status_code == 200
    assert "Il n'est affiché qu'une fois" in seen(page)
    found = re.search(r'value="(http://[^"]+/agenda/abonnement/[A-Za-z0-9_\-]{43}\.ics)"', page.text)
    assert found, seen(page)
    return found.group(1).split("://", 1)[1].split("/", 1)[1]


def test_subscription_links_with_and_without_details(actors: Actors, demo: Services) -> None:
    add(actors)
    add(actors, type="rappel", titre="Prise de sang", debut="", fin="", journee="oui")
    plain = create_link(actors, details=False)
    detailed = create_link(actors, details=True)
    token = plain.rsplit("/", 1)[1].removesuffix(".ics")
    with demo.db.unit_of_work() as db:  # only the SHA-256 is kept
        stored = " ".join(db.scalars(select(CalendarFeed.token_hash)))
    assert token not in stored
    assert token not in actors.patient.get(agenda(actors)).text  # never shown again

    outsider = actors.anonymous  # a calendar application: no login, no cookie
    assert outsider.head("/" + plain).status_code == 200  # calendar applications may ask first
    quiet = outsider.get("/" + plain)
    assert quiet.status_code == 200 and quiet.headers["content-type"].startswith("text/calendar")
    assert "set-cookie" not in quiet.headers
    summaries = sorted(str(e["SUMMARY"]) for e in parsed(quiet.content).walk("VEVENT"))
    assert summaries == ["Rappel", "Rendez-vous"]
    for secret in ("Cardiologue", "Clinique", "Leca", "électrocardiogramme", "Prise de sang"):
        assert secret not in quiet.text
    full = outsider.get("/" + detailed)
    events = {str(e["SUMMARY"]): e for e in parsed(full.content).walk("VEVENT")}
    assert set(events) == {"Cardiologue", "Prise de sang"}
    assert str(events["Cardiologue"]["LOCATION"]) == "Clinique du Golfe, Ajaccio"
    assert isinstance(events["Prise de sang"].decoded("DTSTART"), date)

    page = actors.patient.get(agenda(actors))
    assert "avec les détails" in seen(page) and "sans les détails" in seen(page)
    assert "Dernière mise à jour par le calendrier" in seen(page)
    feed_ids = re.findall(r"/abonnements/([0-9a-f-]{36})/retirer", page.text)
    assert len(feed_ids) == 2
    revoked = post(actors.patient, agenda(actors, f"/abonnements/{feed_ids[0]}/retirer"), {}, agenda(actors))
    assert revoked.status_code == 303
    still = [outsider.get("/" + link).status_code for link in (plain, detailed)]
    assert sorted(still) == [200, 404]
    assert outsider.get("/agenda/abonnement/" + "A" * 43 + ".ics").status_code == 404
    assert outsider.get("/agenda/abonnement/court.ics").status_code == 404
    # the professional and a stranger manage no link of this space
    for client in (actors.stranger,):
        token_page = csrf_of(client.get("/espace", follow_redirects=True).text)
        assert client.post(agenda(actors, "/abonnements"), data={"csrf_token": token_page}).status_code == 403
        assert client.post(
            agenda(actors, f"/abonnements/{feed_ids[1]}/retirer"), data={"csrf_token": token_page}
        ).status_code in {403, 404}
    pro_token = csrf_of(actors.professional.get(pro_agenda(actors)).text)
    assert actors.professional.post(agenda(actors, "/abonnements"), data={"csrf_token": pro_token}).status_code == 403
    history = seen(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "créé un lien d'abonnement à l'agenda (avec les détails)" in history
    assert "retiré un lien d'abonnement à l'agenda" in history
    assert "Lien d'abonnement au calendrier a consulté l'agenda" in history


def test_the_subscription_token_never_reaches_the_logs(actors: Actors, caplog: pytest.LogCaptureFixture) -> None:
    link = create_link(actors, details=True)
    token = link.rsplit("/", 1)[1].removesuffix(".ics")
    with caplog.at_level(logging.DEBUG):
        assert actors.anonymous.get("/" + link).status_code == 200
        assert actors.anonymous.get("/agenda/abonnement/" + token[::-1] + ".ics").status_code == 404
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("carnet"))  # the server's logs
    assert "/agenda/abonnement/***" in logged  # the request was logged …
    assert token not in logged and token[::-1] not in logged  # … without its token
