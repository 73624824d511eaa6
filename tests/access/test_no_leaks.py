"""ACC-5 through the interfaces: what the policy denies is neither listed, searchable, downloadable nor counted.

The hospital laboratory deposits over MHD five documents, each with a word of its own in its title and body:
an ordinary one, advance directives (DIR_ANT), one masked from professionals (MASQUE_PS), one pending the
announcement consultation (INVISIBLE_PATIENT) and one the minor hid from their parents
(INVISIBLE_REPRESENTANTS_LEGAUX). Then each viewer — the patient, the médecin traitant, the dentist before and
after consent, the laboratory (their author), a parent in the child's space — looks for them everywhere they
can: ITI-67 search (total, entries, filters, paging), ITI-68 and the DocumentReference read, the portal's list
(counts per category), word search, document page, preview, download, deletion page and history. A document
the viewer may not see appears nowhere, and asking for it gets exactly the answer a document that does not
exist gets (compared after putting one id for the other). Professionals reading the patient's pages are sent,
with nothing of the person, to the professional view (/pro/patients/…), which is checked the same way.
SQLite and PostgreSQL.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.identity.service import auth
from carnet.people.tables import Account, Patient, Professional
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import Actors, Feeders
from tests.support.documents import INS_SYSTEM, document_entry, make_pdf, provide_bundle

FHIR = {"Content-Type": "application/fhir+json"}
BIOLOGY, DIRECTIVES, NOBODYS_TYPE = "11502-2", "42348-3", "87273-9"


@dataclass(frozen=True)
class Kind:
    type_code: str
    label: str | None
    word: str  # in the title and the body, in no other document


KINDS = {
    "ordinaire": Kind(BIOLOGY, None, "azurite"),
    "directives": Kind(DIRECTIVES, None, "bergamote"),
    "masque": Kind(BIOLOGY, "MASQUE_PS", "cormoran"),
    "annonce": Kind(BIOLOGY, "INVISIBLE_PATIENT", "dromadaire"),
    "confidentiel": Kind(BIOLOGY, "INVISIBLE_REPRESENTANTS_LEGAUX", "escarboucle"),
}
EVERYTHING = set(KINDS)
NOWHERE = "xylophage"  # a word of no document
SEES = {  # what each viewer may see (ACC-1..4, VLT-5, VLT-6, FAM-2)
    "patient": EVERYTHING - {"annonce"},
    "médecin traitant": EVERYTHING,
    "dentiste autorisé": {"ordinaire", "annonce", "confidentiel"},  # the matrix: no DIR_ANT; nothing masked
    "dentiste sans consentement": set(),
    "laboratoire (auteur)": EVERYTHING,
    "parent": EVERYTHING - {"annonce", "confidentiel"},
}


def title(kind: str) -> str:
    return f"Document {KINDS[kind].word}"


@dataclass(frozen=True)
class Space:
    patient_id: str
    ins: str
    ids: dict[str, str]  # kind → document id
    names: tuple[str, ...] = ()  # the person's names: in no answer to someone who may not enter


def names_of(services: Services, patient_id: str) -> tuple[str, ...]:
    with services.db.unit_of_work() as db:
        patient = db.get(Patient, patient_id)
        assert patient is not None
        names = tuple(n for n in (patient.birth_name, patient.used_name, patient.first_names) if n)
    assert names
    return names


def deposit_five(feeders: Feeders, ins: str, patient_id: str, names: tuple[str, ...] = ()) -> Space:
    ids = {}
    for kind, spec in KINDS.items():
        labels = [(CONFIDENTIALITY_SYSTEM_FR, spec.label)] if spec.label else None
        entry = document_entry(
            ins,
            make_pdf(f"Contenu {spec.word} du document"),
            type_code=spec.type_code,
            title=title(kind),
            labels=labels,
        )
        response = feeders.client.post("/fhir", json=provide_bundle(entry), headers={**feeders.lab, **FHIR})
        assert response.status_code == 200, response.text
        ids[kind] = response.json()["entry"][1]["response"]["location"].split("/")[1]
    return Space(patient_id, ins, ids, names)


@pytest.fixture
def space(feeders: Feeders, demo: Services) -> Space:
    """Marie-Ange Santoni's space with the five documents."""
    return deposit_five(feeders, feeders.ins, feeders.patient_id, names_of(demo, feeders.patient_id))


