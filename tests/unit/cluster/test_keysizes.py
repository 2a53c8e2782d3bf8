"""Keyed state per key (`tipoff savepoint inspect --per-key`: flink_jobs/cluster/keysizes.py,
keystream.py and keystats.py).

The fast tests build keyed state streams by hand, the way FullSnapshotAsyncWriter writes
them, and check the distribution maths, the key decoder, the attribution and the refusals
(no JVM). The slow one reads the golden savepoints of releases 1 and 2 through the JVM.
"""

from __future__ import annotations

import gzip
import json
import re
import struct
from pathlib import Path

import pytest

from flink_jobs.cli import main
from flink_jobs.cluster import keysizes, savepoints
from flink_jobs.cluster.keystats import Distribution, OperatorKeySizes, quantile
from flink_jobs.cluster.keystream import KeySizeError, RowStringKey, StateSpec, Tally, parse_stream
from flink_jobs.cluster.savepoints import LoadedMetadata, SavepointInfo, SavepointOperator
from flink_jobs.pipeline import uid

GOLDEN = Path(__file__).parents[2] / "golden"
USER_UID = uid("user-features", "features")
GAME_UID = uid("game-features", "features")

# --- the distribution ----------------------------------------------------------------------


def test_quantiles_interpolate_between_ranks() -> None:
    """Linear between the two nearest ranks (numpy's default), so an even count's median
    is the mean of the middle two."""
    assert quantile([1, 2, 3, 4], 0.5) == 2.5
    assert quantile([10], 0.99) == 10
    assert quantile(list(range(11)), 0.9) == 9.0  # 0..10: rank 9 exactly
    assert quantile([0, 100], 0.1) == pytest.approx(10.0)
    assert quantile([1, 2, 3], 0.0) == 1 and quantile([1, 2, 3], 1.0) == 3
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_distribution_of_bytes_per_key() -> None:
    """count, mean, median, p10, p90, p99, min, max over keys; unsorted input."""
    d = Distribution.of([400, 100, 300, 200, 1_000])
    assert (d.count, d.min, d.max) == (5, 100, 1_000)
    assert d.mean == 400.0
    assert d.median == 300.0
    assert d.p10 == pytest.approx(140.0)  # rank 0.4 between 100 and 200
    assert d.p90 == pytest.approx(760.0)  # rank 3.6 between 400 and 1,000
    assert d.p99 == pytest.approx(976.0)
    assert Distribution.of([]) == Distribution(0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 0)


# --- streams written the way Flink writes them ------------------------------------------


def string_value(text: str) -> bytes:
    """StringValue.writeString: (length + 1), then each char, in 7-bit groups, low first."""

    def varint(n: int) -> bytes:
        out = bytearray()
        while n >= 0x80:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        out.append(n)
        return bytes(out)

    return varint(len(text) + 1) + b"".join(varint(ord(c)) for c in text)


