"""The ``topology`` model: a whole system described in the config, with no Python.

::

    [model.nodes.db-1]                      # optional: clock offset, drift and sync
    drift_ppm = 50

    [model.services.api]                    # a service on a node (default: a node named
    workers = 8                             # after the service), with a worker pool
    queue_limit = 100

    [model.services.api.endpoints.checkout]
    service_time = { kind = "lognormal", median = "2ms", p99 = "20ms" }
    calls = [                               # downstream calls, one step after the other
        { parallel = [{ target = "stock.reserve" }, { target = "pricing.quote" }] },
        { target = "payment.charge", policy = "payment", on_failure = "fail" },
    ]

    [model.network.default]                 # links: a default and per pair
    latency = { kind = "lognormal", median = "0.5ms", p99 = "3ms" }
    [[model.network.links]]
    between = ["api", "payment"]
    latency = "20ms"

    [model.workloads.users]                 # open (rate or profile) or closed (users)
    kind = "open"
    target = "api.checkout"
    rate = "50/s"
    timeout = "2s"

An endpoint runs its service time on a worker, then its calls in order; a step with
``parallel`` starts every call of the step at once and waits for all of them. A call that
fails ends the endpoint with ``error`` (``on_failure = "fail"``), marks its answer
``degraded`` (``"degrade"``), or is ignored (``"ignore"``); a degraded reply makes the
caller's answer degraded too. The worker is held until the endpoint answers, as in a
thread-per-request server. Faults go in the experiment's ``[faults]`` section.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping, Sequence
from typing import Annotated, Any, Literal

import simpy
from pydantic import Field, model_validator

from sim.call import Outcome, Pipeline, Result, Timeout
from sim.distributions import Constant
from sim.errors import Problem
from sim.experiment.model import Entry, ModelDefinition
from sim.experiment.policies import ClientPolicy, PipelineSpec, ServerPolicies
from sim.experiment.schema import (
    Distribution_,
    Duration,
    Name,
    PositiveDuration,
    PositiveRate,
    Probability,
    Rate,
    Section,
    SignedDuration,
    problems,
)
from sim.network import Link
from sim.node import Node
from sim.service import Context, Service, ServiceError
from sim.workload import BurstRate, ClosedWorkload, DiurnalRate, OpenWorkload, StepRate
from sim.world import World

__all__ = ["MODEL", "TopologyParameters", "build"]

HOUR_S = 3600.0
DAY_S = 86_400.0


# -- schema --------------------------------------------------------------------------------


class NodeSpec(Section):
    """A host and its clock."""

    offset: SignedDuration = Field(
        default=0.0, description="clock offset at time zero (local - true)"
    )
    drift_ppm: float = Field(default=0.0, gt=-1e6, description="clock drift, parts per million")
    sync_interval: PositiveDuration | None = Field(default=None, description="NTP-like sync period")
    sync_error: Distribution_ | None = Field(
        default=None, description="clock error after each sync"
    )


class CallSpec(Section):
    """One downstream call."""

    target: str = Field(description="'service.endpoint'")
    policy: ClientPolicy | None = Field(default=None, description="a pipeline in [policies]")
    timeout: PositiveDuration | None = Field(default=None, description="per attempt, innermost")
    on_failure: Literal["fail", "degrade", "ignore"] = Field(
        default="fail", description="what a failed call does to the endpoint's answer"
    )


class StepSpec(Section):
    """A step of an endpoint: one call (``target``...) or calls in ``parallel``."""

    target: str | None = Field(default=None, description="'service.endpoint'")
    policy: ClientPolicy | None = None
    timeout: PositiveDuration | None = None
    on_failure: Literal["fail", "degrade", "ignore"] = "fail"
    parallel: list[CallSpec] | None = Field(default=None, description="calls started together")

    @model_validator(mode="after")
    def _one_kind(self) -> StepSpec:
        if (self.target is None) == (self.parallel is None):
            raise problems([Problem("", "<step>", "either a target or a parallel list of calls")])
        if self.parallel is not None:
            if not self.parallel:
                raise problems([Problem("parallel", [], "a non-empty list of calls")])
            if self.policy is not None or self.timeout is not None or self.on_failure != "fail":
                expected = "policy, timeout and on_failure on each call of the parallel list"
                raise problems([Problem("parallel", "<step options>", expected)])
        return self

    def calls(self) -> list[CallSpec]:
        """The calls of the step."""
        if self.parallel is not None:
            return list(self.parallel)
        assert self.target is not None
        return [
            CallSpec(
                target=self.target,
                policy=self.policy,
                timeout=self.timeout,
                on_failure=self.on_failure,
            )
        ]


class EndpointSpec(Section):
    """An operation of a service."""

    service_time: Distribution_ = Field(default=Constant(0.0), description="work on a worker")
    error_probability: Probability = Field(default=0.0, description="answers error with it")
    policy: ServerPolicies | None = Field(
        default=None, description="server-side pipeline in [policies]"
    )
    calls: list[StepSpec] = Field(default_factory=list, description="downstream calls in order")


class ServiceSpec(Section):
    """A service with a worker pool."""

    node: Name | None = Field(
        default=None, description="the node it runs on (default: its own name)"
    )
    workers: int = Field(default=1, ge=1, description="worker pool capacity")
    queue_limit: int | None = Field(
        default=None, ge=0, description="waiting requests (none: unbounded)"
    )
    max_wait: PositiveDuration | None = Field(default=None, description="longest wait for a worker")
    endpoints: dict[Name, EndpointSpec] = Field(min_length=1)


class LinkSpec(Section):
    """Message delivery between nodes."""

    latency: Distribution_ = Field(default=Constant(0.0), description="one-way delay")
    loss: Probability = 0.0
    duplicate: Probability = 0.0
    reorder: bool = False

    def link(self) -> Link:
        return Link(self.latency, loss=self.loss, duplicate=self.duplicate, reorder=self.reorder)


class PairLinkSpec(LinkSpec):
    """A link between two named nodes."""

    between: list[Name] = Field(min_length=2, max_length=2)
    both_ways: bool = True


class NetworkSpec(Section):
    default: LinkSpec = Field(default_factory=LinkSpec)
    links: list[PairLinkSpec] = Field(default_factory=list)


class DiurnalProfile(Section):
    kind: Literal["diurnal"]
    mean: PositiveRate
    peak_to_trough: float = Field(default=3.0, ge=1.0)
    peak: Duration = 14 * HOUR_S
    period: PositiveDuration = DAY_S


class RateStep(Section):
    at: Duration
    rate: Rate


class StepProfile(Section):
    kind: Literal["step"]
    steps: list[RateStep] = Field(min_length=1)


class BurstProfile(Section):
    kind: Literal["burst"]
    base: Rate
    burst: PositiveRate
    start: Duration
    duration: PositiveDuration
    every: PositiveDuration | None = None


Profile = Annotated[DiurnalProfile | StepProfile | BurstProfile, Field(discriminator="kind")]


class _WorkloadSpec(Section):
    target: str = Field(description="the entry endpoint, 'service.endpoint'")
    source: Name | None = Field(
        default=None, description="a node in [model.nodes] (default: its own)"
    )
    policy: ClientPolicy | None = None
    timeout: PositiveDuration | None = Field(default=None, description="per attempt, innermost")


class OpenWorkloadSpec(_WorkloadSpec):
    """Poisson arrivals at a constant ``rate`` or following a ``profile``."""

    kind: Literal["open"]
    rate: PositiveRate | None = None
    profile: Profile | None = None
    start: Duration = 0.0
    stop: PositiveDuration | None = None

    @model_validator(mode="after")
    def _one_rate(self) -> OpenWorkloadSpec:
        if (self.rate is None) == (self.profile is None):
            raise problems([Problem("rate", "<rate/profile>", "either a rate or a profile")])
        return self


class ClosedWorkloadSpec(_WorkloadSpec):
    """Users that send a request, wait for its end, think, and send the next."""

    kind: Literal["closed"]
    users: int = Field(ge=1)
    think_time: Distribution_


Workload = Annotated[OpenWorkloadSpec | ClosedWorkloadSpec, Field(discriminator="kind")]


class TopologyParameters(Section):
    """Nodes, services, network and workloads of a system."""

    nodes: dict[Name, NodeSpec] = Field(default_factory=dict)
    services: dict[Name, ServiceSpec] = Field(min_length=1)
    network: NetworkSpec = Field(default_factory=NetworkSpec)
    workloads: dict[Name, Workload] = Field(min_length=1)

    @model_validator(mode="after")
    def _references(self) -> TopologyParameters:
        found = _reference_problems(self)
        if found:
            raise problems(found)
        return self

    def node_names(self) -> list[str]:
        """Declared nodes and the nodes services run on."""
        names = dict.fromkeys(self.nodes)
        for name, service in self.services.items():
            names.setdefault(service.node or name)
        return list(names)


def _reference_problems(params: TopologyParameters) -> list[Problem]:
    found: list[Problem] = []
    targets = {
        f"{service}.{endpoint}": spec
        for service, s in params.services.items()
        for endpoint, spec in s.endpoints.items()
    }
    valid = ", ".join(targets)

    def check_target(path: str, target: str) -> None:
        if target not in targets:
            found.append(Problem(path, target, f"an endpoint 'service.endpoint': {valid}"))

    declared = ", ".join(params.nodes) or "none declared"
    for name, service in params.services.items():
        implicit = service.node in params.services and params.services[service.node].node is None
        if service.node is not None and service.node not in params.nodes and not implicit:
            expected = f"a node in [model.nodes] ({declared}) or a service's own node"
            found.append(Problem(f"services.{name}.node", service.node, expected))
        for endpoint, spec in service.endpoints.items():
            for index, step in enumerate(spec.calls):
                path = f"services.{name}.endpoints.{endpoint}.calls[{index}]"
                if step.parallel is None:
                    check_target(f"{path}.target", step.target or "")
                for inner, call in enumerate(step.parallel or []):
                    check_target(f"{path}.parallel[{inner}].target", call.target)
    nodes = params.node_names()
    for name, workload in params.workloads.items():
        check_target(f"workloads.{name}.target", workload.target)
        if workload.source is not None and workload.source not in params.nodes:
            found.append(
                Problem(
                    f"workloads.{name}.source",
                    workload.source,
                    f"a node in [model.nodes] ({declared})",
                )
            )
    for index, link in enumerate(params.network.links):
        for side, node in enumerate(link.between):
            if node not in nodes:
                path = f"network.links[{index}].between[{side}]"
                found.append(Problem(path, node, f"a node name: {', '.join(nodes)}"))
    cycle = _cycle(params)
    if cycle:
        found.append(Problem("services", " -> ".join(cycle), "calls that form no cycle"))
    return found


def _cycle(params: TopologyParameters) -> list[str]:
    """A cycle of endpoint calls (a request that would call itself forever), or []."""
    edges: dict[str, list[str]] = {}
    for service, s in params.services.items():
        for endpoint, spec in s.endpoints.items():
            edges[f"{service}.{endpoint}"] = [c.target for step in spec.calls for c in step.calls()]
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for nxt in edges.get(node, []):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return []

    for start in edges:
        if start not in state and (found := visit(start)):
            return found
    return []


# -- build ---------------------------------------------------------------------------------


class _Clients:
    """Client-side policy objects, one set per (caller, pipeline): the calls of one service
    through one pipeline share its breaker and budget, as one client library instance does."""

    def __init__(self) -> None:
        self._made: dict[tuple[str, str], list[Any]] = {}

    def pipeline(
        self, owner: str, policy: PipelineSpec | None, timeout_s: float | None
    ) -> Pipeline:
        """The pipeline of a call from ``owner``, with a per-attempt ``timeout_s`` innermost."""
        if policy is None:
            return Pipeline([Timeout(timeout_s)] if timeout_s is not None else [])
        key = (owner, policy.name)
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = policy.build()
        return policy.client_pipeline(timeout_s, made)


class _Call:
    """A downstream call ready to send: target, pipeline, failure handling."""

    __slots__ = ("on_failure", "pipeline", "target")

    def __init__(self, spec: CallSpec, pipeline: Pipeline):
        self.target = spec.target
        self.pipeline = pipeline
        self.on_failure = spec.on_failure


def _settle(context: Context, call: _Call, result: Result) -> None:
    """Apply one call's result to the endpoint's answer."""
    outcome = result.outcome
    if outcome is Outcome.OK:
        return
    if outcome is Outcome.DEGRADED:
        context.degraded = True
    elif call.on_failure == "fail":
        raise ServiceError(f"{call.target}: {outcome.value}")
    elif call.on_failure == "degrade":
        context.degraded = True


class _Join:
    """Waits for every call of a parallel step: ``event`` succeeds with their results."""

    __slots__ = ("event", "remaining", "results")

    def __init__(self, event: simpy.Event, count: int):
        self.event = event
        self.remaining = count
        self.results: list[Result | None] = [None] * count

    def slot(self, index: int) -> Callable[[Result], None]:
        def done(result: Result) -> None:
            self.results[index] = result
            self.remaining -= 1
            if self.remaining == 0:
                self.event.succeed(self.results)

        return done


Steps = Sequence[Sequence[_Call]]


def _handler(steps: Steps) -> Callable[[Context, Any], Generator[simpy.Event, Any, None]]:
    """The endpoint's code: each step's calls, one step after the other."""

    def handle(context: Context, payload: Any) -> Generator[simpy.Event, Any, None]:
        world = context.world
        for step in steps:
            if len(step) == 1:
                call = step[0]
                result = yield from context.call_result(
                    call.target, payload, policy=call.pipeline, key=world.new_id()
                )
                _settle(context, call, result)
                continue
            join = _Join(world.env.event(), len(step))
            for index, call in enumerate(step):
                context.start(
                    call.target, payload, join.slot(index), policy=call.pipeline, key=world.new_id()
                )
            results = yield join.event
            for call, result in zip(step, results, strict=True):
                _settle(context, call, result)

    return handle


def _node(world: World, name: str, specs: Mapping[str, NodeSpec]) -> Node:
    existing = world.nodes.get(name)
    if existing is not None:
        return existing
    spec = specs.get(name)
    if spec is None:
        return world.node(name)
    node = world.node(name, offset_s=spec.offset, drift_ppm=spec.drift_ppm)
    if spec.sync_interval is not None:
        node.clock.synchronise(spec.sync_interval, spec.sync_error or Constant(0.0))
    return node


def build(world: World, params: TopologyParameters) -> list[Entry]:
    """Create the nodes, links, services and workloads of ``params`` in ``world``."""
    network = world.network
    network.set_default(params.network.default.link())
    for pair in params.network.links:
        a, b = pair.between
        network.set_link(a, b, pair.link(), both_ways=pair.both_ways)
    for name in params.nodes:
        _node(world, name, params.nodes)
    clients = _Clients()
    for name, spec in params.services.items():
        node = _node(world, spec.node or name, params.nodes)
        service = Service(
            world,
            name,
            node,
            workers=spec.workers,
            queue_limit=spec.queue_limit,
            max_wait_s=spec.max_wait,
        )
        for endpoint, e in spec.endpoints.items():
            steps = [
                [_Call(c, clients.pipeline(name, c.policy, c.timeout)) for c in step.calls()]
                for step in e.calls
            ]
            service.endpoint(
                endpoint,
                e.service_time,
                error_probability=e.error_probability,
                handler=_handler(steps) if steps else None,
                policies=e.policy.server_policies() if e.policy is not None else (),
            )
    entries: list[Entry] = []
    for name, w in params.workloads.items():
        source = world.nodes[w.source] if w.source is not None else None
        pipeline = clients.pipeline(f"workload.{name}", w.policy, w.timeout)
        if isinstance(w, OpenWorkloadSpec):
            entries.append(
                OpenWorkload(
                    world,
                    name,
                    w.target,
                    w.rate or _profile(w.profile),
                    source=source,
                    policy=pipeline,
                    start_s=w.start,
                    stop_s=w.stop,
                )
            )
        else:
            entries.append(
                ClosedWorkload(
                    world, name, w.target, w.users, w.think_time, source=source, policy=pipeline
                )
            )
    return entries


def _profile(spec: DiurnalProfile | StepProfile | BurstProfile | None) -> Any:
    if isinstance(spec, DiurnalProfile):
        return DiurnalRate(
            spec.mean, peak_to_trough=spec.peak_to_trough, peak_s=spec.peak, period_s=spec.period
        )
    if isinstance(spec, StepProfile):
        return StepRate([(step.at, step.rate) for step in spec.steps])
    assert spec is not None
    return BurstRate(
        spec.base, spec.burst, start_s=spec.start, duration_s=spec.duration, every_s=spec.every
    )


MODEL = ModelDefinition(
    name="topology",
    description="Any architecture described in the config: nodes, services, endpoints with "
    "downstream calls and policies, links, workloads",
    parameters=TopologyParameters,
    builder=build,
)
