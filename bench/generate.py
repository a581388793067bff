"""Generate a realistic coalition database for benchmarks.

Default scale: 20,000 organizations, 200,000 contacts, 1,000 letters, 1,000,000 signatures (SPEC's design size).
`--scale 0.1` makes a tenth of everything. Works on SQLite and PostgreSQL:

    python bench/generate.py --scale 0.1 --database-url sqlite:////tmp/bench.sqlite3
    python bench/generate.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench --reset

The schema is made by the real migrations; rows go in with SQLAlchemy Core multi-row inserts in batches.
"""

import argparse
import random
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from crm import create_app  # noqa: E402
from crm.common.text import fold, sort_name  # noqa: E402
from crm.extensions import db  # noqa: E402
from crm.letters import counts  # noqa: E402

DEFAULT_URL = f"sqlite:///{Path(__file__).resolve().parent / 'bench.sqlite3'}"
BENCH_VIEWER = "bench-viewer@example.org"
BENCH_PASSWORD = "bench password 12345"  # noqa: S105 - a throwaway benchmark account
FULL = {"organizations": 20_000, "contacts": 200_000, "letters": 1_000, "signatures": 1_000_000}
BATCH = 5_000

AREAS = [
    "immigration",
    "privacy",
    "surveillance",
    "civil-rights",
    "racial-justice",
    "labor",
    "legal-services",
    "criminal-legal",
    "digital-rights",
    "government-accountability",
    "media",
    "faith",
    "gender-justice",
    "anti-war",
    "housing",
    "health",
    "environment",
    "education",
    "disability-rights",
    "voting-rights",
]
STATES = (  # noqa: SIM905
    "CA NY TX FL IL PA OH GA NC MI NJ VA WA AZ MA TN IN MO MD WI CO MN SC AL LA KY OR OK CT UT IA NV AR MS "
    "KS NM NE ID WV HI NH ME MT RI DE SD ND AK DC VT WY PR"
).split()
TYPES = (
    "nonprofit",
    "advocacy",
    "legal-services",
    "labor",
    "faith",
    "coalition",
    "community",
    "grassroots",
    "think-tank",
    "media",
    "other",
)
SCOPES = ("national", "state", "local", "international")
WORDS = (  # noqa: SIM905
    "Justice Rights Freedom Action Alliance Coalition Network Project Center Fund Council Union Voices "
    "Community Immigrant Privacy Digital Workers Women Youth Liberty Equality Future Defense Legal Policy "
    "Institute Movement Collective Solidarity Partners Frontier Sanctuary Unidos Progress Watch Power "
    "Education Health Housing Climate Peace Faith Labor Families Neighbors Tenants Students Media Tech"
).split()
PLACES = (  # noqa: SIM905
    "Bay Area|Chicago|Texas|Southern|Northwest|Midwest|Gulf Coast|Appalachian|New England|Rio Grande|"
    "Pacific|Mountain West|Great Lakes|Capital Region|Central Valley|Delta|Border|Metro"
).split("|")


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of the full size (e.g. 0.05)")
    parser.add_argument("--seed", type=int, default=20210419)
    parser.add_argument("--reset", action="store_true", help="empty the database first (drops every table)")
    return parser.parse_args(argv)


def sizes(scale: float) -> dict[str, int]:
    """Row counts for a scale."""
    if not 0 < scale <= 10:
        raise SystemExit("--scale must be above 0 and at most 10")
    return {k: max(10, int(v * scale)) for k, v in FULL.items()}


def bench_app(database_url: str):
    """The real app pointed at the benchmark database."""
    return create_app(
        {
            "DATABASE_URL": database_url,
            "SECRET_KEY": "bench-secret",
            "WTF_CSRF_ENABLED": False,
            "RATELIMIT_ENABLED": False,
            "TESTING": True,
        }
    )


def reset_database(database_url: str) -> None:
    """Drop everything in the benchmark database."""
    if database_url.startswith("sqlite:///"):
        path = Path(database_url.removeprefix("sqlite:///"))
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        return
    engine = sa.create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def _insert(conn, table, rows: list[dict]) -> None:
    """Multi-row INSERTs in batches."""
    for start in range(0, len(rows), BATCH):
        conn.execute(table.insert(), rows[start : start + BATCH])


