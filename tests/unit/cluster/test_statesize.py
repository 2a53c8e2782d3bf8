"""`tipoff savepoint inspect`: per-operator sizes and keyed state per user / game, on
hand-made SavepointInfo values (no JVM)."""

from __future__ import annotations

import pytest

from flink_jobs.cli import build_parser, main
from flink_jobs.cluster import savepoints, statesize
from flink_jobs.cluster.savepoints import SavepointInfo, SavepointOperator
from flink_jobs.cluster.statesize import OperatorSize, human, measure
from flink_jobs.pipeline import uid

USER_UID = uid("user-features", "features")
GAME_UID = uid("game-features", "features")


def _op(
    op_id: str, op_uid: str | None, keyed: int = 0, operator: int = 0, coord: int = 0
) -> SavepointOperator:
    return SavepointOperator(
        operator_id=op_id * 32,
        uid=op_uid,
        name=None if op_uid else "Map",
        parallelism=1,
        max_parallelism=128,
        keyed_bytes=keyed,
        operator_bytes=operator,
        coordinator_bytes=coord,
        has_state=bool(keyed or operator or coord),
    )


INFO = SavepointInfo(
    path="file:/sp/savepoint-abc",
    checkpoint_id=7,
    kind="Suspend Savepoint (CANONICAL)",
    operators=(
        _op("a", USER_UID, keyed=3_000_000),
        _op("b", GAME_UID, keyed=500_000),
        _op("c", "1_source", operator=438, coord=213),
        _op("d", "tipoff.user-features.decode"),  # stateless: not listed
        _op("e", None),
    ),
)


def test_measure_lists_operators_with_state_largest_first() -> None:
    """Only operators with state appear, ordered by their total bytes."""
    size = measure(INFO)
    assert [op.label for op in size.operators] == [USER_UID, GAME_UID, "1_source"]
    assert size.total == 3_000_000 + 500_000 + 438 + 213


@pytest.mark.parametrize(
    ("users", "games", "per_user", "per_game"),
    [
        (2_000, 10, 1_500.0, 50_000.0),
        (3, None, 1_000_000.0, None),
        (None, None, None, None),
    ],
)
def test_keyed_bytes_divided_by_active_entities(
    users: int | None, games: int | None, per_user: float | None, per_game: float | None
) -> None:
    """The user job's keyed state is divided by users, the game job's by games; without a
    count there is no per-entity figure, and no other operator gets one."""
    ops = {op.label: op for op in measure(INFO, users, games).operators}
    assert ops[USER_UID].keyed_per_entity == per_user
    assert ops[GAME_UID].keyed_per_entity == per_game
    assert ops["1_source"].keyed_per_entity is None


def test_render_names_bytes_per_user_and_game() -> None:
    """The table carries human sizes per operator and the per-entity figure in bytes."""
    lines = measure(INFO, 2_000, 10).render()
    assert lines[0].startswith("file:/sp/savepoint-abc: Suspend Savepoint (CANONICAL), 3 ")
    assert "(3,500,651 B)" in lines[0]
    user = next(line for line in lines if line.startswith(USER_UID))
    assert " 1/128 " in user and "2.9 MiB" in user and user.endswith("1,500 B per user (2,000)")
    game = next(line for line in lines if line.startswith(GAME_UID))
    assert game.endswith("50,000 B per game (10)")
    source = next(line for line in lines if line.startswith("1_source"))
    assert "438 B" in source and "213 B" in source and "per" not in source


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "-"), (1, "1 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (1536, "1.5 KiB"),
     (5 * 1024**2, "5.0 MiB"), (3 * 1024**3, "3.0 GiB")],
)  # fmt: skip
def test_human_sizes(n: int, text: str) -> None:
    """Binary units, as the docs' tables use."""
    assert human(n) == text


def test_zero_entities_give_no_ratio() -> None:
    """A zero count never divides."""
    assert OperatorSize("x", 10, 0, 0, entity="user", entities=0).keyed_per_entity is None


def test_cli_parses_and_routes_inspect(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`tipoff savepoint inspect PATH --users N --games N` prints the table (the JVM read is
    replaced by the hand-made info)."""
    a = build_parser().parse_args(["savepoint", "inspect", "/sp", "--users", "2000"])
    assert (a.savepoint_action, a.path, a.users, a.games) == ("inspect", "/sp", 2000, None)
    monkeypatch.setattr(savepoints, "inspect", lambda path: INFO)
    assert main(["savepoint", "inspect", "/sp", "--users", "2000", "--games", "10"]) == 0
    assert "1,500 B per user (2,000)" in capsys.readouterr().out


def test_cli_reports_unreadable_savepoint(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """An unreadable savepoint or a non-positive count exits 2 with the reason."""

    def fail(path: str) -> SavepointInfo:
        raise savepoints.SavepointCheckError(f"cannot read savepoint {path}: no _metadata")

    monkeypatch.setattr(savepoints, "inspect", fail)
    assert main(["savepoint", "inspect", "/nope"]) == 2
    assert "cannot read savepoint /nope" in capsys.readouterr().err
    zero = build_parser().parse_args(["savepoint", "inspect", "/sp", "--games", "0"])
    assert statesize.inspect_cmd(zero) == 2
    assert "--games must be positive" in capsys.readouterr().err