def row_key(*fields: str | None, row_kind: bool = True) -> bytes:
    """RowSerializer of STRING fields, kind INSERT: the mask byte(s), then the fields."""
    bits = [False, False] if row_kind else []
    bits += [f is None for f in fields]
    mask = bytearray((len(bits) + 7) // 8)
    for i, bit in enumerate(bits):
        if bit:
            mask[i // 8] |= 0x80 >> (i % 8)
    return bytes(mask) + b"".join(string_value(f) for f in fields if f is not None)


STATES = (
    StateSpec("clock", "VALUE"),
    StateSpec("seen", "MAP"),
    StateSpec("pending", "LIST"),
    StateSpec("_timer_state/event_user-timers", "TIMERS"),
)
HEADER = b"proxy" * 7  # stands for the KeyedBackendSerializationProxy


def entry(state: int, kg: int, key: str, extra: bytes = b"", value: bytes = b"v") -> tuple:
    """One (state id, composite key, value): key group, [timestamp], key, namespace."""
    ts = struct.pack(">q", 1_000 ^ -(2**63)) if STATES[state].kind == "TIMERS" else b""
    composite = bytes([kg]) + ts + row_key(key) + b"\x00" + extra
    return state, composite, b"" if STATES[state].kind == "TIMERS" else value


def write_stream(groups: dict[int, list[tuple]]) -> tuple[bytes, dict[int, int]]:
    """FullSnapshotAsyncWriter's layout: header, then per key group (entries ordered by
    state) a state id, the pairs, the last pair of a run flagged, then the next id or
    END_OF_KEY_GROUP_MARK. Returns the stream and the key group offsets."""
    out = bytearray(HEADER)
    offsets = {kg: 0 for kg in range(128)}
    for kg, entries in sorted(groups.items()):
        offsets[kg] = len(out)
        out += struct.pack(">H", entries[0][0])
        for i, (state, key, value) in enumerate(entries):
            nxt = entries[i + 1][0] if i + 1 < len(entries) else None
            flagged = bytearray(key)
            if nxt != state:
                flagged[0] |= 0x80
            out += struct.pack(">i", len(flagged)) + flagged + struct.pack(">i", len(value))
            out += value
            if nxt is None:
                out += struct.pack(">H", 0xFFFF)
            elif nxt != state:
                out += struct.pack(">H", nxt)
    return bytes(out), offsets


def test_row_keys_decode_as_rowserializer_writes_them() -> None:
    """ASCII (the fast path), multi-byte chars, a null field, two fields, the legacy mask."""
    key = RowStringKey()
    raw = row_key("u000022") + b"\x00"
    assert key.end(raw, 0) == len(raw) - 1
    assert key.text(raw[:-1]) == "u000022"
    odd = row_key("é€-" + "x" * 200)  # 2- and 3-byte chars, a 2-byte length
    assert key.decode(odd, 0) == (("é€-" + "x" * 200,), len(odd))
    assert key.end(odd, 0) == len(odd)
    assert key.decode(row_key(None), 0) == ((None,), 1)
    assert key.text(row_key(None)) == "null"
    two = RowStringKey(arity=2)
    assert two.text(row_key("nba", None)) == "(nba, null)"
    legacy = RowStringKey(row_kind=False)
    assert legacy.decode(row_key(None, row_kind=False), 0) == ((None,), 1)
    assert legacy.text(row_key("g-1", row_kind=False)) == "g-1"


def test_every_entry_is_attributed_to_its_key() -> None:
    """Value, map entries, a list and timers go to their key, each costing its two length
    prefixes, composite key and value; header and markers go to nobody, and the three add
    up to the stream exactly."""
    groups = {
        3: [
            entry(0, 3, "u1", value=b"c" * 50),
            entry(0, 3, "u2", value=b"c" * 70),
            entry(1, 3, "u1", extra=b"id-1", value=b"\x00" + b"t" * 8),
            entry(1, 3, "u1", extra=b"id-2", value=b"\x00" + b"t" * 8),
            entry(3, 3, "u1"),
        ],
        90: [entry(2, 90, "ü-9", value=b"e,e"), entry(3, 90, "ü-9"), entry(3, 90, "ü-9")],
    }
    data, offsets = write_stream(groups)
    tally = Tally(STATES)
    parse_stream(data, offsets, tally, RowStringKey())
    key = RowStringKey()
    per = {key.text(raw): v for raw, v in tally.per_key.items()}
    assert len(row_key("u1")) == 4  # mask, length, 2 chars
    clock_u1 = 8 + (1 + 4 + 1) + 50  # length prefixes + (kg, key, namespace) + value
    seen = 8 + (1 + 4 + 1 + 4) + 9
    timer = 8 + (1 + 8 + 4 + 1)
    assert per["u1"] == [clock_u1, 2 * seen, 0, timer]
    assert per["u2"] == [8 + 6 + 70, 0, 0, 0]
    u9 = len(row_key("ü-9"))
    assert per["ü-9"] == [0, 0, 8 + 1 + u9 + 1 + 3, 2 * (8 + 1 + 8 + u9 + 1)]
    assert tally.entries == [2, 2, 1, 3]
    assert tally.header_bytes == len(HEADER)
    # state ids: 3 runs + 2 runs, plus one end mark per key group, 2 bytes each
    assert tally.marker_bytes == 2 * (3 + 1 + 2 + 1)
    entry_bytes = sum(sum(v) for v in per.values())
    assert entry_bytes + tally.header_bytes + tally.marker_bytes == len(data) == tally.stream_bytes


def test_streams_of_several_subtasks_add_up() -> None:
    """At parallelism 2 each subtask writes its own stream (header included) over its own
    key groups: one tally takes both."""
    first, first_offsets = write_stream({3: [entry(0, 3, "u1")]})
    second, second_offsets = write_stream({100: [entry(0, 100, "u2"), entry(3, 100, "u2")]})
    tally = Tally(STATES)
    parse_stream(first, first_offsets, tally, RowStringKey())
    parse_stream(second, second_offsets, tally, RowStringKey())
    assert len(tally.per_key) == 2 and tally.entries == [2, 0, 0, 1]
    assert tally.header_bytes == 2 * len(HEADER)
    assert tally.stream_bytes == len(first) + len(second)
    entry_bytes = sum(sum(v) for v in tally.per_key.values())
    assert entry_bytes + tally.header_bytes + tally.marker_bytes == tally.stream_bytes


def test_an_empty_stream_is_all_header() -> None:
    tally = Tally(STATES)
    parse_stream(HEADER, dict.fromkeys(range(128), 0), tally, RowStringKey())
    assert (tally.per_key, tally.header_bytes, tally.marker_bytes) == ({}, len(HEADER), 0)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("truncate", "truncated entry"),
        ("cut", "an entry of 6 + 1 B overruns the key group"),
        ("key group", "an entry of key group 4"),
        ("state id", "state id 9, but the header declares 4"),
        ("namespace", "clock: the key does not end in a void namespace"),
        ("offset", "the key group ends at byte"),
    ],
)
def test_an_unexpected_layout_is_refused_with_where(damage: str, message: str) -> None:
    """Nothing is guessed: a stream that does not parse as the format is an error naming
    where it broke."""
    groups = {3: [entry(0, 3, "u1"), entry(3, 3, "u1")], 7: [entry(0, 7, "u2")]}
    data, offsets = write_stream(groups)
    if damage == "truncate":  # in the end mark
        data = data[:-1]
    elif damage == "cut":  # in the last value
        data = data[:-3]
    elif damage == "key group":
        groups[3][0] = entry(0, 4, "u1")
        data, offsets = write_stream(groups)
    elif damage == "state id":
        data = data[: offsets[3]] + b"\x00\x09" + data[offsets[3] + 2 :]
    elif damage == "namespace":
        groups[3][0] = entry(0, 3, "u1", extra=b"?")
        data, offsets = write_stream(groups)
    elif damage == "offset":
        offsets[7] += 1
    with pytest.raises(KeySizeError, match=re.escape(message)) as e:
        parse_stream(data, offsets, Tally(STATES), RowStringKey(), where="sp: op")
    assert str(e.value).startswith("sp: op: key group ")


