"""The medical profile in the portal (PRF-1, PRF-2): the overview, a section's list and form, correcting,
deleting and masking, a measure's chart, table and form, the HbA1c target, growth curves, and the professional's
read-only view — every page with the three actors, through HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from carnet.bootstrap import Services
from carnet.demo import load_profile_demo
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import PARIS
from carnet.people.tables import Account, Patient, Professional
from carnet.profile.service import portal
from carnet.profile.tables import ProfileEntry
from tests.conftest import csrf_of, log_in, text_of
from tests.support.actors import Actors

PHARMACIST = "anna-maria.peretti"  # authorised by Marie-Ange (reader): her profession's sections only
MOTHER = "laetitia.casanova"  # Lisandru's legal representative


def seen(response: Any) -> str:
    """The words a person reads on the page (scripts and tags removed, spaces collapsed)."""
    page = re.sub(r"<script[^>]*>.*?</script>", " ", response.text, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def profile(actors: Actors, suffix: str = "") -> str:
    return f"/espace/{actors.patient_id}/profil{suffix}"


def pro_profile(actors: Actors, suffix: str = "") -> str:
    return f"/pro/patients/{actors.patient_id}/profil{suffix}"


def token(client: TestClient, page: str) -> str:
    return csrf_of(client.get(page, follow_redirects=True).text)


def post(client: TestClient, url: str, data: dict[str, str], page: str | None = None) -> Any:
    return client.post(url, data={**data, "csrf_token": token(client, page or url)})


def entries(services: Services, patient_id: str, **where: str) -> list[ProfileEntry]:
    with services.db.unit_of_work() as db:
        query = select(ProfileEntry).where(ProfileEntry.patient_id == patient_id)
        for name, value in where.items():
            query = query.where(getattr(ProfileEntry, name) == value)
        return list(db.scalars(query))


def count(services: Services) -> int:
    with services.db.unit_of_work() as db:
        return int(db.scalar(select(func.count()).select_from(ProfileEntry)) or 0)


def chart_data(response: Any) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" class="carnet-chart__data">(.*?)</script>', response.text)
    assert match, "pas de données de courbe dans la page"
    data: dict[str, Any] = json.loads(match.group(1))
    return data


def professional(services: Services, login: str) -> Actor:
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == login))
        assert account is not None and account.professional_id
        pro = db.get(Professional, account.professional_id)
        assert pro is not None
        return Actor(
            ActorKind.PROFESSIONAL,
            account.id,
            account.display_name,
            professional_id=pro.id,
            rpps=pro.rpps,
            profession_code=pro.profession_code,
        )


@pytest.fixture
def marie(actors: Actors, demo: Services) -> Actors:
    """The actors, with Marie-Ange's demo profile (asthma, penicillin, weights, three blood pressures…)."""
    load_profile_demo(demo)
    return actors


@pytest.fixture
def pharmacist(demo: Services, new_client: Callable[[], TestClient]) -> TestClient:
    client = new_client()
    log_in(client, demo, PHARMACIST)
    return client


def added(actors: Actors, section: str, fields: dict[str, str]) -> str:
    """Add an item through the section's form; its id, read back from the page's « Modifier » link."""
    response = post(actors.patient, profile(actors, f"/{section}"), fields)
    assert response.status_code == 303, seen(response)
    assert response.headers["location"] == profile(actors, f"/{section}?message=ajoute")
    page = actors.patient.get(response.headers["location"])
    assert "L'élément a été ajouté à votre profil." in seen(page)
    ids = re.findall(rf'href="{profile(actors)}/elements/([0-9a-f-]{{36}})/modifier"', page.text)
    assert ids
    return ids[0]


# ------------------------------------------------------------------ the three actors on every page

PAGES = ["", "/allergies", "/mesures/weight", "/mesures/blood_pressure", "/mesures/bmi"]


def test_the_patient_opens_every_page_of_her_profile(marie: Actors) -> None:
    for path in PAGES:
        response = marie.patient.get(profile(marie, path))
        assert response.status_code == 200, path
    overview = seen(marie.patient.get(profile(marie)))
    assert "Asthme" in overview and "Pénicilline" in overview and "Diabète de type 2" in overview
    assert "63,6 kg" in overview and "131 / 85 mmHg" in overview
    assert "23,4 kg/m²" in overview  # the IMC, computed from the latest weight and height
    assert "Saisi par Marie-Ange SANTONI" in overview
    assert re.search(r"Saisi par Marie-Ange SANTONI, le \d{2}/\d{2}/\d{4} à \d{2}:\d{2}", overview)