@pytest.fixture
def child_space(feeders: Feeders, demo: Services) -> Space:
    """Lisandru's space (a minor attached to Laetitia Casanova) with the five documents."""
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient).where(Patient.first_names == "Lisandru"))
        assert child is not None
        child_id, child_ins = child.id, child.ins
    return deposit_five(feeders, child_ins, child_id, names_of(demo, child_id))


def authorise_dentist(demo: Services, patient_id: str) -> None:
    """ACC-1: the patient authorises Dr Orsini (chirurgien-dentiste) in the portal's way."""
    with demo.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.patient_id == patient_id))
        dentist = db.scalar(select(Professional.id).where(Professional.rpps == "10003456789"))
        assert account is not None and dentist is not None
        access.grant(db, auth.actor_for(db, account), patient_id, professional_id=dentist)


# ------------------------------------------------------------------ comparing answers


def normalised(text: str, *replacements: tuple[str, str]) -> str:
    """An answer with the per-request values (form tokens, nonces, request ids) and the given strings blanked."""
    for old, new in replacements:
        text = text.replace(old, new)
    text = re.sub(r'(name="csrf_token" value=")[^"]*', r"\1…", text)
    text = re.sub(r'nonce="[^"]*"', 'nonce="…"', text)
    return text


def same_answer(first: Any, second: Any, first_id: str, second_id: str, what: str) -> None:
    """Two responses are the same once one id is put for the other: nothing tells them apart."""
    assert first.status_code == second.status_code, what
    assert first.headers.get("content-type") == second.headers.get("content-type"), what
    assert normalised(first.text, (first_id, "ID")) == normalised(second.text, (second_id, "ID")), what


def hidden_nowhere(text: str, space: Space, hidden: set[str], what: str) -> None:
    for kind in hidden:
        for secret in (KINDS[kind].word, space.ids[kind]):
            assert secret not in text, f"{what} : « {secret} » ({kind}) ne devrait pas apparaître"


# ------------------------------------------------------------------ ITI-67 / ITI-68 (professional software)


def fhir_search(client: TestClient, headers: dict[str, str], ins: str, query: str = "") -> Any:
    return client.get(f"/fhir/DocumentReference?patient.identifier={INS_SYSTEM}|{ins}{query}", headers=headers)


def found(response: Any) -> set[str]:
    assert response.status_code == 200, response.text
    return {e["resource"]["id"] for e in response.json().get("entry", [])}


