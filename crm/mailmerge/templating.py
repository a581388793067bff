"""Merge templates: Jinja in an immutable sandbox over plain data, checked before anything is queued.

Organizers write the subject and body; whatever they type must never reach the application's objects, the
configuration or unbounded memory and time. Five layers keep it so: only plain dicts and strings are passed in
(never ORM objects), Jinja's ImmutableSandboxedEnvironment blocks private attributes and mutation, a static
check refuses unknown fields, constructs we do not need (macros, includes, nested loops, set blocks, long
literals) and templates with more code than a letter needs; every operation that can grow a value (`~`, `*`, `+`,
join, replace, batch, slice, sum, list, round, printing a list, loops) is measured *before* it runs; and each
render has a budget of work, output and time (Budget), so the worst template fails in well under a second with a
message naming the limit.
"""

import operator
import time
from contextvars import ContextVar
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2 import filters as _filters
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

MAX_SUBJECT_TEMPLATE = 1_000
MAX_BODY_TEMPLATE = 50_000
MAX_OUTPUT = 200_000  # characters of one rendered part
MAX_VALUE = 20_000  # characters (or items) of any intermediate value built by an operator or filter
MAX_LITERAL = 1_000
# Characters of template code ({{ … }} and {% … %}) per part: compiling costs about 0.1 ms per expression node,
# so this bounds the time a check spends before rendering anything. Prose around the code is not counted.
MAX_CODE = 6_000
# The budget of one render (one part of one message): characters and items built, visited or printed, and time.
# A normal merge body spends a few thousand units and well under a millisecond.
MAX_WORK = 2_000_000
MAX_RENDER_SECONDS = 0.5

# Every field a template may use, with a description for the field picker.
FIELDS: dict[str, str] = {
    "contact.first_name": "Recipient's first name",
    "contact.last_name": "Recipient's last name",
    "contact.full_name": "First and last name",
    "contact.title": "Recipient's job title",
    "contact.email": "Recipient's email address",
    "org.name": "Organization's name",
    "org.acronym": "Organization's acronym",
    "org.city": "Organization's city",
    "org.state": "Organization's state",
    "letter.title": "Title of the letter this merge promotes",
    "letter.summary": "Summary of the promoted letter",
    "letter.deadline": "Sign-on deadline of the promoted letter",
    "letter.date": "Date of the promoted letter",
    "letter.url": "Public page of the promoted letter",
    "last_signed.title": "Last letter the organization signed",
    "last_signed.date": "Date of that letter",
    "last_signed.role": "lead or signatory",
    "history": "Letters the organization took part in, newest first: each has title, date, role",
    "sign_on_url": "Personal one-click sign-on link (needs a promoted letter)",
    "unsubscribe_url": "Personal unsubscribe link",
}
HISTORY_FIELDS = {"title", "date", "role"}
_RECORDS = {name.split(".")[0]: set() for name in FIELDS if "." in name}
for _name in FIELDS:
    if "." in _name:
        _RECORDS[_name.split(".")[0]].add(_name.split(".")[1])
TOP_LEVEL = set(_RECORDS) | {n for n in FIELDS if "." not in n}

SAFE_FILTERS = (
    "abs",
    "capitalize",
    "count",
    "e",
    "escape",
    "first",
    "float",
    "int",
    "join",
    "last",
    "length",
    "list",
    "lower",
    "replace",
    "reverse",
    "round",
    "sort",
    "string",
    "striptags",
    "title",
    "trim",
    "truncate",
    "unique",
    "upper",
    "urlencode",
    "wordcount",
    "selectattr",
    "rejectattr",
    "map",
    "select",
    "reject",
    "sum",
    "min",
    "max",
    "batch",
    "slice",
    "safe",
)
SAFE_TESTS = (
    "defined",
    "undefined",
    "none",
    "string",
    "number",
    "sameas",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "equalto",
    "in",
    "odd",
    "even",
    "divisibleby",
    "true",
    "false",
)


class Record(dict):
    """A plain mapping of one template variable (contact, org, …) that remembers its name for error
    messages.
    """

    __slots__ = ("_path",)

    def __init__(self, path: str, values: dict):
        super().__init__({k: v for k, v in values.items() if v not in (None, "")})
        self._path = path


