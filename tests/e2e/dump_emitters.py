"""Runs every real agent against the capture sink and saves the real span dumps as fixtures.

Writes ``tests/fixtures/emitters/<emitter>.json``: for each span its name, scope, kind, parent (as a reference
to another span of the file), resource and attributes, plus the fake server's usage for every call the agent made
(the ground truth the pricing tests compute from). Ids and times are replaced by stable references.

Run: ``tests/e2e/.venv/bin/python tests/e2e/dump_emitters.py [EMITTER...]`` (after tests/e2e/install.sh).
Without names, the five agents of ``agents_run.py``; ``py_openlit`` (``.venv-legacy``) only when named.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from agents_run import AGENTS, Agent, run_agent  # noqa: E402
from fake_llm import FakeLLMServer, Scenario  # noqa: E402
from otlp_capture import CaptureServer  # noqa: E402

E2E_DIR = Path(__file__).resolve().parent
OUT_DIR = E2E_DIR.parent / "fixtures" / "emitters"
# Values that change on every run; replaced so that regenerating a fixture gives a readable diff.
VOLATILE = {"llm.latency_ms", "ai.response.avgOutputTokensPerSecond", "ai.response.msToFirstChunk",
            "ai.response.msToFinish", "ai.response.timestamp"}
# Random ids: each distinct value becomes "<id:N>", the same N everywhere in the file, so that two spans
# describing the same call still visibly share their response id (a dedupe key).
IDS = {"ai.response.id", "gen_ai.response.id", "llm.response.id", "anthropic.request.id"}
# Framework agents recorded on request, each with the requirement file of its venv.
LEGACY = Agent("py_openlit", "e2e-py-openlit", (str(E2E_DIR / ".venv-legacy" / "bin" / "python"), "-m",
                                                "agents.openlit_agent"), E2E_DIR,
               ("openlit_anthropic", "openlit_anthropic_stream", "openlit_openai", "openlit_openai_stream"),
               "http/protobuf")
EXTRA = {LEGACY.name: (LEGACY, "requirements-legacy.txt", {"openlit", "anthropic", "openai", "opentelemetry-sdk"})}


def pinned(requirements: str, names: set[str]) -> dict[str, str]:
    versions = {}
    for line in (E2E_DIR / requirements).read_text().splitlines():
        name, _, ver = line.partition("==")
        if name.lower() in names:
            versions[name] = ver
    return versions


def package_versions() -> dict[str, str]:
    versions = {}
    for line in (E2E_DIR / "requirements.txt").read_text().splitlines():
        name, _, ver = line.partition("==")
        if name.lower() in {"anthropic", "openai", "openinference-instrumentation-anthropic",
                            "openinference-instrumentation-openai", "opentelemetry-instrumentation-anthropic",
                            "opentelemetry-sdk"}:
            versions[name] = ver
    pkg = json.loads((E2E_DIR / "node" / "package.json").read_text())["dependencies"]
    for name in ("@anthropic-ai/sdk", "ai", "@ai-sdk/anthropic", "@opentelemetry/sdk-node"):
        versions[name] = pkg[name]
    return versions


def normalise(records: list[dict]) -> list[dict]:
    records = sorted(records, key=lambda r: (r["start_time_unix_nano"], r["name"]))
    t0 = min((r["start_time_unix_nano"] for r in records), default=0)
    refs = {r["span_id"]: f"s{i}" for i, r in enumerate(records)}
    traces: dict[str, str] = {}
    ids: dict[str, str] = {}

    def value(k: str, v):
        if k in VOLATILE:
            return "<volatile>"
        if k in IDS:
            return ids.setdefault(str(v), f"<id:{len(ids)}>")
        return v

    out = []
    for r in records:
        trace = traces.setdefault(r["trace_id"], f"t{len(traces)}")
        parent = r["parent_span_id"]
        out.append({
            "ref": refs[r["span_id"]],
            "trace": trace,
            "parent": refs.get(parent) if parent else None,
            "parent_outside_dump": bool(parent) and parent not in refs,
            "name": r["name"],
            "kind": r["kind"],
            "scope": r["scope"],
            "status": r["status"],
            # Relative times: whether one report's window lies inside another's links them.
            "start_offset_ns": r["start_time_unix_nano"] - t0,
            "end_offset_ns": r["end_time_unix_nano"] - t0,
            "attributes": {k: value(k, v) for k, v in r["attributes"].items()},
            "events": r["events"],
            "resource": {k: v for k, v in r["resource"].items() if k not in {"process.pid", "host.name",
                                                                                 "process.command_args"}},
        })
    return out


def main(names: list[str]) -> None:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    versions = package_versions()
    fake = FakeLLMServer(Scenario.load(E2E_DIR / "scenario.json")).start()
    sink = CaptureServer().start()
    try:
        for name in names or list(AGENTS):
            agent, packages = (EXTRA[name][0], pinned(*EXTRA[name][1:])) if name in EXTRA else (AGENTS[name], versions)
            fake.calls.clear()
            sink.clear()
            run_agent(agent, f"fixture-{name}", llm_url=fake.url, traces_url=sink.traces_url)
            records = [r for r in sink.spans() if r["resource"].get("service.name") == agent.service]
            doc = {
                "emitter": name,
                "service_name": agent.service,
                "generated_by": "tests/e2e/dump_emitters.py (real SDKs against tests/e2e/fake_llm.py)",
                "otlp_protocol": agent.protocol,
                "packages": packages,
                "calls": [{k: c[k] for k in ("api", "script", "step", "model", "stream", "usage")}
                          for c in fake.calls],
                "spans": normalise(records),
            }
            path = OUT_DIR / f"{name}.json"
            path.write_text(json.dumps(doc, indent=1, sort_keys=False) + "\n")
            print(f"{name}: {len(records)} spans, {len(doc['calls'])} calls -> {path}")
    finally:
        sink.stop()
        fake.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
