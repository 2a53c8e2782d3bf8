"""The disorder layer: emission order, delays, late events and duplicates."""

from __future__ import annotations

from flink_jobs.sim import Emission, SimConfig, Simulation
from flink_jobs.sim.generator import DUPLICATE_GAP_MS

START_MS = 1_700_000_000_000


def test_emissions_are_sorted_by_emit_time(emissions: list[Emission]) -> None:
    """The stream never goes back in emit_ms."""
    times = [e.emit_ms for e in emissions]
    assert times == sorted(times)


def test_in_order_delay_is_bounded(base_cfg: SimConfig, emissions: list[Emission]) -> None:
    """An on-time original is emitted within out_of_order_ms of its event time."""
    for e in emissions:
        if not e.late and not e.duplicate:
            assert 0 <= e.emit_ms - e.record["event_time"] <= base_cfg.out_of_order_ms


def test_late_delay_is_in_the_late_range(base_cfg: SimConfig, emissions: list[Emission]) -> None:
    """A late original is emitted late_delay_ms after its event time, and late ones exist."""
    low, high = base_cfg.late_delay_ms
    late = [e for e in emissions if e.late and not e.duplicate]
    assert late
    for e in late:
        assert low <= e.emit_ms - e.record["event_time"] <= high


def test_late_copies_are_late_too(base_cfg: SimConfig, emissions: list[Emission]) -> None:
    """Every emission flagged late, copy or not, trails its event time by late_delay_ms[0]."""
    for e in emissions:
        if e.late:
            assert e.emit_ms - e.record["event_time"] >= base_cfg.late_delay_ms[0]


def test_duplicates_are_exact_later_copies(emissions: list[Emission]) -> None:
    """A duplicate repeats an earlier emission's record exactly, at most ~10 s after it."""
    first: dict[tuple[str, str, int], Emission] = {}
    copies = 0
    for e in emissions:
        ident = (e.kind, e.record["event_id"], e.record.get("revision", 0))
        if not e.duplicate:
            assert ident not in first
            first[ident] = e
            continue
        copies += 1
        orig = first[ident]
        assert e.record == orig.record
        assert e.record is not orig.record
        assert (e.kind, e.key, e.late) == (orig.kind, orig.key, orig.late)
        assert 1 <= e.emit_ms - orig.emit_ms <= DUPLICATE_GAP_MS[1]
    assert copies > 0


def test_corrections_and_game_end_are_never_late_or_duplicated(
    emissions: list[Emission],
) -> None:
    """Corrections and GAME_END always arrive once and on time."""
    protected = [
        e
        for e in emissions
        if e.kind == "game" and (e.record["revision"] > 0 or e.record["event_type"] == "GAME_END")
    ]
    assert protected
    assert not any(e.late or e.duplicate for e in protected)


def test_keys_are_entity_ids(emissions: list[Emission]) -> None:
    """Game events are keyed by game_id and interactions by user_id."""
    for e in emissions:
        expected = e.record["game_id"] if e.kind == "game" else e.record["user_id"]
        assert e.kind in ("game", "interaction")
        assert e.key == expected


def test_original_event_times_lie_in_the_timeline(
    base_cfg: SimConfig, originals: list[Emission]
) -> None:
    """Every original event time is within [start_ms, start_ms + duration_ms]."""
    end = base_cfg.start_ms + base_cfg.duration_ms
    assert all(base_cfg.start_ms <= e.record["event_time"] <= end for e in originals)


def test_zero_disorder_emits_at_event_time() -> None:
    """With no delay, lateness or duplicates the stream is exactly in event-time order."""
    cfg = SimConfig(
        seed=4,
        start_ms=START_MS,
        total_events=3_000,
        out_of_order_ms=0,
        late_share=0.0,
        duplicate_share=0.0,
    )
    emissions = list(Simulation(cfg))
    assert len(emissions) == 3_000
    assert all(e.emit_ms == e.record["event_time"] for e in emissions)
    assert not any(e.late or e.duplicate for e in emissions)
