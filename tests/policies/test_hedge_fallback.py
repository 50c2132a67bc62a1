"""Hedging and fallbacks as exact event logs."""

from __future__ import annotations

from typing import Any

import pytest

from sim import Constant, Service
from sim.policies import Fallback, Hedge, Timeout
from tests.policies.helpers import Script


def test_hedge_loser_is_cancelled_before_the_server_starts_it() -> None:
    s = Script(workers=2)
    s.service.endpoint("slow", Constant(1.0))
    s.send(0.0, "z", "ok", target="svc.slow")  # holds worker 1 until 1.0
    s.send(0.0, "a", "ok", [Hedge(0.03)])  # primary on worker 2 until 0.1
    s.send(0.01, "y", "ok", target="svc.slow")  # queued first, gets worker 2 at 0.1
    log = s.run()
    # The hedge sent at 0.03 waits behind y; the primary wins at 0.1 and marks it
    # cancelled; when worker 1 frees at 1.0 the server skips it.
    assert log == [(0.1, "a", "ok", "ok"), (1.0, "z", "ok", None), (1.1, "y", "ok", None)]
    assert s.received == [(0.0, "ok")]  # the hedge never ran
    assert s.counter("policy.hedge.hedges") == 1
    assert s.counter("policy.hedge.won") == 0
    assert s.counter("policy.hedge.cancelled") == 1
    assert s.counter("service.svc.cancelled") == 1


def test_hedge_wins_when_the_primary_is_slow() -> None:
    s = Script(workers=2)
    times = iter([0.5, 0.05])
    slow_then_fast = Service(s.world, "varied", s.server, workers=2)

    def handler(ctx: Any, payload: Any) -> Any:
        yield ctx.sleep(next(times))
        return "answer"

    slow_then_fast.endpoint("op", Constant(0.0), handler=handler)
    s.send(0.0, "a", "x", [Hedge(0.1, max_attempts=3)], target="varied.op")
    log = s.run()
    # primary at 0 (0.5 s), hedge at 0.1 (0.05 s) wins at 0.15; no third attempt
    assert log == [(0.15, "a", "ok", "answer")]
    assert s.counter("policy.hedge.hedges") == 1
    assert s.counter("policy.hedge.won") == 1


def test_hedge_sends_the_next_attempt_at_once_when_all_sent_have_failed() -> None:
    s = Script(workers=3)
    s.send(0.0, "a", "fail", [Hedge(1.0, max_attempts=3)])
    log = s.run()
    assert [t for t, _ in s.received] == [0.0, 0.1, 0.2]
    assert log == [(0.3, "a", "error", "scripted")]


def test_hedge_delay_follows_a_quantile_of_recent_latencies() -> None:
    s = Script(workers=50, service_time=0.02)
    hedge = Hedge(1.0, quantile=0.9, window=20, min_samples=10)
    for i in range(12):
        s.send(i * 0.1, f"c{i}", "ok", [hedge])
    s.run()
    # the first 10 calls use the initial 1 s delay; then every latency seen was 0.02 s
    assert hedge._state_for(s.world).delay == pytest.approx(0.02)


def test_static_fallback_serves_a_degraded_value() -> None:
    s = Script()
    s.send(0.0, "a", "fail", [Fallback("static", "default")])
    s.send(1.0, "b", "ok", [Fallback("static", "default")])
    assert s.run() == [(0.1, "a", "degraded", "default"), (1.1, "b", "ok", "ok")]
    assert s.counter("policy.fallback.served") == 1


def test_stale_fallback_serves_the_last_good_value_per_payload() -> None:
    s = Script()
    stale = Fallback("stale", per_payload=True, on=["timeout"])
    policy = [stale, Timeout(0.05)]
    s.send(0.0, "a", "x", policy)  # times out: nothing cached yet
    s.send(1.0, "b", "x", [stale])  # ok: cached for payload "x"
    s.send(2.0, "c", "x", policy)  # times out: the stale "x"
    s.send(3.0, "d", "y", policy)  # times out: nothing cached for "y"
    assert s.run() == [
        (0.05, "a", "timeout", None),
        (1.1, "b", "ok", "x"),
        (2.05, "c", "degraded", "x"),
        (3.05, "d", "timeout", None),
    ]
    assert s.counter("policy.fallback.missed") == 2


def test_alternate_fallback_calls_another_endpoint() -> None:
    s = Script()
    backup = Service(s.world, "backup", s.server, workers=1)
    backup.endpoint("op", Constant(0.2), handler=lambda ctx, payload: f"backup:{payload}")
    s.send(0.0, "a", "fail", [Fallback("alternate", target="backup.op")])
    assert s.run() == [(0.3, "a", "degraded", "backup:fail")]
