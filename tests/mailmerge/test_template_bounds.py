"""Hostile merge templates fail fast: every growing operation is bounded before it runs, and each check, preview
and render has a time and memory bound (issue 14, point 1).

The property test composes the operations an organizer can type (`~`, `*`, `+`, slice, batch, sum, join, replace,
list, round, truncate, loops, printing) with large numbers, and asserts that the check, the preview and a message
render each end within TIME_BOUND seconds and MEMORY_BOUND bytes, either rendering or naming the problem.
"""

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.extensions import db
from crm.mailmerge import checking, previews, queueing
from crm.mailmerge.errors import MergeError
from crm.mailmerge.rendering import letter_record, load_recipients, render_message
from crm.mailmerge.templating import RenderError, compile_templates
from tests.mailmerge.conftest import make_recipients, new_merge

TIME_BOUND = 2.0  # seconds, per check, preview or render
MEMORY_BOUND = 50 * 1024 * 1024  # tracemalloc peak, bytes

# The exact templates of the issue, and their cousins: each took minutes or gigabytes before.
ISSUE_EXAMPLES = {
    "concat doubling": "{% set a = contact.first_name %}" + "{% set a = a ~ a %}" * 15 + "{{ a }}",
    "sum with start=[]": "{% set l = [[1] * 100] * 100 %}{{ (l * 2) | sum(start=[]) | length }}",
    "sum of a multiplied list": "{% set l = [[1, 2, 3]] * 5000 %}{{ l | sum(start=[]) | length }}",
    "slice 10**9": "{{ [1] | slice(10**9) | list }}",
    "batch 10**9": "{{ [1] | batch(10**9, 'x') | list }}",
    "batch literal": "{{ [1] | batch(1000000000, 'x') | list }}",
    "slice literal": "{{ [1] | slice(1000000000) | list }}",
    "string times": "{{ 'x' * 1000000000 }}",
    "list of long texts printed": "{% set a = 'x' * 20000 %}{{ [" + "a, " * 800 + "a] }}",
    "join with a long separator": "{% set a = 'x' * 20000 %}{{ ['a', 'b', 'c'] | join(a ~ a) }}",
    "replace empty": "{% set a = 'x' * 10000 %}{{ a | replace('', a) }}",
    "round precision": "{{ 5 | round(-1000000000) }}",
    "power tower": "{{ 9 ** 9 ** 9 }}",
    "loop of sorts": "{% set a = [3, 1, 2] * 6000 %}{% for i in a %}{% set b = a | sort %}{% endfor %}.",
    "loop printing": "{% set a = 'x' * 1000 %}{% for i in 'y' * 20000 %}{{ a }}{% endfor %}",
    "plus doubling": "{% set a = [contact.first_name] %}" + "{% set a = a + a %}" * 20 + "{{ a | length }}",
    "center": "{{ 'x' | center(1000000000) }}",
    "format": "{{ '%s' | format('x' * 10000) }}",
    "indent": "{{ 'x\ny' | indent(1000000000) }}",
    "wordwrap": "{{ 'x y' | wordwrap(1000000000) }}",
    "set block doubling": "{% set a = 'xx' %}" + "{% set a %}{{ a }}{{ a }}{% endset %}" * 20 + "{{ a }}",
    "deep nesting": "{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}",
    "too much code": "{{ contact.first_name }}" * 400,
}


@pytest.fixture
def hostile_merge(app):
    """One draft merge with two recipients, whose templates each example replaces."""
    make_recipients(2)
    return new_merge()


def _set_templates(merge, subject: str, body: str) -> None:
    """Put templates on the merge as an API or page save would, without the save's own refusal (the point is
    what check, preview and sending do with whatever is stored)."""
    merge.subject_template, merge.body_template = subject, body
    db.session.commit()


def _bounded(action):
    """Run `action` once timed and once under tracemalloc (which slows allocation several times over, so timing
    it there would measure tracemalloc); return (seconds, peak bytes, result or error)."""
    started = time.perf_counter()
    try:
        outcome = action()
    except (MergeError, RenderError) as exc:
        outcome = exc
    seconds = time.perf_counter() - started
    tracemalloc.start()
    try:
        action()
    except (MergeError, RenderError):
        pass
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return seconds, peak, outcome


def _render_one(merge):
    """What the worker does for one queued message."""
    compiled = compile_templates(merge.subject_template, merge.body_template)
    if compiled.problems:
        raise MergeError(str(compiled.problems[0]))
    contact_id = previews.preview_contacts(merge, 1)[0][0]
    recipient = load_recipients([contact_id])[contact_id]
    return render_message(compiled, recipient, letter=letter_record(merge.letter), merge_id=merge.id,
                          sender="", reply_to="")


def _assert_bounded(merge, body: str) -> list[str]:
    """Check, preview and one render of `body`, each within the bounds; the messages of what they refused."""
    _set_templates(merge, "Hello {{ org.name }}", body)
    messages = []
    for name, action in (
        ("check", lambda: checking.check_merge(merge)),
        ("preview", lambda: previews.preview(merge)),
        ("render", lambda: _render_one(merge)),
    ):
        seconds, peak, outcome = _bounded(action)
        assert seconds < TIME_BOUND, (name, body[:200], seconds)
        assert peak < MEMORY_BOUND, (name, body[:200], peak)
        if isinstance(outcome, checking.CheckResult):
            messages += [str(p) for p in outcome.problems]
        elif isinstance(outcome, Exception):
            messages.append(str(outcome))
    return messages


