"""A discrete-event simulator of resilient distributed systems, on SimPy.

The engine: a :class:`World` (one run) holds nodes with local clocks, a network of lossy
links, services with worker pools and endpoints, workloads and faults. Calls between
services end in exactly one :class:`Outcome`. See the README for a tour.
"""

from sim.call import (
    Call,
    Caller,
    CallError,
    CallFailed,
    CallRefused,
    CallRejected,
    CallTimeout,
    Outcome,
    Pipeline,
    Policy,
    Request,
    Result,
    Timeout,
)
from sim.clock import Clock
from sim.distributions import (
    Constant,
    Distribution,
    Empirical,
    Exponential,
    LogNormal,
    Normal,
    Pareto,
    Uniform,
    Weibull,
    parse_distribution,
)
from sim.errors import ConfigError, Problem
from sim.faults import (
    ClockJump,
    Crash,
    ErrorBurst,
    Hang,
    LatencySpike,
    LossBurst,
    Partition,
    PoolShrink,
    inject,
)
from sim.metrics import Counter, Histogram, Metrics, StateTimeline, TimeWeighted, WindowSeries
from sim.network import Link, Network
from sim.node import Node
from sim.pool import Pool, PoolRejected
from sim.service import Context, Endpoint, ServerPolicy, Service, ServiceError
from sim.units import format_duration, parse_duration, parse_rate
from sim.workload import (
    BurstRate,
    ClosedWorkload,
    ConstantRate,
    DiurnalRate,
    EntryStats,
    OpenWorkload,
    StepRate,
)
from sim.world import World

__all__ = [
    "BurstRate",
    "Call",
    "CallError",
    "CallFailed",
    "CallRefused",
    "CallRejected",
    "CallTimeout",
    "Caller",
    "Clock",
    "ClockJump",
    "ClosedWorkload",
    "ConfigError",
    "Constant",
    "ConstantRate",
    "Context",
    "Counter",
    "Crash",
    "Distribution",
    "DiurnalRate",
    "Empirical",
    "Endpoint",
    "EntryStats",
    "ErrorBurst",
    "Exponential",
    "Hang",
    "Histogram",
    "LatencySpike",
    "Link",
    "LogNormal",
    "LossBurst",
    "Metrics",
    "Network",
    "Node",
    "Normal",
    "OpenWorkload",
    "Outcome",
    "Pareto",
    "Partition",
    "Pipeline",
    "Policy",
    "Pool",
    "PoolRejected",
    "PoolShrink",
    "Problem",
    "Request",
    "Result",
    "ServerPolicy",
    "Service",
    "ServiceError",
    "StateTimeline",
    "StepRate",
    "TimeWeighted",
    "Timeout",
    "Uniform",
    "Weibull",
    "WindowSeries",
    "World",
    "format_duration",
    "inject",
    "load_experiment",
    "load_results",
    "parse_distribution",
    "parse_duration",
    "parse_rate",
    "run",
]

# The experiment layer (pydantic, pandas, matplotlib) loads on first use, so that importing
# the engine stays light: sim.load_experiment, sim.run and sim.load_results.
_LAZY = frozenset({"load_experiment", "load_results", "run"})


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from sim import experiment

        return getattr(experiment, name)
    raise AttributeError(f"module 'sim' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _LAZY)
