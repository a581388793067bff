"""Where a one-worker mail merge spends CPU: the worker, the database server and the SMTP sink, per message.

    PYTHONPATH=. .venv/bin/python bench/mailmerge_cpu.py --database-url postgresql+psycopg://…/bench [--size 2000]
                                                         [--repeat 3]

Each run queues `size` recipients on a fresh schema and drains them in this process (`drain()`, one worker, one
SMTP connection per MAIL_MAX_EMAILS) to the benchmark's aiosmtpd sink. It prints messages per second at the sink
and the CPU seconds per message of this process (the worker), of the PostgreSQL server processes (every process
of the `postgres` user, from /proc; nothing on SQLite) and of the sink process.

On PostgreSQL it alternates runs with the next message's mark written ahead (the default) and without
(MAIL_MARK_AHEAD=False: one durable transaction per message on the session's connection), so the two are
compared under the same load. The sum of the three CPU columns bounds the rate on a machine with few cores: two
cores cannot send faster than one message per (sum / 2).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.mailmerge import TEMPLATE_BODY, TEMPLATE_SUBJECT, Sink, fresh_database, make_app  # noqa: E402


def _cpu_seconds(pids) -> float:
    """utime + stime of these processes (those that still exist)."""
    ticks = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _postgres_pids() -> list[int]:
    """Every process of the postgres user (the server and its backends)."""
    found = subprocess.run(["pgrep", "-u", "postgres"], capture_output=True, text=True, check=False)
    return [int(pid) for pid in found.stdout.split()]


def one_run(database_url: str, sink: Sink, size: int, mark_ahead: bool) -> dict:
    """Queue and drain one merge; rate and CPU per message."""
    from crm.mailmerge import services
    from crm.mailmerge.worker import drain
    from tests.mailmerge.conftest import make_recipients, new_merge

    app = make_app(database_url, sink, MAIL_MARK_AHEAD=mark_ahead)
    fresh_database(app)
    postgres = database_url.startswith("postgresql")
    with app.app_context():
        make_recipients(size, prefix="bench")
        merge = new_merge(body=TEMPLATE_BODY, subject=TEMPLATE_SUBJECT)
        services.queue_merge(merge)
        sink.reset()
        before = _postgres_pids() if postgres else []
        server, sink_cpu, worker_cpu = _cpu_seconds(before), _cpu_seconds([sink.process.pid]), time.process_time()
        stats = drain()
        worker_cpu = time.process_time() - worker_cpu
        # Backends started during the run count whole (they did nothing before it).
        server = (_cpu_seconds(set(before) | set(_postgres_pids())) - server) if postgres else 0.0
        sink_cpu = _cpu_seconds([sink.process.pid]) - sink_cpu
    assert stats.sent == size and sink.messages.value == size, (stats, sink.messages.value)
    return {
        "rate": size / sink.window(),
        "worker": worker_cpu / size * 1000,
        "server": server / size * 1000,
        "sink": sink_cpu / size * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    variants = [True, False] if args.database_url.startswith("postgresql") else [True]
    results: dict[bool, list[dict]] = {variant: [] for variant in variants}
    sink = Sink()
    try:
        for _ in range(args.repeat):
            for variant in variants:
                results[variant].append(one_run(args.database_url, sink, args.size, variant))
    finally:
        sink.stop()
    print(f"{args.size} recipients, 1 worker, medians of {args.repeat} alternating runs; CPU in ms per message")
    print(f"{'variant':<28}{'msg/s':>8}{'worker':>9}{'database':>10}{'sink':>7}{'sum':>7}   runs (msg/s)")
    for variant, runs in results.items():
        name = "marks written ahead" if variant else "one transaction per message"
        if len(variants) == 1:
            name = "worker"
        med = {key: statistics.median(r[key] for r in runs) for key in ("rate", "worker", "server", "sink")}
        total = med["worker"] + med["server"] + med["sink"]
        rates = ", ".join(f"{r['rate']:.0f}" for r in runs)
        print(
            f"{name:<28}{med['rate']:>8.0f}{med['worker']:>9.2f}{med['server']:>10.2f}{med['sink']:>7.2f}"
            f"{total:>7.2f}   {rates}"
        )
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
