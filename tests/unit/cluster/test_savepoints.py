"""`tipoff savepoint check`: reading a savepoint (savepoints), describing a build
(buildplan), comparing them (restorecheck).

The fast tests compare hand-made SavepointInfo / Build values (no JVM). The slow ones take
real savepoints from a small PyFlink job on a MiniCluster (a FLIP-27 source with operator
and coordinator state, and a keyed function declaring tipoff's feature state names under
tipoff's features uid), so they need nothing but Java and PyFlink.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from flink_jobs.cluster import buildplan, restorecheck, savepoints
from flink_jobs.cluster.buildplan import Build, BuildOperator
from flink_jobs.cluster.restorecheck import compare
from flink_jobs.cluster.savepoints import KeyedState, SavepointInfo, SavepointOperator
from flink_jobs.pipeline import python_first_on_path, uid
from udfs.flink.state import (
    BODY_STATE,
    CLOCK_STATE,
    FEATURE_STATE,
    PENDING_STATE,
    SEEN_STATE,
    TICK_STATE,
    TILES_STATE,
    WAITING_STATE,
)

FEATURES_UID = uid("user-features", "features")
# Release 2's layout (what these synthetic savepoints hold) and what this build declares.
FEATURES = {CLOCK_STATE: "VALUE", FEATURE_STATE: "VALUE", PENDING_STATE: "LIST", SEEN_STATE: "MAP"}
V2 = {BODY_STATE: "VALUE", TICK_STATE: "VALUE", WAITING_STATE: "LIST", TILES_STATE: "MAP"}
DECLARED = {**FEATURES, **V2}

# --- compare(), on hand-made values ------------------------------------------------------


def _sp_features(**kw: Any) -> SavepointOperator:
    states = tuple(KeyedState(n, k) for n, k in FEATURES.items())
    base = SavepointOperator(
        operator_id="9bebcb4b1d10f15237799cea20c47e18",
        uid=FEATURES_UID,
        name="user-features: features",
        parallelism=1,
        max_parallelism=128,
        keyed_bytes=1_000,
        has_state=True,
        keyed_states=(*states, KeyedState("_timer_state/event_user-timers", "TIMERS")),
    )
    return replace(base, **kw)


def _sp_source(**kw: Any) -> SavepointOperator:
    base = SavepointOperator(
        operator_id="d3f21cabc6fe0fdf76c8be915bdb22a2",
        uid="1_source",
        name="Source: src_user_features_0[1]",
        parallelism=1,
        max_parallelism=128,
        operator_bytes=438,
        coordinator_bytes=213,
        has_state=True,
        operator_states=("SourceReaderState",),
    )
    return replace(base, **kw)


def _savepoint(*ops: SavepointOperator) -> SavepointInfo:
    return SavepointInfo("file:/sp", 12, "Suspend Savepoint (CANONICAL)", tuple(ops))


def _b_features(**kw: Any) -> BuildOperator:
    base = BuildOperator(
        operator_id="9bebcb4b1d10f15237799cea20c47e18",
        uid=FEATURES_UID,
        name="user-features: features",
        parallelism=1,
        max_parallelism=-1,
        keyed_states=dict(FEATURES),
    )
    return replace(base, **kw)


def _b_source(**kw: Any) -> BuildOperator:
    base = BuildOperator(
        operator_id="d3f21cabc6fe0fdf76c8be915bdb22a2",
        uid="1_source",
        name="Source: src_user_features_0[1]",
        parallelism=1,
        max_parallelism=-1,
    )
    return replace(base, **kw)


def _build(*ops: BuildOperator) -> Build:
    return Build("test build", tuple(ops))


def _levels(report: restorecheck.Report) -> list[str]:
    return [line.level for line in report.lines]


def test_same_operators_restore_ok() -> None:
    report = compare(_savepoint(_sp_features(), _sp_source()), _build(_b_features(), _b_source()))
    assert report.ok and report.exit_code() == 0
    assert _levels(report) == ["OK", "OK"]
    assert "SourceReaderState" in report.render()[2]


def test_a_renamed_uid_fails_naming_the_operator() -> None:
    renamed = _b_features(operator_id="c737779e633f3723770734cee5657e60", uid="tipoff.uf.features")
    report = compare(_savepoint(_sp_features(), _sp_source()), _build(renamed, _b_source()))
    assert not report.ok and report.exit_code() == 1
    (fail,) = report.failures
    assert FEATURES_UID in fail.text and "9bebcb4b1d10f15237799cea20c47e18" in fail.text
    assert "would be dropped" in fail.text and "--allow-non-restored-state" in fail.text
    new = [line for line in report.lines if line.level == "NEW"]
    assert len(new) == 1 and "tipoff.uf.features" in new[0].text and "starts empty" in new[0].text
    assert report.render()[-1].startswith("FAIL")


def test_stateless_operators_missing_from_the_build_do_not_matter() -> None:
    stateless = SavepointOperator("ba50b8fe11e17a19091c0c6dffa8a705", None, "Map", 1, 128)
    report = compare(_savepoint(_sp_features(), stateless), _build(_b_features()))
    assert report.ok and _levels(report) == ["OK"]


def test_coordinator_state_alone_counts_as_state() -> None:
    enumerator_only = _sp_source(operator_bytes=0, operator_states=(), has_state=True)
    report = compare(_savepoint(enumerator_only), _build())
    assert not report.ok and "1_source" in report.failures[0].text


def test_keyed_state_missing_starts_empty_and_extra_is_carried_along() -> None:
    saved = [s for s in _sp_features().keyed_states or () if s.name != FEATURE_STATE]
    sp = _sp_features(keyed_states=(*saved, KeyedState("legacy", "VALUE")))
    report = compare(_savepoint(sp), _build(_b_features()))
    assert report.ok  # nothing is dropped
    note = next(line for line in report.lines if line.level == "NOTE")
    assert FEATURE_STATE in note.text and "starts empty" in note.text
    (warn,) = report.warnings
    assert "legacy" in warn.text and "nothing reads it" in warn.text
    assert report.exit_code(strict=True) == 1


def test_a_changed_state_kind_fails() -> None:
    declared = {**FEATURES, SEEN_STATE: "VALUE"}
    report = compare(_savepoint(_sp_features()), _build(_b_features(keyed_states=declared)))
    (fail,) = report.failures
    assert SEEN_STATE in fail.text and "MAP in the savepoint, VALUE in this build" in fail.text


def test_max_parallelism() -> None:
    sp = _savepoint(_sp_features())
    assert compare(sp, _build(_b_features(parallelism=64))).ok  # rescale below 128
    too_wide = compare(sp, _build(_b_features(parallelism=200)))
    assert "above the savepoint's max parallelism 128" in too_wide.failures[0].text
    configured = compare(sp, _build(_b_features(max_parallelism=256)))
    assert "max parallelism 256 is set by this build" in configured.failures[0].text
    assert compare(sp, _build(_b_features(max_parallelism=128))).ok


def test_a_planner_uid_moved_to_another_operator_fails() -> None:
    other = _b_source(name="*anonymous_datastream_source$2*[1]")
    report = compare(_savepoint(_sp_source()), _build(other))
    (fail,) = report.failures
    assert "planner uid 1_source belongs to another operator" in fail.text


def test_unreadable_keyed_state_names_are_a_note() -> None:
    sp = _sp_features(keyed_states=None, keyed_note="keyed state names not readable from X")
    report = compare(_savepoint(sp), _build(_b_features()))
    assert report.ok and "NOTE" in _levels(report)


def test_build_json_round_trip() -> None:
    build = _build(_b_features(key_serializer=b"\x00\x01key"), _b_source(extra_ids=("ab" * 16,)))
    assert Build.from_json(build.to_json()) == build


def test_the_features_function_declares_v2_state_and_release_2_state() -> None:
    """Recorded from udfs.flink.features.Features.open itself, not restated: the v2 layout,
    and release 2's, which it reads to convert a key."""
    declared = buildplan.tipoff_keyed_state(["user-features", "game-features"])
    assert declared == {
        uid("user-features", "features"): DECLARED,
        uid("game-features", "features"): DECLARED,
    }


