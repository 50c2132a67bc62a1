"""Faults as exact event logs: every kind through ``inject``, its start and its end, overlapping
faults, random failure processes, and clock synchronisation with error.

The probe model: a client and a server node, links of exactly 10 ms each way, a service
``echo`` whose endpoint takes exactly 100 ms. A probe sent at ``t`` to a healthy server ends
``ok`` at ``t + 0.12``; probes give up after 1 s. Each log entry is (sent at, outcome, ended
at), times rounded to the nanosecond.
"""

from __future__ import annotations

import pytest

from sim import (
    Caller,
    ClockJump,
    Constant,
    Crash,
    ErrorBurst,
    Exponential,
    Hang,
    LatencySpike,
    Link,
    LossBurst,
    Partition,
    PoolShrink,
    Service,
    World,
    inject,
)

LATENCY_S = 0.010
SERVICE_S = 0.100
TIMEOUT_S = 1.0

Log = list[tuple[float, str, float]]


class Probe:
    """The probe model and its log."""

    def __init__(self, workers: int = 1):
        self.world = world = World()
        world.network.set_default(Link(Constant(LATENCY_S)))
        self.client = world.node("client")
        self.server = world.node("server")
        self.service = Service(world, "echo", self.server, workers=workers)
        self.service.endpoint("get", Constant(SERVICE_S))
        self.caller = Caller(world, self.client)
        self.log: Log = []

    def at(self, *times: float) -> None:
        for t in times:
            self.world.at(t, self._send, t)

    def _send(self, sent: float) -> None:
        def done(result):  # type: ignore[no-untyped-def]
            self.log.append((sent, result.outcome.value, round(self.world.now, 9)))

        self.caller.start("echo.get", None, done, timeout_s=TIMEOUT_S)

    def run(self, until_s: float = 10.0) -> Log:
        self.world.run(until_s)
        return sorted(self.log)

    def counter(self, name: str) -> int:
        return self.world.metrics.counter(name).value

    def states(self, node: str = "server") -> list[tuple[float, str]]:
        return [(round(t, 9), s) for t, s in self.world.nodes[node].state.changes]


def test_crash_refuses_while_down_loses_work_in_flight_and_ends_on_time() -> None:
    p = Probe()
    inject(p.world, Crash("server"), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 3.5)
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "timeout", 1.95),  # in service when the node crashed: lost, never answered
        (1.5, "refused", 1.51),  # refused: the caller learns it one link delay after sending
        (3.5, "ok", 3.62),
    ]
    assert p.states() == [(0.0, "up"), (1.0, "down"), (3.0, "up")]
    assert p.counter("faults.crash") == 1
    assert p.counter("node.server.crashes") == 1


def test_hang_accepts_answers_nothing_and_ends_on_time() -> None:
    p = Probe()
    inject(p.world, Hang("server"), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 3.5)
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "timeout", 1.95),  # its work ended at 1.06, during the hang: no reply
        (1.5, "timeout", 2.5),
        (3.5, "ok", 3.62),
    ]
    assert p.states() == [(0.0, "up"), (1.0, "hung"), (3.0, "up")]
    assert p.counter("service.echo.swallowed") == 2


def test_partition_both_ways_drops_requests_and_replies_until_healed() -> None:
    p = Probe()
    inject(p.world, Partition(("client",), ("server",)), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 3.5)
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "timeout", 1.95),  # the request got through; the reply (sent 1.06) did not
        (1.5, "timeout", 2.5),  # the request never arrived
        (3.5, "ok", 3.62),
    ]
    assert p.counter("network.partitioned") == 2
    assert p.counter("service.echo.received") == 3


@pytest.mark.parametrize(
    ("side_a", "side_b", "received"),
    [
        (("server",), ("client",), 4),  # replies cut: the server does the work for nothing
        (("client",), ("server",), 3),  # requests cut: the 1.5 s request never arrives
    ],
)
def test_one_way_partition_cuts_one_direction_only(
    side_a: tuple[str, ...], side_b: tuple[str, ...], received: int
) -> None:
    p = Probe()
    inject(p.world, Partition(side_a, side_b, one_way=True), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 3.5)
    replies_cut = side_a == ("server",)
    assert p.run() == [
        (0.5, "ok", 0.62),
        # the 0.95 request arrived before the cut; its reply is dropped only if replies are cut
        (0.95, "timeout", 1.95) if replies_cut else (0.95, "ok", 1.07),
        (1.5, "timeout", 2.5),
        (3.5, "ok", 3.62),
    ]
    assert p.counter("service.echo.received") == received


