"""Issue 18 point 1: a Python agent configured from environment variables only reaches tollgate and is priced.

The README tells users ``OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:4318``. The Python SDK's default protocol is
gRPC, so an agent run under ``opentelemetry-instrument`` with ``OTEL_TRACES_EXPORTER=otlp`` sends OTLP/gRPC to the
HTTP port. tollgate serves gRPC there too: the LLM span must arrive and be priced exactly. The agent's metrics
exporter (on by default in the distro) calls ``MetricsService/Export``, which tollgate does not serve: that call
must be counted as ``unknown_path`` and logged with the hint to turn it off.
"""

from __future__ import annotations

import os
import re
import subprocess

import requests

from agents_run import E2E_DIR
from expected import price_for
from tollgate import Tollgate, TollgateConfig

INSTRUMENT = E2E_DIR / ".venv" / "bin" / "opentelemetry-instrument"
PYTHON = E2E_DIR / ".venv" / "bin" / "python"


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text ``text`` (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        got = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
        if all(got.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_env_only_python_sdk_at_the_http_port_is_delivered_and_priced(tollgate_binary, procs, workdir):
    cfg = TollgateConfig(alert_rules=False)
    tg = Tollgate(procs, tollgate_binary, cfg, workdir / "env-only", name="tollgate-env-only").start()
    try:
        # A new user's environment: no OTEL_* except what the README says (the default protocol is gRPC).
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update({
            "OTEL_SERVICE_NAME": "e2e-env-only",
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{cfg.http_port}",
            "NO_PROXY": "127.0.0.1,localhost",
        })
        proc = subprocess.run([str(INSTRUMENT), str(PYTHON), "-m", "agents.env_only"], cwd=E2E_DIR, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        trace_id = proc.stdout.strip().splitlines()[-1]
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id), proc.stdout

        p = price_for("claude-sonnet-4-6")
        want_nano = (1300 * p.nano_per_token("input") + 800 * p.nano_per_token("cache_read")
                     + 340 * p.nano_per_token("output"))
        assert want_nano == 9_240_000
        task = tg.task(trace_id)
        assert task is not None, f"the span never reached tollgate; agent stderr:\n{proc.stderr}"
        assert task["cost_nano_usd"] == want_nano, task
        assert task["llm_calls"] == 1
        assert task["service"] == "e2e-env-only"

        text = requests.get(cfg.admin_url + "/metrics", timeout=10).text
        # gRPC on the HTTP port is answered by the gRPC service: counted under receiver="otlp_grpc"
        assert metric(text, "tollgate_receiver_requests_total", receiver="otlp_grpc", outcome="accepted") >= 1
        assert metric(text, "tollgate_receiver_requests_total", receiver="otlp_http", outcome="accepted") == 0
        # the distro's metrics exporter called MetricsService/Export: counted and logged with a hint
        assert metric(text, "tollgate_receiver_requests_total", receiver="otlp_grpc",
                      outcome="unknown_path") >= 1, text
        assert "OTEL_METRICS_EXPORTER=none" in tg.log()
    finally:
        tg.stop()
