"""Q3: are the registered event-time timers implied by the states? For each key: the KeyClock's
agenda (the ticks Features.on_timer acts on: clock.scheduled(t)) vs the timers Flink holds.

usage: q3_timers.py <source root> <rows.jsonl>...
"""
import base64
import json
import pickle
import sys

sys.path.insert(0, sys.argv[1])
for path in sys.argv[2:]:
    rows = [json.loads(line) for line in open(path)]
    missing = stale = live = 0
    no_clock_with_timers = timers_without_state = keys_no_timers = 0
    stale_kinds = {}
    for r in rows:
        timers = set(r["event_timers"])
        if r["processing_timers"]:
            print("  processing timers!", r["key"])
        if r["key_clock"] is None:
            no_clock_with_timers += bool(timers)
            continue
        clock = pickle.loads(base64.b64decode(r["key_clock"]))
        agenda = set(clock.agenda)
        missing += len(agenda - timers)        # a tick the state expects but no timer would fire
        live += len(agenda & timers)
        extra = timers - agenda
        stale += len(extra)                    # on_timer returns at once for these
        keys_no_timers += not timers
        for t in extra:
            kind = "<= last_tick" if clock.last_tick is not None and t <= clock.last_tick else "> last_tick"
            stale_kinds[kind] = stale_kinds.get(kind, 0) + 1
    print(f"{path}: {len(rows)} keys; agenda ticks with a timer {live}, agenda ticks WITHOUT a timer "
          f"{missing}; timers not on the agenda (stale) {stale} {stale_kinds}; keys without clock but "
          f"with timers {no_clock_with_timers}; keys without timers {keys_no_timers}")
