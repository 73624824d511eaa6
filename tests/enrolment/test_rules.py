"""ENR-2, ENR-3, ENR-4 rules without storage: activation codes, the 6-week deadline, receipts, dates, MIME."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes, policy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.model.opposition import (
    DELIVERY_MARGIN,
    OBJECTION_PERIOD,
    PARIS,
    can_object,
    creation_day,
    date_fr,
    last_day,
    new_receipt_number,
    objection_deadline,
)
from carnet.enrolment.service.campaigns import CampaignError, parse_departements
from carnet.enrolment.service.identify import FormError, parse_birth_date
from carnet.enrolment.service.messages import InvitationTemplates, InvitationText, invitation_mail
from carnet.mail.outbound import Mail, mime_bytes
from carnet.people.model.identifiers import born_adult_by, is_minor


def test_codes_are_12_unambiguous_characters() -> None:
    seen = {codes.new_code() for _ in range(2000)}
    assert len(seen) == 2000
    for code in seen:
        assert len(code) == 12 and codes.is_well_formed(code)
        assert not set(code) & set("0O1IL")
    assert set("".join(seen)) == set(codes.ALPHABET)  # every symbol is used (no bias to a few)


def test_codes_are_typed_loosely_and_printed_in_groups() -> None:
    assert codes.normalise(" abcd-efgh jkmn ") == "ABCDEFGHJKMN"
    assert codes.normalise("abcd.efgh\u00a0jkmn") == "ABCDEFGHJKMN"
    assert codes.format_code("abcdefghjkmn") == "ABCD-EFGH-JKMN"
    assert not codes.is_well_formed("ABCDEFGHJKM0")  # 0 is not in the alphabet
    assert not codes.is_well_formed("ABCDEFGHJKM")
    assert timedelta(days=90) == codes.VALIDITY


@given(st.text(alphabet=codes.ALPHABET, min_size=12, max_size=12))
def test_format_then_normalise_gives_the_code_back(code: str) -> None:
    assert codes.normalise(codes.format_code(code)) == code


@pytest.mark.parametrize(
    ("sent", "last"),
    [
        (datetime(2026, 11, 26, 9, 30, tzinfo=UTC), date(2027, 1, 14)),  # 7 days (printing, post) + 6 weeks
        (datetime(2026, 11, 26, 23, 30, tzinfo=UTC), date(2027, 1, 15)),  # already the 27th in Paris
        (datetime(2027, 2, 20, 12, 0, tzinfo=UTC), date(2027, 4, 10)),  # across the change to summer time
    ],
)
def test_the_deadline_is_the_end_of_the_last_day_in_paris(sent: datetime, last: date) -> None:
    deadline = objection_deadline(sent)
    assert last_day(deadline) == last
    assert creation_day(deadline) == last + timedelta(days=1)
    assert deadline >= sent + DELIVERY_MARGIN + OBJECTION_PERIOD
    assert can_object(deadline, deadline - timedelta(seconds=1))
    assert not can_object(deadline, deadline)
    assert can_object(None, sent)  # before sending, always


def test_one_sending_day_gives_one_deadline_whatever_the_hour() -> None:
    """Issue #15-13: the e-mails sent at dawn and the letters produced at night of one campaign day announce
    the same dates — the deadline depends on the Paris day of sending only, not on the channel or the hour."""
    dawn = datetime(2026, 11, 26, 0, 5, tzinfo=PARIS)
    night = datetime(2026, 11, 26, 23, 55, tzinfo=PARIS)
    assert objection_deadline(dawn) == objection_deadline(night)
    assert objection_deadline(night + timedelta(minutes=10)) == objection_deadline(dawn) + timedelta(days=1)


def test_french_dates_and_receipt_numbers() -> None:
    assert date_fr(date(2027, 1, 7)) == "7 janvier 2027"
    assert date_fr(date(2027, 8, 1)) == "1er août 2027"
    number = new_receipt_number(datetime(2026, 11, 26, tzinfo=UTC))
    assert number.startswith("OPP-2026-") and len(number) == 17 and len(number) <= 20


def test_minors_until_their_eighteenth_birthday() -> None:
    assert is_minor(date(2008, 2, 29), date(2026, 2, 28))
    assert not is_minor(date(2008, 2, 29), date(2026, 3, 1))
    assert not is_minor(date(1985, 3, 14), date(2026, 11, 26))


@given(st.dates(min_value=date(1950, 1, 1), max_value=date(2100, 12, 31)), st.integers(min_value=-400, max_value=400))
def test_the_registry_s_adult_bound_agrees_with_is_minor(today: date, days: int) -> None:
    bound = born_adult_by(today)
    for born in (bound + timedelta(days=days), bound, bound + timedelta(days=1)):
        assert is_minor(born, today) == (born > bound)


def test_departements_are_checked_by_name() -> None:
    assert parse_departements("2a, 2B,2a") == ["2A", "2B"]
    assert parse_departements(["6", "971"]) == ["06", "971"]
    with pytest.raises(CampaignError, match="Département inconnu : « 20 »"):
        parse_departements("2A,20")
    with pytest.raises(CampaignError):
        parse_departements(" , ")


@pytest.mark.parametrize("typed", ["14/03/1985", "14-03-1985", "14.03.1985", "1985-03-14", "14031985", " 14/3/1985 "])
def test_birth_dates_are_read_in_the_usual_french_forms(typed: str) -> None:
    assert parse_birth_date(typed) == date(1985, 3, 14)


@pytest.mark.parametrize("typed", ["", "31/02/1985", "1985", "14/03/85"])
def test_a_wrong_birth_date_names_the_field(typed: str) -> None:
    with pytest.raises(FormError) as caught:
        parse_birth_date(typed)
    assert caught.value.field == "naissance" and "JJ/MM/AAAA" in caught.value.message


@pytest.mark.parametrize("eight_bit", [False, True])
def test_the_fast_mime_builder_gives_a_standard_message(eight_bit: bool) -> None:
    text = "Bonjour Anne-Cécile,\n\n" + "Votre espace santé Carnet va être créé. " * 40 + "\n\nLigne\n.\nfin"
    mail = Mail("anne@exemple.fr", "Votre espace santé Carnet va être créé", text, "<p>Espace santé « Carnet »</p>")
    raw = mime_bytes(mail, "Carnet <ne-pas-repondre@carnet.localhost>", eight_bit)
    assert b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    assert raw.isascii() is not eight_bit
    message = message_from_bytes(raw, policy=policy.default)
    assert message["Subject"] == mail.subject
    assert message["To"] == "anne@exemple.fr"
    plain = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert plain.replace("\r\n", "\n").rstrip("\n") == text
    assert "« Carnet »" in message.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]


@pytest.mark.parametrize("minor", [False, True])
def test_the_per_chunk_templates_write_the_same_email_as_the_plain_builder(minor: bool) -> None:
    dates = (date(2027, 1, 8), date(2027, 1, 7), date(2027, 2, 24))
    name = "Lisandru <d'Ornano> & fils"  # escaped in the HTML part, as is in the text part
    plain = invitation_mail(
        "a@exemple.fr", InvitationText(name, "ABCD-EFGH-JKMN", minor, *dates), "https://c.fr", "36 46"
    )
    templated = InvitationTemplates(*dates, "https://c.fr", "36 46").mail("a@exemple.fr", name, "ABCD-EFGH-JKMN", minor)
    assert (templated.to, templated.subject, templated.text) == (plain.to, plain.subject, plain.text)
    assert (templated.html or "").replace("\n", "") == (plain.html or "").replace("\n", "")  # lines may group apart
    assert "&lt;d&#x27;Ornano&gt; &amp; fils" in (templated.html or "") and name in templated.text
