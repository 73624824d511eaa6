"""ACC-1, ACC-2, ACC-3 over FHIR: the TD0.2 check (``GET /fhir/Patient?identifier=…``) and ``/fhir/Consent``,
from the professionals' software — the médecin traitant, an authorised pharmacist, a dentist the patient never
authorised, a hospital lab — with the patient revoking and blocking through the access service."""

from __future__ import annotations

from typing import Any

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.consent import Consent
from sqlalchemy import select

from carnet.access.fhir import EXT_ACCESS_STATUS, EXT_CONSENT_ORIGIN, EXT_MEDECIN_TRAITANT, IDNPS_SYSTEM, OUTCOME_SYSTEM
from carnet.access.service import grants as access
from carnet.access.tables import AccessGrant
from carnet.bootstrap import Services
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.tables import AuditEntry
from carnet.identity.service.clients import create_client
from carnet.people.model.identifiers import nir_from_body
from carnet.people.tables import Professional
from tests.support.actors import Feeders, bearer
from tests.support.documents import INS_SYSTEM, document_entry, make_pdf, provide_bundle

DENTIST_RPPS = "10003456789"
PHARMACIST_RPPS = "10002345678"
TRAITS = ("SANTONI", "Santoni", "Marie-Ange", "1985-03-14", "1985")
FHIR = {"Content-Type": "application/fhir+json"}


def td02(f: Feeders, headers: dict[str, str], ins: str | None = None) -> Any:
    return f.client.get(f"/fhir/Patient?identifier={INS_SYSTEM}|{ins or f.ins}", headers=headers)


def found(response: Any) -> dict[str, Any]:
    """The patient of a TD0.2 answer that found one (the Bundle checked as FHIR R4B)."""
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["type"] == "searchset" and body["total"] == 1
    (entry,) = body["entry"]
    assert entry["search"]["mode"] == "match"
    return entry["resource"]  # type: ignore[no-any-return]


def refused(response: Any) -> dict[str, Any]:
    """The outcome issue of a TD0.2 answer that found nobody (no patient entry)."""
    assert response.status_code == 200, response.text
    body = response.json()
    Bundle.model_validate(body)
    assert body["total"] == 0
    assert [e["search"]["mode"] for e in body["entry"]] == ["outcome"]
    (issue,) = body["entry"][0]["resource"]["issue"]
    assert issue["severity"] in {"information", "warning"}
    return issue  # type: ignore[no-any-return]


def extension(resource: dict[str, Any], url: str) -> Any:
    values = [next(v for k, v in e.items() if k.startswith("value")) for e in resource["extension"] if e["url"] == url]
    assert len(values) == 1, resource["extension"]
    return values[0]


def consent_body(ins: str, rpps: str = DENTIST_RPPS, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resourceType": "Consent",
        "status": "active",
        "scope": {
            "coding": [{"system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy"}]
        },
        "category": [{"coding": [{"system": "http://loinc.org", "code": "59284-0"}]}],
        "patient": {"identifier": {"system": INS_SYSTEM, "value": ins}},
        "dateTime": "2026-11-26T09:00:00+01:00",
        "provision": {
            "type": "permit",
            "actor": [
                {
                    "role": {
                        "coding": [
                            {"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PRCP"}
                        ]
                    },
                    "reference": {"identifier": {"system": IDNPS_SYSTEM, "value": "8" + rpps}},
                }
            ],
        },
    }
    body.update(changes)
    return body


def post_consent(f: Feeders, headers: dict[str, str], body: Any) -> Any:
    return f.client.post("/fhir/Consent", json=body, headers={**headers, **FHIR})


def dentist_documents(f: Feeders) -> int:
    url = f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}|{f.ins}"
    response = f.client.get(url, headers=f.dentist)
    assert response.status_code == 200, response.text
    return int(response.json()["total"])


