"""Generator handlers, run without a SimPy process: exact logs of what a handler sees.

Links take 10 ms each way unless said otherwise; the api's service time is 50 ms and the
db's 100 ms, so every time below is a sum of those delays (written beside each assertion).
"""

from __future__ import annotations

from typing import Any

import pytest
import simpy

from sim import (
    Caller,
    CallRefused,
    Constant,
    Context,
    Link,
    Outcome,
    Pool,
    PoolRejected,
    Result,
    Service,
    ServiceError,
    World,
)

Log = list[tuple[Any, ...]]


def shop(world: World, handler: Any) -> tuple[Caller, Service, Service]:
    """client -> api (generator ``handler``, 50 ms) -> db (100 ms); links 10 ms."""
    world.network.set_default(Link(Constant(0.010)))
    api = Service(world, "api", world.node("api"), workers=2)
    api.endpoint("get", Constant(0.050), handler=handler)
    db = Service(world, "db", world.node("db"), workers=2)
    db.endpoint("get", Constant(0.100), handler=lambda ctx, payload: f"row{payload}")
    return Caller(world, world.node("client")), api, db


def ask(world: World, caller: Caller, at: float, log: Log, timeout_s: float = 1.0) -> None:
    """Call api.get at ``at``; log the result and when it came."""

    def done(result: Result) -> None:
        log.append(("client", result.outcome.value, result.value, round(world.now, 9)))

    world.at(at, lambda _: caller.start("api.get", 1, done, timeout_s=timeout_s))


def test_a_handler_calls_downstream_and_its_reply_resumes_it() -> None:
    world = World()
    log: Log = []

    def handler(ctx: Context, payload: Any) -> Any:
        log.append(("start", round(world.now, 9)))
        row = yield from ctx.call("db.get", payload)
        log.append(("row", row, round(world.now, 9)))
        result = yield from ctx.call_result("db.get", 2)
        return (row, result.value)

    caller, api, _ = shop(world, handler)
    ask(world, caller, 0.0, log)
    world.run(10)
    # start: 10 ms link + 50 ms service; row: + 10 + 100 + 10; second row: + 120; + 10 back
    assert log == [
        ("start", 0.06),
        ("row", "row1", 0.18),
        ("client", "ok", ("row1", "row2"), 0.31),
    ]
    assert api.pool.busy == 0 and not api.node.processes


def test_a_crash_interrupts_a_handler_waiting_for_a_reply_and_nobody_is_answered() -> None:
    world = World()
    log: Log = []

    def handler(ctx: Context, payload: Any) -> Any:
        try:
            row = yield from ctx.call("db.get", payload)
        except simpy.Interrupt as interrupt:
            log.append(("interrupted", interrupt.cause, round(world.now, 9)))
            raise
        return row

    caller, api, db = shop(world, handler)
    ask(world, caller, 0.0, log)
    world.at(0.1, lambda _: api.node.crash())  # the db's reply would come at 0.18
    world.at(0.2, lambda _: api.node.recover())
    ask(world, caller, 0.3, log)
    world.run(10)
    assert log == [
        ("interrupted", "crash", 0.1),
        ("client", "ok", "row1", 0.49),  # 0.3 + 10 + 50 + 10 + 100 + 10 + 10 ms
        ("client", "timeout", None, 1.0),  # the first call: nobody answers it
    ]
    assert world.metrics.counter("service.api.lost_in_crash").value == 1
    assert db.endpoints["get"].succeeded.value == 2  # the db did the lost request's work
    assert api.pool.busy == 0 and not api.node.processes


def test_a_crash_during_the_service_time_loses_the_request_before_the_handler_starts() -> None:
    world = World()
    log: Log = []

    def handler(ctx: Context, payload: Any) -> Any:
        log.append(("start", round(world.now, 9)))
        return (yield from ctx.call("db.get", payload))

    caller, api, _ = shop(world, handler)
    ask(world, caller, 0.0, log)
    world.at(0.03, lambda _: api.node.crash())  # mid-service (10 to 60 ms)
    world.at(0.04, lambda _: api.node.recover())  # before the service time would end
    world.run(10)
    assert log == [("client", "timeout", None, 1.0)]
    assert world.metrics.counter("service.api.lost_in_crash").value == 1