def test_the_authorised_professional_reads_the_profile_without_a_form(marie: Actors) -> None:
    overview = marie.professional.get(pro_profile(marie))
    assert overview.status_code == 200
    text = seen(overview)
    assert "Profil médical de Marie-Ange SANTONI" in text
    assert "Asthme" in text and "Diabète de type 2" in text and "131 / 85 mmHg" in text
    assert "<form" not in overview.text.split("<main")[1].split("</main>")[0]  # read only
    assert f'href="{pro_profile(marie)}"' in overview.text  # the professional menu's « Profil médical »
    measure = marie.professional.get(pro_profile(marie, "/mesures/blood_pressure"))
    assert measure.status_code == 200
    assert "131 mmHg" in seen(measure) and "Ajouter une mesure" not in seen(measure)
    assert chart_data(measure)["series"][0]["label"] == "Systolique"
    # the patient portal's address sends a professional to the professional view
    redirected = marie.professional.get(profile(marie))
    assert redirected.status_code == 303 and redirected.headers["location"].startswith("/pro/patients/")


@pytest.mark.parametrize("path", ["", "/mesures/weight", "/mesures/blood_pressure"])
def test_a_professional_the_patient_never_authorised_is_refused(marie: Actors, path: str) -> None:
    response = marie.unauthorised.get(pro_profile(marie, path))
    assert response.status_code == 403
    text = seen(response)
    assert "La personne ne vous a pas autorisé" in text
    assert "SANTONI" not in text and "Asthme" not in text and "mmHg" not in text


@pytest.mark.parametrize("path", [*PAGES, "/elements/x/modifier"])
def test_another_patient_and_anonymous_visitors_learn_nothing(marie: Actors, demo: Services, path: str) -> None:
    response = marie.stranger.get(profile(marie, path))
    assert response.status_code in {403, 404}, path
    assert "SANTONI" not in seen(response) and "Asthme" not in seen(response)
    anonymous = marie.anonymous.get(profile(marie, path))
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/connexion")


def test_others_cannot_write_in_the_profile(marie: Actors, demo: Services) -> None:
    [asthma] = [e for e in entries(demo, marie.patient_id, section="conditions")]
    before = count(demo)
    csrf = token(marie.stranger, "/espace")
    writes = {
        "/allergies": {"label": "Intrus"},
        "/mesures/weight": {"valeur": "70"},
        "/mesures/hba1c/objectif": {"objectif": "6"},
        f"/elements/{asthma.id}/modifier": {"label": "Intrus"},
        f"/elements/{asthma.id}/supprimer": {},
        f"/elements/{asthma.id}/masquer": {},
    }
    for path, data in writes.items():
        response = marie.stranger.post(profile(marie, path), data={**data, "csrf_token": csrf})
        assert response.status_code in {403, 404}, path
        assert "Asthme" not in seen(response)
    csrf = token(marie.unauthorised, "/pro")
    for path in list(writes)[3:]:  # a professional corrects, deletes only what they entered, and never masks
        response = marie.unauthorised.post(profile(marie, path), data={**writes[path], "csrf_token": csrf})
        assert response.status_code == 404, path
    assert count(demo) == before
    [still] = entries(demo, marie.patient_id, section="conditions")
    assert (still.version, still.masked) == (1, False)


def test_the_patient_cannot_open_the_professional_view(marie: Actors) -> None:
    response = marie.patient.get(pro_profile(marie))
    assert response.status_code == 303 and response.headers["location"] == f"/espace/{marie.patient_id}"


def test_the_home_card_and_the_menus_lead_to_the_profile(marie: Actors) -> None:
    home = marie.patient.get(f"/espace/{marie.patient_id}")
    assert f'<a href="{profile(marie)}">Profil médical</a>' in home.text
    page = marie.patient.get(profile(marie))
    assert re.search(rf'href="{profile(marie)}" aria-current="page">Profil médical', page.text)


# ------------------------------------------------------------------ sections: add, list, correct, delete (PRF-1)


