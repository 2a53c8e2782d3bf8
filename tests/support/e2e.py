"""What the end-to-end tests share: running `tipoff run` (bounded, or unbounded with a REST
port to stop it), hostile input, and checking every output record against the oracle and
every dead letter against what was sent."""

from __future__ import annotations

import itertools
import random
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from flink_jobs.cluster.rest import FlinkRest, FlinkRestError
from flink_jobs.settings import Settings
from flink_jobs.sim import SimConfig, Simulation
from flink_jobs.stack.processes import free_port
from flink_jobs.tools import schemas
from tests.oracle.game_oracle import game_features
from tests.oracle.model import Accepted
from tests.oracle.user_oracle import user_features
from tests.support.compare import differences
from tests.support.kafka_io import Msg, Values, consume_all, produce
from tests.support.kafka_io import frame as _frame
from tests.support.realstack import RealStack
from udfs.serde import avsc

BOUND_MS = 2_000  # the jobs' default out-of-orderness
MALFORMED = ("DECODE_ERROR", "UNKNOWN_SCHEMA", "INVALID")
BAD_KEY = b"bad:"  # hostile records carry b"bad:<reason>:<n>" keys


# --- running the jobs -----------------------------------------------------------------


def tipoff(
    env: dict[str, str], *args: str, timeout_s: float = 400
) -> subprocess.CompletedProcess[str]:
    """`tipoff ARGS` in a subprocess, as a user would run it."""
    return subprocess.run(
        [sys.executable, "-m", "flink_jobs.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def run_bounded(real_stack: RealStack, s: Settings, *args: str, timeout_s: float = 1200) -> None:
    t0 = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "flink_jobs.cli", "run", "all", "--bounded", *args],
        env={**real_stack.env, **s.topics.env()},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    print(f"tipoff run all --bounded {' '.join(args)}: {time.monotonic() - t0:.0f}s")
    assert proc.returncode == 0, proc.stderr[-3000:]


@dataclass
class LiveJob:
    """`tipoff run all` (unbounded) in a subprocess, driven over its REST API."""

    real_stack: RealStack
    s: Settings
    workdir: Path
    args: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.rest = FlinkRest(f"http://127.0.0.1:{self.port}")
        self.log = self.workdir / f"run-{self.port}.log"
        self.flink_logs = self.workdir / f"flink-log-{self.port}"

    def start(self) -> LiveJob:
        cmd = [sys.executable, "-m", "flink_jobs.cli", "run", "all", "--rest-port", str(self.port)]
        self.proc = subprocess.Popen(
            [*cmd, *self.args],
            env={
                **self.real_stack.env,
                **self.s.topics.env(),
                "FLINK_LOG_DIR": str(self.flink_logs),
            },
            stdout=self.log.open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.output()[-3000:]
            try:
                if any(j.state == "RUNNING" for j in self.rest.jobs()):
                    return self
            except Exception:
                pass
            time.sleep(1)
        raise AssertionError("job not RUNNING after 180 s: " + self.output()[-3000:])

    @property
    def job_id(self) -> str:
        return self.rest.jobs()[0].id

    def output(self) -> str:
        """What `tipoff run` printed, then the local cluster's Flink log."""
        logs = [self.log, *sorted(self.flink_logs.glob("*.log"))]
        return "\n".join(p.read_text(errors="replace") for p in logs if p.exists())

    def wait_consumed(self, timeout_s: float = 900) -> None:
        def alive() -> None:
            assert self.proc is not None and self.proc.poll() is None, self.output()[-3000:]

        wait_consumed(self.s, alive, timeout_s)

    def stop(self, drain: bool, savepoints: Path, timeout_s: float = 300) -> str:
        """Stop-with-savepoint; wait for `tipoff run` to exit 0; the savepoint path."""
        t0 = time.monotonic()
        try:
            path = self.rest.stop(
                self.job_id, savepoints.as_uri(), drain=drain, timeout_s=timeout_s
            ).path
        except FlinkRestError:
            # A local run's cluster exits with its job, often before the savepoint's status
            # can be polled: the savepoint is then the newest complete one in the directory.
            path = ""
        assert self.proc is not None
        assert self.proc.wait(timeout=120) == 0, self.output()[-3000:]
        if not path:
            done = sorted(savepoints.glob("savepoint-*/_metadata"), key=lambda p: p.stat().st_mtime)
            assert done, f"no savepoint in {savepoints}: " + self.output()[-3000:]
            path = done[-1].parent.as_uri()
        print(f"stopped with savepoint {path} in {time.monotonic() - t0:.1f}s (drain={drain})")
        return path

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)


def wait_consumed(s: Settings, alive: Callable[[], None], timeout_s: float = 900) -> None:
    """Until both jobs' committed source offsets (committed on checkpoints) reach the end of
    every input partition; `alive` asserts the job still runs."""
    topics = [s.topics.game_events, s.topics.user_interactions]
    groups = {"tipoff-user-features": topics[1:], "tipoff-game-features": topics}
    deadline = time.monotonic() + timeout_s
    behind: dict[str, int] = {}
    while time.monotonic() < deadline:
        alive()
        try:
            behind = {g: _lag(s.endpoints.bootstrap_servers, g, ts) for g, ts in groups.items()}
        except Exception as e:
            behind = {"?": -1}
            print(f"lag unknown: {e}")
        if not any(behind.values()):
            return
        time.sleep(2)
    raise AssertionError(f"inputs not consumed after {timeout_s}s: lag {behind}")


@dataclass
class ClusterJob:
    """Both feature jobs as one Flink job submitted to a standalone cluster."""

    real_stack: RealStack
    s: Settings
    rest: FlinkRest
    args: tuple[str, ...] = ()
    job_id: str = ""

    def submit(self) -> ClusterJob:
        jm = self.rest.url.removeprefix("http://")
        t0 = time.monotonic()
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "flink_jobs.cli",
                "submit",
                "all",
                "--jobmanager",
                jm,
                *self.args,
            ],
            env={**self.real_stack.env, **self.s.topics.env()},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
        self.job_id = proc.stdout.strip().splitlines()[-1]
        self.rest.wait_for_state(self.job_id, {"RUNNING"}, 120)
        print(f"submitted job {self.job_id} in {time.monotonic() - t0:.1f}s")
        return self

    def alive(self) -> None:
        state = self.rest.job(self.job_id)["state"]
        assert state in ("RUNNING", "RESTARTING", "CREATED", "INITIALIZING"), state

    def wait_consumed(self, timeout_s: float = 900) -> None:
        wait_consumed(self.s, self.alive, timeout_s)

    def failures(self) -> list[str]:
        found = self.rest.call("GET", f"/jobs/{self.job_id}/exceptions")["exceptionHistory"]
        return [str(e.get("stacktrace", "")) for e in found["entries"]]

    def stop(self, drain: bool, savepoints: Path | None = None) -> str:
        target = savepoints.as_uri() if savepoints else None
        result = self.rest.stop(self.job_id, target, drain=drain)
        self.rest.wait_for_state(self.job_id, {"FINISHED"}, 120)
        print(f"stopped {self.job_id} with savepoint {result.path} in {result.seconds:.1f}s")
        return result.path

    def cancel(self) -> None:
        try:
            if self.job_id and self.rest.job(self.job_id)["state"] not in (
                "FINISHED",
                "FAILED",
                "CANCELED",
            ):
                self.rest.cancel(self.job_id)
        except Exception as e:
            print(f"cancel {self.job_id}: {e}")


