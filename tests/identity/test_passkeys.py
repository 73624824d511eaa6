"""ENR-5 / issue #16-3: passkeys (WebAuthn) — registered in « Paramètres », then a login without password nor code,
or instead of the code after the password. A software authenticator (P-256, "none" attestation, made here with
`cryptography` and `cbor2`) answers the real server through its pages; the browser journey with Chromium's
virtual authenticator is tests/browser/test_passkey_journey.py."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cbor2
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.config import Settings
from carnet.demo import DEMO_PASSWORD
from carnet.hall.guard import AccessDenied
from carnet.hall.tables import AuditEntry
from carnet.identity.service import auth, passkeys
from carnet.identity.tables import Passkey, PasskeyChallenge
from carnet.people.tables import Account
from tests.conftest import csrf_of, make_settings, outbox_messages, text_of
from tests.support.actors import Actors

BASE = "http://localhost:8000"
LOGIN = "marie-ange.santoni"
EMAIL = f"{LOGIN}@exemple.fr"


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """The service is reached at a host name (browsers refuse passkeys on an IP address)."""
    return make_settings(tmp_path / "data", database_url, base_url=BASE)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class SoftKey:
    """A software authenticator: one P-256 credential, a signature counter, user presence and verification."""

    private: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))
    credential_id: bytes = field(default_factory=lambda: os.urandom(32))
    count: int = 0
    user_handle: str | None = None

    def _public_cose(self) -> bytes:
        numbers = self.private.public_key().public_numbers()
        return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})

    @staticmethod
    def _flags(verified: bool, attested: bool = False) -> int:
        return 0x01 | (0x04 if verified else 0) | (0x40 if attested else 0)

    def create(self, options: str, origin: str = BASE, rp_id: str | None = None, verified: bool = True) -> str:
        wanted = json.loads(options)
        self.user_handle = wanted["user"]["id"]
        rp_hash = hashlib.sha256((rp_id or wanted["rp"]["id"]).encode()).digest()
        attested = len(self.credential_id).to_bytes(2, "big") + self.credential_id + self._public_cose()
        data = rp_hash + bytes([self._flags(verified, True)]) + self.count.to_bytes(4, "big") + bytes(16) + attested
        client = {"type": "webauthn.create", "challenge": wanted["challenge"], "origin": origin, "crossOrigin": False}
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": data})
        return json.dumps(
            {
                "id": b64(self.credential_id),
                "rawId": b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(json.dumps(client).encode()),
                    "attestationObject": b64(attestation),
                    "transports": ["internal"],
                },
                "clientExtensionResults": {},
            }
        )

    def get(
        self,
        options: str,
        origin: str = BASE,
        count: int | None = None,
        verified: bool = True,
        rp_id: str = "localhost",
    ) -> str:
        wanted = json.loads(options)
        self.count = self.count + 1 if count is None else count
        data = hashlib.sha256(rp_id.encode()).digest() + bytes([self._flags(verified)]) + self.count.to_bytes(4, "big")
        client = json.dumps({"type": "webauthn.get", "challenge": wanted["challenge"], "origin": origin}).encode()
        signature = self.private.sign(data + hashlib.sha256(client).digest(), ec.ECDSA(hashes.SHA256()))
        return json.dumps(
            {
                "id": b64(self.credential_id),
                "rawId": b64(self.credential_id),
                "type": "public-key",
                "response": {
                    "clientDataJSON": b64(client),
                    "authenticatorData": b64(data),
                    "signature": b64(signature),
                    "userHandle": self.user_handle,
                },
                "clientExtensionResults": {},
            }
        )


def _settings_url(patient_id: str) -> str:
    return f"/espace/{patient_id}/parametres/cles-acces"


def _options(client: TestClient, url: str, page_url: str) -> Any:
    token = csrf_of(client.get(page_url).text)
    return client.post(url, headers={"X-CSRF-Token": token})


def register(client: TestClient, patient_id: str, key: SoftKey, name: str = "Téléphone", **answer: object) -> Any:
    url = _settings_url(patient_id)
    options = _options(client, url + "/options", url)
    assert options.status_code == 200, options.text
    page = client.get(url)
    return client.post(
        url,
        data={
            "nom": name,
            "reponse": key.create(options.text, **answer),
            "csrf_token": csrf_of(page.text),
        },
    )


def passwordless(client: TestClient, key: SoftKey, **answer: object) -> Any:
    options = _options(client, "/connexion/cle-acces/options", "/connexion")
    assert options.status_code == 200, options.text
    page = client.get("/connexion")
    return client.post(
        "/connexion/cle-acces",
        data={"reponse": key.get(options.text, **answer), "csrf_token": csrf_of(page.text)},
    )


def history_of(services: Services, action: str) -> list[AuditEntry]:
    with services.db.unit_of_work() as db:
        return list(db.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def test_enr5_a_patient_registers_a_passkey_named_and_listed_and_is_told_by_email(
    actors: Actors, demo: Services
) -> None:
    key = SoftKey()
    before = len(outbox_messages(demo))
    response = register(actors.patient, actors.patient_id, key, "Téléphone de Marie")
    assert response.status_code == 303, text_of(response)
    page = actors.patient.get(_settings_url(actors.patient_id) + "?ajoutee=1")
    assert "Téléphone de Marie" in text_of(page)
    assert "Jamais utilisée" in text_of(page)
    assert "Votre clé d'accès est ajoutée" in text_of(page)
    [added] = history_of(demo, "auth.passkey_added")
    assert added.patient_id == actors.patient_id and added.outcome == "allow"
    mails = outbox_messages(demo)[before:]
    told = [m for m in mails if m["To"] == EMAIL]
    assert len(told) == 1
    body = told[0].get_body(preferencelist=("plain",)).get_content()
    assert "Une nouvelle clé d'accès a été ajoutée" in body
    assert "Téléphone de Marie" not in body and "Marie-Ange" not in body


def test_enr5_a_passkey_logs_in_without_password_nor_code_and_its_last_use_is_shown(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    response = passwordless(browser, key)
    assert response.status_code == 303, text_of(response)
    assert response.headers["location"] == f"/espace/{actors.patient_id}"
    home = browser.get(f"/espace/{actors.patient_id}")
    assert home.status_code == 200 and "Bonjour Marie-Ange" in home.text
    page = text_of(browser.get(_settings_url(actors.patient_id)))
    assert "Dernière utilisation le" in page
    logins = [e for e in history_of(demo, "auth.login") if e.patient_id == actors.patient_id]
    assert any("sans mot de passe" in json.dumps(e.details, ensure_ascii=False) for e in logins)


def test_enr5_after_the_password_a_passkey_replaces_the_emailed_code(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    page = browser.get("/connexion")
    browser.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    mfa = browser.get("/connexion/verification")
    assert "Utiliser plutôt ma clé d'accès" in text_of(mfa)
    options = browser.post("/connexion/cle-acces/options", headers={"X-CSRF-Token": csrf_of(mfa.text)})
    assert [c["id"] for c in options.json()["allowCredentials"]] == [b64(key.credential_id)]
    response = browser.post(
        "/connexion/cle-acces", data={"reponse": key.get(options.text), "csrf_token": csrf_of(mfa.text)}
    )
    assert response.status_code == 303, text_of(response)
    assert browser.get(f"/espace/{actors.patient_id}").status_code == 200


def test_enr5_a_person_without_passkey_is_not_offered_one_after_the_password(
    client: TestClient, demo: Services
) -> None:
    page = client.get("/connexion")
    assert "Se connecter avec une clé d'accès" in text_of(page)
    client.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    mfa = client.get("/connexion/verification")
    assert "clé d'accès" not in text_of(mfa)
    refused = client.post("/connexion/cle-acces/options", headers={"X-CSRF-Token": csrf_of(mfa.text)})
    assert refused.status_code == 400
    assert refused.json()["erreur"] == passkeys.NONE_FOR_ACCOUNT


def test_enr5_an_answer_made_for_another_origin_is_refused(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    """A phishing page (another origin) relaying the challenge gets an answer bound to its own origin."""
    key = SoftKey()
    refused = register(actors.patient, actors.patient_id, SoftKey(), origin="http://carnet-sante.example")
    assert refused.status_code == 400
    assert passkeys.REFUSED_REGISTRATION in text_of(refused)
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    response = passwordless(browser, key, origin="http://localhost.carnet-sante.example:8000")
    assert response.status_code == 400
    assert passkeys.REFUSED_LOGIN in text_of(response)
    assert browser.get(f"/espace/{actors.patient_id}").status_code == 303
    [failed] = history_of(demo, "auth.passkey_failed")
    assert failed.outcome == "deny" and failed.patient_id == actors.patient_id


def test_enr5_a_cloned_passkey_whose_counter_does_not_grow_is_refused(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    assert passwordless(new_client(), key, count=5).status_code == 303
    clone = new_client()
    response = passwordless(clone, key, count=3)  # a copy of the key, behind the original
    assert response.status_code == 400
    assert clone.get(f"/espace/{actors.patient_id}").status_code == 303
    [failed] = history_of(demo, "auth.passkey_failed")
    assert "copiée" in failed.reason
    assert passwordless(new_client(), key, count=5).status_code == 400
    assert passwordless(new_client(), key, count=6).status_code == 303


def test_enr5_a_challenge_serves_once_and_a_replayed_answer_is_refused(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    options = _options(browser, "/connexion/cle-acces/options", "/connexion")
    answer = key.get(options.text)
    token = csrf_of(browser.get("/connexion").text)
    challenge_cookie = browser.cookies.get(passkeys.COOKIE)
    assert browser.post("/connexion/cle-acces", data={"reponse": answer, "csrf_token": token}).status_code == 303
    thief = new_client()
    thief.cookies.set(passkeys.COOKIE, challenge_cookie)
    token = csrf_of(thief.get("/connexion").text)
    replay = thief.post("/connexion/cle-acces", data={"reponse": answer, "csrf_token": token})
    assert replay.status_code == 400
    assert passkeys.EXPIRED in text_of(replay)


def test_enr5_a_login_without_password_needs_the_person_verified_by_the_authenticator(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    assert passwordless(new_client(), key, verified=False).status_code == 400
    refused = register(actors.patient, actors.patient_id, SoftKey(), verified=False)
    assert refused.status_code == 400


def test_enr5_an_expired_challenge_is_refused(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    options = _options(browser, "/connexion/cle-acces/options", "/connexion")
    with demo.db.unit_of_work() as db:
        for row in db.scalars(select(PasskeyChallenge)):
            row.expires_at = row.created_at
    token = csrf_of(browser.get("/connexion").text)
    response = browser.post(
        "/connexion/cle-acces",
        data={"reponse": key.get(options.text), "csrf_token": token},
    )
    assert response.status_code == 400
    assert passkeys.EXPIRED in text_of(response)


def test_enr5_a_removed_passkey_no_longer_logs_in_and_the_removal_is_in_the_history_and_emailed(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    with demo.db.unit_of_work() as db:
        passkey_id = db.scalar(select(Passkey.id))
    url = _settings_url(actors.patient_id)
    before = len(outbox_messages(demo))
    token = csrf_of(actors.patient.get(url).text)
    response = actors.patient.post(f"{url}/{passkey_id}/supprimer", data={"csrf_token": token})
    assert response.status_code == 303
    assert "Aucune clé d'accès n'est enregistrée" in text_of(actors.patient.get(url))
    [removed] = history_of(demo, "auth.passkey_removed")
    assert removed.patient_id == actors.patient_id
    [mail] = [m for m in outbox_messages(demo)[before:] if m["To"] == EMAIL]
    assert "Une clé d'accès a été retirée" in mail.get_body(preferencelist=("plain",)).get_content()
    assert passwordless(new_client(), key).status_code == 400
    again = actors.patient.post(f"{url}/{passkey_id}/supprimer", data={"csrf_token": token})
    assert again.status_code == 404


def test_enr5_the_history_page_tells_passkey_events_in_french(actors: Actors, demo: Services) -> None:
    register(actors.patient, actors.patient_id, SoftKey())
    page = text_of(actors.patient.get(f"/espace/{actors.patient_id}/historique"))
    assert "ajouté une clé d'accès" in page


def _refused(response: Any) -> bool:
    """403, or a professional sent to the professional's pages of the space (never the patient's pages)."""
    status, location = response.status_code, response.headers.get("location", "")
    return status == 403 or (status == 303 and location.startswith("/pro"))


def test_enr5_nobody_but_the_person_sees_or_manages_her_passkeys(actors: Actors, demo: Services) -> None:
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    with demo.db.unit_of_work() as db:
        passkey_id = db.scalar(select(Passkey.id))
    url = _settings_url(actors.patient_id)
    for who in (actors.professional, actors.stranger, actors.unauthorised):
        assert _refused(who.get(url))
        token = csrf_of(who.get("/", follow_redirects=True).text)
        assert _refused(who.post(url + "/options", headers={"X-CSRF-Token": token}))
        assert _refused(who.post(f"{url}/{passkey_id}/supprimer", data={"csrf_token": token}))
        assert _refused(who.post(f"{url}/{passkey_id}/renommer", data={"nom": "Vol", "csrf_token": token}))
        assert _refused(who.post(url, data={"nom": "Vol", "reponse": "{}", "csrf_token": token}))
    assert actors.stranger.get(url).status_code == 403
    anonymous = actors.anonymous.get(url)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/connexion")
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Passkey.id)) == passkey_id
        doctor_account = db.scalar(select(Account).where(Account.login == "dr.ferracci"))
        assert doctor_account is not None
        doctor = auth.actor_for(db, doctor_account)
    # the service itself refuses the médecin traitant, whatever page sends him
    for attempt in (
        lambda: passkeys.list_passkeys(demo, doctor, actors.patient_id),
        lambda: passkeys.begin_registration(demo, doctor, actors.patient_id),
        lambda: passkeys.remove_passkey(demo, doctor, actors.patient_id, passkey_id or ""),
    ):
        with pytest.raises(AccessDenied):
            attempt()
    with demo.db.unit_of_work() as db:
        assert db.scalar(select(Passkey.id)) == passkey_id
    refusals = [
        e for e in history_of(demo, "settings.read") + history_of(demo, "settings.write") if e.outcome == "deny"
    ]
    assert refusals


def test_enr5_a_passkey_of_another_account_cannot_complete_someone_elses_password_step(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    """Pierre-Paul's passkey does not stand for Marie-Ange's code after her password."""
    mine = SoftKey()
    register(actors.patient, actors.patient_id, mine)
    with demo.db.unit_of_work() as db:
        other = db.scalar(select(Account).where(Account.login == "pierre-paul.luciani"))
        assert other is not None
        other_space = other.patient_id
    theirs = SoftKey()
    assert register(actors.stranger, other_space, theirs).status_code == 303
    browser = new_client()
    page = browser.get("/connexion")
    browser.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    mfa = browser.get("/connexion/verification")
    options = browser.post("/connexion/cle-acces/options", headers={"X-CSRF-Token": csrf_of(mfa.text)})
    response = browser.post(
        "/connexion/cle-acces", data={"reponse": theirs.get(options.text), "csrf_token": csrf_of(mfa.text)}
    )
    assert response.status_code == 400
    assert browser.get(f"/espace/{actors.patient_id}").status_code == 303


def test_enr5_malformed_answers_and_names_get_french_errors_never_a_500(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    url = _settings_url(actors.patient_id)
    for answer in ("", "{", "[]", '{"id": 3}', "x" * 30_000):
        options = _options(actors.patient, url + "/options", url)
        assert options.status_code == 200
        token = csrf_of(actors.patient.get(url).text)
        response = actors.patient.post(url, data={"nom": "Clé", "reponse": answer, "csrf_token": token})
        assert response.status_code == 400, answer[:20]
        assert re.search(r"(pas pu être enregistrée|Données invalides)", text_of(response))
    token = csrf_of(actors.patient.get(url).text)
    response = actors.patient.post(url, data={"nom": "   ", "reponse": "{}", "csrf_token": token})
    assert response.status_code == 400 and passkeys.BAD_NAME in text_of(response)
    browser = new_client()
    for answer in ("", "{", '{"id": "AA", "rawId": "AA", "response": {}}'):
        _options(browser, "/connexion/cle-acces/options", "/connexion")
        token = csrf_of(browser.get("/connexion").text)
        response = browser.post("/connexion/cle-acces", data={"reponse": answer, "csrf_token": token})
        assert response.status_code == 400
        assert passkeys.REFUSED_LOGIN in text_of(response)


def test_enr5_passkeys_are_not_offered_when_the_service_is_reached_by_an_ip_address(tmp_path: Path) -> None:
    assert not passkeys.available(make_settings(tmp_path, "sqlite://", base_url="http://127.0.0.1:8000"))
    assert not passkeys.available(make_settings(tmp_path, "sqlite://", base_url="http://[::1]:8000"))
    assert passkeys.available(make_settings(tmp_path, "sqlite://", base_url="https://carnet.example.fr"))
    assert passkeys.relying_party(make_settings(tmp_path, "sqlite://", base_url="https://Carnet.example.fr:8443/")) == (
        "carnet.example.fr",
        "https://carnet.example.fr:8443",
    )


def test_enr5_after_the_password_a_refused_passkey_counts_with_the_wrong_codes(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    """The second step's bound (issue #15-1) holds whatever the method: at MFA_MAX_FAILURES the step is locked."""
    key = SoftKey()
    register(actors.patient, actors.patient_id, key)
    browser = new_client()
    page = browser.get("/connexion")
    browser.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    for attempt in range(auth.MFA_MAX_FAILURES):
        mfa = browser.get("/connexion/verification")
        assert mfa.status_code == 200, attempt
        options = browser.post("/connexion/cle-acces/options", headers={"X-CSRF-Token": csrf_of(mfa.text)})
        answer = key.get(options.text, origin="http://localhost:9999")  # signed, but for another origin
        response = browser.post("/connexion/cle-acces", data={"reponse": answer, "csrf_token": csrf_of(mfa.text)})
        assert response.status_code == 400
    assert len(history_of(demo, "auth.passkey_failed")) == auth.MFA_MAX_FAILURES
    with demo.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == LOGIN))
        assert account is not None
        assert auth.second_factor_locked(demo, db, account)


def test_enr5_a_passkey_is_renamed_and_an_empty_name_is_refused_in_french(actors: Actors, demo: Services) -> None:
    register(actors.patient, actors.patient_id, SoftKey(), "Téléphone")
    with demo.db.unit_of_work() as db:
        passkey_id = db.scalar(select(Passkey.id))
    url = _settings_url(actors.patient_id)
    token = csrf_of(actors.patient.get(url).text)
    done = actors.patient.post(f"{url}/{passkey_id}/renommer", data={"nom": "  Téléphone   pro ", "csrf_token": token})
    assert done.status_code == 303
    page = text_of(actors.patient.get(done.headers["location"]))
    assert "Le nom de la clé d'accès est changé." in page and "Téléphone pro" in page
    refused = actors.patient.post(f"{url}/{passkey_id}/renommer", data={"nom": " ", "csrf_token": token})
    assert refused.status_code == 400
    assert "Le nom n'a pas été changé" in text_of(refused) and passkeys.BAD_NAME in text_of(refused)
    unknown = actors.patient.post(f"{url}/inconnue/renommer", data={"nom": "X", "csrf_token": token})
    assert unknown.status_code == 404
    assert len(history_of(demo, "auth.passkey_renamed")) == 1
