"""Calls: a caller on one node asks an endpoint on another, and gets exactly one result.

The path of one attempt: the request crosses the network, the server admits it, queues for a
worker, runs the endpoint, and the reply crosses the network back. Every call ends in exactly
one :class:`Outcome`; a failed call raises the matching :class:`CallFailed` in the caller.

Policies (timeouts, retries, breakers, ...) wrap attempts in continuation-passing style, with
no process per call: a policy's ``invoke(call, proceed, done)`` starts zero or more attempts
with ``proceed(call, on_result)`` and eventually calls ``done(result)`` exactly once. A
:class:`Pipeline` composes them, outermost first, ending in :func:`transmit`, which sends one
attempt. :class:`Timeout` (in ``sim.timeout``, re-exported here) is part of the engine
because waiting forever is the one failure no caller should have by accident; the other
policies live in ``sim.policies``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from sim.errors import ConfigError

if TYPE_CHECKING:
    import simpy

    from sim.node import Node
    from sim.service import Endpoint
    from sim.timeout import _Race
    from sim.world import World

__all__ = [
    "Call",
    "CallError",
    "CallFailed",
    "CallRefused",
    "CallRejected",
    "CallTimeout",
    "Caller",
    "Done",
    "Outcome",
    "Pipeline",
    "Policy",
    "Proceed",
    "Request",
    "Result",
    "Timeout",
    "failure_for",
    "transmit",
]


class Outcome(StrEnum):
    """How a call or a workload request ended."""

    OK = "ok"
    DEGRADED = "degraded"  # a fallback or partial answer
    TIMEOUT = "timeout"
    REFUSED = "refused"  # the target node was down
    REJECTED = "rejected"  # refused by policy or capacity; see Result.reason
    ERROR = "error"
    HUNG = "hung"  # never ended: nothing answered and nothing timed out


SUCCESSES = frozenset({Outcome.OK, Outcome.DEGRADED})


class Result:
    """What a call ended with.

    Attributes:
        outcome: how it ended.
        value: the reply's payload (successes) or None.
        reason: for ``rejected`` and ``error``, why (``"queue_full"``, ``"breaker_open"``).
    """

    __slots__ = ("outcome", "reason", "value")

    def __init__(self, outcome: Outcome, value: Any = None, reason: str | None = None):
        self.outcome = outcome
        self.value = value
        self.reason = reason

    @property
    def ok(self) -> bool:
        """True for ``ok`` and ``degraded``."""
        return self.outcome in SUCCESSES

    def __repr__(self) -> str:
        extra = f", reason={self.reason!r}" if self.reason else ""
        return f"Result({self.outcome.value}, {self.value!r}{extra})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Result) and (self.outcome, self.value, self.reason) == (
            other.outcome,
            other.value,
            other.reason,
        )

    __hash__ = None  # type: ignore[assignment]


class CallFailed(Exception):
    """A call ended without success. Subclasses name the outcome."""

    outcome = Outcome.ERROR

    def __init__(self, target: str, result: Result):
        reason = f" ({result.reason})" if result.reason else ""
        super().__init__(f"{target}: {result.outcome.value}{reason}")
        self.target = target
        self.result = result
        self.reason = result.reason


class CallTimeout(CallFailed):
    """No reply before the timeout."""

    outcome = Outcome.TIMEOUT


class CallRefused(CallFailed):
    """The target's node was down."""

    outcome = Outcome.REFUSED


class CallRejected(CallFailed):
    """Refused by a policy or for capacity; ``reason`` says which."""

    outcome = Outcome.REJECTED


class CallError(CallFailed):
    """The target answered with an error."""

    outcome = Outcome.ERROR


_FAILURES: dict[Outcome, type[CallFailed]] = {
    Outcome.TIMEOUT: CallTimeout,
    Outcome.REFUSED: CallRefused,
    Outcome.REJECTED: CallRejected,
    Outcome.ERROR: CallError,
}


def failure_for(target: str, result: Result) -> CallFailed:
    """The exception matching a failed ``result`` of a call to ``target``, to raise."""
    return _FAILURES.get(result.outcome, CallFailed)(target, result)


