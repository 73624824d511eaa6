"""Demo data set in Corsica (idempotent): patients in Ajaccio (2A) and Bastia (2B),
a general practitioner, a pharmacist, a dentist and a hospital lab."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from carnet.access.tables import AccessGrant
from carnet.agenda.model.events import TypedEvent
from carnet.agenda.service import portal as agenda
from carnet.agenda.tables import AgendaEvent
from carnet.bootstrap import Services
from carnet.catalogue.tables import App, RedirectUri
from carnet.hall import audit
from carnet.hall.actors import Actor, ActorKind
from carnet.hall.vocabulary import PARIS
from carnet.identity.service.auth import hash_password
from carnet.people.model.identifiers import nir_from_body, validate_finess, validate_rpps
from carnet.people.model.professions import profession_label
from carnet.people.tables import Account, Establishment, Patient, Professional
from carnet.profile.service import portal as profile
from carnet.profile.tables import ProfileEntry

DEMO_PASSWORD = "Carnet-Demo-2026!"  # noqa: S105 — published demo credential, demo data only


OPERATOR_LOGIN = "operateur.cpam"


@dataclass(frozen=True)
class DemoLogin:
    login: str
    who: str
    kind: str


PATIENTS = [
    # body (13), birth name, first names, birth date, sex, INSEE birth place, commune, CP, dépt, address, login
    (
        "285032A004117",
        "SANTONI",
        "Marie-Ange",
        date(1985, 3, 14),
        "F",
        "2A004",
        "Ajaccio",
        "20000",
        "2A",
        "8 cours Grandval",
        "marie-ange.santoni",
        "adulte",
    ),
    (
        "148072B033045",
        "LUCIANI",
        "Pierre-Paul",
        date(1948, 7, 2),
        "M",
        "2B033",
        "Bastia",
        "20200",
        "2B",
        "14 boulevard Paoli",
        "pierre-paul.luciani",
        "senior",
    ),
    (
        "290112B033208",
        "CASANOVA",
        "Laetitia",
        date(1990, 11, 20),
        "F",
        "2B033",
        "Bastia",
        "20200",
        "2B",
        "3 rue César Campinchi",
        "laetitia.casanova",
        "parent",
    ),
    (
        "117052B033311",
        "CASANOVA",
        "Lisandru",
        date(2017, 5, 9),
        "M",
        "2B033",
        "Bastia",
        "20200",
        "2B",
        "3 rue César Campinchi",
        None,
        "enfant",
    ),
]
PROFESSIONALS = [
    (
        "10001234567",
        "FERRACCI",
        "Jean-Baptiste",
        "10",
        "Médecine générale",
        "12 cours Napoléon",
        "Ajaccio",
        "dr.ferracci",
    ),
    (
        "10002345678",
        "PERETTI",
        "Anna Maria",
        "21",
        None,
        "Pharmacie du Port, 5 boulevard Paoli",
        "Bastia",
        "anna-maria.peretti",
    ),
    ("10003456789", "ORSINI", "Dominique", "40", None, "3 rue Fesch", "Ajaccio", "dominique.orsini"),
    (
        "10004567891",
        "SANTUCCI",
        "Paul-Antoine",
        "10",
        "Médecin régulateur — SAMU 2A",
        "Hôpital de la Miséricorde",
        "Ajaccio",
        "dr.santucci",
    ),
]
SAMU_REGULATORS = {"10004567891"}
# ACC-1, ACC-2: Marie-Ange Santoni declared Dr Ferracci her médecin traitant and authorised her pharmacist;
# Dr Orsini (dentist) and Dr Santucci (SAMU) have no authorisation.
DEMO_GRANTS = [
    ("marie-ange.santoni", "10001234567", "medecin_traitant"),
    ("marie-ange.santoni", "10002345678", "reader"),
]
ROLES = {"adulte": "patient adulte", "senior": "patient senior", "parent": "parent d'un enfant rattaché"}
LAB = ("2B0000020", "Laboratoire de biologie médicale — Centre hospitalier de Bastia", "laboratoire", "Bastia", "2B")
LAB_MAIL = "biologie@ch-bastia.mssante.exemple.fr"  # MSG-3: the demo's secure-mail addresses


def secure_mail_of(login: str) -> str:
    """The demo professional's secure-mail (MSSanté-style) address."""
    return f"{login}@pro.mssante.exemple.fr"