@pytest.mark.parametrize("body", ISSUE_EXAMPLES.values(), ids=ISSUE_EXAMPLES.keys())
def test_the_issues_templates_fail_fast_with_a_clear_message(hostile_merge, body):
    messages = _assert_bounded(hostile_merge, body)
    assert messages, "a hostile template was accepted"
    text = " ".join(messages)
    assert any(word in text for word in (
        "would grow beyond", "must be a whole number", "limited", "not available", "unknown filter",
        "nested too deeply", "characters of fields and logic", "too much work", "longer than",
    )), text
    assert "Traceback" not in text and "<" not in text.replace("<class", "")


def test_saving_a_hostile_template_is_refused_by_the_check_and_queueing(app):
    make_recipients(2)
    merge = new_merge(body=ISSUE_EXAMPLES["concat doubling"])
    result = checking.check_merge(merge)
    assert not result.ok
    assert "text joined with ~ would grow beyond 20,000 characters" in str(result.problems[0])
    assert "the check stopped here" in str(result.problems[0])
    with pytest.raises(MergeError):
        queueing.queue_merge(merge)


def test_ordinary_templates_still_render(app):
    make_recipients(1)
    merge = new_merge(body=(
        "Dear {{ contact.first_name | default('friends') }},\n\n"
        "{% for h in history %}- {{ h.title ~ ' (' ~ h.date ~ ')' }}\n{% endfor %}"
        "{{ ['a', 'b'] | join(', ') }} {{ [1, 2, 3] | sum }} {{ 'a-b' | replace('-', '+') }} "
        "{{ [1, 2, 3, 4] | batch(2) | list | length }} {{ [1, 2, 3] | slice(2) | list | length }} "
        "{{ ('ab' * 3) ~ ([1] + [2]) | length }} {{ 2 ** 10 }} {{ 3.14159 | round(2) }}"
    ))
    assert checking.check_merge(merge).ok
    text = previews.preview(merge).text
    assert "a, b 6 a+b 2 2 ababab2 1024 3.14" in text


NUMBERS = st.sampled_from(["0", "1", "2", "7", "64", "1000", "20000", "1000000", "10**9", "2**64", "-1",
                           "1000000000", "99999999999"])
TEXTS = st.sampled_from(["'x'", "'ab'", "contact.first_name", "org.name", "''", "'x' * 1000"])


@st.composite
def _expression(draw, depth: int = 0):
    """An expression over `a` that tries to grow it."""
    atom = draw(st.sampled_from(["a", "a", "[a]", "[a, a, a]", "history", "(a | list)"]))
    number = draw(NUMBERS)
    text = draw(TEXTS)
    expression = draw(st.sampled_from([
        f"{atom} ~ {atom}",
        f"{atom} ~ {atom} ~ {atom} ~ {atom}",
        f"{atom} * {number}",
        f"{text} * {number}",
        f"{atom} + {atom}",
        f"[{atom}] * {number}",
        f"{atom} | slice({number}) | list",
        f"{atom} | batch({number}, {text}) | list",
        f"[{atom}] * {number} | sum(start=[])",
        f"{atom} | sum(start=[])",
        f"{atom} | join({atom})",
        f"{atom} | join({text} * {number})",
        f"{atom} | replace('', {atom})",
        f"{atom} | replace('x', {text} * {number})",
        f"{atom} | list",
        f"{atom} | string",
        f"{atom} | truncate({number})",
        f"{number} | round({number})",
        f"{number} ** {number}",
        f"{number} * {number} * {number}",
        f"{atom} | center({number})",
        f"{atom} | wordwrap({number})",
        f"{atom} | indent({number})",
        f"'%s' | format({atom})",
        f"{atom} | unique | list",
        f"{atom} | sort | reverse | list",
    ]))
    if depth < 2 and draw(st.booleans()):
        inner = draw(_expression(depth + 1))
        expression = expression.replace("a", f"({inner})", 1) if expression.startswith("a") else expression
    return expression


@st.composite
def hostile_templates(draw):
    """A body of repeated assignments that each try to grow `a`, then a way to use it."""
    start = draw(TEXTS)
    steps = draw(st.lists(_expression(), min_size=1, max_size=6))
    repeat = draw(st.integers(1, 20))
    body = f"{{% set a = {start} %}}" + "".join(f"{{% set a = {step} %}}" for step in steps) * repeat
    body += draw(st.sampled_from([
        "{{ a }}",
        "{% for x in a %}{{ a }}{% endfor %}",
        "{% for x in a %}{% set b = a ~ a %}{% endfor %}.",
        "{{ a | length }}",
        "{{ [a] * 1000 }}",
    ]))
    return body


@given(body=hostile_templates())
@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_generated_hostile_templates_stay_within_time_and_memory(hostile_merge, body):
    messages = _assert_bounded(hostile_merge, body)
    for message in messages:
        assert message and "Traceback" not in message