class Call:
    """One logical call from a caller to an endpoint, across all of its attempts.

    Attributes:
        world: the run.
        source: the calling node.
        source_epoch: the caller's incarnation when the call began (a reply to a dead
            incarnation is dropped).
        endpoint: the target.
        payload: the request body (anything).
        key: idempotency key, the same for every attempt of this call.
        deadline: optional absolute deadline on the caller's clock (``clock.now()``). Set by
            ``sim.policies.Deadline`` or inherited by a handler's downstream calls; Timeout
            and Retry never wait past it.
        propagate: send the time left before ``deadline`` with each attempt, so that the
            server's downstream calls inherit it (gRPC-style deadline propagation).
        started_at: true time the call began.
        attempts: attempts sent so far.
        last_request: the most recent attempt on the wire (hedging cancels losers with it);
            None before the first attempt and once its reply has been handed over.
        scope: the innermost Timeout whose attempt is being started, while it is started
            (None otherwise). A policy inside a Timeout that holds something for an attempt
            (a bulkhead permit, an in-flight count) captures it in ``invoke`` and gives the
            thing back through ``scope.on_abandon`` when the attempt is given up — as
            resilience4j's TimeLimiter cancels the call and so frees its bulkhead permit.
    """

    __slots__ = (
        "attempts",
        "deadline",
        "endpoint",
        "key",
        "last_request",
        "payload",
        "propagate",
        "scope",
        "source",
        "source_epoch",
        "started_at",
        "world",
    )

    def __init__(
        self,
        world: World,
        source: Node,
        endpoint: Endpoint,
        payload: Any = None,
        key: Any = None,
        deadline: float | None = None,
    ):
        self.world = world
        self.source = source
        self.source_epoch = source.epoch
        self.endpoint = endpoint
        self.payload = payload
        self.key = key
        self.deadline = deadline
        self.propagate = True
        self.scope: _Race | None = None
        self.started_at: float = world.env._now
        self.attempts = 0
        self.last_request: Request | None = None


class Request:
    """One attempt of a call, on the wire.

    Attributes:
        call: the logical call.
        done: where the reply goes.
        sent_at: true time it was sent.
        replied: a reply has been handed to ``done`` (later copies are dropped).
        cancelled: the caller lost interest; a server that has not started it skips it.
        budget_s: the time left before the call's deadline when it was sent, on the
            caller's clock (None: no deadline, or not propagated). The server counts its
            downstream deadline from this, as gRPC sends a timeout rather than a timestamp.
    """

    __slots__ = ("budget_s", "call", "cancelled", "done", "replied", "sent_at")

    def __init__(self, call: Call, done: Done, sent_at: float):
        self.call = call
        self.done = done
        self.sent_at = sent_at
        self.replied = False
        self.cancelled = False
        self.budget_s: float | None = None


Done = Callable[[Result], None]
Proceed = Callable[[Call, Done], None]


class Policy(Protocol):
    """A client-side policy. ``invoke`` must call ``done`` exactly once, and may call
    ``proceed`` (the rest of the pipeline) zero or more times."""

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None: ...


def transmit(call: Call, done: Done) -> None:
    """Send one attempt of ``call``; ``done(result)`` runs when its reply arrives."""
    call.attempts += 1
    world = call.world
    request = Request(call, done, world.env._now)
    if call.deadline is not None and call.propagate:
        request.budget_s = call.deadline - call.source.clock.now()
    call.last_request = request
    service = call.endpoint.service
    world.network.send(call.source, service.node, service._receive, request)


def deliver_reply(message: tuple[Request, Result]) -> None:
    """A reply arrives at the caller: hand it over unless the caller died meanwhile or a
    copy already arrived."""
    request, result = message
    call = request.call
    source = call.source
    if not source.up or source.epoch != call.source_epoch:
        return
    if request.replied:
        call.world.metrics.counter("calls.duplicate_replies").value += 1
        return
    request.replied = True
    request.done(result)
    if call.last_request is request:
        # Off the wire: drop the call's link back to it. Call and Request refer to each other,
        # and the cycle would leave them to the cyclic garbage collector: memory that grows
        # between collections, and collections that cost 6% of an M/M/4 run and 10% of a
        # 3-hop chain (measured). A request whose reply never comes keeps the link.
        call.last_request = None


class Pipeline:
    """Policies in order, outermost first: ``Pipeline([retry, breaker, timeout])`` means
    retry(breaker(timeout(attempt))). An empty pipeline sends one attempt."""

    def __init__(self, policies: Sequence[Policy] = ()):
        self.policies = tuple(policies)
        for index, policy in enumerate(self.policies):
            if not callable(getattr(policy, "invoke", None)):
                raise ConfigError.single(f"policies[{index}]", policy, "a policy with invoke()")
        start: Proceed = transmit
        for policy in reversed(self.policies):
            start = _bind(policy, start)
        self.start = start

    def __repr__(self) -> str:
        return f"Pipeline({list(self.policies)!r})"

    def __len__(self) -> int:
        return len(self.policies)


def _bind(policy: Policy, inner: Proceed) -> Proceed:
    invoke = policy.invoke

    def step(call: Call, done: Done) -> None:
        invoke(call, inner, done)

    return step