def _account(services: Services, db: Session, login: str, **fields: object) -> None:
    account = db.scalar(select(Account).where(Account.login == login))
    if account is None:
        db.add(Account(login=login, password_hash=hash_password(services, DEMO_PASSWORD), **fields))
    else:
        for name, value in fields.items():
            setattr(account, name, value)


def load_demo(services: Services, db: Session) -> list[DemoLogin]:
    """Create or refresh the demo data; returns the logins to print."""
    logins: list[DemoLogin] = []
    system = Actor.system("Carnet (données de démonstration)")
    parent_id: str | None = None
    for body, name, first, born, sex, place, city, cp, dept, street, login, role in PATIENTS:
        ins = nir_from_body(body)
        patient = db.scalar(select(Patient).where(Patient.ins == ins))
        email = f"{login or 'famille.casanova'}@exemple.fr"
        fields = dict(
            birth_name=name,
            first_names=first,
            birth_date=born,
            sex=sex,
            birth_place=place,
            email=email,
            address=street,
            postal_code=cp,
            city=city,
            departement=dept,
            attached_to_id=parent_id if role == "enfant" else None,
        )
        if patient is None:
            patient = Patient(ins=ins, **fields)
            db.add(patient)
            db.flush()
            audit.record(db, system, "space.created", patient_id=patient.id, resource_type="space")
        else:
            for field_name, value in fields.items():
                setattr(patient, field_name, value)
        if role == "parent":
            parent_id = patient.id
        if login:
            _account(
                services, db, login, kind="patient", email=email, patient_id=patient.id, display_name=f"{first} {name}"
            )
            logins.append(DemoLogin(login, f"{first} {name} — {ROLES[role]}, {city} ({dept})", "patient"))
    finess, lab_name, kind, lab_city, lab_dept = LAB
    lab = db.scalar(select(Establishment).where(Establishment.finess == validate_finess(finess)))
    if lab is None:
        db.add(
            Establishment(finess=finess, name=lab_name, kind=kind, city=lab_city, departement=lab_dept, email=LAB_MAIL)
        )
    else:
        lab.email = LAB_MAIL
    for rpps, name, first, profession, specialty, street, city, login in PROFESSIONALS:
        pro = db.scalar(select(Professional).where(Professional.rpps == validate_rpps(rpps)))
        fields = dict(
            last_name=name,
            first_name=first,
            profession_code=profession,
            specialty=specialty,
            practice_address=street,
            city=city,
            samu_regulator=rpps in SAMU_REGULATORS,
            email=secure_mail_of(login),
        )
        if pro is None:
            pro = Professional(rpps=rpps, **fields)
            db.add(pro)
            db.flush()
        else:
            for field_name, value in fields.items():
                setattr(pro, field_name, value)
        title = "Dr " if profession in {"10", "40"} else ""
        _account(
            services,
            db,
            login,
            kind="professional",
            email=f"{login}@exemple.fr",
            professional_id=pro.id,
            display_name=f"{title}{first} {name}",
        )
        logins.append(
            DemoLogin(
                login, f"{title}{first} {name} — {specialty or profession_label(profession)}, {city}", "professional"
            )
        )
    _demo_grants(db)
    _account(  # ENR-2/ENR-3: the operator console (campaigns, phone objections, letters)
        services,
        db,
        OPERATOR_LOGIN,
        kind="operator",
        email=f"{OPERATOR_LOGIN}@exemple.fr",
        display_name="Conseiller CPAM de Corse",
    )
    logins.append(DemoLogin(OPERATOR_LOGIN, "Conseiller CPAM de Corse — console des conseillers", "operator"))
    _demo_app(db)
    return logins


