"""Workloads: requests entering the system at an entry point, and what became of them.

- :class:`OpenWorkload`: open-loop arrivals, a Poisson process whose rate follows a
  :class:`RateProfile` (constant, diurnal, step, burst), sampled exactly by thinning: candidate
  arrivals at the profile's maximum rate, each kept with probability rate(t) / max_rate.
  Arrivals do not wait for earlier requests to end, as users on the internet do not.
- :class:`ClosedWorkload`: a fixed number of users, each sending a request, waiting for its
  end, thinking for a while, and sending the next.

Each request's outcome and latency (true time from entry to end) is recorded by
:class:`EntryStats` under ``entry.<name>.*``. Requests still open at the end of a run are
counted as in flight, and as *hung* when they have been open longer than ``overdue_s``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from sim import check
from sim.call import Call, Caller, Outcome, Pipeline, Policy, Result
from sim.distributions import Distribution, Exponential, Uniform
from sim.errors import ConfigError
from sim.world import _Wake

if TYPE_CHECKING:
    from sim.node import Node
    from sim.service import Endpoint
    from sim.world import World

__all__ = [
    "BurstRate",
    "ClosedWorkload",
    "ConstantRate",
    "DiurnalRate",
    "EntryStats",
    "OpenWorkload",
    "RateProfile",
    "StepRate",
]

DAY_S = 86_400.0


class RateProfile(Protocol):
    """Arrival rate over true time, requests per second."""

    @property
    def max_rate(self) -> float: ...

    def rate(self, time_s: float) -> float: ...


class ConstantRate:
    """The same rate at all times."""

    def __init__(self, rate: float):
        self.max_rate = check.positive("rate", rate)

    def rate(self, time_s: float) -> float:
        return self.max_rate


class DiurnalRate:
    """A daily cycle: ``mean * (1 + a cos(2π (t - peak_s) / period_s))``.

    ``a = (r - 1) / (r + 1)`` makes the peak ``r = peak_to_trough`` times the trough; the
    average over a whole period is exactly ``mean`` (so 10,000/day stays 10,000/day).
    """

    def __init__(
        self,
        mean: float,
        *,
        peak_to_trough: float = 3.0,
        peak_s: float = 14 * 3600.0,
        period_s: float = DAY_S,
    ):
        self.mean = check.positive("mean", mean)
        ratio = check.finite("peak_to_trough", peak_to_trough)
        if ratio < 1.0:
            raise ConfigError.single("peak_to_trough", peak_to_trough, "a number >= 1")
        self.amplitude = (ratio - 1.0) / (ratio + 1.0)
        self.peak_s = check.finite("peak_s", peak_s)
        self.period_s = check.positive("period_s", period_s)
        self.max_rate = self.mean * (1.0 + self.amplitude)

    def rate(self, time_s: float) -> float:
        phase = 2.0 * math.pi * (time_s - self.peak_s) / self.period_s
        return self.mean * (1.0 + self.amplitude * math.cos(phase))


class StepRate:
    """Piecewise constant: ``steps`` are (start time, rate) pairs in increasing time; the
    first rate also holds before the first start."""

    def __init__(self, steps: Sequence[tuple[float, float]]):
        if not steps:
            raise ConfigError.single("steps", steps, "at least one (time, rate) pair")
        times = [check.non_negative(f"steps[{i}].time", t) for i, (t, _) in enumerate(steps)]
        rates = [check.non_negative(f"steps[{i}].rate", r) for i, (_, r) in enumerate(steps)]
        if times != sorted(times):
            raise ConfigError.single("steps", steps, "start times in increasing order")
        if max(rates) <= 0:
            raise ConfigError.single("steps", steps, "at least one rate > 0")
        self.times = times
        self.rates = rates
        self.max_rate = max(rates)

    def rate(self, time_s: float) -> float:
        current = self.rates[0]
        for start, rate in zip(self.times, self.rates, strict=True):
            if time_s < start:
                break
            current = rate
        return current


class BurstRate:
    """``base`` rate with bursts at ``burst`` rate lasting ``duration_s`` from ``start_s``,
    repeating every ``every_s`` seconds if given."""

    def __init__(
        self,
        base: float,
        burst: float,
        *,
        start_s: float,
        duration_s: float,
        every_s: float | None = None,
    ):
        self.base = check.non_negative("base", base)
        self.burst = check.positive("burst", burst)
        self.start_s = check.non_negative("start_s", start_s)
        self.duration_s = check.positive("duration_s", duration_s)
        if every_s is not None and check.positive("every_s", every_s) <= duration_s:
            raise ConfigError.single("every_s", every_s, f"more than duration_s ({duration_s})")
        self.every_s = every_s
        self.max_rate = max(self.base, self.burst)

    def rate(self, time_s: float) -> float:
        since = time_s - self.start_s
        if since < 0:
            return self.base
        if self.every_s is not None:
            since %= self.every_s
        return self.burst if since < self.duration_s else self.base


class EntryStats:
    """Outcomes and latencies of the requests entering at one entry point.

    Metric names: ``entry.<name>.requests`` (started), ``entry.<name>.<outcome>`` (ended so),
    ``entry.<name>.rejected.<reason>``, ``entry.<name>.latency`` (successes, seconds) and
    ``entry.<name>.latency_failed`` (every other ended request). Per window (when the run has a
    series): ``<name>.requests``, ``<name>.<outcome>`` and ``<name>.latency`` percentiles.
    """

    def __init__(self, world: World, name: str):
        self.world = world
        self.name = name
        metrics = world.metrics
        prefix = f"entry.{name}"
        self.requests = metrics.counter(f"{prefix}.requests")
        self.outcomes = {o: metrics.counter(f"{prefix}.{o.value}") for o in Outcome}
        self.latency = metrics.histogram(f"{prefix}.latency")
        self.latency_failed = metrics.histogram(f"{prefix}.latency_failed")
        self._reasons: dict[str, Any] = {}
        self.open: dict[int, float] = {}  # request id -> entry time, for requests not ended
        self._series = metrics.series
        self._fields = {o: f"{name}.{o.value}" for o in Outcome}

    def begin(self, request_id: int) -> None:
        now = self.world.env.now
        self.requests.value += 1
        self.open[request_id] = now
        if self._series is not None:
            self._series.add(f"{self.name}.requests")

    def end(self, request_id: int, result: Result) -> float:
        """Record the end of a request; returns its latency in seconds."""
        started = self.open.pop(request_id)
        latency = self.world.env._now - started
        outcome = result.outcome
        self.outcomes[outcome].value += 1
        if outcome is Outcome.OK or outcome is Outcome.DEGRADED:
            self.latency.record(latency)
            if self._series is None:
                return latency
            return self._windowed(outcome, latency)
        self.latency_failed.record(latency)
        if outcome is Outcome.REJECTED:
            reason = result.reason or "unknown"
            counter = self._reasons.get(reason)
            if counter is None:
                counter = self._reasons[reason] = self.world.metrics.counter(
                    f"entry.{self.name}.rejected.{reason}"
                )
            counter.value += 1
        return self._windowed(outcome, latency)

    def _windowed(self, outcome: Outcome, latency: float) -> float:
        series = self._series
        if series is not None:
            series.add(self._fields[outcome])
            if outcome is Outcome.OK or outcome is Outcome.DEGRADED:
                series.observe(f"{self.name}.latency", latency)
        return latency

    def in_flight(self) -> int:
        """Requests started and not ended."""
        return len(self.open)

    def hung(self, overdue_s: float) -> int:
        """Requests open for longer than ``overdue_s`` now."""
        limit = self.world.env.now - overdue_s
        return sum(1 for started in self.open.values() if started <= limit)


class _Workload:
    """What both kinds of workload share: an entry point, a caller node, and the stats."""

    def __init__(
        self,
        world: World,
        name: str,
        target: str | Endpoint,
        *,
        source: Node | None,
        policy: Pipeline | Sequence[Policy] | None,
        timeout_s: float | None,
        payload: Callable[[int], Any] | None,
    ):
        self.world = world
        self.name = name
        node = source if source is not None else world.node(f"client.{name}")
        self.caller = Caller(world, node)
        self.target = self.caller.resolve(target)
        self.stats = EntryStats(world, name)
        self.pipeline = self.caller.pipeline(policy, timeout_s)
        self._payload = payload

    def _send(self, done: Callable[[int, Result], object]) -> None:
        request_id = next(self.world._ids)
        stats = self.stats
        stats.requests.value += 1  # EntryStats.begin() inlined: this runs once per request
        stats.open[request_id] = self.world.env._now
        if stats._series is not None:
            stats._series.add(f"{self.name}.requests")
        payload = self._payload(request_id) if self._payload is not None else None
        call = Call(self.world, self.caller.node, self.target, payload, request_id)
        # a partial, not a closure or a small class: calling it runs no Python frame of its own
        self.pipeline.start(call, partial(done, request_id))  # type: ignore[arg-type]


class OpenWorkload(_Workload):
    """Open-loop Poisson arrivals at ``target`` following ``rate`` (requests per second).

    Args:
        world: the run.
        name: names the metrics (``entry.<name>.*``) and streams (``workload.<name>.*``).
        target: the entry endpoint (``"gateway.checkout"``).
        rate: a RateProfile or a constant rate per second.
        source: the node requests come from (default: a node ``client.<name>``).
        policy: client-side policies of each request; timeout_s: a per-request timeout.
        payload: ``payload(request_id)`` builds each request's body.
        start_s, stop_s: arrivals only in [start_s, stop_s).
    """

    def __init__(
        self,
        world: World,
        name: str,
        target: str | Endpoint,
        rate: RateProfile | float,
        *,
        source: Node | None = None,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
        payload: Callable[[int], Any] | None = None,
        start_s: float = 0.0,
        stop_s: float | None = None,
    ):
        super().__init__(
            world, name, target, source=source, policy=policy, timeout_s=timeout_s,
            payload=payload,
        )  # fmt: skip
        profile = ConstantRate(rate) if isinstance(rate, int | float) else rate
        self.profile = profile
        self._constant = isinstance(profile, ConstantRate)
        self._gap = world.sampler(f"workload.{name}.arrivals", Exponential(1.0 / profile.max_rate))
        self._keep = world.sampler(f"workload.{name}.thinning", Uniform(0.0, 1.0))
        self.stop_s = math.inf if stop_s is None else check.positive("stop_s", stop_s)
        self._end = self.stats.end
        first = check.non_negative("start_s", start_s) + self._gap()
        self._tick = _Wake(world.env, max(0.0, first - world.env._now), self._arrive, None)

    def _arrive(self, _: object) -> None:
        now = self.world.env._now
        if now >= self.stop_s:
            return
        self._tick.again(self._gap())  # the next candidate arrival
        profile = self.profile
        if not self._constant and self._keep() * profile.max_rate >= profile.rate(now):
            return  # thinned: no arrival at this candidate time
        self._send(self._end)


class ClosedWorkload(_Workload):
    """``users`` users, each looping: request, wait for its end, think, request again.

    Each user starts after one think time, so they do not arrive in lockstep.
    """

    def __init__(
        self,
        world: World,
        name: str,
        target: str | Endpoint,
        users: int,
        think_time: Distribution,
        *,
        source: Node | None = None,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
        payload: Callable[[int], Any] | None = None,
    ):
        super().__init__(
            world, name, target, source=source, policy=policy, timeout_s=timeout_s,
            payload=payload,
        )  # fmt: skip
        self.users = check.positive_int("users", users)
        self._think = world.sampler(f"workload.{name}.think", think_time)
        self._end = self._on_end
        for _ in range(users):
            world.schedule(self._think(), self._next)

    def _next(self, _: object) -> None:
        self._send(self._end)

    def _on_end(self, request_id: int, result: Result) -> None:
        self.stats.end(request_id, result)
        self.world.schedule(self._think(), self._next)
