"""`tipoff demo`: the whole thing live on the local stack, with a terminal view.

Stack up, schemas registered, both feature jobs running on a MiniCluster, the simulator
in live mode, and a table of the most exciting games and most active users refreshed
from the committed feature topics until --duration ends or Ctrl-C.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any

from confluent_kafka import Consumer
from confluent_kafka.schema_registry.avro import AvroDeserializer

from flink_jobs.output import Log
from flink_jobs.settings import Settings
from flink_jobs.stack.services import LocalStack
from flink_jobs.tools import schemas
from flink_jobs.tools.tail import consumer, decode


def _spawn(args: list[str], log_path: str) -> subprocess.Popen[bytes]:
    out = open(log_path, "wb")  # noqa: SIM115 - the child owns it for its whole life
    return subprocess.Popen(
        [sys.executable, "-m", "flink_jobs.cli", *args],
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(p: subprocess.Popen[bytes]) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def _view(games: dict[str, Any], users: dict[str, Any], elapsed: float, total: float) -> str:
    live = [g for g in games.values() if g and g["status"] == "LIVE"]
    top_games = sorted(live, key=lambda g: -g["excitement"])[:6]
    top_users = sorted((u for u in users.values() if u), key=lambda u: -u["interactions_5m"])[:6]
    lines = [
        f"tipoff demo  {elapsed:5.0f}s / {total:.0f}s   games with features: {len(games)}, "
        f"users: {len(users)}   (Ctrl-C stops)",
        "",
        f"{'game':<22}{'league':<7}{'score':>9}{'per':>4}{'clock':>6}{'lead chg':>9}"
        f"{'viewers 5m':>11}{'trend':>7}{'excitement':>11}",
    ]
    for g in top_games:
        lines.append(
            f"{g['game_id']:<22}{g['league'] or '-':<7}{g['home_score']:>4}-{g['away_score']:<4}"
            f"{g['period']:>4}{g['clock_seconds_remaining']:>6}{g['lead_changes']:>9}"
            f"{g['viewers_5m']:>11}{g['viewer_trend']:>7.2f}{g['excitement']:>11.3f}"
        )
    lines += [
        "",
        f"{'user':<10}{'1m':>4}{'5m':>4}{'1h':>5}{'session':>9}  {'watching':<22}top teams",
    ]
    for u in top_users:
        lines.append(
            f"{u['user_id']:<10}{u['interactions_1m']:>4}{u['interactions_5m']:>4}"
            f"{u['interactions_1h']:>5}{u['session_events']:>9}  "
            f"{u['watching_game_id'] or '-':<22}{', '.join(u['top_teams'])}"
        )
    return "\n".join(lines)


def run(s: Settings, duration_s: float, rate: float, log: Log) -> int:
    res = LocalStack(s.stack, log=log).up()
    log(f"stack: Kafka {res.endpoints.bootstrap_servers}, registry {res.endpoints.registry_url}")
    schemas.register(s, 4, None, log=log)
    logs = s.stack.state_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log(f"starting both feature jobs (log: {logs / 'demo-jobs.log'}) ...")
    jobs = _spawn(["run", "all", "--checkpoint-interval", "5000"], str(logs / "demo-jobs.log"))
    sim = _spawn(
        [
            "simulate",
            "--rate",
            str(rate),
            "--duration",
            str(duration_s + 30),
            "--quiet",
            "--games",
            "8",
        ],
        str(logs / "demo-simulate.log"),
    )
    deser = AvroDeserializer(schemas.registry(s.endpoints.registry_url))
    c: Consumer = consumer(s.endpoints.bootstrap_servers, from_beginning=False)
    c.subscribe([s.topics.game_features, s.topics.user_features])
    state: dict[str, dict[str, Any]] = {s.topics.game_features: {}, s.topics.user_features: {}}
    t0 = last = time.monotonic()
    tty = sys.stdout.isatty()
    try:
        while time.monotonic() - t0 < duration_s:
            if jobs.poll() is not None:
                log(f"the feature jobs stopped (exit {jobs.returncode}): {logs / 'demo-jobs.log'}")
                return 1
            msg = c.poll(0.2)
            if msg is not None and not msg.error():
                topic, key = msg.topic(), msg.key()
                # a consumed record has a topic; the feature records are keyed
                assert topic is not None and key is not None
                state[topic][key.decode()] = decode(msg, deser).value
            if time.monotonic() - last >= (2 if tty else 15):
                last = time.monotonic()
                view = _view(
                    state[s.topics.game_features],
                    state[s.topics.user_features],
                    last - t0,
                    duration_s,
                )
                print(("\033[2J\033[H" if tty else "\n") + view, flush=True)
    except KeyboardInterrupt:
        log("\nstopping ...")
    finally:
        c.close()
        _stop(sim)
        _stop(jobs)
    log("demo done; the stack keeps running (`tipoff stack down` stops it)")
    return 0