DEMO_APP_CLIENT_ID = "app-demo-tensio"


def _demo_app(db: Session) -> None:
    """CAT-1: one referenced app EN_LIGNE, so that the catalogue is not empty (a public client, PKCE only)."""
    if db.scalar(select(App.id).where(App.client_id == DEMO_APP_CLIENT_ID)) is not None:
        return
    app = App(
        client_id=DEMO_APP_CLIENT_ID,
        name="Tensio Maison",
        editor="Tensio SAS (démonstration)",
        description="Balance et tensiomètre connectés : vos mesures arrivent d'elles-mêmes dans votre profil médical.",
        purpose="Ajoute le poids et la tension mesurés à la maison ; lit vos mesures pour en tracer l'évolution.",
        retention="Les mesures restent sur votre téléphone ; rien n'est conservé par l'éditeur.",
        consent_wording="Vous pourrez déconnecter Tensio Maison à tout moment depuis Carnet.",
        security="Client public, PKCE S256, jetons d'une heure.",
        category="Objet connecté",
        scope="patient/Observation.crs",
        status="EN_LIGNE",
        referenced_until=datetime.now(UTC) + timedelta(days=365),
    )
    db.add(app)
    db.flush()
    db.add(RedirectUri(app_id=app.id, uri="http://127.0.0.1:8765/retour"))


def _demo_grants(db: Session) -> None:
    for login, rpps, role in DEMO_GRANTS:
        patient_id = db.scalar(select(Account.patient_id).where(Account.login == login))
        pro_id = db.scalar(select(Professional.id).where(Professional.rpps == rpps))
        if patient_id is None or pro_id is None:
            continue
        existing = db.scalar(
            select(AccessGrant).where(
                AccessGrant.patient_id == patient_id,
                AccessGrant.professional_id == pro_id,
                AccessGrant.revoked_at.is_(None),
            )
        )
        if existing is None:
            db.add(
                AccessGrant(
                    patient_id=patient_id,
                    professional_id=pro_id,
                    role=role,
                    origin="patient",
                    granted_by="démonstration",
                )
            )


PROFILE_ITEMS = [  # Marie-Ange's profile (PRF-1), as she could have filled it in
    ("allergies", {"label": "Pénicilline", "reaction": "Urticaire", "severity": "Modérée"}),
    ("conditions", {"label": "Asthme", "since": "2002-09-01", "status": "En cours"}),
    ("treatments", {"label": "Salbutamol 100 µg", "dosage": "2 bouffées en cas de crise"}),
    ("family_history", {"label": "Diabète de type 2", "relative": "Père"}),
    ("vaccinations", {"label": "dTcaPolio (rappel des 25 ans)", "date": "2010-05-12"}),
    ("blood_group", {"label": "O+"}),
]
WEIGHTS = (64.0, 63.5, 63.2, 63.8, 64.1, 63.6)


def _person(db: Session, body: str, login: str | None) -> Actor | None:
    """A demo person acting in the portal, as their login would make them."""
    patient = db.scalar(select(Patient).where(Patient.ins == nir_from_body(body)))
    account = db.scalar(select(Account).where(Account.login == login)) if login else None
    if patient is None or account is None:
        return None
    label = f"{patient.first_names} {patient.birth_name}"
    return Actor(ActorKind.PATIENT, account.id, label, patient_id=patient.id)


