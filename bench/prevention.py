"""Benchmark of the prevention engine (AGD-2; issue #11 target: statuses for the 345,000 people of Corsica in
under 60 s).

    .venv/bin/python bench/prevention.py [--people 345000] [--workers 2] [--le 2025-11-15] [--seed 2025]

Synthetic people — ages from 0 to 100 years (fewer past 85), both sexes, and varied histories: infant doses
recorded at their ages (most of them), boosters, HPV and MenACWY (some in catch-up), flu and COVID seasons,
screenings done one to four years ago, child examinations and M'T dents, a few items declined — are generated in
each worker process (seeded: a run is reproducible), vaccines recorded by family as a profile gives them (so the
dose assignment is measured too), then ``evaluate`` runs for each person against the 2025 calendar.

Prints the wall-clock time of the whole run (process start, generation and evaluation), the time spent in
``evaluate`` alone (CPU seconds summed over the workers), people per second, and the share of each status. The
machine may be shared: the load average is printed with the run.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from carnet.agenda.model.prevention import evaluate, load_calendar  # noqa: E402

Person = tuple[date, str, dict[str, list[date]], dict[str, date], bool]


def _months(birth: date, months: float, rng: random.Random, jitter_days: int = 20) -> date:
    return birth + timedelta(days=int(months * 30.44) + rng.randrange(0, jitter_days + 1))


def _vaccines(rng: random.Random, birth: date, age: float, done: dict[str, list[date]]) -> None:
    def give(family: str, at_months: float, chance: float) -> None:
        if age * 12 > at_months + 1 and rng.random() < chance:
            done.setdefault(family, []).append(_months(birth, at_months, rng))

    for family, ages in (("HEXA", (2, 4, 11)), ("PNEUMO", (2, 4, 11)), ("MENB", (3, 5, 12)), ("MENACWY", (6, 12))):
        for at in ages:
            give(family, at, 0.9 if age < 10 else 0.5)
    for at in (12, 17):
        give("ROR", at, 0.85)
    for at in (72, 132, 300, 540, 780, 900):  # DTCaP 6 y, dTcaP 11 y, boosters at 25, 45, 65, 75
        give("DTP", at, 0.7)
    started = 132 + rng.randrange(0, 96)  # HPV begun between 11 and 19: some in catch-up
    give("HPV", started, 0.5)
    give("HPV", started + 6, 0.8 if "HPV" in done else 0)
    give("MENACWY", 144 + rng.randrange(0, 120), 0.4)
    if age >= 65:
        give("ZONA", 12 * 65 + rng.randrange(0, 60), 0.3)
        give("PNEUMO", 12 * 65 + rng.randrange(0, 60), 0.3)


def _seasons(rng: random.Random, age: float, today: date, done: dict[str, list[date]]) -> None:
    if age < 64:
        return
    for years_ago in (1, 0):
        day = date(today.year - years_ago, 10, 20) + timedelta(days=rng.randrange(0, 60))
        if day <= today:
            for family, chance in (("GRIPPE", 0.55), ("COVID", 0.3)):
                if rng.random() < chance:
                    done.setdefault(family, []).append(day)


def _screenings_and_visits(
    rng: random.Random, birth: date, age: float, sex: str, today: date, done: dict[str, list[date]]
) -> None:
    codes = ["DEP-COLORECTAL"] + (["DEP-SEIN", "DEP-COL-UTERUS-HPV"] if sex == "F" else [])
    for code in codes:
        if age >= 50 and rng.random() < 0.6:
            done[code] = [today - timedelta(days=rng.randrange(200, 1500))]
    if sex == "F" and 25 <= age < 30 and rng.random() < 0.6:
        done["DEP-COL-UTERUS"] = [today - timedelta(days=rng.randrange(100, 800))]
    if age < 17:
        for code, at in (("EXAMEN-ENFANT-2M", 1), ("EXAMEN-ENFANT-9M", 8), ("EXAMEN-ENFANT-6A", 72)):
            if age * 12 > at + 1 and rng.random() < 0.8:
                done[code] = [_months(birth, at, rng)]
    if 3 <= age < 25 and rng.random() < 0.5:
        done[f"BILAN-DENTAIRE-{int(age) // 3 * 3}"] = [today - timedelta(days=rng.randrange(0, 200))]


def people(count: int, seed: int, today: date) -> list[Person]:
    rng = random.Random(seed)
    out: list[Person] = []
    for _ in range(count):
        age = rng.uniform(0, 85) if rng.random() < 0.93 else rng.uniform(85, 100)
        birth = today - timedelta(days=int(age * 365.25))
        sex = rng.choice("FM")
        done: dict[str, list[date]] = {}
        if rng.random() < 0.8:  # a fifth of the people have recorded nothing
            _vaccines(rng, birth, age, done)
            _seasons(rng, age, today, done)
            _screenings_and_visits(rng, birth, age, sex, today, done)
        for family in list(done):
            done[family] = [day for day in done[family] if birth <= day <= today]
        declined = {"DEP-COLORECTAL": today - timedelta(days=30)} if age >= 50 and rng.random() < 0.05 else {}
        out.append((birth, sex, done, declined, rng.random() < 0.1))
    return out


def run_chunk(count: int, seed: int, today: date) -> tuple[int, float, Counter[str]]:
    calendar = load_calendar("2025")
    batch = people(count, seed, today)
    statuses: Counter[str] = Counter()
    started = time.process_time()
    for birth, sex, done, declined, at_risk in batch:
        for status in evaluate(calendar, birth, sex, today, done, declined, at_risk=at_risk):
            statuses[status.status] += 1
    return count, time.process_time() - started, statuses


def _chunks(total: int, size: int) -> Sequence[int]:
    return [min(size, total - start) for start in range(0, total, size)]


def _report(total: int, wall: float, engine_cpu: float, statuses: Mapping[str, int], workers: int) -> None:
    items = sum(statuses.values())
    print(f"{total:,} people, {workers} worker(s): {wall:.1f} s wall-clock, {total / wall:,.0f} people/s")
    print(f"evaluate alone: {engine_cpu:.1f} CPU s in all, {total / engine_cpu:,.0f} people per CPU second")
    print(f"{items:,} statuses ({items / total:.1f} per person):")
    for status, n in statuses.most_common():
        print(f"  {status:<14} {n:>10,}  {100 * n / items:5.1f} %")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=345_000)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--le", type=date.fromisoformat, default=date(2025, 11, 15), help="day of the computation")
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args()
    chunk = max(1, min(20_000, -(-args.people // max(args.workers, 1))))
    sizes = _chunks(args.people, chunk)
    started = time.perf_counter()
    if args.workers <= 1:
        results = [run_chunk(size, args.seed + n, args.le) for n, size in enumerate(sizes)]
    else:
        with ProcessPoolExecutor(max_workers=args.workers) as pool:
            futures = [pool.submit(run_chunk, size, args.seed + n, args.le) for n, size in enumerate(sizes)]
            results = [future.result() for future in futures]
    wall = time.perf_counter() - started
    statuses: Counter[str] = Counter()
    for _count, _cpu, counted in results:
        statuses.update(counted)
    _report(sum(r[0] for r in results), wall, sum(r[1] for r in results), statuses, args.workers)


if __name__ == "__main__":
    main()
