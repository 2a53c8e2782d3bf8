"""The bench's outputs: a table on stdout, a JSON result and a PNG chart.

The JSON is the record (every number the table and the chart show, plus the options, the
machine and the input); `render_table` and `render_chart` only read it, so an old result
can be drawn again: `python -m flink_jobs.bench.report RESULT.json`.
"""

from __future__ import annotations

import json
import math
import sys
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

THROUGHPUT_ROWS = (
    ("jvm_copy", "JVM copy, avro-confluent -> Kafka (I/O ceiling)"),
    ("jvm_tumble", "JVM SQL tumble 1 s per user (reference)"),
    ("jvm_over", "JVM SQL OVER 1m/5m/1h/24h per user"),
    ("tipoff", "tipoff, both jobs, exactly-once"),
)
MODES = ("at-least-once", "exactly-once")
REQUIRED = ("machine", "options", "input", "throughput", "ratios", "state", "freshness", "targets")


def _num(x: Any, fmt: str = ",.0f", none: str = "-") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return none
    return format(x, fmt)


def _mib(n: Any) -> str:
    return "-" if not n else f"{n / 2**20:,.0f} MiB"


def render_table(r: Mapping[str, Any]) -> list[str]:
    inp = r["input"]
    lines = [
        f"tipoff bench {'(quick) ' if r['options'].get('quick') else ''}"
        f"{r['started']}: {r['machine']['cpus']} CPUs, parallelism {r['options']['parallelism']} "
        f"on {r['machine']['taskmanagers']} TaskManager(s)",
        f"input: {inp['records']:,} records ({inp['interactions']:,} interactions, "
        f"{inp['game_events']:,} game events), {inp['users']:,} users, {inp['games']} games, "
        f"{inp['event_time_s']:,.0f}s of event time",
        "",
        f"{'THROUGHPUT':<50} {'EVENTS/S':>10} {'vs CEIL':>8} {'vs REF':>7} "
        f"{'CPU s/M':>8} {'PEAK RSS':>9}  WINDOW",
    ]
    tp = r["throughput"]
    ceiling = (tp.get("jvm_copy") or {}).get("events_per_s")
    reference = (tp.get("jvm_tumble") or {}).get("events_per_s")
    for key, label in THROUGHPUT_ROWS:
        row = tp.get(key)
        if not row:
            lines.append(f"{label:<50} {'skipped':>10}")
            continue
        rate = row.get("events_per_s")
        vs_c = f"{rate / ceiling:.1%}" if rate and ceiling else "-"
        vs_r = f"{rate / reference:.1%}" if rate and reference else "-"
        lines.append(
            f"{label:<50} {_num(rate):>10} {vs_c:>8} {vs_r:>7} "
            f"{_num(row.get('cpu_s_per_million'), ',.1f'):>8} "
            f"{_mib(row.get('peak_rss_bytes')):>9}  "
            f"{_num(row.get('window_s'), '.1f')}s {row.get('basis', '')}"
        )
    by_thread = (tp.get("tipoff") or {}).get("cpu_s_per_million_by_thread") or {}
    if by_thread:
        top = ", ".join(f"{k} {v:,.0f}" for k, v in list(by_thread.items())[:8])
        lines += ["", f"tipoff CPU s per million events by thread: {top}"]
    st = r["state"]
    if st:
        lines += ["", *_state_lines(st)]
    fr = r["freshness"]
    if fr:
        lines += [
            "",
            f"FRESHNESS at {_num(fr.get('rate'))} events/s live, receive - feature_time "
            f"(read_committed){'':<5} {'P50':>7} {'P95':>7} {'P99':>7} {'TARGET':>7} "
            f"{'RECORDS':>8}",
        ]
        for mode in MODES:
            m = fr.get(mode)
            if not m:
                lines.append(f"  {mode:<78} skipped")
                continue
            label = (
                f"{mode} (sent {_num(m.get('sent_rate'))}/s of "
                f"{_num(m.get('scheduled_rate', fr.get('rate')))}/s"
                f"{', SENDER BEHIND' if m.get('sender_behind') else ''})"
            )
            lines.append(
                f"  {label:<78} "
                f"{_num(m.get('p50_ms'))} {_num(m.get('p95_ms')):>7} {_num(m.get('p99_ms')):>7} "
                f"{_num(m.get('target_p99_ms')):>7} {_num(m.get('records')):>8}"
            )
    lines += [f"note: {n}" for n in r.get("notes", [])]
    lines += ["", "targets (product.md):"]
    for name, t in r["targets"].items():
        verdict = {True: "MET", False: "NOT MET", None: "n/a"}[t.get("met")]
        lines.append(f"  {verdict:<8} {name}: {t.get('detail', '')}")
    return lines


def _state_lines(st: Mapping[str, Any]) -> list[str]:
    """Keyed state per user and per game: the median over keys (results since per-key
    sizes) with the mean per active entity beside it; older results have the mean only."""
    mean_user = (
        f"{_num(st.get('bytes_per_active_user'))} B per active user (mean over "
        f"{_num(st.get('users'))})"
    )
    mean_game = f"{_num(st.get('bytes_per_game'))} B per game"
    savepoint = f"savepoint {_mib(st.get('savepoint_bytes'))}"
    if st.get("user_median_bytes") is None:
        return [f"state: {mean_user}, {mean_game}; {savepoint}"]
    lines = [
        f"state per user: median {_num(st['user_median_bytes'])} B, p10 "
        f"{_num(st.get('user_p10_bytes'))} B, p90 {_num(st.get('user_p90_bytes'))} B, p99 "
        f"{_num(st.get('user_p99_bytes'))} B, max {_num(st.get('user_max_bytes'))} B over "
        f"{_num(st.get('user_keys'))} users with state; {mean_user}"
    ]
    game = (
        f"median {_num(st['game_median_bytes'])} B over {_num(st.get('game_keys'))} games, "
        if st.get("game_median_bytes") is not None
        else ""
    )
    lines.append(f"state per game: {game}{mean_game}; {savepoint}")
    shares = st.get("user_state_shares") or {}
    if shares:
        top = sorted(shares.items(), key=lambda kv: -kv[1])
        lines.append("user state by kind: " + ", ".join(f"{k} {v:.0%}" for k, v in top))
    return lines