def _lag(bootstrap: str, group: str, topics: list[str]) -> int:
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "log_level": 3})
    try:
        md = c.list_topics(timeout=10).topics
        parts = [TopicPartition(t, p) for t in topics for p in md[t].partitions]
        committed = c.committed(parts, timeout=10)
        lag = 0
        for tp in committed:
            end = c.get_watermark_offsets(TopicPartition(tp.topic, tp.partition), timeout=10)[1]
            lag += end - max(tp.offset, 0)
        return lag
    finally:
        c.close()


# --- hostile input --------------------------------------------------------------------

INPUTS = (
    ("game_events", "events/GameEvent.avsc", "game"),
    ("user_interactions", "events/UserInteraction.avsc", "interaction"),
)


def hostile_batches(
    s: Settings, cfg: SimConfig, per_topic: int, seed: int
) -> list[tuple[str, list]]:
    """Batches of malformed records of every kind for both input topics, shuffled."""
    rng = random.Random(seed)
    client = schemas.registry(s.endpoints.registry_url)
    foreign = client.get_latest_version(f"{s.topics.game_features}-value").schema_id
    batches = []
    for attr, rel, kind in INPUTS:
        topic = getattr(s.topics, attr)
        current = client.get_latest_version(f"{topic}-value").schema_id
        goods = [e.record for e in itertools.islice(Simulation(cfg), 2_000) if e.kind == kind]
        records = hostile_records(current, avsc.load(rel), goods, kind, per_topic, rng, foreign)
        batches += [(topic, records[i : i + 50]) for i in range(0, len(records), 50)]
    rng.shuffle(batches)
    return batches


