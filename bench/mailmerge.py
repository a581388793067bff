"""Mail-merge benchmark: Undersigned's worker against raw smtplib and the `mailmerge` CLI, on one aiosmtpd
sink.

    PYTHONPATH=. .venv/bin/python bench/mailmerge.py [--sizes 2000 20000] [--workers 1 2 4] [--connections 1 4]
                                                     [--sink-delay-ms 20] [--database-url postgresql+psycopg://…]
                                                     [--memory 200000]

--sink-delay-ms makes the sink wait before answering each message's content, as a real relay does (tens of
milliseconds); --connections runs each worker with MAIL_CONNECTIONS senders. With a delay, each row also shows its
rate against the relay's bound (connections × 1000 / delay msg/s).

The sink runs in its own process (so it does not share a GIL with the sender) and counts messages and
connections. Each row reports messages per second; ratios are against raw smtplib and `mailmerge` in the same
run. Raw smtplib sends, pre-built, the very messages an untimed first run of the worker sent (same headers,
parts and footer, byte for byte), so both carry the same bytes to the sink. "raw smtplib + durable mark" sends
them the same way, each after a durable commit that updates its row (SQLite `synchronous=FULL`): the least the
exactly-once protocol costs (one durable commit before each message's content), with no rendering, claiming or
recording — the ceiling of any worker that keeps the protocol on this machine and database.

Peak memory is the worker process's own high-water resident set size (VmHWM, written by the worker as it exits:
getrusage's ru_maxrss of a spawned child also counts the parent's memory at the moment of the spawn, so it reported
this benchmark process, which generated and queued the recipients); "queue MB" is this process's own high-water
mark, which includes generating the recipients and queueing (checking and freezing) the merge.
"""

import argparse
import multiprocessing
import os
import shutil
import smtplib
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TEMPLATE_SUBJECT = "{{ org.name }}: sign our next letter"
TEMPLATE_BODY = (
    "Dear {{ contact.first_name | default('friends') }},\n\n"
    "**{{ org.name }}** has stood with us before. Please read and sign our next letter.\n\n"
    "Thank you,\n\nThe coalition"
)


# --- the sink
# -----------------------------------------------------------------------------------------------------


