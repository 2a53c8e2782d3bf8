"""v2 state bytes name no code: they load in a Python that cannot import tipoff at all, so
renaming or moving any module under udfs/ cannot break a restore. A reader refuses bytes
of another family, an unknown layout version or garbage with a message naming them."""

from __future__ import annotations

import pickle
import random
import subprocess
import sys

import pytest

from tests.unit.features.builders import T0, ui
from tests.unit.features.test_against_oracle import feed
from udfs.features.user import top_teams
from udfs.features.v2 import codec, driver, runtime, user


@pytest.mark.parametrize("family", ["user", "game"])
def test_no_state_written_in_a_run_names_code(family: str) -> None:
    blobs: list[bytes] = []
    driver.run(
        family,
        feed(21, 3_000),
        out_of_orderness_ms=2_000,
        store="encode",
        on_state=lambda _key, data: blobs.append(data),
    )
    assert len(blobs) > 500
    named = {op for b in blobs for op in codec.names_code(b)}
    assert named == set()
    # A game's core holds its plays as a codec blob of their own (reused between writes).
    cores = [v for b in blobs if (v := pickle.loads(b))[1] == "game"]
    assert all(codec.names_code(v[8]) == [] for v in cores)
    assert len(cores) > 0 if family == "game" else not cores


def test_state_bytes_load_where_no_tipoff_module_exists() -> None:
    """`python -I -S`: no PYTHONPATH, working folder or site-packages, so no udfs."""
    blobs: list[bytes] = []
    driver.run("game", feed(22, 1_500), store="encode", on_state=lambda _k, d: blobs.append(d))
    probe = "import pickle, sys; v = pickle.loads(sys.stdin.buffer.read()); print(v[0], v[1], v[2])"
    for data in (blobs[0], blobs[-1]):
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", "import udfs"], capture_output=True, text=True
        )
        assert done.returncode != 0, "udfs must not be importable in the probe"
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", probe], input=data, capture_output=True, check=True
        )
        assert done.stdout.split()[:3] == [b"tipoff", b"game", b"1"]


def test_a_reader_names_what_it_cannot_read() -> None:
    s = user.new_state("u1")
    data = user.encode(s)
    assert data is not None
    with pytest.raises(codec.StateFormatError, match="expected a game state, got a 'user'"):
        codec.loads("game", (1,), data)
    with pytest.raises(codec.StateFormatError, match="layout version 1: this build reads 2"):
        codec.loads("user", (2,), data)
    with pytest.raises(codec.StateFormatError, match="not a tipoff state encoding"):
        codec.loads("user", (1,), b"\x00garbage")
    with pytest.raises(codec.StateFormatError, match="not a tipoff state encoding"):
        codec.loads("user", (1,), pickle.dumps(("other", "user", 1)))


def test_a_user_with_nothing_new_writes_no_body() -> None:
    s = user.new_state("u1")
    pending: list = []
    seen: dict[str, int] = {}
    ev = ui(500)
    tick = runtime.admit(ev, pending, seen, 1_000)
    runtime.on_tick(user, s, tick, 1_000, pending, seen)
    assert user.encode(s) is not None  # the event was applied
    step = runtime.on_tick(user, s, tick + 60_000, 1_000, pending, seen)  # the 1 min exit
    assert step.emissions and step.emissions[0][1]["interactions_1m"] == 0
    assert user.encode(s) is None  # only the last tick changed
    back = user.decode("u1", user_body(s), s.last_tick)
    assert user._fields(back) == user._fields(s)


def user_body(s: user.UserState) -> bytes:
    s.dirty = True
    data = user.encode(s)
    assert data is not None
    return data


def test_cached_ranking_equals_ranking_at_every_tick() -> None:
    """top_teams is reused between interactions with teams; near-ties are recomputed at
    every tick. Random affinities, many of them close to or exactly tied."""
    rng = random.Random(5)
    for _ in range(3_000):
        s = user.new_state("u")
        base = rng.choice([1.0, 3.0, 5.0])
        for team in [f"t{i}" for i in range(rng.randint(1, 6))]:
            jitter = rng.choice([0.0, 0.0, 1e-13, 5e-10, 1e-9, 2e-9, 1e-3, rng.random()])
            ref = T0 + rng.choice([0, 0, rng.randrange(0, 7 * 86_400_000)])
            s.affinity[team] = (base * (1 + jitter) * rng.choice([1, 1, 0.5]), ref)
        latest = max(ref for _, ref in s.affinity.values())
        for tick in range(latest, latest + 40 * 86_400_000, 3 * 86_400_000 + 7):
            fresh = top_teams(
                {
                    t: v * 2.0 ** ((r - tick) / user.AFFINITY_HALF_LIFE_MS)
                    for t, (v, r) in s.affinity.items()
                }
            )
            assert user.ranking(s, tick) == fresh, (s.affinity, tick)
