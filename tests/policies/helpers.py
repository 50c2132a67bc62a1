"""Small worlds for exact logs, and confidence intervals for validation against theory."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

from sim import Caller, Constant, Link, Result, Service, ServiceError, World
from sim.call import Policy

# Two-sided Student t quantiles t(0.995, df): 99% intervals over few replications.
_T99 = {
    4: 4.604,
    5: 4.032,
    6: 3.707,
    7: 3.499,
    8: 3.355,
    9: 3.250,
    10: 3.169,
    11: 3.106,
    14: 2.977,
    19: 2.861,
    24: 2.797,
    29: 2.756,
}


def interval(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of the 99% Student t confidence interval of the mean."""
    n = len(values)
    df = n - 1
    if df not in _T99:
        raise ValueError(f"no t quantile for {n} replications; use one of {sorted(_T99)}")
    mean = sum(values) / n
    variance = sum((v - mean) ** 2 for v in values) / df
    return mean, _T99[df] * math.sqrt(variance / n)


def assert_within(values: Sequence[float], expected: float, slack: float = 0.0) -> None:
    """``expected`` lies in the 99% CI of the mean of ``values`` (widened by ``slack``)."""
    mean, half = interval(values)
    assert abs(mean - expected) <= half + slack, (
        f"mean {mean:.5f} ± {half:.5f} (99% CI, {len(values)} replications) "
        f"does not cover {expected:.5f}"
    )


class Script:
    """A client and a scripted server on zero-latency links: ``send`` calls at set times,
    the server answers per payload (``"ok"``, ``"fail"``, or a callable), and ``log``
    records each call's end as ``(time, label, outcome, reason or value)``."""

    def __init__(
        self,
        service_time: float = 0.1,
        workers: int = 1,
        *,
        world: World | None = None,
        latency: float = 0.0,
        server_drift_ppm: float = 0.0,
    ):
        self.world = world or World()
        self.world.network.set_default(Link(Constant(latency)))
        self.client = self.world.node("client")
        self.server = self.world.node("server", drift_ppm=server_drift_ppm)
        self.caller = Caller(self.world, self.client)
        self.service = Service(self.world, "svc", self.server, workers=workers)
        self.received: list[tuple[float, Any]] = []
        self.endpoint = self.service.endpoint("op", Constant(service_time), handler=self._answer)
        self.log: list[tuple[float, str, str, Any]] = []

    def _answer(self, ctx: Any, payload: Any) -> Any:
        self.received.append((round(ctx.received_at, 9), payload))
        if callable(payload):
            return payload(ctx)
        if payload == "fail":
            raise ServiceError("scripted")
        return payload

    def send(
        self,
        at: float,
        label: str,
        payload: Any = "ok",
        policy: Sequence[Policy] = (),
        *,
        key: Any = None,
        target: str = "svc.op",
    ) -> None:
        """Start a call at true time ``at``."""

        def begin(_: object) -> None:
            self.caller.start(target, payload, self._ender(label), policy=policy, key=key)

        self.world.at(at, begin)

    def _ender(self, label: str) -> Callable[[Result], None]:
        def end(result: Result) -> None:
            detail = result.reason if result.reason is not None else result.value
            self.log.append((round(self.world.now, 9), label, result.outcome.value, detail))

        return end

    def run(self, until: float = 100.0) -> list[tuple[float, str, str, Any]]:
        self.world.run(until)
        return self.log

    def counter(self, name: str) -> int:
        return self.world.metrics.counter(name).value


def changes(timeline: Any) -> list[tuple[float, str]]:
    """A timeline's change log with times rounded (exact logs without float noise)."""
    return [(round(t, 9), state) for t, state in timeline.changes]
