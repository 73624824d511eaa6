"""Issue #15-16: a stranger (another patient), a professional who reads the space (Dr Ferracci, Marie-Ange's
médecin traitant) and a professional who does not (the dentist) on cancelling a family invitation and removing a
caregiver (FAM-1, FAM-3) — over HTTP, on SQLite and PostgreSQL. Only the person (or a child's legal representative)
manages her family: each of them is refused (403, the same French sentence), also through their own space's
address, and nothing changes — the invitation still opens and is still listed, the caregiver still helps."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from carnet.bootstrap import Services
from carnet.family.tables import SpaceInvitation
from tests.conftest import csrf_of, log_in, text_of
from tests.family.test_family import REFUSED, invite_caregiver, mails_to, make_caregiver, patient_id_of, token_in
from tests.support.actors import STRANGER, Actors

OTHER_PATIENT = "laetitia.casanova"  # a patient with her own space, a stranger to Marie-Ange's
INVITED = "proche@exemple.fr"


def client_of(actors: Actors, who: str, demo: Services, new_client: Callable[[], TestClient]) -> TestClient:
    if who == "professional":
        return actors.professional
    if who == "unauthorised":
        return actors.unauthorised
    client = new_client()
    log_in(client, demo, OTHER_PATIENT)
    return client


def form_token(client: TestClient) -> str:
    return csrf_of(client.get("/famille", follow_redirects=True).text)


def family_page(actors: Actors) -> str:
    return text_of(actors.patient.get(f"/espace/{actors.patient_id}/famille"))


@pytest.mark.parametrize("who", ["stranger", "professional", "unauthorised"])
def test_only_the_person_cancels_her_invitation(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient], who: str
) -> None:
    """FAM-3: a pending caregiver invitation is cancelled by the person who sent it, nobody else."""
    assert invite_caregiver(actors.patient, actors.patient_id, INVITED).status_code == 303
    with demo.db.unit_of_work() as db:
        invitation_id = db.scalar(select(SpaceInvitation.id))
    assert invitation_id
    client = client_of(actors, who, demo, new_client)
    csrf = form_token(client)
    action = f"/espace/{actors.patient_id}/famille/invitations/{invitation_id}/annuler"
    refused = client.post(action, data={"csrf_token": csrf})
    assert refused.status_code == 403 and REFUSED in text_of(refused)
    assert INVITED not in text_of(refused)
    if who == "stranger":  # through her own space's address: the invitation is not hers
        own = patient_id_of(demo, email=f"{OTHER_PATIENT}@exemple.fr")
        other_space = client.post(
            f"/espace/{own}/famille/invitations/{invitation_id}/annuler", data={"csrf_token": csrf}
        )
        assert other_space.status_code == 404 and "Cette invitation n'existe pas." in text_of(other_space)
    assert f"Annuler l'invitation envoyée à {INVITED}" in family_page(actors)
    (mail,) = mails_to(demo, INVITED)
    opened = actors.stranger.get(f"/famille/invitation?jeton={token_in(mail)}")
    assert opened.status_code == 200 and "vous invite à devenir son aidant" in text_of(opened)


@pytest.mark.parametrize("who", ["stranger", "professional", "unauthorised"])
def test_only_the_person_removes_her_caregiver(
    actors: Actors, demo: Services, new_client: Callable[[], TestClient], who: str
) -> None:
    """FAM-3: removing a caregiver is the helped person's decision (or her legal representative's)."""
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    caregiver_id = patient_id_of(demo, email=f"{STRANGER}@exemple.fr")
    client = client_of(actors, who, demo, new_client)
    csrf = form_token(client)
    refused = client.post(
        f"/espace/{actors.patient_id}/famille/aidants/{caregiver_id}/retirer", data={"csrf_token": csrf}
    )
    assert refused.status_code == 403 and REFUSED in text_of(refused)
    assert "LUCIANI" not in text_of(refused)
    if who == "stranger":  # through her own space's address: Pierre-Paul is not her caregiver
        own = patient_id_of(demo, email=f"{OTHER_PATIENT}@exemple.fr")
        other_space = client.post(f"/espace/{own}/famille/aidants/{caregiver_id}/retirer", data={"csrf_token": csrf})
        assert other_space.status_code == 404, text_of(other_space)
    assert "Retirer Pierre-Paul LUCIANI" in family_page(actors)
    assert actors.stranger.get(f"/espace/{actors.patient_id}").status_code == 200  # still helping


def test_a_caregiver_cannot_remove_another_caregiver_nor_cancel_an_invitation(actors: Actors, demo: Services) -> None:
    """FAM-3: a caregiver manages nothing of the person's family — only their own help (« arrêter d'aider »)."""
    make_caregiver(demo, actors.patient, actors.patient_id, actors.stranger, f"{STRANGER}@exemple.fr")
    assert invite_caregiver(actors.patient, actors.patient_id, INVITED).status_code == 303
    with demo.db.unit_of_work() as db:
        invitation_id = db.scalar(select(SpaceInvitation.id).where(SpaceInvitation.email == INVITED))
    caregiver_id = patient_id_of(demo, email=f"{STRANGER}@exemple.fr")
    base = f"/espace/{actors.patient_id}/famille"
    csrf = form_token(actors.stranger)
    for action in (f"{base}/invitations/{invitation_id}/annuler", f"{base}/aidants/{caregiver_id}/retirer"):
        refused = actors.stranger.post(action, data={"csrf_token": csrf})
        assert refused.status_code == 403 and REFUSED in text_of(refused), action
    page = family_page(actors)
    assert f"Annuler l'invitation envoyée à {INVITED}" in page and "Retirer Pierre-Paul LUCIANI" in page