class MissingField(StrictUndefined):
    """An empty or missing field: printing it is an error, but `if` and `default` treat it as empty."""

    __slots__ = ()

    def __getattr__(self, name: str):
        """`last_signed.title` on a missing `last_signed` stays missing (so `default` can still apply)."""
        if name.startswith("__"):
            raise AttributeError(name)
        return self

    __getitem__ = __getattr__

    def __bool__(self) -> bool:
        """Empty fields are false in `{% if %}`."""
        return False

    @property
    def _undefined_message(self) -> str:
        """'contact.first_name is empty' rather than Jinja's "'dict object' has no attribute …"."""
        path = getattr(self._undefined_obj, "_path", None)
        if path and isinstance(self._undefined_name, str):
            return f"{path}.{self._undefined_name} is empty"
        if isinstance(self._undefined_name, str):
            return f"{self._undefined_name} is empty or unknown"
        return "a field is empty"


def _default(value, default_value="", boolean=True):
    """`default` that also replaces empty text (the organizer's intent in "Dear {{ name |
    default('friends') }}").
    """
    if isinstance(value, MissingField) or value is None or (boolean and not value):
        return default_value
    return value


class TemplateLimit(SecurityError):
    """A template that would exceed one of the render budgets; the message names the limit, for the organizer."""


@dataclass
class Budget:
    """What one render may spend: work (characters and items built or visited) and wall time."""

    deadline: float
    work: int = 0

    def charge(self, units: int) -> None:
        """Count work done (or about to be done) and refuse past either limit."""
        self.work += units
        if self.work > MAX_WORK:
            raise TemplateLimit(
                f"the template does too much work for one message (more than {MAX_WORK:,} characters or "
                "items built); simplify it"
            )
        if time.monotonic() > self.deadline:
            raise TemplateLimit(
                f"rendering one message took longer than {MAX_RENDER_SECONDS:g} s; simplify the template"
            )


_BUDGET: ContextVar[Budget | None] = ContextVar("merge_template_budget", default=None)


def _budget() -> Budget:
    """The budget of the render in progress. Outside a render (Jinja folding constants while compiling) there
    is none: refusing makes Jinja leave the expression to render time, where it is bounded."""
    budget = _BUDGET.get()
    if budget is None:
        raise TemplateLimit("bounded operations run only while rendering")
    return budget


