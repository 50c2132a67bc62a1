"""Retry, backoff, retry budgets and deadlines as exact event logs."""

from __future__ import annotations

from typing import Any

import pytest

from sim import Caller, Constant, Service, World
from sim.policies import Backoff, Deadline, Retry, RetryBudget, RetryThrottle, Timeout
from tests.policies.helpers import Script


def failing_first(times: int) -> Any:
    """A payload whose first ``times`` executions fail."""
    seen = {"n": 0}

    def answer(ctx: Any) -> str:
        seen["n"] += 1
        if seen["n"] <= times:
            from sim import ServiceError

            raise ServiceError("flaky")
        return "done"

    return answer


def test_exponential_backoff_first_retry_waits_base_then_doubles() -> None:
    s = Script()
    retry = Retry(3, backoff="exponential", base_s=0.1)
    s.send(0.0, "a", failing_first(2), [retry])
    log = s.run()
    # attempt 1 at 0 (fails at 0.1), sleep 0.1·2^0; attempt 2 at 0.2 (fails at 0.3),
    # sleep 0.1·2^1; attempt 3 at 0.5 succeeds at 0.6
    assert [t for t, _ in s.received] == [0.0, 0.2, 0.5]
    assert log == [(0.6, "a", "ok", "done")]
    assert s.counter("policy.retry.attempts") == 3
    assert s.counter("policy.retry.retries") == 2


def test_max_attempts_counts_the_first_call_and_returns_the_last_failure() -> None:
    s = Script()
    s.send(0.0, "a", "fail", [Retry(3)])  # resilience4j defaults: 500 ms constant
    log = s.run()
    assert [t for t, _ in s.received] == [0.0, 0.6, 1.2]
    assert log == [(1.3, "a", "error", "scripted")]
    assert s.counter("policy.retry.exhausted") == 1


def test_outcomes_not_in_retry_on_are_not_retried() -> None:
    s = Script()
    s.send(0.0, "a", "fail", [Retry(3, retry_on=["timeout"])])
    assert s.run() == [(0.1, "a", "error", "scripted")]
    assert len(s.received) == 1


def test_backoff_ceilings_per_kind_with_a_cap() -> None:
    never = lambda: 0.5  # noqa: E731  (unused without jitter)
    exponential = Backoff("exponential", 0.1, multiplier=2.0, cap_s=1.0)
    linear = Backoff("linear", 0.1, cap_s=0.25)
    constant = Backoff("constant", 0.3)
    assert [exponential.sleep(n, 0.0, never) for n in range(1, 7)] == pytest.approx(
        [0.1, 0.2, 0.4, 0.8, 1.0, 1.0]
    )
    assert [linear.sleep(n, 0.0, never) for n in range(1, 5)] == pytest.approx(
        [0.1, 0.2, 0.25, 0.25]
    )
    assert [constant.sleep(n, 0.0, never) for n in (1, 9)] == [0.3, 0.3]
    assert Backoff("exponential", 1.0).ceiling(5000) == float("inf")  # no overflow


def test_jitter_formulas_at_fixed_draws() -> None:
    half = lambda: 0.5  # noqa: E731
    v = 0.4  # the capped exponential backoff of retry 3 with base 0.1
    assert Backoff("exponential", 0.1, jitter="full").sleep(3, 0.0, half) == pytest.approx(v / 2)
    assert Backoff("exponential", 0.1, jitter="equal").sleep(3, 0.0, half) == pytest.approx(
        v / 2 + v / 4
    )
    # decorrelated: U(base, 3 · previous) = 0.1 + 0.5 · (0.9 - 0.1), capped
    decorrelated = Backoff("exponential", 0.1, jitter="decorrelated", cap_s=0.45)
    assert decorrelated.sleep(3, 0.3, half) == pytest.approx(0.45)
    assert decorrelated.sleep(1, 0.1, half) == pytest.approx(0.2)


def test_envoy_budget_allows_min_concurrency_when_the_percentage_is_smaller() -> None:
    s = Script(workers=10)
    budget = RetryBudget()  # 20%, at least 3
    retry = Retry(2, base_s=0.0, budget=budget)
    for i in range(10):
        s.send(0.0, f"c{i}", "fail", [retry])
    log = s.run()
    # At 0.1 all ten fail. 20% of 10 active calls is 2 < 3, so three retries are allowed
    # (c0-c2); the fourth failure finds 3 retries in progress and is refused, and so on:
    # a refused call ends with the failure it had, as in Envoy.
    assert log[:7] == [(0.1, f"c{i}", "error", "scripted") for i in range(3, 10)]
    assert log[7:] == [(0.2, f"c{i}", "error", "scripted") for i in range(3)]
    assert s.counter("policy.retry_budget.allowed") == 3
    assert s.counter("policy.retry_budget.denied") == 7
    assert s.counter("policy.retry.budget_denied") == 7