def patient_actor(f: Feeders) -> Actor:
    return Actor(ActorKind.PATIENT, "compte-marie-ange", "Marie-Ange SANTONI", patient_id=f.patient_id)


def professional_id(demo: Services, rpps: str) -> str:
    with demo.db.unit_of_work() as db:
        pro_id = db.scalar(select(Professional.id).where(Professional.rpps == rpps))
    assert pro_id
    return pro_id


@pytest.fixture
def pharmacist(feeders: Feeders, demo: Services) -> dict[str, str]:
    with demo.db.unit_of_work() as db:
        created = create_client(db, "Logiciel de la Pharmacie du Port", rpps=PHARMACIST_RPPS)
    return bearer(feeders.client, created.client_id, created.client_secret)


# ---------------------------------------------------------------------------------------------- TD0.2


def test_td02_the_medecin_traitant_finds_the_patient_with_her_ins_traits(feeders: Feeders, demo: Services) -> None:
    patient = found(td02(feeders, feeders.gp))
    assert patient["resourceType"] == "Patient" and patient["id"] == feeders.patient_id
    (identifier,) = patient["identifier"]
    assert (identifier["system"], identifier["value"]) == (INS_SYSTEM, feeders.ins)
    assert identifier["type"]["coding"][0]["code"] == "INS-NIR"
    assert patient["name"][0] == {"use": "official", "family": "SANTONI", "given": ["Marie-Ange"]}
    assert (patient["birthDate"], patient["gender"]) == ("1985-03-14", "female")
    assert extension(patient, EXT_ACCESS_STATUS) == "medecin-traitant"
    assert extension(patient, EXT_MEDECIN_TRAITANT) is True
    with demo.db.unit_of_work() as db:
        looked_up = list(
            db.scalars(
                select(AuditEntry).where(AuditEntry.patient_id == feeders.patient_id, AuditEntry.action == "space.find")
            )
        )
    assert [(e.actor_label, e.outcome) for e in looked_up] == [("Dr Jean-Baptiste FERRACCI", "allow")]


def test_td02_an_authorised_pharmacist_is_a_reader_not_the_medecin_traitant(
    feeders: Feeders, pharmacist: dict[str, str]
) -> None:
    patient = found(td02(feeders, pharmacist))
    assert patient["identifier"][0]["value"] == feeders.ins
    assert extension(patient, EXT_ACCESS_STATUS) == "authorised"
    assert extension(patient, EXT_MEDECIN_TRAITANT) is False


def test_td02_an_unauthorised_dentist_learns_why_and_what_to_do_but_no_trait(feeders: Feeders, demo: Services) -> None:
    response = td02(feeders, feeders.dentist)
    issue = refused(response)
    assert issue["details"]["coding"] == [{"system": OUTCOME_SYSTEM, "code": "no-consent"}]
    assert "La personne ne vous a pas autorisé" in issue["diagnostics"]
    assert "POST /fhir/Consent" in issue["diagnostics"] and "bris de glace" in issue["diagnostics"]
    assert "déposer des documents" in issue["diagnostics"]
    for trait in (*TRAITS, feeders.patient_id):
        assert trait not in response.text
    with demo.db.unit_of_work() as db:
        details = db.scalars(
            select(AuditEntry.details).where(
                AuditEntry.patient_id == feeders.patient_id, AuditEntry.action == "space.find"
            )
        ).all()
    assert [d.get("accès") for d in details] == ["non"]  # the patient's history tells the look-up


def test_td02_the_patient_refusing_emergency_access_is_said(feeders: Feeders, demo: Services) -> None:
    from carnet.people.tables import PatientSettings

    with demo.db.unit_of_work() as db:
        settings = db.get(PatientSettings, feeders.patient_id)
        if settings is None:
            settings = PatientSettings(patient_id=feeders.patient_id)
            db.add(settings)
        settings.emergency_professionals = False
    issue = refused(td02(feeders, feeders.dentist))
    assert "a refusé l'accès en urgence" in issue["diagnostics"] and "bris de glace" not in issue["diagnostics"]


