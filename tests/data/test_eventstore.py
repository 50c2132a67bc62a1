"""The event store: expected versions, idempotent appends, folding and snapshots, timestamp
inversions from skewed clocks, and (hypothesis) replay equals the live state."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sim import Caller, CallError, CallFailed, Constant, Crash, Link, World, inject
from sim.data import ANY, NO_STREAM, Appended, EventStore, RecordedEvent


def balance(state: int, event: RecordedEvent) -> int:
    return state + event.data


def make(world: World, **options: Any) -> tuple[EventStore, Caller]:
    world.network.set_default(Link(Constant(0.001)))
    options.setdefault("append_time", Constant(0.002))
    options.setdefault("read_time", Constant(0.001))
    store = EventStore(world, "es", world.node("es"), fold=balance, initial=0, **options)
    return store, Caller(world, world.node("app"))


def test_appends_check_the_expected_version() -> None:
    world = World()
    store, app = make(world)
    log: list[object] = []

    def script():  # type: ignore[no-untyped-def]
        log.append((yield from store.append(app, "acct-1", [10, 5], NO_STREAM)))
        log.append((yield from store.append(app, "acct-2", [1], NO_STREAM)))
        try:
            yield from store.append(app, "acct-1", [1], NO_STREAM)
        except CallError as error:
            log.append(error.reason)
        log.append((yield from store.append(app, "acct-1", [-3], 2)))
        log.append((yield from store.append(app, "acct-1", [1], ANY)))
        events = yield from store.read(app, "acct-1", 3)
        log.append([(e.version, e.position, e.data) for e in events])

    world.env.process(script())
    world.run(5)
    assert log == [
        Appended(2, 2),
        Appended(1, 3),
        "conflict",
        Appended(3, 4),
        Appended(4, 5),
        [(3, 4, -3), (4, 5, 1)],
    ]
    assert store.rebuild("acct-1") == 13


def test_a_resent_append_is_answered_once_not_written_twice() -> None:
    world = World()
    store, app = make(world)
    world.network.set_default(Link(Constant(0.001), duplicate=1.0))  # every message twice
    results: list[Appended] = []

    def script():  # type: ignore[no-untyped-def]
        results.append((yield from store.append(app, "s", [1], NO_STREAM)))

    world.env.process(script())
    world.run(5)
    assert results == [Appended(1, 1)]
    assert store.version("s") == 1
    assert world.metrics.counter("db.es.duplicate_appends").value == 1


def load_after_25_events(snapshot_every: int | None) -> tuple[Any, float]:
    world = World()
    store, app = make(world, snapshot_every=snapshot_every, per_event_s=0.001)
    loaded: list[tuple[Any, float]] = []

    def script():  # type: ignore[no-untyped-def]
        for n in range(25):
            yield from store.append(app, "s", [n])
        start = world.now
        state = yield from store.load(app, "s")
        loaded.append((state, round(world.now - start, 9)))

    world.env.process(script())
    world.run(10)
    return loaded[0]


def test_snapshots_make_loading_fold_fewer_events_and_give_the_same_state() -> None:
    loaded = {every: load_after_25_events(every) for every in (None, 10)}
    assert loaded[None][0] == loaded[10][0] == (sum(range(25)), 25)
    # 1 ms each way + 1 ms read + 1 ms per event folded: 25 events, or 5 after the snapshot
    assert loaded[None][1] == 0.028 and loaded[10][1] == 0.008


def alternate_writers(offset_s: float) -> tuple[World, EventStore]:
    """Two writers take turns; one's clock is ``offset_s`` off."""
    world = World()
    store, _ = make(world)
    skewed = Caller(world, world.node("skewed", offset_s=offset_s))
    true = Caller(world, world.node("true"))

    def script():  # type: ignore[no-untyped-def]
        for writer in (skewed, true, skewed, true, skewed):
            yield from store.append(writer, "s", ["x"])

    world.env.process(script())
    world.run(5)
    return world, store


