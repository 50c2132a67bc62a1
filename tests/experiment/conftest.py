"""Shared helpers: small experiment files written into a test's temporary folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

# Two services, one downstream call, a per-attempt timeout: runs in a few milliseconds.
SMALL = """
[experiment]
name = "small"
description = "two services"
model = "topology"
duration = "60s"
warmup = "10s"
replications = 3
seed = 5
window = "10s"

[slo]
availability = 0.9
latency = { p99 = "1s" }
uptime = 0.5

[model.services.api]
workers = 4
[model.services.api.endpoints.get]
service_time = { kind = "exponential", mean = "5ms" }
calls = [{ target = "db.query", policy = "db" }]

[model.services.db]
workers = 2
[model.services.db.endpoints.query]
service_time = { kind = "exponential", mean = "20ms" }

[model.network.default]
latency = "1ms"

[model.workloads.users]
kind = "open"
target = "api.get"
rate = "20/s"
timeout = "2s"

[policies.db]
timeout = { seconds = "500ms" }
"""

WriteConfig = Callable[..., Path]


@pytest.fixture
def write_config(tmp_path: Path) -> WriteConfig:
    """``write_config(text=SMALL, name="exp.toml", replace={old: new})`` -> the file's path."""

    def write(
        text: str = SMALL, name: str = "exp.toml", replace: dict[str, str] | None = None
    ) -> Path:
        for old, new in (replace or {}).items():
            assert old in text, f"{old!r} is not in the config"
            text = text.replace(old, new)
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        return path

    return write
