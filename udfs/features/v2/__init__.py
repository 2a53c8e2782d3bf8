"""The second-generation feature engine: the same features as udfs.features.user / .game
(product.md, docs/features.md), computed with O(1) amortised work per event.

What changes against the first generation:

- Windows are running counts over a history kept in event-time order, with one read
  position per window: an event is added once when it is applied and retracted once when
  a window's position passes it. No tick walks the hour or sorts a buffer.
- The ticks at which a key must be evaluated are computed (the next window exit, the
  cleanup, the tick of the first waiting event) instead of being stored as an agenda of
  one timer per event and window: one due tick per key at a time.
- The key's waiting events and its dedup ids are not part of the state: the caller keeps
  them (a Flink adapter in keyed state of its own, the pure driver in memory) and hands
  them in (runtime.on_tick).
- State is encoded explicitly (udfs.features.v2.codec): a version number and builtin
  values only, never a class or module name, so renaming code cannot break a restore.

Each family module (user, game) provides: new_state(key), apply(state, event),
advance(state, tick), evaluate(state, tick), next_change(state, tick_ms), cleanup_time
(state), encode(state), decode(key, data); udfs.features.v2.runtime drives them.
"""
