"""Benchmark the organization list through the real Flask app against hand-written SQL for the same rows.

    python bench/filters.py --scale 0.1 --database-url sqlite:////tmp/bench-0.1.sqlite3
    python bench/filters.py --scale 1            # full size: 20k orgs, 200k contacts, 1k letters, 1M signatures

When the database has no organizations it is generated first (bench/generate.py, same --scale). For each filter the
page /organizations?... is requested through the app's test client as a logged-in viewer (full HTML page: login
check, filter parsing, count, page, eager loads, template), and the best hand-written SQL for the same result (the
page's organizations with the columns it shows and their issue areas, and the total) runs on the same database.
The table shows medians, p95 and the ratio, and the number of SQL statements a page takes with 10 and with 100 rows
per page (constant = no N+1).
"""

import argparse
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.generate import BENCH_PASSWORD, BENCH_VIEWER, DEFAULT_URL, bench_app, generate, reset_database  # noqa: E402
from crm.extensions import db  # noqa: E402

PER_PAGE = 50
_IDS = re.compile(r'<a href="/organizations/(\d+)">')
_TOTAL = re.compile(r"<strong>(\d+)</strong> organization")


def parse_args(argv=None):
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--scale", type=float, default=1.0, help="used when the database must be generated")
    parser.add_argument("--repeat", type=int, default=25, help="timed runs per measurement")
    parser.add_argument("--regenerate", action="store_true", help="drop and regenerate the data first")
    return parser.parse_args(argv)


def area_id(conn, slug: str) -> int:
    """An issue area's id."""
    return conn.execute(sa.text("SELECT id FROM issue_areas WHERE slug = :s"), {"s": slug}).scalar_one()


def letter_id(conn, slug: str) -> int:
    """A letter's id."""
    return conn.execute(sa.text("SELECT id FROM letters WHERE slug = :s"), {"s": slug}).scalar_one()


def scenarios(conn) -> list[dict]:
    """The filters to time: query parameters for the page, and hand-written SQL (WHERE on organizations o)."""
    x, y = (
        conn.execute(
            sa.text(
                "SELECT l.slug FROM letters l JOIN signatures s ON s.letter_id = l.id WHERE l.status = 'delivered' "
                "GROUP BY l.id, l.slug ORDER BY l.id DESC LIMIT 2"
            )
        )
        .scalars()
        .all()
    )
    imm, sur = area_id(conn, "immigration"), area_id(conn, "surveillance")
    lx, ly = letter_id(conn, x), letter_id(conn, y)
    # The fastest forms measured on both databases: an IN list of an area's members or a letter's signers
    # drives the query (SQLite reads the covering index; PostgreSQL plans a semi-join either way).
    has_area = "o.id IN (SELECT a.organization_id FROM organization_issue_areas a WHERE a.issue_area_id = {})"
    signed = "o.id IN (SELECT s.organization_id FROM signatures s WHERE s.letter_id = {} AND s.status = 'confirmed')"
    return [
        {
            "name": "issue area any (immigration)",
            "params": {"issue_area": ["immigration"]},
            "where": has_area.format(imm),
        },
        {
            "name": "issue areas all (immigration+surveillance)",
            "params": {"issue_area": ["immigration", "surveillance"], "match": "all"},
            "where": f"{has_area.format(imm)} AND {has_area.format(sur)}",
        },
        {
            "name": "issue areas any (privacy|digital-rights)",
            "params": {"issue_area": ["privacy", "digital-rights"], "match": "any"},
            "where": f"o.id IN (SELECT a.organization_id FROM organization_issue_areas a WHERE a.issue_area_id IN "
            f"({area_id(conn, 'privacy')}, {area_id(conn, 'digital-rights')}))",
        },
        {
            "name": f"signed {x} not {y}",
            "params": {"signed": [x], "not_signed": [y]},
            "where": f"{signed.format(lx)} AND NOT {signed.format(ly)}",
        },
        {
            "name": "signed at least 3 letters",
            "params": {"min_signed": "3"},
            # The schema keeps each organization's count of confirmed signatures (triggers, migration 0006):
            # the best hand-written SQL reads it, as the app does.
            "where": "o.letters_signed >= 3",
        },
        {"name": "text search 'aclu'", "params": {"q": "aclu"}, "where": "o.search_text LIKE '%aclu%'"},
        {"name": "no filter (first page)", "params": {}, "where": "1 = 1"},
    ]