EMPTY = Pipeline()


def start_call(
    caller: Node,
    endpoint: Endpoint,
    payload: Any,
    pipeline: Pipeline,
    done: Done,
    *,
    key: Any = None,
    deadline: float | None = None,
) -> Call:
    """Begin a call through ``pipeline``; ``done(result)`` runs once when it ends."""
    call = Call(caller.world, caller, endpoint, payload, key, deadline)
    pipeline.start(call, done)
    return call


class Caller:
    """Code on a node that calls endpoints: ``reply = yield from caller.call(...)``.

    Handlers get a :class:`sim.service.Context`, which is a Caller on the service's node.
    """

    __slots__ = ("_targets", "node", "world")

    def __init__(self, world: World, node: Node, targets: dict[Any, Endpoint] | None = None):
        self.world = world
        self.node = node
        self._targets: dict[Any, Endpoint] = {} if targets is None else targets

    @property
    def now(self) -> float:
        """The time as this node's clock reads it."""
        return self.node.clock.now()

    def resolve(self, target: str | Endpoint) -> Endpoint:
        """The endpoint for ``"service.endpoint"`` (or an Endpoint itself)."""
        endpoint = self._targets.get(target)
        if endpoint is None:
            endpoint = self.world.endpoint(target) if isinstance(target, str) else target
            self._targets[target] = endpoint
        return endpoint

    def start(
        self,
        target: str | Endpoint,
        payload: Any = None,
        done: Done | None = None,
        *,
        policy: Pipeline | Sequence[Policy] | None = None,
        timeout_s: float | None = None,
        key: Any = None,
        deadline: float | None = None,
    ) -> Call:
        """Start a call without waiting (callback style): ``done(result)`` runs at its end."""
        pipeline = self.pipeline(policy, timeout_s)
        if deadline is None:
            deadline = self.inherited_deadline()
        return start_call(
            self.node, self.resolve(target), payload, pipeline, done or _ignore,
            key=key, deadline=deadline,
        )  # fmt: skip

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
        """Call and wait: returns the reply's value, or raises a :class:`CallFailed`.

        A ``degraded`` result returns its value like ``ok``; use :meth:`call_result` to
        tell them apart.
        """
        event = self.world.env.event()
        done: Done = event.succeed  # type: ignore[assignment]  # succeed returns the event
        call = self.start(
            target, payload, done, policy=policy, timeout_s=timeout_s, key=key, deadline=deadline
        )
        result: Result = yield event
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
        """Call and wait: returns the :class:`Result` whatever the outcome."""
        event = self.world.env.event()
        done: Done = event.succeed  # type: ignore[assignment]  # succeed returns the event
        self.start(
            target, payload, done, policy=policy, timeout_s=timeout_s, key=key, deadline=deadline
        )
        result: Result = yield event
        return result

    def inherited_deadline(self) -> float | None:
        """The deadline a call started here gets when none is given (a handler's calls
        inherit the deadline propagated with its request; plain callers have none)."""
        return None

    def sleep(self, seconds: float) -> simpy.Event:
        """An event that fires after ``seconds`` on this node's clock."""
        return self.world.env.timeout(self.node.clock.true_delay(seconds))

    def pipeline(
        self, policy: Pipeline | Sequence[Policy] | None, timeout_s: float | None = None
    ) -> Pipeline:
        """The pipeline for ``policy`` with a ``timeout_s`` per attempt appended (cached)."""
        if timeout_s is None:
            if policy is None:
                return EMPTY
            return policy if isinstance(policy, Pipeline) else _cached(self.world, tuple(policy))
        policies = (
            ()
            if policy is None
            else tuple(policy.policies if isinstance(policy, Pipeline) else policy)
        )
        timeout = self.world.pipelines.get(timeout_s)
        if timeout is None:
            timeout = self.world.pipelines[timeout_s] = Timeout(timeout_s)
        return _cached(self.world, (*policies, timeout))


def _cached(world: World, policies: tuple[Policy, ...]) -> Pipeline:
    """The same pipeline object for the same policy objects, built once per world.

    The cache holds the policies themselves, so an id is never reused while cached; it lives
    on the world, so nothing outlives the run.
    """
    key = tuple(map(id, policies))  # -120 ns against a generator expression
    hit = world.pipelines.get(key)
    if hit is None:
        hit = world.pipelines[key] = (policies, Pipeline(policies))
    return hit[1]


def _ignore(_: Result) -> None:
    pass


# At the end: sim.timeout needs the names above (Result, Outcome), and Caller.pipeline and
# importers of ``sim.call.Timeout`` need its Timeout. Importing sim loads this module first.
from sim.timeout import Timeout  # noqa: E402
