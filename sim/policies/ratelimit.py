"""A token-bucket rate limiter, usable as a client policy or as a server policy.

The bucket holds at most ``burst`` tokens and starts full; it refills at ``rate`` tokens
per second of the node's clock (the caller's as a client policy, the server's on an
endpoint). Each admitted call takes one token, so in any interval of length ``w`` at most
``burst + rate × w`` calls are admitted. A call that finds less than one token is rejected
as ``rejected(rate_limited)``, unless ``max_wait_s`` > 0 (client side only): then it
reserves the next token and is sent when that token is due, if that is within
``max_wait_s`` (as resilience4j's ``timeoutDuration`` and Guava's reservations; the tokens
may go below zero to record the reservations). The default burst is one second of tokens
(Guava's SmoothBursty), at least one.

Metrics: ``policy.<name>.permitted``, ``policy.<name>.rejected.rate_limited``,
``policy.<name>.delayed`` (calls sent after waiting for a token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim import check
from sim.call import Call, Done, Proceed, Result
from sim.errors import ConfigError
from sim.policies.base import RATE_LIMITED, PolicyBase, rejection
from sim.service import ServerPolicy

if TYPE_CHECKING:
    from sim.node import Node
    from sim.service import Context
    from sim.world import World

__all__ = ["RateLimiter"]

REJECTED = rejection(RATE_LIMITED)


class _Bucket:
    __slots__ = ("delayed", "last", "permitted", "rejected", "tokens", "world")

    def __init__(self, world: World, prefix: str, burst: float):
        self.world = world
        self.tokens = burst
        self.last = world.env.now  # true time of the last refill
        metrics = world.metrics
        self.permitted = metrics.counter(f"{prefix}.permitted")
        self.rejected = metrics.counter(f"{prefix}.rejected.{RATE_LIMITED}")
        self.delayed = metrics.counter(f"{prefix}.delayed")


class RateLimiter(PolicyBase[_Bucket], ServerPolicy):
    """A token bucket: ``rate`` tokens per second, at most ``burst``.

    Args:
        rate: tokens per second (> 0).
        burst: bucket size (>= 1; default ``max(1, rate)``).
        max_wait_s: longest wait for a token, client side (>= 0; default 0: reject).
        name: metric prefix (default ``rate_limiter``).
    """

    kind = "rate_limiter"

    def __init__(
        self,
        rate: float,
        burst: float | None = None,
        *,
        max_wait_s: float = 0.0,
        name: str | None = None,
    ):
        super().__init__(name)
        self.rate = check.positive("rate", rate)
        self.burst = max(1.0, self.rate) if burst is None else check.finite("burst", burst)
        if self.burst < 1.0:
            raise ConfigError.single("burst", burst, "a number >= 1")
        self.max_wait_s = check.non_negative("max_wait_s", max_wait_s)

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}, burst={self.burst}, name={self.name!r})"

    def _new_state(self, world: World) -> _Bucket:
        return _Bucket(world, self.prefix, self.burst)

    def _refill(self, bucket: _Bucket, node: Node) -> float:
        now = bucket.world.env.now
        elapsed = node.clock.local_duration(now - bucket.last)
        bucket.last = now
        tokens = bucket.tokens + elapsed * self.rate
        if tokens > self.burst:
            tokens = self.burst
        bucket.tokens = tokens
        return tokens

    def try_acquire(self, world: World, node: Node) -> bool:
        """Take a token now if there is one (the server-side and no-wait path)."""
        bucket = self._state_for(world)
        if self._refill(bucket, node) >= 1.0:
            bucket.tokens -= 1.0
            bucket.permitted.value += 1
            return True
        bucket.rejected.value += 1
        return False

    # -- client side --------------------------------------------------------------------

    def invoke(self, call: Call, proceed: Proceed, done: Done) -> None:
        if self.max_wait_s == 0.0:
            if self.try_acquire(call.world, call.source):
                proceed(call, done)
            else:
                done(REJECTED)
            return
        bucket = self._state_for(call.world)
        tokens = self._refill(bucket, call.source)
        wait = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate  # local seconds
        if wait > self.max_wait_s:
            bucket.rejected.value += 1
            done(REJECTED)
            return
        bucket.tokens -= 1.0
        bucket.permitted.value += 1
        if wait == 0.0:
            proceed(call, done)
            return
        bucket.delayed.value += 1
        call.world.schedule(call.source.clock.true_delay(wait), _send, (call, proceed, done))

    # -- server side --------------------------------------------------------------------

    def admit(self, context: Context) -> Result | None:
        return None if self.try_acquire(context.world, context.node) else REJECTED


def _send(arg: tuple[Call, Proceed, Done]) -> None:
    call, proceed, done = arg
    proceed(call, done)
