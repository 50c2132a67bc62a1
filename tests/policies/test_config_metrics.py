"""Policy metrics in a run's results, state per world, the registry, and bad configuration."""

from __future__ import annotations

from typing import Any

import pytest

import sim.policies
from sim import ConfigError, Constant, Exponential, OpenWorkload, Service, World
from sim.policies import (
    POLICIES,
    CircuitBreaker,
    Fallback,
    Hedge,
    Idempotency,
    Retry,
    RetryBudget,
    Timeout,
    build_pipeline,
    build_policy,
    in_default_order,
)
from tests.policies.helpers import Script


def test_public_api_matches_all() -> None:
    modules = {"base", "breaker", "budget", "bulkhead", "concurrency", "fallback", "hedge"}
    modules |= {"idempotency", "ratelimit", "registry", "retry", "shedding", "timeout"}
    exported = {name for name in dir(sim.policies) if not name.startswith("_")}
    assert set(sim.policies.__all__) == exported - modules


def test_policy_metrics_reach_the_snapshot() -> None:
    world = World(seed=5)
    server = world.node("server")
    flaky = Service(world, "flaky", server, workers=4)
    flaky.endpoint("get", Exponential(0.01), error_probability=0.5)
    flaky.endpoints["get"].add_policy(Idempotency(enabled=False))
    breaker = CircuitBreaker(window_size=10, minimum_calls=10, wait_in_open_s=0.5)
    policy = [
        Fallback("static", "cached"),
        Retry(3, base_s=0.01),
        breaker,
        Hedge(0.02),
        Timeout(0.1),
    ]
    OpenWorkload(world, "load", "flaky.get", 200, policy=policy)
    world.run(20, warmup_s=2)
    snapshot = world.metrics.snapshot()
    calls = snapshot["policy.retry.calls"]
    assert calls > 0 and snapshot["policy.retry.attempts"] / calls > 1.0  # amplification
    assert snapshot["policy.circuit_breaker.rejected.breaker_open"] > 0
    assert snapshot["entry.load.degraded"] == snapshot["policy.fallback.served"] > 0
    times = [
        snapshot[f"policy.circuit_breaker.state.time.{s}"] for s in ("closed", "open", "half_open")
    ]
    assert sum(times) == pytest.approx(18.0)
    assert min(times) > 0
    assert snapshot["policy.circuit_breaker.state.transitions.closed.open"] >= 1
    assert snapshot["policy.circuit_breaker.state.transitions.open.half_open"] >= 1
    assert snapshot["policy.hedge.hedges"] > 0 and snapshot["policy.hedge.won"] > 0
    assert snapshot["policy.idempotency.duplicate_side_effects"] > 0  # hedges ran twice


def test_the_same_policy_object_keeps_separate_state_in_each_world() -> None:
    breaker = CircuitBreaker(window_size=2, minimum_calls=2, wait_in_open_s=100)
    first, second = Script(), Script()
    first.send(0.0, "a", "fail", [breaker])
    first.send(0.2, "b", "fail", [breaker])
    first.run()
    second.send(0.0, "c", "ok", [breaker])
    second.run()
    assert breaker.current(first.world) == "open"
    assert breaker.current(second.world) == "closed"
    assert second.counter("policy.circuit_breaker.failures") == 0
    third = Script()  # and back: each world's state is its own
    third.send(0.0, "d", "ok", [breaker])
    third.run()
    assert breaker.current(first.world) == "open"


def test_a_budget_shared_by_two_retries_counts_both() -> None:
    s = Script(workers=10)
    budget = RetryBudget(budget_percent=10, min_retry_concurrency=1)
    one, two = Retry(2, base_s=0.0, budget=budget, name="one"), Retry(2, base_s=0.0, budget=budget)
    s.send(0.0, "a", "fail", [one])
    s.send(0.0, "b", "fail", [two])  # finds a's retry in progress: 1 >= max(1, 0.2)
    log = s.run()
    # a's retry is sent (ends at 0.2); b's is refused and b ends at 0.1 with its failure
    assert sorted(time for time, _, _, _ in log) == [0.1, 0.2]
    assert s.counter("policy.one.budget_denied") + s.counter("policy.retry.budget_denied") == 1


def test_build_policy_converts_config_text() -> None:
    retry = build_policy(
        "retry",
        {
            "max_attempts": 4,
            "backoff": "exponential",
            "base_s": "100ms",
            "jitter": "full",
            "budget": {"kind": "grpc", "max_tokens": 20, "token_ratio": 0.5},
        },
    )
    assert isinstance(retry, Retry)
    assert retry.backoff.base_s == pytest.approx(0.1)
    assert retry.budget is not None and retry.budget.max_tokens == 20  # type: ignore[union-attr]
    assert build_policy("timeout", {"seconds": "250ms"}).seconds == pytest.approx(0.25)
    assert build_policy("rate_limiter", {"rate": "600/min"}).rate == pytest.approx(10.0)
    fallback = build_policy(
        "fallback",
        {
            "mode": "alternate",
            "target": "b.op",
            "alternate_policy": [{"kind": "timeout", "seconds": 1}],
        },
    )
    assert len(fallback.alternate_policy) == 1