def test_skewed_writer_clocks_invert_timestamp_order() -> None:
    for offset in (0.0, -0.5):
        world, store = alternate_writers(offset)
        stamps = [e.timestamp for e in store.log]
        inversions = world.metrics.counter("db.es.inversions").value
        # each write starts 4 ms after the previous; a 0.5 s slow clock puts its events
        # before the other writer's earlier ones every time it writes after it
        assert inversions == (0 if offset == 0 else 2)
        assert inversions == sum(1 for i, t in enumerate(stamps) if t < max(stamps[:i] or [t]))


# -- replaying the store gives the live state (hypothesis over seeds and faults) -----------


def bank(seed: int, crash_at: float, crash_for: float, loss: float, duplicate: float) -> None:
    """Tellers deposit and withdraw on shared accounts with optimistic concurrency.

    A teller loads an account, decides (no overdraft), and appends with the version it
    loaded; on a conflict it reloads and decides again; on any other failure it re-sends
    the same append (same append id) until it is answered. The live state is what the
    tellers were told: the sum of acknowledged amounts per account.
    """
    world = World(seed=seed)
    world.network.set_default(Link(Constant(0.002), loss=loss, duplicate=duplicate))
    store = EventStore(
        world, "es", world.node("es"), fold=balance, initial=0, snapshot_every=4,
        append_time=Constant(0.002), read_time=Constant(0.001),
    )  # fmt: skip
    live: dict[str, int] = {"a": 0, "b": 0}
    rng = world.stream("test.commands")
    finished = []

    def teller(name: str):  # type: ignore[no-untyped-def]
        caller = Caller(world, world.node(name))
        for _ in range(12):
            account = "ab"[int(rng.integers(2))]
            amount = int(rng.integers(-20, 30))
            while True:  # until this command is decided and acknowledged
                try:
                    state, version = yield from store.load(caller, account, timeout_s=0.5)
                except CallFailed:
                    yield caller.sleep(0.1)
                    continue
                if state + amount < 0:
                    break  # refused: no overdraft
                append_id = world.new_id()
                outcome = yield from append_until_answered(caller, account, amount, version,
                                                           append_id)  # fmt: skip
                if outcome == "ok":
                    live[account] += amount
                    break
        finished.append(name)

    def append_until_answered(caller, account, amount, version, append_id):  # type: ignore[no-untyped-def]
        while True:
            try:
                yield from store.append(caller, account, [amount], version,
                                        append_id=append_id, timeout_s=0.5)  # fmt: skip
                return "ok"
            except CallError as error:
                if error.reason == "conflict":
                    return "conflict"
            except CallFailed:
                pass
            yield caller.sleep(0.1)

    for n in range(3):
        world.env.process(teller(f"teller{n}"))
    inject(world, Crash("es"), at_s=crash_at, duration_s=crash_for)
    world.run(600)
    assert len(finished) == 3
    for account in live:
        replayed = store.rebuild(account)
        assert replayed == live[account]
        assert replayed >= 0
        state, version = store.snapshots.get(account, (0, 0))
        for event in store.streams.get(account, [])[version:]:
            state = balance(state, event)
        assert state == replayed  # snapshot plus tail equals a full replay
        running = 0
        for event in store.streams.get(account, []):
            running += event.data
            assert running >= 0  # no overdraft at any point: concurrency control held


@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    crash_at=st.floats(0.0, 1.0),
    crash_for=st.floats(0.01, 3.0),
    loss=st.sampled_from([0.0, 0.05, 0.2]),
    duplicate=st.sampled_from([0.0, 0.1, 0.5]),
)
def test_replaying_the_store_gives_the_live_state(
    seed: int, crash_at: float, crash_for: float, loss: float, duplicate: float
) -> None:
    bank(seed, crash_at, crash_for, loss, duplicate)
