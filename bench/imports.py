"""Benchmark: import 100,000 contacts for 20,000 organizations (validated, matched, committed, tagged for undo)
against parsing the same CSV and inserting the same rows with raw executemany, in the same run, on SQLite and
PostgreSQL; then peak memory (tracemalloc) for a small and a ten times larger file.

    PYTHONPATH=. python bench/imports.py [--rows 100000] [--orgs 20000] [--db sqlite,postgresql]
                                         [--postgres-url URL] [--repeat N] [--memory]

The bar (issue #16): the import takes at most 3× the raw baseline; memory does not grow with the file. With
--repeat the table shows medians over N runs (engine and baseline alternate, each on a fresh schema), and the
ratio of this process's CPU time too: on a busy machine that one moves least (for PostgreSQL it leaves out the
server's share, so the wall-clock ratio is the bar).
"""

import argparse
import csv
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm import create_app  # noqa: E402
from crm.extensions import db  # noqa: E402

WORDS = ("Justice", "Rights", "Immigrant", "Privacy", "Labor", "Housing", "Faith", "Youth", "Legal", "Workers",
         "Community", "Freedom", "Action", "Alliance", "Network", "Council", "Project", "Center", "Coalition", "Fund")
PLACES = ("Texas", "Ohio", "Bay Area", "Chicago", "Miami", "Denver", "Atlanta", "Detroit", "Seattle", "Boston")


def make_csv(path: Path, rows: int, orgs: int, seed: int = 6) -> None:
    """A contacts CSV: `rows` people spread over `orgs` organizations with realistic, varied names."""
    rng = random.Random(seed)
    names = []
    seen = set()
    while len(names) < orgs:
        name = f"{rng.choice(PLACES)} {rng.choice(WORDS)} {rng.choice(WORDS)} {len(names) + 1}"
        if name not in seen:
            seen.add(name)
            names.append(name)
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Email", "First", "Last", "Organization", "Title", "Phone"])
        for i in range(rows):
            writer.writerow([f"person{i}@example{i % 97}.org", rng.choice(("Ana", "Bo", "Chen", "Dee")),
                             f"Sample{i}", names[i % orgs], rng.choice(("Director", "Organizer", "")),
                             f"+1 202 555 {i % 10000:04d}"])


def make_app(url: str):
    """An app on a fresh schema."""
    app = create_app({"TESTING": True, "SECRET_KEY": "bench", "DATABASE_URL": url, "WTF_CSRF_ENABLED": False,
                      "RATELIMIT_ENABLED": False})
    with app.app_context():
        db.drop_all()
        db.create_all()
    return app


def run_engine(app, path: Path) -> tuple[float, float, dict]:
    """Time the real import (suggested mapping, skip duplicates, commit): wall clock and this process's CPU."""
    from crm.imports.fields import suggest_mapping
    from crm.imports.options import ImportOptions
    from crm.imports.reader import sniff
    from crm.imports.running import run_import

    with app.app_context():
        start, cpu = time.perf_counter(), time.process_time()
        info = sniff(path)
        options = ImportOptions(kind="contacts", columns=suggest_mapping("contacts", info.header))
        result = run_import(path, options, filename=path.name)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        assert result.committed, result.problems
        db.session.remove()
        return elapsed, cpu, result.counts


def run_raw(app, path: Path) -> tuple[float, float]:
    """Time the baseline: csv.reader, then executemany of the same organizations and contacts (wall, CPU)."""
    with app.app_context():
        db.drop_all()
        db.create_all()
        connection = db.engine.raw_connection()
        mark = "?" if db.engine.dialect.name == "sqlite" else "%s"
        try:
            start, cpu = time.perf_counter(), time.process_time()
            now = datetime.now(UTC).replace(tzinfo=None)
            with open(path, encoding="utf-8", newline="") as handle:
                reader = csv.reader(handle)
                next(reader)
                rows = list(reader)
            org_names = list(dict.fromkeys(r[3] for r in rows))
            cursor = connection.cursor()
            cursor.executemany(
                "INSERT INTO organizations (name, sort_name, search_text, notes, archived, version, created_at, "
                f"updated_at) VALUES ({', '.join([mark] * 8)})",
                [(n, n.lower(), n.lower(), "", False, 1, now, now) for n in org_names])
            cursor.execute("SELECT id, name FROM organizations")
            ids = {name: org_id for org_id, name in cursor.fetchall()}
            cursor.executemany(
                "INSERT INTO contacts (organization_id, first_name, last_name, title, email, phone, is_primary, "
                f"status, notes, version, created_at, updated_at) VALUES ({', '.join([mark] * 12)})",
                [(ids[r[3]], r[1], r[2], r[4], r[0].lower(), r[5], False, "active", "", 1, now, now) for r in rows])
            connection.commit()
            return time.perf_counter() - start, time.process_time() - cpu
        finally:
            connection.close()
            db.session.remove()