def check_fhir(client: TestClient, headers: dict[str, str], space: Space, sees: set[str]) -> None:
    hidden = EVERYTHING - sees
    visible_ids = {space.ids[k] for k in sees}
    listing = fhir_search(client, headers, space.ins)
    assert found(listing) == visible_ids
    assert listing.json()["total"] == len(sees)
    hidden_nowhere(listing.text, space, hidden, "ITI-67")

    # Filters: by type, by date, paging. A type only hidden documents have answers like a type nobody has.
    nobody = fhir_search(client, headers, space.ins, f"&type=http://loinc.org|{NOBODYS_TYPE}")
    for type_code in (BIOLOGY, DIRECTIVES):
        typed = fhir_search(client, headers, space.ins, f"&type=http://loinc.org|{type_code}")
        expected = {space.ids[k] for k in sees if KINDS[k].type_code == type_code}
        assert found(typed) == expected and typed.json()["total"] == len(expected)
        hidden_nowhere(typed.text, space, hidden, f"ITI-67 type={type_code}")
        if not expected:
            same_answer(typed, nobody, type_code, NOBODYS_TYPE, f"ITI-67 type={type_code}")
    dated = fhir_search(client, headers, space.ins, "&date=ge2000-01-01&status=current,superseded,entered-in-error")
    assert found(dated) == visible_ids and dated.json()["total"] == len(sees)
    for category in ("DIR_ANT", "BIOLOGIE"):
        filtered = fhir_search(client, headers, space.ins, f"&category={category}")
        assert found(filtered) <= visible_ids
        assert filtered.json()["total"] == len(found(filtered))  # counts what it lists, never a hidden document
        hidden_nowhere(filtered.text, space, hidden, f"ITI-67 category={category}")
    paged: set[str] = set()
    for offset in range(len(EVERYTHING) + 1):
        page = fhir_search(client, headers, space.ins, f"&_count=1&_offset={offset}")
        assert page.json()["total"] == len(sees)
        hidden_nowhere(page.text, space, hidden, "ITI-67 paging")
        paged |= found(page)
    assert paged == visible_ids

    # ITI-68, the DocumentReference read and a JSON Patch: a hidden document is a document that does not exist.
    missing = str(uuid.uuid4())
    patch = [{"op": "replace", "path": "/status", "value": "entered-in-error"}]
    for kind in hidden:
        document_id = space.ids[kind]
        for path in ("/fhir/Binary/{}", "/fhir/DocumentReference/{}"):
            denied = client.get(path.format(document_id), headers=headers)
            assert denied.status_code in {403, 404} and denied.json()["resourceType"] == "OperationOutcome"
            same_answer(denied, client.get(path.format(missing), headers=headers), document_id, missing, path)
            hidden_nowhere(denied.text, space, hidden, path)
    for kind in sees:
        binary = client.get(f"/fhir/Binary/{space.ids[kind]}", headers=headers)
        assert binary.status_code == 200 and KINDS[kind].word.encode() in binary.content
        reference = client.get(f"/fhir/DocumentReference/{space.ids[kind]}", headers=headers)
        assert reference.status_code == 200 and reference.json()["description"] == title(kind)
    for kind in hidden:  # last: a wrongly allowed patch would change what the loops above see
        document_id = space.ids[kind]
        refused = client.patch(f"/fhir/DocumentReference/{document_id}", json=patch, headers={**headers, **FHIR})
        absent = client.patch(f"/fhir/DocumentReference/{missing}", json=patch, headers={**headers, **FHIR})
        same_answer(refused, absent, document_id, missing, "PATCH")


# ------------------------------------------------------------------ the portal's pages


def seen(response: Any) -> str:
    """The words a person reads on the page (tags removed, spaces collapsed)."""
    return " ".join(re.sub(r"<[^>]+>", " ", text_of(response)).split())


def n_documents(count: int) -> str:
    return f"— {count} document{'s' if count > 1 else ''}"


@dataclass(frozen=True)
class Pages:
    """A portal's document pages: the patient's (/espace) or the professional's (/pro/patients)."""

    prefix: str
    counts: Callable[[set[str]], list[str]]  # what the list says it holds, for what the viewer sees

    def base(self, space: Space) -> str:
        return self.prefix.format(space.patient_id)


PATIENT_PAGES = Pages(
    "/espace/{}/documents",
    lambda sees: [
        f"Tous les documents ({len(sees)})",
        f"Tous les documents {n_documents(len(sees))}",
        f"Résultats de biologie ({sum(1 for k in sees if KINDS[k].type_code == BIOLOGY)})",
        f"Directives anticipées ({int('directives' in sees)})",
    ],
)
PRO_PAGES = Pages("/pro/patients/{}/documents", lambda sees: [f"Documents {n_documents(len(sees))}"])


def like_missing(client: TestClient, base: str, space: Space, kinds: set[str], hidden: set[str]) -> None:
    """One document — page, preview, download — answers as a document that does not exist."""
    missing = str(uuid.uuid4())
    for path in ("/{}", "/{}/apercu", "/{}/telecharger"):
        expected = client.get(base + path.format(missing))
        for kind in kinds:
            document_id = space.ids[kind]
            denied = client.get(base + path.format(document_id))
            assert denied.status_code in {403, 404}, (kind, path)
            same_answer(denied, expected, document_id, missing, f"{kind} {path}")
            hidden_nowhere(denied.text, space, hidden, path)