def test_latency_spike_on_every_link_slows_messages_sent_during_it() -> None:
    p = Probe()
    inject(p.world, LatencySpike(factor=3.0, extra_s=0.005), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 2.95, 3.5)
    # during the spike a hop takes 10 ms * 3 + 5 ms = 35 ms
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "ok", 1.095),  # request 10 ms (sent before), reply 35 ms (sent at 1.06)
        (1.5, "ok", 1.67),  # 35 + 100 + 35 ms
        (2.95, "ok", 3.095),  # request 35 ms; reply sent at 3.085, after the spike: 10 ms
        (3.5, "ok", 3.62),
    ]


def test_latency_spike_on_one_pair_slows_that_direction_only() -> None:
    p = Probe()
    inject(p.world, LatencySpike(factor=2.0, src="client", dst="server"), at_s=1.0, duration_s=2.0)
    p.at(1.5, 3.5)
    assert p.run() == [(1.5, "ok", 1.63), (3.5, "ok", 3.62)]  # 20 + 100 + 10 ms during it


def test_overlapping_latency_spikes_multiply_and_end_one_by_one() -> None:
    p = Probe()
    inject(p.world, LatencySpike(factor=2.0), at_s=1.0, duration_s=3.0)
    inject(p.world, LatencySpike(factor=3.0), at_s=2.0, duration_s=3.0)
    p.at(1.5, 2.5, 4.5, 5.5)
    assert p.run() == [
        (1.5, "ok", 1.64),  # x2: 20 + 100 + 20 ms
        (2.5, "ok", 2.72),  # x6: 60 + 100 + 60 ms
        (4.5, "ok", 4.66),  # x3: 30 + 100 + 30 ms
        (5.5, "ok", 5.62),
    ]


def test_loss_burst_drops_every_message_until_it_ends() -> None:
    p = Probe()
    inject(p.world, LossBurst(probability=1.0), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 3.5)
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "timeout", 1.95),  # reply lost
        (1.5, "timeout", 2.5),  # request lost
        (3.5, "ok", 3.62),
    ]
    assert p.counter("network.lost") == 2


def test_error_burst_answers_error_for_work_that_ends_during_it() -> None:
    p = Probe()
    inject(p.world, ErrorBurst("echo", probability=1.0), at_s=1.0, duration_s=2.0)
    p.at(0.5, 0.95, 1.5, 2.95, 3.5)
    assert p.run() == [
        (0.5, "ok", 0.62),
        (0.95, "error", 1.07),  # its service time ended at 1.06, inside the burst
        (1.5, "error", 1.62),
        (2.95, "ok", 3.07),  # ended at 3.06, after it
        (3.5, "ok", 3.62),
    ]
    assert p.counter("service.echo.get.error") == 2


def test_clock_jump_steps_the_wall_clock_once_and_leaves_timers_alone() -> None:
    p = Probe()
    p.server.hang()  # the probe at 0.5 waits for its timeout
    readings: list[tuple[float, float]] = []
    for t in (0.5, 1.5, 3.5):
        p.world.at(t, lambda _, t=t: readings.append((t, round(p.client.clock.now(), 9))))
    inject(p.world, ClockJump("client", 2.5), at_s=1.0, duration_s=2.0)  # the end does nothing
    p.at(0.5)
    assert p.run() == [(0.5, "timeout", 1.5)]  # 1 s of the clock's rate, not of its reading
    assert readings == [(0.5, 0.5), (1.5, 4.0), (3.5, 6.0)]
    assert p.client.clock.jumps == 1
    assert p.counter("faults.clockjump") == 1


def test_pool_shrink_serialises_work_and_its_end_grants_the_waiting() -> None:
    p = Probe(workers=3)
    inject(p.world, PoolShrink("echo", 1), at_s=1.0, duration_s=2.0)
    capacity: list[tuple[float, int]] = []
    for t in (0.5, 1.5, 3.5):
        p.world.at(t, lambda _, t=t: capacity.append((t, p.service.pool.capacity)))
    p.at(0.5, 0.5, 0.5, 1.5, 1.5, 1.5, 2.85, 2.85, 2.85)
    assert p.run() == [
        (0.5, "ok", 0.62),  # three workers: all at once
        (0.5, "ok", 0.62),
        (0.5, "ok", 0.62),
        (1.5, "ok", 1.62),  # one worker: one after another
        (1.5, "ok", 1.72),
        (1.5, "ok", 1.82),
        (2.85, "ok", 2.97),
        (2.85, "ok", 3.07),  # granted at 2.96
        (2.85, "ok", 3.11),  # granted at 3.0, when the shrink ended
    ]
    assert capacity == [(0.5, 3), (1.5, 1), (3.5, 3)]


