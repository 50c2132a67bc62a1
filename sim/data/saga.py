"""The saga orchestrator: ordered steps, compensations in reverse, progress in a database.

A saga runs its :class:`SagaStep` s in order; each step is a call to a participant through
the step's own policy pipeline. If a step fails, it and the steps before it are compensated
in reverse order. A compensation is retried until it succeeds (capped exponential backoff on
the orchestrator's clock): a saga either commits, or ends with every step that may have
happened compensated.

The failed step is compensated too, because a failure does not prove that the step did not
happen: a timed-out request may have run, and when the network duplicates a request, one
copy may answer ``error`` while another copy acts (hypothesis found exactly that). A
participant that receives a compensation for a step it never performed records a tombstone
and does nothing, and refuses the action if it arrives later (see
:class:`sim.data.participant.Participant`), so compensating a step that did not happen is
harmless.

Every step call carries the key ``(saga name, saga id, step name)``, the same on every
re-send, so participants can deduplicate.

Durability: with a ``store`` (a :class:`~sim.data.database.Database` or
:class:`~sim.data.tables.Table`), the saga's record is written once per state transition:
when it is created, after every step (the last step's write also commits the saga), after
every compensation (the last one's also ends it), compare-and-set on its version, retried
until the write succeeds. When the orchestrator's node crashes its sagas stop; when it comes
back it scans its records and resumes every unfinished saga from its last written record,
re-sending a step whose result it had not saved. Without a store the records live in memory
and a crash loses the sagas in flight: they stay unfinished. A model that keeps its
progress elsewhere (an event stream per saga, the owner's own order row) passes a ``log``
instead: any object with the :class:`SagaLog` methods; :class:`StoreLog` is the default.

Local steps: a step whose action (or compensation) is a function rather than an endpoint
runs inside the orchestrator, without a call: the work of the orchestrator's own service
(``fn(StepRequest) -> value``, raising :class:`~sim.service.ServiceError` to fail), made
durable by the saga's next write. A service that owns its saga starts it with
:meth:`SagaOrchestrator.begin` from a handler on the same node, also without a call.

Starting: ``<name>.start`` with the saga's data as payload; the call's key is the saga id
(the workload's request id, or an idempotency key), so a duplicated or retried start joins
the saga already running instead of starting another. With ``wait=True`` the reply comes
when the saga ends: ``ok`` with value ``"committed"``, or ``error`` with reason
``"compensated"``; with ``wait=False`` the reply is ``"accepted"`` once the record is saved.

Measured (``saga.<name>.*``, see :class:`SagaTracker`): started, committed, compensated,
stuck (unfinished ``stuck_after_s`` after they began; also ``anomaly.stuck_sagas``), duration,
``step_failures.<step>``, ``compensations``, ``compensation_retries``, ``persist_retries``,
``resumed``.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

import simpy

from sim import check
from sim.call import Caller, CallFailed, Outcome, Pipeline, Policy, Result, start_call
from sim.data._calls import result_event
from sim.data.database import Database, is_conflict
from sim.data.participant import StepRequest
from sim.distributions import Constant
from sim.errors import ConfigError
from sim.service import Context, Service, ServiceError

if TYPE_CHECKING:
    from sim.data.tables import Table
    from sim.node import Node
    from sim.world import World

__all__ = [
    "COMMITTED",
    "COMPENSATED",
    "COMPENSATING",
    "RUNNING",
    "SagaLog",
    "SagaOrchestrator",
    "SagaRecord",
    "SagaStep",
    "SagaTracker",
    "StoreLog",
]

RUNNING = "running"
COMPENSATING = "compensating"
COMMITTED = "committed"
COMPENSATED = "compensated"
FINAL = frozenset({COMMITTED, COMPENSATED})
LocalAction = Callable[[StepRequest], Any]


@dataclass(frozen=True)
class SagaStep:
    """One step of a saga.

    Attributes:
        name: the step's name (unique in its saga).
        action: the participant endpoint that performs it, or a function run in the
            orchestrator (a local step, see the module docs).
        compensation: the endpoint (or function) that undoes it (None: nothing to undo).
        policy: client policies of each action call (e.g. ``[Timeout(1.0)]``).
        compensation_policy: client policies of each compensation attempt.
        payload: builds the step's data from the saga's data (default: the saga's data).
    """

    name: str
    action: str | LocalAction
    compensation: str | LocalAction | None = None
    policy: Pipeline | Sequence[Policy] = ()
    compensation_policy: Pipeline | Sequence[Policy] = ()
    payload: Callable[[Any], Any] | None = None


@dataclass(frozen=True)
class SagaRecord:
    """A saga's persisted progress.

    Attributes:
        id: the saga id.
        data: the saga's input.
        state: running, compensating, committed or compensated.
        step: index of the next step to run.
        done: indexes of steps attempted (they did, or may have, happened), in order.
        to_compensate: indexes still to compensate, next first.
        failed: index of the step that failed, if one did.
        started_at: true time the saga began.
        compensated: indexes compensated so far, in order.
    """

    id: Any
    data: Any
    state: str = RUNNING
    step: int = 0
    done: tuple[int, ...] = ()
    to_compensate: tuple[int, ...] = ()
    failed: int | None = None
    started_at: float = 0.0
    compensated: tuple[int, ...] = ()


class SagaLog(Protocol):
    """Where an orchestrator keeps its sagas' records. Each method makes its calls from
    ``caller`` (the orchestrator's node) and raises :class:`~sim.call.CallFailed` when
    one fails; the orchestrator retries."""

    def write(
        self, caller: Caller, record: SagaRecord, version: int
    ) -> Generator[simpy.Event, Any, int]:
        """Save ``record`` if the saga's record is still at ``version`` (0: none yet);
        returns the new version. Another version raises CallError("conflict")."""
        ...

    def read(self, caller: Caller, saga_id: Any) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        """The saga's record (None if there is none) and its version."""
        ...

    def scan(self, caller: Caller) -> Generator[simpy.Event, Any, list[tuple[SagaRecord, int]]]:
        """Every saga's record and version (the orchestrator resumes the unfinished ones)."""
        ...


class StoreLog:
    """The default :class:`SagaLog`: one row per saga, ``("saga", name, id)`` in ``store``,
    written compare-and-set on its version."""

    def __init__(self, store: Database | Table, name: str, timeout_s: float):
        self.store = store
        self.name = name
        self.timeout_s = timeout_s

    def write(
        self, caller: Caller, record: SagaRecord, version: int
    ) -> Generator[simpy.Event, Any, int]:
        saved: int = yield from self.store.put(
            caller, ("saga", self.name, record.id), record, expected_version=version,
            timeout_s=self.timeout_s,
        )  # fmt: skip
        return saved

    def read(self, caller: Caller, saga_id: Any) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        key = ("saga", self.name, saga_id)
        row = yield from self.store.get(caller, key, timeout_s=self.timeout_s)
        return row.value, row.version

    def scan(self, caller: Caller) -> Generator[simpy.Event, Any, list[tuple[SagaRecord, int]]]:
        rows = yield from self.store.scan(caller, ("saga", self.name), timeout_s=self.timeout_s)
        return [(row.value, row.version) for _, row in rows]


class SagaTracker:
    """Outcome bookkeeping shared by orchestrated and choreographed sagas.

    ``begin(id)`` once when a saga starts, ``end(id, outcome)`` when it commits or is
    compensated (later calls for the same id are ignored). A saga still unfinished
    ``stuck_after_s`` after it began counts once as stuck (it may still end later).

    Attributes:
        unfinished: saga id -> true start time, for sagas not ended.
        outcomes: saga id -> final outcome. One entry per saga ever ended: it is what the
            invariant tests check against, and the memory of a run grows with it.
    """

    def __init__(self, world: World, name: str, stuck_after_s: float):
        self.world = world
        self.name = name
        self.stuck_after_s = check.positive(f"{name}.stuck_after_s", stuck_after_s)
        self.unfinished: dict[Any, float] = {}  # saga id -> true start time
        self.outcomes: dict[Any, str] = {}  # saga id -> final outcome
        metrics = world.metrics
        prefix = f"saga.{name}"
        self.started = metrics.counter(f"{prefix}.started")
        self.committed = metrics.counter(f"{prefix}.committed")
        self.compensated = metrics.counter(f"{prefix}.compensated")
        self.stuck = metrics.counter(f"{prefix}.stuck")
        self.duration = metrics.histogram(f"{prefix}.duration")
        self.in_progress = metrics.gauge(f"{prefix}.in_progress")
        self._anomaly_stuck = metrics.counter("anomaly.stuck_sagas")
        # called as on_end(saga_id, outcome) when a saga ends (a model's bookkeeping)
        self.on_end: Callable[[Any, str], None] | None = None

    def begin(self, saga_id: Any, started_at: float | None = None) -> None:
        """A saga began (at true time ``started_at``, default now)."""
        if saga_id in self.unfinished or saga_id in self.outcomes:
            return
        now = self.world.env.now
        began = now if started_at is None else started_at
        self.unfinished[saga_id] = began
        self.started.value += 1
        self.in_progress.add(1)
        self.world.schedule(max(0.0, began + self.stuck_after_s - now), self._check, saga_id)

    def end(self, saga_id: Any, outcome: str) -> None:
        """The saga ended. A saga never begun here (its start was forgotten, but its first
        message had left after all) counts as started now, without a duration."""
        if saga_id in self.outcomes:
            return
        started = self.unfinished.pop(saga_id, None)
        self.outcomes[saga_id] = outcome
        (self.committed if outcome == COMMITTED else self.compensated).value += 1
        if self.on_end is not None:
            self.on_end(saga_id, outcome)
        if started is None:
            self.started.value += 1
            return
        self.in_progress.add(-1)
        self.duration.record(self.world.env.now - started)

    def forget(self, saga_id: Any) -> None:
        """The saga did not start after all, as far as anyone can tell (its first message
        never left, or its start died in a crash)."""
        if self.unfinished.pop(saga_id, None) is not None:
            self.started.value = max(0, self.started.value - 1)  # 0 if reset since
            self.in_progress.add(-1)

    def _check(self, saga_id: Any) -> None:
        if saga_id in self.unfinished:
            self.stuck.value += 1
            self._anomaly_stuck.value += 1

    def stuck_now(self) -> int:
        """Sagas unfinished for longer than ``stuck_after_s`` now."""
        limit = self.world.env.now - self.stuck_after_s
        return sum(1 for began in self.unfinished.values() if began <= limit)


class SagaOrchestrator:
    """Runs sagas of ``steps`` on ``node``.

    Args:
        world: the run.
        name: service name (``<name>.start``) and metrics prefix (``saga.<name>``).
        node: where the orchestrator runs.
        steps: the saga's steps, in order.
        store: where progress is saved (None: in memory, lost in a crash).
        log: where progress is saved, instead of ``store`` (a :class:`SagaLog`).
        workers: start requests handled at once.
        wait: the start call answers when the saga ends (True) or once it is saved.
        compensation_retry_s, compensation_retry_max_s: first and largest wait between
            compensation attempts (node clock).
        persist_retry_s: wait between attempts to save progress.
        persist_timeout_s: timeout of each database call.
        stuck_after_s: a saga unfinished this long after it began counts as stuck.
    """

    def __init__(
        self,
        world: World,
        name: str,
        node: Node,
        steps: Sequence[SagaStep],
        *,
        store: Database | Table | None = None,
        log: SagaLog | None = None,
        workers: int = 64,
        wait: bool = True,
        compensation_retry_s: float = 0.5,
        compensation_retry_max_s: float = 30.0,
        persist_retry_s: float = 0.5,
        persist_timeout_s: float = 1.0,
        stuck_after_s: float = 300.0,
    ):
        self.steps = tuple(steps)
        _validate_steps(name, self.steps)
        self.world = world
        self.name = name
        self.node = node
        self.store = store
        if store is not None and log is not None:
            raise ConfigError.single(f"{name}.log", log, "None when a store is given")
        self.wait = bool(wait)
        self.compensation_retry_s = check.positive(
            f"{name}.compensation_retry_s", compensation_retry_s
        )
        self.compensation_retry_max_s = check.positive(
            f"{name}.compensation_retry_max_s", compensation_retry_max_s
        )
        self.persist_retry_s = check.positive(f"{name}.persist_retry_s", persist_retry_s)
        self.persist_timeout_s = check.positive(f"{name}.persist_timeout_s", persist_timeout_s)
        self.log: SagaLog | None = log
        if store is not None:
            self.log = StoreLog(store, name, self.persist_timeout_s)
        self.tracker = SagaTracker(world, name, stuck_after_s)
        self.caller = Caller(world, node)
        self._actions = [self._pipeline(step.policy) for step in self.steps]
        self._compensations = [self._pipeline(step.compensation_policy) for step in self.steps]
        self.service = Service(world, name, node, workers=workers)
        self.service.endpoint("start", Constant(0.0), handler=self._start)
        self.memory: dict[Any, tuple[SagaRecord, int]] = {}  # records when there is no store
        self._running: dict[Any, simpy.Event] = {}  # saga id -> fires with the final record
        # called as on_begin(record) when a saga begins here, created or resumed (before
        # its first step runs; possibly more than once per saga): a model's bookkeeping
        self.on_begin: Callable[[SagaRecord], None] | None = None
        metrics = world.metrics
        prefix = f"saga.{name}"
        self.compensations = metrics.counter(f"{prefix}.compensations")
        self.compensation_retries = metrics.counter(f"{prefix}.compensation_retries")
        self.persist_retries = metrics.counter(f"{prefix}.persist_retries")
        self.resumed = metrics.counter(f"{prefix}.resumed")
        self.step_failures = {
            step.name: metrics.counter(f"{prefix}.step_failures.{step.name}") for step in self.steps
        }
        node.on_crash(self._on_crash)
        node.on_recover(self._on_recover)

    def __repr__(self) -> str:
        return f"SagaOrchestrator({self.name!r} on {self.node.name})"

    @property
    def address(self) -> str:
        """The start endpoint."""
        return f"{self.name}.start"

    def _pipeline(self, policy: Pipeline | Sequence[Policy]) -> Pipeline:
        return policy if isinstance(policy, Pipeline) else Pipeline(policy)

    # -- starting -------------------------------------------------------------------------

    def _start(self, ctx: Context, data: Any) -> Generator[simpy.Event, Any, str]:
        saga_id = ctx.key if ctx.key is not None else self.world.new_id()
        reply = yield from self.begin(saga_id, data)
        return reply

    def begin(self, saga_id: Any, data: Any) -> Generator[simpy.Event, Any, str]:
        """Start saga ``saga_id`` with ``data`` (or join it if it exists), as the start
        endpoint does, but from a handler already running on the orchestrator's node: the
        service that owns the saga starting it with a function call. Replies as the start
        endpoint would (raises ServiceError where it answers ``error``)."""
        if saga_id not in self._running:
            record, version = yield from self._create(saga_id, data)
            if record.state in FINAL:
                return _reply(record)
            if saga_id not in self._running:  # another copy may have launched it meanwhile
                self._launch(record, version)
        if not self.wait:
            return "accepted"
        final: SagaRecord = yield self._running[saga_id]
        return _reply(final)

    def _create(
        self, saga_id: Any, data: Any
    ) -> Generator[simpy.Event, Any, tuple[SagaRecord, int]]:
        record = SagaRecord(saga_id, data, started_at=self.world.env.now)
        if self.log is None:
            found = self.memory.get(saga_id)
            if found is None:
                self.memory[saga_id] = found = (record, 1)
                self._began(record)
            return found
        version = yield from self._persist(record, 0)
        if version is None:  # it existed already: carry on from what was saved
            row = yield from self._read(saga_id)
            existing: SagaRecord = row[0]
            if existing.state not in FINAL and saga_id not in self._running:
                # its creator has not launched it (its write's reply was lost, and it is
                # still finding out, or it died): the caller launches it
                self._began(existing, existing.started_at)
            return existing, row[1]
        self._began(record)
        return record, version

    def _began(self, record: SagaRecord, started_at: float | None = None) -> None:
        self.tracker.begin(record.id, started_at)
        if self.on_begin is not None:
            self.on_begin(record)

    def _launch(self, record: SagaRecord, version: int) -> None:
        self._running[record.id] = self.world.env.event()
        self.node.start_process(self._execute(record, version))

    # -- running --------------------------------------------------------------------------

    def _execute(self, record: SagaRecord, version: int) -> Generator[simpy.Event, Any, None]:
        try:
            while record.state == RUNNING and record.step < len(self.steps):
                record = yield from self._forward(record)
                if record.state == RUNNING and record.step == len(self.steps):
                    record = replace(record, state=COMMITTED)  # one write: last step, commit
                saved = yield from self._save(record, version)
                if saved is None:
                    return
                version = saved
            if record.state == RUNNING:
                record = replace(record, state=COMMITTED)
                saved = yield from self._save(record, version)
                if saved is None:
                    return
                version = saved
            while record.state == COMPENSATING:
                index = record.to_compensate[0]
                yield from self._compensate(record, index)
                left = record.to_compensate[1:]
                record = replace(
                    record, to_compensate=left, compensated=(*record.compensated, index),
                    state=COMPENSATING if left else COMPENSATED,
                )  # fmt: skip
                saved = yield from self._save(record, version)
                if saved is None:
                    return
                version = saved
        except simpy.Interrupt:
            return  # the node crashed: recovery resumes from the saved record
        self.tracker.end(record.id, record.state)
        done = self._running.pop(record.id, None)
        if done is not None:
            done.succeed(record)

    def _forward(self, record: SagaRecord) -> Generator[simpy.Event, Any, SagaRecord]:
        index = record.step
        step = self.steps[index]
        data = step.payload(record.data) if step.payload is not None else record.data
        key = (self.name, record.id, step.name)
        if isinstance(step.action, str):
            result = yield from self._invoke(
                step.action, StepRequest(key, data), self._actions[index], (key, "do")
            )
        else:
            result = _local(step.action, StepRequest(key, data))
        done = (*record.done, index)  # done, or possibly done: see the module docs
        if result.ok:
            return replace(record, step=index + 1, done=done)
        self.step_failures[step.name].value += 1
        undo = tuple(i for i in reversed(done) if self.steps[i].compensation is not None)
        return replace(
            record, state=COMPENSATING if undo else COMPENSATED, step=index + 1, done=done,
            to_compensate=undo, failed=index,
        )  # fmt: skip

    def _compensate(self, record: SagaRecord, index: int) -> Generator[simpy.Event, Any, None]:
        step = self.steps[index]
        assert step.compensation is not None
        data = step.payload(record.data) if step.payload is not None else record.data
        key = (self.name, record.id, step.name)
        wait = self.compensation_retry_s
        self.compensations.value += 1
        while True:
            if isinstance(step.compensation, str):
                result = yield from self._invoke(
                    step.compensation, StepRequest(key, data), self._compensations[index],
                    (key, "undo"),
                )  # fmt: skip
            else:
                result = _local(step.compensation, StepRequest(key, data))
            if result.ok:
                return
            self.compensation_retries.value += 1
            yield self.caller.sleep(wait)
            wait = min(2.0 * wait, self.compensation_retry_max_s)

    def _invoke(
        self, target: str, request: StepRequest, pipeline: Pipeline, key: Any
    ) -> Generator[simpy.Event, Any, Result]:
        event, done = result_event(self.world.env)
        start_call(self.node, self.caller.resolve(target), request, pipeline, done, key=key)
        result: Result = yield event
        return result

    # -- persistence ----------------------------------------------------------------------

    def _save(self, record: SagaRecord, version: int) -> Generator[simpy.Event, Any, int | None]:
        """Save ``record`` over ``version``; None if another executor owns the saga."""
        if self.log is None:
            self.memory[record.id] = (record, version + 1)
            return version + 1
        saved = yield from self._persist(record, version)
        return saved

    def _persist(self, record: SagaRecord, version: int) -> Generator[simpy.Event, Any, int | None]:
        """Write until the database answers; None on a conflict with a different record
        (a conflict with this very record means an earlier attempt's reply was lost)."""
        assert self.log is not None
        while True:
            try:
                saved: int = yield from self.log.write(self.caller, record, version)
                return saved
            except CallFailed as failure:
                if is_conflict(failure):
                    row = yield from self._read(record.id)
                    return row[1] if row[0] == record else None
            self.persist_retries.value += 1
            yield self.caller.sleep(self.persist_retry_s)

    def _read(self, saga_id: Any) -> Generator[simpy.Event, Any, tuple[Any, int]]:
        assert self.log is not None
        while True:
            try:
                row: tuple[Any, int] = yield from self.log.read(self.caller, saga_id)
                return row
            except CallFailed:
                self.persist_retries.value += 1
                yield self.caller.sleep(self.persist_retry_s)

    # -- crash and recovery ---------------------------------------------------------------

    def _on_crash(self) -> None:
        self._running.clear()  # the executors and the callers waiting on them died
        if self.log is None:
            self.memory.clear()

    def _on_recover(self) -> None:
        if self.log is not None:
            self.node.start_process(self._resume())

    def _resume(self) -> Generator[simpy.Event, Any, None]:
        assert self.log is not None
        try:
            while True:
                try:
                    rows = yield from self.log.scan(self.caller)
                    break
                except CallFailed:
                    self.persist_retries.value += 1
                    yield self.caller.sleep(self.persist_retry_s)
        except simpy.Interrupt:
            return  # crashed again: the next recovery scans again
        for record, version in rows:
            if record.state in FINAL:
                # its last write landed, but the crash came before the executor heard so
                self.tracker.end(record.id, record.state)
            elif record.id not in self._running:
                self.resumed.value += 1
                self._began(record, record.started_at)  # its creator may have died
                self._launch(record, version)


def _local(fn: LocalAction, request: StepRequest) -> Result:
    """A local step's action or compensation, as the Result a call would have given."""
    try:
        return Result(Outcome.OK, fn(request))
    except ServiceError as error:
        return Result(Outcome.ERROR, reason=error.reason)


def _reply(record: SagaRecord) -> str:
    if record.state == COMMITTED:
        return COMMITTED
    raise ServiceError(record.state)


def _validate_steps(name: str, steps: tuple[SagaStep, ...]) -> None:
    if not steps:
        raise ConfigError.single(f"{name}.steps", steps, "one or more SagaStep")
    seen: set[str] = set()
    for index, step in enumerate(steps):
        path = f"{name}.steps[{index}]"
        if not isinstance(step, SagaStep):
            raise ConfigError.single(path, step, "a SagaStep")
        if not step.name or step.name in seen:
            raise ConfigError.single(f"{path}.name", step.name, "a unique non-empty name")
        seen.add(step.name)
        for label in ("action", "compensation"):
            target = getattr(step, label)
            if (target is None and label == "compensation") or (
                callable(target) and not isinstance(target, str)
            ):
                continue
            if not isinstance(target, str) or "." not in target:
                raise ConfigError.single(
                    f"{path}.{label}", target, "'service.endpoint' or a function"
                )
