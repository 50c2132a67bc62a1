"""The event bus: groups, at-least-once delivery, redelivery, dead letters, ordering,
concurrency, broker outages, and duplicates against the link's duplication probability."""

from __future__ import annotations

import math
from typing import Any

import pytest

from sim import (
    CallRefused,
    Constant,
    Crash,
    Link,
    Outcome,
    Service,
    ServiceError,
    World,
    inject,
)
from sim.data import Delivery, EffectLog, EventBus, Inbox


def setup(world: World, latency: float = 0.001, **link: Any) -> EventBus:
    world.network.set_default(Link(Constant(latency), **link))
    return EventBus(world, "bus", world.node("broker"), publish_time=Constant(0.001))


def consumer(world: World, name: str, handler: Any, *, workers: int = 8, time: float = 0.002):
    service = Service(world, name, world.node(name), workers=workers)
    return service.endpoint("on_event", Constant(time), handler=handler)


def publish_all(world: World, bus: EventBus, items: list[Any], topic: str = "t", **options: Any):
    publisher = bus.publisher(world.node("app"), **options)

    def script():  # type: ignore[no-untyped-def]
        for item in items:
            key = item[0] if isinstance(item, tuple) else None
            yield from publisher.publish(topic, item, key=key)

    world.env.process(script())
    return publisher


def test_every_group_gets_every_message_and_a_groups_members_share_them() -> None:
    world = World()
    bus = setup(world)
    seen: dict[str, list[int]] = {"a1": [], "a2": [], "b": []}
    for name in seen:
        consumer(world, name, lambda ctx, d, name=name: seen[name].append(d.message.payload))
    bus.subscribe("t", "group_a", ["a1.on_event", "a2.on_event"])
    bus.subscribe("t", "group_b", "b.on_event")
    publish_all(world, bus, list(range(6)))
    world.run(10)
    assert sorted(seen["a1"] + seen["a2"]) == list(range(6))
    assert seen["a1"] and seen["a2"]  # round robin shares the group's messages
    assert seen["b"] == list(range(6))
    assert world.metrics.counter("bus.bus.acked").value == 12


