package tipoff.research;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.SavepointReader;
import org.apache.flink.state.api.functions.KeyedStateReaderFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;
import org.apache.flink.util.CloseableIterator;
import org.apache.flink.util.Collector;

import java.util.Map;
import java.util.TreeMap;
import java.util.TreeSet;

/** Reads back what WriteFeaturesV2 wrote. usage: ReadV2 <savepoint> <uid> */
public class ReadV2 {
    public static class Reader extends KeyedStateReaderFunction<Row, String> {
        transient MapState<String, byte[]> state;

        @Override
        public void open(OpenContext ctx) {
            state = getRuntimeContext().getMapState(WriteFeaturesV2.V2_STATE);
        }

        @Override
        public void readKey(Row key, Context ctx, Collector<String> out) throws Exception {
            Map<String, Integer> sizes = new TreeMap<>();
            for (Map.Entry<String, byte[]> e : state.entries()) sizes.put(e.getKey(), e.getValue().length);
            out.collect(key + " " + sizes + " timers=" + new TreeSet<>(ctx.registeredEventTimeTimers()).size());
        }
    }

    public static void main(String[] args) throws Exception {
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment();
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.setParallelism(1);
        int n = 0;
        try (CloseableIterator<String> it = SavepointReader.read(env, args[0], new HashMapStateBackend())
                .readKeyedState(OperatorIdentifier.forUid(args[1]), new Reader(), Types.ROW(Types.STRING), Types.STRING)
                .executeAndCollect()) {
            while (it.hasNext()) { String s = it.next(); if (n++ < 3) System.out.println(s); }
        }
        System.out.println(n + " keys");
    }
}
