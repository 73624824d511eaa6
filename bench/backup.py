"""Benchmark of `carnet backup create` and `carnet backup restore` (issue #18-4).

    .venv/bin/python bench/backup.py [--documents 10000] [--size-kb 100]
        [--database-url postgresql://postgres@127.0.0.1:5432/postgres]

1. Marie-Ange Santoni's space (demo data) gets --documents documents of --size-kb KiB each (incompressible bytes, as
   scans are; sealed, indexed and audited through the vault), on the embedded default unless --database-url is given
   (a temporary database is created there, and a second one for the restore; both dropped at the end).
2. `carnet backup create` in its own process: time, size of the database file and of the blobs, documents/s.
3. `carnet backup restore` into a fresh data folder (the key files copied, as the operator does) and an empty
   database: time (SHA-256 of every file checked, blobs put back, database restored, audit log verified).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

LOGIN = "marie-ange.santoni"


def populate(env: dict[str, str], documents: int, size: int) -> None:
    subprocess.run([sys.executable, "-m", "carnet", "demo"], env=env, check=True, capture_output=True)
    os.environ.update(env)
    from sqlalchemy import select

    from carnet.bootstrap import build_services
    from carnet.config import Settings
    from carnet.hall.actors import Actor, ActorKind
    from carnet.people.tables import Account
    from carnet.vault.model.documents import PATIENT_TYPE_SYSTEM
    from carnet.vault.service import documents as vault

    services = build_services(Settings())
    with services.db.unit_of_work() as db:
        account = db.scalar(select(Account).where(Account.login == LOGIN))
        assert account is not None and account.patient_id
        marie = Actor(ActorKind.PATIENT, account.id, account.display_name, patient_id=account.patient_id)
    header = b"\x89PNG\r\n\x1a\n"
    for start in range(0, documents, 100):
        batch = [
            vault.NewDocument(
                account.patient_id,
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


def command(env: dict[str, str], *args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "carnet", "backup", *args], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode:
        sys.exit(f"carnet backup {args[0]} a échoué :\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


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


def _environment(folder: Path, url: str | None) -> dict[str, str]:
    env = {**os.environ, "CARNET_DATA_DIR": str(folder), "CARNET_SMTP_URL": "outbox:", "CARNET_ARGON2_PROFILE": "test"}
    env.pop("CARNET_MASTER_KEY_FILE", None)
    env.pop("CARNET_SECRET_KEY_FILE", None)
    if url:
        env["CARNET_DATABASE_URL"] = url
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=10000)
    parser.add_argument("--size-kb", type=int, default=100)
    parser.add_argument("--database-url")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="carnet-bench-backup-"))
    source_url, source_db = _database(args.database_url)
    target_url, target_db = _database(args.database_url)
    try:
        env = _environment(work / "source", source_url)
        started = time.perf_counter()
        populate(env, args.documents, args.size_kb * 1024)
        filled = time.perf_counter() - started
        print(f"instance remplie : {args.documents} documents de {args.size_kb} Kio ({filled:.0f} s)")

        backup = work / "sauvegarde"
        seconds = command(env, "create", str(backup))
        manifest = json.loads((backup / "manifest.json").read_text())
        database_mb = manifest["files"][0]["size"] / 1e6
        blobs_mb = manifest["blobs"]["bytes"] / 1e6
        print(
            f"sauvegarde ({manifest['database']['kind']}) : {seconds:.1f} s — base {database_mb:.1f} Mo, "
            f"{manifest['blobs']['count']} fichiers chiffrés {blobs_mb:.0f} Mo, "
            f"{args.documents / seconds:.0f} documents/s, {(database_mb + blobs_mb) / seconds:.0f} Mo/s"
        )

        other = _environment(work / "restauree", target_url)
        keys = work / "restauree" / "keys"
        keys.mkdir(parents=True, mode=0o700)
        (work / "restauree").chmod(0o700)
        for path in (work / "source" / "keys").iterdir():
            shutil.copy2(path, keys / path.name)
        seconds = command(other, "restore", str(backup))
        print(
            f"restauration : {seconds:.1f} s ({args.documents / seconds:.0f} documents/s, "
            f"{(database_mb + blobs_mb) / seconds:.0f} Mo/s, empreintes vérifiées et journal d'audit contrôlé)"
        )
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        print(f"mémoire max d'une commande : {peak:.0f} Mo")
    finally:
        _drop(args.database_url, source_db)
        _drop(args.database_url, target_db)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