def hand_sql(conn, where: str, per_page: int = PER_PAGE) -> tuple[list[int], int]:
    """The page's rows and the total, the way one would write it by hand: what the page shows (name, acronym,
    type, scope, place, letters signed, parent's name, issue areas) for the page of organizations, and the count."""
    base = f"FROM organizations o WHERE o.archived = :no AND {where}"
    rows = conn.execute(
        sa.text(
            "SELECT o.id, o.name, o.acronym, o.org_type, o.scope, o.city, o.state, o.letters_signed, p.name "
            f"FROM organizations o LEFT JOIN organizations p ON p.id = o.parent_id WHERE o.archived = :no AND "
            f"{where} ORDER BY o.sort_name, o.id LIMIT {per_page}"
        ),
        {"no": False},
    ).all()
    ids = [r[0] for r in rows]
    if ids:
        conn.execute(
            sa.text(
                "SELECT a.organization_id, i.name FROM organization_issue_areas a JOIN issue_areas i "
                f"ON i.id = a.issue_area_id WHERE a.organization_id IN ({','.join(map(str, ids))}) ORDER BY i.slug"
            )
        ).all()
    total = conn.execute(sa.text(f"SELECT count(*) {base}"), {"no": False}).scalar_one()
    return ids, total


def timed(function, repeat: int, cpu: list[float] | None = None) -> tuple[list[float], object]:
    """Run once to warm up, then `repeat` times; the timings in ms and the last result. With `cpu`, this
    process's CPU time per run (ms) is appended to it too: on a shared machine it varies less than wall time."""
    result = function()
    times = []
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = function()
        times.append((time.perf_counter() - start) * 1000)
        if cpu is not None:
            cpu.append((time.process_time() - start_cpu) * 1000)
    return times, result


