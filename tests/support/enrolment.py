"""Registered (imported, not yet invited) people for the enrolment tests (ENR-2, ENR-3)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from email.message import EmailMessage

from carnet.bootstrap import Services
from carnet.enrolment.model import activation_codes as codes
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Patient

CODE_PATTERN = re.compile(r"\b([2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4}-[2-9A-HJKMNP-Z]{4})\b")


@dataclass(frozen=True)
class Person:
    id: str
    ins: str
    birth_date: date
    email: str | None
    name: str  # first names + birth name, as printed
    departement: str


def add_registered(
    services: Services,
    count: int,
    departement: str = "2A",
    with_email: bool | None = None,
    start: int = 0,
    birth_date: date = date(1985, 3, 14),
    attached_to: str | None = None,
) -> list[Person]:
    """``count`` registered people; every other one has an e-mail unless ``with_email`` says otherwise."""
    people: list[Person] = []
    with services.db.unit_of_work() as db:
        for index in range(start, start + count):
            email = f"personne{index}@exemple.fr" if (with_email if with_email is not None else index % 2) else None
            body = f"2{birth_date:%y%m}{departement}{500 + index // 1000 % 400:03d}{index % 1000:03d}"  # no demo NIR
            patient = Patient(
                ins=nir_from_body(body),
                birth_name=f"NOM{index}",
                first_names="Anna",
                birth_date=birth_date,
                sex="F",
                birth_place=f"{departement}004",
                email=email,
                address=f"{index} cours Napoléon",
                postal_code="20000" if departement == "2A" else "20200",
                city="Ajaccio" if departement == "2A" else "Bastia",
                departement=departement,
                status="registered",
                attached_to_id=attached_to,
            )
            db.add(patient)
            db.flush()
            people.append(Person(patient.id, patient.ins, birth_date, email, f"Anna NOM{index}", departement))
    return people


def code_in(message: EmailMessage) -> str:
    """The activation code of an invitation e-mail (text part), normalised."""
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    match = CODE_PATTERN.search(body.get_content())
    assert match, body.get_content()
    return codes.normalise(match.group(1))


def text_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def html_part(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("html",))
    assert body is not None
    return str(body.get_content())