def test_td02_a_blocked_professional_is_told_so(feeders: Feeders, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        access.block(db, patient_actor(feeders), feeders.patient_id, professional_id(demo, DENTIST_RPPS))
    response = td02(feeders, feeders.dentist)
    issue = refused(response)
    assert issue["details"]["coding"][0]["code"] == "blocked"
    assert issue["diagnostics"].startswith("La personne vous a bloqué")
    assert all(trait not in response.text for trait in TRAITS)


def test_td02_an_establishment_does_not_read_spaces(feeders: Feeders) -> None:
    issue = refused(td02(feeders, feeders.lab))
    assert issue["details"]["coding"][0]["code"] == "establishment"
    assert "RPPS" in issue["diagnostics"]


def test_td02_an_unknown_ins_has_no_open_space(feeders: Feeders) -> None:
    unknown = nir_from_body("185052A004999")
    issue = refused(td02(feeders, feeders.gp, unknown))
    assert (issue["severity"], issue["code"]) == ("information", "not-found")
    assert issue["diagnostics"].startswith("Aucun espace santé ouvert n'existe pour cet INS")


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("identifier=urn:oid:1.2.3.4|{ins}", "matricule INS"),
        ("identifier={ins}", "matricule INS"),
        ("identifier=urn:oid:1.2.250.1.213.1.4.8|{bad_key}", "clé est invalide"),
        ("identifier=urn:oid:1.2.250.1.213.1.4.8|123", "15 caractères"),
        ("", "est obligatoire"),
        ("identifier=urn:oid:1.2.250.1.213.1.4.8|{ins}&name=SANTONI", "non pris en charge"),
    ],
)
def test_td02_a_bad_identifier_is_a_400_in_french(feeders: Feeders, query: str, words: str) -> None:
    bad_key = feeders.ins[:13] + f"{(int(feeders.ins[13:]) % 96) + 1:02d}"
    url = "/fhir/Patient?" + query.format(ins=feeders.ins, bad_key=bad_key)
    response = feeders.client.get(url, headers=feeders.gp)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    (issue,) = body["issue"]
    assert words in issue["diagnostics"] and issue["expression"]


def test_td02_needs_a_token(feeders: Feeders) -> None:
    for headers in ({}, {"Authorization": "Bearer faux"}):
        response = td02(feeders, headers)
        assert response.status_code == 401
        assert response.json()["resourceType"] == "OperationOutcome"
        assert "Jeton" in response.json()["issue"][0]["diagnostics"]


def test_the_patient_fullurl_answers_those_allowed_only(feeders: Feeders) -> None:
    url = found(td02(feeders, feeders.gp))["id"]
    assert feeders.client.get(f"/fhir/Patient/{url}", headers=feeders.gp).json()["birthDate"] == "1985-03-14"
    hidden = feeders.client.get(f"/fhir/Patient/{url}", headers=feeders.dentist)
    assert hidden.status_code == 404 and "SANTONI" not in hidden.text


# --------------------------------------------------------------------------------------------- Consent


