"""Benchmark of the full export (ENR-7) and of its import into another Carnet.

    .venv/bin/python bench/export.py [--documents 4000] [--size-kb 100] [--measures 10000]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. Marie-Ange Santoni's space gets --measures measures (through the profile's store, as bench/medical_profile.py) and
   --documents documents of --size-kb KiB each (incompressible bytes, as scans are; sealed, indexed and audited
   through the vault), on the embedded default unless --database-url is given (a temporary database is created
   there and dropped at the end).
2. Export: in a separate process, the archive is asked for and prepared by the job (``build.run``: every
   resource, every file read and written into the sealed ZIP stream); then, in another process, downloaded
   (opened and streamed to a file, as the portal does). Prints the time and the peak memory (max RSS) of each.
3. Import: in a separate process, ``carnet spaces import`` (its service) into a fresh instance (SQLite, or a second
   temporary database on the same server): checks every hash, re-seals every file. Prints time and peak memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from bench.medical_profile import populate as populate_measures  # noqa: E402

LOGIN = "marie-ange.santoni"


def _marie(services):  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Account

    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == LOGIN))
        assert account is not None and account.patient_id
        return Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)


def populate(env: dict[str, str], documents: int, size: int, measures: int) -> None:
    populate_measures(env, measures)
    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.vault.model.documents import PATIENT_TYPE_SYSTEM
    from carnet.vault.service import documents as vault

    services = build_services(Settings())
    marie = _marie(services)
    header = b"\x89PNG\r\n\x1a\n"
    for start in range(0, documents, 100):
        batch = [
            vault.NewDocument(
                marie.patient_id,
                PATIENT_TYPE_SYSTEM,
                "DOCPAT05",
                f"Examen {index}",
                "image/png",
                header + os.urandom(size - len(header)),
            )
            for index in range(start, min(start + 100, documents))
        ]
        vault.deposit_many(services, marie, batch)
    services.db.dispose()


def phase(name: str, env: dict[str, str], *args: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--phase", name, *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"phase {name} a échoué :\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["wall_s"] = time.perf_counter() - started
    return figures


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_phase(name: str, target: str) -> None:
    from carnet.bootstrap import build_services, operator_actor
    from carnet.config import Settings
    from carnet.export.service import build, importing, requests

    services = build_services(Settings())
    started = time.perf_counter()
    if name == "build":
        marie = _marie(services)
        requests.request(services, marie, marie.patient_id)
        assert build.run(services) == 1
        figures = {"seconds": time.perf_counter() - started}
    elif name == "download":
        marie = _marie(services)
        asked = requests.page(services, marie, marie.patient_id).latest
        assert asked is not None
        requests.send_code(services, marie, marie.patient_id)
        outbox = sorted((services.settings.resolved_data_dir / "outbox").glob("*.eml"))
        code = re.findall(rb"est : (\d{6})", outbox[-1].read_bytes())[-1].decode()
        archive = requests.download(services, marie, marie.patient_id, asked.id, code)
        size = 0
        with open(target, "wb") as out:
            for chunk in archive.chunks:
                out.write(chunk)
                size += len(chunk)
        figures = {"seconds": time.perf_counter() - started, "archive_mb": size / 1e6}
    else:
        imported = importing.import_archive(services, operator_actor(), Path(target))
        figures = {"seconds": time.perf_counter() - started, **{k: float(v) for k, v in imported.counts.items()}}
    figures["peak_rss_mb"] = _peak_mb()
    services.db.dispose()
    print(json.dumps(figures))


def _database(admin_url: str | None) -> tuple[str | None, str | None]:
    if not admin_url:
        return None, None
    import psycopg

    name = f"carnet_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return re.sub(r"/[^/]*$", f"/{name}", admin_url), name


def _drop(admin_url: str | None, name: str | None) -> None:
    if admin_url and name:
        import psycopg

        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=4000)
    parser.add_argument("--size-kb", type=int, default=100)
    parser.add_argument("--measures", type=int, default=10000)
    parser.add_argument("--database-url")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        run_phase(args.phase, args.target)
        return
    work = Path(tempfile.mkdtemp(prefix="carnet-bench-export-"))
    source_url, source_db = _database(args.database_url)
    target_url, target_db = _database(args.database_url)
    try:
        env = {**os.environ, "CARNET_DATA_DIR": str(work / "source"), "CARNET_SMTP_URL": "outbox:"}
        if source_url:
            env["CARNET_DATABASE_URL"] = source_url
        started = time.perf_counter()
        populate(env, args.documents, args.size_kb * 1024, args.measures)
        print(
            f"espace rempli : {args.documents} documents de {args.size_kb} Kio, {args.measures} mesures "
            f"({time.perf_counter() - started:.0f} s)"
        )
        archive = work / "archive.zip"
        built = phase("build", env)
        print(f"export préparé (job) : {built['seconds']:.1f} s, mémoire max {built['peak_rss_mb']:.0f} Mo")
        fetched = phase("download", env, "--target", str(archive))
        print(
            f"téléchargement : {fetched['seconds']:.1f} s, {fetched['archive_mb']:.0f} Mo, "
            f"mémoire max {fetched['peak_rss_mb']:.0f} Mo"
        )
        other = {**os.environ, "CARNET_DATA_DIR": str(work / "autre"), "CARNET_SMTP_URL": "outbox:"}
        if target_url:
            other["CARNET_DATABASE_URL"] = target_url
        subprocess.run([sys.executable, "-m", "carnet", "migrate"], env=other, check=True, capture_output=True)
        imported = phase("import", other, "--target", str(archive))
        print(
            f"import : {imported['seconds']:.1f} s, mémoire max {imported['peak_rss_mb']:.0f} Mo "
            f"({imported.get('documents', 0):.0f} documents, {imported.get('profil', 0):.0f} entrées du profil, "
            f"{imported.get('historique', 0):.0f} lignes d'historique)"
        )
    finally:
        _drop(args.database_url, source_db)
        _drop(args.database_url, target_db)


if __name__ == "__main__":
    main()
