"""Idempotent receivers and side-effect ledgers.

At-least-once delivery means a consumer sees some messages twice: copies duplicated by the
network, redeliveries after a lost or late acknowledgement, a saga step re-sent after its
orchestrator crashed. Two small pieces let a model handle and measure that:

- :class:`Inbox`, the idempotent receiver (the "processed messages" table a consumer keeps
  in its database): ``inbox.once(key, act)`` runs ``act()`` the first time it sees ``key``
  and answers the stored result for every later copy;
- :class:`EffectLog`, a measurement: ``log.record(key)`` notes that the side effect for
  ``key`` (an email sent, a card charged) happened; every effect after the first for a key
  is a duplicate, counted in ``anomaly.duplicate_side_effects``.

Both keep one entry per key, like the tables they stand for; an EffectLog is a measuring
device, so use it in tests and runs where per-key memory is affordable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from sim.node import Node
    from sim.world import World

__all__ = ["EffectLog", "Inbox"]

T = TypeVar("T")


class Inbox:
    """Keys already processed, with their results.

    Args:
        world: the run.
        name: metrics ``inbox.<name>.hits`` (copies answered from the inbox) and
            ``inbox.<name>.processed``.
        node: with ``durable=False``, the node whose crash empties the inbox (an in-memory
            dedupe cache); a durable inbox (a table in the consumer's database) survives.
        enabled: False turns deduplication off (every copy is processed), for comparisons.
    """

    def __init__(
        self, world: World, name: str, *, node: Node | None = None, durable: bool = True,
        enabled: bool = True,
    ):  # fmt: skip
        self.enabled = enabled
        self.results: dict[Any, Any] = {}
        self.hits = world.metrics.counter(f"inbox.{name}.hits")
        self.processed = world.metrics.counter(f"inbox.{name}.processed")
        if not durable and node is not None:
            node.on_crash(self.results.clear)

    def __contains__(self, key: object) -> bool:
        return self.enabled and key in self.results

    def once(self, key: Any, act: Callable[[], T]) -> T:
        """``act()`` if ``key`` is new (its result is stored), else the stored result.

        If ``act`` raises, nothing is stored: the next copy tries again.
        """
        if self.enabled and key in self.results:
            self.hits.value += 1
            result: T = self.results[key]
            return result
        value = act()
        self.processed.value += 1
        if self.enabled:
            self.results[key] = value
        return value

    def remember(self, key: Any, value: Any = None) -> None:
        """Store ``key`` as processed with ``value``."""
        if self.enabled:
            self.results[key] = value


class EffectLog:
    """Side effects by key: how many times each happened.

    Args:
        world: the run.
        name: metrics ``effects.<name>.count`` and ``effects.<name>.duplicates``; duplicates
            also add to ``anomaly.duplicate_side_effects``.
    """

    def __init__(self, world: World, name: str):
        self.counts: dict[Any, int] = {}
        metrics = world.metrics
        self.total = metrics.counter(f"effects.{name}.count")
        self.duplicates = metrics.counter(f"effects.{name}.duplicates")
        self._anomaly = metrics.counter("anomaly.duplicate_side_effects")

    def record(self, key: Any) -> bool:
        """Note one effect for ``key``; True if it was the first."""
        seen = self.counts.get(key, 0)
        self.counts[key] = seen + 1
        self.total.value += 1
        if seen:
            self.duplicates.value += 1
            self._anomaly.value += 1
        return not seen

    def count(self, key: Any) -> int:
        """Effects recorded for ``key``."""
        return self.counts.get(key, 0)

    @property
    def distinct(self) -> int:
        """Keys with at least one effect."""
        return len(self.counts)
