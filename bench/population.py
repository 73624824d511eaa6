"""A realistic population on a Carnet instance (issue #18-5): people, documents, measures, history.

    .venv/bin/python bench/population.py --people 100000 [--documents-per-person 20] [--document-people 2000]
        [--document-every 50] [--target-documents 400] [--measures-per-person 3]
        [--database-url postgresql://postgres@127.0.0.1:5432/carnet_pop] [--blob-url s3://…] [--data-dir DIR]

1. The schema (``carnet migrate``) and the demo data set (``carnet demo``: the laboratory that deposits, and
   Marie-Ange Santoni, the patient whose pages bench/latency.py times).
2. ``--people`` people in bulk (one INSERT per 10,000 rows, ON CONFLICT (ins) DO NOTHING): valid INS (the key
   computed by ``nir_from_body``), birth dates, places and départements spread over France.
3. For ``--document-people`` of them (one in ``--document-every``), ``--documents-per-person`` small real-shaped
   PDFs (a few KiB) each, and ``--target-documents`` for Marie-Ange, deposited by the demo laboratory through the
   vault service (``deposit_many``, ``--batch`` per transaction): sealed with the person's data key, bodies in the
   configured blob store (``CARNET_BLOB_URL``, or the folder in ``--data-dir``), index terms, one history entry each.
4. ``--measures-per-person`` measures for each of those people (and Marie-Ange), entered by the person through the
   profile service (sealed, one history entry each).
Re-running continues where it stopped: people are skipped by INS, documents and measures counted per person.
Prints the rows per second of each step, the database size (PostgreSQL: pg_database_size; SQLite: the file) and
the bytes per document. A PostgreSQL database that does not exist yet is created.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from carnet.people.model.identifiers import nir_from_body  # noqa: E402
from tests.support.documents import make_pdf  # noqa: E402

LAB_FINESS = "2B0000020"  # the demo laboratory (carnet demo)
TARGET_LOGIN = "marie-ange.santoni"  # the demo patient bench/latency.py logs in as
SURNAMES = (
    "MARTIN",
    "BERNARD",
    "THOMAS",
    "PETIT",
    "ROBERT",
    "RICHARD",
    "DURAND",
    "DUBOIS",
    "MOREAU",
    "LAURENT",
    "SIMON",
    "MICHEL",
    "LEFEBVRE",
    "LEROY",
    "ROUX",
    "DAVID",
    "BERTRAND",
    "MOREL",
    "FOURNIER",
    "GIRARD",
    "SANTONI",
    "CASANOVA",
    "PIETRI",
    "LUCIANI",
    "ALBERTINI",
    "FILIPPI",
    "GIUDICELLI",
    "MATTEI",
)
FIRST_NAMES = {
    "1": (
        "Jean",
        "Pierre",
        "Louis",
        "Paul",
        "Antoine",
        "Ange",
        "Dominique",
        "Lucas",
        "Hugo",
        "Nathan",
        "Mathis",
        "Léo",
        "Gabriel",
        "Raphaël",
    ),
    "2": (
        "Marie",
        "Jeanne",
        "Anne",
        "Catherine",
        "Isabelle",
        "Sophie",
        "Julie",
        "Camille",
        "Léa",
        "Chloé",
        "Emma",
        "Manon",
        "Inès",
        "Lina",
    ),
}
# (département, one of its communes' INSEE code) — birth place and residence
PLACES = (
    ("2A", "004"),
    ("2B", "033"),
    ("75", "056"),
    ("13", "055"),
    ("69", "123"),
    ("33", "063"),
    ("59", "350"),
    ("31", "555"),
    ("44", "109"),
    ("67", "482"),
)
# (LOINC type, what the report says): types of the ANS value set, each filed in its category
DOCUMENTS = (
    ("11502-2", "Compte rendu de biologie : hémoglobine glyquée, ferritine, créatinine, bilan lipidique."),
    ("11488-4", "Compte rendu de consultation : examen clinique, tension artérielle, conduite à tenir."),
    ("18748-4", "Compte rendu d'imagerie : radiographie thoracique de face, pas d'anomalie décelée."),
    ("57833-6", "Prescription de médicaments : amoxicilline 1 g matin et soir pendant sept jours."),
    ("11490-0", "Lettre de liaison à la sortie : séjour de trois jours, traitement de sortie, suivi."),
    ("18842-5", "Compte rendu de fin d'hospitalisation : motif, évolution, examens, traitement."),
    ("11526-1", "Compte rendu d'anatomie et de cytologie pathologiques : prélèvement cutané bénin."),
    ("34133-9", "Synthèse d'épisode de soins : consultations, examens et traitements de l'épisode."),
)
MEASURES = (("weight", "63,5"), ("heart_rate", "72"), ("temperature", "36,8"), ("glucose", "0,95"), ("steps", "8500"))


def progress(label: str, done: int, total: int, started: float, unit: str) -> None:
    """One progress line on stderr, rewritten in place (tqdm is not a dependency)."""
    rate = done / max(time.perf_counter() - started, 1e-9)
    share = 100 * done / total if total else 100
    end = "\n" if done >= total else ""
    print(
        f"\r  {label} : {done}/{total} ({share:3.0f} %) {rate:,.0f} {unit}/s   ", end=end, file=sys.stderr, flush=True
    )


def environment(database_url: str, data_dir: str, blob_url: str) -> dict[str, str]:
    """The CARNET_* settings every step (and bench/latency.py's server) shares."""
    env = {**os.environ, "CARNET_DATA_DIR": data_dir, "CARNET_LOG_LEVEL": "WARNING", "CARNET_SMTP_URL": "outbox:"}
    if database_url:
        env["CARNET_DATABASE_URL"] = database_url
    if blob_url:
        env["CARNET_BLOB_URL"] = blob_url
    return env


def ensure_database(database_url: str) -> None:
    """Create the PostgreSQL database named in the URL if it does not exist yet."""
    if not database_url.startswith("postgresql"):
        return
    import psycopg

    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    name = url.rsplit("/", 1)[1].split("?")[0]
    with psycopg.connect(re.sub(r"/[^/?]*(\?|$)", r"/postgres\1", url), autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone() is None:
            conn.execute(f'CREATE DATABASE "{name}"')


def carnet(env: dict[str, str], *args: str) -> str:
    import subprocess

    done = subprocess.run([sys.executable, "-m", "carnet", *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"carnet {' '.join(args)} a échoué :\n{done.stderr[-2000:]}")
    return done.stdout


def person(index: int) -> dict[str, Any]:
    """The ``index``-th person: a valid INS unique for index < 998,001 (commune and order number), traits that agree."""
    sex = "1" if index % 2 == 0 else "2"
    year = 1930 + (index * 7919) % 95
    month = 1 + (index // 7) % 12
    departement, commune = PLACES[(index // 3) % len(PLACES)]
    body = f"{sex}{year % 100:02d}{month:02d}{departement}{1 + index % 999:03d}{1 + index // 999 % 999:03d}"
    return {
        "ins": nir_from_body(body),
        "ins_oid": "1.2.250.1.213.1.4.8",
        "birth_name": SURNAMES[index % len(SURNAMES)],
        "first_names": FIRST_NAMES[sex][(index // 5) % len(FIRST_NAMES[sex])],
        "birth_date": date(year, month, 1 + index % 28),
        "sex": "M" if sex == "1" else "F",
        "birth_place": f"{departement}{commune}",
        "departement": departement,
        "status": "active",
    }


def chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def insert_people(services: Any, count: int) -> None:
    from sqlalchemy.dialects.postgresql import insert as pg_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from carnet.people.tables import Patient
    from carnet.storage.types import new_id, utcnow

    started = time.perf_counter()
    now = utcnow()
    for start in range(0, count, 10_000):
        rows = [
            {**person(i), "id": new_id(), "opened_at": now, "created_at": now}
            for i in range(start, min(start + 10_000, count))
        ]
        with services.db.unit_of_work() as db:
            insert = pg_insert if db.get_bind().dialect.name == "postgresql" else sqlite_insert
            db.execute(insert(Patient).on_conflict_do_nothing(index_elements=["ins"]), rows)
        progress("personnes", start + len(rows), count, started, "lignes")
    elapsed = time.perf_counter() - started
    print(f"people: {count} in {elapsed:.1f} s ({count / elapsed:,.0f} rows/s, ON CONFLICT (ins) DO NOTHING)")


def ids_of(services: Any, inss: list[str]) -> list[str]:
    from sqlalchemy import select

    from carnet.people.tables import Patient

    found: dict[str, str] = {}
    with services.db.unit_of_work() as db:
        for part in chunks(inss, 1000):
            found.update(
                (ins, pid) for ins, pid in db.execute(select(Patient.ins, Patient.id).where(Patient.ins.in_(part)))
            )
    return [found[ins] for ins in inss if ins in found]


def counted(services: Any, column: Any, patient_ids: list[str], *where: Any) -> dict[str, int]:
    """How many rows each person already has (what a resumed run does not do again)."""
    from sqlalchemy import func, select

    counts: dict[str, int] = {}
    with services.db.unit_of_work() as db:
        for part in chunks(patient_ids, 1000):
            query = select(column, func.count()).where(column.in_(part), *where).group_by(column)
            counts.update((pid, int(n)) for pid, n in db.execute(query))
    return counts


def new_document(vault: Any, patient_id: str, number: int) -> Any:
    type_code, text = DOCUMENTS[number % len(DOCUMENTS)]
    when = datetime(2026, 1, 1, tzinfo=UTC) - timedelta(days=(number * 37) % 3650)
    body = make_pdf(f"{text} Document {number}, du {when:%d/%m/%Y}.", padding=2500 + (number * 131) % 3000)
    return vault.NewDocument(
        patient_id=patient_id,
        type_system="http://loinc.org",
        type_code=type_code,
        title=f"{text.split(' :')[0]} du {when:%d/%m/%Y}",
        mime_type="application/pdf",
        body=body,
        service_date=when,
    )


def deposit(services: Any, wanted: dict[str, int], batch_size: int) -> None:
    """Each person's missing documents, deposited by the demo laboratory through the vault service."""
    from sqlalchemy import select

    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Establishment
    from carnet.vault.service import documents as vault
    from carnet.vault.tables import Document

    with services.db.unit_of_work() as db:
        lab_id = db.scalar(select(Establishment.id).where(Establishment.finess == LAB_FINESS))
    lab = Actor(
        ActorKind.ESTABLISHMENT, "population", "Laboratoire de biologie", finess=LAB_FINESS, establishment_id=lab_id
    )
    have = counted(services, Document.patient_id, list(wanted))
    todo = [(pid, n) for pid, want in wanted.items() for n in range(have.get(pid, 0), want)]
    total, started, batch = len(todo), time.perf_counter(), []
    print(f"documents: {sum(have.values())} already there, {total} to deposit")
    for done, (patient_id, number) in enumerate(todo, start=1):
        batch.append(new_document(vault, patient_id, number))
        if len(batch) == batch_size or done == total:
            vault.deposit_many(services, lab, batch)
            batch = []
            progress("documents", done, total, started, "documents")
    if total:
        elapsed = time.perf_counter() - started
        print(f"documents: {total} in {elapsed:.1f} s ({total / elapsed:,.0f} documents/s)")


def enter_measures(services: Any, wanted: dict[str, int]) -> None:
    """Each person's missing measures, entered by the person (the profile service: sealed, one history entry)."""
    from carnet.hall.actors import Actor, ActorKind
    from carnet.profile.service import portal
    from carnet.profile.tables import ProfileEntry

    have = counted(services, ProfileEntry.patient_id, list(wanted), ProfileEntry.measure.is_not(None))
    todo = [(pid, n) for pid, want in wanted.items() for n in range(have.get(pid, 0), want)]
    total, started = len(todo), time.perf_counter()
    for done, (patient_id, number) in enumerate(todo, start=1):
        key, value = MEASURES[number % len(MEASURES)]
        me = Actor(ActorKind.PATIENT, patient_id, "La personne", patient_id=patient_id)
        portal.add_measure(services, me, patient_id, key, portal.MeasureInput(value))
        if done % 200 == 0 or done == total:
            progress("mesures", done, total, started, "mesures")
    if total:
        elapsed = time.perf_counter() - started
        print(f"measures: {total} in {elapsed:.1f} s ({total / elapsed:,.0f} measures/s)")


def sizes(services: Any, settings: Any) -> dict[str, int]:
    from sqlalchemy import func, select, text

    from carnet.hall.tables import AuditEntry
    from carnet.people.tables import Patient
    from carnet.profile.tables import ProfileEntry
    from carnet.vault.tables import Document, DocumentTerm

    with services.db.unit_of_work() as db:
        found = {
            name: int(db.scalar(select(func.count()).select_from(table)) or 0)
            for name, table in (
                ("people", Patient),
                ("documents", Document),
                ("index_terms", DocumentTerm),
                ("profile_entries", ProfileEntry),
                ("history_entries", AuditEntry),
            )
        }
        found["document_bytes"] = int(db.scalar(select(func.coalesce(func.sum(Document.size), 0))) or 0)
        if db.get_bind().dialect.name == "postgresql":
            found["database_bytes"] = int(db.scalar(text("SELECT pg_database_size(current_database())")))
    if "database_bytes" not in found:
        file = Path(settings.resolved_database_url.removeprefix("sqlite:///"))
        found["database_bytes"] = sum(p.stat().st_size for p in file.parent.glob(file.name + "*"))
    blobs = settings.resolved_data_dir / "blobs"
    if not settings.blob_url and blobs.is_dir():
        found["blob_bytes"] = sum(p.stat().st_size for p in blobs.rglob("*") if p.is_file())
    return found


def report(found: dict[str, int]) -> None:
    mib = 1024 * 1024
    print(
        f"\ncounts: {found['people']:,} people, {found['documents']:,} documents, "
        f"{found['index_terms']:,} index terms, {found['profile_entries']:,} profile entries, "
        f"{found['history_entries']:,} history entries"
    )
    per_document = found["database_bytes"] / max(found["documents"], 1)
    print(
        f"database size: {found['database_bytes'] / mib:,.1f} MiB ({per_document:,.0f} bytes per document, all tables)"
    )
    if "blob_bytes" in found:
        per_body = found["blob_bytes"] / max(found["documents"], 1)
        print(
            f"blob folder: {found['blob_bytes'] / mib:,.1f} MiB ({per_body:,.0f} bytes per document; "
            f"bodies as deposited: {found['document_bytes'] / max(found['documents'], 1):,.0f} bytes)"
        )


def sample(people: int, document_people: int, every: int) -> list[int]:
    """The people who get documents: every ``every``-th one, at most ``document_people`` — the same ones at every
    run, so that a run with more people keeps the documents of a smaller one."""
    return list(range(0, people, every))[:document_people]


def main(argv: Iterable[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, required=True)
    parser.add_argument("--documents-per-person", type=int, default=20)
    parser.add_argument("--document-people", type=int, default=2000, help="how many people get documents")
    parser.add_argument("--document-every", type=int, default=50, help="one person in so many gets documents")
    parser.add_argument("--target-documents", type=int, default=400, help="Marie-Ange Santoni's documents")
    parser.add_argument("--measures-per-person", type=int, default=3)
    parser.add_argument("--batch", type=int, default=200, help="documents per deposit_many transaction")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--blob-url", default="")
    parser.add_argument("--data-dir", default="carnet-population")
    args = parser.parse_args(list(argv) if argv is not None else None)

    ensure_database(args.database_url)
    env = environment(args.database_url, str(Path(args.data_dir).resolve()), args.blob_url)
    steps = time.perf_counter()
    carnet(env, "migrate")
    carnet(env, "demo")
    print(f"schema and demo data: {time.perf_counter() - steps:.1f} s")
    os.environ.update(env)
    from sqlalchemy import select

    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.people.tables import Account

    settings = Settings()
    services = build_services(settings)
    try:
        insert_people(services, args.people)
        chosen = ids_of(
            services, [person(i)["ins"] for i in sample(args.people, args.document_people, args.document_every)]
        )
        with services.db.unit_of_work() as db:
            target = db.scalar(select(Account.patient_id).where(Account.login == TARGET_LOGIN))
        assert target, "the demo patient is missing"
        deposit(
            services, {target: args.target_documents} | dict.fromkeys(chosen, args.documents_per_person), args.batch
        )
        enter_measures(services, dict.fromkeys([target, *chosen], args.measures_per_person))
        if services.db.engine.dialect.name == "postgresql":
            # What autovacuum does after a load (off on this machine's PostgreSQL): statistics and the visibility map
            # the per-patient index-only scans need — bench/latency.py then measures the steady state.
            with services.db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        report(sizes(services, settings))
        print(f"total: {time.perf_counter() - steps:.1f} s")
    finally:
        services.db.dispose()


if __name__ == "__main__":
    main()
