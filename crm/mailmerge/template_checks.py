"""The static check of a merge template before it compiles: unknown fields, private attributes and constructs
merge templates do not need are refused, each as a Problem with its part and line."""

from dataclasses import dataclass, field

from jinja2 import nodes

from crm.mailmerge.template_fields import HISTORY_FIELDS, RECORDS, TOP_LEVEL
from crm.mailmerge.template_sandbox import ENV

MAX_LITERAL = 1_000


@dataclass
class Problem:
    """One thing wrong with a template: which part, the line, and the message; `letter_slug` names the letter to
    change when the fix is there (pages link to it)."""

    part: str
    message: str
    line: int | None = None
    recipients: list[str] = field(default_factory=list)
    count: int = 0
    letter_slug: str | None = None

    def __str__(self) -> str:
        where = f"{self.part}, line {self.line}" if self.line else self.part
        text = f"{where}: {self.message}"
        if self.count:
            shown = ", ".join(self.recipients[:5])
            more = f" and {self.count - 5} more" if self.count > 5 else ""
            text += f" — {self.count} recipient{'s' if self.count != 1 else ''} affected ({shown}{more})"
        return text


def static_problems(part: str, tree: nodes.Template) -> list[Problem]:
    """Refuse unknown fields, private attributes and constructs merge templates do not need."""
    problems: list[Problem] = []
    # One walk of the tree, then filtering by kind: a 50,000-character template has tens of thousands of nodes.
    everything = list(tree.find_all(nodes.Node))

    def of(kind):
        return [node for node in everything if isinstance(node, kind)]

    loop_names: dict[str, str] = {}  # loop variable → what it iterates ("history")
    assigned: set[str] = set()
    for node in of((nodes.Assign, nodes.AssignBlock)):
        for target in node.target.find_all(nodes.Name) if hasattr(node.target, "find_all") else []:
            assigned.add(target.name)
        if isinstance(node.target, nodes.Name):
            assigned.add(node.target.name)
    refused = {
        nodes.Macro: "macros are not available in merge templates",
        nodes.CallBlock: "call blocks are not available in merge templates",
        nodes.Extends: "{% extends %} is not available in merge templates",
        nodes.Include: "{% include %} is not available in merge templates",
        nodes.Import: "{% import %} is not available in merge templates",
        nodes.FromImport: "{% from … import %} is not available in merge templates",
        nodes.Block: "{% block %} is not available in merge templates",
        nodes.FilterBlock: "filter blocks are not available in merge templates",
        nodes.With: "{% with %} is not available in merge templates",
        nodes.Scope: "scoped blocks are not available in merge templates",
    }
    for kind, message in refused.items():
        for node in of(kind):
            problems.append(Problem(part, message, node.lineno))
    for loop in of(nodes.For):
        if loop.recursive:
            problems.append(
                Problem(part, "recursive loops are not available in merge templates", loop.lineno)
            )
        if (
            any(True for _ in loop.iter.find_all(nodes.For))
            or any(True for child in loop.body for _ in ([child] if isinstance(child, nodes.For) else []))
            or any(True for child in loop.body for _ in child.find_all(nodes.For))
        ):
            problems.append(
                Problem(part, "loops inside loops are not available in merge templates", loop.lineno)
            )
        if isinstance(loop.target, nodes.Name) and isinstance(loop.iter, nodes.Name):
            loop_names[loop.target.name] = loop.iter.name
        for target in loop.target.find_all(nodes.Name):
            assigned.add(target.name)
        if isinstance(loop.target, nodes.Name):
            assigned.add(loop.target.name)
    assigned.add("loop")
    for const in of(nodes.Const):
        if isinstance(const.value, str) and "__" in const.value:
            problems.append(Problem(part, "double underscores are refused in merge templates", const.lineno))
        if isinstance(const.value, str) and len(const.value) > MAX_LITERAL:
            problems.append(
                Problem(part, f"text in an expression is limited to {MAX_LITERAL} characters", const.lineno)
            )
    for node in of((nodes.Getattr, nodes.Getitem)):
        attr = (
            node.attr
            if isinstance(node, nodes.Getattr)
            else (node.arg.value if isinstance(node.arg, nodes.Const) else None)
        )
        if isinstance(attr, str) and attr.startswith("_"):
            problems.append(
                Problem(part, f"'{attr}' is not a field (private attributes are refused)", node.lineno)
            )
            continue
        if isinstance(node.node, nodes.Name) and isinstance(attr, str):
            base = node.node.name
            known = RECORDS.get(base)
            if loop_names.get(base) == "history":
                known = HISTORY_FIELDS
            if known is not None and attr not in known and base not in assigned - set(loop_names):
                problems.append(Problem(part, f"unknown field {base}.{attr}", node.lineno))
    for name in of(nodes.Name):
        if name.ctx == "load" and name.name not in TOP_LEVEL and name.name not in assigned:
            problems.append(Problem(part, f"unknown field {name.name}", name.lineno))
    for call in of(nodes.Call):
        if isinstance(call.node, nodes.Getattr):
            problems.append(
                Problem(
                    part,
                    f"calling methods ('{call.node.attr}()') is not available in merge "
                    "templates; use filters",
                    call.lineno,
                )
            )
        else:
            problems.append(Problem(part, "function calls are not available in merge templates", call.lineno))
    for node in of(nodes.AssignBlock):
        problems.append(
            Problem(part, "{% set %} blocks are not available in merge templates; use {% set x = … %}", node.lineno)
        )
    for flt in of(nodes.Filter):
        if flt.name not in ENV.filters or flt.name.startswith("_"):
            problems.append(Problem(part, f"unknown filter '{flt.name}'", flt.lineno))
    for test in of(nodes.Test):
        if test.name not in ENV.tests:
            problems.append(Problem(part, f"unknown test '{test.name}'", test.lineno))
    unique: dict[tuple, Problem] = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.message), problem)
    return sorted(unique.values(), key=lambda p: (p.line or 0, p.message))


def code_size(source: str) -> int:
    """Characters inside {{ … }} and {% … %} (up to the end of the text when one is not closed); one pass."""
    total, position = 0, 0
    while True:
        starts = [i for i in (source.find("{{", position), source.find("{%", position)) if i >= 0]
        if not starts:
            return total
        start = min(starts)
        closer = "}}" if source.startswith("{{", start) else "%}"
        end = source.find(closer, start + 2)
        if end < 0:
            return total + len(source) - start
        total += end + 2 - start
        position = end + 2
