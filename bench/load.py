"""Load test: simulated organizers against the app served by gunicorn on loopback (bars: no errors, p95 ≤ 300 ms).

Run from the repository root:

    python bench/load.py [--users 50] [--seconds 60] [--database-url URL] [--json results.json]

It builds a fresh instance folder, runs `crm db upgrade`, `crm seed` and `crm user create` as subprocesses (the
commands a deployment runs), scales the data up (2,000 more organizations, 10,000 contacts, more letters and
signatures), starts `gunicorn -w 4 --threads 4 crm.wsgi:app` on 127.0.0.1 and lets each simulated organizer log in
through the real login form (CSRF token and all) and then browse, filter, search, open organizations, letters and
contacts, use the htmx partial list and download exports, reading each page for 1–5 s (uniform; `--think MIN MAX`
changes it: `--think 0 0.2` turns the run into a stress test of the server's capacity) before the next click.
Logging in (over --ramp seconds) comes first and is reported in its own table; the measured window of --seconds
starts when every organizer is logged in, and the background merge is queued at that moment.

Without --database-url the database is a SQLite file in the temporary instance folder. A PostgreSQL database given
with --database-url must be empty; --reset drops every table in it first.

It prints one table (requests, errors, median, p95 and p99 latency per kind of request and overall, requests per
second) and exits 0 when the bars hold, 1 on any error, 2 when only the p95 bar is missed.
"""

import argparse
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import requests

# The checkout whose app is served: this one, or another (LOAD_APP_ROOT) to measure it with this script.
ROOT = Path(os.environ.get("LOAD_APP_ROOT") or Path(__file__).resolve().parent.parent)
sys.path.insert(0, str(ROOT))

ORGANIZER_EMAIL = "load-organizer@example.org"
SETUP_KINDS = ("login form", "login")
ORGANIZER_PASSWORD = "load-test-password-1"  # noqa: S105 — a throwaway account in a throwaway database
SEED_LETTER = "dhs-clearview-ai-2021"
P95_BAR_MS = 300.0
# The login throttle stays on (the limiter runs on every login, as deployed); only its number is raised, because
# every simulated organizer logs in from the same loopback address within the first seconds.
BENCH_LOGIN_RATE_LIMIT = "1000 per minute"

ISSUE_AREAS = ("immigration", "privacy", "surveillance", "civil-rights", "racial-justice", "labor",
               "legal-services", "criminal-legal", "digital-rights", "faith")
SEARCHES = ("aclu", "immigr", "justice", "privacy", "coalition", "legal", "center", "workers", "mijente",
            "naacp", "defense fund", "san")
STATES = ("CA", "NY", "TX", "IL", "FL", "WA", "MA", "DC", "AZ", "GA")
SORTS = ("name", "-name", "state", "-letters", "-last_signed", "-created")
CONTACT_SEARCHES = ("maria", "smith", "lee", "garcia", "example.org", "jo")


# ---------------------------------------------------------------------------------------------------------------
# Setup: instance folder, migrations, seed, organizer account, more data
# ---------------------------------------------------------------------------------------------------------------

@dataclass
class Instance:
    """Where the app under test lives and the environment every process of it runs with."""

    path: Path
    database_url: str
    env: dict[str, str]
    owns_path: bool


