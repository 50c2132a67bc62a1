"""The client policies of every call path, built from the pattern switches.

One :class:`Paths` per world: each path gets its own policy objects (a breaker is one
client's breaker), named ``<path>.<kind>`` so their metrics read ``policy.<path>.<kind>.*``.
With a pattern off its policies are simply left out: no retries means one attempt, no
timeouts means a caller waits as long as it takes (as JDBC and many HTTP clients do by
default), no breaker means every call goes through.
"""

from __future__ import annotations

from typing import Any

from models.ecommerce.parameters import Patterns
from sim.call import Pipeline, Timeout
from sim.policies import Bulkhead, CircuitBreaker, Fallback, Retry

__all__ = ["STEP_TIMEOUTS", "Paths"]

# Per-attempt time limit of each saga step made by another service (the order service's
# own work is local): the charge step covers the payment service's own calls to the
# provider (two attempts of 2.5 s and their backoff) plus its database.
STEP_TIMEOUTS = {"reserve": 2.0, "charge": 8.0}


class Paths:
    """Pipelines by call path (see the module docstring)."""

    def __init__(self, patterns: Patterns):
        self.patterns = patterns
        p = patterns
        # the edge: routes of the API gateway (a retried order is safe only with a key)
        self.gateway_orders = self._pipe(
            "gateway.orders",
            retry=(2, 0.1) if p.idempotency else None,
            bulkhead=200,
            timeout=4.0,
        )
        self.gateway_browse = self._pipe("gateway.catalog", retry=(2, 0.05), bulkhead=200,
                                         timeout=1.0)  # fmt: skip
        # order service
        self.user = self._pipe("order.user", retry=(3, 0.05), timeout=0.5)
        self.steps = {
            name: self._pipe(f"saga.{name}", retry=(3, 0.2), timeout=seconds)
            for name, seconds in STEP_TIMEOUTS.items()
        }
        self.undo = {
            name: self._pipe(f"saga.{name}_undo", timeout=seconds)
            for name, seconds in STEP_TIMEOUTS.items()
        }
        # payment service -> the external provider: breaker, retries, timeout
        self.provider = self._pipe(
            "payment.provider", retry=(2, 0.2), timeout=2.5,
            breaker=CircuitBreaker(
                window_size=20, minimum_calls=10, failure_rate_threshold=50.0,
                slow_call_rate_threshold=100.0, slow_call_duration_s=2.0,
                wait_in_open_s=30.0, permitted_in_half_open=3, name="payment.provider.breaker",
            ),
        )  # fmt: skip
        # product service: browsing reads (non-critical) apart from reservations (critical)
        self.browse_read = self._pipe(
            "product.browse", retry=(2, 0.02), bulkhead=16, timeout=0.3,
            fallback=Fallback("stale", per_payload=True, name="product.browse.fallback"),
        )  # fmt: skip
        # databases, one path per calling service and kind of operation
        self.db: dict[str, Pipeline] = {}

    def read(self, service: str) -> Pipeline:
        """Database reads of ``service``: short timeout, retried."""
        return self._database(f"{service}.db_read", (2, 0.02), 0.25)

    def write(self, service: str) -> Pipeline:
        """Database writes of ``service`` (keyed puts: safe to retry)."""
        return self._database(f"{service}.db_write", (2, 0.05), 1.0)

    def _database(self, name: str, retry: tuple[int, float], timeout: float) -> Pipeline:
        found = self.db.get(name)
        if found is None:
            found = self.db[name] = self._pipe(name, retry=retry, timeout=timeout)
        return found

    def _pipe(
        self,
        name: str,
        *,
        retry: tuple[int, float] | None = None,
        timeout: float | None = None,
        bulkhead: int | None = None,
        breaker: CircuitBreaker | None = None,
        fallback: Fallback | None = None,
    ) -> Pipeline:
        """Outermost first: Fallback(Retry(CircuitBreaker(Timeout(Bulkhead(call))))), the
        documented default order."""
        p = self.patterns
        chosen: list[Any] = []
        if fallback is not None and p.degradation:
            chosen.append(fallback)
        if retry is not None and p.retries:
            attempts, base_s = retry
            chosen.append(
                Retry(attempts, backoff="exponential", base_s=base_s, cap_s=20 * base_s,
                      jitter="full", name=f"{name}.retry")
            )  # fmt: skip
        if breaker is not None and p.circuit_breaker:
            chosen.append(breaker)
        if timeout is not None and p.timeouts:
            chosen.append(Timeout(timeout, name=f"{name}.timeout"))
        if bulkhead is not None and p.bulkheads:
            chosen.append(Bulkhead(bulkhead, name=f"{name}.bulkhead"))
        return Pipeline(chosen)
