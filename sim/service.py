"""Services and endpoints: code on a node, run on workers from the service's pool.

An endpoint answers after a draw of its service time. It may also have a handler:

- a plain function ``def lookup(ctx, payload) -> value`` runs when the service time ends
  (no process: the cheap path);
- a generator function ``def checkout(ctx, payload)`` starts when the service time ends,
  dies with the node, and may call further services
  (``reply = yield from ctx.call("pay.charge", x)``), sleep on the node's clock, hold other
  pools, or wait for any SimPy event. Its return value is the reply.

A generator handler is driven by a :class:`~sim.handler.Task`, not a SimPy process: it
behaves like one (a crash throws ``simpy.Interrupt`` into it; a failed event it yields
raises in it) but its service time is one heap callback and a reply to ``ctx.call``
resumes it in place, without an event per call.

The worker is held from grant until the reply is sent, downstream calls included, as in a
thread-per-request server. A handler that raises :class:`ServiceError` or lets a
:class:`~sim.call.CallFailed` escape ends the call as ``error``; any other exception is a bug
in the model and stops the run. With ``error_probability`` the endpoint answers ``error``
after its service time without running the handler (an injected fault, or a flaky
dependency nobody modelled).

Server-side policies (rate limiters, load shedders, idempotency) are :class:`ServerPolicy`
objects attached to an endpoint: hooks at admission, at worker grant, and at completion.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any

import simpy

from sim import check
from sim.call import (
    Caller,
    Outcome,
    Pipeline,
    Policy,
    Request,
    Result,
    deliver_reply,
    failure_for,
)
from sim.distributions import Distribution, Uniform
from sim.errors import ConfigError
from sim.handler import REPLY, ServiceError, Task
from sim.pool import Pool
from sim.world import _Wake

if TYPE_CHECKING:
    from sim.node import Node
    from sim.world import World

__all__ = ["Context", "Endpoint", "ServerPolicy", "Service", "ServiceError"]

Handler = Callable[["Context", Any], Any]
_UNIT = Uniform(0.0, 1.0)
# Shared results carry no per-request data; nothing mutates a Result after it is sent.
OK = Result(Outcome.OK)
REFUSED = Result(Outcome.REFUSED)
ERROR = Result(Outcome.ERROR, reason="injected")


class ServerPolicy:
    """Hooks a server-side policy may override; the defaults let everything through.

    ``admit`` and ``start`` return None to continue, or a Result to answer with at once
    (the worker, if held, is released first). ``complete`` sees every result produced by the
    handler path before it is sent; ``dropped`` sees every request that ended without one
    (rejected at admission, by the worker pool or at start, or cancelled), so a policy that
    counts requests in progress can count every admitted request out again. Work lost in a
    crash reaches neither: use ``node.on_crash``.
    """

    def admit(self, context: Context) -> Result | None:
        """On arrival, before queueing for a worker."""
        return None

    def start(self, context: Context) -> Result | None:
        """When a worker is granted, before the service time starts."""
        return None

    def complete(self, context: Context, result: Result) -> None:
        """When the endpoint has a result, before the reply is sent."""

    def dropped(self, context: Context, result: Result | None) -> None:
        """When the request ended without a handler result: ``result`` is the rejection
        sent back (by any policy or the pool), or None for a cancelled request."""


class Context(Caller):
    """One execution of an endpoint: the request, where it runs, and a caller on that node.

    Attributes:
        request: the attempt being served.
        payload: the request body.
        endpoint, service, node, world: where it runs.
        epoch: the node's incarnation when the request arrived.
        received_at: true arrival time; granted_at: true time a worker was granted.
        degraded: set True by a handler to answer ``degraded`` (a partial answer).
    """

    __slots__ = (
        "_task",
        "degraded",
        "endpoint",
        "epoch",
        "granted_at",
        "received_at",
        "request",
        "service",
    )

    def __init__(self, endpoint: Endpoint, request: Request):
        service = endpoint.service
        self.world = service.world  # Caller.__init__ inlined: this runs once per request
        self.node = service.node
        self._targets = service.targets
        self.endpoint = endpoint
        self.service = service
        self.request = request
        self.epoch = service.node.epoch
        self.received_at: float = service.world.env._now
        self.granted_at = -1.0
        self.degraded = False
        self._task: Task | None = None  # the driver of a generator handler, while it runs

    @property
    def payload(self) -> Any:
        """The request body."""
        return self.request.call.payload

    @property
    def key(self) -> Any:
        """The call's idempotency key (None when the caller gave none)."""
        return self.request.call.key

    @property
    def deadline(self) -> float | None:
        """The caller's propagated deadline on this node's clock, or None.

        The caller sent the time it had left; it is counted from the request's arrival on
        this node's clock (transit time is not deducted, as in gRPC).
        """
        budget = self.request.budget_s
        if budget is None:
            return None
        clock = self.node.clock
        return clock.now() + budget - clock.local_duration(self.world.env.now - self.received_at)

    def inherited_deadline(self) -> float | None:
        """Downstream calls from a handler inherit the incoming call's deadline."""
        if self.request.budget_s is None:  # no deadline came with the request: most calls
            return None
        return self.deadline

    def call(
        self,
        target: str | Endpoint,
        payload: Any = None,
        *,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
        key: Any = None,
        deadline: float | None = None,
    ) -> Generator[simpy.Event, Result, Any]:
        """:meth:`Caller.call`; from the handler's own task, its reply resumes the handler
        directly (no event)."""
        task = self._task
        if task is None or task.target is not None:  # not run by its task now: SimPy's way
            return (
                yield from Caller.call(
                    self, target, payload, policy=policy, timeout_s=timeout_s, key=key,
                    deadline=deadline,
                )
            )  # fmt: skip
        call = self.start(
            target, payload, task.reply, policy=policy, timeout_s=timeout_s, key=key,
            deadline=deadline,
        )  # fmt: skip
        result: Result = yield REPLY
        if result.outcome is Outcome.OK or result.outcome is Outcome.DEGRADED:
            return result.value
        raise failure_for(call.endpoint.address, result)

    def call_result(
        self,
        target: str | Endpoint,
        payload: Any = None,
        *,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
        key: Any = None,
        deadline: float | None = None,
    ) -> Generator[simpy.Event, Result, Result]:
        """:meth:`Caller.call_result`, resumed directly like :meth:`call`."""
        task = self._task
        if task is None or task.target is not None:
            return (
                yield from Caller.call_result(
                    self, target, payload, policy=policy, timeout_s=timeout_s, key=key,
                    deadline=deadline,
                )
            )  # fmt: skip
        self.start(
            target, payload, task.reply, policy=policy, timeout_s=timeout_s, key=key,
            deadline=deadline,
        )  # fmt: skip
        result: Result = yield REPLY
        return result

    def work(self, seconds: float) -> simpy.Event:
        """Busy for ``seconds`` of this node's time (CPU work inside a handler)."""
        return self.sleep(seconds)


