"""Issue #14, conformance: MHD (ITI-65, ITI-67, ITI-68) as real FHIR clients use it — the exact requests fhirpy and
fhir-kit-client send — read against FHIR R4 search (https://hl7.org/fhir/R4/search.html: tokens §3.1.1.4.9,
``,`` §3.1.1.5.4, dates and their prefixes §3.1.1.4.5–7, ``_summary`` / ``_total`` / ``_count`` §3.1.1.5.x), IHE MHD
ITI-67 §2:3.67.4.1.2 (parameters, GET and POST) and the ANS PDSm profile (IdNatPs, IdNatStruct). One section per
point of the issue (1 to 9). SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.identity.model import CLIENT_SCOPES
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR, CONFIDENTIALITY_SYSTEM_HL7
from carnet.vault.tables import Document
from tests.support.actors import Feeders
from tests.support.documents import (
    AUTHOR_RPPS,
    CLASS,
    FACILITY,
    FORMAT,
    IDNPS,
    IDNST,
    INS_SYSTEM,
    LAB_FINESS,
    LOINC,
    PDSM,
    SETTING,
    SNOMED,
    document_entry,
    entries,
    full_reference,
    make_pdf,
    provide_bundle,
)

GP_RPPS = "10001234567"  # Dr Ferracci's software, Marie-Ange's médecin traitant


# ------------------------------------------------------------------ building and asking


def provide(f: Feeders, *documents: list[Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    answer = f.client.post("/fhir", json=provide_bundle(*documents), headers=headers or f.lab)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def deposit_full(f: Feeders, headers: dict[str, str] | None = None, **changes: Any) -> tuple[str, dict[str, Any]]:
    """One full PDSm DocumentReference deposited; its id and the resource as sent."""
    body = make_pdf(str(changes.get("description", "Bilan lipidique")))
    url = f"urn:uuid:{uuid.uuid4()}"
    reference = full_reference(f.ins, body, url, **changes)
    answer = provide(f, entries(reference, body, url), headers=headers)
    return answer["entry"][1]["response"]["location"].split("/")[1], reference


def deposit_simple(f: Feeders, title: str, type_code: str = "11502-2", headers: dict[str, str] | None = None) -> str:
    answer = provide(f, document_entry(f.ins, make_pdf(title), title=title, type_code=type_code), headers=headers)
    return str(answer["entry"][1]["response"]["location"].split("/")[1])


def find(f: Feeders, query: list[tuple[str, str]], headers: dict[str, str] | None = None) -> dict[str, Any]:
    params = [("patient.identifier", f"{INS_SYSTEM}|{f.ins}"), *query]
    answer = f.client.get("/fhir/DocumentReference", params=params, headers=headers or f.lab)
    assert answer.status_code == 200, answer.text
    return answer.json()  # type: ignore[no-any-return]


def titles(f: Feeders, query: list[tuple[str, str]], headers: dict[str, str] | None = None) -> set[str]:
    return {e["resource"]["description"] for e in find(f, query, headers).get("entry", [])}


def refused(answer: Any, status: int = 400) -> dict[str, Any]:
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["resourceType"] == "OperationOutcome" and body["issue"], body
    return body  # type: ignore[no-any-return]


# ------------------------------------------------------------------ 1. token parameters


def test_a_comma_list_of_types_is_an_or_and_the_system_is_honoured(feeders: Feeders) -> None:
    deposit_simple(feeders, "Consultation", "11488-4")
    deposit_simple(feeders, "Scanner", "18748-4")
    deposit_simple(feeders, "Biologie", "11502-2")
    assert titles(feeders, [("type", f"{LOINC}|11488-4,{LOINC}|18748-4")]) == {"Consultation", "Scanner"}
    assert titles(feeders, [("type", "11488-4,18748-4")]) == {"Consultation", "Scanner"}
    assert titles(feeders, [("type", f"{SNOMED}|11488-4")]) == set()  # a SNOMED code is no LOINC document
    assert titles(feeders, [("type", "|11488-4")]) == set()  # a code without system: not LOINC's
    assert titles(feeders, [("type", f"{LOINC}|")]) == {"Consultation", "Scanner", "Biologie"}
    # repeated: AND
    assert titles(feeders, [("type", "11488-4,18748-4"), ("type", "18748-4")]) == {"Scanner"}


def test_category_format_event_facility_setting_and_identifier_honour_their_systems(feeders: Feeders) -> None:
    _, sent = deposit_full(feeders)
    deposit_simple(feeders, "Autre")
    master, entry_uuid = sent["masterIdentifier"]["value"], sent["identifier"][0]["value"]
    expectations = {
        "category": (f"{CLASS}|10", "10", f"{SNOMED}|10", f"{CLASS}|"),
        "format": (
            f"{FORMAT}|urn:ihe:lab:xd-lab:2008",
            "urn:ihe:lab:xd-lab:2008",
            f"{LOINC}|urn:ihe:lab:xd-lab:2008",
            f"{FORMAT}|",
        ),
        "event": (f"{SNOMED}|252150008", "252150008", f"{LOINC}|252150008", f"{SNOMED}|"),
        "facility": (f"{FACILITY}|SA29", "SA29", f"{SETTING}|SA29", f"{FACILITY}|"),
        "setting": (f"{SETTING}|SM05", "SM05", f"{FACILITY}|SM05", f"{SETTING}|"),
        "identifier": (f"urn:ietf:rfc:3986|{entry_uuid}", master, f"urn:oid:1.2.3|{master}", "urn:ietf:rfc:3986|"),
    }
    for name, (exact, bare, other_system, whole_system) in expectations.items():
        assert titles(feeders, [(name, exact)]) == {"Bilan lipidique"}, name
        assert titles(feeders, [(name, bare)]) == {"Bilan lipidique"}, name
        assert titles(feeders, [(name, other_system)]) == set(), name
        # the other document's masterIdentifier is of that system too
        whole = {"Bilan lipidique", "Autre"} if name == "identifier" else {"Bilan lipidique"}
        assert titles(feeders, [(name, whole_system)]) == whole, name
        assert titles(feeders, [(name, f"inconnu,{bare}")]) == {"Bilan lipidique"}, name  # OR
        assert titles(feeders, [(name, "|" + bare)]) == set(), name  # that code without a system: none was sent so
    assert titles(feeders, [("category", "BIOLOGIE")]) == {"Bilan lipidique", "Autre"}  # Carnet's own category


def test_author_identifier_takes_the_idnatps_the_rpps_the_finess_and_the_authors_as_sent(feeders: Feeders) -> None:
    deposit_simple(feeders, "Du médecin", headers=feeders.gp)
    deposit_full(feeders)  # by the lab, naming its biologist
    both = {"Du médecin", "Bilan lipidique"}
    gp = feeders.gp  # the médecin traitant reads both
    assert titles(feeders, [("author.identifier", f"{IDNPS}|8{GP_RPPS}")], gp) == {"Du médecin"}  # as Consent takes it
    assert titles(feeders, [("author.identifier", f"https://rpps.esante.gouv.fr|{GP_RPPS}")], gp) == {"Du médecin"}
    assert titles(feeders, [("author.identifier", GP_RPPS)], gp) == {"Du médecin"}
    assert titles(feeders, [("author.identifier", f"8{GP_RPPS}")], gp) == {"Du médecin"}
    assert titles(feeders, [("author.identifier", f"{IDNST}|1{LAB_FINESS}")], gp) == {"Bilan lipidique"}
    assert titles(feeders, [("author.identifier", LAB_FINESS)], gp) == {"Bilan lipidique"}
    assert titles(feeders, [("author.identifier", f"{IDNPS}|8{AUTHOR_RPPS}")], gp) == {"Bilan lipidique"}  # as sent
    assert titles(feeders, [("author.identifier", f"{IDNPS}|8{GP_RPPS},{IDNST}|1{LAB_FINESS}")], gp) == both
    assert titles(feeders, [("author.identifier", f"{IDNPS}|")], gp) == both  # any professional
    assert titles(feeders, [("author.identifier", f"urn:oid:1.2.3|8{GP_RPPS}")], gp) == set()
    assert titles(feeders, [("author.identifier", "99999999999")], gp) == set()


def test_security_label_is_a_token_in_its_own_system(feeders: Feeders) -> None:
    deposit_full(feeders)
    masked = document_entry(
        feeders.ins, make_pdf("Masqué"), title="Masqué", labels=[(CONFIDENTIALITY_SYSTEM_FR, "MASQUE_PS")]
    )
    provide(feeders, masked)
    assert titles(feeders, [("security-label", f"{CONFIDENTIALITY_SYSTEM_HL7}|N")]) == {"Bilan lipidique"}
    assert titles(feeders, [("security-label", f"{CONFIDENTIALITY_SYSTEM_FR}|MASQUE_PS")]) == {"Masqué"}
    assert titles(feeders, [("security-label", "MASQUE_PS,N")]) == {"Masqué", "Bilan lipidique"}
    assert titles(feeders, [("security-label", f"{CONFIDENTIALITY_SYSTEM_HL7}|MASQUE_PS")]) == set()
    assert titles(feeders, [("security-label", f"{CONFIDENTIALITY_SYSTEM_FR}|")]) == {"Masqué"}
    assert titles(feeders, [("security-label", "SECRET")]) == set()


def test_status_is_a_list_of_codes_without_system(feeders: Feeders) -> None:
    first = deposit_simple(feeders, "Un")
    patch = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    assert feeders.client.patch(f"/fhir/DocumentReference/{first}", json=patch, headers=feeders.lab).status_code == 200
    deposit_simple(feeders, "Deux")
    assert titles(feeders, []) == {"Deux"}  # current by default
    assert titles(feeders, [("status", "current,entered-in-error")]) == {"Un", "Deux"}
    refused(
        feeders.client.get(
            "/fhir/DocumentReference",
            params={"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}", "status": "brouillon"},
            headers=feeders.lab,
        )
    )


def test_escaped_commas_and_bad_escapes(feeders: Feeders) -> None:
    deposit_full(feeders, identifier=[{"system": "urn:x", "value": "a,b"}])
    assert titles(feeders, [("identifier", "urn:x|a\\,b")]) == {"Bilan lipidique"}
    assert titles(feeders, [("identifier", "urn:x|a,b")]) == set()  # « a » or « b »
    for bad in ("a\\b", "a,,b", "", "|"):
        answer = feeders.client.get(
            "/fhir/DocumentReference",
            params={"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}", "identifier": bad},
            headers=feeders.lab,
        )
        refused(answer)


# ------------------------------------------------------------------ 2. dates


@pytest.fixture
def dated(feeders: Feeders) -> Feeders:
    """Three documents: A dated 5 March 2024 (period and creation too), B 31 December 2025 at 23:30 French time,
    C with no date sent (its date is its deposit)."""
    deposit_full(feeders, description="A")
    deposit_full(feeders, description="B", date="2025-12-31T23:30:00+01:00", context=None)
    deposit_full(feeders, description="C", date=None, context=None)
    return feeders


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("2024", {"A"}),
        ("2025-12", {"B"}),
        ("2025-12-31", {"B"}),  # in French time (22:30 UTC)
        ("eq2024-03-05", {"A"}),
        ("2024-03-05T10:00:00+01:00", {"A"}),
        ("2024-03-05T09:00:00Z", {"A"}),  # the same instant
        ("2024-03-05T10:00", {"A"}),  # a minute, French time
        ("2024-03-05T10:01", set()),
        ("ne2024", {"B", "C"}),
        ("gt2024", {"B", "C"}),
        ("ge2024-03-05", {"A", "B", "C"}),
        ("lt2025", {"A"}),
        ("le2025", {"A", "B"}),
        ("sa2024-03-05", {"B", "C"}),
        ("eb2025-12-31", {"A"}),
        ("ap2024-03-10", {"A"}),  # within a tenth of the gap to now
        ("ap2025-06-01", set()),
        ("2024,2025", {"A", "B"}),  # alternatives
    ],
)
def test_date_is_the_documents_date_with_every_prefix_and_partial_dates(
    dated: Feeders, query: str, expected: set[str]
) -> None:
    assert titles(dated, [("date", query)]) == expected


def test_dates_are_anded_and_the_deposit_time_stays_searchable(dated: Feeders) -> None:
    assert titles(dated, [("date", "ge2024-01-01"), ("date", "lt2025-06")]) == {"A"}
    today = datetime.now(UTC).date().isoformat()
    assert titles(dated, [("date", f"ge{today}")]) == {"C"}  # the one sent without a date: its deposit
    assert titles(dated, [("_lastUpdated", f"ge{today}")]) == {"A", "B", "C"}  # all deposited today
    resource = find(dated, [("date", "2024")])["entry"][0]["resource"]
    deposit_time = next(e for e in resource["extension"] if e["url"].endswith("/deposit-time"))["valueInstant"]
    assert deposit_time.startswith(today) and resource["date"] == "2024-03-05T10:00:00+01:00"


@pytest.mark.parametrize(
    ("name", "query", "expected"),
    [
        ("period", "2024-03-04", {"A"}),  # the period of service (08:00–09:00) lies in that day
        ("period", "2024-03", {"A"}),
        ("period", "2024-03-04T08:30", set()),  # a minute does not hold an hour
        ("period", "ap2024-03-04T08:30", {"A"}),  # but overlaps it
        ("period", "ge2024-03-04T08:30", {"A"}),
        ("period", "le2024-03-04T08:30", {"A"}),
        ("period", "sa2024-03-03", {"A"}),
        ("period", "sa2024-03-04T08:30", set()),
        ("period", "eb2024-03-05", {"A"}),
        ("period", "ne2024-03-04", set()),
        ("period", "ne2023", {"A"}),  # B and C have no period: they never match
        ("creation", "2024-03-05", {"A", "B", "C"}),  # all three were created that day (as sent)
        ("creation", "gt2024-03-05T09:30:00+01:00", set()),
        ("creation", "le2024-03-05T09:30:00+01:00", {"A", "B", "C"}),
    ],
)
def test_period_and_creation(dated: Feeders, name: str, query: str, expected: set[str]) -> None:
    assert titles(dated, [(name, query)]) == expected


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("date", "ge2026-13-45"),
        ("date", "2026-01-01T25:00"),
        ("date", "2026-02-30"),
        ("date", "xx2026"),
        ("date", "ge"),
        ("date", "9999-12-31T23:59:59-12:00"),
        ("period", "2026-01-01T10:00:00+25:00"),
        ("creation", "hier"),
        ("_lastUpdated", "2026-1-1"),
        ("_offset", "99999999999999999999"),
        ("_offset", "-1"),
        ("_count", "beaucoup"),
        ("_count", "-5"),
        ("_summary", "peu"),
        ("_total", "exact"),
    ],
)
def test_an_invalid_date_or_number_is_a_400_outcome(feeders: Feeders, name: str, value: str) -> None:
    params = {"patient.identifier": f"{INS_SYSTEM}|{feeders.ins}", name: value}
    body = refused(feeders.client.get("/fhir/DocumentReference", params=params, headers=feeders.lab))
    assert body["issue"][0]["expression"] == [name]


# ------------------------------------------------------------------ 3. what is deposited comes back as sent


def test_a_full_pdsm_document_reference_comes_back_as_sent(feeders: Feeders, demo: Services) -> None:
    document_id, sent = deposit_full(feeders)
    read = feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.lab)
    assert read.status_code == 200, read.text
    back = read.json()
    carnet_elements = {"id", "meta", "subject", "content", "author"}
    for key, value in sent.items():
        if key not in carnet_elements:
            assert back[key] == value, key
    assert back["id"] == document_id and back["meta"]["profile"] == [PDSM]
    attachment = back["content"][0]["attachment"]
    for key, value in sent["content"][0]["attachment"].items():
        if key != "url":
            assert attachment[key] == value, key
    assert attachment["url"] == f"{demo.settings.base_url}/fhir/Binary/{document_id}"
    assert back["content"][0]["format"] == sent["content"][0]["format"]
    assert back["author"][0] == sent["author"][0]  # as sent (the contained PractitionerRole)…
    assert back["author"][-1]["identifier"] == {"system": IDNST, "value": f"1{LAB_FINESS}"}  # …plus the depositor
    assert back["subject"]["identifier"] == {"system": INS_SYSTEM, "value": feeders.ins}
    # the same in a search, and what is identifying stays sealed in the database
    assert find(feeders, [("date", "2024-03-05")])["entry"][0]["resource"] == back
    with demo.db.unit_of_work() as db:
        row = db.get(Document, document_id)
        assert row is not None and row.metadata_sealed and b"SANTONI" not in row.metadata_sealed
        clear = " ".join(str(getattr(row, c.key)) for c in Document.__table__.columns if c.key != "metadata_sealed")
    assert "SANTONI" not in clear and "SANTUCCI" not in clear and "252150008" not in clear


def test_labels_changed_by_patch_replace_the_ones_sent_and_the_rest_stays(feeders: Feeders) -> None:
    document_id, sent = deposit_full(feeders)
    patch = [
        {
            "op": "replace",
            "path": "/securityLabel",
            "value": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM_FR, "code": "MASQUE_PS"}]}],
        }
    ]
    answer = feeders.client.patch(f"/fhir/DocumentReference/{document_id}", json=patch, headers=feeders.lab)
    assert answer.status_code == 200, answer.text
    back = answer.json()
    assert back["securityLabel"] == [{"coding": [{"system": CONFIDENTIALITY_SYSTEM_FR, "code": "MASQUE_PS"}]}]
    assert back["context"] == sent["context"] and back["date"] == sent["date"]


def test_a_document_sent_with_only_the_required_elements_gets_carnets_date_and_author(feeders: Feeders) -> None:
    deposit_simple(feeders, "Minimal")
    resource = find(feeders, [])["entry"][0]["resource"]
    assert resource["date"][:10] == datetime.now(UTC).date().isoformat()
    assert resource["author"] == [
        {"identifier": {"system": IDNST, "value": f"1{LAB_FINESS}"}, "display": resource["author"][0]["display"]}
    ]
    assert resource["content"][0]["attachment"]["hash"]  # computed when not sent


# ------------------------------------------------------------------ 4. POST _search, _summary, _total, _count, patient


def test_post_search_form_encoded_answers_like_the_get(feeders: Feeders) -> None:
    deposit_simple(feeders, "Consultation", "11488-4")
    deposit_simple(feeders, "Scanner", "18748-4")
    query = [
        ("patient.identifier", f"{INS_SYSTEM}|{feeders.ins}"),
        ("status", "current"),
        ("type", f"{LOINC}|11488-4,{LOINC}|18748-4"),
    ]
    got = feeders.client.get("/fhir/DocumentReference", params=query, headers=feeders.lab).json()
    form = {**feeders.lab, "Content-Type": "application/x-www-form-urlencoded"}
    posted = feeders.client.post("/fhir/DocumentReference/_search", content=urlencode(query), headers=form)
    assert posted.status_code == 200, posted.text
    assert posted.json() == got and got["total"] == 2
    # MHD's example: part in the query string, part in the body
    split = feeders.client.post(
        f"/fhir/DocumentReference/_search?{urlencode(query[:1])}", content=urlencode(query[1:]), headers=form
    )
    assert split.json()["total"] == 2
    refused(
        feeders.client.post(
            "/fhir/DocumentReference/_search",
            content=b'{"a": 1}',
            headers={**feeders.lab, "Content-Type": "application/json"},
        ),
        415,
    )
    refused(
        feeders.client.post(
            "/fhir/DocumentReference/_search", content=urlencode([*query, ("inconnu", "1")]), headers=form
        )
    )


def test_summary_count_total_and_count_zero(feeders: Feeders) -> None:
    for title in ("Un", "Deux", "Trois"):
        deposit_simple(feeders, title)
    counted = find(feeders, [("_summary", "count")])
    assert counted["total"] == 3 and "entry" not in counted
    assert all(link["url"].startswith("http") for link in counted["link"])
    nothing = find(feeders, [("_count", "0")])
    assert (
        nothing["total"] == 3 and "entry" not in nothing and [link["relation"] for link in nothing["link"]] == ["self"]
    )
    for total in ("none", "estimate", "accurate"):
        assert find(feeders, [("_total", total)])["total"] == 3
    assert len(find(feeders, [("_count", "1000")])["entry"]) == 3  # served as at most 100


def test_patient_takes_a_bare_id_a_reference_and_the_absolute_url(feeders: Feeders, demo: Services) -> None:
    deposit_simple(feeders, "Un")
    pid = feeders.patient_id
    for value in (
        pid,
        f"Patient/{pid}",
        f"{demo.settings.base_url}/fhir/Patient/{pid}",
        f"http://testserver/fhir/Patient/{pid}",
    ):
        answer = feeders.client.get(
            "/fhir/DocumentReference", params={"patient": value, "status": "current"}, headers=feeders.lab
        )
        assert answer.status_code == 200 and answer.json()["total"] == 1, (value, answer.text)
    refused(feeders.client.get("/fhir/DocumentReference", params={"patient": "Practitioner/x"}, headers=feeders.lab))
    declared = {p["name"]: p["type"] for p in document_reference_statement(feeders)["searchParam"]}
    assert declared["patient"] == "reference"


def test_count_on_patient_is_accepted(feeders: Feeders) -> None:
    params = {"identifier": f"{INS_SYSTEM}|{feeders.ins}", "_count": "10"}
    answer = feeders.client.get("/fhir/Patient", params=params, headers=feeders.gp)
    assert answer.status_code == 200 and answer.json()["total"] == 1 and answer.json()["entry"]
    none = feeders.client.get("/fhir/Patient", params={**params, "_count": "0"}, headers=feeders.gp).json()
    assert none["total"] == 1 and "entry" not in none
    refused(feeders.client.get("/fhir/Patient", params={**params, "_count": "dix"}, headers=feeders.gp))


# ------------------------------------------------------------------ 5. media types


@pytest.mark.parametrize("binary_type", ["text/plain; charset=utf-8", "TEXT/PLAIN", "text/plain;charset=UTF-8"])
def test_mime_types_are_compared_as_media_types(feeders: Feeders, binary_type: str) -> None:
    body = b"Compte rendu de consultation : tension normale."
    url = f"urn:uuid:{uuid.uuid4()}"
    reference = full_reference(feeders.ins, body, url)
    reference["content"][0]["attachment"]["contentType"] = "text/plain"
    reference["content"][0]["format"] = {"system": FORMAT, "code": "urn:ihe:iti:xds:2017:mimeTypeSufficient"}
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(entries(reference, body, url, binary_type)), headers=feeders.lab
    )
    assert answer.status_code == 200, answer.text
    document_id = answer.json()["entry"][1]["response"]["location"].split("/")[1]
    retrieved = feeders.client.get(f"/fhir/Binary/{document_id}", headers=feeders.lab)
    assert retrieved.content == body and retrieved.headers["content-type"].startswith("text/plain")


def test_a_binary_of_another_media_type_is_still_refused(feeders: Feeders) -> None:
    body = b"Texte"
    url = f"urn:uuid:{uuid.uuid4()}"
    reference = full_reference(feeders.ins, body, url)
    reference["content"][0]["attachment"]["contentType"] = "text/plain"
    answer = feeders.client.post(
        "/fhir", json=provide_bundle(entries(reference, body, url, "text/html")), headers=feeders.lab
    )
    refused(answer)


# ------------------------------------------------------------------ 6. locations, ETag, versions


def test_every_transaction_response_entry_has_its_location_etag_and_time(feeders: Feeders) -> None:
    answer = provide(
        feeders,
        document_entry(feeders.ins, make_pdf("Un"), title="Un"),
        document_entry(feeders.ins, make_pdf("Deux"), title="Deux"),
    )
    kinds = [e["response"]["location"].split("/")[0] for e in answer["entry"]]
    assert kinds == ["List", "DocumentReference", "Binary", "DocumentReference", "Binary"]
    for entry in answer["entry"]:
        response = entry["response"]
        assert response["status"] == "201 Created" and response["etag"] == 'W/"1"'
        assert datetime.fromisoformat(response["lastModified"]).tzinfo is not None
    documents = [e["response"]["location"] for e in answer["entry"][1::2]]
    binaries = [e["response"]["location"] for e in answer["entry"][2::2]]
    assert [b.split("/")[1] for b in binaries] == [d.split("/")[1] for d in documents]  # the document's bytes
    for binary, title in zip(binaries, ("Un", "Deux"), strict=True):
        assert title.encode("cp1252") in feeders.client.get(f"/fhir/{binary}", headers=feeders.lab).content


def test_the_submission_set_is_read_at_its_location_by_the_lab_the_gp_and_not_by_a_stranger(
    feeders: Feeders,
) -> None:
    answer = provide(
        feeders,
        document_entry(feeders.ins, make_pdf("Un"), title="Un"),
        document_entry(feeders.ins, make_pdf("Deux"), title="Deux"),
    )
    location = answer["entry"][0]["response"]["location"]
    documents = [e["response"]["location"] for e in answer["entry"][1::2]]
    for reader in (feeders.lab, feeders.gp):  # the depositor, and the médecin traitant (ACC-2)
        read = feeders.client.get(f"/fhir/{location}", headers=reader)
        assert read.status_code == 200 and read.headers["etag"] == 'W/"1"'
        listed = read.json()
        assert listed["resourceType"] == "List" and listed["code"]["coding"][0]["code"] == "submissionset"
        assert listed["subject"]["identifier"]["value"] == feeders.ins
        assert [e["item"]["reference"] for e in listed["entry"]] == documents
        from fhir.resources.R4B.list import List

        List.model_validate(listed)
    stranger = feeders.client.get(f"/fhir/{location}", headers=feeders.dentist)
    assert stranger.status_code == 404 and stranger.json()["resourceType"] == "OperationOutcome"
    unknown = feeders.client.get(f"/fhir/List/{uuid.uuid4()}", headers=feeders.lab)
    assert unknown.status_code == 404
    assert feeders.client.get(f"/fhir/{location}").status_code == 401


def test_read_and_patch_carry_etag_version_and_last_modified(feeders: Feeders) -> None:
    document_id = deposit_simple(feeders, "Versionné")
    read = feeders.client.get(f"/fhir/DocumentReference/{document_id}", headers=feeders.lab)
    assert read.headers["etag"] == 'W/"1"' and read.headers["last-modified"].endswith("GMT")
    assert read.json()["meta"]["versionId"] == "1"
    patch = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    changed = feeders.client.patch(f"/fhir/DocumentReference/{document_id}", json=patch, headers=feeders.lab)
    assert changed.headers["etag"] == 'W/"2"' and changed.json()["meta"]["versionId"] == "2"
    assert changed.json()["meta"]["lastUpdated"] > read.json()["meta"]["lastUpdated"]


def test_a_binary_no_document_holds_and_a_folder_list_are_refused(feeders: Feeders, demo: Services) -> None:
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("Un")))
    bundle["entry"].append(
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {"resourceType": "Binary", "contentType": "application/pdf", "data": "JVBERi0="},
            "request": {"method": "POST", "url": "Binary"},
        }
    )
    refused(feeders.client.post("/fhir", json=bundle, headers=feeders.lab))
    folder = provide_bundle(document_entry(feeders.ins, make_pdf("Un")))
    folder["entry"].append(
        {
            "fullUrl": f"urn:uuid:{uuid.uuid4()}",
            "resource": {
                "resourceType": "List",
                "status": "current",
                "mode": "working",
                "code": {"coding": [{"code": "folder"}]},
            },
            "request": {"method": "POST", "url": "List"},
        }
    )
    refused(feeders.client.post("/fhir", json=folder, headers=feeders.lab))
    with demo.db.unit_of_work() as db:
        assert db.scalars(select(Document)).first() is None


# ------------------------------------------------------------------ 7. formats


@pytest.mark.parametrize(
    ("query", "accept"),
    [
        ("_format=xml", ""),
        ("_format=application/fhir%2Bxml", ""),
        ("", "application/fhir+xml"),
        ("", "application/xml"),
        ("", "text/html"),
    ],
)
def test_an_xml_request_is_a_406_outcome(feeders: Feeders, query: str, accept: str) -> None:
    document_id = deposit_simple(feeders, "Un")
    headers = {**feeders.lab, **({"Accept": accept} if accept else {})}
    search = f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}|{feeders.ins}&{query}"
    for url in (search, f"/fhir/DocumentReference/{document_id}?{query}", f"/fhir/metadata?{query}"):
        refused(feeders.client.get(url, headers=headers), 406)
    posted = feeders.client.post(
        f"/fhir/DocumentReference/_search?{query}",
        content=f"patient={feeders.patient_id}",
        headers={**headers, "Content-Type": "application/x-www-form-urlencoded"},
    )
    refused(posted, 406)


@pytest.mark.parametrize("query", ["_format=xml", "_format=application/fhir%2Bxml"])
def test_every_other_fhir_endpoint_answers_xml_with_a_406_outcome(feeders: Feeders, query: str) -> None:
    for url in (
        f"/fhir/Patient?identifier={INS_SYSTEM}|{feeders.ins}&{query}",
        f"/fhir/Observation?patient={feeders.patient_id}&{query}",
        f"/fhir/Appointment?patient={feeders.patient_id}&{query}",
        f"/fhir/Consent?patient={feeders.patient_id}&{query}",
        f"/fhir/ImmunizationRecommendation?patient={feeders.patient_id}&{query}",
    ):
        refused(feeders.client.get(url, headers=feeders.gp), 406)
        refused(feeders.client.get(url, headers={**feeders.gp, "Accept": "application/fhir+xml"}), 406)
    created = feeders.client.post(
        f"/fhir/Observation?{query}", json={"resourceType": "Observation"}, headers=feeders.gp
    )
    refused(created, 406)
    served = feeders.client.get(f"/fhir/Observation?patient={feeders.patient_id}", headers=feeders.gp)
    assert served.status_code == 200  # JSON still served without asking


@pytest.mark.parametrize(
    "accept",
    [
        "",
        "*/*",
        "application/json",
        "application/fhir+json",
        "application/fhir+json; fhirVersion=4.0",
        "application/fhir+xml;q=0.9, application/fhir+json",
    ],
)
def test_json_is_served_to_whoever_takes_it(feeders: Feeders, accept: str) -> None:
    headers = {**feeders.lab, **({"Accept": accept} if accept else {})}
    answer = feeders.client.get(
        f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}|{feeders.ins}&_format=json", headers=headers
    )
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/fhir+json")


def test_binary_is_the_resource_in_fhir_json_and_the_bytes_otherwise(feeders: Feeders) -> None:
    pdf = make_pdf("Octets")
    document_id = provide(feeders, document_entry(feeders.ins, pdf))["entry"][1]["response"]["location"].split("/")[1]
    url = f"/fhir/Binary/{document_id}"
    for query, accept in (
        ("?_format=json", ""),
        ("", "application/fhir+json"),
        ("?_format=application/fhir%2Bjson", ""),
    ):
        answer = feeders.client.get(url + query, headers={**feeders.lab, **({"Accept": accept} if accept else {})})
        assert answer.json()["resourceType"] == "Binary" and base64.b64decode(answer.json()["data"]) == pdf
    for accept in ("", "*/*", "application/pdf", "application/json"):
        answer = feeders.client.get(url, headers={**feeders.lab, **({"Accept": accept} if accept else {})})
        assert answer.content == pdf and answer.headers["content-type"] == "application/pdf"
    refused(feeders.client.get(url + "?_format=xml", headers=feeders.lab), 406)
    refused(feeders.client.get(url, headers={**feeders.lab, "Accept": "application/fhir+xml"}), 406)


# ------------------------------------------------------------------ 8. one base


def test_every_link_comes_from_the_configured_base_url(feeders: Feeders, demo: Services) -> None:
    base = demo.settings.base_url
    for title in ("Un", "Deux", "Trois"):
        deposit_simple(feeders, title)
    form = {**feeders.lab, "Content-Type": "application/x-www-form-urlencoded"}
    pages = [
        find(feeders, [("_count", "2")]),
        find(feeders, [("_count", "1"), ("_offset", "1")]),
        feeders.client.post(
            "/fhir/DocumentReference/_search", content=f"patient={feeders.patient_id}&_count=2", headers=form
        ).json(),
    ]
    for page in pages:
        assert all(link["url"].startswith(f"{base}/fhir/DocumentReference?") for link in page["link"])
        for entry in page["entry"]:
            assert entry["fullUrl"] == f"{base}/fhir/DocumentReference/{entry['resource']['id']}"
            assert (
                entry["resource"]["content"][0]["attachment"]["url"] == f"{base}/fhir/Binary/{entry['resource']['id']}"
            )
    assert {link["relation"] for link in pages[1]["link"]} == {"self", "next", "previous"}
    following = next(link["url"] for link in pages[0]["link"] if link["relation"] == "next")
    assert len(feeders.client.get(following.removeprefix(base), headers=feeders.lab).json()["entry"]) == 1


# ------------------------------------------------------------------ 9. discovery


def document_reference_statement(f: Feeders) -> dict[str, Any]:
    statement = f.client.get("/fhir/metadata").json()
    return next(r for r in statement["rest"][0]["resource"] if r["type"] == "DocumentReference")  # type: ignore[no-any-return]


def test_the_capability_statement_names_the_token_endpoint(feeders: Feeders, demo: Services) -> None:
    statement = feeders.client.get("/fhir/metadata").json()
    security = statement["rest"][0]["security"]
    (oauth,) = [
        e
        for e in security["extension"]
        if e["url"] == "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris"
    ]
    assert {"url": "token", "valueUri": f"{demo.settings.base_url}/oauth/token"} in oauth["extension"]
    assert {c["code"] for s in security["service"] for c in s["coding"]} == {"SMART-on-FHIR", "OAuth"}
    from fhir.resources.R4B.capabilitystatement import CapabilityStatement

    CapabilityStatement.model_validate(statement)


def test_smart_configuration_for_the_backend_services_flow(feeders: Feeders, demo: Services) -> None:
    answer = feeders.client.get("/fhir/.well-known/smart-configuration")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    smart = answer.json()
    assert smart["token_endpoint"] == f"{demo.settings.base_url}/oauth/token"
    assert smart["grant_types_supported"][0] == "client_credentials"  # the apps' flow: tests/catalogue
    assert {"client_secret_basic", "client_secret_post"} <= set(smart["token_endpoint_auth_methods_supported"])
    systems = [s for s in smart["scopes_supported"] if s.startswith("system/")]
    assert systems == [f"system/{r}.{p}" for r, p in sorted(CLIENT_SCOPES.items())]
    assert "client-confidential-symmetric" in smart["capabilities"] and "permission-v2" in smart["capabilities"]
    # what it says works: a token for one of the scopes it lists, at the endpoint it names
    from carnet.identity.service.clients import create_client

    with demo.db.unit_of_work() as db:
        made = create_client(db, "Logiciel SMART", rpps=GP_RPPS)
    path = smart["token_endpoint"].removeprefix(demo.settings.base_url)
    token = feeders.client.post(
        path,
        data={"grant_type": smart["grant_types_supported"][0], "scope": "system/DocumentReference.rs"},
        auth=(made.client_id, made.client_secret),
    )
    assert token.status_code == 200 and token.json()["scope"] == "system/DocumentReference.rs"


def test_the_capability_statement_tells_the_truth_about_routes_and_parameters(feeders: Feeders) -> None:
    """Every FHIR route of the app is declared with its interaction, and nothing more; every DocumentReference search
    parameter declared is taken (200 with a value of its type), and one not declared is a 400."""
    served: set[tuple[str, str]] = set()
    for path, operations in feeders.client.get("/api/openapi.json").json()["paths"].items():
        parts = path.removeprefix("/fhir/").split("/")
        if not path.startswith("/fhir/") or not parts[0][:1].isupper():
            continue  # /fhir/metadata, /fhir/.well-known/…
        for method in operations:
            kind = "search-type" if parts[-1] == "_search" else None
            kind = (
                kind
                or {("get", 1): "search-type", ("post", 1): "create", ("get", 2): "read", ("patch", 2): "patch"}[
                    (method, len(parts))
                ]
            )
            served.add((parts[0], kind))
    statement = feeders.client.get("/fhir/metadata").json()
    declared = {(r["type"], i["code"]) for r in statement["rest"][0]["resource"] for i in r["interaction"]}
    assert served == declared
    samples = {"token": "x", "date": "ge2024", "reference": feeders.patient_id}
    for parameter in document_reference_statement(feeders)["searchParam"]:
        if parameter["name"] in {"patient", "patient.identifier"}:
            continue
        value = "current" if parameter["name"] == "status" else samples[parameter["type"]]
        assert find(feeders, [(parameter["name"], value)])["total"] == 0, parameter
    refused(
        feeders.client.get(
            "/fhir/DocumentReference",
            params={"patient": feeders.patient_id, "author.given": "Lucia"},
            headers=feeders.lab,
        )
    )