def test_overlapping_pool_shrinks_hold_the_smallest_and_restore_the_original() -> None:
    # (This found that the second shrink to end restored the capacity the first had set.)
    p = Probe(workers=4)
    inject(p.world, PoolShrink("echo", 1), at_s=1.0, duration_s=3.0)
    inject(p.world, PoolShrink("echo", 2), at_s=2.0, duration_s=3.0)
    capacity: list[tuple[float, int]] = []
    for t in (0.5, 1.5, 2.5, 4.5, 5.5):
        p.world.at(t, lambda _, t=t: capacity.append((t, p.service.pool.capacity)))
    p.run()
    assert capacity == [(0.5, 4), (1.5, 1), (2.5, 1), (4.5, 2), (5.5, 4)]


def test_two_overlapping_crashes_keep_the_node_down_until_both_end() -> None:
    p = Probe()
    inject(p.world, Crash("server"), at_s=1.0, duration_s=2.0)
    inject(p.world, Crash("server"), at_s=2.0, duration_s=3.0)
    p.at(3.5, 5.5)
    assert p.run() == [(3.5, "refused", 3.51), (5.5, "ok", 5.62)]
    assert p.states() == [(0.0, "up"), (1.0, "down"), (5.0, "up")]
    assert p.counter("node.server.crashes") == 1  # one outage
    assert p.counter("faults.crash") == 2


def test_a_crash_inside_a_hang_and_the_states_in_between() -> None:
    p = Probe()
    inject(p.world, Hang("server"), at_s=1.0, duration_s=3.0)
    inject(p.world, Crash("server"), at_s=2.0, duration_s=1.0)
    p.run()
    assert p.states() == [(0.0, "up"), (1.0, "hung"), (2.0, "down"), (3.0, "hung"), (4.0, "up")]


def test_overlapping_partitions_heal_one_at_a_time() -> None:
    p = Probe()
    inject(p.world, Partition(("client",), ("server",)), at_s=1.0, duration_s=2.0)
    inject(p.world, Partition(("client",), ("server",), one_way=True), at_s=2.0, duration_s=2.0)
    p.at(2.5, 3.5, 4.5)
    assert p.run() == [
        (2.5, "timeout", 3.5),  # both active
        (3.5, "timeout", 4.5),  # the first healed, the one-way cut still drops requests
        (4.5, "ok", 4.62),
    ]


def test_random_failures_alternate_up_for_ttf_and_down_for_ttr() -> None:
    p = Probe()
    p.server.fail_randomly(Constant(3.0), Constant(1.0))
    p.at(3.5, 4.5)
    assert p.run(until_s=12.0) == [(3.5, "refused", 3.51), (4.5, "ok", 4.62)]
    expected = [(0.0, "up"), (3.0, "down"), (4.0, "up"), (7.0, "down"), (8.0, "up")]
    assert p.states() == [*expected, (11.0, "down")]


def test_random_failures_draw_their_times_from_their_own_streams() -> None:
    world = World(seed=5)
    node = world.node("server")
    node.fail_randomly(Exponential(10.0), Exponential(2.0), kind="hang")
    world.run(200.0)
    # The same draws, taken from the streams the process is documented to use.
    reference = World(seed=5)
    up_for = reference.sampler("node.server.hang.ttf", Exponential(10.0))
    down_for = reference.sampler("node.server.hang.ttr", Exponential(2.0))
    t, expected = 0.0, [(0.0, "up")]
    while True:
        t += up_for()
        if t >= 200.0:
            break
        expected.append((t, "hung"))
        t += down_for()
        if t >= 200.0:
            break
        expected.append((t, "up"))
    assert node.state.changes == expected
    assert len(expected) > 10


def test_clock_sync_sets_the_clock_to_true_time_plus_the_error_then_drift_resumes() -> None:
    world = World()
    node = world.node("server", offset_s=1.0, drift_ppm=1000)  # 1 s ahead, 0.1% fast
    node.clock.synchronise(10.0, Constant(0.002), signed=False)
    readings: list[tuple[float, float]] = []
    for t in (5.0, 12.0, 25.0):
        world.at(t, lambda _, t=t: readings.append((t, round(node.clock.now(), 9))))
    world.run(26.0)
    assert readings == [
        (5.0, 6.005),  # 1 + 5 * 1.001
        (12.0, 12.004),  # synced to 10.002 at 10, then 2 s at 1.001
        (25.0, 25.007),  # synced to 20.002 at 20, then 5 s at 1.001
    ]
    assert node.clock.syncs == 2


def test_signed_sync_error_has_the_drawn_size_and_either_sign() -> None:
    world = World(seed=3)
    node = world.node("server", offset_s=-4.0, drift_ppm=-500)
    node.clock.synchronise(1.0, Constant(0.003))
    errors: list[float] = []
    for k in range(1, 41):
        world.at(k + 0.5, lambda _: errors.append(node.clock.error))
    world.run(41.0)
    # half a second after each sync: the error is +-3 ms plus 0.5 s of drift (-0.25 ms)
    assert {round(e, 9) for e in errors} == {0.00275, -0.00325}
