"""An API gateway: one entry service that routes requests to backends.

Clients call ``<name>.handle`` with a :class:`GatewayRequest` (a route name and a body). The
gateway gives every request a request id (unique in the run), looks the route up in its
routing table and forwards the body through the route's own policy pipeline. Forwarded
calls carry as key the client's idempotency key if it sent one (the call key of the request,
which workloads set to their request id), else the gateway's request id; retries inside the
route's pipeline reuse it, so a server-side idempotency policy can deduplicate them.

Answers (all as the gateway's own outcome; the client sees one call):

- a route the table does not have: ``error`` with reason ``"not_found"`` (the HTTP 404 of a
  gateway; ``rejected`` is kept for capacity and policy refusals);
- a :class:`Route`: the backend's value on success, else ``error`` with reason
  ``"upstream_<outcome>"`` (``upstream_timeout`` is the 504, ``upstream_refused`` and
  ``upstream_rejected`` the 502/503);
- a :class:`FanOut`: every part is called at once and the answer waits for all of them; it is
  ``ok`` when all parts succeed, ``degraded`` with the parts that answered when only
  non-critical parts failed, and ``error`` (``"upstream_<part>"``) when a critical part
  failed.

The reply value is a :class:`GatewayReply`. Metrics (``gateway.<name>.*``): ``requests``,
``not_found``, ``routes.<route>.ok``, ``routes.<route>.failed``, ``routes.<route>.degraded``,
``parts.<route>.<part>.failed``.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import simpy

from sim.call import Caller, Outcome, Pipeline, Policy, Result, start_call
from sim.data._calls import result_event
from sim.distributions import Constant, Distribution
from sim.errors import ConfigError
from sim.service import Context, Service, ServiceError

if TYPE_CHECKING:
    from sim.metrics import Metrics
    from sim.node import Node
    from sim.service import Endpoint
    from sim.world import World

__all__ = ["FanOut", "Gateway", "GatewayReply", "GatewayRequest", "Part", "Route"]

NOT_FOUND = "not_found"
DEFAULT_SERVICE_TIME = Constant(0.0002)  # routing, auth and TLS: a fraction of a millisecond


class GatewayRequest(NamedTuple):
    """What a client sends: the route's name and the body for the backend(s)."""

    route: str
    body: Any = None


class GatewayReply(NamedTuple):
    """What the gateway answers: the request id, the value (a dict by part for a fan-out),
    and the parts that failed (a degraded fan-out)."""

    request_id: int
    value: Any
    missing: tuple[str, ...] = ()


@dataclass(frozen=True)
class Route:
    """Forward to one backend endpoint through ``policy``."""

    target: str
    policy: Pipeline | Sequence[Policy] = ()


@dataclass(frozen=True)
class Part:
    """One backend of a fan-out; a failed non-critical part leaves a degraded answer."""

    target: str
    policy: Pipeline | Sequence[Policy] = ()
    critical: bool = True


@dataclass(frozen=True)
class FanOut:
    """Call every part at once and aggregate their answers by part name."""

    parts: Mapping[str, Part] = field(default_factory=dict)


class _Compiled:
    """A route with endpoints resolved and pipelines built, once."""

    __slots__ = (
        "critical", "degraded", "endpoints", "failed", "fan_out", "names", "ok",
        "part_failed", "pipelines",
    )  # fmt: skip

    def __init__(
        self, metrics: Metrics, gateway: str, route: str, names: list[str],
        endpoints: list[Endpoint], pipelines: list[Pipeline], critical: list[bool],
        fan_out: bool,
    ):  # fmt: skip
        self.names = names
        self.endpoints = endpoints
        self.pipelines = pipelines
        self.critical = critical
        self.fan_out = fan_out
        prefix = f"gateway.{gateway}"
        self.ok = metrics.counter(f"{prefix}.routes.{route}.ok")
        self.failed = metrics.counter(f"{prefix}.routes.{route}.failed")
        self.degraded = metrics.counter(f"{prefix}.routes.{route}.degraded")
        self.part_failed = [metrics.counter(f"{prefix}.parts.{route}.{n}.failed") for n in names]


