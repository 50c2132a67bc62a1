"""Running a generator handler: the :class:`Task` that drives it in place of a SimPy
process, and :class:`ServiceError`, which a handler raises to answer ``error``.

A task behaves like a process (a crash throws ``simpy.Interrupt`` into the handler; a failed
event it yields raises in it), but the service time before it is one heap callback and a
reply to ``ctx.call`` resumes the handler in place, without an event per call.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import simpy

from sim.call import CallFailed, Outcome, Result
from sim.world import _Wake

if TYPE_CHECKING:
    from sim.service import Context, Service

__all__ = ["REPLY", "ServiceError", "Task"]

# What Context.call yields to the Task driving its handler: "resume me with the reply"
REPLY: Any = object()
# Task.target while it waits for its service time to end, and once it has ended
STARTING: Any = object()
ENDED: Any = object()


class ServiceError(Exception):
    """Raised by a handler to answer ``error`` (with ``reason``)."""

    def __init__(self, reason: str = "error"):
        super().__init__(reason)
        self.reason = reason


class Task:
    """Runs a generator handler as SimPy would run it as a process, more cheaply.

    The handler starts when the service time (one heap callback) ends. It may yield any
    SimPy event: the task resumes it with the event's value when the event is processed,
    or throws the event's exception (a copy, as SimPy does) into it. ``ctx.call`` from the
    handler yields :data:`REPLY` instead, and the call's reply resumes the handler in place
    (a reply that comes before the handler yields, a synchronous refusal, is kept in
    ``early``). A crash of the node interrupts the task as SimPy interrupts a process: an
    urgent event throws ``simpy.Interrupt("crash")`` into the handler; if it escapes, the
    request is counted as lost and nobody is answered.

    ``target`` is what the task waits for: :data:`STARTING` (the service time),
    :data:`REPLY`, an event, or None while the handler runs; :data:`ENDED` at the end.
    """

    __slots__ = ("context", "early", "generator", "is_alive", "service", "target")

    def __init__(self, service: Service, context: Context):
        self.service = service
        self.context = context
        self.generator: Generator[Any, Any, Any] | None = None
        self.target: Any = STARTING
        self.early: Result | None = None
        self.is_alive = True

    def step(self, value: Any, error: BaseException | None) -> None:
        """Run the handler until it waits (or ends), sending ``value`` or throwing
        ``error`` into it."""
        generator = self.generator
        assert generator is not None
        try:
            while True:
                if error is None:
                    target = generator.send(value)
                else:
                    target, error = generator.throw(error), None
                if target is REPLY:
                    early = self.early
                    if early is None:
                        self.target = REPLY
                        return
                    self.early = None
                    value = early
                    continue
                try:
                    callbacks = target.callbacks
                except AttributeError:
                    raise RuntimeError(
                        f"{self.context.endpoint.address}: a handler yielded {target!r}, "
                        "not a SimPy event"
                    ) from None
                if callbacks is not None:  # not processed yet: wait for it
                    callbacks.append(self.resume)
                    self.target = target
                    return
                if target._ok:  # processed already: go on at once, as SimPy does
                    value = target._value
                else:
                    target._defused = True
                    error = _copy(target._value)
        except StopIteration as stop:
            outcome = Outcome.DEGRADED if self.context.degraded else Outcome.OK
            result = Result(outcome, stop.value)
        except ServiceError as failure:
            result = Result(Outcome.ERROR, reason=failure.reason)
        except CallFailed as failure:
            result = Result(Outcome.ERROR, reason=f"{failure.target}: {failure.outcome}")
        except simpy.Interrupt:
            self.die()
            return
        self.end(result)

    def resume(self, event: simpy.Event) -> None:
        """The event the handler waits for was processed."""
        self.target = None
        if event._ok:
            self.step(event._value, None)
        else:
            event._defused = True
            self.step(None, _copy(event._value))

    def reply(self, result: Result) -> None:
        """The ``done`` of a call made by the handler with ``ctx.call``."""
        target = self.target
        if target is REPLY:
            self.target = None
            self.step(result, None)
        elif target is None and self.context._task is self:
            self.early = result  # before the handler yielded: it goes on when it does

    def interrupt(self, cause: Any = None) -> None:
        """Throw ``simpy.Interrupt(cause)`` into the handler, urgently (SimPy's way)."""
        _Wake.first(self.service.world.env, self._interrupted, cause)

    def _interrupted(self, event: _Wake) -> None:
        if not self.is_alive:
            return
        target = self.target
        if target is STARTING:
            self.die()
            return
        # From now on the handler's calls wait on SimPy events and late replies are ignored.
        self.context._task = None
        if target is not REPLY:
            target.callbacks.remove(self.resume)
        self.target = None
        self.step(None, simpy.Interrupt(event.arg))

    def die(self) -> None:
        """Lost in a crash: nobody is answered."""
        self.is_alive = False
        self.target = ENDED
        self.context._task = None
        service = self.service
        service.lost.value += 1
        service.node.processes.pop(self, None)

    def end(self, result: Result) -> None:
        """Answer with ``result``."""
        self.is_alive = False
        self.target = ENDED
        context = self.context
        context._task = None  # no cycle left for the garbage collector
        service = self.service
        service.node.processes.pop(self, None)
        service.pool.release()
        service._respond(context, result)


def _copy(error: BaseException) -> BaseException:
    """The copy of a failed event's exception that SimPy throws into a process."""
    copy = type(error)(*error.args)
    copy.__cause__ = error
    return copy