def test_consent_over_fhir_opens_the_space_to_the_dentist_until_the_patient_revokes_it(
    feeders: Feeders, demo: Services
) -> None:
    deposit = provide_bundle(document_entry(feeders.ins, make_pdf("Glycémie à jeun"), title="Glycémie"))
    assert feeders.client.post("/fhir", json=deposit, headers={**feeders.lab, **FHIR}).status_code == 200
    assert dentist_documents(feeders) == 0

    response = post_consent(feeders, feeders.dentist, consent_body(feeders.ins))
    assert response.status_code == 201, response.text
    consent = response.json()
    Consent.model_validate(consent)
    assert response.headers["location"].endswith(f"/fhir/Consent/{consent['id']}")
    assert consent["status"] == "active" and consent["dateTime"]
    assert consent["patient"]["identifier"] == {"system": INS_SYSTEM, "value": feeders.ins}
    (actor,) = consent["provision"]["actor"]
    assert actor["reference"]["identifier"] == {"system": IDNPS_SYSTEM, "value": "8" + DENTIST_RPPS}
    assert extension(consent, EXT_CONSENT_ORIGIN) == "fhir"
    with demo.db.unit_of_work() as db:
        grant = db.get(AccessGrant, consent["id"])
        assert grant is not None and (grant.origin, grant.role, grant.revoked_at) == ("fhir", "reader", None)
        recorded = db.scalar(
            select(AuditEntry).where(
                AuditEntry.patient_id == feeders.patient_id, AuditEntry.action == "access.consent_recorded"
            )
        )
        assert recorded is not None and recorded.details["origine"] == "par son logiciel"

    again = post_consent(feeders, feeders.dentist, consent_body(feeders.ins))
    assert (again.status_code, again.json()["id"]) == (200, consent["id"])  # already recorded: the same one

    assert extension(found(td02(feeders, feeders.dentist)), EXT_ACCESS_STATUS) == "authorised"
    assert dentist_documents(feeders) == 1
    read = feeders.client.get(f"/fhir/Consent/{consent['id']}", headers=feeders.dentist)
    assert read.status_code == 200 and read.json()["status"] == "active"
    for other in (feeders.gp, feeders.lab):  # only the professional concerned reads it
        hidden = feeders.client.get(f"/fhir/Consent/{consent['id']}", headers=other)
        assert hidden.status_code == 404 and hidden.json()["resourceType"] == "OperationOutcome"

    with demo.db.unit_of_work() as db:
        access.revoke(db, patient_actor(feeders), feeders.patient_id, consent["id"])

    revoked = feeders.client.get(f"/fhir/Consent/{consent['id']}", headers=feeders.dentist).json()
    assert revoked["status"] == "inactive" and revoked["provision"]["period"]["end"]
    Consent.model_validate(revoked)
    refused(td02(feeders, feeders.dentist))
    assert dentist_documents(feeders) == 0

    listing = feeders.client.get(
        f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{feeders.ins}", headers=feeders.dentist
    ).json()
    Bundle.model_validate(listing)
    assert [(e["resource"]["id"], e["resource"]["status"]) for e in listing["entry"]] == [(consent["id"], "inactive")]
    active = feeders.client.get(
        f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{feeders.ins}&status=active", headers=feeders.dentist
    ).json()
    assert active["total"] == 0

    renewed = post_consent(feeders, feeders.dentist, consent_body(feeders.ins))
    assert renewed.status_code == 201 and renewed.json()["id"] != consent["id"]
    assert dentist_documents(feeders) == 1


def test_consent_accepts_the_bare_rpps_as_performer(feeders: Feeders) -> None:
    body = consent_body(feeders.ins, provision={"type": "permit"})
    body["performer"] = [{"identifier": {"system": "https://rpps.esante.gouv.fr", "value": DENTIST_RPPS}}]
    response = post_consent(feeders, feeders.dentist, body)
    assert response.status_code == 201, response.text
    assert dentist_documents(feeders) == 0  # nothing deposited yet, but the search is the consented one
    assert extension(found(td02(feeders, feeders.dentist)), EXT_ACCESS_STATUS) == "authorised"


def test_a_blocked_dentist_cannot_record_a_consent(feeders: Feeders, demo: Services) -> None:
    with demo.db.unit_of_work() as db:
        access.block(db, patient_actor(feeders), feeders.patient_id, professional_id(demo, DENTIST_RPPS))
    response = post_consent(feeders, feeders.dentist, consent_body(feeders.ins))
    assert response.status_code == 403, response.text
    (issue,) = response.json()["issue"]
    assert issue["diagnostics"] == "La personne vous a bloqué : seule elle peut vous autoriser à nouveau."
    assert issue["expression"] == ["Consent.provision.actor[0].reference.identifier"]
    with demo.db.unit_of_work() as db:
        grants = db.scalars(select(AccessGrant).where(AccessGrant.origin == "fhir")).all()
        refusals = db.scalars(
            select(AuditEntry.action).where(AuditEntry.patient_id == feeders.patient_id, AuditEntry.outcome == "deny")
        ).all()
    assert grants == [] and "consent.record" in refusals


