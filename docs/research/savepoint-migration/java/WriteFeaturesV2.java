package tipoff.research;

import org.apache.flink.api.common.RuntimeExecutionMode;
import org.apache.flink.api.common.eventtime.WatermarkStrategy;
import org.apache.flink.api.common.functions.MapFunction;
import org.apache.flink.api.common.functions.OpenContext;
import org.apache.flink.api.common.state.MapState;
import org.apache.flink.api.common.state.MapStateDescriptor;
import org.apache.flink.api.common.typeinfo.PrimitiveArrayTypeInfo;
import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.api.java.functions.KeySelector;
import org.apache.flink.connector.file.src.FileSource;
import org.apache.flink.connector.file.src.reader.TextLineInputFormat;
import org.apache.flink.core.fs.Path;
import org.apache.flink.runtime.state.hashmap.HashMapStateBackend;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.JsonNode;
import org.apache.flink.shaded.jackson2.com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.flink.state.api.OperatorIdentifier;
import org.apache.flink.state.api.OperatorTransformation;
import org.apache.flink.state.api.SavepointWriter;
import org.apache.flink.state.api.StateBootstrapTransformation;
import org.apache.flink.state.api.functions.KeyedStateBootstrapFunction;
import org.apache.flink.streaming.api.datastream.DataStream;
import org.apache.flink.streaming.api.environment.StreamExecutionEnvironment;
import org.apache.flink.types.Row;

import java.util.Base64;
import java.util.Iterator;
import java.util.Map;

/**
 * Writes keyed state for a NEW operator uid from rows prepared in Python.
 *
 * Input: JSON lines {"key": "<entity key>", "state": {"<name>": "<base64 bytes>", ...},
 * "timers": [<event-time ms>, ...]}. Output state of the operator: MapState<String, byte[]>
 * "v2-state" (map key = sub-state name, value = pickled bytes as Python wrote them) and the
 * event-time timers, keyed by Row(String) exactly as PyFlink's key_by / tipoff's by_key keys
 * (Types.ROW(Types.STRING) -> RowSerializer; key groups from Row.hashCode()).
 *
 * usage: WriteFeaturesV2 <input.jsonl> <new uid> <out dir> [<existing savepoint> [<old uid to drop>]]
 *   without an existing savepoint: a new savepoint holding only this operator (max parallelism 128)
 *   with one: a copy of it (Kafka source offsets, sink state, ...) plus this operator, minus the old.
 */
public class WriteFeaturesV2 {

    public static final MapStateDescriptor<String, byte[]> V2_STATE = new MapStateDescriptor<>(
            "v2-state", Types.STRING, PrimitiveArrayTypeInfo.BYTE_PRIMITIVE_ARRAY_TYPE_INFO);

    /** One parsed input line: (key, state json, timers json) kept as a Row of strings. */
    static final TypeInformation<Row> LINE = Types.ROW(Types.STRING, Types.STRING);

    public static class Parse implements MapFunction<String, Row> {
        transient ObjectMapper json;

        @Override
        public Row map(String line) throws Exception {
            if (json == null) json = new ObjectMapper();
            JsonNode n = json.readTree(line);
            return Row.of(n.get("key").asText(), line);
        }
    }

    public static class Bootstrap extends KeyedStateBootstrapFunction<Row, Row> {
        transient MapState<String, byte[]> state;
        transient ObjectMapper json;

        @Override
        public void open(OpenContext ctx) {
            state = getRuntimeContext().getMapState(V2_STATE);
            json = new ObjectMapper();
        }

        @Override
        public void processElement(Row line, Context ctx) throws Exception {
            JsonNode n = json.readTree((String) line.getField(1));
            Iterator<Map.Entry<String, JsonNode>> it = n.get("state").fields();
            while (it.hasNext()) {
                Map.Entry<String, JsonNode> e = it.next();
                state.put(e.getKey(), Base64.getDecoder().decode(e.getValue().asText()));
            }
            JsonNode timers = n.get("timers");
            if (timers != null) for (JsonNode t : timers) ctx.timerService().registerEventTimeTimer(t.asLong());
        }
    }

    public static void main(String[] args) throws Exception {
        String input = args[0], uid = args[1], out = args[2];
        org.apache.flink.configuration.Configuration conf = new org.apache.flink.configuration.Configuration();
        // fromExistingSavepoint ships the existing OperatorStates through env.fromData with a
        // Kryo GenericTypeInfo; on Java 17 Kryo's reflectasm instantiation of the package-private
        // InflightDataRescalingDescriptor$NoRescalingDescriptor fails (IllegalAccessError).
        // OperatorState is java.io.Serializable: serialize it with Java serialization instead.
        conf.setString("pipeline.serialization-config",
                "[org.apache.flink.runtime.checkpoint.OperatorState: {type: kryo, kryo-type: default, "
                        + "class: com.esotericsoftware.kryo.serializers.JavaSerializer}, "
                        + "org.apache.flink.runtime.checkpoint.OperatorSubtaskState: {type: kryo, kryo-type: default, "
                        + "class: com.esotericsoftware.kryo.serializers.JavaSerializer}]");
        StreamExecutionEnvironment env = StreamExecutionEnvironment.getExecutionEnvironment(conf);
        env.setRuntimeMode(RuntimeExecutionMode.valueOf(System.getProperty("mode", "BATCH")));
        env.setParallelism(1);
        // Workaround (2.2.0 writer on the 2.2.1 runtime): chained, the reducer's finish() runs
        // before the bootstrap operator's endInput() emits its snapshot -> an empty savepoint.
        env.disableOperatorChaining();

        DataStream<Row> rows = env.fromSource(
                        FileSource.forRecordStreamFormat(new TextLineInputFormat(), new Path(input)).build(),
                        WatermarkStrategy.noWatermarks(), "bootstrap rows")
                .map(new Parse()).returns(LINE);

        StateBootstrapTransformation<Row> features = OperatorTransformation.bootstrapWith(rows)
                .keyBy((KeySelector<Row, Row>) r -> Row.of(r.getField(0)), Types.ROW(Types.STRING))
                .transform(new Bootstrap());

        SavepointWriter writer = args.length > 3
                ? SavepointWriter.fromExistingSavepoint(env, args[3], new HashMapStateBackend())
                : SavepointWriter.newSavepoint(env, new HashMapStateBackend(), 128);
        if (args.length > 4) writer = writer.removeOperator(OperatorIdentifier.forUid(args[4]));
        writer.withOperator(OperatorIdentifier.forUid(uid), features).write(out);
        env.execute("write " + uid);
        System.out.println("wrote " + out);
    }
}
