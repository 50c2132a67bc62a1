"""Idempotency on the server: the same request key executes once.

A server policy (attach it to an endpoint). Requests carry the caller's key
(``call.key``; the same for every attempt of a call, and workloads key each request). With
the policy ``enabled``:

- a request whose key already succeeded, less than ``ttl_s`` ago on the server's clock,
  gets the stored reply at once, without running again (``duplicates_served``);
- a request whose key is still executing is rejected with reason ``in_progress``, as
  Stripe answers 409 to a concurrent request with the same key;
- only successes are stored: after an error the key may run again.

Disabled (``enabled=False``), the policy only watches: every success for a key that
already succeeded within the TTL is a duplicate side effect (``duplicate_side_effects``),
the anomaly that idempotency exists to prevent. Requests without a key pass untouched.

Keys are kept for ``ttl_s`` (default 24 h, Stripe's), so memory grows with the keys seen
in one TTL. A crash of the server's node ends the executions in progress (their keys may
run again); with ``durable=False`` it loses the stored replies too.

Metrics (``policy.<name>.``): ``duplicates_served``, ``rejected.in_progress``,
``duplicate_side_effects``, ``executions``, ``stored`` (gauge: keys held).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sim import check
from sim.call import Outcome, Result
from sim.policies.base import PolicyBase
from sim.service import ServerPolicy

if TYPE_CHECKING:
    from sim.node import Node
    from sim.service import Context
    from sim.world import World

__all__ = ["IN_PROGRESS", "Idempotency"]

IN_PROGRESS = "in_progress"
_REJECTED = Result(Outcome.REJECTED, reason=IN_PROGRESS)


class _Store:
    __slots__ = (
        "duplicates",
        "executions",
        "in_progress",
        "rejected",
        "served",
        "stored",
        "succeeded",
        "watched",
    )

    def __init__(self, world: World, prefix: str):
        metrics = world.metrics
        # key -> (expiry on the server's clock, reply), oldest first
        self.succeeded: dict[Any, tuple[float, Result]] = {}
        self.in_progress: dict[Any, Context] = {}  # key -> the request executing it
        self.watched: set[Node] = set()
        self.served = metrics.counter(f"{prefix}.duplicates_served")
        self.rejected = metrics.counter(f"{prefix}.rejected.{IN_PROGRESS}")
        self.duplicates = metrics.counter(f"{prefix}.duplicate_side_effects")
        self.executions = metrics.counter(f"{prefix}.executions")
        self.stored = metrics.gauge(f"{prefix}.stored")


class Idempotency(PolicyBase[_Store], ServerPolicy):
    """Deduplicate requests by key (see the module docstring).

    Args:
        ttl_s: how long a success is remembered, server clock (> 0).
        enabled: deduplicate (True) or only count duplicate side effects (False).
        durable: the store survives crashes of the server's node.
        name: metric prefix (default ``idempotency``).
    """

    kind = "idempotency"

    def __init__(
        self,
        ttl_s: float = 86_400.0,
        *,
        enabled: bool = True,
        durable: bool = True,
        name: str | None = None,
    ):
        super().__init__(name)
        self.ttl_s = check.positive("ttl_s", ttl_s)
        self.enabled = bool(enabled)
        self.durable = bool(durable)

    def __repr__(self) -> str:
        return f"Idempotency(ttl_s={self.ttl_s}, enabled={self.enabled}, name={self.name!r})"

    def _new_state(self, world: World) -> _Store:
        return _Store(world, self.prefix)

    def _store(self, context: Context) -> _Store:
        store = self._state_for(context.world)
        if context.node not in store.watched:
            store.watched.add(context.node)
            context.node.on_crash(lambda: _forget(store, keep_replies=self.durable))
        return store

    def _purge(self, store: _Store, now: float) -> None:
        succeeded = store.succeeded
        while succeeded:
            key = next(iter(succeeded))
            if succeeded[key][0] > now:
                break
            del succeeded[key]

    def admit(self, context: Context) -> Result | None:
        key = context.key
        if key is None or not self.enabled:
            return None
        store = self._store(context)
        self._purge(store, context.node.clock.now())
        entry = store.succeeded.get(key)
        if entry is not None:
            store.served.value += 1
            return entry[1]
        if key in store.in_progress:
            store.rejected.value += 1
            return _REJECTED
        store.in_progress[key] = context
        return None

    def complete(self, context: Context, result: Result) -> None:
        key = context.key
        if key is None:
            return
        store = self._store(context)
        if store.in_progress.get(key) is context:
            del store.in_progress[key]
        if not result.ok:
            return
        now = context.node.clock.now()
        self._purge(store, now)
        store.executions.value += 1
        succeeded = store.succeeded
        if succeeded.pop(key, None) is not None:
            store.duplicates.value += 1
        succeeded[key] = (now + self.ttl_s, result)
        store.stored.set(len(succeeded))

    def dropped(self, context: Context, result: Result | None) -> None:
        key = context.key
        if key is not None:
            store = self._store(context)
            if store.in_progress.get(key) is context:
                del store.in_progress[key]


def _forget(store: _Store, *, keep_replies: bool) -> None:
    """The node crashed: the executions in progress are lost (their keys may run again),
    and so are the stored replies unless the store is durable."""
    store.in_progress.clear()
    if not keep_replies:
        store.succeeded.clear()
        store.stored.set(0)