class Endpoint:
    """An operation of a service. Create with :meth:`Service.endpoint`."""

    def __init__(
        self,
        service: Service,
        name: str,
        *,
        service_time: Distribution | None = None,
        error_probability: float = 0.0,
        handler: Handler | None = None,
        policies: Sequence[ServerPolicy] = (),
    ):
        if not name or "." in name:
            raise ConfigError.single("endpoint.name", name, "a non-empty name without dots")
        if service_time is not None and not isinstance(service_time, Distribution):
            raise ConfigError.single(f"{name}.service_time", service_time, "a distribution")
        if handler is not None and not callable(handler):
            raise ConfigError.single(f"{name}.handler", handler, "a function (ctx, payload)")
        self.service = service
        self.name = name
        self.address = f"{service.name}.{name}"
        world = service.world
        prefix = f"service.{self.address}"
        self.service_time = service_time
        self._service_time = (
            world.sampler(f"{prefix}.service_time", service_time) if service_time else None
        )
        self._chance = world.sampler(f"{prefix}.error", _UNIT)
        self.base_error_probability = check.probability(
            f"{name}.error_probability", error_probability
        )
        self.error_probability = self.base_error_probability
        self.handler = handler
        self.is_generator = handler is not None and inspect.isgeneratorfunction(handler)
        self.policies: tuple[ServerPolicy, ...] = tuple(policies)
        metrics = world.metrics
        self.received = metrics.counter(f"{prefix}.received")
        self.succeeded = metrics.counter(f"{prefix}.ok")
        self.failed = metrics.counter(f"{prefix}.error")

    def __repr__(self) -> str:
        return f"Endpoint({self.address!r})"

    def add_policy(self, policy: ServerPolicy) -> None:
        """Attach a server-side policy after those already attached."""
        self.policies = (*self.policies, policy)

    def set_error_burst(self, probabilities: Sequence[float]) -> None:
        """Active error bursts: failures combine as independent events."""
        keep = 1.0 - self.base_error_probability
        for p in probabilities:
            keep *= 1.0 - p
        self.error_probability = 1.0 - keep