def test_add_list_modify_and_delete_an_allergy(marie: Actors, demo: Services) -> None:
    entry_id = added(marie, "allergies", {"label": "Arachide", "reaction": "Œdème", "severity": "Sévère"})
    listing = seen(marie.patient.get(profile(marie, "/allergies")))
    assert "Arachide" in listing and "Réaction : Œdème" in listing and "Gravité : Sévère" in listing
    assert "Saisi par Marie-Ange SANTONI" in listing
    assert "Arachide" in seen(marie.patient.get(profile(marie)))

    form = marie.patient.get(profile(marie, f"/elements/{entry_id}/modifier"))
    assert form.status_code == 200 and 'value="Arachide"' in form.text
    assert '<option value="Sévère" selected>' in form.text
    changed = post(marie.patient, profile(marie, f"/elements/{entry_id}/modifier"), {"label": "Arachides"})
    assert (changed.status_code, changed.headers["location"]) == (303, profile(marie, "/allergies?message=modifie"))
    listing = seen(marie.patient.get(changed.headers["location"]))
    assert "L'élément a été modifié." in listing and "Arachides" in listing and "Œdème" not in listing
    assert "modifié le" in listing

    confirm = marie.patient.get(profile(marie, f"/elements/{entry_id}/supprimer"))
    assert confirm.status_code == 200
    assert "Allergies : Arachides" in seen(confirm) and "définitive" in seen(confirm)
    assert len(entries(demo, marie.patient_id, section="allergies")) == 2  # nothing deleted by looking
    deleted = post(marie.patient, profile(marie, f"/elements/{entry_id}/supprimer"), {}, profile(marie))
    assert (deleted.status_code, deleted.headers["location"]) == (303, profile(marie, "/allergies?message=supprime"))
    assert "Arachides" not in seen(marie.patient.get(profile(marie, "/allergies")))
    assert [e.id for e in entries(demo, marie.patient_id, section="allergies") if e.id == entry_id] == []


def test_a_form_error_is_shown_on_the_form_with_what_was_typed(marie: Actors, demo: Services) -> None:
    before = count(demo)
    response = post(marie.patient, profile(marie, "/allergies"), {"label": "", "reaction": "Toux"})
    assert response.status_code == 400
    text = seen(response)
    assert "« Allergie à » : ce champ est obligatoire." in text
    assert 'class="fr-input-group fr-input-group--error"' in response.text
    assert 'aria-invalid="true" aria-describedby="champ-label-erreur"' in response.text
    assert 'value="Toux"' in response.text
    bad_date = post(marie.patient, profile(marie, "/allergies"), {"label": "Latex", "since": "2099-01-01"})
    assert bad_date.status_code == 400 and "la date doit être passée" in seen(bad_date)
    stray = post(marie.patient, profile(marie, "/allergies"), {"label": "Latex", "intrus": "x"})
    assert stray.status_code == 400 and "Champ inconnu" in seen(stray)
    trusted = {"role": "Personne de confiance", "label": "Jean Santoni"}
    added(marie, "entourage", trusted)
    second = post(marie.patient, profile(marie, "/entourage"), {**trusted, "label": "Paul Santoni"})
    assert second.status_code == 400 and "déjà désigné une personne de confiance" in seen(second)
    assert count(demo) == before + 1


def test_a_single_section_is_replaced_not_doubled(marie: Actors, demo: Services) -> None:
    page = seen(marie.patient.get(profile(marie, "/blood_group")))
    assert "O+" in page and "remplace ce que vous aviez saisi" in page
    post(marie.patient, profile(marie, "/blood_group"), {"label": "A−"})
    [group] = entries(demo, marie.patient_id, section="blood_group")
    assert group.version == 2
    assert "A−" in seen(marie.patient.get(profile(marie, "/blood_group")))


