"""A Timeout that gives an attempt up frees what the policies inside it held for it.

Regression for a leak found in the 30-day e-commerce runs: in Timeout(Bulkhead(call)), an
attempt whose reply never came (a lost message, a crashed or hung server) kept its bulkhead
permit for ever; the permits ran out and every later call was rejected `bulkhead_full`.
resilience4j's TimeLimiter cancels the call, which frees the permit.
"""

from __future__ import annotations

from sim import Caller, Constant, Outcome, Pipeline, Service, World
from sim.policies import AdaptiveConcurrency, Bulkhead, Timeout


def setup() -> tuple[World, Caller, Service, list[tuple[float, str, str]]]:
    world = World()
    service = Service(world, "svc", world.node("server"), workers=10)
    service.endpoint("get", Constant(0.010))
    caller = Caller(world, world.node("client"))
    log: list[tuple[float, str, str]] = []
    return world, caller, service, log


def send(world, caller, pipeline, log, at, label):  # type: ignore[no-untyped-def]
    def start(_: object) -> None:
        caller.start(
            "svc.get",
            None,
            lambda r: log.append((round(world.now, 6), label, r.reason or r.outcome.value)),
            policy=pipeline,
        )

    world.at(at, start)


def test_a_timed_out_attempt_gives_its_bulkhead_permit_back() -> None:
    world, caller, service, log = setup()
    pipeline = Pipeline([Timeout(1.0), Bulkhead(max_concurrent=1)])
    world.at(0.0, lambda _: service.node.hang())  # never answers...
    world.at(0.5, lambda _: service.node.unhang())  # ...the requests sent while hung
    send(world, caller, pipeline, log, 0.0, "a")  # swallowed: times out at 1.0
    send(world, caller, pipeline, log, 0.6, "b")  # permit held by a: rejected
    send(world, caller, pipeline, log, 1.5, "c")  # a gave it back at 1.0: served
    world.run(10)
    assert log == [(0.6, "b", "bulkhead_full"), (1.0, "a", "timeout"), (1.51, "c", "ok")]
    assert world.metrics.snapshot()["pool.bulkhead.bulkhead.busy.value"] == 0


def test_an_attempt_given_up_while_waiting_for_a_permit_is_never_sent() -> None:
    world, caller, service, log = setup()
    pipeline = Pipeline([Timeout(1.0), Bulkhead(max_concurrent=1, max_wait_s=5.0)])
    world.at(0.0, lambda _: service.node.hang())
    send(world, caller, pipeline, log, 0.0, "a")  # holds the permit, swallowed
    send(world, caller, pipeline, log, 0.5, "b")  # waits for it; times out at 1.5
    world.run(10)
    # a's timeout at 1.0 frees the permit; b gets it and is sent (it times out at 1.5)
    assert log == [(1.0, "a", "timeout"), (1.5, "b", "timeout")]
    assert world.metrics.counter("service.svc.swallowed").value == 2
    assert world.metrics.snapshot()["pool.bulkhead.bulkhead.busy.value"] == 0


def test_an_abandoned_attempt_is_counted_out_of_the_concurrency_limit() -> None:
    world, caller, service, log = setup()
    limiter = AdaptiveConcurrency()
    pipeline = Pipeline([Timeout(1.0), limiter])
    world.at(0.0, lambda _: service.node.hang())
    for i in range(5):
        send(world, caller, pipeline, log, 0.0, f"r{i}")
    world.run(10)
    assert [outcome for _, _, outcome in log] == [Outcome.TIMEOUT.value] * 5
    # the five were counted out at their timeouts, as drops: in flight 0, limit backed off
    assert limiter._state_for(world).inflight == 0
    assert limiter.limit(world) == 20  # AIMD: 20 x 0.9 = 18, floored at the minimum of 20