def make_instance(database_url: str | None, keep: bool) -> Instance:
    """A fresh instance folder and the environment for the `crm` commands and gunicorn."""
    path = Path(tempfile.mkdtemp(prefix="undersigned-load-"))
    url = database_url or f"sqlite:///{path / 'undersigned.sqlite3'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CRM_", "MAIL_", "CELERY_"))}
    env.update({
        "PYTHONPATH": str(ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
        "CRM_INSTANCE_PATH": str(path),
        "DATABASE_URL": url,
        "SECRET_KEY": "load-test-" + os.urandom(16).hex(),
        "LOGIN_RATE_LIMIT": BENCH_LOGIN_RATE_LIMIT,
        "MAIL_BACKEND": "outbox",
    })
    return Instance(path, url, env, owns_path=not keep)


def crm_start(instance: Instance, *args: str, extra_env: dict | None = None) -> subprocess.Popen:
    """Start a `crm` sub-command in its own process, as an operator would run it."""
    return subprocess.Popen([sys.executable, "-c", "from crm.cli import main; main()", *args], cwd=instance.path,
                            env={**instance.env, **(extra_env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def crm_wait(process: subprocess.Popen) -> str:
    """Wait for a `crm` process; its standard output, or exit the benchmark with its error."""
    out, err = process.communicate(timeout=600)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(process.args[3:])} failed ({process.returncode}):\n{out}\n{err}")
    return out


def crm(instance: Instance, *args: str, extra_env: dict | None = None) -> str:
    """Run a `crm` sub-command and return its standard output."""
    return crm_wait(crm_start(instance, *args, extra_env=extra_env))


def prepare_database(url: str, reset: bool) -> None:
    """Make sure a given database is empty (dropping its tables with --reset) so the run starts from scratch."""
    from sqlalchemy import MetaData, create_engine, inspect

    engine = create_engine(url)
    try:
        tables = inspect(engine).get_table_names()
        if tables and not reset:
            raise SystemExit(f"The database at {url} has {len(tables)} tables; pass --reset to drop them first.")
        if tables:
            meta = MetaData()
            meta.reflect(engine)
            meta.drop_all(engine)
    finally:
        engine.dispose()


def set_up(instance: Instance, *, reset: bool, extra_orgs: int, extra_contacts: int, seed: int) -> subprocess.Popen:
    """Start the setup in its own process with the instance's environment (finish it with setup_result)."""
    params = {"database_url": instance.database_url, "reset": reset, "extra_orgs": extra_orgs,
              "extra_contacts": extra_contacts, "seed": seed}
    return subprocess.Popen([sys.executable, __file__, "--internal-setup", json.dumps(params)], cwd=instance.path,
                            env=instance.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def setup_result(process: subprocess.Popen) -> dict:
    """Wait for the setup process; what the simulated users need to know (organization ids, letter slugs)."""
    out, err = process.communicate(timeout=900)
    if process.returncode != 0:
        raise SystemExit(f"Setup failed ({process.returncode}):\n{out}\n{err}")
    return json.loads(out.strip().splitlines()[-1])


def internal_setup(params: dict) -> None:
    """In the setup process: `crm db upgrade`, `crm seed`, `crm user create`, then more data; print it as JSON.

    The three commands go through the `crm` entry point as an operator types them, in one interpreter rather than
    three (on a busy two-core machine each start-up costs seconds).
    """
    from crm.cli import main as crm_main

    if not params["database_url"].startswith("sqlite"):
        prepare_database(params["database_url"], params["reset"])
    for args in (["db", "upgrade"], ["seed"],
                 ["user", "create", ORGANIZER_EMAIL, "--role", "organizer", "--password", ORGANIZER_PASSWORD,
                  "--name", "Load Organizer"]):
        crm_main(args, standalone_mode=False)
    known = scale_up(params["database_url"], params["extra_orgs"], params["extra_contacts"],
                     random.Random(params["seed"]))
    print(json.dumps(known))


_FIRST = ("Maria", "José", "Ana", "Li", "Wei", "Fatima", "Omar", "Aisha", "John", "Sarah", "David", "Emily", "Luis",
          "Carmen", "Kwame", "Priya", "Sam", "Jordan", "Alex", "Nguyen", "Joanna", "Rosa", "Ahmed", "Grace")
_LAST = ("Garcia", "Smith", "Lee", "Nguyen", "Johnson", "Hernández", "Khan", "Williams", "Brown", "Martinez",
         "Okafor", "Patel", "Cohen", "Rossi", "Kim", "Chen", "Lopez", "Davis", "Jones", "Ali")
_NAME_WORDS = ("Immigrant", "Immigration", "Rights", "Justice", "Legal", "Defense", "Privacy", "Technology",
               "Workers", "Community", "Alliance", "Coalition", "Network", "Center", "Project", "Fund", "Council",
               "Action", "Education", "Freedom", "Liberty", "Equality", "Solidarity", "Voices", "Youth", "Women",
               "Families", "Faith", "Labor", "Housing", "Digital", "Policy", "Law", "Union", "Refugee", "Asylum")
_PLACES = ("California", "Texas", "New York", "Illinois", "Florida", "Washington", "Arizona", "Georgia", "Ohio",
           "Oregon", "Chicago", "Boston", "Denver", "Seattle", "Oakland", "Miami", "Atlanta", "San Diego",
           "San Antonio", "Detroit")
_STATE_NAMES = {"CA": "California", "TX": "Texas", "NY": "New York", "IL": "Illinois", "FL": "Florida",
                "WA": "Washington", "AZ": "Arizona", "GA": "Georgia", "OH": "Ohio", "OR": "Oregon",
                "MA": "Massachusetts", "NJ": "New Jersey", "PA": "Pennsylvania", "MI": "Michigan", "CO": "Colorado"}


def scale_up(url: str, extra_orgs: int, extra_contacts: int, rng: random.Random) -> dict:
    """Insert organizations, contacts, letters and signatures in bulk, so lists, filters and counts are realistic."""
    from sqlalchemy import create_engine, insert, select

    from crm import create_app
    from crm.common.text import fold, sort_name
    from crm.contacts.models import Contact
    from crm.letters.models import Letter, Signature
    from crm.organizations.models import ORG_TYPES, SCOPES, IssueArea, Organization
    from crm.organizations.models import organization_issue_areas as oia

    create_app({"SECRET_KEY": "unused", "DATABASE_URL": url})  # imports every model, so relationships resolve
    engine = create_engine(url)
    now = datetime.now(UTC)
    with engine.begin() as conn:
        areas = dict(conn.execute(select(IssueArea.slug, IssueArea.id)).all())
        aclu = conn.execute(select(Organization.id, Organization.acronym)
                            .where(Organization.acronym == "ACLU")).first()
        names: set[str] = set(conn.scalars(select(Organization.name)))
        org_rows = []
        for code, state_name in list(_STATE_NAMES.items())[:min(len(_STATE_NAMES), extra_orgs // 10)]:
            # State affiliates, as the ACLU has: "aclu" must find them through the parent's acronym.
            org_rows.append({"name": f"ACLU of {state_name}", "acronym": f"ACLU-{code}", "state": code,
                             "parent_id": aclu.id if aclu else None, "org_type": "legal-services",
                             "scope": "state"})
        while len(org_rows) < extra_orgs:
            name = " ".join(rng.sample(_NAME_WORDS, rng.randint(2, 4)))
            if rng.random() < 0.4:
                name += f" of {rng.choice(_PLACES)}"
            if name in names:
                continue
            names.add(name)
            acronym = "".join(w[0] for w in name.split() if w[0].isupper()) if rng.random() < 0.3 else None
            org_rows.append({"name": name, "acronym": acronym, "state": rng.choice(STATES + (None,)),
                             "parent_id": None, "org_type": rng.choice(ORG_TYPES), "scope": rng.choice(SCOPES)})
        for row in org_rows:
            parts = [row["name"], row["acronym"] or ""] + (["aclu"] if row["parent_id"] else [])
            row.update(sort_name=sort_name(row["name"])[:300], search_text=" | ".join(fold(p) for p in parts if p),
                       city=rng.choice(_PLACES), country="US", notes="", created_at=now, updated_at=now)
        new_ids = list(conn.scalars(insert(Organization).returning(Organization.id, sort_by_parameter_order=True),
                                    org_rows)) if org_rows else []
        weights = {slug: (6 if slug in ("immigration", "civil-rights") else 2) for slug in areas}
        area_rows = []
        for org_id in new_ids:
            chosen = set()
            for _ in range(rng.randint(1, 4)):
                chosen.add(rng.choices(list(weights), weights=list(weights.values()))[0])
            area_rows.extend({"organization_id": org_id, "issue_area_id": areas[slug]} for slug in chosen)
        if area_rows:
            conn.execute(insert(oia), area_rows)

        org_names = dict(conn.execute(select(Organization.id, Organization.name)).all())
        all_orgs = list(org_names)
        contact_rows, primary_done = [], set()
        for n in range(extra_contacts):
            first, last = rng.choice(_FIRST), rng.choice(_LAST)
            org_id = rng.choice(all_orgs)
            contact_rows.append({
                "organization_id": org_id, "first_name": first, "last_name": last, "title": "Director",
                "email": None if rng.random() < 0.03 else f"{fold(first)}.{fold(last)}.{n}@example.org",
                "phone": "", "is_primary": org_id not in primary_done,
                "status": "left" if rng.random() < 0.05 else "active", "notes": "", "created_at": now,
                "updated_at": now})
            primary_done.add(org_id)
        for start in range(0, len(contact_rows), 2000):
            conn.execute(insert(Contact), contact_rows[start:start + 2000])

        letter_slugs = [SEED_LETTER]
        for n in range(8 if extra_orgs else 0):
            day = date(2019, 1, 15) + timedelta(days=270 * n)
            slug = f"load-letter-{n + 1}"
            letter_id = conn.scalar(insert(Letter).returning(Letter.id), {
                "slug": slug, "title": f"Coalition letter {n + 1} on {rng.choice(ISSUE_AREAS).replace('-', ' ')}",
                "recipients": "The Secretary", "cc": "", "summary": "A generated letter for the load test.",
                "body": "We, the undersigned organizations, write to urge…", "status": "delivered",
                "letter_date": day, "delivered_on": day, "public_signon": False, "review_required": True,
                "created_at": now, "updated_at": now})
            signers = rng.sample(all_orgs, min(len(all_orgs), rng.randint(50, 400)))
            signed_at = datetime(day.year, day.month, day.day, tzinfo=UTC)
            conn.execute(insert(Signature), [
                {"letter_id": letter_id, "organization_id": org_id, "role": "lead" if i < 3 else "signatory",
                 "position": i + 1 if i < 3 else None, "listed_name": org_names[org_id],
                 "status": "confirmed", "signed_at": signed_at, "source": "import", "created_at": now,
                 "updated_at": now} for i, org_id in enumerate(signers)])
            letter_slugs.append(slug)
        org_ids = list(conn.scalars(select(Organization.id)))
    engine.dispose()
    return {"org_ids": org_ids, "letters": letter_slugs}


# ---------------------------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------------------------

def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_gunicorn(instance: Instance, port: int, workers: int, threads: int, keep_alive: int = 2) -> subprocess.Popen:
    """Serve crm.wsgi:app with gunicorn as production does (wait_ready tells when it answers).

    keep_alive must outlast the think time: gunicorn closes an idle connection after it (default 2 s), and a client
    that sends on a connection the server is closing gets "connection reset" (a browser silently retries; the
    `requests` library reports an error, as it should for a real failure).
    """
    log = open(instance.path / "gunicorn.log", "w")  # noqa: SIM115 — closed with the process in stop_gunicorn
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-w", str(workers), "--threads", str(threads), "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "5", "--keep-alive", str(keep_alive), "crm.wsgi:app"],
        cwd=instance.path, env=instance.env, stdout=log, stderr=subprocess.STDOUT)
    server.log = log  # type: ignore[attr-defined]
    return server


def wait_ready(instance: Instance, server: subprocess.Popen, port: int, timeout: float = 90) -> None:
    """Wait until gunicorn answers the login page."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited: {(instance.path / 'gunicorn.log').read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=10).status_code == 200:
                return
        except requests.RequestException:
            pass  # not listening yet, or a worker still importing the app
        time.sleep(0.2)
    raise SystemExit(f"gunicorn did not answer within {timeout:g} seconds")


def process_tree_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) used so far by a process and its children (Linux /proc; None elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    proc = Path("/proc")
    if not (proc / str(pid) / "stat").exists():
        return None
    total = 0.0
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):  # fields[1] is the parent's pid
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def stop_gunicorn(server: subprocess.Popen) -> None:
    """Stop gunicorn (and its workers) and close its log."""
    if server.poll() is None:
        server.send_signal(signal.SIGINT)  # quick shutdown: the load is over, nothing is in flight
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    server.log.close()  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------------------------
# The simulated organizers
# ---------------------------------------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')
_ORG_LINK = re.compile(r'href="/organizations/(\d+)"')


@dataclass
class Results:
    """Latencies (seconds) and errors per kind of request, shared by the user threads."""

    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, kind: str, seconds: float, problem: str | None) -> None:
        """Record one request."""
        with self.lock:
            self.latencies[kind].append(seconds)
            if problem:
                self.errors[kind] += 1
                if len(self.examples) < 20:
                    self.examples.append(f"{kind}: {problem}")


class Organizer:
    """One simulated organizer: one HTTP session (its own cookies and connection), logged in through the form."""

    def __init__(self, base: str, results: Results, setup: Results, rng: random.Random, known: dict,
                 schedule: "Schedule", think: tuple[float, float] = (1.0, 5.0)):
        self.base, self.results, self.setup, self.rng, self.known = base, results, setup, rng, known
        self.schedule, self.think = schedule, think
        self.http = requests.Session()
        self.seen_orgs: list[int] = []

    def _results(self, kind: str) -> Results:
        """Logging in is the setup before the measured window; everything else is the load."""
        return self.setup if kind in SETUP_KINDS else self.results

    def request(self, kind: str, method: str, path: str, *, expect_full_page: bool | None = True,
                **kwargs) -> requests.Response | None:
        """Make one timed request; anything but the expected answer counts as an error of that kind."""
        started = time.perf_counter()
        try:
            response = self.http.request(method, self.base + path, allow_redirects=False, timeout=30, **kwargs)
            body = response.content
        except requests.RequestException as exc:
            self._results(kind).add(kind, time.perf_counter() - started, f"{path}: {type(exc).__name__}: {exc}")
            return None
        elapsed = time.perf_counter() - started
        problem = None
        expected = 302 if kind == "login" else 200
        if response.status_code != expected:
            problem = f"{path}: HTTP {response.status_code} {body[:200]!r}"
        elif expect_full_page is True and b"</html>" not in body:
            problem = f"{path}: not a full page"
        elif expect_full_page is False and b"<html" in body:
            problem = f"{path}: a full page where the htmx partial was expected"
        self._results(kind).add(kind, elapsed, problem)
        return response if problem is None else None

    def login(self) -> bool:
        """GET /login, read the CSRF token from the form, POST the credentials (the session is then logged in)."""
        page = self.request("login form", "GET", "/login")
        if page is None:
            return False
        match = _CSRF.search(page.text)
        if not match:
            self.setup.add("login form", 0.0, "no csrf_token in the login form")
            return False
        token = match.group(1) or match.group(2)
        done = self.request("login", "POST", "/login", expect_full_page=None,
                            data={"csrf_token": token, "email": ORGANIZER_EMAIL, "password": ORGANIZER_PASSWORD,
                                  "next": ""})
        return done is not None

    def random_filter(self) -> dict:
        """Query parameters a person might combine on the organization list."""
        rng, params = self.rng, {}
        while not params:
            if rng.random() < 0.5:
                params["issue_area"] = rng.sample(ISSUE_AREAS, rng.choice((1, 1, 2)))
                params["match"] = rng.choice(("any", "all"))
            if rng.random() < 0.3:
                params["signed" if rng.random() < 0.5 else "not_signed"] = SEED_LETTER
            if rng.random() < 0.25:
                params["state"] = rng.choice(STATES)
            if rng.random() < 0.35:
                params["q"] = rng.choice(SEARCHES)
        if rng.random() < 0.3:
            params["sort"] = rng.choice(SORTS)
        if rng.random() < 0.15:
            params["page"] = "2"
        return params

    def remember_orgs(self, response: requests.Response | None) -> None:
        """Keep the organizations a list showed, to open one of them next (as a person clicks a result)."""
        if response is not None:
            found = [int(n) for n in _ORG_LINK.findall(response.text)]
            if found:
                self.seen_orgs = found

    def act(self) -> None:
        """One action, chosen with weights that resemble a working session."""
        rng = self.rng
        action = rng.choices(("dashboard", "organizations", "organizations htmx", "organization", "letter",
                              "letters", "contacts", "export"), weights=(2, 4, 4, 5, 2, 1, 2, 1))[0]
        if action == "dashboard":
            self.request(action, "GET", "/")
        elif action == "organizations":
            self.remember_orgs(self.request(action, "GET", "/organizations", params=self.random_filter()))
        elif action == "organizations htmx":
            self.remember_orgs(self.request(action, "GET", "/organizations", params=self.random_filter(),
                                            headers={"HX-Request": "true"}, expect_full_page=False))
        elif action == "organization":
            org_id = rng.choice(self.seen_orgs) if self.seen_orgs and rng.random() < 0.7 \
                else rng.choice(self.known["org_ids"])
            self.request(action, "GET", f"/organizations/{org_id}")
        elif action == "letter":
            self.request(action, "GET", f"/letters/{rng.choice(self.known['letters'])}")
        elif action == "letters":
            self.request(action, "GET", "/letters")
        elif action == "contacts":
            params = {"page": str(rng.randint(1, 5))}
            if rng.random() < 0.4:
                params = {"q": rng.choice(CONTACT_SEARCHES)}
            self.request(action, "GET", "/contacts", params=params)
        else:
            # The organization list has no export link in this build; the letter's signatory exports are the
            # downloads organizers use most (the signatory block to paste into the final letter).
            slug = rng.choice(self.known["letters"])
            self.request(action, "GET", f"/letters/{slug}/signatories.{rng.choice(('csv', 'txt'))}",
                         expect_full_page=None)

    def run(self, start_delay: float) -> None:
        """Log in after a staggered start; when everyone has, read for a while, then act and think until the time
        is up."""
        time.sleep(start_delay)
        try:
            try:
                logged_in = self.login()
            finally:
                self.schedule.arrived.release()
            if not logged_in:
                return
            self.schedule.go.wait()
            time.sleep(self.rng.uniform(*self.think))  # reading the page the log-in landed on
            while time.monotonic() < self.schedule.stop_at:
                self.act()
                time.sleep(self.rng.uniform(*self.think))
        finally:
            self.http.close()


@dataclass
class Schedule:
    """When the measured window starts (go) and ends (stop_at); each user signals once its log-in is done."""

    go: threading.Event = field(default_factory=threading.Event)
    arrived: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    stop_at: float = 0.0


# ---------------------------------------------------------------------------------------------------------------
# HOOK: one merge sending in the background
# ---------------------------------------------------------------------------------------------------------------

class BackgroundMerge:
    """HOOK — "one merge sending in the background" (issue #7, item 7).

    When this build has the `crm merge` and `crm worker` commands (SPEC, "CLI"), a merge to the contacts of the seed
    letter's signatories is created and queued before the load starts, and `crm worker --until-empty` sends it
    during the load with MAIL_BACKEND=smtp to an aiosmtpd sink on loopback. After the load, every expected
    recipient must have received exactly one message at the sink. Without those commands the hook reports
    "skipped" and changes nothing.
    """

    def __init__(self, instance: Instance):
        self.instance = instance
        self.sink = None
        self.worker: subprocess.Popen | None = None
        self.merge_id: int | None = None
        self.received: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def available(self) -> bool:
        """Whether this build has the merge commands."""
        env = self.instance.env
        probe = subprocess.run([sys.executable, "-c", "from crm.cli import main; main()", "merge", "--help"],
                               cwd=self.instance.path, env=env, capture_output=True, text=True, timeout=120)
        return probe.returncode == 0

    def smtp_env(self) -> dict[str, str]:
        """The environment that makes the worker send to the sink."""
        host, port = self.sink.hostname, self.sink.port
        return {"MAIL_BACKEND": "smtp", "MAIL_SERVER": host, "MAIL_PORT": str(port), "MAIL_USE_TLS": "",
                "MAIL_USE_SSL": "", "MAIL_DEFAULT_SENDER": "coalition@example.org",
                "CRM_POSTAL_ADDRESS": "Load Test Coalition, 1 Main Street, Springfield, IL 62701"}

    def start_sink(self) -> None:
        """Start the SMTP sink and point the whole instance at it (gunicorn's embedded worker sends too)."""
        from aiosmtpd.controller import Controller

        merge = self

        class Sink:
            """Counts each recipient of each message it accepts."""

            async def handle_DATA(self, server, session, envelope):  # noqa: N802 — aiosmtpd's handler name
                """Accept the message and count its recipients."""
                with merge.lock:
                    for rcpt in envelope.rcpt_tos:
                        merge.received[rcpt.lower()] += 1
                return "250 OK"

        self.sink = Controller(Sink(), hostname="127.0.0.1", port=free_port())
        self.sink.start()
        self.instance.env.update(self.smtp_env())

    def start(self) -> None:
        """Create and queue the merge, and start a `crm worker` that sends it beside the embedded workers."""
        body = self.instance.path / "merge-body.md"
        body.write_text("Dear {{ contact.first_name }},\n\n{{ org.name }} signed {{ letter.title }}. Thank you.\n",
                        encoding="utf-8")
        out = crm(self.instance, "merge", "create", "--name", "Load test thank-you", "--subject",
                  "Thank you, {{ org.name }}", "--body-file", str(body), "--letter", SEED_LETTER, "--signed",
                  SEED_LETTER, "--contacts", "all", extra_env=self.smtp_env())
        self.merge_id = int(out.strip().splitlines()[-1])
        crm(self.instance, "merge", "queue", str(self.merge_id), extra_env=self.smtp_env())
        self.worker = subprocess.Popen(
            [sys.executable, "-c", "from crm.cli import main; main()", "worker", "--until-empty"],
            cwd=self.instance.path, env={**self.instance.env, **self.smtp_env()}, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL)

    def expected_recipients(self) -> set[str]:
        """The addresses the merge froze into the outbox (one Message row each)."""
        from sqlalchemy import create_engine, text

        engine = create_engine(self.instance.database_url)
        try:
            with engine.connect() as conn:
                rows = conn.scalars(text("SELECT email FROM messages WHERE merge_id = :id AND status = 'sent'"),
                                    {"id": self.merge_id})
                return {e.lower() for e in rows}
        finally:
            engine.dispose()

    def finish(self, timeout: float = 300) -> dict:
        """Wait for the worker, then compare what the sink received with the outbox: exactly one per recipient."""
        try:
            deadline = time.monotonic() + timeout
            if self.worker is not None:
                self.worker.wait(timeout=timeout)
            while True:  # the embedded workers in gunicorn may still hold the last messages
                status = json.loads(crm(self.instance, "merge", "status", str(self.merge_id), "--json")
                                    .strip().splitlines()[-1])
                if status.get("status") in ("done", "cancelled") or time.monotonic() > deadline:
                    break
                time.sleep(1)
            expected = self.expected_recipients()
            with self.lock:
                received = dict(self.received)
            twice = sorted(a for a, n in received.items() if n > 1)
            missing = sorted(expected - set(received))
            unexpected = sorted(set(received) - expected)
            return {"merge_id": self.merge_id, "status": status.get("status"), "counts": status.get("counts"),
                    "recipients": len(expected), "received": sum(received.values()), "twice": twice[:10],
                    "missing": missing[:10], "unexpected": unexpected[:10],
                    "ok": bool(expected) and not twice and not missing and not unexpected}
        finally:
            if self.worker is not None and self.worker.poll() is None:
                self.worker.kill()
                self.worker.wait()
            if self.sink is not None:
                self.sink.stop()


# ---------------------------------------------------------------------------------------------------------------
# Report
# ---------------------------------------------------------------------------------------------------------------

def percentile(sorted_values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return 0.0
    rank = max(1, -(-int(fraction * 1000) * len(sorted_values) // 1000))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def summarize(results: Results, elapsed: float) -> dict:
    """Counts and latency percentiles (ms) per kind and overall."""
    rows = {}
    everything: list[float] = []
    for kind in sorted(results.latencies):
        values = sorted(results.latencies[kind])
        everything.extend(values)
        rows[kind] = _row(values, results.errors.get(kind, 0))
    overall = _row(sorted(everything), sum(results.errors.values()))
    return {"kinds": rows, "overall": overall, "seconds": round(elapsed, 1),
            "requests_per_second": round(len(everything) / elapsed, 1) if elapsed else 0.0}


def _row(values: list[float], errors: int) -> dict:
    """One table row."""
    return {"requests": len(values), "errors": errors,
            "median_ms": round(percentile(values, 0.50) * 1000, 1),
            "p95_ms": round(percentile(values, 0.95) * 1000, 1),
            "p99_ms": round(percentile(values, 0.99) * 1000, 1)}


def table(summary: dict) -> str:
    """The summary as a Markdown table."""
    lines = ["| request | requests | errors | median ms | p95 ms | p99 ms |", "|---|--:|--:|--:|--:|--:|"]

    def line(name: str, r: dict) -> str:
        return f"| {name} | {r['requests']} | {r['errors']} | {r['median_ms']} | {r['p95_ms']} | {r['p99_ms']} |"

    lines += [line(kind, row) for kind, row in summary["kinds"].items()]
    lines.append(line("**all**", summary["overall"]))
    return "\n".join(lines) + f"\n\n{summary['requests_per_second']} requests/s over {summary['seconds']} s."


# ---------------------------------------------------------------------------------------------------------------

def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=50, help="Concurrent simulated organizers (default 50).")
    parser.add_argument("--seconds", type=float, default=60, help="How long the load lasts (default 60).")
    parser.add_argument("--database-url", help="A database to use (default: SQLite in a temporary folder).")
    parser.add_argument("--reset", action="store_true", help="Drop every table of --database-url first.")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn worker processes (default 4).")
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker (default 4).")
    parser.add_argument("--extra-orgs", type=int, default=2000, help="Organizations added to the seed.")
    parser.add_argument("--extra-contacts", type=int, default=10000, help="Contacts added.")
    parser.add_argument("--ramp", type=float, default=None, help="Seconds over which users log in (default 5).")
    parser.add_argument("--merge", choices=("auto", "on", "off"), default="auto",
                        help="Send one merge in the background: when `crm merge` exists (auto), always, or never.")
    parser.add_argument("--seed", type=int, default=7, help="Random seed for data and behaviour.")
    parser.add_argument("--json", dest="json_path", help="Also write the results to this JSON file.")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 5.0), metavar=("MIN", "MAX"),
                        help="Seconds a simulated organizer reads a page before the next click, drawn uniformly "
                             "(default 1 5, a person's pace; 0 0.2 is a stress test of the server's capacity).")
    parser.add_argument("--keep", action="store_true", help="Keep the instance folder (database, gunicorn.log).")
    args = parser.parse_args(argv)
    if args.users < 1 or args.seconds <= 0:
        parser.error("--users and --seconds must be positive")
    if not 0 <= args.think[0] <= args.think[1] <= 600:
        parser.error("--think takes MIN MAX seconds with 0 ≤ MIN ≤ MAX ≤ 600")
    if args.database_url:
        from crm.config import normalise_database_url

        args.database_url = normalise_database_url(args.database_url)
    return args


def main(argv: list[str] | None = None) -> int:
    """Set up, serve, load, report; the exit status says whether the bars hold."""
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--internal-setup"]:
        internal_setup(json.loads(argv[1]))
        return 0
    args = parse_args(argv)
    instance = make_instance(args.database_url, args.keep)
    server = None
    merge = None
    try:
        print(f"Setting up {instance.database_url.split('@')[-1]} in {instance.path} …", flush=True)
        started = time.monotonic()
        merge_summary: dict = {"status": "skipped"}
        if args.merge != "off":
            candidate = BackgroundMerge(instance)
            if candidate.available():
                merge = candidate
                merge.start_sink()  # before gunicorn starts: the app and the worker share the mail settings
            elif args.merge == "on":
                raise SystemExit("--merge on: this build has no `crm merge` command")
            else:
                print("  merge: skipped (this build has no `crm merge` command)", flush=True)
        setup = set_up(instance, reset=args.reset, extra_orgs=args.extra_orgs, extra_contacts=args.extra_contacts,
                       seed=args.seed)
        port = free_port()
        # gunicorn's workers import the app (touching no database) while the setup runs; nothing is cached, so
        # they see all of the data once it is there.
        server = start_gunicorn(instance, port, args.workers, args.threads, keep_alive=int(args.think[1]) + 5)
        known = setup_result(setup)
        wait_ready(instance, server, port)
        print(f"  {len(known['org_ids'])} organizations, {len(known['letters'])} letters "
              f"({time.monotonic() - started:.1f} s)", flush=True)

        results, setup, schedule = Results(), Results(), Schedule()
        ramp = args.ramp if args.ramp is not None else min(5.0, args.seconds / 4)
        print(f"Log-in: {args.users} users over {ramp:g} s through the login form …", flush=True)
        setup_started = time.monotonic()
        users = [Organizer(f"http://127.0.0.1:{port}", results, setup, random.Random(args.seed * 1000 + n), known,
                           schedule, think=tuple(args.think))
                 for n in range(args.users)]
        threads = [threading.Thread(target=u.run, args=(ramp * n / args.users,), daemon=True)
                   for n, u in enumerate(users)]
        for thread in threads:
            thread.start()
        for _ in users:
            schedule.arrived.acquire(timeout=300)
        setup_summary = summarize(setup, time.monotonic() - setup_started)
        print(f"Load: {args.users} users × {args.seconds:g} s, {args.think[0]:g}–{args.think[1]:g} s of think "
              f"time, against gunicorn -w {args.workers} --threads {args.threads} on 127.0.0.1:{port} …", flush=True)
        if merge is not None:
            merge.start()
            print(f"  merge {merge.merge_id} queued; `crm worker` and gunicorn's embedded workers send it during "
                  "the load", flush=True)
        server_cpu_before, client_cpu_before = process_tree_cpu(server.pid), time.process_time()
        load_average_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        load_started = time.monotonic()
        schedule.stop_at = load_started + args.seconds
        schedule.go.set()
        for thread in threads:
            thread.join()
        summary = summarize(results, time.monotonic() - load_started)
        summary["setup"] = setup_summary
        server_cpu_after = process_tree_cpu(server.pid)
        requests_made = summary["overall"]["requests"] or 1
        if server_cpu_before is not None and server_cpu_after is not None:
            # What the server itself spent per request, whatever else the machine was doing meanwhile.
            summary["server_cpu_ms_per_request"] = round((server_cpu_after - server_cpu_before) * 1000 / requests_made,
                                                         1)
        summary["client_cpu_ms_per_request"] = round((time.process_time() - client_cpu_before) * 1000
                                                     / requests_made, 1)
        summary["load_average"] = [load_average_before, os.getloadavg()[0] if hasattr(os, "getloadavg") else None]
        if merge is not None:
            merge_summary = merge.finish()
        summary["merge"] = merge_summary
        summary.update(users=args.users, think_seconds=list(args.think), database=instance.database_url.split(":")[0],
                       workers=args.workers, threads=args.threads)
    finally:
        if server is not None:
            stop_gunicorn(server)
        if merge is not None and merge.sink is not None and merge.sink._thread is not None:
            merge.sink.stop()  # when the run failed before finish() stopped it
        if instance.owns_path:
            shutil.rmtree(instance.path, ignore_errors=True)
        else:
            print(f"Instance kept in {instance.path}")

    print()
    print(table(summary))
    print()
    print("Logging in, before the measured window (each organizer once, through the form; scrypt password hashing):")
    print()
    print(table(summary["setup"]))
    if "server_cpu_ms_per_request" in summary:
        print(f"Server CPU {summary['server_cpu_ms_per_request']} ms per request (gunicorn and its workers), "
              f"client CPU {summary['client_cpu_ms_per_request']} ms; "
              f"{os.cpu_count()} CPUs, load average {summary['load_average'][0]:.1f} before the load.")
    print(f"Merge in the background: {json.dumps(summary['merge'])}")
    for example in setup.examples + results.examples:
        print(f"  error: {example}")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({**summary, "error_examples": setup.examples + results.examples},
                                                   indent=2))
    if summary["overall"]["errors"] or summary["setup"]["overall"]["errors"] or (
            merge is not None and not summary["merge"]["ok"]):
        return 1
    if summary["overall"]["p95_ms"] > P95_BAR_MS:
        print(f"p95 {summary['overall']['p95_ms']} ms is over the {P95_BAR_MS:g} ms bar.")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
