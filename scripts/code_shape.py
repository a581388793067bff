"""Issue #16's shape bars, read with `ast`: functions over 60 lines in the sending path, modules of crm/ over 500.

Run from the repository root: `python scripts/code_shape.py`. Prints what breaks a bar and exits 1 if anything does.
"""

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The modules a message passes through from queueing to the SMTP server.
SENDING_PATH = ("worker", "claims", "marks", "batch", "transport", "rendering", "states", "outbox", "tasks")
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500


def long_functions(path: Path, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """(qualified name, lines from `def` to its last line, first line) of each function longer than `limit`."""
    found = []

    def walk(node: ast.AST, prefix: str) -> None:
        """Visit functions and classes at any depth, naming each by where it sits."""
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not isinstance(child, ast.ClassDef) and child.end_lineno - child.lineno + 1 > limit:
                    found.append((prefix + child.name, child.end_lineno - child.lineno + 1, child.lineno))
                walk(child, f"{prefix}{child.name}.")
            else:
                walk(child, prefix)

    walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)), "")
    return found


def long_modules(package: Path, limit: int = MAX_MODULE_LINES) -> list[tuple[Path, int]]:
    """(path, lines) of each module under `package` longer than `limit`."""
    sizes = ((path, len(path.read_text(encoding="utf-8").splitlines())) for path in sorted(package.rglob("*.py")))
    return [(path, lines) for path, lines in sizes if lines > limit]


def main() -> int:
    """Print every breach of the two bars; 1 if there is any."""
    breaches = 0
    for name in SENDING_PATH:
        path = ROOT / "crm" / "mailmerge" / f"{name}.py"
        for qualname, lines, first in long_functions(path):
            print(f"{path.relative_to(ROOT)}:{first}: {qualname} has {lines} lines (bar: {MAX_FUNCTION_LINES})")
            breaches += 1
    for path, lines in long_modules(ROOT / "crm"):
        print(f"{path.relative_to(ROOT)}: {lines} lines (bar: {MAX_MODULE_LINES})")
        breaches += 1
    print(f"{breaches} over the bars." if breaches else "Every function of the sending path and every module is "
                                                         "within the bars.")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