def size_of(value, limit: int = MAX_VALUE) -> int:
    """The size a value has when printed or joined: characters of text, plus the items of lists, tuples and dicts
    counted through nesting (a list of 20,000 references to one long text is large). Stops counting once past
    `limit`, so measuring is itself bounded."""
    total = 0
    stack = [value]
    while stack and total <= limit:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, dict):
            total += len(item) + 1
            stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            total += len(item) + 1
            stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            total += max(1, item.bit_length() // 3)
        else:
            total += 1
    return total


def _too_big(what: str = "a value") -> TemplateLimit:
    """The refusal of a value that would grow past MAX_VALUE."""
    return TemplateLimit(f"{what} would grow beyond {MAX_VALUE:,} characters or items")


def _cap(value, what: str = "a value"):
    """Refuse values larger than MAX_VALUE (a last check on results whose size is proportional to their
    input, which is bounded already); charge their size to the render's work."""
    size = size_of(value)
    _budget().charge(size)
    if size > MAX_VALUE:
        raise _too_big(what)
    return value


def _precheck(size: int, what: str) -> None:
    """Refuse an operation whose result would be `size` big, before doing it; charge the work."""
    if size > MAX_VALUE:
        raise _too_big(what)
    _budget().charge(size)


def _int_arg(value, name: str, low: int, high: int) -> int:
    """A whole-number filter argument within bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TemplateLimit(f"{name} must be a whole number from {low:,} to {high:,}")
    return value


def _materialise(value, what: str) -> list:
    """A filter's input as a bounded list (generators from map/select are consumed here, item by item)."""
    if isinstance(value, str | dict):
        value = list(value)
    items = []
    budget = _budget()
    for item in value:
        items.append(item)
        budget.charge(1)
        if len(items) > MAX_VALUE:
            raise _too_big(what)
    return items


def _capped(function):
    """Wrap a filter whose result is at most proportional to its (bounded) input so the result is size-checked
    and charged."""

    def wrapper(*args, **kwargs):
        for arg in args:
            if isinstance(arg, str | list | tuple | dict):
                _budget().charge(size_of(arg))
        return _cap(function(*args, **kwargs))

    wrapper.__name__ = getattr(function, "__name__", "filter")
    for attribute in ("jinja_pass_arg",):
        if hasattr(function, attribute):
            setattr(wrapper, attribute, getattr(function, attribute))
    return wrapper


def _as_text(value) -> str:
    """How Jinja prints a value, refused before building it when it would be too long."""
    if isinstance(value, str):
        return value
    _precheck(size_of(value), "a printed value")
    return str(value)


def bounded_concat(*values) -> str:
    """`a ~ b ~ c`: the sizes are added up before anything is joined."""
    _precheck(sum(size_of(v) for v in values), "text joined with ~")
    return "".join(_as_text(v) for v in values)


def bounded_iterate(value):
    """What a `{% for %}` walks: every iteration is charged and checks the clock."""
    budget = _budget()

    def walk():
        for count, item in enumerate(value, start=1):
            budget.charge(1)
            if count > MAX_VALUE:
                raise _too_big("a loop")
            yield item

    return walk()


def bounded_join(value, d="", attribute=None):
    """`join`: each part is measured before it is added."""
    if not isinstance(d, str):
        d = _as_text(d)
    parts, size = [], 0
    for item in _materialise(value, "join"):
        if attribute is not None:
            item = ENV.getitem(item, attribute)
        text = _as_text(item) if not isinstance(item, MissingField) else ""
        size += len(text) + (len(d) if parts else 0)
        if size > MAX_VALUE:
            raise _too_big("text built by join")
        parts.append(text)
    _budget().charge(size)
    return d.join(parts)


def bounded_replace(s, old, new, count=None):
    """`replace`: the result's length is known from the number of matches before replacing."""
    s, old, new = (_as_text(x) for x in (s, old, new))
    matches = len(s) + 1 if old == "" else s.count(old)
    if count is not None:
        matches = min(matches, _int_arg(count, "replace's count", 0, MAX_VALUE))
    _precheck(len(s) + matches * max(0, len(new) - len(old)), "text built by replace")
    return s.replace(old, new, -1 if count is None else count)


def bounded_batch(value, linecount, fill_with=None):
    """`batch`: groups of `linecount` items; the groups and their padding are bounded before they are built."""
    items = _materialise(value, "batch")
    linecount = _int_arg(linecount, "batch's size", 1, MAX_VALUE)
    padding = (-len(items)) % linecount if fill_with is not None else 0
    _precheck(len(items) + padding + len(items) // linecount + 1, "the groups built by batch")
    return _filters.do_batch(items, linecount, fill_with)


def bounded_slice(value, slices, fill_with=None):
    """`slice`: at most as many slices as there may be items."""
    items = _materialise(value, "slice")
    slices = _int_arg(slices, "slice's number of slices", 1, MAX_VALUE)
    _precheck(len(items) + 2 * slices, "the slices built by slice")
    return list(_filters.sync_do_slice(items, slices, fill_with))


def bounded_sum(iterable, attribute=None, start=0):
    """`sum`: added up one item at a time with the same bounds as `+`, so summing lists cannot go quadratic."""
    total = start
    for item in _materialise(iterable, "sum"):
        if attribute is not None:
            item = ENV.getitem(item, attribute)
        total = _bounded_binop("+", total, item)
    return total


def bounded_round(value, precision=0, method="common"):
    """`round`: a precision beyond what a float holds would make Python build giant powers of ten."""
    _int_arg(precision, "round's precision", -20, 20)
    return _filters.do_round(value, precision, method)


def bounded_truncate(s, length=255, killwords=False, end="...", leeway=None):
    """`truncate`, with its arguments checked here (Jinja asserts them, which is no message for an organizer)."""
    s, end = _as_text(s), _as_text(end)
    length = _int_arg(length, "truncate's length", len(end), MAX_VALUE)
    if leeway is not None:
        _int_arg(leeway, "truncate's leeway", 0, MAX_VALUE)
    _budget().charge(len(s))
    return _filters.do_truncate(ENV, s, length, killwords, end, leeway)


def bounded_list(value):
    """`list`: the items counted as they are taken."""
    items = _materialise(value, "list")
    _cap(items)
    return items


_NUMBER_BITS = 1_300  # 1,000,000 ** 64, the largest power allowed


def _bounded_binop(operator_name: str, left, right):
    """Compute `left op right` after checking what it would build."""
    if operator_name == "**":
        if (
            not isinstance(right, int | float)
            or abs(right) > 64
            or not isinstance(left, int | float)
            or abs(left) > 1_000_000
        ):
            raise TemplateLimit("powers are limited in merge templates (base up to 1,000,000, exponent up to 64)")
    elif operator_name == "*":
        for seq, times in ((left, right), (right, left)):
            if isinstance(seq, str | list | tuple) and isinstance(times, int):
                _precheck(size_of(seq) * max(times, 0), "text or a list repeated with *")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > _NUMBER_BITS:
            raise TemplateLimit("numbers are limited in merge templates")
    elif operator_name == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            _precheck(size_of(left) + size_of(right), "text or a list joined with +")
    elif operator_name == "%" and isinstance(left, str):
        raise SecurityError("the % operator is not available on text in merge templates; use ~ to join text")
    result = _OPERATORS[operator_name](left, right)
    if isinstance(result, int) and result.bit_length() > _NUMBER_BITS:
        raise TemplateLimit("numbers are limited in merge templates")
    _budget().charge(1)
    return result


_OPERATORS = {
    "*": operator.mul,
    "**": operator.pow,
    "+": operator.add,
    "%": operator.mod,
    "//": operator.floordiv,
    "-": operator.sub,
    "/": operator.truediv,
}


class MergeEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with every growing operation bounded before it runs (`~` is rewritten to bounded_concat and
    loops to bounded_iterate by `_bound_tree`)."""

    intercepted_binops = frozenset(_OPERATORS)

    def call_binop(self, context, operator_name, left, right):
        """Cap repetition, joining and powers before computing them; refuse % formatting on text."""
        return _bounded_binop(operator_name, left, right)


# Filters whose result is bounded by their input (checked afterwards) and those given bounded versions (checked
# before they run). Names starting with "_" are the rewriter's own and cannot be typed by organizers (see
# _static_problems).
_BOUNDED_FILTERS = {
    "join": bounded_join,
    "replace": bounded_replace,
    "batch": bounded_batch,
    "slice": bounded_slice,
    "sum": bounded_sum,
    "round": bounded_round,
    "list": bounded_list,
    "truncate": bounded_truncate,
}
_INTERNAL_FILTERS = {"_concat": bounded_concat, "_iterate": bounded_iterate}


def _environment() -> MergeEnvironment:
    """The one sandbox all merge templates are compiled in."""
    env = MergeEnvironment(
        undefined=MissingField, autoescape=False, keep_trailing_newline=True, finalize=_finalize
    )
    builtin_filters = env.filters
    env.filters = {
        name: _BOUNDED_FILTERS.get(name) or _capped(builtin_filters[name]) for name in SAFE_FILTERS
    }
    env.filters["default"] = env.filters["d"] = _default
    env.filters.update(_INTERNAL_FILTERS)
    env.tests = {name: env.tests[name] for name in SAFE_TESTS}
    env.globals = {}
    return env


def _finalize(value):
    """Every `{{ … }}` printed: its text size is checked (and charged) before Jinja turns it into text."""
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple | dict | set | frozenset):
        _precheck(size_of(value), "a printed value")
    return value


class _Bounder(NodeTransformer):
    """Rewrites what the sandbox cannot intercept: `a ~ b` becomes a bounded join, and every loop walks its
    items through a counter that charges the render's budget."""

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        """`a ~ b ~ c` → bounded_concat(a, b, c)."""
        node = self.generic_visit(node)
        return nodes.Filter(nodes.Const(""), "_concat", list(node.nodes), [], None, None, lineno=node.lineno)

    def visit_For(self, node: nodes.For) -> nodes.Node:
        """`for x in items` → `for x in items|_iterate`."""
        node = self.generic_visit(node)
        node.iter = nodes.Filter(node.iter, "_iterate", [], [], None, None, lineno=node.lineno)
        return node


ENV = _environment()


@dataclass
class Problem:
    """One thing wrong with a template: which part, the line, and the message."""

    part: str
    message: str
    line: int | None = None
    recipients: list[str] = field(default_factory=list)
    count: int = 0

    def __str__(self) -> str:
        where = f"{self.part}, line {self.line}" if self.line else self.part
        text = f"{where}: {self.message}"
        if self.count:
            shown = ", ".join(self.recipients[:5])
            more = f" and {self.count - 5} more" if self.count > 5 else ""
            text += f" — {self.count} recipient{'s' if self.count != 1 else ''} affected ({shown}{more})"
        return text


def _static_problems(part: str, tree: nodes.Template) -> list[Problem]:
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
            known = _RECORDS.get(base)
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


@dataclass
class CompiledMerge:
    """The subject and body templates compiled once per merge, or the problems that stop them compiling."""

    subject: object | None
    body: object | None
    problems: list[Problem]


def compile_templates(subject: str, body: str) -> CompiledMerge:
    """Parse, check and compile both templates; problems carry the part and line."""
    problems: list[Problem] = []
    compiled = {}
    for part, source, limit in (
        ("Subject", subject, MAX_SUBJECT_TEMPLATE),
        ("Body", body, MAX_BODY_TEMPLATE),
    ):
        if source is None or not source.strip():
            problems.append(Problem(part, "is empty"))
            continue
        if len(source) > limit:
            problems.append(Problem(part, f"is limited to {limit:,} characters"))
            continue
        if code_size(source) > MAX_CODE:
            problems.append(
                Problem(part, f"has more than {MAX_CODE:,} characters of fields and logic ({{{{ … }}}} and {{% … %}})")
            )
            continue
        try:
            tree = ENV.parse(source)
            found = _static_problems(part, tree)
            if found:
                problems.extend(found)
                continue
            compiled[part] = ENV.from_string(_Bounder().visit(tree))
        except TemplateSyntaxError as exc:
            problems.append(Problem(part, f"syntax error: {exc.message}", exc.lineno))
        except RecursionError:
            problems.append(Problem(part, "is nested too deeply (brackets or blocks inside one another)"))
    if problems:
        return CompiledMerge(None, None, problems)
    return CompiledMerge(compiled["Subject"], compiled["Body"], [])


class RenderError(ValueError):
    """A template that fails for one recipient; `part` says subject or body, `line` where when known, `limit`
    whether a render budget stopped it (then every recipient would fail the same way)."""

    def __init__(self, part: str, message: str, line: int | None = None, limit: bool = False):
        super().__init__(message)
        self.part = part
        self.line = line
        self.limit = limit


def _line_of(exc: BaseException) -> int | None:
    """The template line of a runtime error, from the traceback's template frames."""
    tb = exc.__traceback__
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            # Jinja rewrites the traceback so template frames carry template line numbers.
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_part(part: str, template, context: dict) -> str:
    """Render one template for one recipient within its budget: output size, work and time."""
    chunks: list[str] = []
    size = 0
    budget = Budget(deadline=time.monotonic() + MAX_RENDER_SECONDS)
    token = _BUDGET.set(budget)
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderError(
                    part, f"the rendered {part.lower()} is longer than {MAX_OUTPUT:,} characters", limit=True
                )
            budget.charge(len(chunk))
            chunks.append(chunk)
    except RenderError:
        raise
    except TemplateLimit as exc:
        raise RenderError(part, f"refused: {exc}", _line_of(exc), limit=True) from None
    except UndefinedError as exc:
        raise RenderError(part, f"{exc.message}", _line_of(exc)) from None
    except SecurityError as exc:
        raise RenderError(part, f"refused: {exc}", _line_of(exc)) from None
    except (
        TemplateError,
        AssertionError,
        TypeError,
        ValueError,
        ArithmeticError,
        RecursionError,
        MemoryError,
        AttributeError,
        KeyError,
        IndexError,
    ) as exc:
        raise RenderError(part, f"cannot be rendered: {type(exc).__name__}", _line_of(exc),
                          limit=isinstance(exc, RecursionError | MemoryError)) from None
    finally:
        _BUDGET.reset(token)
    return "".join(chunks)