def check_portal(client: TestClient, pages: Pages, space: Space, sees: set[str]) -> None:
    hidden = EVERYTHING - sees
    base = pages.base(space)
    listing = client.get(base)
    assert listing.status_code == 200, listing.text
    hidden_nowhere(listing.text, space, hidden, "liste")
    text = seen(listing)
    for kind in sees:
        assert title(kind) in text
    for count in pages.counts(sees):
        assert count in text, count
    for category, kinds in (("DIR_ANT", {"directives"}), ("BIOLOGIE", EVERYTHING - {"directives"})):
        filtered = client.get(f"{base}?categorie={category}")
        hidden_nowhere(filtered.text, space, hidden, f"catégorie {category}")
        assert n_documents(len(kinds & sees)) in seen(filtered), category

    # Word search: a hidden document's word finds what a word of no document finds.
    nothing = client.get(f"{base}?q={NOWHERE}")
    assert "Aucun document ne correspond à votre recherche." in seen(nothing)
    for kind, spec in KINDS.items():
        result = client.get(f"{base}?q={spec.word}")
        if kind in sees:
            assert title(kind) in seen(result) and n_documents(1) in seen(result), kind
        else:
            same_answer(result, nothing, spec.word, NOWHERE, f"recherche « {spec.word} »")

    like_missing(client, base, space, hidden, hidden)
    for kind in sees:
        page = client.get(f"{base}/{space.ids[kind]}")
        assert page.status_code == 200 and title(kind) in seen(page)
        hidden_nowhere(page.text, space, hidden, "page d'un document visible")
        for path in ("apercu", "telecharger"):
            body = client.get(f"{base}/{space.ids[kind]}/{path}")
            assert body.status_code == 200 and KINDS[kind].word.encode() in body.content, path


def refused_everywhere(client: TestClient, pages: Pages, space: Space) -> None:
    """A viewer who may not enter the space: the list refused, and every document like a missing one."""
    base = pages.base(space)
    for path in ("", f"?q={KINDS['ordinaire'].word}", "?categorie=BIOLOGIE"):
        response = client.get(base + path)
        assert response.status_code == 403, path
        hidden_nowhere(response.text, space, EVERYTHING, path)
        for secret in (space.ins, *space.names):
            assert secret not in response.text, f"{path} : « {secret} »"
    like_missing(client, base, space, EVERYTHING, EVERYTHING)


def sent_to_pro_view(client: TestClient, space: Space) -> None:
    """A professional opening the patient's pages — list, search, filter, every document (shown, previewed,
    downloaded, to delete), hidden or not, and one that does not exist — is sent to the professional view of
    the space, always the same address (no word, no document id in it), with nothing of the person in the
    answer. What the professional may see there is the policy's answer (check_portal, refused_everywhere)."""
    base = PATIENT_PAGES.base(space)
    paths = ["", f"?q={NOWHERE}", "?categorie=BIOLOGIE", "?categorie=DIR_ANT"]
    paths += [f"?q={spec.word}" for spec in KINDS.values()]
    for document_id in [*space.ids.values(), str(uuid.uuid4())]:
        paths += [f"/{document_id}", f"/{document_id}/apercu", f"/{document_id}/telecharger"]
        paths += [f"/supprimer?ids={document_id}"]
    for path in paths:
        response = client.get(base + path)
        assert response.status_code == 303, path
        assert response.headers["location"] == f"/pro/patients/{space.patient_id}/documents", path
        hidden_nowhere(response.text, space, EVERYTHING, f"redirection {path}")
        for secret in (space.ins, *space.names):
            assert secret not in response.text, f"redirection {path} : « {secret} »"


# ------------------------------------------------------------------ the viewers


def test_the_dentist_without_consent_finds_nothing_anywhere(feeders: Feeders, actors: Actors, space: Space) -> None:
    """ACC-1: over MHD the search is limited to what the dentist wrote (nothing); the portals refuse."""
    check_fhir(feeders.client, feeders.dentist, space, SEES["dentiste sans consentement"])
    sent_to_pro_view(actors.unauthorised, space)
    refused_everywhere(actors.unauthorised, PRO_PAGES, space)