def load_profile_demo(services: Services, now: datetime | None = None) -> None:
    """Marie-Ange's profile and measures as she filled them in; Lisandru's growth as his mother entered it.
    Only into an empty profile (idempotent)."""
    now = now or datetime.now(UTC)
    with services.db.unit_of_work() as db:
        marie, mother = _person(db, PATIENTS[0][0], PATIENTS[0][10]), _person(db, PATIENTS[2][0], PATIENTS[2][10])
        child = db.scalar(select(Patient.id).where(Patient.ins == nir_from_body(PATIENTS[3][0])))
    if marie is None or mother is None or child is None or not marie.patient_id:
        return
    space = marie.patient_id
    with services.db.unit_of_work() as db:  # counted, not opened: the data may be sealed under another master key
        if db.scalar(select(func.count()).select_from(ProfileEntry).where(ProfileEntry.patient_id == space)):
            return
    for section, fields in PROFILE_ITEMS:
        profile.add_item(services, marie, space, section, fields)
    profile.add_measure(services, marie, space, "height", profile.MeasureInput("165", when=now - timedelta(days=400)))
    for months, kilos in enumerate(WEIGHTS):
        when = now - timedelta(days=30 * (len(WEIGHTS) - months))
        profile.add_measure(services, marie, space, "weight", profile.MeasureInput(str(kilos), when=when))
    for days, (systolic, diastolic) in enumerate(((128, 82), (124, 79), (131, 85))):
        typed = profile.MeasureInput(
            systolic=str(systolic), diastolic=str(diastolic), when=now - timedelta(days=3 - days)
        )
        profile.add_measure(services, marie, space, "blood_pressure", typed)
    born = PATIENTS[3][3]
    for age_years, height, weight in ((1, 76.0, 9.8), (2, 87.5, 12.4), (4, 103.0, 16.5), (6, 116.0, 21.0)):
        when = datetime(born.year + age_years, born.month, born.day, 10, tzinfo=UTC)
        if when < now:
            profile.add_measure(services, mother, child, "height", profile.MeasureInput(str(height), when=when))
            profile.add_measure(services, mother, child, "weight", profile.MeasureInput(str(weight), when=when))


AGENDA_ITEMS = [  # (days from today, hour or None for the whole day, minutes, kind, title, place, with whom, comment)
    (3, 9, 30, "rendez_vous", "Bilan sanguin", "Laboratoire du cours Napoléon, Ajaccio", "Laboratoire", "À jeun."),
    (
        12,
        14,
        0,
        "rendez_vous",
        "Pneumologue : suivi de l'asthme",
        "Centre médical du Diamant, Ajaccio",
        "Dr Leca, pneumologue",
        "Apporter les dernières ordonnances.",
    ),
    (20, None, 0, "rappel", "Renouveler l'ordonnance de Ventoline", "", "", ""),
    (-25, 11, 0, "rendez_vous", "Ophtalmologue", "Clinique Santa Maria, Ajaccio", "Dr Mariani", ""),
]


def _professional(db: Session, login: str) -> Actor | None:
    """A demo professional acting in their portal, as their login would make them."""
    account = db.scalar(select(Account).where(Account.login == login))
    pro = db.get(Professional, account.professional_id) if account and account.professional_id else None
    if account is None or pro is None:
        return None
    return Actor(
        ActorKind.PROFESSIONAL,
        account.id,
        account.display_name,
        professional_id=pro.id,
        rpps=pro.rpps,
        profession_code=pro.profession_code,
    )


