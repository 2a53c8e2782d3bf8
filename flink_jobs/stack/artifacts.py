"""Fetch the stack's jars from Maven Central, once, into the cache folder.

Only Maven coordinates are used (through the machine's own `mvn`), so the same code
works wherever Maven Central is reachable. Each artifact set lands in a temporary
folder that is renamed into place when complete, so an interrupted fetch never
leaves a half-filled folder that later runs would trust.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

KAFKA_VERSION = "4.1.1"
APICURIO_VERSION = "3.3.3"
LOG4J_VERSION = "2.24.3"
DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"

# Jars the PyFlink jobs load (pipeline.jars). The avro-confluent format exists for 2.2.0,
# not 2.2.1, on Maven Central; the format's API is unchanged between patch releases.
FLINK_JARS = (
    "org.apache.flink:flink-sql-connector-kafka:5.0.0-2.2",
    "org.apache.flink:flink-sql-avro-confluent-registry:2.2.0",
)

Progress = Callable[[str], None]


class FetchError(RuntimeError):
    pass


def mvn(args: list[str], cwd: Path, what: str) -> None:
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FetchError(
            f"Maven (`mvn`) is needed to fetch {what} from Maven Central but is not on PATH. "
            "Install it (Debian: `apt-get install -y maven`) and run the command again."
        )
    proc = subprocess.run(
        [mvn, "-B", "-q", *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise FetchError(f"fetching {what} with Maven failed (exit {proc.returncode}):\n{tail}")


def _pom(coordinates: list[str]) -> str:
    deps = []
    for coord in coordinates:
        group, artifact, version = coord.split(":")
        deps.append(
            f"<dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>"
            f"<version>{version}</version></dependency>"
        )
    return (
        '<project xmlns="http://maven.apache.org/POM/4.0.0"><modelVersion>4.0.0</modelVersion>'
        "<groupId>tipoff</groupId><artifactId>fetch</artifactId><version>1</version>"
        f"<packaging>pom</packaging><dependencies>{''.join(deps)}</dependencies></project>"
    )


def fetch_once(
    target: Path,
    what: str,
    fill: Callable[[Path, Path], None],
    log: Progress,
    source: str = "Maven Central",
) -> Path:
    """`target` as a cached folder: `fill(work, out)` writes it into `out` once, and the
    folder appears (renamed) only when complete, so an interrupted fetch leaves nothing."""
    if target.is_dir():
        return target
    log(f"fetching {what} from {source} into {target} (once; reused afterwards)")
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f".{target.name}.") as tmp:
        work, out = Path(tmp) / "work", Path(tmp) / "out"
        work.mkdir()
        out.mkdir()
        fill(work, out)
        out.rename(target)
    return target


def _copy_dependencies(coordinates: list[str], what: str) -> Callable[[Path, Path], None]:
    def fill(work: Path, out: Path) -> None:
        (work / "pom.xml").write_text(_pom(coordinates))
        mvn(
            [
                f"{DEPENDENCY_PLUGIN}:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={out}",
            ],
            work,
            what,
        )

    return fill


def kafka_lib(cache: Path, log: Progress) -> Path:
    """The broker's classpath: kafka_2.13 with its runtime dependencies, plus a log4j binding."""
    coords = [
        f"org.apache.kafka:kafka_2.13:{KAFKA_VERSION}",
        # Kafka logs through slf4j 1.7; without this binding the broker runs but logs nothing.
        f"org.apache.logging.log4j:log4j-slf4j-impl:{LOG4J_VERSION}",
    ]
    what = f"Apache Kafka {KAFKA_VERSION}"
    return fetch_once(cache / f"kafka-{KAFKA_VERSION}", what, _copy_dependencies(coords, what), log)


def apicurio_app(cache: Path, log: Progress) -> Path:
    """The Apicurio Registry Quarkus application (run with `java -jar quarkus-run.jar`)."""
    what = f"Apicurio Registry {APICURIO_VERSION}"

    def fill(work: Path, out: Path) -> None:
        mvn(
            [
                f"{DEPENDENCY_PLUGIN}:unpack",
                f"-Dartifact=io.apicurio:apicurio-registry-app:{APICURIO_VERSION}:tar.gz:all",
                f"-DoutputDirectory={out}",
            ],
            work,
            what,
        )
        if not (out / "quarkus-run.jar").is_file():
            raise FetchError(f"{what}: the unpacked archive has no quarkus-run.jar")

    return fetch_once(cache / f"apicurio-registry-{APICURIO_VERSION}", what, fill, log)


def flink_jars(jars_dir: Path, log: Progress) -> list[Path]:
    """The connector and format jars PyFlink jobs load, copied flat into `jars_dir`."""
    missing = [c for c in FLINK_JARS if not (jars_dir / _jar_name(c)).is_file()]
    if missing:
        log(f"fetching Flink jars {', '.join(missing)} from Maven Central into {jars_dir}")
        jars_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=jars_dir.parent) as tmp:
            for coord in missing:
                mvn(
                    [
                        f"{DEPENDENCY_PLUGIN}:copy",
                        f"-Dartifact={coord}",
                        f"-DoutputDirectory={tmp}",
                    ],
                    Path(tmp),
                    coord,
                )
                shutil.move(str(Path(tmp) / _jar_name(coord)), jars_dir / _jar_name(coord))
    return [jars_dir / _jar_name(c) for c in FLINK_JARS]


def _jar_name(coord: str) -> str:
    _, artifact, version = coord.split(":")
    return f"{artifact}-{version}.jar"