def test_a_release_2_layout_is_named_with_how_it_is_carried_over() -> None:
    build = _build(_b_features(keyed_states=dict(DECLARED)), _b_source())
    report = compare(_savepoint(_sp_features(), _sp_source()), build, compatibility=False)
    notes = [line.text for line in report.lines if line.level == "NOTE"]
    assert any("release 2's layout" in n and "converts each key" in n for n in notes), notes
    assert report.exit_code() == 0


# --- real savepoints of a small job on a MiniCluster -------------------------------------

SOURCE_UID = "tipoff.test.numbers"
WITH_LEGACY = {**FEATURES, "legacy": "VALUE"}


def _features_function(declare: Mapping[str, str]) -> Any:
    """A keyed function declaring `declare` (name -> kind) with the value types tipoff's
    Features uses. Defined here, so cloudpickle ships it by value to the embedded Python."""
    from pyflink.common import Types
    from pyflink.datastream import KeyedProcessFunction
    from pyflink.datastream.state import (
        ListStateDescriptor,
        MapStateDescriptor,
        ValueStateDescriptor,
    )

    kinds = dict(declare)

    class Declares(KeyedProcessFunction):  # type: ignore[misc]
        def open(self, ctx: Any) -> None:
            self.declare_state(ctx)

        def declare_state(self, ctx: Any) -> None:  # as Features: what the planner reads
            self.states = []
            for name, kind in kinds.items():
                if kind == "VALUE":
                    d: Any = ValueStateDescriptor(name, Types.PICKLED_BYTE_ARRAY())
                    self.states.append((kind, ctx.get_state(d)))
                elif kind == "LIST":
                    d = ListStateDescriptor(name, Types.PICKLED_BYTE_ARRAY())
                    self.states.append((kind, ctx.get_list_state(d)))
                else:
                    d = MapStateDescriptor(name, Types.STRING(), Types.LONG())
                    self.states.append((kind, ctx.get_map_state(d)))

        def process_element(self, value: int, ctx: Any) -> Any:
            for kind, state in self.states:
                if kind == "VALUE":
                    state.update({"last": value})
                elif kind == "LIST":
                    state.update([value])
                else:
                    state.put(str(value % 7), value)
            ctx.timer_service().register_event_time_timer(2**62)
            return iter(())

    return Declares()