def hostile_records(
    schema_id: int,
    schema: dict[str, Any],
    goods: list[dict[str, Any]],
    kind: str,
    n: int,
    rng: random.Random,
    foreign_id: int,
) -> list[tuple[bytes, bytes | None]]:
    """`n` malformed records of every kind product.md names, keyed b"bad:<reason>:<i>":
    null and empty values, random bytes, a wrong magic byte, truncated payloads, unknown
    schema ids (never registered, or another subject's), and well-formed Avro with invalid
    values (empty ids, negative numbers, event times before 2000 or over a day ahead)."""
    bad_id = "game_id" if kind == "game" else "user_id"

    def valid(**change: Any) -> bytes:
        return _frame(schema_id, schema, {**rng.choice(goods), **change})

    def rand_bytes() -> bytes:
        b = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 60)))
        return bytes([rng.randint(1, 255)]) + b[1:]  # never a 0 magic byte by chance

    makers: list[tuple[str, Callable[[], bytes | None]]] = [
        ("DECODE_ERROR", lambda: None),
        ("DECODE_ERROR", lambda: b""),
        ("DECODE_ERROR", rand_bytes),
        ("DECODE_ERROR", lambda: bytes([rng.randint(1, 255)]) + valid()[1:]),
        ("DECODE_ERROR", lambda: (v := valid())[: rng.randint(1, len(v) - 1)]),
        (
            "UNKNOWN_SCHEMA",
            lambda: b"\x00" + struct.pack(">I", rng.randint(900_000, 999_999)) + valid()[5:],
        ),
        ("UNKNOWN_SCHEMA", lambda: b"\x00" + struct.pack(">I", foreign_id) + valid()[5:]),
        ("INVALID", lambda: valid(**{bad_id: ""})),
        ("INVALID", lambda: valid(event_id="")),
        ("INVALID", lambda: valid(event_time=rng.randint(0, 946_684_799_999))),
        (
            "INVALID",
            lambda: valid(event_time=int(time.time() * 1000) + rng.randint(2, 30) * 86_400_000),
        ),
    ]
    if kind == "game":
        makers += [
            ("INVALID", lambda: valid(points=-rng.randint(1, 3), event_type="SCORE")),
            ("INVALID", lambda: valid(home_score=-1)),
        ]
    else:
        makers.append(("INVALID", lambda: valid(action="FOLLOW_TEAM", team_id=None)))
    out = []
    for i in range(n):
        reason, make = makers[i % len(makers)]
        out.append((BAD_KEY + f"{reason}:{i}".encode(), make()))
    rng.shuffle(out)
    return out


class Interleaver(threading.Thread):
    """Produces records in small batches while the simulator writes the same topics."""

    def __init__(self, bootstrap: str, batches: list[tuple[str, list[tuple[bytes, Any]]]]) -> None:
        super().__init__(daemon=True)
        self.bootstrap, self.batches = bootstrap, batches
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for topic, records in self.batches:
                produce(self.bootstrap, topic, records)
                time.sleep(0.05)
        except BaseException as e:
            self.error = e


# --- checking -------------------------------------------------------------------------


def added_since_release_1(rel: str) -> set[str]:
    versions = avsc.history(rel)
    return {f["name"] for f in versions[-1]["fields"]} - {f["name"] for f in versions[0]["fields"]}


@dataclass(frozen=True)
class Prior:
    """What an earlier build wrote before the savepoint this run restored (the golden
    savepoints' fixtures): feature records per job, and dead letters' origins."""

    features: dict[str, list[tuple[str, int, dict[str, Any] | None]]]
    dead_letters: list[dict[str, Any]]  # job, reason, topic, partition, offset