def render_chart(r: Mapping[str, Any], path: Path) -> Path:
    """Throughput (events/s, with ratios to the ceiling and the reference) and freshness
    percentiles per delivery guarantee, with product.md's targets as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5.2), gridspec_kw={"width_ratios": [3, 2]})
    tp = r["throughput"]
    ceiling = (tp.get("jvm_copy") or {}).get("events_per_s")
    reference = (tp.get("jvm_tumble") or {}).get("events_per_s")
    labels, values, colors = [], [], []
    palette = {"jvm_copy": "#9e9e9e", "jvm_tumble": "#4c72b0", "jvm_over": "#8fa8d8"}
    for key, label in THROUGHPUT_ROWS:
        row = tp.get(key) or {}
        labels.append(textwrap.fill(label.split(" (")[0], 22))
        values.append(row.get("events_per_s") or 0.0)
        colors.append(palette.get(key, "#dd8452"))
    bars = ax1.bar(range(len(values)), values, color=colors)
    for bar, v in zip(bars, values, strict=True):
        notes = [f"{v:,.0f}/s"]
        if ceiling and v:
            notes.append(f"{v / ceiling:.0%} of ceiling")
        if reference and v:
            notes.append(f"{v / reference:.0%} of ref.")
        ax1.annotate(
            "\n".join(notes),
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    target = r["targets"].get("throughput vs reference", {}).get("threshold")
    if target:
        ax1.axhline(target, color="#c44e52", ls="--", lw=1)
        ax1.annotate(
            "50% of reference",
            (-0.45, target),
            color="#c44e52",
            fontsize=8,
            ha="left",
            va="top",
        )
    ax1.axhline(100_000, color="#55a868", ls=":", lw=1)
    ax1.annotate(
        "100,000/s target",
        (len(values) - 0.55, 100_000),
        color="#55a868",
        fontsize=8,
        ha="right",
        va="bottom",
    )
    ax1.set_xticks(range(len(values)), labels, fontsize=8)
    ax1.set_ylabel("sustained input events/s (log scale)")
    # Log scale: the ceiling can be 50x tipoff, and both must stay readable.
    ax1.set_yscale("log")
    shown = [v for v in values if v > 0] or [1.0]
    ax1.set_ylim(min([*shown, 100_000]) / 3, max([*shown, 100_000]) * 6)
    ax1.set_title(f"Throughput, parallelism {r['options']['parallelism']}", fontsize=10)

    fr = r["freshness"] or {}
    width = 0.38
    for i, mode in enumerate(MODES):
        m = fr.get(mode) or {}
        ps = [m.get("p50_ms") or 0, m.get("p95_ms") or 0, m.get("p99_ms") or 0]
        xs = [x + (i - 0.5) * width for x in range(3)]
        bs = ax2.bar(xs, ps, width, label=mode, color=("#55a868", "#dd8452")[i])
        for b, v in zip(bs, ps, strict=True):
            ax2.annotate(
                f"{v:,.0f}",
                (b.get_x() + b.get_width() / 2, v),
                ha="center",
                va="bottom",
                fontsize=8,
            )
        if m.get("target_p99_ms"):
            ax2.axhline(m["target_p99_ms"], color=("#55a868", "#dd8452")[i], ls="--", lw=1)
    ax2.set_xticks(range(3), ["p50", "p95", "p99"])
    ax2.set_ylabel("receive − feature_time, ms")
    ax2.set_title(
        f"Freshness at {fr.get('rate') or 0:,.0f} events/s live (dashed: p99 targets)", fontsize=10
    )
    ax2.legend(fontsize=8)
    quick = " (quick, not a measurement)" if r["options"].get("quick") else ""
    fig.suptitle(f"tipoff bench {r['started']}{quick}", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write(r: dict[str, Any], results_dir: Path, chart: bool = True) -> tuple[Path, Path | None]:
    """`<results>/bench-<stamp>.json` (+ .png); the chart is skipped without matplotlib."""
    results_dir.mkdir(parents=True, exist_ok=True)
    stem = "bench-" + r["started"].replace(":", "").replace("-", "").replace("T", "-")[:15]
    if r["options"].get("quick"):
        stem += "-quick"
    png: Path | None = None
    if chart:
        try:
            png = render_chart(r, results_dir / f"{stem}.png")
            r["chart"] = png.name
        except ImportError:
            r["chart"] = None
            r.setdefault("notes", []).append(
                "no chart: matplotlib is not installed (pip install 'tipoff[bench]')"
            )
    path = results_dir / f"{stem}.json"
    path.write_text(json.dumps(r, indent=2, sort_keys=False) + "\n")
    return path, png


def _main(argv: list[str]) -> int:
    r = json.loads(Path(argv[0]).read_text())
    print("\n".join(render_table(r)))
    if len(argv) > 1:
        print(render_chart(r, Path(argv[1])))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
