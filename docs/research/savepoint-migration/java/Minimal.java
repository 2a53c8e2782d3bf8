package tipoff.research;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.ValueState;
import org.apache.flink.api.common.state.ValueStateDescriptor;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.OperatorTransformation;
import org.apache.flink.state.api.SavepointWriter;
import org.apache.flink.state.api.functions.KeyedStateBootstrapFunction;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;

/** Smallest keyed bootstrap: String keys, ValueState<Long>. usage: Minimal <out dir> */
public class Minimal {
    public static class B extends KeyedStateBootstrapFunction<String, String> {
        transient ValueState<Long> v;
        @Override public void open(OpenContext c) { v = getRuntimeContext().getState(new ValueStateDescriptor<>("v", Types.LONG)); }
        @Override public void processElement(String s, Context ctx) throws Exception { v.update((long) s.length()); }
    }
    public static void main(String[] args) throws Exception {
        org.apache.flink.configuration.Configuration conf = new org.apache.flink.configuration.Configuration();
        conf.setString("pipeline.serialization-config",
                "[org.apache.flink.runtime.checkpoint.OperatorState: {type: kryo, kryo-type: default, "
                        + "class: com.esotericsoftware.kryo.serializers.JavaSerializer}, "
                        + "org.apache.flink.runtime.checkpoint.OperatorSubtaskState: {type: kryo, kryo-type: default, "
                        + "class: com.esotericsoftware.kryo.serializers.JavaSerializer}]");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setRuntimeMode(RuntimeExecutionMode.BATCH);
        env.setParallelism(1);
        // Workaround (2.2.0 writer on the 2.2.1 runtime): chained, the reducer's finish() runs
        // before the bootstrap operator's endInput() emits its snapshot -> an empty savepoint.
        env.disableOperatorChaining();
        SavepointWriter.newSavepoint(env, new HashMapStateBackend(), 128)
                .withOperator(OperatorIdentifier.forUid("minimal"),
                        OperatorTransformation.bootstrapWith(env.fromData("a", "bb", "ccc"))
                                .keyBy(s -> s, Types.STRING).transform(new B()))
                .write(args[0]);
        env.execute("minimal");
    }
}