class Service:
    """A service on a node, with a worker pool.

    Args:
        world: the run.
        name: unique service name; endpoints are addressed ``"<name>.<endpoint>"``.
        node: where it runs.
        workers: worker pool capacity.
        queue_limit: requests that may wait for a worker (0: reject when all busy;
            None: unbounded).
        max_wait_s: longest wait for a worker on the node's clock (None: unbounded).
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        *,
        workers: int = 1,
        queue_limit: int | None = None,
        max_wait_s: float | None = None,
    ):
        if not name or not isinstance(name, str):
            raise ConfigError.single("service.name", name, "a non-empty string")
        if name in world.services:
            raise ConfigError.single("service.name", name, "a name not used by another service")
        self.world = world
        self.name = name
        self.node = node
        self.pool = Pool(
            world,
            name,
            workers,
            queue_limit=queue_limit,
            max_wait_s=max_wait_s,
            node=node,
        )
        self.endpoints: dict[str, Endpoint] = {}
        self.targets: dict[Any, Endpoint] = {}  # handlers' resolved call targets
        self._error_bursts: list[float] = []
        metrics = world.metrics
        self.received = metrics.counter(f"service.{name}.received")
        self.swallowed = metrics.counter(f"service.{name}.swallowed")
        self.refused = metrics.counter(f"service.{name}.refused")
        self.lost = metrics.counter(f"service.{name}.lost_in_crash")
        self.cancelled = metrics.counter(f"service.{name}.cancelled")
        self.rejected: dict[str, Any] = {}
        # bound once: these run once per request
        self._receive = self.receive
        self._grant = self._on_grant
        self._reject = self._on_reject
        self._finish_simple = self._on_service_time_end
        world.services[name] = self

    def __repr__(self) -> str:
        return f"Service({self.name!r} on {self.node.name})"

    def endpoint(
        self,
        name: str,
        service_time: Distribution | None = None,
        *,
        error_probability: float = 0.0,
        handler: Handler | None = None,
        policies: Sequence[ServerPolicy] = (),
    ) -> Endpoint:
        """The endpoint called ``name``; created with these settings on first use."""
        existing = self.endpoints.get(name)
        if existing is not None:
            return existing
        if service_time is None and handler is None:
            raise ConfigError.single(
                f"{self.name}.{name}", None, "an endpoint created with a service_time or handler"
            )
        endpoint = Endpoint(
            self,
            name,
            service_time=service_time,
            error_probability=error_probability,
            handler=handler,
            policies=policies,
        )
        self.endpoints[name] = endpoint
        if self._error_bursts:
            endpoint.set_error_burst(self._error_bursts)
        return endpoint

    # -- faults -------------------------------------------------------------------------

    def start_error_burst(self, probability: float) -> None:
        """Every endpoint also fails with ``probability`` until the burst ends."""
        self._error_bursts.append(check.probability("probability", probability))
        for endpoint in self.endpoints.values():
            endpoint.set_error_burst(self._error_bursts)

    def end_error_burst(self, probability: float) -> None:
        self._error_bursts.remove(probability)
        for endpoint in self.endpoints.values():
            endpoint.set_error_burst(self._error_bursts)

    # -- the request path (hot: once per request) ---------------------------------------

    def receive(self, request: Request) -> None:
        """A request arrives over the network."""
        node = self.node
        if not node.up:
            self.refused.value += 1
            deliver_reply((request, REFUSED))  # the caller learns one link delay after sending
            return
        if node.hung:
            self.swallowed.value += 1
            return
        self.received.value += 1
        endpoint = request.call.endpoint
        endpoint.received.value += 1
        context = Context(endpoint, request)
        if endpoint.policies:
            for policy in endpoint.policies:
                answer = policy.admit(context)
                if answer is not None:
                    self._respond(context, answer, complete=False)
                    return
        self.pool.request(context, self._grant, self._reject)

    def _on_reject(self, context: Context, reason: str) -> None:
        counter = self.rejected.get(reason)
        if counter is None:
            counter = self.rejected[reason] = self.world.metrics.counter(
                f"service.{self.name}.rejected.{reason}"
            )
        counter.value += 1
        self._respond(context, Result(Outcome.REJECTED, reason=reason), complete=False)

    def _on_grant(self, context: Context) -> None:
        if context.request.cancelled:
            self.cancelled.value += 1
            self.pool.release()
            for policy in context.endpoint.policies:
                policy.dropped(context, None)
            return
        env = self.world.env
        context.granted_at = env._now
        endpoint = context.endpoint
        if endpoint.policies:
            for policy in endpoint.policies:
                answer = policy.start(context)
                if answer is not None:
                    self.pool.release()
                    self._respond(context, answer, complete=False)
                    return
        draw = endpoint._service_time
        if endpoint.is_generator:
            task = context._task = Task(self, context)
            self.node.processes[task] = None  # interrupted if the node crashes
            if draw is not None:  # node time -> true, as true_delay() does
                _Wake(env, draw() / self.node.clock.rate, self._begin, task)
            else:  # starts now, where SimPy would start a process
                _Wake.first(env, self._begin, task)
            return
        delay = draw() / self.node.clock.rate if draw is not None else 0.0  # node time -> true
        _Wake(env, delay, self._finish_simple, context)

    def _on_service_time_end(self, event: _Wake) -> None:
        context: Context = event.arg
        if context.epoch != self.node.epoch:
            return  # the node crashed meanwhile: the work is lost, nobody is answered
        endpoint = context.endpoint
        if endpoint.error_probability and endpoint._chance() < endpoint.error_probability:
            result = ERROR
        elif endpoint.handler is None:
            result = OK
        else:
            try:
                result = Result(Outcome.OK, endpoint.handler(context, context.request.call.payload))
            except ServiceError as error:
                result = Result(Outcome.ERROR, reason=error.reason)
            if context.degraded and result.outcome is Outcome.OK:
                result.outcome = Outcome.DEGRADED
        self.pool.release()
        self._respond(context, result)

    def _begin(self, event: _Wake) -> None:
        """A generator handler's service time has ended: run its handler."""
        task: Task = event.arg
        if not task.is_alive:
            return  # the node crashed meanwhile (counted as lost then)
        context = task.context
        endpoint = context.endpoint
        if endpoint.error_probability and endpoint._chance() < endpoint.error_probability:
            task.end(ERROR)
            return
        assert endpoint.handler is not None
        task.generator = endpoint.handler(context, context.request.call.payload)
        task.target = None
        task.step(None, None)

    def _respond(self, context: Context, result: Result, *, complete: bool = True) -> None:
        endpoint = context.endpoint
        if complete:
            if endpoint.policies:
                for policy in endpoint.policies:
                    policy.complete(context, result)
            if result.outcome is Outcome.ERROR:
                endpoint.failed.value += 1
            else:
                endpoint.succeeded.value += 1
        elif endpoint.policies:
            for policy in endpoint.policies:
                policy.dropped(context, result)
        node = self.node
        if node.hung:
            self.swallowed.value += 1
            return
        request = context.request
        self.world.network.send(node, request.call.source, deliver_reply, (request, result))
