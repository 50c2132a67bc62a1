"""Resilience policies: timeouts, deadlines, retries with backoff and budgets, circuit
breakers, bulkheads, rate limiters, hedging, fallbacks, load shedding, adaptive
concurrency and idempotency.

Client-side policies go in a call's pipeline, outermost first
(``Pipeline([Retry(), CircuitBreaker(), Timeout(0.5)])``); server-side policies go on an
endpoint (``service.endpoint("pay", ..., policies=[LoadShedder(max_queue=50)])``). Each
policy object is configuration plus the state a library keeps per client instance, held
per world (see :mod:`sim.policies.base`), and records what it did under
``policy.<name>.*`` in the world's metrics. Configs build policies by name with
:func:`build_policy`.
"""

from sim.call import Timeout
from sim.policies.base import FAILURES, REJECTION_REASONS, rejection
from sim.policies.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker, ConsecutiveBreaker
from sim.policies.budget import RetryBudget, RetryThrottle, build_budget
from sim.policies.bulkhead import Bulkhead, ThreadPoolBulkhead
from sim.policies.concurrency import AdaptiveConcurrency
from sim.policies.fallback import Fallback
from sim.policies.hedge import Hedge
from sim.policies.idempotency import Idempotency
from sim.policies.ratelimit import RateLimiter
from sim.policies.registry import (
    CLIENT_KINDS,
    DEFAULT_ORDER,
    POLICIES,
    SERVER_KINDS,
    build_pipeline,
    build_policy,
    in_default_order,
)
from sim.policies.retry import BACKOFFS, JITTERS, Backoff, Retry
from sim.policies.shedding import LoadShedder
from sim.policies.timeout import DEADLINE_EXCEEDED, Deadline

__all__ = [
    "BACKOFFS",
    "CLIENT_KINDS",
    "CLOSED",
    "DEADLINE_EXCEEDED",
    "DEFAULT_ORDER",
    "FAILURES",
    "HALF_OPEN",
    "JITTERS",
    "OPEN",
    "POLICIES",
    "REJECTION_REASONS",
    "SERVER_KINDS",
    "AdaptiveConcurrency",
    "Backoff",
    "Bulkhead",
    "CircuitBreaker",
    "ConsecutiveBreaker",
    "Deadline",
    "Fallback",
    "Hedge",
    "Idempotency",
    "LoadShedder",
    "RateLimiter",
    "Retry",
    "RetryBudget",
    "RetryThrottle",
    "ThreadPoolBulkhead",
    "Timeout",
    "build_budget",
    "build_pipeline",
    "build_policy",
    "in_default_order",
    "rejection",
]
