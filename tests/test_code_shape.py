"""Issue #16's shape bars, read with `ast`: no module of crm/ over 500 lines, crm/mailmerge/worker.py within 300,
and no function over 60 lines in the sending path (the modules a message passes through from its claim to the SMTP
server), so that the exactly-once path stays readable in one sitting."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SENDING_PATH = ("worker", "claims", "marks", "batch", "transport", "rendering", "states", "outbox", "tasks")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500
MAX_WORKER_LINES = 300


def _lines(path: Path) -> int:
    """Lines in a source file."""
    return len(path.read_text(encoding="utf-8").splitlines())


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[str]:
    """'name: N lines' for each function (at any depth) longer than `limit`."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    return [
        f"{path.parent.name}/{path.name}:{node.lineno} {node.name}: {node.end_lineno - node.lineno + 1} lines"
        for node in ast.walk(tree)
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno + 1 > limit
    ]


def test_no_module_over_500_lines():
    too_long = [f"{p.relative_to(ROOT)}: {_lines(p)}" for p in sorted((ROOT / "crm").rglob("*.py"))
                if _lines(p) > MAX_MODULE_LINES]
    assert not too_long, too_long


def test_the_worker_reads_in_one_sitting():
    assert _lines(ROOT / "crm" / "mailmerge" / "worker.py") <= MAX_WORKER_LINES


def test_no_function_over_60_lines_in_the_sending_path():
    too_long = [f for name in SENDING_PATH for f in long_functions(ROOT / "crm" / "mailmerge" / f"{name}.py")]
    assert not too_long, too_long


def test_the_checker_sees_a_long_function(tmp_path):
    body = "\n".join(f"        x = {n}" for n in range(61))
    source = tmp_path / "long_example.py"
    source.write_text(f"class C:\n    def f(self):\n{body}\n", encoding="utf-8")
    assert long_functions(source) == [f"{tmp_path.name}/long_example.py:2 f: 62 lines"]