def _sink_main(port, messages, connections, first, last, ready, advertise_pipelining, delay):
    """Serve an SMTP sink that only counts (aiosmtpd), and notes when the first connection said EHLO and when
    the last message was accepted."""
    import asyncio

    from aiosmtpd.controller import Controller

    class Counting:
        async def handle_EHLO(self, server, session, envelope, hostname, responses):
            with connections.get_lock():
                connections.value += 1
                if not first.value:
                    first.value = time.perf_counter()
            session.host_name = hostname
            if advertise_pipelining:
                # Real MTAs (Postfix, Exim, the big providers) advertise PIPELINING; aiosmtpd serves pipelined
                # commands (it reads line by line) but does not say so. smtplib and the mailmerge CLI never
                # pipeline, so this changes nothing for them.
                responses.insert(len(responses) - 1, "250-PIPELINING")
            return responses

        async def handle_DATA(self, server, session, envelope):
            if delay:
                await asyncio.sleep(delay)  # a real relay's time to take a message; other sessions go on
            with messages.get_lock():
                messages.value += 1
                last.value = time.perf_counter()
            return "250 OK"

    controller = Controller(Counting(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    try:
        asyncio.run(asyncio.sleep(10**6))
    finally:
        controller.stop()


class Sink:
    """The counting sink in a child process."""

    def __init__(self, pipelining: bool = True, delay_ms: float = 0.0):
        from tests.conftest import free_port

        self.port = free_port()
        self.messages = multiprocessing.Value("l", 0)
        self.connections = multiprocessing.Value("l", 0)
        # perf_counter is CLOCK_MONOTONIC on Linux: comparable between the sink process and this one.
        self.first = multiprocessing.Value("d", 0.0)
        self.last = multiprocessing.Value("d", 0.0)
        ready = multiprocessing.Event()
        self.process = multiprocessing.Process(
            target=_sink_main,
            daemon=True,
            args=(
                self.port, self.messages, self.connections, self.first, self.last, ready, pipelining, delay_ms / 1000
            ),
        )
        self.process.start()
        ready.wait(20)

    def reset(self):
        """Zero the counters."""
        self.messages.value = 0
        self.connections.value = 0
        self.first.value = 0.0
        self.last.value = 0.0

    def window(self) -> float:
        """Seconds from the first EHLO to the last accepted message since the last reset."""
        return self.last.value - self.first.value

    def stop(self):
        """Stop the sink process."""
        self.process.terminate()
        self.process.join(5)


# --- setup
# ------------------------------------------------------------------------------------------------------


def make_app(database_url: str, sink: Sink, **extra):
    """An app on the benchmark database, sending to the sink."""
    from crm import create_app
    from tests.conftest import base_config

    config = base_config(
        database_url,
        MAIL_BACKEND="smtp",
        MAIL_SERVER="127.0.0.1",
        MAIL_PORT=sink.port,
        MAIL_MAX_EMAILS=500,
        **extra,
    )
    return create_app(config)


def fresh_database(app) -> None:
    """Drop and create the schema."""
    from crm.extensions import db

    with app.app_context():
        db.drop_all()
        db.create_all()


def prepare_merge(app, count: int) -> int:
    """count organizations with one primary contact each, and a draft merge to all of them."""
    from tests.mailmerge.conftest import make_recipients, new_merge

    with app.app_context():
        make_recipients(count, prefix="bench")
        return new_merge(body=TEMPLATE_BODY, subject=TEMPLATE_SUBJECT).id


_MESSAGES: list[tuple[int, str, bytes]] = []
_PORT = 0
_MARK_URL = ""  # set: each message is sent after a durable commit of its row (the protocol's floor)


def _send_part(part: list[int]) -> None:
    """Send pre-built messages over one connection (top-level, so forked pool workers can run it); with _MARK_URL,
    each after a durable commit that updates its row, as the worker's `sending` mark does."""
    import sqlalchemy as sa

    engine = sa.create_engine(_MARK_URL) if _MARK_URL else None
    db = engine.connect() if engine else None
    if db is not None and db.dialect.name == "sqlite":
        db.exec_driver_sql("PRAGMA synchronous=FULL")  # as the worker's marks (the app's own default is NORMAL)
        db.commit()
    connection = smtplib.SMTP("127.0.0.1", _PORT)
    for i in part:
        row_id, recipient, message = _MESSAGES[i]
        if db is not None:
            marked = db.execute(sa.text("UPDATE messages SET attempts = attempts + 1 WHERE id = :id"), {"id": row_id})
            assert marked.rowcount == 1, row_id
            db.commit()
        connection.sendmail("bench@example.org", [recipient], message)
    connection.quit()
    if engine is not None:
        db.close()
        engine.dispose()


# --- runs
# -------------------------------------------------------------------------------------------------------


def _rates(sink: Sink, count: int, elapsed: float) -> dict:
    """Messages per second over the sink's window (first EHLO to last message: what all contenders are
    compared on, so process start-up is counted for none of them) and over the wall clock (start-up included)."""
    return {"rate": count / sink.window(), "wall": count / elapsed}


def sent_messages(database_url: str) -> list[tuple[int, str, bytes]]:
    """(row id, recipient, message) of every message the last Undersigned run sent, byte for byte as it went out:
    what raw smtplib sends, so that the baseline carries the same bytes (headers, both parts, footer) as the
    worker. (Each run queues the same rows under the same ids.)"""
    import sqlalchemy as sa

    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, email, raw FROM messages ORDER BY id")).all()
    finally:
        engine.dispose()
    return [(row_id, email, raw.replace("\r\n", "\n").replace("\n", "\r\n").encode()) for row_id, email, raw in rows]


def run_raw(messages: list[tuple[int, str, bytes]], sink: Sink, connections: int = 1, mark_url: str = "") -> dict:
    """Raw smtplib sending pre-built messages, `connections` connections in parallel, each message after a durable
    commit on `mark_url` if given; messages per second."""
    global _MESSAGES, _PORT, _MARK_URL
    _MESSAGES, _PORT, _MARK_URL = messages, sink.port, mark_url
    count = len(messages)
    sink.reset()
    parts = [list(range(k, count, connections)) for k in range(connections)]
    start = time.perf_counter()
    if connections == 1:
        _send_part(parts[0])
    else:
        with multiprocessing.get_context("fork").Pool(connections) as pool:
            pool.map(_send_part, parts)
    elapsed = time.perf_counter() - start
    assert sink.messages.value == count, (sink.messages.value, count)
    return _rates(sink, count, elapsed)


def run_mailmerge_cli(sink: Sink, count: int, workdir: Path) -> dict | None:
    """The `mailmerge` tool from PyPI on the same recipients and template; messages per second."""
    executable = shutil.which("mailmerge") or str(Path(sys.executable).parent / "mailmerge")
    if not Path(executable).exists():
        return None
    (workdir / "mailmerge_server.conf").write_text(
        f"[smtp_server]\nhost = 127.0.0.1\nport = {sink.port}\nsecurity = Never\n"
    )
    (workdir / "mailmerge_template.txt").write_text(
        "TO: {{email}}\nSUBJECT: {{org}}: sign our next letter\nFROM: bench@example.org\n"
        "CONTENT-TYPE: text/markdown\n\n"
        + TEMPLATE_BODY.replace("contact.first_name", "first_name").replace("org.name", "org")
        + "\n"
    )
    with open(workdir / "mailmerge_database.csv", "w") as stream:
        stream.write("email,first_name,org\n")
        for i in range(count):
            stream.write(f"bench{i}@example.net,First{i},Bench Org {i}\n")
    sink.reset()
    start = time.perf_counter()
    subprocess.run(
        [
            executable,
            "--no-dry-run",
            "--no-limit",
            "--template",
            "mailmerge_template.txt",
            "--database",
            "mailmerge_database.csv",
            "--config",
            "mailmerge_server.conf",
        ],
        cwd=workdir,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    elapsed = time.perf_counter() - start
    assert sink.messages.value == count, (sink.messages.value, count)
    return _rates(sink, count, elapsed)


_REPORT_HWM = (
    "import atexit, os, sys\n"
    "def _hwm():\n"
    "    for line in open('/proc/self/status'):\n"
    "        if line.startswith('VmHWM'):\n"
    "            open(os.environ['BENCH_HWM_FILE'], 'w').write(line.split()[1])\n"
    "atexit.register(_hwm)\n"
    "from crm.cli import main\n"
    "main()\n"
)


def _vm_hwm_mb() -> float:
    """This process's high-water resident set size, in MB."""
    status = Path("/proc/self/status").read_text()
    return next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")), 0.0)


def _worker_process(database_url: str, sink: Sink, tmp: Path, index: int = 0, connections: int = 1) -> subprocess.Popen:
    """`crm worker --until-empty` in its own process (which writes its VmHWM to tmp/hwm-<index> as it exits)."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "MAIL_BACKEND": "smtp",
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        "SECRET_KEY": "bench",
        "CRM_INSTANCE_PATH": str(tmp / "instance"),
        "CRM_POSTAL_ADDRESS": "1 Bench Street",
        "MAIL_DEFAULT_SENDER": "bench@example.org",
        "MAIL_MAX_EMAILS": "500",
        "MAIL_CONNECTIONS": str(connections),
        "PYTHONPATH": str(ROOT),
        "BENCH_HWM_FILE": str(tmp / f"hwm-{index}"),
    }
    return subprocess.Popen(
        [sys.executable, "-c", _REPORT_HWM, "worker", "--until-empty"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )


def run_undersigned(database_url: str, sink: Sink, count: int, workers: int, tmp: Path, connections: int = 1) -> dict:
    """Queue a merge, then drain it with `workers` worker processes of `connections` senders each; rate, SMTP
    connections and peak memory."""
    app = make_app(database_url, sink)
    fresh_database(app)
    merge_id = prepare_merge(app, count)
    from crm.mailmerge import queueing, reports

    with app.app_context():
        start = time.perf_counter()
        queueing.queue_merge(reports.get_merge(merge_id))
        queue_seconds = time.perf_counter() - start
    sink.reset()
    start = time.perf_counter()
    processes = [_worker_process(database_url, sink, tmp, k, connections) for k in range(workers)]
    for process in processes:
        process.wait()
    elapsed = time.perf_counter() - start
    peak = max(int((tmp / f"hwm-{k}").read_text()) / 1024 for k in range(workers))
    with app.app_context():
        counts = reports.merge_counts(merge_id)
    assert counts["sent"] == count and sink.messages.value == count, (counts, sink.messages.value)
    return {
        **_rates(sink, count, elapsed),
        "connections": sink.connections.value,
        "queue_seconds": queue_seconds,
        "peak_mb": peak,
        "queue_mb": _vm_hwm_mb(),
    }


def _median(results: list[dict], key: str) -> float:
    """The median of one figure over the repeats."""
    return statistics.median(r[key] for r in results)


def _list(results: list[dict]) -> str:
    """Every run's rate, to show the spread behind a median."""
    return ", ".join(f"{r['rate']:.0f}" for r in results)


def _print_row(count: int, label: str, results: list[dict], raw: float, cli: float | None, extra: str = "") -> None:
    """One line of the table: median rate, ratios, connections, memory, wall rate."""
    rate = _median(results, "rate")
    vs_cli = f"{rate / cli:>13.2f}" if cli else f"{'-':>13}"
    conns = max(r.get("connections", 0) for r in results) or ""
    peak = f"{max(r['peak_mb'] for r in results):>8.0f}" if "peak_mb" in results[0] else f"{'':>8}"
    print(
        f"{count:>7} {label:<38} {rate:>8.0f} {rate / raw:>7.2f} {vs_cli} {conns:>6} {peak} "
        f"{_median(results, 'wall'):>10.0f}{extra}   (runs {_list(results)})"
    )


def main() -> None:
    """Run every measurement (each `--repeat` times, interleaved, so noise hits all alike) and print medians."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--connections", type=int, nargs="+", default=[1], help="MAIL_CONNECTIONS per worker")
    parser.add_argument("--sink-delay-ms", type=float, default=0.0, help="the sink's wait before answering content")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; medians are printed")
    parser.add_argument("--database-url", default=None, help="default: a temporary SQLite file")
    parser.add_argument("--no-cli", action="store_true", help="skip the mailmerge CLI")
    parser.add_argument(
        "--memory",
        type=int,
        default=0,
        help="also queue+send this many recipients (1 worker) and report peak memory, e.g. 200000",
    )
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="undersigned-bench-"))
    database_url = args.database_url or f"sqlite:///{tmp / 'bench.sqlite3'}"
    delay = args.sink_delay_ms
    sink = Sink(delay_ms=delay)
    try:
        print(
            f"database: {database_url.split('@')[-1]}   sink: aiosmtpd on 127.0.0.1:{sink.port} (own process), "
            f"{delay:g} ms per message   medians of {args.repeat} runs; msg/s from the first EHLO to the last "
            "message at the sink, wall msg/s includes process start-up"
        )
        print(
            f"{'N':>7} {'what':<38} {'msg/s':>8} {'vs raw':>7} {'vs mailmerge':>13} {'conns':>6} "
            f"{'peak MB':>8} {'wall msg/s':>10}"
        )
        for count in args.sizes:
            runs: dict = {}
            # An untimed run first: it warms the caches and leaves the exact messages the worker sends, which the
            # raw smtplib baseline then sends pre-built.
            run_undersigned(database_url, sink, count, 1, tmp, max(args.connections))
            messages = sent_messages(database_url)
            for _ in range(args.repeat):
                runs.setdefault("raw", []).append(run_raw(messages, sink))
                runs.setdefault("ceiling", []).append(run_raw(messages, sink, connections=4))
                runs.setdefault("floor", []).append(run_raw(messages, sink, 1, database_url))
                runs.setdefault("floor4", []).append(run_raw(messages, sink, 4, database_url))
                cli_run = None if args.no_cli else run_mailmerge_cli(sink, count, tmp)
                if cli_run:
                    runs.setdefault("cli", []).append(cli_run)
                for workers in args.workers:
                    for connections in args.connections:
                        runs.setdefault((workers, connections), []).append(
                            run_undersigned(database_url, sink, count, workers, tmp, connections)
                        )
            raw = _median(runs["raw"], "rate")
            cli = _median(runs["cli"], "rate") if "cli" in runs else None
            _print_row(count, "raw smtplib, 1 connection", runs["raw"], raw, cli)
            _print_row(count, "raw smtplib, 4 connections", runs["ceiling"], raw, cli)
            _print_row(count, "raw smtplib + durable mark, 1 conn", runs["floor"], raw, cli)
            _print_row(count, "raw smtplib + durable mark, 4 conns", runs["floor4"], raw, cli)
            if cli:
                _print_row(count, "mailmerge CLI (PyPI)", runs["cli"], raw, cli)
            for workers in args.workers:
                for connections in args.connections:
                    results = runs[(workers, connections)]
                    label = f"undersigned, {workers} worker{'s' if workers > 1 else ''} × {connections} conn"
                    extra = ""
                    if delay:
                        bound = workers * connections * 1000 / delay
                        extra = f" (×{_median(results, 'rate') / bound:.2f} of the relay's {bound:.0f})"
                    _print_row(
                        count, label, results, raw, cli,
                        f"{extra} queue+check {_median(results, 'queue_seconds'):.1f}s",
                    )
        if args.memory:
            result = run_undersigned(database_url, sink, args.memory, 1, tmp)
            print(
                f"{args.memory:>7} {'undersigned, 1 worker (memory)':<38} {result['rate']:>8.0f} {'':>7} "
                f"{'':>13} {result['connections']:>6} {result['peak_mb']:>8.0f} {result['wall']:>10.0f}   "
                f"(queue+check {result['queue_seconds']:.1f}s; queue MB {result['queue_mb']:.0f}: this process, "
                "which also generated the recipients)"
            )
    finally:
        sink.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
