"""Small helpers shared by the data blocks for waiting on callback-style calls."""

from __future__ import annotations

from typing import TYPE_CHECKING, NoReturn

from sim.call import Done, Result, failure_for

if TYPE_CHECKING:
    import simpy

__all__ = ["raise_for", "result_event"]


def result_event(env: simpy.Environment) -> tuple[simpy.Event, Done]:
    """An event and the ``done`` callback that triggers it with a call's Result."""
    event = env.event()
    done: Done = event.succeed  # type: ignore[assignment]  # succeed returns the event
    return event, done


def raise_for(target: str, result: Result) -> NoReturn:
    """Raise the CallFailed subclass matching a failed ``result``."""
    raise failure_for(target, result)
