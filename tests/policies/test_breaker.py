"""Circuit breakers as exact event logs: every call's end and every state change."""

from __future__ import annotations

from sim.policies import CircuitBreaker, ConsecutiveBreaker, Timeout
from tests.policies.helpers import Script, changes


def test_count_window_opens_at_the_threshold_only_after_the_minimum_calls() -> None:
    s = Script()
    breaker = CircuitBreaker(
        window_size=4, minimum_calls=4, wait_in_open_s=1.0, permitted_in_half_open=2
    )
    # Three calls, two failed (67% >= 50%), but fewer than the minimum of 4: stays closed.
    for at, label, payload in [(0, "a", "fail"), (1, "b", "ok"), (2, "c", "fail")]:
        s.send(at, label, payload, [breaker])
    s.send(3, "d", "fail", [breaker])  # 4 recorded, 3 failed: opens when it ends (3.1)
    s.send(3.5, "e", "ok", [breaker])  # open: rejected at once, unsent
    s.send(4.05, "f", "ok", [breaker])  # the wait (1 s from 3.1) is not over
    s.send(4.2, "g", "ok", [breaker])  # first call after the wait: half-open, permitted
    s.send(4.25, "h", "ok", [breaker])  # second permitted call
    s.send(4.26, "i", "ok", [breaker])  # no third permit: rejected
    s.send(5.0, "j", "fail", [breaker])  # closed again: a fresh window
    log = s.run()
    assert log == [
        (0.1, "a", "error", "scripted"),
        (1.1, "b", "ok", "ok"),
        (2.1, "c", "error", "scripted"),
        (3.1, "d", "error", "scripted"),
        (3.5, "e", "rejected", "breaker_open"),
        (4.05, "f", "rejected", "breaker_open"),
        (4.26, "i", "rejected", "breaker_open"),
        (4.3, "g", "ok", "ok"),
        (4.4, "h", "ok", "ok"),  # one worker: h waited for g
        (5.1, "j", "error", "scripted"),
    ]
    timeline = breaker.timeline(s.world)
    assert changes(timeline) == [
        (0.0, "closed"),
        (3.1, "open"),
        (4.2, "half_open"),
        (4.4, "closed"),
    ]
    assert breaker.current(s.world) == "closed"
    assert s.received == [
        (0, "fail"),
        (1, "ok"),
        (2, "fail"),
        (3, "fail"),
        (4.2, "ok"),
        (4.25, "ok"),
        (5.0, "fail"),
    ]


def test_half_open_failure_rate_at_the_threshold_reopens() -> None:
    s = Script(workers=2)
    breaker = CircuitBreaker(
        window_size=2, minimum_calls=2, wait_in_open_s=1.0, permitted_in_half_open=2
    )
    s.send(0, "a", "fail", [breaker])
    s.send(0, "b", "fail", [breaker])  # 2 of 2 failed: open at 0.1
    s.send(1.2, "c", "ok", [breaker])  # half-open
    s.send(1.2, "d", "fail", [breaker])  # 1 of 2 failed = 50% >= 50%: open again at 1.3
    s.send(1.35, "e", "ok", [breaker])
    s.send(2.35, "f", "ok", [breaker])  # 1 s after the reopening: half-open again
    log = s.run()
    assert [entry[1:3] for entry in log] == [
        ("a", "error"),
        ("b", "error"),
        ("c", "ok"),
        ("d", "error"),
        ("e", "rejected"),
        ("f", "ok"),
    ]
    assert changes(breaker.timeline(s.world)) == [
        (0.0, "closed"),
        (0.1, "open"),
        (1.2, "half_open"),
        (1.3, "open"),
        (2.35, "half_open"),
    ]