def _without(body: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != key}


CONSENT_ERRORS = [  # (name, body from the INS, client, status, expression, French words)
    ("json", lambda ins: "{pas du json", "dentist", 400, "Consent", "JSON valide"),
    ("array", lambda ins: [1], "dentist", 400, "Consent", "objet JSON"),
    ("type", lambda ins: {**consent_body(ins), "resourceType": "Patient"}, "dentist", 400, "resourceType", "Consent"),
    ("draft", lambda ins: consent_body(ins, status="draft"), "dentist", 400, "Consent.status", "« active »"),
    ("scope", lambda ins: consent_body(ins, scope={"text": "x"}), "dentist", 400, "Consent.scope", "patient-privacy"),
    ("structure", lambda ins: consent_body(ins, scope="x"), "dentist", 400, "Consent.scope", "doit être un objet"),
    ("unknown", lambda ins: consent_body(ins, couleur="bleu"), "dentist", 400, "Consent.couleur", "élément inconnu"),
    ("category", lambda ins: consent_body(ins, category=[{"text": "x"}]), "dentist", 400, "Consent.category", "LOINC"),
    ("patient", lambda ins: _without(consent_body(ins), "patient"), "dentist", 400, "Consent.patient", "obligatoire"),
    (
        "ins key",
        lambda ins: consent_body(ins[:13] + "00"),
        "dentist",
        400,
        "Consent.patient.identifier",
        "INS invalide",
    ),
    (
        "unknown ins",
        lambda ins: consent_body(nir_from_body("185052A004999")),
        "dentist",
        404,
        "Consent.patient.identifier",
        "Aucun espace santé ouvert",
    ),
    (
        "deny",
        lambda ins: consent_body(ins, provision={**consent_body(ins)["provision"], "type": "deny"}),
        "dentist",
        400,
        "Consent.provision.type",
        "« permit »",
    ),
    (
        "no professional",
        lambda ins: consent_body(ins, provision={"type": "permit"}),
        "dentist",
        400,
        "Consent.provision.actor",
        "RPPS",
    ),
    (
        "bad idnps",
        lambda ins: consent_body(ins, rpps="123"),
        "dentist",
        400,
        "Consent.provision.actor[0].reference.identifier.value",
        "11 chiffres",
    ),
    (
        "someone else",
        lambda ins: consent_body(ins, rpps=PHARMACIST_RPPS),
        "dentist",
        403,
        "Consent.provision.actor[0].reference.identifier",
        "pour vous-même",
    ),
    (
        "establishment",
        lambda ins: consent_body(ins),
        "lab",
        403,
        "Consent.provision.actor[0].reference.identifier",
        "un établissement ne le peut pas",
    ),
]


@pytest.mark.parametrize(("name", "make", "who", "status", "expression", "words"), CONSENT_ERRORS)
def test_consent_errors_are_operation_outcomes_in_french(
    feeders: Feeders,
    demo: Services,
    name: str,
    make: Any,
    who: str,
    status: int,
    expression: str,
    words: str,
) -> None:
    body = make(feeders.ins)
    headers = {**getattr(feeders, who), **FHIR}
    if isinstance(body, str):
        response = feeders.client.post("/fhir/Consent", content=body, headers=headers)
    else:
        response = feeders.client.post("/fhir/Consent", json=body, headers=headers)
    assert response.status_code == status, response.text
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    issues = outcome["issue"]
    assert any(expression in i.get("expression", []) and words in i["diagnostics"] for i in issues), issues
    with demo.db.unit_of_work() as db:
        assert db.scalars(select(AccessGrant).where(AccessGrant.origin == "fhir")).all() == []