def test_envoy_budget_grows_with_active_requests() -> None:
    s = Script(workers=40)
    retry = Retry(2, base_s=0.0, budget=RetryBudget(budget_percent=25, min_retry_concurrency=0))
    for i in range(40):
        s.send(0.0, f"c{i}", "fail", [retry])
    log = s.run()
    # All 40 fail at 0.1 with 40 calls active: retries are allowed while fewer than 25% of
    # the active calls (10) are retrying; each refused call leaves, so the bound only falls.
    allowed = sum(1 for time, _, outcome, _ in log if outcome == "error" and time > 0.15)
    assert allowed == 10
    assert s.counter("policy.retry.budget_denied") == 30


def test_grpc_throttle_token_arithmetic() -> None:
    s = Script()
    throttle = RetryThrottle(max_tokens=4, token_ratio=1.6)  # threshold 2
    retry = Retry(3, base_s=0.0, budget=throttle)
    tokens = s.world.metrics.gauge("policy.retry_throttle.tokens", 4)
    seen: list[float] = []
    s.world.at(0.15, lambda _: seen.append(tokens.value))
    s.world.at(0.25, lambda _: seen.append(tokens.value))
    s.send(0.0, "a", "fail", [retry])  # 4 -> 3 (> 2: retry) -> 2 (not > 2: throttled)
    s.send(1.0, "b", "ok", [retry])  # 2 -> 3.6
    s.send(2.0, "c", failing_first(1), [retry])  # 3.6 -> 2.6 (retry) -> 4 (capped)
    log = s.run()
    assert seen == [3.0, 2.0]
    assert log == [
        (0.2, "a", "error", "scripted"),
        (1.1, "b", "ok", "ok"),
        (2.2, "c", "ok", "done"),
    ]
    assert tokens.value == 4.0


def test_retry_never_sleeps_past_the_deadline() -> None:
    s = Script()
    policy = [Deadline(0.35), Retry(5, base_s=0.1), Timeout(1.0)]
    s.send(0.0, "a", "fail", policy)
    log = s.run()
    # attempts at 0 and 0.2; after the second failure (0.3) a 0.1 s sleep would end at
    # 0.4, past the deadline 0.35: the last failure is returned.
    assert [t for t, _ in s.received] == [0.0, 0.2]
    assert log == [(0.3, "a", "error", "scripted")]
    assert s.counter("policy.retry.deadline_stops") == 1


def test_deadline_ends_the_call_and_caps_each_attempt() -> None:
    s = Script(service_time=1.0)
    s.send(0.0, "a", "ok", [Deadline(0.3), Retry(3, base_s=0.0), Timeout(5.0)])
    log = s.run()
    assert log == [(0.3, "a", "timeout", "deadline")]
    assert s.counter("policy.deadline.expired") == 1
    assert s.counter("policy.timeout.timeouts") == 1  # capped at the deadline, not 5 s
    assert len(s.received) == 1  # no retry: no time left


def test_deadline_propagates_to_downstream_calls_on_the_servers_clock() -> None:
    world = World()
    client = world.node("client")
    gateway_node = world.node("gateway", offset_s=100.0)  # its wall clock reads 100 s ahead
    db_node = world.node("db")
    Service(world, "db", db_node, workers=1).endpoint("query", Constant(0.5))
    seen: list[tuple[str, float, float | None]] = []

    def handle(ctx: Any, payload: Any) -> Any:
        seen.append(("received", round(world.now, 9), round(ctx.deadline, 9)))
        try:
            yield from ctx.call("db.query", policy=[Timeout(1.0)])
        except Exception as failure:
            seen.append((type(failure).__name__, round(world.now, 9), None))
            raise
        return "never"

    gateway = Service(world, "gateway", gateway_node, workers=1)
    gateway.endpoint("get", Constant(0.05), handler=handle)
    ends: list[tuple[float, str, str | None]] = []
    Caller(world, client).start(
        "gateway.get",
        None,
        lambda r: ends.append((round(world.now, 9), r.outcome.value, r.reason)),
        policy=[Deadline(0.3)],
    )
    world.run(5)
    # The gateway learns "0.3 s left" and counts it on its own clock from arrival (100.3);
    # its database call inherits the deadline: the 1 s timeout is cut to 0.25 s.
    assert seen == [("received", 0.05, 100.3), ("CallTimeout", 0.3, None)]
    assert ends == [(0.3, "timeout", "deadline")]


def test_deadline_without_propagation_stays_on_the_client() -> None:
    world = World()
    world.node("client")
    Service(world, "svc", world.node("server")).endpoint(
        "get", Constant(0.0), handler=lambda ctx, _: ctx.deadline
    )
    ends: list[Any] = []
    Caller(world, world.nodes["client"]).start(
        "svc.get", None, ends.append, policy=[Deadline(1.0, propagate=False)]
    )
    world.run(2)
    assert [r.value for r in ends] == [None]
