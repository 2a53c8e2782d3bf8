package tipoff.research;

import org.apache.flink.api.common.typeinfo.TypeInformation;
import org.apache.flink.api.common.typeinfo.Types;
import org.apache.flink.state.table.SavepointTypeInformationFactory;

/** Types.STRING, for `fields.<map column>.key-type-factory`: the 2.2.0 connector ignores
 * `fields.<col>.key-class` (it reads the primary-key column's value-class instead) and infers a
 * MAP column's key type from the map's value type. */
public class StringType implements SavepointTypeInformationFactory {
    @Override
    public TypeInformation<?> getTypeInformation() {
        return Types.STRING;
    }
}