def test_a_professionals_item_is_masked_not_edited(marie: Actors, demo: Services, pharmacist: TestClient) -> None:
    doctor = professional(demo, "dr.ferracci")
    entry_id = portal.add_item(demo, doctor, marie.patient_id, "conditions", {"label": "Hypertension artérielle"})
    assert "Hypertension artérielle" in seen(pharmacist.get(pro_profile(marie)))

    page = marie.patient.get(profile(marie, "/conditions"))
    text = seen(page)
    assert "Hypertension artérielle" in text and "Saisi par Dr Jean-Baptiste FERRACCI, professionnel de santé" in text
    assert f"/elements/{entry_id}/masquer" in page.text and f"/elements/{entry_id}/modifier" not in page.text
    refused = post(marie.patient, profile(marie, f"/elements/{entry_id}/modifier"), {"label": "Autre"}, profile(marie))
    assert refused.status_code == 403 and "vous pouvez le masquer" in seen(refused)
    assert marie.patient.get(profile(marie, f"/elements/{entry_id}/supprimer")).status_code == 403

    masked = post(marie.patient, profile(marie, f"/elements/{entry_id}/masquer"), {}, profile(marie))
    assert (masked.status_code, masked.headers["location"]) == (303, profile(marie, "/conditions?message=masque"))
    after = marie.patient.get(masked.headers["location"])
    assert "Masqué aux professionnels" in seen(after) and f"/elements/{entry_id}/demasquer" in after.text
    assert "Hypertension artérielle" not in seen(pharmacist.get(pro_profile(marie)))
    assert "Hypertension artérielle" in seen(marie.professional.get(pro_profile(marie)))  # the médecin traitant

    shown = post(marie.patient, profile(marie, f"/elements/{entry_id}/demasquer"), {}, profile(marie))
    assert shown.headers["location"] == profile(marie, "/conditions?message=demasque")
    assert "Hypertension artérielle" in seen(pharmacist.get(pro_profile(marie)))
    own = post(marie.patient, profile(marie, f"/elements/{asthma_id(demo, marie)}/masquer"), {}, profile(marie))
    assert own.status_code == 403 and "se modifie ou se supprime" in seen(own)


def asthma_id(services: Services, actors: Actors) -> str:
    [asthma] = entries(services, actors.patient_id, section="conditions", source="patient")
    return asthma.id


def test_a_professional_sees_only_the_sections_of_their_profession(marie: Actors, pharmacist: TestClient) -> None:
    page = pharmacist.get(pro_profile(marie))
    assert page.status_code == 200
    text = seen(page)
    assert "Asthme" in text and "Pénicilline" in text and "O+" in text
    assert "Diabète de type 2" not in text  # family history is not the pharmacist's
    assert "Votre profession n'a pas accès à ces parties du profil :" in text and "Antécédents familiaux" in text
    assert 'id="partie-family_history"' not in page.text  # not shown as « empty »


def test_the_medecin_traitant_and_the_directives_are_links_not_copies(marie: Actors) -> None:
    page = marie.patient.get(profile(marie))
    assert "Médecin traitant : Dr Jean-Baptiste FERRACCI" in seen(page)
    assert f'href="/espace/{marie.patient_id}/acces#medecin"' in page.text
    assert f'href="/espace/{marie.patient_id}/documents?categorie=DIR_ANT"' in page.text
    section = marie.patient.get(profile(marie, "/professionals"))
    assert f'href="/espace/{marie.patient_id}/acces#medecin"' in section.text


# ------------------------------------------------------------------ measures (PRF-2)


def test_an_implausible_measure_is_refused_with_the_range_and_nothing_is_stored(marie: Actors, demo: Services) -> None:
    before = len(entries(demo, marie.patient_id, measure="weight"))
    page = profile(marie, "/mesures/weight")
    response = post(marie.patient, page, {"valeur": "900", "unite": "kg", "date": "2026-01-02", "heure": "08:30"})
    assert response.status_code == 422
    text = seen(response)
    assert "Poids : la valeur doit être comprise entre 0,2 et 650 kg." in text
    assert "La mesure n'a pas été enregistrée" in text and 'value="900"' in response.text
    assert 'aria-invalid="true"' in response.text
    for typed in ({"valeur": "abc"}, {"valeur": "70", "unite": "stone"}, {"valeur": "70", "date": "2026-13-45"}):
        bad = post(marie.patient, page, typed)
        assert bad.status_code == 400, typed
    future = (datetime.now(PARIS) + timedelta(days=3)).strftime("%Y-%m-%d")
    assert "futur" in seen(post(marie.patient, page, {"valeur": "70", "date": future, "heure": "10:00"}))
    assert "calculée" in seen(post(marie.patient, profile(marie, "/mesures/bmi"), {"valeur": "22"}))
    assert len(entries(demo, marie.patient_id, measure="weight")) == before


