"""Q4 check: a PyFlink (thread mode) job restores the written savepoint under the new uid and reads
MapState<STRING, BYTES> 'v2-state' per key; the bootstrapped timers fire (bounded input -> final
watermark). usage: q4_restore_check.py <savepoint dir> <source root>"""
import pickle
import sys

from pyflink.common import Configuration, Types
from pyflink.datastream import KeyedProcessFunction, StreamExecutionEnvironment
from pyflink.datastream.state import MapStateDescriptor

sp, src = sys.argv[1], sys.argv[2]
# "pickled": declare the values Types.PICKLED_BYTE_ARRAY() (same Java serializer as byte[]):
# PyFlink unpickles them itself.
PICKLED = len(sys.argv) > 3 and sys.argv[3] == "pickled"
sys.path.insert(0, src)


def raw(v):
    """Thread mode hands a BYTES (PRIMITIVE_ARRAY(BYTE)) state value over as a tuple of signed
    ints, not bytes."""
    return v if isinstance(v, (bytes, bytearray)) else bytes(b & 0xFF for b in v)


class Check(KeyedProcessFunction):
    def open(self, ctx):
        value_type = Types.PICKLED_BYTE_ARRAY() if PICKLED else Types.PRIMITIVE_ARRAY(Types.BYTE())
        self.state = ctx.get_map_state(MapStateDescriptor("v2-state", Types.STRING(), value_type))
        self.load = (lambda v: v) if PICKLED else (lambda v: pickle.loads(raw(v)))

    def process_element(self, row, ctx):
        names = sorted(self.state.keys())
        print("TYPE of a state value in thread mode:", type(self.state.get(names[0])).__name__, flush=True)
        clock = self.load(self.state.get("clock")) if "clock" in names else None
        feature = self.load(self.state.get("feature")) if "feature" in names else None
        yield (f"ELEMENT key={ctx.get_current_key()!r} sub-states={names} "
               f"clock.agenda={len(clock.agenda) if clock else None} feature={type(feature).__name__}")

    def on_timer(self, ts, ctx):
        yield f"TIMER key={ctx.get_current_key()!r} ts={ts}"


conf = Configuration()
conf.set_string("python.execution-mode", "thread")
conf.set_string("python.executable", sys.executable)
conf.set_string("python.client.executable", sys.executable)
conf.set_string("execution.savepoint.path", sp)
conf.set_string("execution.runtime-mode", "STREAMING")
env = StreamExecutionEnvironment.get_execution_environment(conf)
env.set_parallelism(1)
keys = ["u000022", "u000135", "u000129"]
ds = env.from_collection([(k,) for k in keys], Types.ROW([Types.STRING()]))
out = (ds.key_by(lambda r: r[0], Types.STRING())
       .process(Check(), output_type=Types.STRING())
       .uid("tipoff.user-features.features-v2"))
lines = list(out.execute_and_collect())
for line in lines:
    if line.startswith("ELEMENT"):
        print(line)
timers = [line for line in lines if line.startswith("TIMER")]
print(len(timers), "timers fired, e.g.", timers[:2])
