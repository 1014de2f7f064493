"""Unit tier, property: whatever the model answers, no ticket is lost."""

from __future__ import annotations

import json
from collections import deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from examples.support_desk.logic import CATEGORIES
from examples.support_desk.tests.conftest import MakeDesk
from portside.adapters.memory import FAILURE_KINDS, FakeLLM, ManualClock
from portside.domain import ChatRequest, RateLimited, ServiceError

_VALID = st.builds(
    lambda category, summary: json.dumps({"category": category, "summary": summary}),
    st.sampled_from(CATEGORIES),
    st.text(st.characters(blacklist_categories=["Cc", "Cs"]), min_size=1, max_size=40).filter(
        str.strip
    ),
)
_INVALID = st.sampled_from(
    [
        "not json at all",
        "```json\n{}\n```",
        '{"category": "weather", "summary": "rain"}',
        '{"category": "bug", "summary": "two\\nlines"}',
        '{"category": "bug"}',
        "[1, 2, 3]",
    ]
)
_FAILURES = st.one_of(
    st.builds(
        lambda after: RateLimited(service="fake", operation="complete", retry_after=after),
        st.none() | st.floats(0, 900),
    ),
    st.sampled_from(sorted(FAILURE_KINDS)).map(
        lambda kind: FAILURE_KINDS[kind](service="fake", operation="complete")
    ),
)
#: One model answer: a fitting reply, a reply that does not fit, or an error.
ANSWERS = st.one_of(_VALID, _INVALID, _FAILURES)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    subjects=st.lists(
        st.sampled_from(["Refund", "Crash on save", "Login", "Idea"]), min_size=1, max_size=5
    ),
    answers=st.lists(ANSWERS, max_size=25),
)
def test_every_ticket_ends_triaged_or_marked_for_retry_and_none_is_lost(
    make_desk: MakeDesk,
    manual_clock: ManualClock,
    subjects: list[str],
    answers: list[str | ServiceError],
) -> None:
    """Whatever the model answers, every ticket ends triaged or marked retry; none is lost."""
    script: deque[str | ServiceError] = deque(answers)

    def respond(_request: ChatRequest) -> str | ServiceError:
        # Once the scripted answers run out the model recovers.
        return script.popleft() if script else '{"category": "other", "summary": "ok"}'

    llm = FakeLLM(responder=respond)
    desk = make_desk(llm)
    opened = {desk.open_ticket("ann", s, f"About {s}.").unwrap().id for s in subjects}

    # Enough rounds for every message to be acked or spend its last delivery.
    for _ in range(8):
        desk.work("worker", max_messages=10)
        manual_clock.advance(desk.max_backoff + 1)

    tickets = desk.tickets(limit=500).unwrap()
    assert {t.id for t in tickets} == opened
    for ticket in tickets:
        assert ticket.status in ("triaged", "retry"), ticket
        if ticket.status == "triaged":
            assert ticket.category in CATEGORIES
            assert ticket.summary
            assert "\n" not in ticket.summary
        else:
            assert ticket.last_error, ticket
    assert desk.queue.receive(desk.topic, desk.group, "worker", max_messages=10).unwrap() == []

    script.clear()
    waiting = sum(t.status == "retry" for t in tickets)
    assert desk.requeue().unwrap() == waiting
    desk.work("worker", max_messages=10)
    assert {t.status for t in desk.tickets(limit=500).unwrap()} == {"triaged"}
