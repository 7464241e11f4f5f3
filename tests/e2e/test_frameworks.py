"""Issue 13: instrumentation libraries beyond the first five, run for real through the tollgate binary.

Each agent here makes a non-streaming and a streaming tool loop against the fake LLM API; tollgate (the suite's
price table, a file exporter, no backend) must price each call once to the nano-dollar, count exactly the calls
made in the task roll-up, and leave every other span unpriced. What each library can report is in the README's
per-emitter table; the expected cost takes the library's own limits into account (``Limits``).

Needs ``TOLLGATE_BIN``; skipped with that reason without it.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from conftest import require
from expected import expected_call
from tollgate import Tollgate, TollgateConfig, read_file_exporter

E2E_DIR = Path(__file__).resolve().parent
PYTHON = str(E2E_DIR / ".venv" / "bin" / "python")
#: Strands Agents and OpenLIT pin ``anthropic<1`` (the main venv has 2.x): their own venv (requirements-legacy.txt)
PYTHON_LEGACY = str(E2E_DIR / ".venv-legacy" / "bin" / "python")
#: OpenLLMetry for Node and the AI SDK 7 need other versions than node/ (node-frameworks/package.json)
TSX_FRAMEWORKS = str(E2E_DIR / "node-frameworks" / "node_modules" / ".bin" / "tsx")


@dataclass(frozen=True)
class Framework:
    name: str
    service: str
    argv: tuple[str, ...]
    scripts: tuple[str, ...]
    #: the library writes no cached-token count: cached prompt tokens are priced as input
    no_cache_read: bool = False
    #: the library streams from the API even for a non-streamed run (Pydantic AI on Anthropic)
    always_streams: bool = False
    #: the library writes only the total Anthropic cache write, not its 5 m / 1 h split: 1-hour writes are
    #: priced at the 5-minute rate (nothing on its spans tells them apart)
    no_write_split: bool = False


FRAMEWORKS = {f.name: f for f in [
    Framework("otel_openai_v2", "e2e-py-otel-openai-v2", (PYTHON, "-m", "agents.otel_openai_v2"),
              ("otel_openai_v2", "otel_openai_v2_stream"), no_cache_read=True),
    # Anthropic (split from gen_ai.usage.raw; a streamed call's request span has no usage) and OpenAI.
    Framework("logfire", "e2e-py-logfire", (PYTHON, "-m", "agents.logfire_anthropic"),
              ("logfire_anthropic", "logfire_anthropic_stream", "logfire_openai", "logfire_openai_stream")),
    # ChatAnthropic (OpenInference) and the SDK span of one call: cousins in one trace.
    Framework("langchain", "e2e-py-langchain", (PYTHON, "-m", "agents.langchain_anthropic"),
              ("langchain", "langchain_stream")),
    # chat span + SDK child span per call; invoke_agent carries gen_ai.aggregated_usage.*.
    Framework("pydantic_ai", "e2e-py-pydantic-ai", (PYTHON, "-m", "agents.pydantic_ai_anthropic"),
              ("pydantic_ai", "pydantic_ai_stream"), always_streams=True),
    # The Responses API; AGENT / CHAIN spans around the `response` LLM spans.
    Framework("openai_agents", "e2e-py-openai-agents", (PYTHON, "openai_agents_sdk/agent.py"),
              ("openai_agents", "openai_agents_stream")),
    # invoke_agent / event-loop cycle spans around `chat` spans; Strands always streams from the API.
    Framework("strands", "e2e-py-strands", (PYTHON_LEGACY, "-m", "agents.strands_anthropic"),
              ("strands", "strands_stream"), always_streams=True, no_write_split=True),
    # `chat <model>` spans; Anthropic gen_ai.usage.input_tokens is the raw API count (cache excluded).
    Framework("openlit", "e2e-py-openlit", (PYTHON_LEGACY, "-m", "agents.openlit_agent"),
              ("openlit_anthropic", "openlit_anthropic_stream", "openlit_openai", "openlit_openai_stream"),
              no_write_split=True),
    # Traceloop workflow span around anthropic.chat spans (Anthropic SDK 0.99: no SDK spans of its own);
    # gen_ai.usage.input_tokens is the raw API count (cache excluded).
    Framework("traceloop_node", "e2e-traceloop-node-agent", (TSX_FRAMEWORKS, "node-frameworks/traceloop_agent.ts"),
              ("traceloop_node", "traceloop_node_stream"), no_write_split=True),
    # ai 7 + @ai-sdk/anthropic 4 through @ai-sdk/otel: generateText / streamText around per-step spans.
    Framework("vercel_ai_7", "e2e-vercel-ai-7-agent", (TSX_FRAMEWORKS, "node-frameworks/vercel7_agent.ts"),
              ("vercel7", "vercel7_stream"), no_write_split=True),
]}


def nano(usd: Any) -> int:
    return int((Decimal(repr(float(usd))) * 10**9).to_integral_value())


def expected_cost(call: dict[str, Any], fw: Framework) -> int:
    if fw.no_cache_read and call["api"] == "openai":
        u = call["usage"]
        call = dict(call, usage=dict(u, prompt_tokens_details=dict(u["prompt_tokens_details"], cached_tokens=0)))
    if fw.no_write_split and call["api"] == "anthropic":
        u = call["usage"]
        w = u["cache_creation"]
        call = dict(call, usage=dict(u, cache_creation=dict(
            w, ephemeral_5m_input_tokens=w["ephemeral_5m_input_tokens"] + w["ephemeral_1h_input_tokens"],
            ephemeral_1h_input_tokens=0)))
    return expected_call(call).cost_nano


def expected_ratio(call: dict[str, Any], fw: Framework) -> float:
    if fw.no_cache_read and call["api"] == "openai":
        return 0.0
    return float(expected_call(call).cache_hit_ratio)


@pytest.fixture(scope="module")
def stack(tollgate_binary, procs, workdir):
    file_path = workdir / "frameworks-file-exporter.jsonl"
    cfg = TollgateConfig(file_path=file_path, alert_rules=False)
    tg = Tollgate(procs, tollgate_binary, cfg, workdir / "tollgate-frameworks", name="tollgate-frameworks").start()
    yield cfg, file_path
    tg.stop()


@pytest.mark.parametrize("name", list(FRAMEWORKS))
def test_each_call_priced_once_and_counted(stack, fake_llm, name):
    cfg, file_path = stack
    fw = FRAMEWORKS[name]
    require(os.access(fw.argv[0], os.X_OK), f"{fw.argv[0]} is missing: run tests/e2e/install.sh")
    first = len(fake_llm.calls)
    env = dict(os.environ, E2E_ANTHROPIC_URL=fake_llm.url, E2E_OPENAI_URL=fake_llm.url,
               E2E_OTLP_HTTP=cfg.http_traces_url, NO_PROXY="127.0.0.1,localhost")
    proc = subprocess.run([*fw.argv, f"fw-{name}"], cwd=E2E_DIR, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    calls = [c for c in fake_llm.calls[first:] if c["script"] in fw.scripts]
    assert len(calls) >= 4 and len(calls) % 4 == 0, "tool loops of two calls, streaming and not"
    assert {c["stream"] for c in calls} == ({True} if fw.always_streams else {True, False})
    deadline = time.monotonic() + 60
    spans: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        spans = [r for r in read_file_exporter(file_path) if r["resource"].get("service.name") == fw.service]
        if any(not r["parent_span_id"] for r in spans) and len(spans) > len(calls):
            break
        time.sleep(0.5)
    priced = [s for s in spans if s["attributes"].get("tollgate.pricing.status") == "priced"]
    assert sorted(nano(s["attributes"]["llm.cost.total"]) for s in priced) == \
        sorted(expected_cost(c, fw) for c in calls)
    assert len([s for s in spans if "llm.cost.total" in s["attributes"]]) == len(calls), "nothing else priced"
    by_cost = {expected_cost(c, fw): c for c in calls}
    for s in priced:
        call = by_cost[nano(s["attributes"]["llm.cost.total"])]
        assert s["attributes"]["llm.cache_hit_ratio"] == pytest.approx(expected_ratio(call, fw), abs=1e-12)
    root = next(s for s in spans if not s["parent_span_id"])["attributes"]
    assert root["tollgate.task.llm_calls"] == len(calls)
    assert nano(root["tollgate.task.cost_usd"]) == sum(expected_cost(c, fw) for c in calls)
