"""Arize Phoenix for the end-to-end suite: start it offline on loopback, read spans back.

Phoenix runs from its own venv (``.venv-phoenix``; it is large). Read-back uses the REST API
``GET /v1/projects/{name}/spans`` with cursor paging, and GraphQL for Phoenix's cost summary.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import requests

from harness import Procs, free_port, wait_http

E2E_DIR = Path(__file__).resolve().parent
PHOENIX_BIN = E2E_DIR / ".venv-phoenix" / "bin" / "phoenix"


class Phoenix:
    """A running Phoenix server."""

    def __init__(self, procs: Procs, workdir: Path, port: int | None = None, grpc_port: int | None = None):
        self.procs = procs
        self.workdir = workdir
        self.port = port or free_port()
        self.grpc_port = grpc_port or free_port()
        self.proc = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.url + "/v1/traces"

    def start(self, timeout: float = 180) -> "Phoenix":
        """Starts (or restarts, on the same ports and data) and waits for ``/healthz``."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ)
        env.update({
            "PHOENIX_HOST": "127.0.0.1",
            "PHOENIX_PORT": str(self.port),
            "PHOENIX_GRPC_PORT": str(self.grpc_port),
            "PHOENIX_WORKING_DIR": str(self.workdir),
            "PHOENIX_TELEMETRY_ENABLED": "false",
            "PHOENIX_ALLOW_EXTERNAL_RESOURCES": "false",
            "PHOENIX_DISABLE_AGENT_ASSISTANT": "true",
        })
        self.proc = self.procs.spawn("phoenix", [str(PHOENIX_BIN), "serve"], env=env)
        wait_http(self.url + "/healthz", timeout=timeout, proc=self.proc)
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.procs.stop(self.proc)
            self.proc = None

    # --- read-back -------------------------------------------------------------------------------------------------
    def spans(self, project: str, page_size: int = 500) -> list[dict[str, Any]]:
        """Every span of a project, following ``next_cursor`` until the last page. [] when the project is unknown."""
        out: list[dict[str, Any]] = []
        cursor = None
        while True:
            params: dict[str, Any] = {"limit": page_size}
            if cursor:
                params["cursor"] = cursor
            r = requests.get(f"{self.url}/v1/projects/{project}/spans", params=params, timeout=30)
            if r.status_code == 404:
                return []
            r.raise_for_status()
            body = r.json()
            out.extend(body["data"])
            cursor = body.get("next_cursor")
            if not cursor:
                return out

    def wait_for_spans(self, project: str, n: int, timeout: float = 60) -> list[dict[str, Any]]:
        """Polls until at least ``n`` spans are stored (Phoenix inserts asynchronously); returns what it has."""
        deadline = time.monotonic() + timeout
        spans = self.spans(project)
        while len(spans) < n and time.monotonic() < deadline:
            time.sleep(0.5)
            spans = self.spans(project)
        return spans

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        r = requests.post(self.url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=30)
        r.raise_for_status()
        body = r.json()
        if body.get("errors"):
            raise RuntimeError(body["errors"])
        return body["data"]


def span_key(span: dict[str, Any]) -> tuple[str, str]:
    """(trace id, span id) of a Phoenix REST span."""
    return span["context"]["trace_id"], span["context"]["span_id"]


def duplicates(spans: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [k for k, n in Counter(span_key(s) for s in spans).items() if n > 1]


def missing(expected_keys: set[tuple[str, str]], spans: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Span keys that were sent but are not in Phoenix."""
    return expected_keys - {span_key(s) for s in spans}


def llm_spans(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Spans Phoenix classifies as LLM calls."""
    return [s for s in spans if s.get("span_kind") == "LLM"]


def flat(attrs: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Phoenix returns nested attribute dicts ({"llm": {"cost": {"total": …}}}) or flat ones; flatten either."""
    out: dict[str, Any] = {}
    for k, v in attrs.items():
        key = f"{prefix}.{k}" if prefix else k
        if isinstance(v, dict):
            out.update(flat(v, key))
        else:
            out[key] = v
    return out


COST_QUERY = """
query ($id: ID!) {
  node(id: $id) {
    ... on Span {
      costSummary { total { cost tokens } prompt { cost } completion { cost } }
    }
  }
}
"""


def cost_summary(px: Phoenix, span: dict[str, Any]) -> dict[str, Any] | None:
    """Phoenix's own cost view of a REST span (GraphQL ``Span.costSummary``); None when it has none."""
    return px.graphql(COST_QUERY, {"id": span["id"]})["node"].get("costSummary")
