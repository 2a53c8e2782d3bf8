#!/bin/sh
# Run a PyFlink script with PyFlink's lib/ plus flink-state-processor-api-2.2.0.jar and
# tipoff-research.jar on the gateway JVM's classpath (no change to the venv). FLINK_HOME must be
# set too: otherwise pyflink.find_flink_home overwrites FLINK_LIB_DIR.
HERE=$(cd "$(dirname "$0")" && pwd)
export FLINK_HOME=/work/main/.venv/lib/python3.11/site-packages/pyflink
export FLINK_LIB_DIR="$HERE/flink-lib"
export PATH=/work/main/.venv/bin:$PATH
exec /work/main/.venv/bin/python "$@"
