"""The World: one simulation run.

A World owns the SimPy environment, the root seed and replication index, the named random
streams, the metrics registry, the network, the nodes and the services. Every component takes
its World in its constructor; there is no default world.

Random streams are derived from ``(seed, replication, name)`` alone, so adding a component
never shifts the numbers another component draws. That is what makes paired comparisons of
policy variants with common random numbers work.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import operator
from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

import numpy as np
import simpy
from simpy.events import NORMAL, URGENT, Event

from sim import check
from sim.errors import ConfigError
from sim.metrics import Metrics

if TYPE_CHECKING:
    from sim.distributions import Distribution
    from sim.network import Network
    from sim.node import Node
    from sim.service import Endpoint, Service

__all__ = ["World", "stream_seed"]


def stream_seed(seed: int, replication: int, name: str) -> np.random.SeedSequence:
    """The seed sequence of the stream ``name``: a function of its three arguments only.

    The name is hashed with SHA-256 (stable across processes and Python versions, unlike
    ``hash``) into four 32-bit words of the spawn key.
    """
    digest = hashlib.sha256(name.encode("utf-8")).digest()
    words = tuple(int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4))
    return np.random.SeedSequence(entropy=seed, spawn_key=(replication, *words))


class _Callback(Event):
    """An event that calls ``fn(arg)`` when it is processed: a message in flight or a timer.

    Cheaper than a process: one heap entry and one function call, no generator. The
    initialisation is inlined from ``simpy.Event.__init__`` as ``simpy.Timeout`` does, and
    ``env.schedule`` too (the same heap entry it pushes; -35 ns an event).
    """

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any):
        self.env = env
        self.callbacks = [_fire]
        self._value = arg
        self._ok = True
        self.fn = fn
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


def _fire(event: _Callback) -> None:
    event.fn(event._value)


class _CallbackAt(_Callback):
    """A :class:`_Callback` at the absolute true time ``time`` (not ``now + delay``, which
    may round one ulp away from it: FIFO links need arrivals exactly in order)."""

    def __init__(self, env: simpy.Environment, time: float, fn: Callable[[Any], None], arg: Any):
        self.env = env
        self.callbacks = [_fire]
        self._value = arg
        self._ok = True
        self.fn = fn
        heappush(env._queue, (time, NORMAL, next(env._eid), self))


class _Wake(Event):
    """An event that calls ``fn(event)`` itself when processed, ``event.arg`` being what it
    carries: for the engine's own hot callbacks, which take the event. One Python call fewer
    than :class:`_Callback` and its ``_fire`` trampoline (-60 ns an event)."""

    def __init__(self, env: simpy.Environment, delay: float, fn: Callable[[Any], None], arg: Any):
        self.env = env
        self.callbacks = [fn]
        self.fn = fn
        self.arg = arg
        self._ok = True
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))

    @classmethod
    def first(cls, env: simpy.Environment, fn: Callable[[Any], None], arg: Any) -> _Wake:
        """A wake-up now, before every normal event of the current time: where SimPy puts
        the start of a process (its urgent Initialize event) and an interrupt."""
        wake = cls.__new__(cls)
        wake.env = env
        wake.callbacks = [fn]
        wake.fn = fn
        wake.arg = arg
        wake._ok = True
        heappush(env._queue, (env._now, URGENT, next(env._eid), wake))
        return wake

    def again(self, delay: float) -> None:
        """Schedule this processed event once more, ``delay`` from now, for the same
        function: a component with one pending event at a time (an arrival process) reuses
        it instead of making one per occurrence (-4% on the M/M/4 benchmark)."""
        env = self.env
        self.callbacks = [self.fn]
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), self))


class World:
    """One simulation run.

    Args:
        seed: the root seed; every random stream is derived from it.
        replication: the replication index; replication ``r`` of seed ``s`` draws streams
            independent of every other replication.
        window_s: resolution of the per-window time series, or None for no series.

    Attributes:
        env: the SimPy environment (true, global time in seconds).
        metrics: the metrics registry of this run.
        network: links between nodes.
        nodes: nodes by name.
        services: services by name.
    """

    def __init__(self, seed: int = 0, replication: int = 0, *, window_s: float | None = None):
        from sim.network import Network  # the network needs a world: import here, not above

        self.seed = check.at_least("seed", seed, 0)
        self.replication = check.at_least("replication", replication, 0)
        self.env = simpy.Environment()
        # SimPy's time read in C, without its `now` property (a Python function): 20 ns
        # instead of 45, and the metrics read it several times per request. Hot paths read
        # `env._now` directly for the same reason (4 ns); tests/test_properties_engine.py
        # guards the assumption that it is the time `env.now` returns.
        self.clock: Callable[[], float] = functools.partial(operator.attrgetter("_now"), self.env)
        self.metrics = Metrics(self.clock, window_s)
        self.nodes: dict[str, Node] = {}
        self.services: dict[str, Service] = {}
        self._streams: dict[str, np.random.Generator] = {}
        self._ids = itertools.count(1)
        self.pipelines: dict[Any, Any] = {}  # sim.call's cache: one Pipeline per policy list
        self.timers: dict[float, Any] = {}  # sim.call's timeout timers, by delay
        self.network: Network = Network(self)

    @property
    def now(self) -> float:
        """True simulated time in seconds (what no node can read directly)."""
        return float(self.env.now)

    def stream(self, name: str) -> np.random.Generator:
        """The random stream called ``name`` (created on first use, then the same object).

        Use one name per purpose, e.g. ``"service.payment.charge.service_time"``.
        """
        generator = self._streams.get(name)
        if generator is None:
            seq = stream_seed(self.seed, self.replication, name)
            generator = self._streams[name] = np.random.Generator(np.random.PCG64(seq))
        return generator

    @property
    def stream_names(self) -> list[str]:
        """Names of the streams created so far (recorded with results)."""
        return sorted(self._streams)

    def sampler(self, name: str, distribution: Distribution) -> Callable[[], float]:
        """A fast draw-one-value callable for ``distribution`` on the stream ``name``."""
        return distribution.sampler(self.stream(name))

    def new_id(self) -> int:
        """A run-unique integer (request ids, message ids)."""
        return next(self._ids)

    def schedule(self, delay_s: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` after ``delay_s`` seconds of true time. Not cancellable: callers
        that may lose interest check a flag when it fires."""
        _Callback(self.env, delay_s, fn, arg)

    def at(self, time_s: float, fn: Callable[[Any], None], arg: Any = None) -> None:
        """Call ``fn(arg)`` at true time ``time_s`` (now, if that is in the past)."""
        _Callback(self.env, max(0.0, time_s - self.env.now), fn, arg)

    # -- the parts of the system --------------------------------------------------------

    def node(self, name: str, **options: Any) -> Node:
        """The node called ``name``, created with ``options`` (see :class:`sim.Node`)."""
        from sim.node import Node

        existing = self.nodes.get(name)
        if existing is not None:
            if options:
                raise ConfigError.single(f"node {name!r}", options, "a node created only once")
            return existing
        return Node(self, name, **options)

    def endpoint(self, address: str) -> Endpoint:
        """The endpoint at ``"service.endpoint"``."""
        service_name, _, endpoint_name = address.rpartition(".")
        service = self.services.get(service_name)
        if service is None:
            raise ConfigError.single(
                "target", address, f"'service.endpoint' with a service in {sorted(self.services)}"
            )
        return service.endpoint(endpoint_name)

    # -- running ------------------------------------------------------------------------

    def run(self, until_s: float, *, warmup_s: float = 0.0) -> None:
        """Run until true time ``until_s``; metrics restart at ``warmup_s`` (warm-up removal)."""
        check.non_negative("warmup_s", warmup_s)
        check.positive("until_s", until_s)
        if warmup_s >= until_s:
            raise ConfigError.single("warmup_s", warmup_s, f"less than the duration {until_s}")
        if warmup_s > self.env.now:
            self.at(warmup_s, self._end_warmup)
        self.env.run(until=until_s)

    def _end_warmup(self, _: object) -> None:
        self.metrics.reset()