@pytest.mark.parametrize("kind", sorted(POLICIES))
def test_every_kind_builds_with_its_required_parameters(kind: str) -> None:
    required: dict[str, dict[str, Any]] = {
        "timeout": {"seconds": 1},
        "deadline": {"seconds": 1},
        "rate_limiter": {"rate": 5},
        "hedge": {"delay_s": 0.1},
        "thread_pool_bulkhead": {"max_threads": 4},
        "load_shedder": {"max_queue": 10},
    }
    policy = build_policy(kind, required.get(kind, {}))
    assert policy.kind == kind


def test_defaults_are_the_libraries() -> None:
    breaker = CircuitBreaker()
    assert (breaker.window, breaker.window_size, breaker.minimum_calls) == ("count", 100, 100)
    assert (breaker.failure_rate_threshold, breaker.slow_call_rate_threshold) == (50, 100)
    assert (breaker.slow_call_duration_s, breaker.wait_in_open_s) == (60, 60)
    assert (breaker.permitted_in_half_open, breaker.automatic_transition) == (10, False)
    retry = Retry()
    assert (retry.max_attempts, retry.backoff.kind, retry.backoff.base_s) == (3, "constant", 0.5)
    bulkhead = build_policy("bulkhead")
    assert (bulkhead.capacity, bulkhead.queue_limit) == (25, 0)
    budget = RetryBudget()
    assert (budget.budget_percent, budget.min_retry_concurrency) == (20, 3)
    limit = build_policy("adaptive_concurrency")
    assert (limit.initial_limit, limit.min_limit, limit.max_limit) == (20, 20, 200)
    assert limit.backoff_ratio == 0.9


def test_default_order_is_resilience4j_s() -> None:
    shuffled = [Timeout(1), CircuitBreaker(), build_policy("bulkhead"), Retry()]
    shuffled.insert(0, build_policy("rate_limiter", {"rate": 1}))
    ordered = [p.kind for p in in_default_order(shuffled)]
    assert ordered == ["retry", "circuit_breaker", "rate_limiter", "timeout", "bulkhead"]
    pipeline = build_pipeline([{"kind": "retry"}, {"kind": "timeout", "seconds": "1s"}])
    assert len(pipeline) == 2


@pytest.mark.parametrize(
    ("make", "fragments"),
    [
        (lambda: Retry(-1), ["max_attempts", "-1"]),
        (
            lambda: Retry(jitter="gaussian"),
            ["jitter", "gaussian", "none, full, equal, decorrelated"],
        ),
        (lambda: Retry(backoff="cubic"), ["backoff", "cubic", "constant, linear, exponential"]),
        (
            lambda: CircuitBreaker(failure_rate_threshold=0),
            ["failure_rate_threshold", "0", "(0, 100]"],
        ),
        (lambda: CircuitBreaker(slow_call_rate_threshold=150), ["slow_call_rate_threshold", "150"]),
        (lambda: CircuitBreaker(window="SESSION"), ["window", "SESSION"]),
        (lambda: RetryBudget(budget_percent=-5), ["budget_percent", "-5"]),
        (lambda: Retry(retry_on=["timeuot"]), ["retry_on", "timeuot"]),
        (lambda: build_policy("retry", {"max_attempts": -2}), ["retry.max_attempts", "-2"]),
        (lambda: build_policy("retry", {"max_attemps": 3}), ["retry.max_attemps", "max_attempts"]),
        (lambda: build_policy("retyr", {}), ["kind", "retyr", "circuit_breaker"]),
        (lambda: build_policy("rate_limiter", {}), ["rate_limiter.rate", "required"]),
        (lambda: build_policy("timeout", {"seconds": "soon"}), ["soon"]),
        (lambda: build_policy("retry", {"budget": {"kind": "istio"}}), ["budget.kind", "istio"]),
        (lambda: build_pipeline([{"kind": "load_shedder", "max_queue": 1}]), ["client-side"]),
        (lambda: Fallback("alternate"), ["target"]),
        (lambda: Hedge(0.1, max_attempts=1), ["max_attempts", "1"]),
        (lambda: Retry(name="two words"), ["name", "two words"]),
    ],
)
def test_bad_configuration_names_the_parameter_and_value(make: Any, fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as error:
        make()
    message = str(error.value)
    for fragment in fragments:
        assert fragment in message
    assert len(message.splitlines()) == 1


def test_unknown_parameters_are_all_named_at_once() -> None:
    with pytest.raises(ConfigError) as error:
        build_policy("circuit_breaker", {"treshold": 50, "windowSize": 10})
    assert [p.path for p in error.value.problems] == [
        "circuit_breaker.treshold",
        "circuit_breaker.windowSize",
    ]


def test_server_side_policies_need_no_process_per_request() -> None:
    world = World()
    service = Service(world, "svc", world.node("server"), workers=2)
    service.endpoint(
        "op", Constant(0.01), policies=[build_policy("load_shedder", {"max_queue": 5})]
    )
    OpenWorkload(world, "load", "svc.op", 300)
    world.run(2)
    assert world.metrics.counter("policy.load_shedder.rejected.shed").value > 0