def test_consent_without_a_token_is_401_even_with_a_bad_body(feeders: Feeders) -> None:
    response = feeders.client.post("/fhir/Consent", content="{pas du json", headers=FHIR)
    assert response.status_code == 401 and response.json()["resourceType"] == "OperationOutcome"


def test_consent_search_errors(feeders: Feeders) -> None:
    missing = feeders.client.get("/fhir/Consent", headers=feeders.dentist)
    assert missing.status_code == 400 and missing.json()["issue"][0]["expression"] == ["patient.identifier"]
    lab = feeders.client.get(f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{feeders.ins}", headers=feeders.lab)
    assert lab.status_code == 403 and "établissement" in lab.json()["issue"][0]["diagnostics"]
    unknown = feeders.client.get(
        f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{nir_from_body('185052A004999')}", headers=feeders.dentist
    )
    assert unknown.status_code == 200 and unknown.json()["total"] == 0
    assert feeders.client.get("/fhir/Consent/inconnu", headers=feeders.dentist).status_code == 404


def test_reading_consents_is_in_the_patients_history(feeders: Feeders, demo: Services) -> None:
    """ACC-1, ACC-5: reading back a consent, or the list, is decided by the policy (``consent.read``) and written
    to the patient's history; another professional's attempt is recorded as refused."""
    consent = post_consent(feeders, feeders.dentist, consent_body(feeders.ins)).json()
    assert feeders.client.get(f"/fhir/Consent/{consent['id']}", headers=feeders.dentist).status_code == 200
    listing = f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{feeders.ins}"
    assert feeders.client.get(listing, headers=feeders.dentist).json()["total"] == 1
    assert feeders.client.get(f"/fhir/Consent/{consent['id']}", headers=feeders.gp).status_code == 404
    with demo.db.unit_of_work() as db:
        entries = db.scalars(
            select(AuditEntry)
            .where(AuditEntry.patient_id == feeders.patient_id, AuditEntry.action == "consent.read")
            .order_by(AuditEntry.seq)
        ).all()
    assert [(e.actor_label, e.outcome) for e in entries] == [
        ("Dr Dominique ORSINI", "allow"),
        ("Dr Dominique ORSINI", "allow"),
        ("Dr Jean-Baptiste FERRACCI", "deny"),
    ]
    assert entries[0].resource_id == consent["id"] and entries[1].details["consentements"] == 1


def test_consents_need_their_smart_scopes(feeders: Feeders, demo: Services) -> None:
    """SMART v2: recording needs system/Consent.c, reading .r, searching .s; TD0.2 needs system/Patient.s."""
    with demo.db.unit_of_work() as db:
        created = create_client(db, "Logiciel restreint", rpps=DENTIST_RPPS)
    response = feeders.client.post(
        "/oauth/token",
        data={
            "grant_type": "client_credentials",
            "client_id": created.client_id,
            "client_secret": created.client_secret,
            "scope": "system/DocumentReference.rs",
        },
    )
    assert response.status_code == 200, response.text
    narrow = {"Authorization": f"Bearer {response.json()['access_token']}"}
    for answer in (
        post_consent(feeders, narrow, consent_body(feeders.ins)),
        feeders.client.get("/fhir/Consent/inconnu", headers=narrow),
        feeders.client.get(f"/fhir/Consent?patient.identifier={INS_SYSTEM}|{feeders.ins}", headers=narrow),
        td02(feeders, narrow),
    ):
        assert answer.status_code == 403, answer.text
        assert answer.json()["resourceType"] == "OperationOutcome"
        assert "portée" in answer.json()["issue"][0]["diagnostics"]
    with demo.db.unit_of_work() as db:
        assert db.scalars(select(AccessGrant).where(AccessGrant.origin == "fhir")).all() == []
