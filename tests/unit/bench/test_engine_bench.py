"""The engine benchmark's command runs both engines on a small feed and writes its JSON;
bad options are refused by name. (No timing is asserted: numbers come from real runs.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from flink_jobs.bench import engine


def test_small_run_writes_every_tenth(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert engine.main(["--events", "3000", "--users", "300", "--results", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "CPU µs per input event" in out
    (result,) = tmp_path.glob("engine-*.json")
    data = json.loads(result.read_text())
    timings = {(t["engine"], t["family"]): t for t in data["timings"]}
    assert set(timings) == {("v1", "user"), ("v2", "user"), ("v1", "game"), ("v2", "game")}
    for t in timings.values():
        assert len(t["per_tenth_us"]) == engine.TENTHS
        assert t["outputs"] > 0 and t["streaming_us"] > 0
    # The same feed gives both engines the same records to emit.
    assert timings[("v1", "user")]["outputs"] == timings[("v2", "user")]["outputs"]
    assert timings[("v1", "game")]["outputs"] == timings[("v2", "game")]["outputs"]


@pytest.mark.parametrize("args", [["--engines", "v3"], ["--families", "team"], ["--events", "0"]])
def test_bad_options_are_named(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        engine.main(args)
    assert "unknown engine or family" in capsys.readouterr().err