def test_a_crash_interrupts_a_sleeping_handler_and_one_that_catches_it_goes_on() -> None:
    world = World()
    log: Log = []

    def handler(ctx: Context, payload: Any) -> Any:
        try:
            yield ctx.sleep(1.0)
        except simpy.Interrupt:
            log.append(("interrupted", round(world.now, 9)))
        # caught: the handler goes on (as a SimPy process would); its call waits on an event
        row = yield from ctx.call("db.get", payload)
        log.append(("row", row, round(world.now, 9)))
        return row

    caller, api, _ = shop(world, handler)
    ask(world, caller, 0.0, log, timeout_s=2.0)
    world.at(0.5, lambda _: api.node.crash())
    world.at(0.55, lambda _: api.node.recover())  # back before the db's reply comes
    world.run(10)
    # row: 0.5 + 10 + 100 + 10 ms; the sleep's end at 1.06 resumes nothing
    assert log[:2] == [("interrupted", 0.5), ("row", "row1", 0.62)]
    assert world.metrics.counter("service.api.lost_in_crash").value == 0


def test_a_failed_event_raises_in_the_handler_and_service_error_answers_error() -> None:
    world = World()
    log: Log = []
    connections = Pool(world, "connections", 1, queue_limit=0)

    def handler(ctx: Context, payload: Any) -> Any:
        try:
            yield connections.acquire()
        except PoolRejected as rejection:
            log.append(("rejected", rejection.reason, round(world.now, 9)))
            raise ServiceError("no connection") from rejection
        yield ctx.sleep(0.2)
        connections.release()
        return "served"

    caller, _, _ = shop(world, handler)
    ask(world, caller, 0.0, log)
    ask(world, caller, 0.1, log)  # starts at 0.16 while the first holds the connection
    world.run(10)
    assert log == [
        ("rejected", "queue_full", 0.16),
        ("client", "error", None, 0.17),  # 0.16 + 10 ms
        ("client", "ok", "served", 0.27),  # 0.06 + 200 ms + 10 ms
    ]


def test_a_synchronous_refusal_raises_in_the_handler_at_once() -> None:
    world = World()
    log: Log = []

    def handler(ctx: Context, payload: Any) -> Any:
        try:
            return (yield from ctx.call("db.get", payload))
        except CallRefused:
            log.append(("refused", round(world.now, 9)))
        try:
            return (yield from ctx.call("db.get", payload))  # refused again, at once
        except CallRefused:
            return "fallback"

    caller, _, db = shop(world, handler)
    world.network.set_link("api", "db", Link())  # zero delay: the refusal comes in the call
    db.node.crash()
    ask(world, caller, 0.0, log)
    world.run(10)
    assert log == [("refused", 0.06), ("client", "ok", "fallback", 0.07)]


def test_a_call_failure_that_escapes_answers_error_naming_the_target() -> None:
    world = World()

    def handler(ctx: Context, payload: Any) -> Any:
        return (yield from ctx.call("db.get", payload))

    caller, _, db = shop(world, handler)
    db.node.crash()
    results: list[Result] = []
    world.at(0.0, lambda _: caller.start("api.get", 1, results.append))
    world.run(10)
    assert results == [Result(Outcome.ERROR, reason="db.get: refused")]


def test_a_processed_event_resumes_at_once_and_a_sub_process_may_call_with_the_context() -> None:
    world = World()
    log: Log = []
    fired = world.env.event()
    fired.succeed("early")

    def helper(ctx: Context) -> Any:
        # a process of the handler's own: its calls wait on events, not on the task
        row = yield from ctx.call("db.get", 7)
        return row

    def handler(ctx: Context, payload: Any) -> Any:
        value = yield fired  # processed at time 0: the handler goes on at once
        log.append((value, round(world.now, 9)))
        row = yield ctx.node.start_process(helper(ctx))
        return row

    caller, _, _ = shop(world, handler)
    ask(world, caller, 0.0, log)
    world.run(10)
    assert log == [("early", 0.06), ("client", "ok", "row7", 0.19)]  # 0.06 + 120 + 10 ms


def test_a_handler_that_yields_something_else_stops_the_run() -> None:
    world = World()

    def handler(ctx: Context, payload: Any) -> Any:
        yield 42

    caller, _, _ = shop(world, handler)
    ask(world, caller, 0.0, [])
    with pytest.raises(RuntimeError, match=r"api\.get: a handler yielded 42"):
        world.run(10)
