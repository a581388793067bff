"""The budget of one template render: work and time charged as values are built, and the measures and caps that
refuse a value before it grows too big."""

import time
from contextvars import ContextVar
from dataclasses import dataclass

from jinja2.exceptions import SecurityError

MAX_VALUE = 20_000  # characters (or items) of any intermediate value built by an operator or filter
# The budget of one render (one part of one message): characters and items built, visited or printed, and time.
# A normal merge body spends a few thousand units and well under a millisecond.
MAX_WORK = 2_000_000
MAX_RENDER_SECONDS = 0.5


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


RENDER_BUDGET: ContextVar[Budget | None] = ContextVar("merge_template_budget", default=None)


def current_budget() -> Budget:
    """The budget of the render in progress. Outside a render (Jinja folding constants while compiling) there
    is none: refusing makes Jinja leave the expression to render time, where it is bounded."""
    budget = RENDER_BUDGET.get()
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


def too_big(what: str = "a value") -> TemplateLimit:
    """The refusal of a value that would grow past MAX_VALUE."""
    return TemplateLimit(f"{what} would grow beyond {MAX_VALUE:,} characters or items")


def cap(value, what: str = "a value"):
    """Refuse values larger than MAX_VALUE (a last check on results whose size is proportional to their
    input, which is bounded already); charge their size to the render's work."""
    size = size_of(value)
    current_budget().charge(size)
    if size > MAX_VALUE:
        raise too_big(what)
    return value


def precheck(size: int, what: str) -> None:
    """Refuse an operation whose result would be `size` big, before doing it; charge the work."""
    if size > MAX_VALUE:
        raise too_big(what)
    current_budget().charge(size)


def int_arg(value, name: str, low: int, high: int) -> int:
    """A whole-number filter argument within bounds."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise TemplateLimit(f"{name} must be a whole number from {low:,} to {high:,}")
    return value


def materialise(value, what: str) -> list:
    """A filter's input as a bounded list (generators from map/select are consumed here, item by item)."""
    if isinstance(value, str | dict):
        value = list(value)
    items = []
    budget = current_budget()
    for item in value:
        items.append(item)
        budget.charge(1)
        if len(items) > MAX_VALUE:
            raise too_big(what)
    return items


def capped(function):
    """Wrap a filter whose result is at most proportional to its (bounded) input so the result is size-checked
    and charged."""

    def wrapper(*args, **kwargs):
        for arg in args:
            if isinstance(arg, str | list | tuple | dict):
                current_budget().charge(size_of(arg))
        return cap(function(*args, **kwargs))

    wrapper.__name__ = getattr(function, "__name__", "filter")
    for attribute in ("jinja_pass_arg",):
        if hasattr(function, attribute):
            setattr(wrapper, attribute, getattr(function, attribute))
    return wrapper


def as_text(value) -> str:
    """How Jinja prints a value, refused before building it when it would be too long."""
    if isinstance(value, str):
        return value
    precheck(size_of(value), "a printed value")
    return str(value)