def _tiny_job(
    features_uid: str = FEATURES_UID,
    declare: Mapping[str, str] = WITH_LEGACY,
    string_keys: bool = True,
    restore: str | None = None,
    backend: str = "hashmap",
) -> tuple[Any, Build]:
    """The small job's environment (built, not started) and its Build description."""
    from pyflink.common import Configuration, Types, WatermarkStrategy
    from pyflink.datastream import StreamExecutionEnvironment
    from pyflink.datastream.connectors.number_seq import NumberSequenceSource

    conf = Configuration()
    conf.set_string("python.execution-mode", "thread")
    conf.set_string("python.executable", sys.executable)
    conf.set_string("python.client.executable", sys.executable)
    conf.set_string("state.backend.type", backend)
    if restore:
        conf.set_string("execution.state-recovery.path", restore)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(2)
    env.enable_checkpointing(3_600_000)  # savepoints only
    function = _features_function(declare)
    numbers = env.from_source(
        NumberSequenceSource(0, 10**15), WatermarkStrategy.no_watermarks(), "numbers"
    ).uid(SOURCE_UID)
    if string_keys:
        keyed = numbers.key_by(lambda v: str(v % 50), key_type=Types.STRING())
    else:
        keyed = numbers.key_by(lambda v: v % 50, key_type=Types.LONG())
    keyed.process(function).uid(features_uid).name("features").print()
    build = buildplan.describe(
        env, {features_uid: buildplan.declared_keyed_state(function)}, "tiny job"
    )
    return env, build


def _take_savepoint(env: Any, target: Path, format_type: str = "CANONICAL") -> str:
    """Run the job until it has processed records, then stop it with a canonical savepoint."""
    from py4j.protocol import Py4JJavaError
    from pyflink.java_gateway import get_gateway

    client = env.execute_async("tipoff savepoint test")
    deadline = time.monotonic() + 120
    while client.get_job_status().result().name != "RUNNING":
        assert time.monotonic() < deadline, "the test job did not start"
        time.sleep(0.1)
    time.sleep(1.0)
    formats = get_gateway().jvm.org.apache.flink.core.execution.SavepointFormatType
    while True:  # RUNNING is the job; its tasks may still be deploying (a busy machine)
        future = client._j_job_client.stopWithSavepoint(
            False, target.resolve().as_uri(), formats.valueOf(format_type)
        )
        try:
            return str(future.get())
        except Py4JJavaError as e:
            if "is not being executed at the moment" not in str(e):
                raise
            assert time.monotonic() < deadline, "the test job's tasks did not all start"
            time.sleep(0.5)


@pytest.fixture(scope="module")
def python_on_path() -> None:
    """This interpreter first on PATH before the test job starts the gateway JVM."""
    python_first_on_path()


@pytest.fixture(scope="module")
def v1_savepoint(python_on_path: None, tmp_path_factory: pytest.TempPathFactory) -> str:
    t0 = time.monotonic()
    env, _ = _tiny_job()
    path = _take_savepoint(env, tmp_path_factory.mktemp("savepoints"))
    print(f"savepoint of the test job in {time.monotonic() - t0:.1f}s: {path}")
    return path