def _sizes() -> OperatorKeySizes:
    return OperatorKeySizes(
        path="/sp",
        uid=USER_UID,
        states=(StateSpec("key-clock", "VALUE"), StateSpec("_timer_state/t", "TIMERS")),
        per_key={"u1": (1_000, 500), "u2": (2_000, 0), "u3": (1_500, 1_000)},
        entries=(3, 7),
        stream_bytes=6_000 + 100 + 14,
        header_bytes=100,
        marker_bytes=14,
    )


def test_operator_totals_shares_and_rendering() -> None:
    sizes = _sizes()
    assert sizes.totals == {"u1": 1_500, "u2": 2_000, "u3": 2_500}
    assert sizes.state_bytes == {"key-clock": 4_500, "_timer_state/t": 1_500}
    assert sizes.shares() == {"key-clock": 0.75, "_timer_state/t": 0.25}
    assert sizes.keys_with() == {"key-clock": 3, "_timer_state/t": 2}
    assert sizes.largest() == "u3"
    assert sizes.distribution().median == 2_000
    text = "\n".join(sizes.render("user"))
    assert "3 users; 6,000 B of entries + 100 B header + 14 B markers = 6,114 B" in text
    assert "median 2,000 B" in text and "max 2,500 B (u3)" in text and "mean 2,000 B" in text
    assert re.search(r"key-clock\s+VALUE\s+75\.0%\s+4,500\s+3\s+3", text)
    assert re.search(r"_timer_state/t\s+TIMERS\s+25\.0%\s+1,500\s+7\s+2", text)
    summary = sizes.summary("user")
    assert summary["user_keys"] == 3 and summary["user_median_bytes"] == 2_000
    assert (summary["user_p10_bytes"], summary["user_max_bytes"]) == (1_600, 2_500)
    assert summary["user_state_shares"] == {"key-clock": 0.75, "_timer_state/t": 0.25}


# --- refusals and the CLI, without a JVM -------------------------------------------------


@pytest.mark.parametrize(
    ("is_savepoint", "fmt", "kind", "message"),
    [
        (False, None, "Checkpoint", "/ck/chk-3 is a checkpoint, not a savepoint"),
        (True, "NATIVE", "Savepoint (NATIVE)", "is a Savepoint (NATIVE): per-key sizes read"),
    ],
)
def test_checkpoints_and_native_savepoints_are_refused(
    monkeypatch: pytest.MonkeyPatch, is_savepoint: bool, fmt: str | None, kind: str, message: str
) -> None:
    loaded = LoadedMetadata(None, None, None, "file:/ck/chk-3", kind, is_savepoint, fmt)
    monkeypatch.setattr(keysizes, "load_metadata", lambda path: loaded)
    with pytest.raises(KeySizeError, match=re.escape(message)) as e:
        keysizes.measure_keys("/ck/chk-3", [USER_UID])
    assert "`tipoff savepoint trigger JOB`" in str(e.value)