def test_an_ack_that_comes_after_the_timeout_means_a_redelivery_and_a_duplicate() -> None:
    world = World()
    bus = setup(world)
    effects = EffectLog(world, "mail")
    log: list[tuple[int, float]] = []

    def slow_first(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        if delivery.attempt == 1:
            yield ctx.sleep(1.5)  # longer than the 1 s ack timeout
        effects.record(delivery.message.id)
        log.append((delivery.attempt, round(world.now, 9)))

    consumer(world, "mailer", slow_first)
    bus.subscribe("t", "mail", "mailer.on_event", ack_timeout_s=1.0)
    publish_all(world, bus, ["hello"])
    world.run(10)
    # published at 0.003 (1 ms link, 1 ms publish, 1 ms link... the broker enqueues at 0.002),
    # attempt 1 arrives at 0.003 and ends 2 ms + 1.5 s later; attempt 2 goes at 1.002
    assert log == [(2, 1.005), (1, 1.505)]
    assert effects.duplicates.value == 1
    assert world.metrics.counter("bus.bus.redeliveries").value == 1
    assert world.metrics.counter("calls.late_replies").value == 1
    assert world.metrics.counter("bus.bus.acked").value == 1


def test_a_message_that_keeps_failing_goes_to_the_dead_letter_queue() -> None:
    world = World()
    bus = setup(world)
    attempts: list[int] = []

    def picky(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        attempts.append(delivery.attempt)
        if delivery.message.payload == "poison":
            raise ServiceError("cannot parse")

    consumer(world, "c", picky)
    sub = bus.subscribe("t", "g", "c.on_event", max_deliveries=3, redelivery_delay_s=0.5)
    publish_all(world, bus, ["poison", "fine"])
    world.run(10)
    assert [m.payload for m in sub.dead_letters] == ["poison"]
    assert attempts.count(1) == 2 and attempts.count(2) == 1 and attempts.count(3) == 1
    assert sub.backlog() == 0
    assert world.metrics.counter("bus.bus.dead_letters").value == 1
    assert world.metrics.gauge("bus.bus.backlog").value == 0


@pytest.mark.parametrize("ordered", [True, False])
def test_per_key_ordering_survives_failures_and_concurrency(ordered: bool) -> None:
    world = World(seed=5)
    bus = setup(world, latency=0.001)
    handled: dict[str, list[int]] = {}
    chance = world.stream("test.failures")

    def flaky(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        if chance.random() < 0.3:
            raise ServiceError("flaky")
        key, number = delivery.message.payload
        handled.setdefault(key, []).append(number)

    consumer(world, "c1", flaky, workers=8)
    consumer(world, "c2", flaky, workers=8)
    bus.subscribe(
        "t", "g", ["c1.on_event", "c2.on_event"], ordered=ordered, concurrency=6,
        max_deliveries=50,
    )  # fmt: skip
    items = [(key, n) for n in range(30) for key in "abc"]
    publish_all(world, bus, items)
    world.run(60)
    assert {k: sorted(v) for k, v in handled.items()} == {k: list(range(30)) for k in "abc"}
    in_order = all(v == sorted(v) for v in handled.values())
    # Without ordering, a failed message is retried after later ones: order breaks.
    assert in_order is ordered


def test_concurrency_bounds_the_deliveries_in_flight() -> None:
    world = World()
    bus = setup(world)
    busy = {"now": 0, "max": 0}

    def slow(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        busy["now"] += 1
        busy["max"] = max(busy["max"], busy["now"])
        yield ctx.sleep(0.1)
        busy["now"] -= 1

    consumer(world, "c", slow, workers=100)
    bus.subscribe("t", "g", "c.on_event", concurrency=3)
    publish_all(world, bus, list(range(20)))
    world.run(10)
    assert busy["max"] == 3
    assert world.metrics.counter("bus.bus.acked").value == 20


def publish_during_outage(mode: str) -> tuple[EventBus, list[str], list[tuple[int, float]]]:
    """Publish three messages while the broker is down for the first 2 s."""
    world = World()
    bus = setup(world)
    got: list[tuple[int, float]] = []
    consumer(world, "c", lambda ctx, d: got.append((d.message.payload, world.now)))
    bus.subscribe("t", "g", "c.on_event")
    publisher = bus.publisher(world.node("app"), on_outage=mode, retry_interval_s=0.5)
    outcomes: list[str] = []

    def script():  # type: ignore[no-untyped-def]
        for n in range(3):
            try:
                yield from publisher.publish("t", n)
                outcomes.append("ok")
            except CallRefused:
                outcomes.append("refused")

    inject(world, Crash("broker"), at_s=0.0, duration_s=2.0)
    world.env.process(script())
    world.run(10)
    return bus, outcomes, got


def test_broker_outage_makes_publishers_fail_or_buffer_by_configuration() -> None:
    for mode in ("fail", "buffer"):
        bus, outcomes, got = publish_during_outage(mode)
        if mode == "fail":
            assert outcomes == ["refused"] * 3 and got == []
        else:
            assert outcomes == ["ok"] * 3  # buffered at once, as a producer's send() is
            assert sorted(n for n, _ in got) == [0, 1, 2]
            assert all(t > 2.0 for _, t in got)  # delivered after the broker came back
            assert bus.delivery_lag.minimum > 2.0 - 0.01


def test_a_publisher_crash_loses_its_buffer() -> None:
    world = World()
    bus = setup(world)
    publisher = bus.publisher(world.node("app"), on_outage="buffer")
    world.nodes["broker"].crash()
    for n in range(4):
        publisher.send("t", n)
    world.at(1.0, lambda _: world.nodes["app"].crash())
    world.run(5)
    assert world.metrics.counter("bus.bus.lost").value == 4
    assert publisher.buffer == type(publisher.buffer)()


@pytest.mark.parametrize("durable", [True, False])
def test_a_durable_broker_keeps_its_queues_through_a_crash(durable: bool) -> None:
    world = World()
    world.network.set_default(Link(Constant(0.001)))
    bus = EventBus(world, "bus", world.node("broker"), publish_time=Constant(0.001),
                   durable=durable)  # fmt: skip
    got: list[int] = []

    def slow(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        yield ctx.sleep(0.5)
        got.append(delivery.message.payload)

    consumer(world, "c", slow)
    bus.subscribe("t", "g", "c.on_event", concurrency=1, ack_timeout_s=2.0)
    publish_all(world, bus, [0, 1, 2])
    inject(world, Crash("broker"), at_s=0.3, duration_s=1.0)  # message 0 is in flight
    world.run(20)
    if durable:
        # message 0 was handled, but its ack died with the broker: it comes again
        assert sorted(got) == [0, 0, 1, 2]
        assert world.metrics.counter("bus.bus.lost").value == 0
    else:
        assert got == [0]
        assert world.metrics.counter("bus.bus.lost").value == 3


def delivered_effects(seed: int, duplicate: float, loss: float, *, dedupe: bool) -> EffectLog:
    world = World(seed=seed)
    bus = setup(world, duplicate=duplicate, loss=loss)
    effects = EffectLog(world, "effects")
    inbox = Inbox(world, "mailer", enabled=dedupe)

    def handle(ctx, delivery: Delivery):  # type: ignore[no-untyped-def]
        inbox.once(ctx.key, lambda: effects.record(delivery.message.id))

    consumer(world, "mailer", handle, workers=50)
    bus.subscribe("t", "g", "mailer.on_event", concurrency=50, ack_timeout_s=1.0,
                  max_deliveries=100)  # fmt: skip
    publisher = bus.publisher(world.node("app"), on_outage="buffer", max_in_flight=50)
    for n in range(MESSAGES):
        world.at(n * 0.01, lambda _, n=n: publisher.send("t", n))
    world.run(MESSAGES * 0.01 + 120)
    assert effects.distinct == MESSAGES  # at least once: every message had its effect
    return effects


MESSAGES = 4000


def test_without_idempotency_duplicates_match_the_links_duplication_probability() -> None:
    p = 0.05
    effects = delivered_effects(1, p, 0.0, dedupe=False)
    # Each delivery request is copied with probability p; the consumer acts on both copies,
    # and nothing else causes a second effect (no loss, acks well within the timeout).
    # Duplicates ~ Binomial(N, p): mean N p, sd sqrt(N p (1 - p)); 3 sd is a 99.7% interval.
    mean = MESSAGES * p
    sd = math.sqrt(MESSAGES * p * (1 - p))
    assert abs(effects.duplicates.value - mean) <= 3 * sd, (effects.duplicates.value, mean)
    assert effects.duplicates.value > 0


def test_with_idempotency_keys_there_are_no_duplicate_side_effects() -> None:
    # Duplicated requests, lost requests and lost acks (redeliveries): still exactly once.
    effects = delivered_effects(2, 0.1, 0.05, dedupe=True)
    assert effects.duplicates.value == 0
    assert all(count == 1 for count in effects.counts.values())


def test_consumer_down_means_redelivery_after_it_recovers() -> None:
    world = World()
    bus = setup(world)
    got: list[float] = []
    consumer(world, "c", lambda ctx, d: got.append(world.now))
    bus.subscribe("t", "g", "c.on_event", redelivery_delay_s=1.0, max_deliveries=10)
    inject(world, Crash("c"), at_s=0.0, duration_s=2.5)
    publish_all(world, bus, ["x"])
    world.run(10)
    assert len(got) == 1 and 2.5 < got[0] < 3.6  # retried each second: the 4th try lands
    refused = world.metrics.counter("service.c.refused").value
    assert refused == 3 and world.metrics.counter("bus.bus.redeliveries").value == 3
    assert Outcome.REFUSED.value == "refused"


def test_the_idempotency_server_policy_also_removes_duplicates() -> None:
    # The same at-least-once stream, deduplicated by sim.policies.Idempotency on the consumer
    # endpoint (keyed by the message id the broker sends as call key) instead of an inbox.
    from sim.policies import Idempotency

    world = World(seed=6)
    bus = setup(world, duplicate=0.2, loss=0.05)
    effects = EffectLog(world, "effects")
    endpoint = consumer(world, "mailer", lambda ctx, d: effects.record(d.message.id), workers=50)
    endpoint.add_policy(Idempotency())
    bus.subscribe("t", "g", "mailer.on_event", concurrency=50, ack_timeout_s=1.0,
                  max_deliveries=100)  # fmt: skip
    publish_all(world, bus, list(range(500)), on_outage="buffer")  # it re-sends lost publishes
    world.run(300)
    assert effects.distinct == 500
    assert effects.duplicates.value == 0
