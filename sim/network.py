"""The network: links between nodes that delay, lose, duplicate and reorder messages, and
partitions between groups of nodes.

A message in flight is a scheduled callback, not a process. Each directed pair of nodes that
exchanges messages gets a :class:`Channel` with its own random streams
(``net.<src>><dst>.latency`` and ``net.<src>><dst>.chance``), created on first use, so that
traffic between two nodes never shifts the draws of another pair.

Semantics:

- latency: a draw from the link's distribution, times the active spike factor, plus the
  active spike extra delay.
- loss: a lost message is never delivered; the sender is not told.
- duplication: with probability ``duplicate`` a second copy is delivered, with its own delay.
- reordering: with ``reorder=True`` every copy has an independent delay, so messages overtake
  each other; with ``reorder=False`` (the default, like one TCP connection) a message is never
  delivered before one sent earlier on the same directed pair.
- partitions: a message sent while its pair is partitioned is dropped. Messages already in
  flight when a partition starts are delivered (they left before it).
- a node sending to itself takes no time and loses nothing.
- on a link with zero latency and no loss or duplication a message is delivered in place,
  during the send (no heap event, no draws); that halves the events of a local call.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sim import check
from sim.distributions import Constant, Distribution, Uniform
from sim.errors import ConfigError
from sim.world import _Callback, _CallbackAt

if TYPE_CHECKING:
    from sim.node import Node
    from sim.world import World

__all__ = ["Channel", "Link", "Network", "Partition"]


class Link:
    """Properties of the path between two nodes (mutable: faults change them while running).

    Args:
        latency: one-way delay distribution, seconds.
        loss: probability that a message is lost.
        duplicate: probability that a message is delivered twice.
        reorder: independent delays per message (True) or FIFO delivery (False).
    """

    def __init__(
        self,
        latency: Distribution | None = None,
        *,
        loss: float = 0.0,
        duplicate: float = 0.0,
        reorder: bool = False,
    ):
        chosen = latency if latency is not None else Constant(0.0)
        if not isinstance(chosen, Distribution):
            raise ConfigError.single("link.latency", latency, "a distribution")
        self.base_loss = check.probability("link.loss", loss)
        self.duplicate = check.probability("link.duplicate", duplicate)
        self.reorder = bool(reorder)
        self.factor = 1.0  # product of active latency-spike factors
        self.extra_s = 0.0  # sum of active latency-spike extra delays
        self._bursts: list[float] = []  # loss probabilities of active loss bursts
        self.loss = self.base_loss
        self.instant = False  # zero delay, nothing lost or duplicated: kept by _refresh()
        self.latency = chosen

    @property
    def latency(self) -> Distribution:
        """The one-way delay distribution, seconds (assignable)."""
        return self._latency

    @latency.setter
    def latency(self, distribution: Distribution) -> None:
        self._latency = distribution
        self._refresh()

    def _refresh(self) -> None:
        latency = self._latency
        self.instant = (
            isinstance(latency, Constant)
            and latency.value == 0.0
            and self.extra_s == 0.0
            and self.loss == 0.0
            and self.duplicate == 0.0
        )

    def __repr__(self) -> str:
        return (
            f"Link({self.latency!r}, loss={self.loss}, duplicate={self.duplicate}, "
            f"reorder={self.reorder})"
        )

    def spike(self, factor: float = 1.0, extra_s: float = 0.0) -> None:
        """Start a latency spike: multiply delays by ``factor`` and add ``extra_s``."""
        self.factor *= check.positive("factor", factor)
        self.extra_s += check.non_negative("extra_s", extra_s)
        self._refresh()

    def unspike(self, factor: float = 1.0, extra_s: float = 0.0) -> None:
        """End a spike started with the same arguments (spikes may overlap)."""
        self.factor /= factor
        self.extra_s -= extra_s
        if abs(self.factor - 1.0) < 1e-12:
            self.factor = 1.0
        if abs(self.extra_s) < 1e-12:
            self.extra_s = 0.0
        self._refresh()

    def add_loss(self, probability: float) -> None:
        """Start a loss burst; losses combine as independent events."""
        self._bursts.append(check.probability("loss", probability))
        self._refresh_loss()

    def remove_loss(self, probability: float) -> None:
        """End a loss burst started with ``probability``."""
        self._bursts.remove(probability)
        self._refresh_loss()

    def _refresh_loss(self) -> None:
        keep = 1.0 - self.base_loss
        for p in self._bursts:
            keep *= 1.0 - p
        self.loss = 1.0 - keep
        self._refresh()


class Channel:
    """The directed path from one node to another: its link and its random streams."""

    __slots__ = ("_dist", "blocked", "chance", "dst", "last_arrival", "latency", "link", "src")

    def __init__(self, network: Network, src: Node, dst: Node, link: Link):
        world = network.world
        self.src = src
        self.dst = dst
        self.link = link
        self.blocked = 0  # number of active partitions cutting this direction
        self.last_arrival = 0.0
        self._dist = link.latency
        self.latency = world.sampler(f"net.{src.name}>{dst.name}.latency", link.latency)
        self.chance = world.sampler(f"net.{src.name}>{dst.name}.chance", _UNIT)

    def delay(self) -> float:
        """One message's delay on this channel now."""
        link = self.link
        if link.latency is not self._dist:  # the link's distribution was replaced
            self._dist = link.latency
            self.latency = self.src.world.sampler(
                f"net.{self.src.name}>{self.dst.name}.latency", link.latency
            )
        return self.latency() * link.factor + link.extra_s


