"""Fake LLM APIs for the end-to-end suite: Anthropic Messages and OpenAI Chat Completions.

Stdlib only. One server answers both APIs:

* ``POST /v1/messages`` (Anthropic), non-streaming and streaming (SSE, ``"stream": true``).
* ``POST /v1/chat/completions`` (OpenAI-compatible), non-streaming and streaming.
* ``POST /v1/responses`` (OpenAI Responses API, what the OpenAI Agents SDK uses by default), non-streaming and
  streaming (the event sequence the openai SDK reads: created, output_item added/done, deltas, completed).

Which usage a call returns is driven by a scenario file (JSON, see ``scenario.json``). The response is a pure
function of the request, so agents may run concurrently and retries are harmless:

* the *script* is chosen by the API key the SDK sends (``x-api-key`` or ``Authorization: Bearer``); the part after
  the last ``--`` names the script (``sk-ant-fake--ts_agent`` → ``ts_agent``); otherwise the script ``default``;
* the *step* is the number of assistant turns already in the request's conversation.

Each step of a script says what to answer::

    {"model": "claude-sonnet-4-6",             # optional: the response model (default: the request model)
     "text": "...",                             # the answer text (default "ok")
     "tool_use": {"name": "lookup", "input": {...}},   # optional: ask for a tool call instead of ending
     "usage": {...}}                            # provider-native usage numbers, see below

Anthropic usage keys: ``input_tokens`` (excludes cache, as the real API), ``output_tokens``, ``cache_read_input_tokens``,
``cache_write_5m_input_tokens``, ``cache_write_1h_input_tokens`` (the server sums the last two into
``cache_creation_input_tokens`` and reports the ``cache_creation`` split). OpenAI usage keys: ``prompt_tokens``
(includes cached), ``cached_tokens``, ``completion_tokens`` (includes reasoning), ``reasoning_tokens``.

Every call is logged; ``GET /_calls`` returns the log, ``POST /_reset`` clears it.

Run: ``python fake_llm.py --scenario scenario.json [--port-file FILE]``; it prints ``PORT <n>`` once listening.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DEFAULT_SCENARIO = Path(__file__).with_name("scenario.json")


def anthropic_usage(raw: dict[str, int]) -> dict[str, Any]:
    """The Anthropic ``usage`` object for a scenario step."""
    w5 = int(raw.get("cache_write_5m_input_tokens", 0))
    w1 = int(raw.get("cache_write_1h_input_tokens", 0))
    return {
        "input_tokens": int(raw.get("input_tokens", 0)),
        "output_tokens": int(raw.get("output_tokens", 0)),
        "cache_read_input_tokens": int(raw.get("cache_read_input_tokens", 0)),
        "cache_creation_input_tokens": w5 + w1,
        "cache_creation": {"ephemeral_5m_input_tokens": w5, "ephemeral_1h_input_tokens": w1},
        "service_tier": "standard",
    }


def openai_usage(raw: dict[str, int]) -> dict[str, Any]:
    """The OpenAI ``usage`` object for a scenario step."""
    prompt = int(raw.get("prompt_tokens", 0))
    completion = int(raw.get("completion_tokens", 0))
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": int(raw.get("cached_tokens", 0)), "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": int(raw.get("reasoning_tokens", 0)),
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class Scenario:
    """Scripts of steps, keyed by script name."""

    def __init__(self, data: dict[str, Any]):
        self.scripts: dict[str, list[dict[str, Any]]] = data["scripts"]

    @classmethod
    def load(cls, path: Path | str) -> "Scenario":
        return cls(json.loads(Path(path).read_text()))

    def step(self, script: str, index: int) -> dict[str, Any]:
        steps = self.scripts.get(script) or self.scripts.get("default")
        if not steps:
            raise KeyError(f"no script {script!r} and no default script")
        # Past the end of a script, the last step repeats (a safe, final answer).
        return steps[min(index, len(steps) - 1)]


def script_from_headers(headers) -> str:
    key = headers.get("x-api-key") or ""
    auth = headers.get("authorization") or ""
    if not key and auth.lower().startswith("bearer "):
        key = auth[7:]
    return key.rsplit("--", 1)[1] if "--" in key else "default"


class FakeLLMHandler(BaseHTTPRequestHandler):
    server: "FakeLLMServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:  # quiet: the call log is the record
        pass

    # --- plumbing -------------------------------------------------------------------------------------------------
    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        return json.loads(raw or b"{}")

    def _json(self, status: int, obj: Any) -> None:
        data = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("request-id", "req_" + uuid.uuid4().hex[:24])
        self.end_headers()
        self.wfile.write(data)

    def _sse_start(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream")
        self.send_header("cache-control", "no-cache")
        self.send_header("connection", "close")
        self.end_headers()
        self.close_connection = True

    def _sse(self, event: str | None, obj: Any) -> None:
        chunk = (f"event: {event}\n" if event else "") + "data: " + (obj if isinstance(obj, str) else json.dumps(obj))
        self.wfile.write((chunk + "\n\n").encode())
        self.wfile.flush()

    # --- routes ---------------------------------------------------------------------------------------------------
    def do_GET(self) -> None:
        if self.path == "/_calls":
            with self.server.lock:
                self._json(200, list(self.server.calls))
        elif self.path == "/healthz":
            self._json(200, {"ok": True})
        else:
            self._json(404, {"error": "not found"})

    def do_POST(self) -> None:
        try:
            body = self._body()
        except ValueError:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": "bad json"}})
            return
        if self.path == "/_reset":
            with self.server.lock:
                self.server.calls.clear()
            self._json(200, {"ok": True})
        elif self.path.startswith("/v1/messages"):
            self._anthropic(body)
        elif self.path.startswith("/v1/chat/completions"):
            self._openai(body)
        elif self.path.startswith("/v1/responses"):
            self._responses(body)
        else:
            self._json(404, {"error": "not found"})

    def _record(self, api: str, script: str, index: int, model: str, stream: bool, usage: dict[str, Any]) -> None:
        with self.server.lock:
            self.server.calls.append(
                {"api": api, "script": script, "step": index, "model": model, "stream": stream, "usage": usage,
                 "time": time.time()}
            )

    # --- Anthropic ------------------------------------------------------------------------------------------------
    def _anthropic(self, body: dict[str, Any]) -> None:
        script = script_from_headers(self.headers)
        index = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        try:
            step = self.server.scenario.step(script, index)
        except KeyError as e:
            self._json(400, {"type": "error", "error": {"type": "invalid_request_error", "message": str(e)}})
            return
        model = step.get("model") or body.get("model") or "claude-sonnet-4-6"
        usage = anthropic_usage(step.get("usage", {}))
        msg_id = "msg_" + uuid.uuid4().hex[:24]
        if step.get("tool_use"):
            block = {"type": "tool_use", "id": "toolu_" + uuid.uuid4().hex[:24], "name": step["tool_use"]["name"],
                     "input": step["tool_use"].get("input", {})}
            stop_reason = "tool_use"
        else:
            block = {"type": "text", "text": step.get("text", "ok")}
            stop_reason = "end_turn"
        stream = bool(body.get("stream"))
        self._record("anthropic", script, index, model, stream, usage)
        if not stream:
            self._json(200, {"id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [block],
                             "stop_reason": stop_reason, "stop_sequence": None, "usage": usage})
            return
        self._sse_start()
        start_usage = dict(usage, output_tokens=1)
        self._sse("message_start", {"type": "message_start", "message": {
            "id": msg_id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
        if block["type"] == "text":
            self._sse("content_block_start", {"type": "content_block_start", "index": 0,
                                              "content_block": {"type": "text", "text": ""}})
            text = block["text"]
            half = len(text) // 2
            for piece in (text[:half], text[half:]):
                self._sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                  "delta": {"type": "text_delta", "text": piece}})
        else:
            self._sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {
                "type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}})
            self._sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {
                "type": "input_json_delta", "partial_json": json.dumps(block["input"])}})
        self._sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        final = {k: usage[k] for k in ("input_tokens", "output_tokens", "cache_read_input_tokens",
                                       "cache_creation_input_tokens")}
        self._sse("message_delta", {"type": "message_delta",
                                    "delta": {"stop_reason": stop_reason, "stop_sequence": None}, "usage": final})
        self._sse("message_stop", {"type": "message_stop"})

    # --- OpenAI ---------------------------------------------------------------------------------------------------
    def _openai(self, body: dict[str, Any]) -> None:
        script = script_from_headers(self.headers)
        index = sum(1 for m in body.get("messages", []) if m.get("role") == "assistant")
        try:
            step = self.server.scenario.step(script, index)
        except KeyError as e:
            self._json(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
            return
        model = step.get("model") or body.get("model") or "gpt-4.1"
        usage = openai_usage(step.get("usage", {}))
        cid = "chatcmpl-" + uuid.uuid4().hex[:24]
        created = int(time.time())
        if step.get("tool_use"):
            message = {"role": "assistant", "content": None, "refusal": None, "tool_calls": [{
                "id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                "function": {"name": step["tool_use"]["name"], "arguments": json.dumps(step["tool_use"].get("input", {}))}}]}
            finish = "tool_calls"
        else:
            message = {"role": "assistant", "content": step.get("text", "ok"), "refusal": None}
            finish = "stop"
        stream = bool(body.get("stream"))
        self._record("openai", script, index, model, stream, usage)
        if not stream:
            self._json(200, {"id": cid, "object": "chat.completion", "created": created, "model": model,
                             "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                             "usage": usage, "service_tier": "default", "system_fingerprint": "fp_fake"})
            return
        self._sse_start()
        base = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                "system_fingerprint": "fp_fake"}
        delta = {"role": "assistant", "content": message["content"]}
        if "tool_calls" in message:
            delta["tool_calls"] = [dict(message["tool_calls"][0], index=0)]
        self._sse(None, dict(base, choices=[{"index": 0, "delta": delta, "finish_reason": None}]))
        self._sse(None, dict(base, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]))
        if (body.get("stream_options") or {}).get("include_usage"):
            self._sse(None, dict(base, choices=[], usage=usage))
        self._sse(None, "[DONE]")


    # --- OpenAI Responses API --------------------------------------------------------------------------------------
    def _responses(self, body: dict[str, Any]) -> None:
        script = script_from_headers(self.headers)
        items = body.get("input") if isinstance(body.get("input"), list) else []
        # A step is one model turn already taken: a function call or an assistant message in the input.
        index = sum(1 for m in items if isinstance(m, dict)
                    and (m.get("type") == "function_call" or m.get("role") == "assistant"))
        try:
            step = self.server.scenario.step(script, index)
        except KeyError as e:
            self._json(400, {"error": {"message": str(e), "type": "invalid_request_error"}})
            return
        model = step.get("model") or body.get("model") or "gpt-4.1"
        raw = openai_usage(step.get("usage", {}))
        usage = {"input_tokens": raw["prompt_tokens"],
                 "input_tokens_details": {"cached_tokens": raw["prompt_tokens_details"]["cached_tokens"]},
                 "output_tokens": raw["completion_tokens"],
                 "output_tokens_details": {"reasoning_tokens": raw["completion_tokens_details"]["reasoning_tokens"]},
                 "total_tokens": raw["total_tokens"]}
        rid = "resp_" + uuid.uuid4().hex[:24]
        if step.get("tool_use"):
            item = {"type": "function_call", "id": "fc_" + uuid.uuid4().hex[:24],
                    "call_id": "call_" + uuid.uuid4().hex[:24], "name": step["tool_use"]["name"],
                    "arguments": json.dumps(step["tool_use"].get("input", {})), "status": "completed"}
        else:
            item = {"type": "message", "id": "msg_" + uuid.uuid4().hex[:24], "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": step.get("text", "ok"), "annotations": []}]}
        stream = bool(body.get("stream"))
        # Logged with Chat Completions usage keys, so that expected.py reads both APIs alike.
        self._record("openai", script, index, model, stream, raw)
        response = {"id": rid, "object": "response", "created_at": int(time.time()), "status": "completed",
                    "model": model, "output": [item], "usage": usage, "parallel_tool_calls": True,
                    "tool_choice": "auto", "tools": body.get("tools") or [], "text": {"format": {"type": "text"}},
                    "error": None, "incomplete_details": None, "instructions": body.get("instructions"),
                    "metadata": {}, "temperature": 1.0, "top_p": 1.0, "truncation": "disabled"}
        if not stream:
            self._json(200, response)
            return
        self._sse_start()
        seq = iter(range(1_000_000))
        pending = dict(response, status="in_progress", output=[], usage=None)
        self._sse("response.created", {"type": "response.created", "sequence_number": next(seq), "response": pending})
        empty = dict(item, arguments="") if item["type"] == "function_call" else dict(item, content=[])
        self._sse("response.output_item.added", {"type": "response.output_item.added", "sequence_number": next(seq),
                                                 "output_index": 0, "item": dict(empty, status="in_progress")})
        if item["type"] == "function_call":
            self._sse("response.function_call_arguments.delta", {
                "type": "response.function_call_arguments.delta", "sequence_number": next(seq), "output_index": 0,
                "item_id": item["id"], "delta": item["arguments"]})
        else:
            text = item["content"][0]["text"]
            self._sse("response.output_text.delta", {
                "type": "response.output_text.delta", "sequence_number": next(seq), "output_index": 0,
                "item_id": item["id"], "content_index": 0, "delta": text, "logprobs": []})
        self._sse("response.output_item.done", {"type": "response.output_item.done", "sequence_number": next(seq),
                                                "output_index": 0, "item": item})
        self._sse("response.completed", {"type": "response.completed", "sequence_number": next(seq),
                                         "response": response})


class FakeLLMServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, scenario: Scenario, host: str = "127.0.0.1", port: int = 0):
        super().__init__((host, port), FakeLLMHandler)
        self.scenario = scenario
        self.calls: list[dict[str, Any]] = []
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "FakeLLMServer":
        threading.Thread(target=self.serve_forever, name="fake-llm", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenario", default=str(DEFAULT_SCENARIO))
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    server = FakeLLMServer(Scenario.load(args.scenario), port=args.port)
    port = server.server_address[1]
    if args.port_file:
        Path(args.port_file).write_text(str(port))
    print(f"PORT {port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
