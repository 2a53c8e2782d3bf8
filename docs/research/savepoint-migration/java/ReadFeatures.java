package tipoff.research;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ListState;
import org.apache.flink.api.common.state.ListStateDescriptor;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.SavepointReader;
import org.apache.flink.state.api.functions.KeyedStateReaderFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;

import java.io.PrintStream;
import java.io.FileOutputStream;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

/**
 * Reads every key of tipoff.<job>.features with the DataStream State Processor API: the four
 * states and the registered event-time / processing-time timers. One JSON object per key.
 *
 * usage: ReadFeatures <savepoint dir> <operator uid> <out.jsonl>
 */
public class ReadFeatures {

    public static class Reader extends KeyedStateReaderFunction<Row, String> {
        ValueState<byte[]> clock, feature;
        ListState<byte[]> pending;
        MapState<String, Long> dedup;

        @Override
        public void open(OpenContext ctx) {
            clock = getRuntimeContext().getState(new ValueStateDescriptor<>("key-clock",
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
            feature = getRuntimeContext().getState(new ValueStateDescriptor<>("feature-state",
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
            pending = getRuntimeContext().getListState(new ListStateDescriptor<>("pending-events",
                    PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO));
            dedup = getRuntimeContext().getMapState(
                    new MapStateDescriptor<>("dedup-ids", Types.STRING, Types.LONG));
        }

        @Override
        public void readKey(Row key, Context ctx, Collector<String> out) throws Exception {
            Base64.Encoder b64 = Base64.getEncoder();
            StringBuilder s = new StringBuilder("{\"key\":").append(q((String) key.getField(0)));
            byte[] c = clock.value(), f = feature.value();
            s.append(",\"key_clock\":").append(c == null ? "null" : q(b64.encodeToString(c)));
            s.append(",\"feature_state\":").append(f == null ? "null" : q(b64.encodeToString(f)));
            s.append(",\"pending_events\":[");
            Iterable<byte[]> it = pending.get();
            boolean first = true;
            if (it != null) for (byte[] e : it) {
                s.append(first ? "" : ",").append(q(b64.encodeToString(e)));
                first = false;
            }
            s.append("],\"dedup_ids\":{");
            first = true;
            for (Map.Entry<String, Long> e : dedup.entries()) {
                s.append(first ? "" : ",").append(q(e.getKey())).append(':').append(e.getValue());
                first = false;
            }
            s.append("},\"event_timers\":").append(new TreeSet<>(ctx.registeredEventTimeTimers()));
            s.append(",\"processing_timers\":").append(new TreeSet<>(ctx.registeredProcessingTimeTimers()));
            out.collect(s.append('}').toString());
        }
    }

    static String q(String v) {
        return '"' + v.replace("\\", "\\\\").replace("\"", "\\\"") + '"';
    }

    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.setParallelism(1);
        SavepointReader sp = SavepointReader.read(env, args[0], new HashMapStateBackend());
        DataStream<String> rows = sp.readKeyedState(
                OperatorIdentifier.forUid(args[1]), new Reader(), Types.ROW(Types.STRING), Types.STRING);
        int n = 0;
        try (PrintStream ps = new PrintStream(new FileOutputStream(args[2]), false, "UTF-8");
                CloseableIterator<String> it = rows.executeAndCollect()) {
            while (it.hasNext()) { ps.println(it.next()); n++; }
        }
        System.out.println(n + " keys -> " + args[2]);
    }
}
