"""The ``[policies]`` tables of a config: named pipelines that calls and endpoints refer to.

::

    [policies.payment]                 # a pipeline called "payment"
    retry = { max_attempts = 3, backoff = "exponential", base_s = "50ms" }
    circuit_breaker = { failure_rate_threshold = 50 }
    timeout = { seconds = "500ms" }
    # order = ["timeout", "retry"]     # optional: outermost first (default: DEFAULT_ORDER)

A call (``policy = "payment"``) gets a client-side pipeline; an endpoint gets server-side
policies. Each table maps onto :func:`sim.policies.build_policy` (kind = the table's key,
parameters = its keys); without ``order`` the policies are composed in
:data:`sim.policies.DEFAULT_ORDER`, Retry(CircuitBreaker(RateLimiter(Timeout(Bulkhead(call))))).
A policy's metrics are named ``policy.<pipeline>.<kind>.*`` unless its table sets ``name``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator, ValidationInfo

from sim.call import Pipeline, Policy, Timeout
from sim.errors import ConfigError, Problem
from sim.experiment.schema import Label, context_value, problem
from sim.policies import DEFAULT_ORDER, POLICIES, build_policy
from sim.service import ServerPolicy

__all__ = [
    "ClientPolicy",
    "PipelineSpec",
    "PolicyBook",
    "ServerPolicies",
    "load_policies",
]


def _is_client(policy: object) -> bool:
    return callable(getattr(policy, "invoke", None))


def _named(name: str, kind: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with a metric name ``<pipeline>.<kind>`` unless the table gives one."""
    named = dict(params)
    cls = POLICIES.get(kind)
    if "name" not in named and cls is not None and "name" in inspect.signature(cls).parameters:
        named["name"] = f"{name}.{kind}"
    return named


@dataclass(frozen=True)
class PipelineSpec:
    """A validated pipeline: policy kinds and parameters, outermost first.

    Attributes:
        name: the pipeline's name in ``[policies]``.
        policies: ``(kind, params)`` pairs, outermost first, as the config gives them.
        client: every policy works on the calling side.
        server: every policy works on the serving side.
    """

    name: str
    policies: tuple[tuple[str, Mapping[str, Any]], ...]
    client: bool
    server: bool

    def build(self) -> list[Any]:
        """Fresh policy objects (fresh state), outermost first."""
        return [build_policy(kind, _named(self.name, kind, p)) for kind, p in self.policies]

    def client_pipeline(
        self, timeout_s: float | None = None, policies: Sequence[Any] | None = None
    ) -> Pipeline:
        """A client pipeline: ``policies`` (default: fresh ones) with a per-attempt
        ``timeout_s`` innermost."""
        chosen: list[Policy] = list(self.build() if policies is None else policies)
        if timeout_s is not None:
            chosen.append(Timeout(timeout_s))
        return Pipeline(chosen)

    def server_policies(self) -> list[ServerPolicy]:
        """Fresh server-side policies, in order."""
        return [p for p in self.build() if isinstance(p, ServerPolicy)]


PolicyBook = Mapping[str, PipelineSpec]


def _order(
    name: str, table: Mapping[str, Any], kinds: list[str]
) -> tuple[list[str], list[Problem]]:
    order = table.get("order")
    if order is None:
        rank = {kind: i for i, kind in enumerate(DEFAULT_ORDER)}
        return sorted(kinds, key=lambda k: rank.get(k, len(rank))), []
    if not isinstance(order, list) or sorted(map(str, order)) != sorted(kinds):
        expected = f"a list naming each policy of the pipeline once, outermost first: {kinds}"
        return kinds, [Problem(f"policies.{name}.order", order, expected)]
    return [str(kind) for kind in order], []


def load_policies(tables: object) -> tuple[dict[str, PipelineSpec], list[Problem]]:
    """Validate the ``[policies]`` section: every policy built once, problems collected."""
    if tables is None:
        return {}, []
    if not isinstance(tables, Mapping):
        return {}, [Problem("policies", tables, "a table of named pipelines")]
    book: dict[str, PipelineSpec] = {}
    found: list[Problem] = []
    for name, table in tables.items():
        path = f"policies.{name}"
        if not isinstance(table, Mapping):
            found.append(Problem(path, table, "a table of policies: kind = { parameters }"))
            continue
        kinds = [k for k in table if k != "order"]
        order, problems = _order(name, table, kinds)
        found += problems
        specs: list[tuple[str, Mapping[str, Any]]] = []
        client = server = True
        for kind in order:
            params = table[kind]
            if not isinstance(params, Mapping):
                found.append(
                    Problem(f"{path}.{kind}", params, "a table of the policy's parameters")
                )
                continue
            try:
                policy = build_policy(kind, _named(name, kind, params))
            except ConfigError as error:
                found += _under(error, path, kind)
                continue
            client = client and _is_client(policy)
            server = server and isinstance(policy, ServerPolicy)
            specs.append((kind, dict(params)))
        book[name] = PipelineSpec(name, tuple(specs), client, server)
    return book, found


def _under(error: ConfigError, path: str, kind: str) -> list[Problem]:
    """Problems of building one policy (paths ``kind`` or ``<kind>.<param>``) under
    ``policies.<pipeline>``: an unknown kind names the table's key itself."""
    moved = []
    for p in error.problems:
        if p.path == "kind":
            moved.append(Problem(f"{path}.{kind}", kind, f"a policy kind: {p.expected}"))
        else:
            moved.append(Problem(f"{path}.{p.path}", p.value, p.expected))
    return moved


def _reference(side: Literal["client", "server"]) -> Callable[[object, ValidationInfo], object]:
    def validate(value: object, info: ValidationInfo) -> PipelineSpec:
        book: PolicyBook | None = context_value(info, "policies")
        if isinstance(value, PipelineSpec):
            return value
        names = sorted(book or {})
        if not isinstance(value, str) or book is None or value not in book:
            listed = ", ".join(repr(n) for n in names) if names else "none defined"
            raise problem(f"the name of a pipeline in [policies] ({listed})", value)
        spec = book[value]
        if not (spec.client if side == "client" else spec.server):
            raise problem(f"a pipeline of {side}-side policies ('{value}' has others)", value)
        return spec

    return validate


def _name_of(spec: PipelineSpec) -> str:
    return spec.name


ClientPolicy = Annotated[
    PipelineSpec,
    PlainValidator(_reference("client")),
    PlainSerializer(_name_of),
    Label("pipeline name (client side)"),
]
"""A reference by name to a client-side pipeline of ``[policies]``."""

ServerPolicies = Annotated[
    PipelineSpec,
    PlainValidator(_reference("server")),
    PlainSerializer(_name_of),
    Label("pipeline name (server side)"),
]
"""A reference by name to a server-side pipeline of ``[policies]``."""


def names(book: PolicyBook) -> Sequence[str]:
    """Pipeline names, sorted."""
    return sorted(book)