def test_a_glycemia_in_mg_per_dl_is_shown_in_g_per_l_with_what_was_typed(marie: Actors) -> None:
    page = profile(marie, "/mesures/glucose")
    form = marie.patient.get(page)
    assert '<option value="mg/dL">mg/dL</option>' in form.text and '<option value="mmol/L">mmol/L</option>' in form.text
    response = post(marie.patient, page, {"valeur": "110", "unite": "mg/dL"})
    assert (response.status_code, response.headers["location"]) == (303, f"{page}?message=mesure")
    shown = marie.patient.get(response.headers["location"])
    text = seen(shown)
    assert "La mesure a été enregistrée." in text
    assert "1,10 g/L" in text and "saisi : 110 mg/dL" in text
    assert chart_data(shown)["series"][0]["points"][0][1] == pytest.approx(1.1)
    post(marie.patient, page, {"valeur": "5,5", "unite": "mmol/L"})
    assert "0,99 g/L" in seen(marie.patient.get(page)) and "saisi : 5,5 mmol/L" in seen(marie.patient.get(page))


def test_a_blood_pressure_reading_is_in_the_table_and_on_the_chart(marie: Actors, demo: Services) -> None:
    page = profile(marie, "/mesures/blood_pressure")
    form = marie.patient.get(page)
    assert 'id="systolique"' in form.text and 'id="diastolique"' in form.text and 'id="valeur"' not in form.text
    now = datetime.now(PARIS)
    assert f'value="{now:%Y-%m-%d}"' in form.text  # the date and time default to now
    response = post(marie.patient, page, {"systolique": "135", "diastolique": "88", "date": f"{now:%Y-%m-%d}"})
    assert response.status_code == 303
    shown = marie.patient.get(page)
    rows = re.findall(r"<tr>(.*?)</tr>", shown.text, flags=re.S)
    assert any("135 mmHg" in row and "88 mmHg" in row for row in rows)
    assert '<th scope="col">Systolique</th>' in shown.text and '<th scope="col">Diastolique</th>' in shown.text
    assert "<caption" in shown.text
    chart = chart_data(shown)
    assert [s["label"] for s in chart["series"]] == ["Systolique", "Diastolique"]
    assert 135 in [p[1] for p in chart["series"][0]["points"]] and chart["unit"] == "mmHg"
    assert 'class="carnet-chart__plot" aria-hidden="true"' in shown.text
    assert "/static/vendor/uplot/uPlot.iife.min.js" in shown.text and "/static/charts.js" in shown.text
    inverted = post(marie.patient, page, {"systolique": "80", "diastolique": "120"})
    assert inverted.status_code == 422 and "supérieure à la diastolique" in seen(inverted)
    assert len(entries(demo, marie.patient_id, measure="blood_pressure")) == 4


def test_the_period_chooses_the_values_shown(marie: Actors, demo: Services) -> None:
    page = profile(marie, "/mesures/heart_rate")
    for days, value in ((3, "61"), (200, "72"), (900, "83"), (3000, "94")):
        when = datetime.now(PARIS) - timedelta(days=days)
        post(marie.patient, page, {"valeur": value, "date": f"{when:%Y-%m-%d}", "heure": "09:00"})
    expected = {"3m": {"61"}, "1a": {"61", "72"}, "5a": {"61", "72", "83"}, "tout": {"61", "72", "83", "94"}}
    for period, values in expected.items():
        response = marie.patient.get(f"{page}?periode={period}")
        cells = set(re.findall(r"<td[^>]*>(\d+) battements/min", response.text))
        assert cells == values, period
        assert re.search(rf'href="{page}\?periode={period}" aria-current="page"', response.text)
    default = marie.patient.get(page)
    assert set(re.findall(r"<td[^>]*>(\d+) battements/min", default.text)) == {"61", "72"}  # 12 months
    assert marie.patient.get(f"{page}?periode=n-importe").status_code == 200


