"""CQRS read models: staleness follows the projection lag, read-your-writes violations and
their remedy, and a projection paused by a crash."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim import Caller, Constant, Crash, Exponential, Link, World, inject
from sim.data import Append, EventStore, Query, ReadModel, RecordedEvent, View


def count(view: int, event: RecordedEvent) -> int:
    return view + 1


def make(world: World, lag: Any, **options: Any) -> tuple[EventStore, ReadModel, Caller]:
    store = EventStore(
        world, "es", world.node("es"), append_time=Constant(0.001), read_time=Constant(0.001)
    )
    model = ReadModel(
        world, "orders_view", world.node("rm"), store, count, initial=0, lag=lag,
        query_time=Constant(0.0), **options,
    )  # fmt: skip
    return store, model, Caller(world, world.node("app"))


def stale_share(mean_lag: float, delay: float, writes: int, seed: int) -> tuple[float, float]:
    """Write once to each of ``writes`` keys, read each key ``delay`` after its append.

    Writes are 20 mean lags apart, so one event's lag almost never holds back the next
    (probability e^-20); links are instant, so a read happens exactly ``delay`` after the
    append. Returns the share of stale reads and their mean staleness.
    """
    world = World(seed=seed)
    store, model, app = make(world, Exponential(mean_lag))
    views: list[View] = []

    def read_later(event: RecordedEvent) -> None:
        def read(_: object) -> None:
            app.start(model.address, Query(event.stream), lambda r: views.append(r.value))

        world.schedule(delay, read)

    store.subscribe(read_later)
    for n in range(writes):
        world.at(n * 20 * mean_lag, lambda _, n=n: app.start("es.append", _append(world, f"k{n}")))
    world.run(writes * 20 * mean_lag + 10)
    stale = [v.staleness for v in views if v.staleness > 0]
    assert len(views) == writes
    return len(stale) / writes, (sum(stale) / len(stale) if stale else 0.0)


def _append(world: World, stream: str) -> Append:
    """An append request sent directly (callback style, no process)."""
    return Append(stream, ("created",), None, 0.0, "app", world.new_id())


@pytest.mark.parametrize(("mean_lag", "delay"), [(0.1, 0.05), (0.1, 0.2), (0.4, 0.2)])
def test_staleness_follows_the_configured_projection_lag(mean_lag: float, delay: float) -> None:
    writes = 800
    share, mean_staleness = stale_share(mean_lag, delay, writes, seed=3)
    # An event with lag L ~ Exponential(mean) is not yet applied after `delay` with
    # probability e^(-delay/mean); reads are independent Bernoulli trials, so the share has
    # sd sqrt(p(1-p)/n): 3 sd is a 99.7% interval. A stale read has waited exactly `delay`.
    p = math.exp(-delay / mean_lag)
    assert abs(share - p) <= 3 * math.sqrt(p * (1 - p) / writes), (share, p)
    assert mean_staleness == pytest.approx(delay)


def test_measured_projection_lag_has_the_configured_mean() -> None:
    world = World(seed=9)
    _, model, app = make(world, Exponential(0.2))
    n = 2000
    for i in range(n):
        world.at(i * 4.0, lambda _, i=i: app.start("es.append", _append(world, f"k{i}")))
    world.run(n * 4.0 + 10)
    # Exponential lags, sd = mean; 3 standard errors. The histogram mean is exact.
    mean = model.projection_lag.mean()
    assert abs(mean - 0.2) <= 3 * 0.2 / math.sqrt(n)
    assert model.projection_lag.count == n


def read_own_write(wait_s: float | None) -> tuple[list[tuple[int, float]], int]:
    world = World()
    world.network.set_default(Link(Constant(0.001)))
    store, model, app = make(world, Constant(0.2), wait_s=wait_s)
    log: list[tuple[int, float]] = []

    def script():  # type: ignore[no-untyped-def]
        appended = yield from store.append(app, "order-1", ["created"])
        start = world.now
        view = yield from model.query(app, "order-1", min_position=appended.position)
        log.append((view.value, round(world.now - start, 9)))

    world.env.process(script())
    world.run(5)
    return log, world.metrics.counter("anomaly.read_your_writes").value


def test_a_read_right_after_a_write_misses_it_unless_the_query_waits() -> None:
    for wait_s in (None, 1.0):
        log, violations = read_own_write(wait_s)
        if wait_s is None:
            assert log == [(0, 0.002)] and violations == 1
        else:
            # asked at 0.003 (append reply), applied at 0.002 + 0.2, answered 1 ms later
            assert log == [(1, round(0.202 + 0.001 - 0.003, 9))] and violations == 0


def test_a_crashed_read_model_resumes_its_projection_from_the_checkpoint() -> None:
    world = World()
    _, model, app = make(world, Constant(0.1))
    for n in range(10):
        world.at(n * 1.0, lambda _, n=n: app.start("es.append", _append(world, f"k{n}")))
    inject(world, Crash("rm"), at_s=2.05, duration_s=5.0)  # the event of t=2 is in flight
    world.run(20)
    assert model.position == 10 and sum(v for v, _ in model.views.values()) == 10
    # events appended at 2..6 wait for the recovery at 7.05, then each takes a fresh lag
    assert model.projection_lag.maximum == pytest.approx(7.05 + 0.1 - 2.001)
