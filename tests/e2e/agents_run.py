"""The five real agents of the end-to-end suite, and how to run one."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

E2E_DIR = Path(__file__).resolve().parent
NODE_DIR = E2E_DIR / "node"
PYTHON = str(E2E_DIR / ".venv" / "bin" / "python")
TSX = str(NODE_DIR / "node_modules" / ".bin" / "tsx")


@dataclass(frozen=True)
class Agent:
    """One agent: its fixture name, its service.name, its command and the fake-server scripts it uses."""

    name: str
    service: str
    argv: tuple[str, ...]
    cwd: Path
    scripts: tuple[str, ...]
    #: the OTLP protocol it uses by default ("http/json" or "http/protobuf")
    protocol: str


AGENTS: dict[str, Agent] = {a.name: a for a in [
    Agent("ts_anthropic_wrapper", "e2e-ts-anthropic-agent", (TSX, "anthropic_agent.ts"), NODE_DIR,
          ("ts_agent",), "http/json"),
    Agent("py_openinference_anthropic", "e2e-py-openinference-anthropic",
          (PYTHON, "-m", "agents.openinference_anthropic"), E2E_DIR, ("oi_anthropic",), "http/protobuf"),
    Agent("py_openllmetry_anthropic", "e2e-py-openllmetry-anthropic",
          (PYTHON, "-m", "agents.openllmetry_anthropic"), E2E_DIR, ("openllmetry",), "http/protobuf"),
    Agent("vercel_ai", "e2e-vercel-ai-agent", (TSX, "vercel_agent.ts"), NODE_DIR,
          ("vercel", "vercel_stream"), "http/protobuf"),
    Agent("py_openinference_openai", "e2e-py-openinference-openai",
          (PYTHON, "-m", "agents.openinference_openai"), E2E_DIR, ("openai", "openai_reasoning"), "http/protobuf"),
]}


def run_agent(agent: Agent, task_id: str, *, llm_url: str, traces_url: str, project: str = "default",
              protocol: str | None = None, grpc_endpoint: str | None = None, timeout: float = 120) -> None:
    """Runs one agent to completion (it flushes its exporter before exiting); raises on failure."""
    env = dict(os.environ)
    env.update({
        "E2E_ANTHROPIC_URL": llm_url,
        "E2E_OPENAI_URL": llm_url,
        "E2E_OTLP_HTTP": traces_url,
        "E2E_PROJECT": project,
        "OTEL_SDK_DISABLED": "false",
        # the agents must not look anywhere but loopback
        "NO_PROXY": "127.0.0.1,localhost",
    })
    if protocol:
        env["E2E_OTLP_PROTOCOL"] = protocol
    if grpc_endpoint:
        env["E2E_OTLP_GRPC"] = grpc_endpoint
    proc = subprocess.run([*agent.argv, task_id], cwd=agent.cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"agent {agent.name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    if "Error" in proc.stderr and "export" in proc.stderr.lower():
        print(proc.stderr, file=sys.stderr)


def run_all(task_prefix: str, *, llm_url: str, traces_url: str, project: str = "default",
            protocols: dict[str, str] | None = None, grpc_endpoint: str | None = None,
            names: list[str] | None = None) -> dict[str, str]:
    """Runs the agents concurrently; returns agent name -> task id. ``protocols`` overrides an agent's protocol."""
    from concurrent.futures import ThreadPoolExecutor

    protocols = protocols or {}
    tasks = {n: f"{task_prefix}-{n}" for n in (names or list(AGENTS))}
    with ThreadPoolExecutor(len(tasks)) as pool:
        futures = [pool.submit(run_agent, AGENTS[n], t, llm_url=llm_url, traces_url=traces_url, project=project,
                               protocol=protocols.get(n), grpc_endpoint=grpc_endpoint) for n, t in tasks.items()]
        for f in futures:
            f.result()
    return tasks


def fixture_span_count(name: str) -> int:
    """How many spans one run of the agent emits (from its committed fixture)."""
    import json

    path = E2E_DIR.parent / "fixtures" / "emitters" / f"{name}.json"
    return len(json.loads(path.read_text())["spans"])