def test_deleting_a_measure_asks_first(marie: Actors, demo: Services) -> None:
    page = profile(marie, "/mesures/weight")
    rows = marie.patient.get(f"{page}?periode=tout")
    ids = re.findall(rf'href="{profile(marie)}/elements/([0-9a-f-]{{36}})/supprimer"', rows.text)
    assert len(ids) == 6
    confirm = marie.patient.get(profile(marie, f"/elements/{ids[0]}/supprimer"))
    assert confirm.status_code == 200 and "Poids : 63,6 kg" in seen(confirm)
    done = post(marie.patient, profile(marie, f"/elements/{ids[0]}/supprimer"), {}, page)
    assert (done.status_code, done.headers["location"]) == (303, f"{page}?message=mesure-supprimee")
    assert len(entries(demo, marie.patient_id, measure="weight")) == 5
    assert "La mesure a été supprimée." in seen(marie.patient.get(done.headers["location"]))
    assert marie.patient.get(profile(marie, f"/elements/{ids[1]}/modifier")).status_code == 404  # never edited


def test_the_hba1c_target(marie: Actors) -> None:
    page = profile(marie, "/mesures/hba1c")
    first = seen(marie.patient.get(page))
    assert "Votre objectif d'HbA1c est de 7,0 %" in first
    response = post(marie.patient, f"{page}/objectif", {"objectif": "6,5"}, page)
    assert (response.status_code, response.headers["location"]) == (303, f"{page}?message=objectif")
    assert "Votre objectif d'HbA1c est de 6,5 %" in seen(marie.patient.get(page))
    post(marie.patient, page, {"valeur": "6,8"})
    chart = chart_data(marie.patient.get(page))
    assert chart["bands"][0]["label"] == "Objectif : 6,5 %"
    bad = post(marie.patient, f"{page}/objectif", {"objectif": "abc"}, page)
    assert bad.status_code == 400 and "Indiquez un nombre" in seen(bad)
    assert "objectif-erreur" in bad.text
    none = post(marie.patient, profile(marie, "/mesures/weight/objectif"), {"objectif": "60"}, page)
    assert none.status_code == 400 and "pas d'objectif pour cette mesure" in seen(none)
    assert 'id="objectif"' not in marie.patient.get(profile(marie, "/mesures/weight")).text


def test_a_childs_growth_is_drawn_against_the_who_curves(
    marie: Actors, demo: Services, new_client: Callable[[], TestClient]
) -> None:
    with demo.db.unit_of_work() as db:
        child = db.scalar(select(Patient.id).where(Patient.first_names == "Lisandru"))
    mother = new_client()
    log_in(mother, demo, MOTHER)
    base = f"/espace/{child}/profil"
    for key in ("weight", "height", "bmi"):
        page = mother.get(f"{base}/mesures/{key}")
        assert page.status_code == 200, key
        text = seen(page)
        assert "Courbes de référence : OMS" in text and "Percentile (OMS)" in text, key
        chart = chart_data(page)
        assert chart["x"] == "number" and [b["short"] for b in chart["bands"]] == ["3e", "15e", "50e", "85e", "97e"]
        assert len(chart["series"][0]["points"]) == 4, key  # every measure of his childhood, not the last year's
    assert "Directives anticipées" not in seen(mother.get(base))  # adults only
    response = post(mother, f"{base}/mesures/head_circumference", {"valeur": "52", "date": "2023-05-09"})
    assert response.status_code == 303  # a legal representative acts in the child's space
    assert "52,0 cm" in seen(mother.get(f"{base}/mesures/head_circumference"))
    adult = seen(marie.patient.get(profile(marie, "/mesures/weight")))
    assert "Courbes de référence" not in adult


# ------------------------------------------------------------------ addresses, tokens, unknowns


@pytest.mark.parametrize(
    "path",
    [
        "/inconnue",
        "/mesures/inconnue",
        "/elements/00000000-0000-0000-0000-000000000000/modifier",
        "/elements/00000000-0000-0000-0000-000000000000/supprimer",
        "/elements/" + "x" * 80 + "/modifier",
    ],
)
def test_unknown_sections_measures_and_entries_are_the_404_page(marie: Actors, path: str) -> None:
    response = marie.patient.get(profile(marie, path))
    assert response.status_code == 404
    assert "introuvable" in seen(response).lower()
    assert marie.professional.get(pro_profile(marie, "/mesures/inconnue")).status_code == 404


