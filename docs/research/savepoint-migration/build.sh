#!/bin/sh
# Fetch flink-state-processor-api (no 2.2.1 on Maven Central: 2.2.0 is the newest 2.2.x) and build
# the research jar against PyFlink 2.2.1's own lib/ (which lacks the module).
set -e
HERE=$(cd "$(dirname "$0")" && pwd); cd "$HERE"
mvn -q dependency:get -Dartifact=org.apache.flink:flink-state-processor-api:2.2.0 -Dtransitive=false
cp ~/.m2/repository/org/apache/flink/flink-state-processor-api/2.2.0/flink-state-processor-api-2.2.0.jar .
mkdir -p flink-lib java/classes
for j in /work/main/.venv/lib/python3.11/site-packages/pyflink/lib/*.jar; do ln -sf "$j" flink-lib/; done
ln -sf "$HERE/flink-state-processor-api-2.2.0.jar" flink-lib/
javac -d java/classes -cp "flink-lib/*" java/src/tipoff/research/*.java
jar cf java/tipoff-research.jar -C java/classes .
ln -sf "$HERE/java/tipoff-research.jar" flink-lib/
