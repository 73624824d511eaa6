"""Minors and caregivers (FAM-1..3) through the pages and the services, with the three actors: the person (or
their parent), the invited relative, strangers (another patient, a professional).

FAM-1: the parent invites the second legal representative (NIR + e-mail); only the person with that NIR can
accept; the second parent then acts in the child's space without the documents hidden from representatives.
FAM-2: at 18 the job detaches the space and tells the former representatives. FAM-3: up to 3 caregivers
per person, 5 persons per caregiver; a caregiver reads, adds and masks but changes no setting, access or
contact, and neither closes nor deletes anything; removal ends access at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from carnet.access.service import grants as access
from carnet.bootstrap import Services
from carnet.demo import DEMO_PASSWORD
from carnet.enrolment.model import activation_codes as codes
from carnet.enrolment.tables import Campaign, Invitation
from carnet.family import service as family
from carnet.family.tables import Caregiver, LegalRepresentative, SpaceInvitation
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.identity.service.auth import actor_for, hash_password
from carnet.people.model.identifiers import format_nir, nir_from_body
from carnet.people.tables import Account, Patient, Professional
from carnet.storage.types import utcnow
from carnet.vault.model.documents import CONFIDENTIALITY_SYSTEM_FR
from carnet.vault.tables import Document
from tests.conftest import csrf_of, log_in, outbox_messages, text_of
from tests.support.actors import PATIENT, STRANGER, Actors, Feeders
from tests.support.documents import document_entry, make_pdf, provide_bundle

FATHER = "ghjuvanni.casanova"
FATHER_NIR = nir_from_body("186042B033077")
INVITE_TEXT = "Vous êtes invité(e) à accéder à l'espace santé d'un enfant dont vous êtes représentant légal"
REFUSED = "Vous n'avez pas accès à cet espace."

NewClient = Callable[[], TestClient]


# --- helpers ------------------------------------------------------------------------------------------


def add_person(
    services: Services,
    login: str | None,
    body: str,
    first: str,
    name: str,
    born: date,
    *,
    attached_to: str | None = None,
) -> str:
    """A patient with an open space (and an account when ``login`` is given), straight in the database."""
    with services.db.unit_of_work() as db:
        patient = Patient(
            ins=nir_from_body(body),
            birth_name=name,
            first_names=first,
            birth_date=born,
            sex="M" if body[0] == "1" else "F",
            birth_place=body[5:10],
            email=f"{login or 'famille.' + name.lower()}@exemple.fr",
            departement=body[5:7],
            attached_to_id=attached_to,
            status="active",
        )
        db.add(patient)
        db.flush()
        if login:
            db.add(
                Account(
                    kind="patient",
                    login=login,
                    email=f"{login}@exemple.fr",
                    password_hash=hash_password(services, DEMO_PASSWORD),
                    patient_id=patient.id,
                    display_name=f"{first} {name}",
                )
            )
        return patient.id


def patient_id_of(services: Services, **where: str) -> str:
    with services.db.unit_of_work() as db:
        found = db.scalar(select(Patient.id).filter_by(**where))
    assert found
    return found


def actor_of(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None
        return actor_for(db, account)


def mails_to(services: Services, address: str) -> list[str]:
    """The e-mails this address received, but the login codes."""
    texts = []
    for message in outbox_messages(services):
        if message["To"] == address and "connexion" not in message["Subject"].lower():  # type: ignore[index]
            texts.append(message.get_body(preferencelist=("plain",)).get_content())  # type: ignore[attr-defined]
    return texts


def visible(response: Any) -> str:
    """The words of the page, without the markup."""
    return " ".join(re.sub(r"<[^>]+>", " ", text_of(response)).split()).replace(" )", ")")


def token_in(text: str) -> str:
    match = re.search(r"/famille/invitation\?jeton=([A-Za-z0-9_-]+)", text)
    assert match, text
    return match.group(1)


def post_form(client: TestClient, page_url: str, action: str, data: dict[str, str] | None = None) -> Any:
    page = client.get(page_url)
    assert page.status_code == 200, text_of(page)
    return client.post(action, data={"csrf_token": csrf_of(page.text), **(data or {})})


def accept(client: TestClient, token: str) -> Any:
    """Open the link, then press « Accepter » (the form is posted even when the page refused to show it)."""
    page = client.get(f"/famille/invitation?jeton={token}")
    return client.post("/famille/invitation", data={"csrf_token": csrf_of(page.text), "jeton": token})


def audit_actions(services: Services, patient_id: str) -> list[str]:
    with services.db.unit_of_work() as db:
        return list(
            db.scalars(
                select(AuditEntry.action).where(AuditEntry.patient_id == patient_id, AuditEntry.outcome == "allow")
            )
        )


@dataclass
class Family:
    child_id: str
    child_ins: str
    father_id: str


@pytest.fixture
def casanova(demo: Services) -> Family:
    """Lisandru (attached to his mother Laetitia) and his father, who has his own space and account."""
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient).where(Patient.first_names == "Lisandru"))
        assert child is not None
        child_id, child_ins = child.id, child.ins
    father_id = add_person(demo, FATHER, FATHER_NIR[:13], "Ghjuvanni", "CASANOVA", date(1986, 4, 2))
    return Family(child_id, child_ins, father_id)


def invite_father(mother: TestClient, demo: Services, family_: Family, nir: str = format_nir(FATHER_NIR)) -> Any:
    page = f"/espace/{family_.child_id}/famille"
    return post_form(mother, page, f"{page}/representant", {"nir": nir, "email": f"{FATHER}@exemple.fr"})


# --- FAM-1: the second legal representative -----------------------------------------------------------


def test_the_second_parent_accepts_and_acts_in_the_childs_space_without_the_hidden_documents(
    demo: Services, casanova: Family, feeders: Feeders, new_client: NewClient
) -> None:
    hidden = [(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_REPRESENTANTS_LEGAUX")]
    bundle = provide_bundle(
        document_entry(casanova.child_ins, make_pdf("Vaccins"), title="Carnet de vaccination"),
        document_entry(
            casanova.child_ins,
            make_pdf("Consultation confidentielle"),
            title="Consultation confidentielle",
            labels=hidden,
        ),
    )
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200

    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    page = mother.get(f"/espace/{casanova.child_id}/famille")
    assert page.status_code == 200
    assert "Inviter le second représentant légal" in text_of(page) and "Laetitia CASANOVA" in text_of(page)
    sent = invite_father(mother, demo, casanova)
    assert sent.status_code == 303, text_of(sent)
    listing = text_of(mother.get(sent.headers["location"]))
    assert "L'invitation a été envoyée" in listing and f"Envoyée à {FATHER}@exemple.fr" in listing
    assert "Inviter le second représentant légal" not in listing  # one pending invitation fills the second place

    (mail,) = mails_to(demo, f"{FATHER}@exemple.fr")
    assert INVITE_TEXT in mail and "Lisandru" not in mail and "Vaccin" not in mail
    token = token_in(mail)
    with demo.db.unit_of_work() as db:
        invitation = db.scalar(select(SpaceInvitation).where(SpaceInvitation.patient_id == casanova.child_id))
        assert invitation is not None and invitation.kind == "representative" and invitation.nir == FATHER_NIR
        assert invitation.token_hash == family.token_hash(token) and token not in invitation.token_hash
        assert timedelta(days=13, hours=23) < invitation.expires_at - invitation.created_at <= timedelta(days=14)

    # a stranger with the link: refused, the child not named, the invitation still usable
    stranger = new_client()
    log_in(stranger, demo, STRANGER)
    shown = stranger.get(f"/famille/invitation?jeton={token}")
    assert shown.status_code == 200 and "Lisandru" not in text_of(shown)
    refused = accept(stranger, token)
    assert refused.status_code == 403
    assert "ne correspond pas" in text_of(refused) and "Lisandru" not in text_of(refused)
    assert stranger.get(f"/espace/{casanova.child_id}").status_code == 403

    father = new_client()  # not logged in yet: the login brings him back to the invitation
    anonymous = father.get(f"/famille/invitation?jeton={token}")
    assert anonymous.status_code == 200 and "connectez-vous à votre propre espace santé" in text_of(anonymous)
    login_link = re.search(r'href="(/connexion\?suite=[^"]+)"', text_of(anonymous))
    assert login_link is not None and token not in login_link.group(1).split("suite=")[0]
    assert father.get(login_link.group(1)).status_code == 200
    landed = log_in(father, demo, FATHER)
    assert landed.headers["location"] == f"/famille/invitation?jeton={token}"
    accepted = accept(father, token)
    assert accepted.status_code == 303 and accepted.headers["location"] == "/famille?message=invitation-acceptee"
    spaces = text_of(father.get("/famille?message=invitation-acceptee"))
    assert "Invitation acceptée" in spaces and "Espace de Lisandru CASANOVA" in spaces
    assert "Vous êtes son représentant légal." in spaces
    home = visible(father.get(f"/espace/{casanova.child_id}"))
    assert "Vous agissez dans l'espace de Lisandru CASANOVA (en tant que représentant légal)" in home
    documents = text_of(father.get(f"/espace/{casanova.child_id}/documents"))
    assert "Carnet de vaccination" in documents and "Consultation confidentielle" not in documents
    with demo.db.unit_of_work() as db:
        assert db.get(LegalRepresentative, (casanova.child_id, casanova.father_id)) is not None
        hidden_id = db.scalar(select(Document.id).where(Document.title == "Consultation confidentielle"))
    assert father.get(f"/espace/{casanova.child_id}/documents/{hidden_id}").status_code in {403, 404}
    assert "family.representative_added" in audit_actions(demo, casanova.child_id)
    assert "Vous agissez dans l'espace" not in visible(father.get(f"/espace/{casanova.father_id}"))

    again = accept(father, token)  # single use
    assert again.status_code == 410 and "déjà été acceptée" in text_of(again)
    both = text_of(mother.get(f"/espace/{casanova.child_id}/famille"))
    assert "Ghjuvanni CASANOVA" in both and "Inviter le second représentant légal" not in both


def test_an_expired_or_cancelled_invitation_is_refused_in_french(
    demo: Services, casanova: Family, new_client: NewClient
) -> None:
    mother = actor_of(demo, "laetitia.casanova")
    old = family.invite_representative(
        demo, mother, casanova.child_id, FATHER_NIR, f"{FATHER}@exemple.fr", now=utcnow() - timedelta(days=15)
    )
    assert isinstance(old, family.Invited)
    father = new_client()
    log_in(father, demo, FATHER)
    page = father.get(f"/famille/invitation?jeton={old.token}")
    assert page.status_code == 410 and "Cette invitation a expiré" in text_of(page)
    assert accept(father, old.token).status_code == 410
    fresh = family.invite_representative(
        demo, mother, casanova.child_id, FATHER_NIR, f"{FATHER}@exemple.fr"
    )  # the expired one no longer counts
    assert isinstance(fresh, family.Invited)
    parent = new_client()
    log_in(parent, demo, "laetitia.casanova")
    cancelled = post_form(
        parent,
        f"/espace/{casanova.child_id}/famille",
        f"/espace/{casanova.child_id}/famille/invitations/{fresh.invitation_id}/annuler",
    )
    assert cancelled.status_code == 303
    page = father.get(f"/famille/invitation?jeton={fresh.token}")
    assert page.status_code == 410 and "a été annulée" in text_of(page)
    unknown = father.get("/famille/invitation?jeton=inconnu")
    assert unknown.status_code == 404 and "n'est pas valable" in text_of(unknown)
    with demo.db.unit_of_work() as db:
        assert db.get(LegalRepresentative, (casanova.child_id, casanova.father_id)) is None


def test_only_a_legal_representative_invites_for_a_child(
    demo: Services, casanova: Family, actors: Actors, new_client: NewClient
) -> None:
    action = f"/espace/{casanova.child_id}/famille/representant"
    data = {"nir": FATHER_NIR, "email": f"{FATHER}@exemple.fr"}
    for who in (actors.stranger, actors.patient, actors.professional, actors.unauthorised):
        page = who.get(f"/espace/{casanova.child_id}/famille")
        if who in (actors.professional, actors.unauthorised):  # sent to the professional view (ACC-1)
            assert page.status_code == 303
            assert page.headers["location"] == f"/pro/patients/{casanova.child_id}/documents"
            assert "Lisandru" not in page.text and "CASANOVA" not in page.text
            page = who.get(page.headers["location"])  # which the policy refuses: neither parent nor authorised
        assert page.status_code == 403 and "Lisandru" not in text_of(page)
        token = csrf_of(who.get("/famille", follow_redirects=True).text)
        refused = who.post(action, data={**data, "csrf_token": token})
        assert refused.status_code == 403 and REFUSED in text_of(refused)
    assert actors.anonymous.post(action, data=data).status_code == 403  # no CSRF token, no session
    assert mails_to(demo, f"{FATHER}@exemple.fr") == []
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(SpaceInvitation)) == 0
    stranger = actor_of(demo, STRANGER)
    with pytest.raises(AccessDenied):
        family.invite_representative(demo, stranger, casanova.child_id, FATHER_NIR, "x@exemple.fr")

    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    bad = invite_father(mother, demo, casanova, nir="1 86 04 2B 033 077 00")
    assert bad.status_code == 400 and "clé" in text_of(bad)
    own_child = invite_father(mother, demo, casanova, nir=casanova.child_ins)
    assert own_child.status_code == 400 and "celui de l'enfant" in text_of(own_child)
    herself = invite_father(mother, demo, casanova, nir=patient_id_ins(demo, "Laetitia"))
    assert herself.status_code == 400 and "déjà représentant légal" in text_of(herself)


def patient_id_ins(services: Services, first: str) -> str:
    with services.db.unit_of_work() as db:
        ins = db.scalar(select(Patient.ins).where(Patient.first_names == first))
    assert ins
    return ins


def test_an_adult_cannot_be_given_a_legal_representative(demo: Services, actors: Actors) -> None:
    page = f"/espace/{actors.patient_id}/famille"
    text = text_of(actors.patient.get(page))
    assert "Mes aidants" in text and "second représentant légal" not in text
    refused = post_form(actors.patient, page, f"{page}/representant", {"nir": FATHER_NIR, "email": "a@exemple.fr"})
    # issue #15-17: the policy keeps this invitation to a child's legal representatives (FAM-1): a 403
    assert refused.status_code == 403 and REFUSED in text_of(refused)
    assert mails_to(demo, "a@exemple.fr") == []
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(func.count()).select_from(SpaceInvitation)) == 0


def test_a_minor_cannot_invite_a_legal_representative_for_themselves(demo: Services, casanova: Family) -> None:
    child = Actor(ActorKind.PATIENT, None, "Lisandru CASANOVA", patient_id=casanova.child_id)
    with pytest.raises(AccessDenied):
        family.invite_representative(demo, child, casanova.child_id, FATHER_NIR, f"{FATHER}@exemple.fr")


# --- FAM-2: at 18 the person takes over -----------------------------------------------------------------

NOW = datetime(2026, 6, 15, 9, 0, tzinfo=UTC)


def test_at_18_the_space_is_detached_and_the_parents_are_told(demo: Services, casanova: Family) -> None:
    mother_id = patient_id_of(demo, first_names="Laetitia")
    adult = add_person(demo, None, "108062B033015", "Paulu", "CASANOVA", date(2008, 6, 15), attached_to=mother_id)
    almost = add_person(demo, None, "108062B033016", "Maria", "CASANOVA", date(2008, 6, 16), attached_to=mother_id)
    with demo.db.unit_of_work() as db:
        db.add(LegalRepresentative(minor_id=adult, representative_id=casanova.father_id))
        db.add(LegalRepresentative(minor_id=almost, representative_id=casanova.father_id))
        campaign = Campaign(departements=["2B"], started_by="test")
        db.add(campaign)
        db.flush()
        code = codes.new_code()
        db.add(  # his code served when his mother activated her space (and his, attached)
            Invitation(
                patient_id=adult,
                campaign_id=campaign.id,
                channel="email",
                status="sent",
                code_hash=demo.keys.mac(codes.MAC_PURPOSE, code),
                code_sealed=demo.keys.seal(code, codes.SEAL_PURPOSE),
                code_expires_at=NOW - timedelta(days=300),
                code_used_at=NOW - timedelta(days=400),
            )
        )

    assert family.majority(demo, now=NOW) == 1
    with demo.db.unit_of_work() as db:
        paulu = db.get(Patient, adult)
        assert paulu is not None and paulu.attached_to_id is None and paulu.status == "active"
        assert db.scalar(select(func.count()).where(LegalRepresentative.minor_id == adult)) == 0
        maria = db.get(Patient, almost)
        assert maria is not None and maria.attached_to_id == mother_id  # 18 tomorrow
        assert db.get(LegalRepresentative, (almost, casanova.father_id)) is not None
        entry = db.scalar(
            select(AuditEntry).where(AuditEntry.patient_id == adult, AuditEntry.action == "family.majority")
        )
        assert entry is not None and entry.details["representants_detaches"] == 2
    told = "Votre enfant a 18 ans : il gère désormais seul son espace santé. Vous n'y avez plus accès."
    for address in ("laetitia.casanova@exemple.fr", f"{FATHER}@exemple.fr"):
        (mail,) = mails_to(demo, address)
        assert told in mail and "Paulu" not in mail
    assert family.majority(demo, now=NOW) == 0  # idempotent: nothing more, no second e-mail
    assert len(mails_to(demo, "laetitia.casanova@exemple.fr")) == 1
    assert family.majority(demo, now=NOW + timedelta(days=1)) == 1  # Maria's turn


def test_a_young_adult_without_account_gets_a_new_activation_code_by_post(demo: Services) -> None:
    mother_id = patient_id_of(demo, first_names="Laetitia")
    adult = add_person(demo, None, "108062B033015", "Paulu", "CASANOVA", date(2008, 6, 15), attached_to=mother_id)
    with demo.db.unit_of_work() as db:
        campaign = Campaign(departements=["2B"], started_by="test")
        db.add(campaign)
        db.flush()
        code = codes.new_code()
        db.add(
            Invitation(
                patient_id=adult,
                campaign_id=campaign.id,
                channel="email",
                status="sent",
                code_hash=demo.keys.mac(codes.MAC_PURPOSE, code),
                code_sealed=demo.keys.seal(code, codes.SEAL_PURPOSE),
                code_expires_at=NOW - timedelta(days=300),
                code_used_at=NOW - timedelta(days=400),
            )
        )
    assert family.majority(demo, now=NOW) == 1
    with demo.db.unit_of_work() as db:
        invitation = db.scalar(select(Invitation).where(Invitation.patient_id == adult))
        assert invitation is not None
        assert invitation.channel == "letter" and invitation.status == "pending"
        assert invitation.code_used_at is None and invitation.code_expires_at > NOW


# --- FAM-3: caregivers ----------------------------------------------------------------------------------


def invite_caregiver(client: TestClient, patient_id: str, email: str) -> Any:
    page = f"/espace/{patient_id}/famille"
    return post_form(client, page, f"{page}/aidant", {"email": email})


def make_caregiver(demo: Services, helped: TestClient, helped_id: str, caregiver: TestClient, email: str) -> None:
    sent = invite_caregiver(helped, helped_id, email)
    assert sent.status_code == 303, text_of(sent)
    accepted = accept(caregiver, token_in(mails_to(demo, email)[-1]))
    assert accepted.status_code == 303, text_of(accepted)


def test_a_patient_invites_a_caregiver_who_accepts(demo: Services, actors: Actors) -> None:
    email = f"{STRANGER}@exemple.fr"
    sent = invite_caregiver(actors.patient, actors.patient_id, email)
    assert sent.status_code == 303
    (mail,) = mails_to(demo, email)
    assert "aidant" in mail and "Marie-Ange" not in mail and "SANTONI" not in mail
    token = token_in(mail)
    shown = text_of(actors.stranger.get(f"/famille/invitation?jeton={token}"))
    assert "Marie-Ange SANTONI vous invite à devenir son aidant" in shown
    professional = accept(actors.professional, token)
    assert professional.status_code == 403 and "compte personnel" in text_of(professional)
    assert accept(actors.stranger, token).status_code == 303
    assert "family.caregiver_added" in audit_actions(demo, actors.patient_id)
    spaces = text_of(actors.stranger.get("/famille"))
    assert "Espace de Marie-Ange SANTONI" in spaces and "Vous êtes son aidant." in spaces
    home = visible(actors.stranger.get(f"/espace/{actors.patient_id}"))
    assert "Vous agissez dans l'espace de Marie-Ange SANTONI (en tant qu'aidant)" in home
    mine = text_of(actors.patient.get(f"/espace/{actors.patient_id}/famille"))
    assert "Pierre-Paul LUCIANI" in mine and "Retirer Pierre-Paul LUCIANI" in mine


def test_three_caregivers_per_person_pending_invitations_included(demo: Services, actors: Actors) -> None:
    for n in range(1, 4):
        assert invite_caregiver(actors.patient, actors.patient_id, f"proche{n}@exemple.fr").status_code == 303
    fourth = invite_caregiver(actors.patient, actors.patient_id, "proche4@exemple.fr")
    assert fourth.status_code == 400
    assert "Vous avez déjà 3 aidants" in text_of(fourth)
    assert mails_to(demo, "proche4@exemple.fr") == []
    with demo.db.unit_of_work() as db:
        first = db.scalar(select(SpaceInvitation.id).where(SpaceInvitation.email == "proche1@exemple.fr"))
    page = f"/espace/{actors.patient_id}/famille"
    assert post_form(actors.patient, page, f"{page}/invitations/{first}/annuler").status_code == 303
    assert invite_caregiver(actors.patient, actors.patient_id, "proche4@exemple.fr").status_code == 303


def test_five_helped_persons_per_caregiver(demo: Services, actors: Actors) -> None:
    """Pierre-Paul already helps 5 people: a 6th invitation is refused, and one sent before cannot be accepted."""
    caregiver_id = patient_id_of(demo, first_names="Pierre-Paul")
    early = family.invite_caregiver(demo, actor_of(demo, PATIENT), actors.patient_id, f"{STRANGER}@exemple.fr")
    assert isinstance(early, family.Invited)
    for n in range(5):
        helped = add_person(demo, None, f"2500175056{n:03d}", f"Personne{n}", "AIDEE", date(1950, 1, 1))
        with demo.db.unit_of_work() as db:
            db.add(Caregiver(helped_id=helped, caregiver_id=caregiver_id))
    refused = accept(actors.stranger, early.token)
    assert refused.status_code == 400 and "Vous aidez déjà 5 personnes" in text_of(refused)
    # cancelled so that the helped person has room to invite again
    assert family.cancel_invitation(demo, actor_of(demo, PATIENT), actors.patient_id, early.invitation_id) is None
    sixth = invite_caregiver(actors.patient, actors.patient_id, f"{STRANGER}@exemple.fr")
    assert sixth.status_code == 400 and "Cet aidant aide déjà 5 personnes" in text_of(sixth)
    with demo.db.unit_of_work() as db:
        assert db.get(Caregiver, (actors.patient_id, caregiver_id)) is None


def test_acceptance_is_refused_when_the_person_already_has_three_caregivers(demo: Services, actors: Actors) -> None:
    pending = family.invite_caregiver(demo, actor_of(demo, PATIENT), actors.patient_id, f"{STRANGER}@exemple.fr")
    assert isinstance(pending, family.Invited)
    for n in range(3):  # added meanwhile by other means (e.g. before the limit existed)
        helper = add_person(demo, None, f"1700175056{n:03d}", f"Aidant{n}", "PROCHE", date(1970, 1, 1))
        with demo.db.unit_of_work() as db:
            db.add(Caregiver(helped_id=actors.patient_id, caregiver_id=helper))
    refused = accept(actors.stranger, pending.token)
    assert refused.status_code == 400 and "a déjà 3 aidants" in text_of(refused)


def test_a_caregiver_reads_adds_and_masks_but_manages_nothing(demo: Services, actors: Actors, feeders: Feeders) -> None:
    bundle = provide_bundle(document_entry(feeders.ins, make_pdf("NFS normale"), title="Numération sanguine"))
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    helper = actors.stranger
    base = f"/espace/{actors.patient_id}"
    with demo.db.unit_of_work() as db:
        document_id = db.scalar(select(Document.id).where(Document.title == "Numération sanguine"))
    assert "Numération sanguine" in text_of(helper.get(f"{base}/documents"))
    assert helper.get(f"{base}/documents/{document_id}/telecharger").status_code == 200
    assert helper.get(f"{base}/historique").status_code == 200

    upload_page = helper.get(f"{base}/documents/ajouter")
    added = helper.post(
        f"{base}/documents/ajouter",
        data={"csrf_token": csrf_of(upload_page.text), "type": "DOCPAT05", "titre": "Ordonnance scannée par l'aidant"},
        files={"fichier": ("ordonnance.pdf", make_pdf("Ordonnance"), "application/pdf")},
    )
    assert added.status_code == 303, text_of(added)
    assert "Ordonnance scannée par l'aidant" in text_of(actors.patient.get(f"{base}/documents"))
    masked = post_form(
        helper,
        f"{base}/documents/{document_id}",
        f"{base}/documents/{document_id}/masquage",
        {"masquer": "oui", "retour": "document"},
    )
    assert masked.status_code == 303
    with demo.db.unit_of_work() as db:
        document = db.get(Document, document_id)
        assert document is not None and document.masked

    token = csrf_of(helper.get(f"{base}/documents").text)
    forbidden = {
        f"{base}/parametres/notifications": {"notify_documents": ""},
        f"{base}/parametres/totp": {"etape": "commencer"},
        f"{base}/documents/masquage-par-defaut": {"actif": "oui"},
        f"{base}/parametres/fermer": {"mot_de_passe": DEMO_PASSWORD},
        f"{base}/parametres/supprimer": {"mot_de_passe": DEMO_PASSWORD, "confirmation": "SUPPRIMER"},
        f"{base}/documents/supprimer": {"ids": document_id or "", "confirmer": "oui"},
        f"{base}/famille/aidant": {"email": "autre@exemple.fr"},
        f"{base}/famille/aidants/{patient_id_of(demo, first_names='Pierre-Paul')}/retirer": {},
    }
    for action, data in forbidden.items():
        refused = helper.post(action, data={"csrf_token": token, **data})
        assert refused.status_code == 403, (action, refused.status_code)
        assert REFUSED in text_of(refused), action
    assert helper.get(f"{base}/famille").status_code == 403
    with demo.db.unit_of_work() as db:
        space = db.get(Patient, actors.patient_id)
        assert space is not None and space.status == "active"
        assert db.get(Document, document_id) is not None
        settings_changed = db.scalar(
            select(func.count()).where(
                AuditEntry.patient_id == actors.patient_id,
                AuditEntry.action == "settings.write",
                AuditEntry.outcome == "allow",
            )
        )
        assert settings_changed == 0
        pro = db.scalar(select(Professional.id).where(Professional.rpps == "10003456789"))
    caregiver = actor_of(demo, STRANGER)
    with demo.db.unit_of_work() as db, pytest.raises(AccessDenied):
        access.grant(db, caregiver, actors.patient_id, professional_id=pro)
    with pytest.raises(AccessDenied):
        family.invite_caregiver(demo, caregiver, actors.patient_id, "autre@exemple.fr")


def test_removing_a_caregiver_ends_access_at_once(demo: Services, actors: Actors) -> None:
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    base = f"/espace/{actors.patient_id}"
    assert actors.stranger.get(base).status_code == 200
    caregiver_id = patient_id_of(demo, first_names="Pierre-Paul")
    removed = post_form(actors.patient, f"{base}/famille", f"{base}/famille/aidants/{caregiver_id}/retirer")
    assert removed.status_code == 303
    assert actors.stranger.get(base).status_code == 403
    assert actors.stranger.get(f"{base}/documents").status_code == 403
    assert "Marie-Ange" not in text_of(actors.stranger.get("/famille"))
    assert "family.caregiver_removed" in audit_actions(demo, actors.patient_id)


def test_a_caregiver_stops_helping(demo: Services, actors: Actors) -> None:
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    stopped = post_form(actors.stranger, "/famille", f"/famille/aides/{actors.patient_id}/arreter")
    assert stopped.status_code == 303
    assert "Vous n'aidez plus cette personne" in text_of(actors.stranger.get("/famille?message=aide-arretee"))
    assert actors.stranger.get(f"/espace/{actors.patient_id}").status_code == 403
    again = post_form(actors.stranger, "/famille", f"/famille/aides/{actors.patient_id}/arreter")
    assert again.status_code == 404


def test_caregivers_are_told_of_new_documents_without_health_data(
    demo: Services, actors: Actors, feeders: Feeders
) -> None:
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    hidden = [(CONFIDENTIALITY_SYSTEM_FR, "INVISIBLE_REPRESENTANTS_LEGAUX")]
    bundle = provide_bundle(
        document_entry(feeders.ins, make_pdf("NFS"), title="Numération sanguine"),
        document_entry(feeders.ins, make_pdf("Ferritine"), title="Ferritine"),
        document_entry(feeders.ins, make_pdf("Confidentiel"), title="Consultation confidentielle", labels=hidden),
    )
    assert feeders.client.post("/fhir", json=bundle, headers=feeders.lab).status_code == 200
    with demo.db.unit_of_work() as db:
        documents = list(db.scalars(select(Document).where(Document.patient_id == actors.patient_id)))
        assert len(documents) == 3
        assert family.notify_caregivers(demo, db, actors.patient_id, documents) == 1
    mail = mails_to(demo, f"{STRANGER}@exemple.fr")[-1]
    assert "2 nouveaux documents ont été déposés dans l'espace santé d'une personne que vous aidez" in mail
    assert "Marie-Ange" not in mail and "SANTONI" not in mail and "sanguine" not in mail
    with demo.db.unit_of_work() as db:  # no longer a caregiver: no longer told
        db.execute(delete(Caregiver))
    with demo.db.unit_of_work() as db:
        documents = list(db.scalars(select(Document).where(Document.patient_id == actors.patient_id)))
        assert family.notify_caregivers(demo, db, actors.patient_id, documents) == 0


def test_the_family_page_lists_only_the_spaces_one_may_act_in(
    demo: Services, casanova: Family, actors: Actors, new_client: NewClient
) -> None:
    mother = new_client()
    log_in(mother, demo, "laetitia.casanova")
    spaces = text_of(mother.get("/famille"))
    assert "Mon espace santé" in spaces and "Espace de Lisandru CASANOVA" in spaces
    assert "Vous êtes son représentant légal." in spaces
    for who in (actors.patient, actors.stranger):
        assert "Lisandru" not in text_of(who.get("/famille"))
    assert actors.professional.get("/famille").status_code == 303  # professionals have no family links
    child_home = visible(mother.get(f"/espace/{casanova.child_id}"))
    assert "Vous agissez dans l'espace de Lisandru CASANOVA (en tant que représentant légal)" in child_home
    own_home = visible(mother.get(mother.get("/espace").headers["location"]))
    assert "Vous agissez dans l'espace" not in own_home and "Espace de Laetitia CASANOVA" in own_home
