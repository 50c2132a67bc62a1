"""Property tests of the engine (hypothesis), over seeds and random fault schedules.

- conservation: every workload request ended in exactly one outcome or is still open;
- causality: no message is delivered before it was sent (Network.send wrapped here, in the
  test, not in sim);
- clocks: a node's local clock never runs backwards without a jump or a sync;
- pools: busy slots never exceed the capacity nor go negative; queued never negative.

Plus the guard of one assumption the engine's hot paths make about SimPy's internals.
"""

from __future__ import annotations

from typing import Any

import simpy

from sim import World


def test_simpy_keeps_the_time_in_env_now_private_attribute() -> None:
    """The engine's hot paths read ``env._now`` (4 ns) instead of the ``env.now`` property
    (45 ns) and push ``(time, priority, eid, event)`` onto ``env._queue`` themselves; if a
    SimPy release changes either, this fails before any figure silently goes wrong."""
    world = World(seed=1)
    env = world.env
    readings: list[tuple[float, float, float]] = []

    def tick(_: object) -> None:
        readings.append((env._now, env.now, world.clock()))

    for delay in (0.0, 0.25, 1.5, 1.5, 7.0):
        world.schedule(delay, tick)
    process_times: list[float] = []

    def process() -> Any:
        yield env.timeout(0.75)
        process_times.append(env.now)

    env.process(process())
    assert isinstance(env._queue, list)
    entry = env._queue[0]
    assert len(entry) == 4 and isinstance(entry[2], int)
    world.run(10)
    assert [r[1] for r in readings] == [0.0, 0.25, 1.5, 1.5, 7.0]
    assert all(private == public == clock for private, public, clock in readings)
    assert process_times == [0.75]
    assert isinstance(env, simpy.Environment) and env._now == env.now == 10.0