def generate(database_url: str, scale: float, seed: int = 20210419, log=print) -> dict[str, int]:
    """Create the schema (migrations) and fill it; returns the row counts."""
    from flask_migrate import upgrade

    from crm.auth.services import create_user

    rng = random.Random(seed)
    n = sizes(scale)
    app = bench_app(database_url)
    started = time.perf_counter()
    with app.app_context():
        upgrade()
        if db.session.scalar(sa.text("SELECT count(*) FROM organizations")):
            raise SystemExit("the database already holds organizations; use --reset to start over")
        meta = db.metadata.tables
        now = datetime.now(UTC)
        with db.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                conn.exec_driver_sql("PRAGMA synchronous=OFF")
            _insert(
                conn,
                meta["issue_areas"],
                [
                    {"id": i + 1, "slug": s, "name": s.replace("-", " ").capitalize(), "retired": False}
                    for i, s in enumerate(AREAS)
                ],
            )
            # Letters: one every few days over the last years, the newest few still collecting.
            letters = []
            first_day = date(2012, 1, 1)
            span = (date.today() - first_day).days
            for i in range(n["letters"]):
                day = first_day + timedelta(days=int(span * (i + 0.5) / n["letters"]))
                status = "collecting" if i >= n["letters"] - 3 else "delivered"
                letters.append(
                    {
                        "id": i + 1,
                        "slug": f"letter-{i + 1:04d}",
                        "title": f"{rng.choice(WORDS)} letter "
                        f"{i + 1} to {rng.choice(['DHS', 'DOJ', 'Congress', 'the FTC', 'ICE', 'the FCC'])}",
                        "recipients": "",
                        "cc": "",
                        "summary": "",
                        "body": "",
                        "status": status,
                        "letter_date": day if status != "collecting" else None,
                        "deadline": day if status == "collecting" else None,
                        "delivered_on": day if status == "delivered" else None,
                        "public_signon": False,
                        "review_required": True,
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
            _insert(conn, meta["letters"], letters)
            _insert(
                conn,
                meta["letter_issue_areas"],
                [
                    {"letter_id": le["id"], "issue_area_id": a}
                    for le in letters
                    for a in rng.sample(range(1, len(AREAS) + 1), 2)
                ],
            )
            log(f"{len(letters)} letters")
            # Organizations: the ACLU and its affiliates (search "aclu"), then generated names.
            orgs, aliases = [], []
            aclu_states = STATES[: max(3, min(50, n["organizations"] // 400))]
            names = {"American Civil Liberties Union"}
            orgs.append(
                _org(1, "American Civil Liberties Union", "ACLU", "advocacy", "national", None, None, now)
            )
            for state in aclu_states:
                name = f"ACLU of {state}"
                names.add(name)
                orgs.append(
                    _org(len(orgs) + 1, name, None, "advocacy", "state", state, 1, now, parent_acronym="aclu")
                )
            while len(orgs) < n["organizations"]:
                name = _org_name(rng)
                if name in names:
                    continue
                names.add(name)
                acronym = (
                    "".join(w[0] for w in name.split() if w[0].isupper())[:8] if rng.random() < 0.3 else None
                )
                org = _org(
                    len(orgs) + 1,
                    name,
                    acronym,
                    rng.choice(TYPES),
                    rng.choice(SCOPES),
                    rng.choice(STATES) if rng.random() < 0.8 else None,
                    None,
                    now,
                )
                if rng.random() < 0.1:
                    alias = name.replace(" and ", " & ") + " Inc."
                    aliases.append(
                        {
                            "organization_id": org["id"],
                            "name": alias,
                            "normalized": fold(alias),
                            "source": "import",
                            "created_at": now,
                        }
                    )
                    org["search_text"] += " | " + fold(alias)
                orgs.append(org)
            _insert(conn, meta["organizations"], orgs)
            _insert(conn, meta["organization_aliases"], aliases)
            org_areas = []
            for org in orgs:
                for area in rng.sample(range(1, len(AREAS) + 1), rng.choice((1, 1, 2, 2, 3, 4))):
                    org_areas.append({"organization_id": org["id"], "issue_area_id": area})
            _insert(conn, meta["organization_issue_areas"], org_areas)
            log(f"{len(orgs)} organizations, {len(org_areas)} issue-area links, {len(aliases)} aliases")
            # Contacts: about ten per organization, one primary, some who left; 1% of addresses suppressed.
            contacts, suppressions = [], []
            for i in range(n["contacts"]):
                org_id = (i % len(orgs)) + 1
                email = f"person{i + 1}@org{org_id}.example.org"
                contacts.append(
                    {
                        "id": i + 1,
                        "organization_id": org_id,
                        "first_name": rng.choice(WORDS),
                        "last_name": rng.choice(WORDS),
                        "title": "Director",
                        "email": email,
                        "phone": "",
                        "is_primary": i < len(orgs),
                        "status": "left" if rng.random() < 0.08 else "active",
                        "notes": "",
                        "version": 1,
                        "created_at": now,
                        "updated_at": now,
                    }
                )
                if rng.random() < 0.01:
                    suppressions.append(
                        {"email": email, "reason": "unsubscribed", "note": "", "created_at": now}
                    )
            _insert(conn, meta["contacts"], contacts)
            _insert(conn, meta["suppressions"], suppressions)
            log(f"{len(contacts)} contacts, {len(suppressions)} suppressions")
            # Signatures: engagement is skewed (a few organizations sign almost everything), and the engaged
            # ones are spread over the alphabet by a shuffled ranking.
            ranking = list(range(1, len(orgs) + 1))
            rng.shuffle(ranking)
            with counts.suspended(conn):
                per_letter = max(1, n["signatures"] // len(letters))
                sig_id, total = 0, 0
                batch: list[dict] = []
                for letter in letters:
                    want = min(len(orgs), max(1, int(per_letter * rng.uniform(0.5, 1.5))))
                    chosen: set[int] = set()
                    while len(chosen) < want:
                        chosen.add(ranking[int(len(orgs) * rng.random() ** 2.2)])
                    day = letter["letter_date"] or letter["deadline"]
                    for position, org_id in enumerate(sorted(chosen, key=lambda _: rng.random())):
                        sig_id += 1
                        roll = rng.random()
                        batch.append(
                            {
                                "id": sig_id,
                                "letter_id": letter["id"],
                                "organization_id": org_id,
                                "role": "lead" if position < 2 else "signatory",
                                "position": position if position < 2 else None,
                                "listed_name": orgs[org_id - 1]["name"],
                                "status": "confirmed"
                                if roll < 0.95
                                else ("pending" if roll < 0.98 else "declined"),
                                "signed_at": datetime(day.year, day.month, day.day, tzinfo=UTC)
                                - timedelta(days=rng.randint(0, 20)),
                                "source": "import",
                                "contact_id": None,
                                "authorized_name": "",
                                "authorized_title": "",
                                "authorized_email": "",
                                "text_fingerprint": "",
                                "created_at": now,
                                "updated_at": now,
                            }
                        )
                    if len(batch) >= 50_000:
                        _insert(conn, meta["signatures"], batch)
                        total += len(batch)
                        batch = []
                _insert(conn, meta["signatures"], batch)
                total += len(batch)
            log(f"{total} signatures")
            if conn.dialect.name == "postgresql":
                for table in ("issue_areas", "letters", "organizations", "contacts", "signatures"):
                    conn.exec_driver_sql(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                        f"(SELECT max(id) FROM {table}))"
                    )
        if db.engine.dialect.name == "postgresql":
            # The state autovacuum reaches after a bulk load: statistics, and the visibility map that lets the
            # covering indexes answer with index-only scans (VACUUM cannot run inside a transaction).
            with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
        else:
            with db.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")
        create_user(BENCH_VIEWER, "viewer", BENCH_PASSWORD, name="Bench viewer")
        db.session.remove()
        db.engine.dispose()
    log(f"generated in {time.perf_counter() - started:.1f} s")
    return {
        "organizations": len(orgs),
        "contacts": len(contacts),
        "letters": len(letters),
        "signatures": total,
    }


def _org_name(rng: random.Random) -> str:
    """A plausible organization name."""
    shape = rng.random()
    a, b = rng.sample(WORDS, 2)
    if shape < 0.3:
        return f"{rng.choice(PLACES)} {a} {b}"
    if shape < 0.6:
        return f"{a} for {b}"
    if shape < 0.8:
        return f"The {a} and {b} {rng.choice(['Project', 'Center', 'Network', 'Fund'])}"
    return (
        f"{a} {b} {rng.choice(['Alliance', 'Coalition', 'Collective', 'Institute'])} of {rng.choice(PLACES)}"
    )


def _org(org_id, name, acronym, org_type, scope, state, parent_id, now, parent_acronym=""):
    """An organization row with its derived name fields."""
    search = " | ".join(p for p in (fold(name), fold(acronym or ""), parent_acronym) if p)
    return {
        "id": org_id,
        "name": name,
        "sort_name": sort_name(name),
        "search_text": search,
        "acronym": acronym,
        "org_type": org_type,
        "scope": scope,
        "city": None,
        "state": state,
        "country": "US",
        "website": None,
        "parent_id": parent_id,
        "notes": "",
        "archived": False,
        "version": 1,
        "created_at": now,
        "updated_at": now,
    }


def main(argv=None) -> None:
    """Entry point."""
    args = parse_args(argv)
    if args.reset:
        reset_database(args.database_url)
    counts = generate(args.database_url, args.scale, args.seed)
    print(", ".join(f"{v} {k}" for k, v in counts.items()))


if __name__ == "__main__":
    main()