class Gateway:
    """An API gateway service on ``node``.

    Args:
        world: the run.
        name: service name; clients call ``<name>.handle``.
        node: where it runs.
        routes: the routing table, route name -> :class:`Route` or :class:`FanOut`.
        workers: requests in progress at once (an event-loop proxy holds no thread per
            request: give it plenty).
        queue_limit, max_wait_s: of the request queue.
        service_time: the gateway's own work per request (routing, auth, TLS).
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        routes: Mapping[str, Route | FanOut],
        *,
        workers: int = 1000,
        queue_limit: int | None = None,
        max_wait_s: float | None = None,
        service_time: Distribution = DEFAULT_SERVICE_TIME,
    ):
        self.world = world
        self.name = name
        self.node = node
        self.service = Service(
            world, name, node, workers=workers, queue_limit=queue_limit, max_wait_s=max_wait_s
        )
        self.service.endpoint("handle", service_time, handler=self._handle)
        self._caller = Caller(world, node)
        self.routes: dict[str, _Compiled] = {}
        for route_name, route in routes.items():
            self.routes[route_name] = self._compile(route_name, route)
        metrics = world.metrics
        prefix = f"gateway.{name}"
        self.requests = metrics.counter(f"{prefix}.requests")
        self.not_found = metrics.counter(f"{prefix}.not_found")

    def __repr__(self) -> str:
        return f"Gateway({self.name!r}, routes={sorted(self.routes)})"

    @property
    def address(self) -> str:
        """The entry endpoint."""
        return f"{self.name}.handle"

    def _compile(self, route_name: str, route: Route | FanOut) -> _Compiled:
        path = f"{self.name}.routes.{route_name}"
        if isinstance(route, Route):
            parts: dict[str, Part] = {route_name: Part(route.target, route.policy)}
        elif isinstance(route, FanOut):
            parts = dict(route.parts)
            if not parts:
                raise ConfigError.single(f"{path}.parts", route.parts, "one or more parts")
        else:
            raise ConfigError.single(path, route, "a Route or a FanOut")
        endpoints, pipelines, critical = [], [], []
        for part_name, part in parts.items():
            if not isinstance(part, Part):
                raise ConfigError.single(f"{path}.parts.{part_name}", part, "a Part")
            try:
                endpoints.append(self._caller.resolve(part.target))
            except ConfigError as error:
                raise error.under(f"{path}.{part_name}") from None
            policy = part.policy
            pipelines.append(policy if isinstance(policy, Pipeline) else Pipeline(policy))
            critical.append(part.critical)
        return _Compiled(
            self.world.metrics, self.name, route_name, list(parts), endpoints, pipelines,
            critical, isinstance(route, FanOut),
        )  # fmt: skip

    # -- the handler ------------------------------------------------------------------------

    def _handle(
        self, ctx: Context, request: GatewayRequest
    ) -> Generator[simpy.Event, Any, GatewayReply]:
        self.requests.value += 1
        request_id = self.world.new_id()
        route_name = getattr(request, "route", None)
        compiled = self.routes.get(route_name) if isinstance(route_name, str) else None
        if compiled is None:
            self.not_found.value += 1
            raise ServiceError(NOT_FOUND)
        key = ctx.key if ctx.key is not None else request_id
        results = yield from self._forward(compiled, request.body, key)
        if not compiled.fan_out:
            result = results[0]
            if result.ok:
                if result.outcome is Outcome.DEGRADED:  # a backend's fallback answered
                    ctx.degraded = True
                    compiled.degraded.value += 1
                else:
                    compiled.ok.value += 1
                return GatewayReply(request_id, result.value)
            compiled.failed.value += 1
            raise ServiceError(f"upstream_{result.outcome.value}")
        values: dict[str, Any] = {}
        missing: list[str] = []
        broken: list[str] = []  # failed critical parts
        for index, result in enumerate(results):
            name = compiled.names[index]
            if result.ok:
                values[name] = result.value
                continue
            compiled.part_failed[index].value += 1
            (broken if compiled.critical[index] else missing).append(name)
        if broken:
            compiled.failed.value += 1
            raise ServiceError(f"upstream_{broken[0]}")
        if missing:
            ctx.degraded = True
            compiled.degraded.value += 1
        else:
            compiled.ok.value += 1
        return GatewayReply(request_id, values, tuple(missing))

    def _forward(
        self, compiled: _Compiled, body: Any, key: Any
    ) -> Generator[simpy.Event, Any, list[Result]]:
        """Start every part's call at once; wait for all of them."""
        env = self.world.env
        events = []
        for endpoint, pipeline in zip(compiled.endpoints, compiled.pipelines, strict=True):
            event, done = result_event(env)
            start_call(self.node, endpoint, body, pipeline, done, key=key)
            events.append(event)
        results: list[Result] = []
        for event in events:
            result: Result = yield event
            results.append(result)
        return results
