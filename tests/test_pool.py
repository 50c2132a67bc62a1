"""Pools as exact logs: FIFO grants, queue limits, maximum wait on a drifting node's clock,
lazy removal of waiters that gave up, resize, clear on crash, the event API, and the
measurements (waits, grants, rejections, time-weighted busy and queue)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from sim import ConfigError, Pool, PoolRejected, World

Log = list[tuple[str, Any, float]]


class Holder:
    """Requests slots with the callback API and logs grants and rejections; each granted
    item holds its slot for ``hold_s`` (None: until released by hand)."""

    def __init__(self, world: World, pool: Pool, hold_s: float | None = 1.0):
        self.world = world
        self.pool = pool
        self.hold_s = hold_s
        self.log: Log = []

    def request(self, item: Any) -> None:
        self.pool.request(item, self._grant, self._reject)

    def request_at(self, t: float, item: Any) -> None:
        self.world.at(t, self.request, item)

    def _grant(self, item: Any) -> None:
        self.log.append(("granted", item, round(self.world.now, 9)))
        if self.hold_s is not None:
            self.world.schedule(self.hold_s, self._release, item)

    def _release(self, item: Any) -> None:
        self.log.append(("released", item, round(self.world.now, 9)))
        self.pool.release()

    def _reject(self, item: Any, reason: str) -> None:
        self.log.append((reason, item, round(self.world.now, 9)))


def test_grants_are_fifo_and_synchronous_when_a_slot_is_free() -> None:
    world = World()
    holder = Holder(world, Pool(world, "p", 2))
    for item in "abcde":
        holder.request_at(0.0, item)
    world.run(10)
    assert holder.log == [
        ("granted", "a", 0.0),
        ("granted", "b", 0.0),
        ("released", "a", 1.0),
        ("granted", "c", 1.0),  # the longest waiting first
        ("released", "b", 1.0),
        ("granted", "d", 1.0),
        ("released", "c", 2.0),
        ("granted", "e", 2.0),
        ("released", "d", 2.0),
        ("released", "e", 3.0),
    ]


def test_queue_limit_rejects_beyond_the_limit_and_zero_rejects_when_busy() -> None:
    for limit, expected in (
        (1, [("granted", "a", 0.0), ("queue_full", "c", 0.0), ("granted", "b", 1.0)]),
        (0, [("granted", "a", 0.0), ("queue_full", "b", 0.0), ("queue_full", "c", 0.0)]),
    ):
        world = World()
        pool = Pool(world, "p", 1, queue_limit=limit)
        holder = Holder(world, pool)
        for item in "abc":
            holder.request_at(0.0, item)
        world.run(10)
        assert [entry for entry in holder.log if entry[0] != "released"] == expected
        assert world.metrics.counter("pool.p.rejected.queue_full").value == 3 - len(
            [e for e in expected if e[0] == "granted"]
        )


def test_max_wait_runs_on_the_clock_of_the_pools_node() -> None:
    world = World()
    fast = world.node("fast", drift_ppm=100_000)  # runs 10% fast
    pool = Pool(world, "p", 1, max_wait_s=1.1, node=fast)
    holder = Holder(world, pool, hold_s=5.0)
    holder.request_at(0.0, "a")
    holder.request_at(0.5, "b")
    world.run(10)
    # 1.1 s on a clock 10% fast is 1.0 s of true time
    assert holder.log[1] == ("queue_timeout", "b", pytest.approx(1.5))
    assert world.metrics.counter("pool.p.rejected.queue_timeout").value == 1


def test_waiters_that_timed_out_are_removed_lazily_and_skipped() -> None:
    world = World()
    pool = Pool(world, "p", 1, max_wait_s=1.0)
    holder = Holder(world, pool, hold_s=None)
    for t, item in ((0.0, "a"), (0.1, "b"), (0.2, "c"), (1.5, "d")):
        holder.request_at(t, item)
    sizes: list[tuple[float, int, int]] = []

    def look(_: object) -> None:
        sizes.append((round(world.now, 9), pool.queued, len(pool._waiters)))

    for t in (0.3, 1.3, 1.6):
        world.at(t, look)
    world.at(2.0, lambda _: pool.release())  # a leaves: b and c gave up, d is next
    world.run(10)
    assert holder.log == [
        ("granted", "a", 0.0),
        ("queue_timeout", "b", 1.1),
        ("queue_timeout", "c", 1.2),
        ("granted", "d", 2.0),
    ]
    # (time, live waiters, entries kept): b and c stay in the deque until a grant passes
    assert sizes == [(0.3, 2, 2), (1.3, 0, 2), (1.6, 1, 3)]
    assert len(pool._waiters) == 0  # nothing live left after d: the dead ones were dropped


def test_resize_up_grants_the_waiting_and_resize_down_lets_holders_finish() -> None:
    world = World()
    pool = Pool(world, "p", 2)
    holder = Holder(world, pool, hold_s=2.0)
    for item in "abcd":
        holder.request_at(0.0, item)
    world.at(0.5, lambda _: pool.resize(3))  # c is granted at once
    world.at(1.0, lambda _: pool.resize(1))  # three busy above one slot: they finish
    busy: list[tuple[float, int]] = []
    for t in (1.5, 2.3, 3.0):
        world.at(t, lambda _, t=t: busy.append((t, pool.busy)))
    world.run(10)
    grants = [(item, t) for what, item, t in holder.log if what == "granted"]
    assert grants == [("a", 0.0), ("b", 0.0), ("c", 0.5), ("d", 2.5)]
    assert busy == [(1.5, 3), (2.3, 1), (3.0, 1)]  # d waits until busy < 1 (c left at 2.5)


def test_clear_on_crash_forgets_holders_and_waiters_and_ignores_late_releases() -> None:
    world = World()
    node = world.node("server")
    pool = Pool(world, "p", 1, node=node)
    holder = Holder(world, pool, hold_s=None)
    for item in "abc":
        holder.request_at(0.0, item)
    world.at(1.0, lambda _: node.crash())
    world.at(1.5, lambda _: pool.release())  # cleanup code of work lost in the crash
    world.at(2.0, lambda _: node.recover())
    world.at(2.5, holder.request, "d")
    world.run(10)
    assert holder.log == [("granted", "a", 0.0), ("granted", "d", 2.5)]  # b, c: never answered
    assert (pool.busy, pool.queued) == (1, 0)


def test_event_api_grants_with_yield_and_raises_pool_rejected() -> None:
    # (This found that SimPy could not hand PoolRejected to a process: it copies a failed
    # event's exception as type(e)(*e.args), and the args did not rebuild it.)
    world = World()
    pool = Pool(world, "p", 1, queue_limit=1, max_wait_s=1.0)
    log: list[tuple[str, str, float]] = []

    def user(name: str, hold_s: float) -> Any:
        try:
            yield pool.acquire()
        except PoolRejected as rejection:
            log.append((name, rejection.reason, world.now))
            assert rejection.pool == "p" and str(rejection) == f"p: {rejection.reason}"
            return
        log.append((name, "granted", world.now))
        yield world.env.timeout(hold_s)
        pool.release()

    for name, start, hold in (("a", 0.0, 0.5), ("b", 0.1, 2.0), ("c", 0.2, 0.1), ("d", 0.6, 1)):
        world.at(start, lambda _, n=name, h=hold: world.env.process(user(n, h)))
    world.run(10)
    assert log == [
        ("a", "granted", 0.0),
        ("c", "queue_full", 0.2),  # b waits; the queue holds one
        ("b", "granted", 0.5),
        ("d", "queue_timeout", pytest.approx(1.6)),  # b holds until 2.5
    ]


def test_measurements_waits_grants_and_time_weighted_levels() -> None:
    world = World()
    pool = Pool(world, "p", 1)
    holder = Holder(world, pool, hold_s=2.0)
    for t, item in ((0.0, "a"), (1.0, "b"), (1.5, "c")):
        holder.request_at(t, item)
    world.run(8.0)
    # a: 0-2, b: waits 1-2, holds 2-4; c: waits 1.5-4, holds 4-6. Idle 6-8.
    waits = world.metrics.histogram("pool.p.wait")
    assert (waits.count, waits.zero_count) == (3, 1)
    assert waits.total == pytest.approx(1.0 + 2.5)
    assert world.metrics.counter("pool.p.granted").value == 3
    assert pool.busy_level.mean() == pytest.approx(6.0 / 8.0)
    assert pool.queue_level.mean() == pytest.approx((0.5 * 1 + 0.5 * 2 + 2.0 * 1) / 8.0)
    assert pool.queue_level.maximum == 2
    assert pool.utilization() == pytest.approx(0.75)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"capacity": 0}, "p.capacity"),
        ({"capacity": 2, "queue_limit": -1}, "p.queue_limit"),
        ({"capacity": 2, "max_wait_s": 0.0}, "p.max_wait_s"),
    ],
)
def test_bad_pool_settings_name_the_setting(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(fragment)):
        Pool(World(), "p", **options)


def test_resize_to_zero_is_refused() -> None:
    world = World()
    with pytest.raises(ConfigError, match=r"p\.capacity"):
        Pool(world, "p", 2).resize(0)


def test_a_pool_that_never_waits_reports_zero_waits_in_every_summary() -> None:
    # Regression: an inlined zero-wait path once skipped the histogram's minimum and maximum,
    # and a pool that never queued reported wait.p99 = -inf.
    from sim import Constant, OpenWorkload, Service, World

    world = World()
    service = Service(world, "svc", world.node("n"), workers=4)
    service.endpoint("e", Constant(0.1))
    OpenWorkload(world, "load", "svc.e", 1.0)
    world.run(100)
    snapshot = world.metrics.snapshot()
    assert snapshot["pool.svc.wait.count"] > 50
    for key in ("min", "max", "mean", "p50", "p99", "p999"):
        assert snapshot[f"pool.svc.wait.{key}"] == 0.0, key
