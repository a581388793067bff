"""Merge templates: Jinja in an immutable sandbox over plain data, checked before anything is queued.

Organizers write the subject and body; whatever they type must never reach the application's objects, the
configuration or unbounded memory and time. Five layers keep it so: only plain dicts and strings are passed in
(never ORM objects), Jinja's ImmutableSandboxedEnvironment blocks private attributes and mutation, a static
check refuses unknown fields, constructs we do not need (macros, includes, nested loops, set blocks, long
literals) and templates with more code than a letter needs; every operation that can grow a value (`~`, `*`, `+`,
join, replace, batch, slice, sum, list, round, printing a list, loops) is measured *before* it runs; and each
render has a budget of work, output and time (Budget), so the worst template fails in well under a second with a
message naming the limit.

The stages live side by side: the field catalogue (template_fields), the static check (template_checks), the
sandbox with its bounded filters and operators (template_sandbox) and the render budget (template_budget). This
module compiles a merge's two templates through them and renders one part for one recipient.
"""

import time
from dataclasses import dataclass

from jinja2 import TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError

from crm.mailmerge.template_budget import MAX_RENDER_SECONDS, RENDER_BUDGET, Budget, TemplateLimit
from crm.mailmerge.template_checks import Problem, code_size, static_problems
from crm.mailmerge.template_sandbox import ENV, Bounder

MAX_SUBJECT_TEMPLATE = 1_000
MAX_BODY_TEMPLATE = 50_000
MAX_OUTPUT = 200_000  # characters of one rendered part
# Characters of template code ({{ … }} and {% … %}) per part: compiling costs about 0.1 ms per expression node,
# so this bounds the time a check spends before rendering anything. Prose around the code is not counted.
MAX_CODE = 6_000


class Record(dict):
    """A plain mapping of one template variable (contact, org, …) that remembers its name for error
    messages.
    """

    __slots__ = ("_path",)

    def __init__(self, path: str, values: dict):
        super().__init__({k: v for k, v in values.items() if v not in (None, "")})
        self._path = path


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
            found = static_problems(part, tree)
            if found:
                problems.extend(found)
                continue
            compiled[part] = ENV.from_string(Bounder().visit(tree))
        except TemplateSyntaxError as exc:
            problems.append(Problem(part, f"syntax error: {exc.message}", exc.lineno))
        except RecursionError:
            problems.append(Problem(part, "is nested too deeply (brackets or blocks inside one another)"))
    if problems:
        return CompiledMerge(None, None, problems)
    return CompiledMerge(compiled["Subject"], compiled["Body"], [])


def uses_field(name: str, *sources: str) -> bool:
    """Whether any of the templates reads the top-level field `name` (a template that does not parse reads nothing:
    its syntax error is reported on its own)."""
    for source in sources:
        if not source or name not in source:
            continue  # the cheap test first: most templates never mention the field
        try:
            if name in meta.find_undeclared_variables(ENV.parse(source)):
                return True
        except (TemplateSyntaxError, RecursionError):
            continue
    return False


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
    token = RENDER_BUDGET.set(budget)
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
        RENDER_BUDGET.reset(token)
    return "".join(chunks)