class Partition:
    """A handle on an active partition; :meth:`heal` ends it."""

    def __init__(self, network: Network, channels: list[Channel]):
        self._network = network
        self._channels = channels
        self.active = True
        for channel in channels:
            channel.blocked += 1

    def heal(self) -> None:
        """End the partition (idempotent)."""
        if self.active:
            self.active = False
            for channel in self._channels:
                channel.blocked -= 1


class Network:
    """All links of a run: a default link plus per-pair overrides."""

    def __init__(self, world: World):
        self.world = world
        self._env = world.env
        self.default = Link()
        self._overrides: dict[tuple[str, str], Link] = {}
        self._channels: list[Channel] = []
        metrics = world.metrics
        self.sent = metrics.counter("network.sent")
        self.lost = metrics.counter("network.lost")
        self.duplicated = metrics.counter("network.duplicated")
        self.blocked = metrics.counter("network.partitioned")

    # -- configuration ------------------------------------------------------------------

    def set_default(self, link: Link) -> None:
        """Use ``link`` between every pair without an override."""
        self.default = link
        for channel in self._channels:
            if (channel.src.name, channel.dst.name) not in self._overrides:
                channel.link = link

    def set_link(self, src: str, dst: str, link: Link, *, both_ways: bool = True) -> None:
        """Use ``link`` from ``src`` to ``dst`` (and back, unless ``both_ways`` is False).
        Both directions share the one Link object, so a fault on it affects both."""
        pairs = [(src, dst), (dst, src)] if both_ways else [(src, dst)]
        for pair in pairs:
            self._overrides[pair] = link
        for channel in self._channels:
            if (channel.src.name, channel.dst.name) in pairs:
                channel.link = link

    def link(self, src: str, dst: str) -> Link:
        """The link in force from ``src`` to ``dst``."""
        return self._overrides.get((src, dst), self.default)

    def links(self, src: str | None = None, dst: str | None = None) -> list[Link]:
        """The distinct links matching a selector (None matches every node).

        Used by faults: a spike on "all links" is a spike on the default and each override;
        a spike on one pair gives that pair its own copy of its link first.
        """
        if src is None and dst is None:
            found = [self.default, *self._overrides.values()]
        elif src is not None and dst is not None:
            if (src, dst) not in self._overrides:
                self.set_link(src, dst, copy.deepcopy(self.link(src, dst)), both_ways=False)
            found = [self._overrides[(src, dst)]]
        else:
            raise ConfigError.single(
                "links", (src, dst), "both endpoints of a pair, or neither for every link"
            )
        unique: dict[int, Link] = {id(link): link for link in found}
        return list(unique.values())

    def channel(self, src: Node, dst: Node) -> Channel:
        """The channel from ``src`` to ``dst`` (created on first use)."""
        channel = src.channels.get(dst)
        if channel is None:
            channel = Channel(self, src, dst, self.link(src.name, dst.name))
            src.channels[dst] = channel
            self._channels.append(channel)
        return channel

    def partition(
        self, side_a: Iterable[str], side_b: Iterable[str], *, one_way: bool = False
    ) -> Partition:
        """Cut messages from every node of ``side_a`` to every node of ``side_b`` (and back,
        unless ``one_way``). Returns a handle whose ``heal()`` ends the partition."""
        nodes = self.world.nodes
        a, b = list(side_a), list(side_b)
        for name in (*a, *b):
            if name not in nodes:
                raise ConfigError.single("partition", name, f"a node name in {sorted(nodes)}")
        pairs = [(x, y) for x in a for y in b if x != y]
        if not one_way:
            pairs += [(y, x) for x, y in pairs]
        channels = [self.channel(nodes[x], nodes[y]) for x, y in pairs]
        return Partition(self, channels)

    # -- sending ------------------------------------------------------------------------

    def send(self, src: Node, dst: Node, deliver: Callable[[Any], None], message: Any) -> None:
        """Send ``message`` from ``src`` to ``dst``: ``deliver(message)`` runs at arrival,
        once per copy that arrives (zero, one or two times)."""
        self.sent.value += 1
        if src is dst:
            deliver(message)
            return
        channel = src.channels.get(dst) or self.channel(src, dst)
        if channel.blocked:
            self.blocked.value += 1
            return
        link = channel.link
        if link.instant:
            deliver(message)  # zero delay, nothing lost: deliver in place
            return
        if link.loss and channel.chance() < link.loss:
            self.lost.value += 1
            return
        env = self._env
        if link._latency is channel._dist:  # inlined Channel.delay(): runs once per message
            delay = channel.latency() * link.factor + link.extra_s
        else:
            delay = channel.delay()
        if link.reorder:
            _Callback(env, delay, deliver, message)
        else:  # never before a message sent earlier on this pair, to the last bit
            arrival = env._now + delay
            if arrival < channel.last_arrival:  # max() inlined: -4% of a send, measured
                arrival = channel.last_arrival
            channel.last_arrival = arrival
            _CallbackAt(env, arrival, deliver, message)
        if link.duplicate and channel.chance() < link.duplicate:
            self.duplicated.value += 1
            delay = channel.delay()
            if link.reorder:
                _Callback(env, delay, deliver, message)
            else:
                arrival = max(env._now + delay, channel.last_arrival)
                channel.last_arrival = arrival
                _CallbackAt(env, arrival, deliver, message)


_UNIT = Uniform(0.0, 1.0)