def load_agenda_demo(services: Services, now: datetime | None = None) -> None:
    """Marie-Ange's agenda (AGD-1): appointments and a reminder she entered, and a follow-up her médecin traitant
    gave her. Only into an empty agenda (idempotent: rows are counted, never opened — they may be sealed under
    another master key)."""
    today = (now or datetime.now(UTC)).astimezone(PARIS).date()
    with services.db.unit_of_work() as db:
        marie, doctor = _person(db, PATIENTS[0][0], PATIENTS[0][10]), _professional(db, PROFESSIONALS[0][7])
    if marie is None or doctor is None or not marie.patient_id:
        return
    space = marie.patient_id
    with services.db.unit_of_work() as db:
        if db.scalar(select(func.count()).select_from(AgendaEvent).where(AgendaEvent.patient_id == space)):
            return
    for days, hour, minutes, kind, title, place, with_whom, comment in AGENDA_ITEMS:
        day = (today + timedelta(days=days)).isoformat()
        start = f"{hour:02d}:{minutes:02d}" if hour is not None else ""
        end = f"{hour + 1:02d}:{minutes:02d}" if hour is not None and kind == "rendez_vous" else ""
        typed = TypedEvent(kind, title, day, start, end, hour is None, place, with_whom, comment)
        agenda.add(services, marie, space, typed)
    follow_up = (today + timedelta(days=45)).isoformat()
    typed = TypedEvent(
        "rendez_vous",
        "Consultation de suivi du diabète",
        follow_up,
        "10:00",
        "10:30",
        False,
        "12 cours Napoléon, Ajaccio",
        "Dr Jean-Baptiste FERRACCI, médecin généraliste",
        "Apporter le carnet de glycémie.",
    )
    agenda.add(services, doctor, space, typed)


def _letter_pdf(lines: list[str]) -> bytes:
    """A one-page PDF letter (Helvetica) for the demo's attachments."""
    text = " ".join(f"({line.replace(chr(92), '').replace('(', '[').replace(')', ']')}) Tj 0 -18 Td" for line in lines)
    stream = f"BT /F1 12 Tf 72 760 Td {text} ET".encode("cp1252")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


def load_messaging_demo(services: Services) -> None:
    """Marie-Ange's messaging (MSG-1, MSG-2): her médecin traitant wrote with a results letter attached, she
    answered; the hospital laboratory wrote too. Only into an empty messaging (idempotent: rows are counted)."""
    from carnet.messaging.model.messages import SentFile
    from carnet.messaging.service import conversations
    from carnet.messaging.tables import Thread

    with services.db.unit_of_work() as db:
        marie, doctor = _person(db, PATIENTS[0][0], PATIENTS[0][10]), _professional(db, PROFESSIONALS[0][7])
        lab = db.scalar(select(Establishment).where(Establishment.finess == LAB[0]))
        lab_actor = (
            Actor(ActorKind.ESTABLISHMENT, lab.id, lab.name, finess=lab.finess, establishment_id=lab.id)
            if lab
            else None
        )
    if marie is None or doctor is None or lab_actor is None or not marie.patient_id:
        return
    space = marie.patient_id
    with services.db.unit_of_work() as db:
        if db.scalar(select(func.count()).select_from(Thread).where(Thread.patient_id == space)):
            return
    letter = _letter_pdf(
        [
            "Dr Jean-Baptiste FERRACCI - Medecine generale - Ajaccio",
            "Resultats du bilan sanguin",
            "Hemoglobine glyquee (HbA1c) : 6,9 %",
            "Glycemie a jeun : 1,18 g/L",
        ]
    )
    thread_id = conversations.start(
        services,
        doctor,
        space,
        "Résultats de votre bilan sanguin",
        "Bonjour Madame Santoni,\n\nVos résultats sont arrivés : l'hémoglobine glyquée est à 6,9 %, dans "
        "l'objectif. Nous en reparlerons à la consultation de suivi.\n\nBien cordialement,\nDr Ferracci",
        [SentFile("resultats-bilan-sanguin.pdf", "application/pdf", letter)],
    )
    conversations.answer(services, marie, thread_id, "Merci docteur, à bientôt.", space=space)
    conversations.answer(
        services, doctor, thread_id, "Pensez à apporter votre carnet de glycémie au prochain rendez-vous."
    )
    conversations.start(
        services,
        lab_actor,
        space,
        "Vos résultats sont disponibles",
        "Bonjour,\n\nLe compte rendu de votre prélèvement du mois dernier a été déposé dans vos documents.\n\n"
        "Le laboratoire du Centre hospitalier de Bastia",
    )