def peak_memory(url: str, path: Path) -> float:
    """Peak traced memory (MiB) of one import of `path` on a fresh schema."""
    app = make_app(url)
    gc.collect()
    tracemalloc.start()
    run_engine(app, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 1024 / 1024


def main() -> None:
    """Run the benchmark and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--orgs", type=int, default=20_000)
    parser.add_argument("--db", default="sqlite,postgresql")
    parser.add_argument("--postgres-url", default=os.environ.get(
        "CRM_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"))
    parser.add_argument("--repeat", type=int, default=1, help="runs per database; the table shows medians")
    parser.add_argument("--memory", action="store_true", help="also measure peak memory, 1/10 size vs full size")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-"))
    path = folder / "contacts.csv"
    make_csv(path, args.rows, args.orgs)
    print(f"{args.rows:,} contacts for {args.orgs:,} organizations, {path.stat().st_size / 1e6:.1f} MB")
    urls = {}
    for name in args.db.split(","):
        if name == "sqlite":
            urls[name] = f"sqlite:///{folder / 'bench.sqlite3'}"
        elif name == "postgresql":
            engine = sa.create_engine(args.postgres_url)
            with engine.begin() as conn:
                conn.execute(sa.text("DROP SCHEMA IF EXISTS bench_imports CASCADE"))
                conn.execute(sa.text("CREATE SCHEMA bench_imports"))
            engine.dispose()
            sep = "&" if "?" in args.postgres_url else "?"
            urls[name] = f"{args.postgres_url}{sep}options=-csearch_path%3Dbench_imports"
    print(f"{'database':<12}{'import (s)':>12}{'raw (s)':>10}{'ratio':>8}  bar ≤ 3×   CPU: import, raw, ratio")
    for name, url in urls.items():
        runs = []
        for _ in range(args.repeat):
            app = make_app(url)
            engine_s, engine_cpu, counts = run_engine(app, path)
            raw_s, raw_cpu = run_raw(app, path)
            runs.append((engine_s, raw_s, engine_s / raw_s, engine_cpu, raw_cpu, engine_cpu / raw_cpu))
            with app.app_context():
                db.engine.dispose()
        engine_s, raw_s, ratio, engine_cpu, raw_cpu, cpu_ratio = (statistics.median(c) for c in zip(*runs, strict=True))
        spread = f", ratios {min(r[2] for r in runs):.1f}–{max(r[2] for r in runs):.1f}" if len(runs) > 1 else ""
        print(f"{name:<12}{engine_s:>12.2f}{raw_s:>10.2f}{ratio:>7.1f}×  {'ok' if ratio <= 3 else 'OVER'}"
              f"        {engine_cpu:.2f}, {raw_cpu:.2f}, {cpu_ratio:.1f}×   ({counts['created']:,} created, "
              f"{len(runs)} run{'s' if len(runs) > 1 else ''}{spread})")
    if args.memory:
        small = folder / "small.csv"
        make_csv(small, args.rows // 10, args.orgs // 10)
        same_orgs = folder / "small-same-orgs.csv"
        make_csv(same_orgs, args.rows // 10, args.orgs)
        url = f"sqlite:///{folder / 'memory.sqlite3'}"
        a, b, c = peak_memory(url, small), peak_memory(url, same_orgs), peak_memory(url, path)
        print(f"peak memory (tracemalloc, SQLite): {args.rows // 10:,} rows/{args.orgs // 10:,} orgs {a:.1f} MiB · "
              f"{args.rows // 10:,} rows/{args.orgs:,} orgs {b:.1f} MiB · {args.rows:,} rows/{args.orgs:,} orgs "
              f"{c:.1f} MiB")
    if "postgresql" in urls:
        engine = sa.create_engine(args.postgres_url)
        with engine.begin() as conn:
            conn.execute(sa.text("DROP SCHEMA IF EXISTS bench_imports CASCADE"))
        engine.dispose()


if __name__ == "__main__":
    main()
