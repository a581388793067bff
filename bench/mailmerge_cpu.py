"""Where a one-worker mail merge spends CPU: the worker, the database server and the SMTP sink, per message.

    PYTHONPATH=. .venv/bin/python bench/mailmerge_cpu.py --database-url postgresql+psycopg://…/bench [--size 2000]
                                                         [--repeat 3]

Each run queues `size` recipients on a fresh schema and drains them in this process (`drain()`, one worker, one
SMTP connection per MAIL_MAX_EMAILS) to the benchmark's aiosmtpd sink. It prints messages per second at the sink
and the CPU seconds per message of this process (the worker), of the PostgreSQL server processes (every process
of the `postgres` user, read from /proc every 50 ms so that backends opened and closed within the run count;
nothing on SQLite) and of the sink process.

With several --connections values it alternates runs with that many MAIL_CONNECTIONS senders, so they are
compared under the same load. The sum of the three CPU columns bounds the rate on a machine with few cores: two
cores cannot send faster than one message per (sum / 2).
"""

import argparse
import os
import pwd
import statistics
import sys
import threading
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
    """Every process of the postgres user (the server and its backends), from /proc."""
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        return []
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    pids.append(int(name))
            except FileNotFoundError:
                continue
    return pids


class _ServerCPU:
    """CPU seconds used by the PostgreSQL server processes during a run, including backends that start and
    exit within it (the worker's own connections close as it returns): /proc is read every 50 ms."""

    def __init__(self):
        self.start = {pid: _cpu_seconds([pid]) for pid in _postgres_pids()}
        self.last = dict(self.start)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.stop.wait(0.05):
            for pid in _postgres_pids():
                used = _cpu_seconds([pid])
                if used:
                    self.last[pid] = max(self.last.get(pid, 0.0), used)

    def used(self) -> float:
        """Stop polling; the CPU seconds used since the start."""
        self.stop.set()
        self.thread.join()
        for pid in _postgres_pids():
            self.last[pid] = max(self.last.get(pid, 0.0), _cpu_seconds([pid]))
        return sum(value - self.start.get(pid, 0.0) for pid, value in self.last.items())


def one_run(database_url: str, sink: Sink, size: int, connections: int) -> dict:
    """Queue and drain one merge; rate and CPU per message."""
    from crm.mailmerge import queueing
    from crm.mailmerge.worker import drain
    from tests.mailmerge.conftest import make_recipients, new_merge

    app = make_app(database_url, sink, MAIL_CONNECTIONS=connections)
    fresh_database(app)
    postgres = database_url.startswith("postgresql")
    with app.app_context():
        make_recipients(size, prefix="bench")
        merge = new_merge(body=TEMPLATE_BODY, subject=TEMPLATE_SUBJECT)
        queueing.queue_merge(merge)
        sink.reset()
        server_cpu = _ServerCPU() if postgres else None
        sink_cpu, worker_cpu = _cpu_seconds([sink.process.pid]), time.process_time()
        stats = drain()
        worker_cpu = time.process_time() - worker_cpu
        server = server_cpu.used() if server_cpu is not None else 0.0
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
    parser.add_argument("--connections", type=int, nargs="+", default=[1])
    args = parser.parse_args()
    variants = args.connections
    results: dict[int, list[dict]] = {variant: [] for variant in variants}
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
        name = f"MAIL_CONNECTIONS={variant}"
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