INFO = SavepointInfo(
    path="file:/sp",
    checkpoint_id=3,
    kind="Suspend Savepoint (CANONICAL)",
    operators=(
        SavepointOperator(
            operator_id="a" * 32,
            uid=USER_UID,
            name=None,
            parallelism=1,
            max_parallelism=128,
            keyed_bytes=6_114,
            has_state=True,
        ),
    ),
)


def test_cli_prints_the_distribution_per_features_operator(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[list[str]] = []

    def measure(path: str, uids: list[str]) -> dict[str, OperatorKeySizes]:
        asked.append(uids)
        return {USER_UID: _sizes()}

    monkeypatch.setattr(savepoints, "inspect", lambda path: INFO)
    monkeypatch.setattr(keysizes, "measure_keys", measure)
    assert main(["savepoint", "inspect", "/sp", "--per-key"]) == 0
    out = capsys.readouterr().out
    assert asked == [[USER_UID]]
    assert "6.0 KiB" in out  # the usual table first
    assert "per user: median 2,000 B" in out and "STATE" in out


def test_cli_per_key_errors_are_one_message(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A savepoint that cannot be read per key exits 2 with the reason and prints nothing
    else; so does one without a features operator."""

    def refuse(path: str, uids: list[str]) -> dict[str, OperatorKeySizes]:
        raise KeySizeError(f"{path} is a checkpoint, not a savepoint: take one")

    monkeypatch.setattr(savepoints, "inspect", lambda path: INFO)
    monkeypatch.setattr(keysizes, "measure_keys", refuse)
    assert main(["savepoint", "inspect", "/ck", "--per-key"]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err == "tipoff: error: /ck is a checkpoint, not a savepoint: take one\n"
    source = SavepointOperator("b" * 32, "1_source", None, 1, 128, 0, 400, has_state=True)
    source_only = SavepointInfo("file:/sp", 3, INFO.kind, (source,))
    monkeypatch.setattr(savepoints, "inspect", lambda path: source_only)
    assert main(["savepoint", "inspect", "/sp", "--per-key"]) == 2
    assert "/sp holds no keyed state of a features operator" in capsys.readouterr().err


# --- the golden savepoints, through the JVM ---------------------------------------------


def _golden_users(release: str) -> set[str]:
    with gzip.open(GOLDEN / release / "outputs.json.gz") as f:
        outputs = json.loads(f.read())
    return {record[0] for record in outputs["features"]["user-features"]}


@pytest.mark.slow
@pytest.mark.parametrize("release", ["release-1", "release-2"])
def test_golden_savepoints_per_key(release: str) -> None:
    """Every key decodes to an entity id (the users are those the release wrote features
    for; the games are tests/golden/plan.py's 8), and the entries, the header and the
    markers add up to the metadata's keyed state size exactly; the markers are at most 2
    bytes per state run and key group."""
    for job, op_uid, pattern, count in (
        ("user-features", USER_UID, r"u\d{6}", 256),
        ("game-features", GAME_UID, r"[a-z]+-[a-z]+-[a-z]+-\d{4}", 8),
    ):
        path = GOLDEN / release / job
        info = {op.uid: op for op in savepoints.inspect(path).operators}
        sizes = keysizes.measure_keys(path, [op_uid, "not-there"])
        assert list(sizes) == [op_uid]
        got = sizes[op_uid]
        assert len(got.per_key) == count
        assert all(re.fullmatch(pattern, key) for key in got.per_key), sorted(got.per_key)
        if job == "user-features":
            assert set(got.per_key) == _golden_users(release)
        assert got.stream_bytes == info[op_uid].keyed_bytes
        assert got.entry_bytes + got.header_bytes + got.marker_bytes == got.stream_bytes
        assert 0 < got.header_bytes < 4_096
        assert got.marker_bytes <= 2 * (len(got.states) + 1) * 128
        assert all(t > 0 for t in got.totals.values())
        d = got.distribution()
        assert d.min <= d.p10 <= d.median <= d.p90 <= d.p99 <= d.max
        assert sum(got.shares().values()) == pytest.approx(1.0)
        assert all(s.void_namespace for s in got.states)  # so every namespace is checked
        names = [s.name for s in got.states]
        timers = names.index("_timer_state/event_user-timers")
        assert got.states[timers].kind == "TIMERS"
        assert got.entries[timers] > count  # event-time timers: every key has pending ticks
