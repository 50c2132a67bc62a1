"""Server-side policies as exact event logs: load shedding and idempotency."""

from __future__ import annotations

from sim.policies import Idempotency, LoadShedder, Retry, Timeout
from tests.policies.helpers import Script


def test_shedder_rejects_arrivals_behind_a_full_queue() -> None:
    s = Script(workers=1)
    s.endpoint.add_policy(LoadShedder(max_queue=1))
    for label, at in [("a", 0.0), ("b", 0.01), ("c", 0.02), ("d", 0.25)]:
        s.send(at, label, "ok")
    assert s.run() == [
        (0.02, "c", "rejected", "shed"),  # a is served, b waits: c would wait behind b
        (0.1, "a", "ok", "ok"),
        (0.2, "b", "ok", "ok"),
        (0.35, "d", "ok", "ok"),
    ]
    assert s.counter("policy.load_shedder.shed.queue_length") == 1


def test_shedder_rejects_requests_that_waited_too_long() -> None:
    s = Script(workers=1)
    s.endpoint.add_policy(LoadShedder(max_queue_time_s=0.15))
    for label in "abc":
        s.send(0.0, label, "ok")
    # b starts at 0.1 (waited 0.1); c would start at 0.2 (waited 0.2 > 0.15): shed then
    assert sorted(s.run()) == [
        (0.1, "a", "ok", "ok"),
        (0.2, "b", "ok", "ok"),
        (0.2, "c", "rejected", "shed"),
    ]
    assert s.counter("policy.load_shedder.shed.queue_time") == 1


def test_codel_sheds_at_the_target_only_under_a_standing_queue() -> None:
    s = Script(workers=1, service_time=0.01)
    s.endpoint.add_policy(LoadShedder(codel=True, codel_target_s=0.005, codel_interval_s=0.1))
    # A burst of 30 at once: the queue stays non-empty; until it has been so for 0.1 s a
    # request is shed only after waiting 0.1 s, afterwards after 5 ms.
    for i in range(30):
        s.send(0.0, f"c{i:02}", "ok")
    log = s.run()
    served = [label for _, label, outcome, _ in log if outcome == "ok"]
    shed = sorted((t, label) for t, label, outcome, _ in log if outcome == "rejected")
    # c00..c10 start within 0.1 s (c10 waited exactly 0.1: not more); c11 waited 0.11 >
    # 0.1 and every later one is shed at 0.11 too, the queue standing since 0.
    assert served == [f"c{i:02}" for i in range(11)]
    assert shed == [(0.11, f"c{i:02}") for i in range(11, 30)]


def test_idempotency_serves_the_stored_reply_and_rejects_concurrent_duplicates() -> None:
    s = Script(workers=2)
    s.endpoint.add_policy(Idempotency(ttl_s=10))
    s.send(0.0, "first", "ok", key="k")
    s.send(0.05, "concurrent", "ok", key="k")  # the first is still executing
    s.send(1.0, "later", "ok", key="k")  # the stored reply, without running again
    s.send(11.0, "expired", "ok", key="k")  # stored at 0.1, expired at 10.1: runs again
    assert s.run() == [
        (0.05, "concurrent", "rejected", "in_progress"),
        (0.1, "first", "ok", "ok"),
        (1.0, "later", "ok", "ok"),
        (11.1, "expired", "ok", "ok"),
    ]
    assert [t for t, _ in s.received] == [0.0, 11.0]
    assert s.counter("policy.idempotency.duplicates_served") == 1
    assert s.counter("policy.idempotency.duplicate_side_effects") == 0


def test_without_idempotency_retries_of_timed_out_calls_duplicate_side_effects() -> None:
    s = Script(workers=3)
    s.endpoint.add_policy(Idempotency(enabled=False))
    # The timeout (0.05) is shorter than the work (0.1): each retry executes again.
    s.send(0.0, "a", "ok", [Retry(3, base_s=0.0), Timeout(0.05)], key="k")
    log = s.run()
    assert log == [(0.15, "a", "timeout", None)]
    assert len(s.received) == 3
    assert s.counter("policy.idempotency.executions") == 3
    assert s.counter("policy.idempotency.duplicate_side_effects") == 2


def test_idempotency_forgets_executions_lost_in_a_crash() -> None:
    s = Script(workers=1)
    s.endpoint.add_policy(Idempotency())
    s.send(0.0, "lost", "ok", [Timeout(0.2)], key="k")
    s.world.at(0.05, lambda _: s.server.crash())
    s.world.at(0.06, lambda _: s.server.recover())
    s.send(0.3, "retried", "ok", key="k")  # not stuck "in progress" forever
    assert s.run() == [(0.2, "lost", "timeout", None), (0.4, "retried", "ok", "ok")]
