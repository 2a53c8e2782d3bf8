package tipoff.research;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.state.table.SavepointTypeInformationFactory;

/** The key type PyFlink's key_by uses: Types.ROW([Types.STRING()]) -> RowTypeInfo(String). */
public class RowOfStringKey implements SavepointTypeInformationFactory {
    @Override
    public TypeInformation<?> getTypeInformation() {
        return Types.ROW(Types.STRING);
    }
}
