"""Merge templates: Jinja in an immutable sandbox over plain data, checked before anything is queued.

Organizers write the subject and body; whatever they type must never reach the application's objects, the
configuration or unbounded memory and time. Four layers keep it so: only plain dicts and strings are passed in
(never ORM objects), Jinja's ImmutableSandboxedEnvironment blocks private attributes and mutation, a static
check refuses unknown fields and constructs we do not need (macros, includes, nested loops, long literals),
and every operator and filter that can grow a value is capped.
"""

import operator
from dataclasses import dataclass, field

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

MAX_SUBJECT_TEMPLATE = 1_000
MAX_BODY_TEMPLATE = 50_000
MAX_OUTPUT = 200_000  # characters of one rendered part
MAX_VALUE = 20_000  # characters (or items) of any intermediate value built by an operator or filter
MAX_LITERAL = 1_000

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


def _cap(value):
    """Refuse values larger than MAX_VALUE (text or lists built by operators and filters)."""
    if isinstance(value, str | list | tuple) and len(value) > MAX_VALUE:
        raise SecurityError(f"a value grew beyond {MAX_VALUE:,} characters")
    return value


def _capped(function):
    """Wrap a filter so its result is size-checked."""

    def wrapper(*args, **kwargs):
        return _cap(function(*args, **kwargs))

    wrapper.__name__ = getattr(function, "__name__", "filter")
    for attribute in ("jinja_pass_arg",):
        if hasattr(function, attribute):
            setattr(wrapper, attribute, getattr(function, attribute))
    return wrapper


class MergeEnvironment(ImmutableSandboxedEnvironment):
    """The sandbox with size-checked operators."""

    intercepted_binops = frozenset({"*", "**", "+", "%", "//"})

    def call_binop(self, context, operator_name, left, right):
        """Cap repetition and powers before computing them; refuse % formatting on text."""
        if operator_name == "**" and (
            not isinstance(right, int | float)
            or abs(right) > 64
            or (isinstance(left, int | float) and abs(left) > 1_000_000)
        ):
            raise SecurityError("powers are limited in merge templates")
        if operator_name == "*":
            for seq, times in ((left, right), (right, left)):
                if (
                    isinstance(seq, str | list | tuple)
                    and isinstance(times, int)
                    and len(seq) * times > MAX_VALUE
                ):
                    raise SecurityError(f"a value grew beyond {MAX_VALUE:,} characters")
            if isinstance(left, int) and isinstance(right, int) and abs(left * 1.0 * right) > 1e18:
                raise SecurityError("numbers are limited in merge templates")
        if operator_name == "%" and isinstance(left, str):
            raise SecurityError(
                "the % operator is not available on text in merge templates; use ~ to join text"
            )
        function = {
            "*": operator.mul,
            "**": operator.pow,
            "+": operator.add,
            "%": operator.mod,
            "//": operator.floordiv,
        }[operator_name]
        return _cap(function(left, right))


def _environment() -> MergeEnvironment:
    """The one sandbox all merge templates are compiled in."""
    env = MergeEnvironment(undefined=MissingField, autoescape=False, keep_trailing_newline=True)
    builtin_filters = env.filters
    env.filters = {name: _capped(builtin_filters[name]) for name in SAFE_FILTERS}
    env.filters["default"] = env.filters["d"] = _default
    env.tests = {name: env.tests[name] for name in SAFE_TESTS}
    env.globals = {}
    return env


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
    loop_names: dict[str, str] = {}  # loop variable → what it iterates ("history")
    assigned: set[str] = set()
    for node in tree.find_all((nodes.Assign, nodes.AssignBlock)):
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
        for node in tree.find_all(kind):
            problems.append(Problem(part, message, node.lineno))
    for loop in tree.find_all(nodes.For):
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
    for const in tree.find_all(nodes.Const):
        if isinstance(const.value, str) and "__" in const.value:
            problems.append(Problem(part, "double underscores are refused in merge templates", const.lineno))
        if isinstance(const.value, str) and len(const.value) > MAX_LITERAL:
            problems.append(
                Problem(part, f"text in an expression is limited to {MAX_LITERAL} characters", const.lineno)
            )
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
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
    for name in tree.find_all(nodes.Name):
        if name.ctx == "load" and name.name not in TOP_LEVEL and name.name not in assigned:
            problems.append(Problem(part, f"unknown field {name.name}", name.lineno))
    for call in tree.find_all(nodes.Call):
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
    for flt in tree.find_all(nodes.Filter):
        if flt.name not in ENV.filters:
            problems.append(Problem(part, f"unknown filter '{flt.name}'", flt.lineno))
    for test in tree.find_all(nodes.Test):
        if test.name not in ENV.tests:
            problems.append(Problem(part, f"unknown test '{test.name}'", test.lineno))
    unique: dict[tuple, Problem] = {}
    for problem in problems:
        unique.setdefault((problem.line, problem.message), problem)
    return sorted(unique.values(), key=lambda p: (p.line or 0, p.message))


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
        try:
            tree = ENV.parse(source)
        except TemplateSyntaxError as exc:
            problems.append(Problem(part, f"syntax error: {exc.message}", exc.lineno))
            continue
        found = _static_problems(part, tree)
        if found:
            problems.extend(found)
            continue
        compiled[part] = ENV.from_string(tree)
    if problems:
        return CompiledMerge(None, None, problems)
    return CompiledMerge(compiled["Subject"], compiled["Body"], [])


class RenderError(ValueError):
    """A template that fails for one recipient; `part` says subject or body, `line` where when known."""

    def __init__(self, part: str, message: str, line: int | None = None):
        super().__init__(message)
        self.part = part
        self.line = line


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
    """Render one template for one recipient, within the output cap."""
    chunks: list[str] = []
    size = 0
    try:
        for chunk in template.generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise RenderError(
                    part, f"the rendered {part.lower()} is longer than {MAX_OUTPUT:,} characters"
                )
            chunks.append(chunk)
    except RenderError:
        raise
    except UndefinedError as exc:
        raise RenderError(part, f"{exc.message}", _line_of(exc)) from None
    except SecurityError as exc:
        raise RenderError(part, f"refused: {exc}", _line_of(exc)) from None
    except (
        TemplateError,
        TypeError,
        ValueError,
        ArithmeticError,
        RecursionError,
        MemoryError,
        AttributeError,
        KeyError,
        IndexError,
    ) as exc:
        raise RenderError(part, f"cannot be rendered: {type(exc).__name__}", _line_of(exc)) from None
    return "".join(chunks)