def test_slow_calls_open_the_breaker_even_when_they_succeed() -> None:
    s = Script(service_time=0.3)
    breaker = CircuitBreaker(
        window_size=2,
        minimum_calls=2,
        slow_call_duration_s=0.25,
        slow_call_rate_threshold=100,
        wait_in_open_s=10,
    )
    s.send(0, "a", "ok", [breaker])
    s.send(1, "b", "ok", [breaker])  # both slower than 0.25 s: 100% slow, opens at 1.3
    s.send(2, "c", "ok", [breaker])
    assert [entry[2] for entry in s.run()] == ["ok", "ok", "rejected"]
    assert s.counter("policy.circuit_breaker.slow") == 2


def test_time_window_forgets_seconds_that_left_it() -> None:
    s = Script(service_time=0.0)
    breaker = CircuitBreaker(window="TIME_BASED", window_size=2, minimum_calls=2)
    s.send(0.0, "a", "fail", [breaker])
    s.send(2.5, "b", "fail", [breaker])  # window = seconds 1-2: "a" (second 0) has left
    s.send(2.7, "c", "fail", [breaker])  # two failures in the window: opens
    s.send(2.8, "d", "ok", [breaker])
    assert [entry[2] for entry in s.run()] == ["error", "error", "error", "rejected"]
    assert changes(breaker.timeline(s.world)) == [(0.0, "closed"), (2.7, "open")]


def test_results_admitted_before_a_transition_are_not_recorded() -> None:
    s = Script(workers=3)
    breaker = CircuitBreaker(window_size=2, minimum_calls=2, wait_in_open_s=100)
    slow = lambda ctx: "late"  # noqa: E731
    s.send(0.0, "a", "fail", [breaker])
    s.send(0.0, "b", "fail", [breaker])  # opens at 0.1
    s.send(0.05, "c", slow, [breaker])  # admitted while closed, ends while open
    s.run()
    assert breaker.current(s.world) == "open"
    assert s.counter("policy.circuit_breaker.successes") == 1  # counted, not recorded


def test_consecutive_breaker_probe_and_growing_wait() -> None:
    s = Script(service_time=0.1, workers=2)
    breaker = ConsecutiveBreaker(3, wait_in_open_s=1.0, wait_multiplier=2.0)
    pattern = ["fail", "fail", "ok", "fail", "fail", "fail"]  # the ok resets the count
    for i, payload in enumerate(pattern):
        s.send(i * 0.2, f"c{i}", payload, [breaker])
    s.send(1.5, "r1", "ok", [breaker])  # open since 1.1: rejected
    s.send(2.2, "p1", "fail", [breaker])  # the one probe; fails: open again (wait 2 s)
    s.send(2.25, "r2", "ok", [breaker])  # probe outstanding: rejected
    s.send(4.2, "r3", "ok", [breaker])  # reopened at 2.3, the wait is now 2 s: rejected
    s.send(4.35, "p2", "ok", [breaker])  # the probe succeeds: closed, the wait resets
    log = s.run()
    assert [(t, label, outcome) for t, label, outcome, _ in log] == [
        (0.1, "c0", "error"),
        (0.3, "c1", "error"),
        (0.5, "c2", "ok"),
        (0.7, "c3", "error"),
        (0.9, "c4", "error"),
        (1.1, "c5", "error"),
        (1.5, "r1", "rejected"),
        (2.25, "r2", "rejected"),
        (2.3, "p1", "error"),
        (4.2, "r3", "rejected"),
        (4.45, "p2", "ok"),
    ]
    assert changes(breaker.timeline(s.world)) == [
        (0.0, "closed"),
        (1.1, "open"),
        (2.2, "half_open"),
        (2.3, "open"),
        (4.35, "half_open"),
        (4.45, "closed"),
    ]


def test_automatic_transition_moves_to_half_open_when_the_wait_ends() -> None:
    s = Script()
    breaker = ConsecutiveBreaker(1, wait_in_open_s=0.5, automatic_transition=True)
    s.send(0.0, "a", "fail", [breaker, Timeout(1.0)])
    s.run(5)
    assert changes(breaker.timeline(s.world)) == [
        (0.0, "closed"),
        (0.1, "open"),
        (0.6, "half_open"),
    ]