def test_unknown_targets_of_a_post_are_the_404_page(marie: Actors, demo: Services) -> None:
    before = count(demo)
    csrf = token(marie.patient, profile(marie))
    for path, data in {
        "/inconnue": {"label": "x"},
        "/mesures/inconnue": {"valeur": "1"},
        "/mesures/inconnue/objectif": {"objectif": "1"},
        "/elements/00000000-0000-0000-0000-000000000000/modifier": {"label": "x"},
        "/elements/00000000-0000-0000-0000-000000000000/supprimer": {},
        "/elements/00000000-0000-0000-0000-000000000000/masquer": {},
        "/elements/00000000-0000-0000-0000-000000000000/demasquer": {},
    }.items():
        response = marie.patient.post(profile(marie, path), data={**data, "csrf_token": csrf})
        assert response.status_code == 404, path
    assert count(demo) == before


def test_an_entry_of_another_space_is_unknown_here(marie: Actors, demo: Services) -> None:
    other = entries(demo, marie.patient_id, section="conditions")[0].id
    stranger_space = token(marie.stranger, "/espace")
    with demo.db.unit_of_work() as db:
        own_space = db.scalar(select(Account.patient_id).where(Account.login == "pierre-paul.luciani"))
    response = marie.stranger.post(
        f"/espace/{own_space}/profil/elements/{other}/supprimer", data={"csrf_token": stranger_space}
    )
    assert response.status_code == 404
    assert len(entries(demo, marie.patient_id, section="conditions")) == 1


def test_a_post_without_the_form_token_is_refused(marie: Actors, demo: Services) -> None:
    before = count(demo)
    for path, data in {
        "/allergies": {"label": "Latex"},
        "/mesures/weight": {"valeur": "70"},
        f"/elements/{asthma_id(demo, marie)}/supprimer": {},
    }.items():
        response = marie.patient.post(profile(marie, path), data=data)
        assert response.status_code == 403, path
        assert "Le formulaire a expiré" in text_of(response)
        forged = marie.patient.post(profile(marie, path), data={**data, "csrf_token": "x"})
        assert forged.status_code == 403
    assert count(demo) == before


def test_no_health_data_in_any_address(marie: Actors, demo: Services) -> None:
    """What is typed travels in the body of a POST; addresses, redirections and links carry ids only."""
    addresses: list[str] = []
    for section, fields in (
        ("allergies", {"label": "Arachide"}),
        ("vaccinations", {"label": "ROR", "date": "2001-02-03"}),
    ):
        response = post(marie.patient, profile(marie, f"/{section}"), fields)
        addresses.append(response.headers["location"])
    for key, data in (("blood_pressure", {"systolique": "147", "diastolique": "93"}), ("glucose", {"valeur": "1,37"})):
        addresses.append(post(marie.patient, profile(marie, f"/mesures/{key}"), data).headers["location"])
    bad = post(marie.patient, profile(marie, "/mesures/weight"), {"valeur": "987"})
    assert bad.status_code == 422
    for page in (profile(marie), profile(marie, "/allergies"), profile(marie, "/mesures/blood_pressure")):
        text = marie.patient.get(page).text
        addresses += re.findall(r'(?:href|action)="([^"]*)"', text)
    allowed = re.compile(
        r"^(http://testserver)?(/[A-Za-z0-9/_#.-]*|#[a-z]+)(\?(periode|message|categorie)=[a-zA-Z0-9_-]+)?$"
    )
    for address in addresses:
        assert allowed.match(address), address
        without_ids = re.sub(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", "ID", address)
        for typed in ("Arachide", "ROR", "147", "93", "1,37", "1.37", "987"):
            assert typed not in without_ids, address


def test_the_measures_form_takes_a_moment_in_french_time(marie: Actors, demo: Services) -> None:
    year = datetime.now(PARIS).year - 1
    typed = {"valeur": "38,2", "date": f"{year}-07-14", "heure": "23:30"}
    post(marie.patient, profile(marie, "/mesures/temperature"), typed)
    [stored] = entries(demo, marie.patient_id, measure="temperature")
    assert stored.effective_at == datetime(year, 7, 14, 21, 30, tzinfo=UTC)  # summer time: UTC+2
    page = seen(marie.patient.get(profile(marie, "/mesures/temperature?periode=tout")))
    assert f"14/07/{year} à 23:30" in page and "38,2 °C" in page