@pytest.mark.slow
def test_inspect_reads_ids_uids_state_names(v1_savepoint: str) -> None:
    info = savepoints.inspect(v1_savepoint)
    assert info.kind == "Suspend Savepoint (CANONICAL)"
    by_uid = {op.uid: op for op in info.operators if op.uid}
    features, source = by_uid[FEATURES_UID], by_uid[SOURCE_UID]
    # murmur3_128 of the uid: the same id the real pipeline's features operator has
    assert features.operator_id == "9bebcb4b1d10f15237799cea20c47e18"
    assert (features.parallelism, features.max_parallelism) == (2, 128)
    assert features.has_state and features.keyed_bytes > 0 and features.keyed_states
    kinds = {s.name: s.kind for s in features.keyed_states}
    assert kinds == {
        **WITH_LEGACY,
        "_timer_state/event_user-timers": "TIMERS",
        "_timer_state/processing_user-timers": "TIMERS",
    }
    assert features.key_serializer
    assert source.operator_states == ("SourceReaderState",) and source.coordinator_bytes > 0
    # the directory or its _metadata file
    assert savepoints.inspect(Path(v1_savepoint.removeprefix("file:")) / "_metadata") == info
    assert any(FEATURES_UID in line for line in info.render())


@pytest.mark.slow
def test_the_same_build_restores_it(v1_savepoint: str) -> None:
    _, build = _tiny_job(declare=FEATURES)  # the build no longer declares "legacy"
    report = compare(savepoints.inspect(v1_savepoint), build)
    assert report.ok, report.render()
    assert [w.text.split(":")[0] for w in report.warnings] == [FEATURES_UID]
    assert "legacy" in report.warnings[0].text


@pytest.mark.slow
def test_a_renamed_uid_fails(v1_savepoint: str) -> None:
    _, build = _tiny_job(features_uid="tipoff.user-features.feature-machine")
    report = compare(savepoints.inspect(v1_savepoint), build)
    assert not report.ok and report.exit_code() == 1
    (fail,) = report.failures
    assert FEATURES_UID in fail.text and "would be dropped" in fail.text
    assert any(
        "tipoff.user-features.feature-machine" in line.text
        for line in report.lines
        if line.level == "NEW"
    )


@pytest.mark.slow
def test_a_changed_key_type_fails(v1_savepoint: str) -> None:
    _, build = _tiny_job(string_keys=False)
    report = compare(savepoints.inspect(v1_savepoint), build)
    (fail,) = report.failures
    assert "key serializer is INCOMPATIBLE" in fail.text


@pytest.mark.slow
def test_undeclared_keyed_state_is_carried_into_the_next_savepoint(
    v1_savepoint: str, tmp_path: Path
) -> None:
    """Why a savepoint's keyed state the build no longer declares is a warning, not a
    failure: Flink restores it and writes it into the next snapshot untouched."""
    env, _ = _tiny_job(declare=FEATURES, restore=v1_savepoint)
    v2 = savepoints.inspect(_take_savepoint(env, tmp_path))
    features = next(op for op in v2.operators if op.uid == FEATURES_UID)
    assert "legacy" in {s.name for s in features.keyed_states or ()}


@pytest.mark.slow
def test_rocksdb_native_savepoints_have_their_names_read_too(
    python_on_path: None, tmp_path: Path
) -> None:
    """RocksDB's native format keeps the state meta data in a separate handle of each
    IncrementalRemoteKeyedStateHandle; undeclared state is carried along there as well."""
    env, _ = _tiny_job(backend="rocksdb")
    native = savepoints.inspect(_take_savepoint(env, tmp_path / "v1", "NATIVE"))
    assert native.kind == "Suspend Savepoint (NATIVE)"
    env, build = _tiny_job(declare=FEATURES, backend="rocksdb", restore=native.path)
    report = compare(native, build)
    assert report.ok and "legacy" in report.warnings[0].text
    again = savepoints.inspect(_take_savepoint(env, tmp_path / "v2", "NATIVE"))
    features = next(op for op in again.operators if op.uid == FEATURES_UID)
    assert {s.name for s in features.keyed_states or ()} >= {*WITH_LEGACY}


@pytest.mark.slow
def test_a_missing_savepoint_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(savepoints.SavepointCheckError, match="Cannot find meta data file"):
        savepoints.inspect(tmp_path)