def p95(values: list[float]) -> float:
    """95th percentile."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


class StatementCounter:
    """Counts SQL statements sent on an engine while active."""

    def __init__(self, engine):
        self.engine, self.count = engine, 0

    def _on_execute(self, *args, **kwargs):
        self.count += 1

    def __enter__(self):
        sa.event.listen(self.engine, "before_cursor_execute", self._on_execute)
        return self

    def __exit__(self, *exc):
        sa.event.remove(self.engine, "before_cursor_execute", self._on_execute)


def page_statements(app, client, url: str) -> int:
    """How many statements one page request sends."""
    with app.app_context():
        engine = db.engine
    with StatementCounter(engine) as counter:
        response = client.get(url)
        assert response.status_code == 200, response.status_code
    return counter.count


def run(database_url: str, scale: float, repeat: int, regenerate: bool = False, out=print) -> list[dict]:
    """Run every measurement; print and return the rows."""
    if regenerate:
        reset_database(database_url)
    app = bench_app(database_url)
    with app.app_context():
        try:
            empty = not db.session.scalar(sa.text("SELECT count(*) FROM organizations"))
        except sa.exc.DatabaseError:
            db.session.rollback()
            empty = True
        db.session.remove()
        db.engine.dispose()
    if empty:
        out(f"generating data at scale {scale} …")
        generate(database_url, scale, log=lambda m: out("  " + m))
        app = bench_app(database_url)
    add_floor_page(app)
    client = app.test_client()
    response = client.post("/login", data={"email": BENCH_VIEWER, "password": BENCH_PASSWORD})
    assert response.status_code == 302, "bench viewer cannot log in"
    with app.app_context():
        engine = db.engine
        with engine.connect() as conn:
            counts = {
                t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                for t in ("organizations", "contacts", "letters", "signatures")
            }
            cases = scenarios(conn)
    out(f"{engine.dialect.name}: " + ", ".join(f"{v:,} {k}" for k, v in counts.items()))
    rows = []
    for case in cases:
        url = "/organizations?" + urlencode({**case["params"], "per_page": PER_PAGE}, doseq=True)

        def page(url=url):
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response.get_data(as_text=True)

        app_cpu: list[float] = []
        app_times, html = timed(page, repeat, app_cpu)
        with app.app_context(), db.engine.connect() as conn:
            sql_times, (ids, total) = timed(lambda c=case, conn=conn: hand_sql(conn, c["where"]), repeat)
            unprepared_times = None
            if conn.dialect.name == "postgresql":
                # psycopg prepares a statement run five times on one connection, so the hand-written SQL above
                # is parsed and planned once; a page cannot keep that (psycopg forgets its prepared statements
                # at every ROLLBACK, and every request ends with one). The same SQL planned every time:
                driver = conn.connection.driver_connection
                threshold, driver.prepare_threshold = driver.prepare_threshold, None
                try:
                    unprepared_times, _ = timed(lambda c=case, conn=conn: hand_sql(conn, c["where"]), repeat)
                finally:
                    driver.prepare_threshold = threshold
        page_ids = [int(i) for i in _IDS.findall(html.split('id="org-table"', 1)[1])]
        page_total = int(_TOTAL.search(html).group(1))
        same = page_ids == ids and page_total == total
        small = page_statements(app, client, url.replace(f"per_page={PER_PAGE}", "per_page=10"))
        large = page_statements(app, client, url.replace(f"per_page={PER_PAGE}", "per_page=100"))
        rows.append(
            {
                "filter": case["name"],
                "total": total,
                "same": same,
                "app_median": statistics.median(app_times),
                "app_p95": p95(app_times),
                "app_cpu": statistics.median(app_cpu),
                "sql_median": statistics.median(sql_times),
                "sql_p95": p95(sql_times),
                "sql_unprepared": statistics.median(unprepared_times) if unprepared_times else None,
                "statements_10": small,
                "statements_100": large,
            }
        )
    org_row = organization_page(app, client, repeat)
    floor = layout_floor(app, client, repeat)
    print_table(rows, org_row, out)
    out(
        f"Floor — an empty page with the layout, through the same app, session and login check: median "
        f"{floor:.1f} ms. A list page cannot cost less than this plus its SQL, so ≤ 2× the SQL needs SQL ≥ "
        f"{floor:.1f} ms even before the page renders a row."
    )
    return rows


def add_floor_page(app) -> None:
    """/bench-floor: the layout alone, for a viewer (registered before the app's first request)."""
    from flask import render_template

    from crm.common.access import access

    app.add_url_rule("/bench-floor", "bench_floor", access("viewer")(lambda: render_template("base.html")))


def layout_floor(app, client, repeat: int) -> float:
    """Median ms of the cheapest page the app can serve a logged-in viewer: the layout, no query of its own."""
    times, response = timed(lambda: client.get("/bench-floor"), repeat * 4)
    assert response.status_code == 200, response.status_code
    return statistics.median(times)


def organization_page(app, client, repeat: int) -> dict:
    """Time the organization page of the organization whose history is closest to 100 letters."""
    with app.app_context(), db.engine.connect() as conn:
        org_id, letters = conn.execute(
            sa.text(
                "SELECT organization_id, count(*) AS n FROM signatures GROUP BY organization_id "
                "ORDER BY abs(count(*) - 100), organization_id LIMIT 1"
            )
        ).one()
    times, _ = timed(lambda: client.get(f"/organizations/{org_id}"), repeat)
    return {"org_id": org_id, "letters": letters, "median": statistics.median(times), "p95": p95(times)}


def print_table(rows: list[dict], org_row: dict, out=print) -> None:
    """The results as a Markdown table."""
    out("")
    out(
        "| filter | rows | page median ms | page p95 ms | page CPU ms | SQL median ms | ratio | same rows | "
        "stmts/page 10 | stmts/page 100 |"
    )
    out("|---|---:|---:|---:|---:|---:|---:|:-:|---:|---:|")
    for r in rows:
        out(
            f"| {r['filter']} | {r['total']:,} | {r['app_median']:.1f} | {r['app_p95']:.1f} | {r['app_cpu']:.1f} | "
            f"{r['sql_median']:.1f} | {r['app_median'] / max(r['sql_median'], 0.001):.1f}× | "
            f"{'yes' if r['same'] else 'NO'} | {r['statements_10']} | {r['statements_100']} |"
        )
    unprepared = [r for r in rows if r.get("sql_unprepared") is not None]
    if unprepared:
        out("")
        out("PostgreSQL, the same hand-written SQL parsed and planned every time (as a page's statements are):")
        out("| filter | SQL median ms | ratio |")
        out("|---|---:|---:|")
        for r in unprepared:
            out(f"| {r['filter']} | {r['sql_unprepared']:.1f} | {r['app_median'] / r['sql_unprepared']:.1f}× |")
    out("")
    out(
        f"Organization page with a {org_row['letters']}-letter history (#{org_row['org_id']}): "
        f"median {org_row['median']:.1f} ms, p95 {org_row['p95']:.1f} ms"
    )


def main(argv=None) -> None:
    """Entry point."""
    args = parse_args(argv)
    run(args.database_url, args.scale, args.repeat, args.regenerate)


if __name__ == "__main__":
    main()