def check_jobs(
    s: Settings,
    values: Values,
    bad: dict[tuple, str],
    *,
    expect_late: bool = True,
    prior: Prior | None = None,
) -> dict[str, Counter[str]]:
    """Every job's read_committed output equals the oracle's on the accepted events;
    accepted + dead-lettered = produced; every malformed record is dead with its reason and
    original bytes. `bad`: coords -> reason of the malformed records (plus any keyed
    b"bad:<reason>:..."). Returns the dead-letter reasons per job."""
    boot = s.endpoints.bootstrap_servers
    inputs = {t: consume_all(boot, t) for t in (s.topics.game_events, s.topics.user_interactions)}
    for msgs in inputs.values():
        for m in msgs:
            if m.key and m.key.startswith(BAD_KEY):
                bad[m.coords] = m.key.split(b":")[1].decode()
    dead = [values(m.value) for m in consume_all(boot, s.topics.dead_letters)]
    if prior is not None:
        dead += prior.dead_letters
    jobs = {
        "user-features": ([s.topics.user_interactions], s.topics.user_features, user_features),
        "game-features": (
            [s.topics.game_events, s.topics.user_interactions],
            s.topics.game_features,
            game_features,
        ),
    }
    added = added_since_release_1("features/UserFeatures.avsc")
    summary = {}
    for job, (topics, out_topic, oracle) in jobs.items():
        produced = [m for t in topics for m in inputs[t]]
        coords = {m.coords for m in produced}
        reasons = {(d["topic"], d["partition"], d["offset"]): d for d in dead if d["job"] == job}
        assert len(reasons) == len([d for d in dead if d["job"] == job]), "a record dead twice"
        assert set(reasons) <= coords
        accepted = [m for m in produced if m.coords not in reasons]
        assert len(accepted) + len(reasons) == len(produced)
        by_coords = {m.coords: m for m in produced}
        for c, reason in bad.items():
            if c[0] not in topics:
                continue
            assert c in reasons, (job, c, reason, "malformed record not dead-lettered")
            assert reasons[c]["reason"] == reason, (job, c, reasons[c])
            original = by_coords[c]
            assert (reasons[c].get("key"), reasons[c].get("value")) == (
                original.key,
                original.value,
            )
            assert reasons[c]["error"], (job, c)
        check_late_and_duplicates(job, produced, reasons, values, expect_late)

        events = [
            Accepted(
                "game" if m.topic == s.topics.game_events else "interaction",
                m.topic,
                m.partition,
                m.offset,
                values(m.value),
            )
            for m in accepted
        ]
        expected = {(o.key, o.feature_time): o.value for o in oracle(events)}
        got = [
            (m.key.decode(), int(dict(m.headers)["feature_time"]), values(m.value))
            for m in consume_all(boot, out_topic)
        ]
        if prior is not None:
            got = [(k, t, v) for k, t, v in prior.features[job]] + got
        assert all(v is None or v["feature_time"] == t for _, t, v in got)
        assert len(got) == len({(k, t) for k, t, _ in got}), "a (key, feature_time) twice"
        for k, t, v in got:
            # A record written with an older schema has no field added since: compare the
            # fields it has (consumers on the new schema read the field's default there).
            e = expected.get((k, t))
            if v is not None and e is not None and added - set(v):
                expected[(k, t)] = {f: x for f, x in e.items() if f not in added - set(v)}
        diff = differences(got, [(k, t, v) for (k, t), v in expected.items()])
        assert diff == [], f"{job}: {len(diff)} differences, first: {diff[:5]}"
        summary[job] = Counter(d["reason"] for d in reasons.values())
        print(
            f"{job}: {len(produced)} in, {len(accepted)} accepted, "
            f"{summary[job]}, {len(got)} records out"
        )
    return summary


def sent_late(msgs: list[Msg], values: Values) -> set[tuple]:
    """Records sent long after their partition moved on (the simulator's 30-120 s late
    sends, as opposed to its <= 1.5 s disorder)."""
    late = set()
    top: dict[tuple[str, int], int] = {}
    for m in msgs:
        t = values(m.value)["event_time"]
        part = (m.topic, m.partition)
        if part in top and t <= top[part] - 25_000:
            late.add(m.coords)
        top[part] = max(top.get(part, t), t)
    return late


def check_late_and_duplicates(
    job: str, produced: list[Msg], reasons: dict, values: Values, expect_late: bool
) -> None:
    produced = [m for m in produced if reasons.get(m.coords, {}).get("reason") not in MALFORMED]
    by_coords = {m.coords: m for m in produced}
    first_copy: dict[tuple, tuple] = {}
    for m in produced:
        v = values(m.value)
        assert v is not None
        if job == "game-features" and not v.get("game_id"):
            continue  # an interaction about no game: nothing in this job keys or counts it
        ident = (m.topic, v["event_id"], v.get("revision", 0))
        dl = reasons.get(m.coords)
        if ident in first_copy:
            # a copy of an accepted event: DUPLICATE, or LATE when it also came too late
            if first_copy[ident] not in reasons:
                assert dl is not None and dl["reason"] in ("DUPLICATE", "LATE"), (job, m.coords)
        elif dl is not None:
            assert dl["reason"] == "LATE", (job, m.coords, dl)
        first_copy.setdefault(ident, m.coords)
    # Which events are late depends on how partitions interleave on arrival (product.md),
    # so only bounds are certain: nothing is LATE unless the input had moved past it...
    newest = max(values(m.value)["event_time"] for m in produced)
    for c, dl in reasons.items():
        if dl["reason"] == "LATE" and "game closed" not in dl["error"]:
            t = values(by_coords[c].value)["event_time"]
            assert t <= newest - BOUND_MS - 1, (job, c, dl)
    if expect_late:
        # ...and the watermark does catch late sends. How many depends on how the reader
        # interleaves partitions while it works through a backlog: a partition it has not
        # reached yet holds the per-partition watermark back, so what its neighbours sent
        # late is still accepted (and counted; the oracle sees it too).
        late = sent_late(produced, values)
        caught = [c for c in late if reasons.get(c, {}).get("reason") == "LATE"]
        assert late and caught, (job, len(caught), len(late))
