"""The ``queueing`` model: one service with ``servers`` workers fed by Poisson arrivals.

The textbook queue (M/M/c, M/G/c, M/M/c/K with a queue limit, impatience with a maximum
wait) in four lines of config, for teaching and for checking the engine against theory::

    [model]
    servers = 4
    arrival_rate = "3.2/s"
    service_time = { kind = "exponential", mean = "1s" }
    queue_limit = 10                # optional: K = servers + queue_limit

Node ``server`` runs service ``queue`` with endpoint ``serve``; the workload is
``arrivals`` from node ``client.arrivals``, over links with no delay.
"""

from __future__ import annotations

from pydantic import Field

from sim.experiment.model import Entry, ModelDefinition
from sim.experiment.policies import ClientPolicy
from sim.experiment.schema import Distribution_, PositiveDuration, PositiveRate, Section
from sim.service import Service
from sim.workload import OpenWorkload
from sim.world import World

__all__ = ["MODEL", "QueueingParameters", "build"]


class QueueingParameters(Section):
    """A single queue."""

    servers: int = Field(default=1, ge=1, description="workers (c)")
    arrival_rate: PositiveRate = Field(description="Poisson arrivals (lambda)")
    service_time: Distribution_ = Field(description="work per request (1/mu on average)")
    queue_limit: int | None = Field(
        default=None, ge=0, description="waiting room (none: unbounded)"
    )
    max_wait: PositiveDuration | None = Field(default=None, description="impatience: longest wait")
    timeout: PositiveDuration | None = Field(default=None, description="the client's timeout")
    policy: ClientPolicy | None = Field(
        default=None, description="the client's pipeline in [policies]"
    )


def build(world: World, params: QueueingParameters) -> list[Entry]:
    """One node, one service, one open workload."""
    service = Service(
        world,
        "queue",
        world.node("server"),
        workers=params.servers,
        queue_limit=params.queue_limit,
        max_wait_s=params.max_wait,
    )
    service.endpoint("serve", params.service_time)
    if params.policy is not None:
        pipeline = params.policy.client_pipeline(params.timeout)
        workload = OpenWorkload(
            world, "arrivals", "queue.serve", params.arrival_rate, policy=pipeline
        )
    else:
        workload = OpenWorkload(
            world, "arrivals", "queue.serve", params.arrival_rate, timeout_s=params.timeout
        )
    return [workload]


MODEL = ModelDefinition(
    name="queueing",
    description="One service with c workers fed by Poisson arrivals (M/G/c, M/M/c/K)",
    parameters=QueueingParameters,
    builder=build,
)
