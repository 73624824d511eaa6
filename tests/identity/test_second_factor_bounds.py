"""The second factor cannot be brute-forced (issue #15-1): wrong codes are counted per account across codes,
methods and resends; at 10 the second step locks for the lockout period (the half session and the codes sent
end), the person gets an e-mail, the history says it; e-mailed codes are bounded too; and per source address."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from carnet.bootstrap import Services
from carnet.hall.tables import AuditEntry
from carnet.identity.service.auth import MFA_MAX_FAILURES, MFA_MAX_SENDS
from carnet.identity.service.ratelimit import RateLimiter
from carnet.identity.tables import LoginThrottle
from carnet.people.tables import Account
from carnet.storage.types import utcnow
from tests.conftest import DEMO_PASSWORD, csrf_of, outbox_messages

LOGIN = "marie-ange.santoni"
EMAIL = f"{LOGIN}@exemple.fr"


def password_step(client: TestClient, method: str = "email") -> str:
    page = client.get("/connexion")
    answer = client.post(
        "/connexion", data={"identifiant": LOGIN, "mot_de_passe": DEMO_PASSWORD, "csrf_token": csrf_of(page.text)}
    )
    assert answer.status_code == 303
    return client.get(f"/connexion/verification?methode={method}").text


def submit(client: TestClient, page: str, code: str, method: str = "email") -> Any:
    return client.post("/connexion/verification", data={"code": code, "methode": method, "csrf_token": csrf_of(page)})


def resend(client: TestClient, page: str) -> Any:
    return client.post("/connexion/verification/email", data={"csrf_token": csrf_of(page)})


def last_code_for(services: Services, email: str) -> str:
    """The code of the last code e-mail (the lock notice carries none)."""
    for message in reversed(outbox_messages(services)):
        if message["To"] == email and message["Subject"] == "Votre code de connexion Carnet":  # type: ignore[index]
            body = message.get_body(preferencelist=("plain",)).get_content()  # type: ignore[attr-defined]
            return re.search(r"\b(\d{6})\b", body).group(1)  # type: ignore[union-attr]
    raise AssertionError(f"aucun code pour {email}")


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def mails_to(services: Services, subject: str) -> int:
    return sum(1 for m in outbox_messages(services) if m["To"] == EMAIL and m["Subject"] == subject)  # type: ignore[index]


def test_ten_wrong_emailed_codes_lock_the_second_step_even_for_the_right_code(
    client: TestClient, new_client: Any, demo: Services
) -> None:
    page = password_step(client)
    good = last_code_for(demo, EMAIL)
    for _ in range(MFA_MAX_FAILURES - 1):
        answer = submit(client, page, wrong(good))
        assert answer.status_code == 400 and "Code incorrect ou expiré" in answer.text
    locked = submit(client, page, wrong(good))
    assert locked.status_code == 429 and "Trop de codes erronés" in locked.text
    assert mails_to(demo, "Connexion à Carnet bloquée") == 1
    assert submit(client, page, good).status_code == 303  # the half session ended: back to the password
    assert client.get("/connexion/verification").headers["location"] == "/connexion"

    # The attacker knows the password: a new half session gets no new code, and the right one is refused.
    other = new_client()
    codes_before = mails_to(demo, "Votre code de connexion Carnet")
    page = password_step(other)
    assert mails_to(demo, "Votre code de connexion Carnet") == codes_before
    refused = submit(other, page, good)
    assert refused.status_code == 429 and "bloquée pendant 15 minutes" in refused.text
    assert resend(other, page).status_code == 429

    with demo.db.unit_of_work() as db:
        reasons = db.scalars(select(AuditEntry.reason).where(AuditEntry.action == "auth.mfa_failed")).all()
    assert len(reasons) == MFA_MAX_FAILURES and reasons.count("code e-mail incorrect, connexion bloquée") == 1

    with demo.db.unit_of_work() as db:  # the lockout period passes
        db.execute(update(LoginThrottle).values(locked_until=utcnow() - timedelta(seconds=1)))
    page = password_step(other)
    assert submit(other, page, last_code_for(demo, EMAIL)).status_code == 303


def test_resending_codes_does_not_renew_the_tries(client: TestClient, demo: Services) -> None:
    page = password_step(client)
    failures = 0
    for _ in range(3):  # 3 wrong codes, a new code, and again
        for _ in range(3):
            assert submit(client, page, wrong(last_code_for(demo, EMAIL))).status_code == 400
            failures += 1
        assert resend(client, page).status_code == 303
    while failures < MFA_MAX_FAILURES - 1:
        assert submit(client, page, wrong(last_code_for(demo, EMAIL))).status_code == 400
        failures += 1
    assert submit(client, page, wrong(last_code_for(demo, EMAIL))).status_code == 429
    assert submit(client, page, last_code_for(demo, EMAIL)).status_code == 303  # to the login page: ended


def test_emailed_codes_are_bounded(client: TestClient, demo: Services) -> None:
    page = password_step(client)  # the first code
    for _ in range(MFA_MAX_SENDS - 1):
        assert resend(client, page).status_code == 303
    too_many = resend(client, page)
    assert too_many.status_code == 429 and "Vous avez demandé beaucoup de codes" in too_many.text
    assert mails_to(demo, "Votre code de connexion Carnet") == MFA_MAX_SENDS
    assert submit(client, page, last_code_for(demo, EMAIL)).status_code == 303  # the last one still works


def test_totp_codes_are_bounded_the_same_way(client: TestClient, demo: Services) -> None:
    secret = pyotp.random_base32()
    with demo.db.unit_of_work() as db:
        db.execute(update(Account).where(Account.login == LOGIN).values(totp_secret=demo.keys.seal(secret, "totp")))
    page = password_step(client, "totp")
    good = pyotp.TOTP(secret).now()
    candidates = (f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in pyotp_window(secret))
    for _ in range(MFA_MAX_FAILURES - 1):
        assert submit(client, page, next(candidates), "totp").status_code == 400
    assert submit(client, page, next(candidates), "totp").status_code == 429
    page = password_step(client, "totp")
    assert submit(client, page, good, "totp").status_code == 429


def pyotp_window(secret: str) -> set[str]:
    totp = pyotp.TOTP(secret)
    now = utcnow()
    return {totp.at(now + timedelta(seconds=30 * offset)) for offset in (-2, -1, 0, 1, 2)}


def test_one_source_address_is_bounded_across_accounts(client: TestClient, demo: Services) -> None:
    demo.ip_limiter = RateLimiter(2, 60.0)  # password and code attempts of one address share the bound
    page = password_step(client)
    assert submit(client, page, wrong(last_code_for(demo, EMAIL))).status_code == 400
    limited = submit(client, page, wrong(last_code_for(demo, EMAIL)))
    assert limited.status_code == 429 and "Trop de tentatives depuis votre connexion" in limited.text
