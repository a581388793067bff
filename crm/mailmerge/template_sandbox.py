"""The sandbox merge templates run in: the filters and tests they may use, every operation that can grow a value
bounded before it runs, and the rewrite of what the sandbox cannot intercept (`~` and loops)."""

import operator

from jinja2 import StrictUndefined, nodes
from jinja2 import filters as _filters
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer

from crm.mailmerge.template_budget import (
    MAX_VALUE,
    TemplateLimit,
    as_text,
    cap,
    capped,
    current_budget,
    int_arg,
    materialise,
    precheck,
    size_of,
    too_big,
)

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


def bounded_concat(*values) -> str:
    """`a ~ b ~ c`: the sizes are added up before anything is joined."""
    precheck(sum(size_of(v) for v in values), "text joined with ~")
    return "".join(as_text(v) for v in values)


def bounded_iterate(value):
    """What a `{% for %}` walks: every iteration is charged and checks the clock."""
    budget = current_budget()

    def walk():
        for count, item in enumerate(value, start=1):
            budget.charge(1)
            if count > MAX_VALUE:
                raise too_big("a loop")
            yield item

    return walk()


def bounded_join(value, d="", attribute=None):
    """`join`: each part is measured before it is added."""
    if not isinstance(d, str):
        d = as_text(d)
    parts, size = [], 0
    for item in materialise(value, "join"):
        if attribute is not None:
            item = ENV.getitem(item, attribute)
        text = as_text(item) if not isinstance(item, MissingField) else ""
        size += len(text) + (len(d) if parts else 0)
        if size > MAX_VALUE:
            raise too_big("text built by join")
        parts.append(text)
    current_budget().charge(size)
    return d.join(parts)


def bounded_replace(s, old, new, count=None):
    """`replace`: the result's length is known from the number of matches before replacing."""
    s, old, new = (as_text(x) for x in (s, old, new))
    matches = len(s) + 1 if old == "" else s.count(old)
    if count is not None:
        matches = min(matches, int_arg(count, "replace's count", 0, MAX_VALUE))
    precheck(len(s) + matches * max(0, len(new) - len(old)), "text built by replace")
    return s.replace(old, new, -1 if count is None else count)


def bounded_batch(value, linecount, fill_with=None):
    """`batch`: groups of `linecount` items; the groups and their padding are bounded before they are built."""
    items = materialise(value, "batch")
    linecount = int_arg(linecount, "batch's size", 1, MAX_VALUE)
    padding = (-len(items)) % linecount if fill_with is not None else 0
    precheck(len(items) + padding + len(items) // linecount + 1, "the groups built by batch")
    return _filters.do_batch(items, linecount, fill_with)


def bounded_slice(value, slices, fill_with=None):
    """`slice`: at most as many slices as there may be items."""
    items = materialise(value, "slice")
    slices = int_arg(slices, "slice's number of slices", 1, MAX_VALUE)
    precheck(len(items) + 2 * slices, "the slices built by slice")
    return list(_filters.sync_do_slice(items, slices, fill_with))


def bounded_sum(iterable, attribute=None, start=0):
    """`sum`: added up one item at a time with the same bounds as `+`, so summing lists cannot go quadratic."""
    total = start
    for item in materialise(iterable, "sum"):
        if attribute is not None:
            item = ENV.getitem(item, attribute)
        total = _bounded_binop("+", total, item)
    return total


def bounded_round(value, precision=0, method="common"):
    """`round`: a precision beyond what a float holds would make Python build giant powers of ten."""
    int_arg(precision, "round's precision", -20, 20)
    return _filters.do_round(value, precision, method)


def bounded_truncate(s, length=255, killwords=False, end="...", leeway=None):
    """`truncate`, with its arguments checked here (Jinja asserts them, which is no message for an organizer)."""
    s, end = as_text(s), as_text(end)
    length = int_arg(length, "truncate's length", len(end), MAX_VALUE)
    if leeway is not None:
        int_arg(leeway, "truncate's leeway", 0, MAX_VALUE)
    current_budget().charge(len(s))
    return _filters.do_truncate(ENV, s, length, killwords, end, leeway)


def bounded_list(value):
    """`list`: the items counted as they are taken."""
    items = materialise(value, "list")
    cap(items)
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
                precheck(size_of(seq) * max(times, 0), "text or a list repeated with *")
        if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > _NUMBER_BITS:
            raise TemplateLimit("numbers are limited in merge templates")
    elif operator_name == "+":
        if isinstance(left, str | list | tuple) and isinstance(right, str | list | tuple):
            precheck(size_of(left) + size_of(right), "text or a list joined with +")
    elif operator_name == "%" and isinstance(left, str):
        raise SecurityError("the % operator is not available on text in merge templates; use ~ to join text")
    result = _OPERATORS[operator_name](left, right)
    if isinstance(result, int) and result.bit_length() > _NUMBER_BITS:
        raise TemplateLimit("numbers are limited in merge templates")
    current_budget().charge(1)
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
# template_checks.static_problems).
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
        name: _BOUNDED_FILTERS.get(name) or capped(builtin_filters[name]) for name in SAFE_FILTERS
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
        precheck(size_of(value), "a printed value")
    return value


class Bounder(NodeTransformer):
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