def test_the_authorised_dentist_sees_neither_advance_directives_nor_masked_documents(
    feeders: Feeders, actors: Actors, space: Space, demo: Services
) -> None:
    """ACC-1 (the matrix), VLT-5: after consent, the dentist's software and the dentist in the portal."""
    authorise_dentist(demo, space.patient_id)
    check_fhir(feeders.client, feeders.dentist, space, SEES["dentiste autorisé"])
    sent_to_pro_view(actors.unauthorised, space)
    check_portal(actors.unauthorised, PRO_PAGES, space, SEES["dentiste autorisé"])


def test_the_medecin_traitant_sees_everything(feeders: Feeders, actors: Actors, space: Space) -> None:
    """ACC-2: masked documents and advance directives included; the pending announcement too (VLT-6)."""
    check_fhir(feeders.client, feeders.gp, space, SEES["médecin traitant"])
    check_portal(actors.professional, PRO_PAGES, space, SEES["médecin traitant"])


def test_the_laboratory_finds_everything_it_deposited(feeders: Feeders, space: Space) -> None:
    """VLT-5: the author sees their documents, masked or not, without any consent."""
    check_fhir(feeders.client, feeders.lab, space, SEES["laboratoire (auteur)"])


def test_the_patient_sees_all_but_the_pending_announcement(actors: Actors, space: Space) -> None:
    """VLT-6: not before the announcement consultation — not even counted; nor can it be masked or deleted."""
    check_portal(actors.patient, PATIENT_PAGES, space, SEES["patient"])
    base = PATIENT_PAGES.base(space)
    missing, hidden = str(uuid.uuid4()), space.ids["annonce"]
    deletion = [actors.patient.get(f"{base}/supprimer?ids={i}") for i in (hidden, missing)]
    same_answer(deletion[0], deletion[1], hidden, missing, "page de suppression")
    csrf = csrf_of(actors.patient.get(base).text)
    for path, form in (("/{}/masquage", {"masquer": "oui"}), ("/supprimer", {"ids": "{}", "confirmer": "oui"})):
        answers = [
            actors.patient.post(
                base + path.format(i), data={**{k: v.format(i) for k, v in form.items()}, "csrf_token": csrf}
            )
            for i in (hidden, missing)
        ]
        same_answer(answers[0], answers[1], hidden, missing, path)


def test_a_parent_sees_neither_the_minors_confidential_documents_nor_the_pending_one(
    demo: Services, new_client: Callable[[], TestClient], actors: Actors, child_space: Space
) -> None:
    """FAM-2 (INVISIBLE_REPRESENTANTS_LEGAUX), VLT-6; other people see nothing of the child's space."""
    parent = new_client()
    log_in(parent, demo, "laetitia.casanova")
    check_portal(parent, PATIENT_PAGES, child_space, SEES["parent"])
    for stranger in (actors.patient, actors.stranger):
        refused_everywhere(stranger, PATIENT_PAGES, child_space)
    for professional in (actors.unauthorised, actors.professional):
        sent_to_pro_view(professional, child_space)
        refused_everywhere(professional, PRO_PAGES, child_space)


def test_the_history_does_not_tell_of_documents_the_viewer_may_not_see(
    demo: Services, new_client: Callable[[], TestClient], actors: Actors, child_space: Space, space: Space
) -> None:
    """FAM-2, VLT-6: a parent does not learn from the history that a confidential document was deposited
    (when, by whom), nor the patient that an announcement is pending; and a refused look at a hidden
    document reads in the history like one at a document that does not exist."""
    parent = new_client()
    log_in(parent, demo, "laetitia.casanova")
    for client, where, sees in (
        (parent, child_space, SEES["parent"]),
        (actors.patient, space, SEES["patient"]),
    ):
        hidden = EVERYTHING - sees
        base = PATIENT_PAGES.base(where)
        for kind in hidden:
            client.get(f"{base}/{where.ids[kind]}")
        client.get(f"{base}/{uuid.uuid4()}")
        history = seen(client.get(f"/espace/{where.patient_id}/historique"))
        hidden_nowhere(history, where, hidden, "historique")
        assert history.count("a déposé un document") == len(sees)
        # The look at a missing document is in no space's history: the looks at hidden ones are not either.
        assert "tenté une consultation d'un document" not in history
        for reason in ("n'est pas visible des", "consultation d'annonce"):
            assert reason not in history
