"""Is a Kafka broker / schema registry answering? Short timeouts, no exceptions."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from confluent_kafka.admin import AdminClient


def admin(bootstrap: str) -> AdminClient:
    # log_level 0: while a broker is still starting, librdkafka would print a connection
    # error line per attempt; callers report failures themselves.
    return AdminClient({"bootstrap.servers": bootstrap, "log_level": 0, "socket.timeout.ms": 3000})


def kafka_ok(bootstrap: str) -> bool:
    try:
        md = admin(bootstrap).list_topics(timeout=3)
    except Exception:
        return False
    return bool(md.brokers)


def kafka_detail(bootstrap: str) -> str:
    try:
        md = admin(bootstrap).list_topics(timeout=3)
    except Exception as e:
        return f"DOWN ({e})"
    topics = [t for t in md.topics if not t.startswith("__")]
    return f"UP: {len(md.brokers)} broker(s), {len(topics)} topic(s)"


def http_json(url: str, timeout: float = 3.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout) as resp:
        return json.loads(resp.read() or b"null")


def registry_ok(url: str) -> bool:
    try:
        http_json(f"{url}/subjects")
    except (OSError, ValueError, urllib.error.URLError):
        return False
    return True


def registry_detail(url: str) -> str:
    try:
        subjects = http_json(f"{url}/subjects")
        level = http_json(f"{url}/config").get("compatibilityLevel", "?")
    except (OSError, ValueError, urllib.error.URLError) as e:
        return f"DOWN ({e})"
    return f"UP: {len(subjects)} subject(s), global compatibility {level}"
