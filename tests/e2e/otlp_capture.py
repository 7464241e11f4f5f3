"""An OTLP/HTTP trace receiver that records what it gets, for the end-to-end suite.

Accepts ``POST /v1/traces`` with ``application/x-protobuf`` or ``application/json`` (OTLP JSON: hex ids), plain or
gzip, chunked or with a length, and answers an ``ExportTraceServiceResponse`` in the request's encoding.

In-process use (tests)::

    sink = CaptureServer().start()
    ... send to sink.traces_url ...
    sink.requests   # list of ExportTraceServiceRequest protos, in arrival order
    sink.spans()    # flat list of span records (dicts, see span_record)
    sink.stop()

As a program: ``python otlp_capture.py --out spans.jsonl [--port-file F]`` writes one JSON line per span.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

SPAN_KINDS = {0: "UNSPECIFIED", 1: "INTERNAL", 2: "SERVER", 3: "CLIENT", 4: "PRODUCER", 5: "CONSUMER"}
_ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def _hex_ids_to_base64(node: Any) -> Any:
    """OTLP JSON carries ids as hex; protobuf's JSON mapping expects base64 for bytes."""
    if isinstance(node, dict):
        out = {}
        for k, v in node.items():
            if k in _ID_FIELDS and isinstance(v, str):
                out[k] = base64.b64encode(bytes.fromhex(v)).decode()
            else:
                out[k] = _hex_ids_to_base64(v)
        return out
    if isinstance(node, list):
        return [_hex_ids_to_base64(v) for v in node]
    return node


def parse_otlp_json(body: bytes) -> ExportTraceServiceRequest:
    req = ExportTraceServiceRequest()
    json_format.Parse(json.dumps(_hex_ids_to_base64(json.loads(body))), req, ignore_unknown_fields=True)
    return req


def any_value(v: AnyValue) -> Any:
    which = v.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [any_value(x) for x in v.array_value.values]
    if which == "kvlist_value":
        return attrs(v.kvlist_value.values)
    if which == "bytes_value":
        return {"bytes_hex": v.bytes_value.hex()}
    return getattr(v, which)


def attrs(kvs: "list[KeyValue]") -> dict[str, Any]:
    return {kv.key: any_value(kv.value) for kv in kvs}


def span_records(req: ExportTraceServiceRequest) -> list[dict[str, Any]]:
    """One flat, JSON-friendly record per span."""
    out = []
    for rs in req.resource_spans:
        resource = attrs(rs.resource.attributes)
        for ss in rs.scope_spans:
            for s in ss.spans:
                out.append({
                    "trace_id": s.trace_id.hex(),
                    "span_id": s.span_id.hex(),
                    "parent_span_id": s.parent_span_id.hex(),
                    "name": s.name,
                    "kind": SPAN_KINDS.get(s.kind, str(s.kind)),
                    "scope": {"name": ss.scope.name, "version": ss.scope.version},
                    "resource": resource,
                    "attributes": attrs(s.attributes),
                    "events": [{"name": e.name, "attributes": attrs(e.attributes)} for e in s.events],
                    "status": {"code": s.status.code, "message": s.status.message},
                    "start_time_unix_nano": s.start_time_unix_nano,
                    "end_time_unix_nano": s.end_time_unix_nano,
                })
    return out


class _Handler(BaseHTTPRequestHandler):
    server: "CaptureServer"
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt: str, *args: Any) -> None:
        pass

    def _read_body(self) -> bytes:
        if (self.headers.get("transfer-encoding") or "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def _reply(self, status: int, body: bytes, ctype: str) -> None:
        self.send_response(status)
        self.send_header("content-type", ctype)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self._read_body()
        if self.path != "/v1/traces":
            self._reply(404, b"not found", "text/plain")
            return
        if (self.headers.get("content-encoding") or "").lower() == "gzip":
            body = gzip.decompress(body)
        ctype = (self.headers.get("content-type") or "").split(";")[0].strip().lower()
        try:
            if ctype == "application/json":
                req = parse_otlp_json(body)
            elif ctype == "application/x-protobuf":
                req = ExportTraceServiceRequest.FromString(body)
            else:
                self._reply(415, b"unsupported content type", "text/plain")
                return
        except Exception as e:  # noqa: BLE001 - a bad request is answered, not raised
            self._reply(400, str(e).encode(), "text/plain")
            return
        self.server.record(req, dict(self.headers.items()))
        resp = ExportTraceServiceResponse()
        if ctype == "application/json":
            self._reply(200, json_format.MessageToJson(resp).encode(), "application/json")
        else:
            self._reply(200, resp.SerializeToString(), "application/x-protobuf")


class CaptureServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int = 0, out: Path | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.requests: list[ExportTraceServiceRequest] = []
        self.headers: list[dict[str, str]] = []
        self.out = out
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)

    @property
    def port(self) -> int:
        return self.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def traces_url(self) -> str:
        return self.base_url + "/v1/traces"

    def record(self, req: ExportTraceServiceRequest, headers: dict[str, str]) -> None:
        with self.cond:
            self.requests.append(req)
            self.headers.append(headers)
            if self.out is not None:
                with self.out.open("a") as f:
                    for rec in span_records(req):
                        f.write(json.dumps(rec) + "\n")
            self.cond.notify_all()

    def spans(self) -> list[dict[str, Any]]:
        with self.lock:
            return [r for req in self.requests for r in span_records(req)]

    def span_count(self) -> int:
        with self.lock:
            return sum(len(ss.spans) for req in self.requests for rs in req.resource_spans for ss in rs.scope_spans)

    def wait_for_spans(self, n: int, timeout: float = 60.0) -> bool:
        """Block until at least ``n`` spans arrived (or the generous timeout passed)."""
        with self.cond:
            return self.cond.wait_for(
                lambda: sum(len(ss.spans) for req in self.requests for rs in req.resource_spans
                            for ss in rs.scope_spans) >= n, timeout)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.headers.clear()

    def start(self) -> "CaptureServer":
        threading.Thread(target=self.serve_forever, name="otlp-capture", daemon=True).start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="JSONL file, one span per line (appended)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file")
    args = ap.parse_args()
    server = CaptureServer(args.port, Path(args.out))
    if args.port_file:
        Path(args.port_file).write_text(str(server.port))
    print(f"PORT {server.port}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    sys.exit(main())
