"""A stand-in for tollgate that only FORWARDS (no pricing, no tasks, no alerts): a self-test of the harness.

It reads the subset of tollgate's config the suite generates (``[receivers.otlp]``, ``[admin]``, ``[[exporters]]``
of kind ``otlp_http`` and ``file``; everything else is ignored), receives OTLP/gRPC and OTLP/HTTP (protobuf, JSON,
gzip), and forwards every request to each exporter with retry until it is delivered. With it, the suite's
plumbing (config, start-up, readiness, arrival, outage) runs before tollgate exists; the assertions about pricing,
roll-ups and alerts fail against it, as they should.

    TOLLGATE_BIN=tests/e2e/standin/tollgate tests/e2e/run.sh -k "arrives or roundtrip"
"""

from __future__ import annotations

import base64
import gzip
import json
import queue
import sys
import threading
import time
import tomllib
from concurrent import futures
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import grpc
import requests
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from otlp_capture import parse_otlp_json  # noqa: E402

ID_FIELDS = {"traceId", "spanId", "parentSpanId"}


def to_otlp_json(req: ExportTraceServiceRequest) -> str:
    def fix(node):
        if isinstance(node, dict):
            return {k: (base64.b64decode(v).hex() if k in ID_FIELDS else fix(v)) for k, v in node.items()}
        if isinstance(node, list):
            return [fix(v) for v in node]
        return node

    return json.dumps(fix(json_format.MessageToDict(req)))


class Forwarder:
    def __init__(self, name: str, send):
        self.name = name
        self.send = send
        self.q: queue.Queue[bytes] = queue.Queue()
        threading.Thread(target=self.loop, daemon=True).start()

    def loop(self) -> None:
        while True:
            body = self.q.get()
            delay = 0.5
            while True:
                try:
                    self.send(body)
                    break
                except Exception as e:  # noqa: BLE001
                    print(f"standin: export to {self.name} failed ({e}); retrying in {delay}s", flush=True)
                    time.sleep(delay)
                    delay = min(delay * 2, 5)


def build_exporters(cfg: dict) -> list[Forwarder]:
    out = []
    for ex in cfg.get("exporters", []):
        if ex["kind"] == "otlp_http":
            url = ex["endpoint"].rstrip("/") + "/v1/traces"

            def send(body: bytes, url=url) -> None:
                r = requests.post(url, data=body, headers={"content-type": "application/x-protobuf"}, timeout=10)
                if r.status_code >= 300:
                    raise RuntimeError(f"HTTP {r.status_code}")

            out.append(Forwarder(ex["name"], send))
        elif ex["kind"] == "file":
            path = Path(ex["path"])
            lock = threading.Lock()

            def write(body: bytes, path=path, lock=lock) -> None:
                with lock, path.open("a") as f:
                    f.write(to_otlp_json(ExportTraceServiceRequest.FromString(body)) + "\n")

            out.append(Forwarder(ex["name"], write))
    return out


def main() -> None:
    args = sys.argv[1:]
    if args and args[0] == "run":
        args = args[1:]
    cfg = tomllib.loads(Path(args[args.index("--config") + 1]).read_text())
    exporters = build_exporters(cfg)

    def submit(req: ExportTraceServiceRequest) -> None:
        body = req.SerializeToString()
        for ex in exporters:
            ex.q.put(body)

    class Http(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *a):
            pass

        def do_POST(self):
            if (self.headers.get("transfer-encoding") or "").lower() == "chunked":
                parts = []
                while True:
                    n = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if n == 0:
                        self.rfile.readline()
                        break
                    parts.append(self.rfile.read(n))
                    self.rfile.readline()
                body = b"".join(parts)
            else:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
            if (self.headers.get("content-encoding") or "") == "gzip":
                body = gzip.decompress(body)
            is_json = (self.headers.get("content-type") or "").startswith("application/json")
            submit(parse_otlp_json(body) if is_json else ExportTraceServiceRequest.FromString(body))
            out = b"{}" if is_json else ExportTraceServiceResponse().SerializeToString()
            self.send_response(200)
            self.send_header("content-type", "application/json" if is_json else "application/x-protobuf")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    class Admin(BaseHTTPRequestHandler):
        def log_message(self, *a):
            pass

        def do_GET(self):
            code = 200 if self.path in ("/readyz", "/healthz") else 404
            self.send_response(code)
            self.send_header("content-length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    class Grpc(trace_service_pb2_grpc.TraceServiceServicer):
        def Export(self, request, context):
            submit(request)
            return ExportTraceServiceResponse()

    def hostport(s: str) -> tuple[str, int]:
        h, p = s.rsplit(":", 1)
        return h, int(p)

    rx = cfg["receivers"]["otlp"]
    server = grpc.server(futures.ThreadPoolExecutor(4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Grpc(), server)
    server.add_insecure_port(rx["grpc"])
    server.start()
    http = ThreadingHTTPServer(hostport(rx["http"]), Http)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    admin = ThreadingHTTPServer(hostport(cfg["admin"]["listen"]), Admin)
    print("standin: listening", flush=True)
    admin.serve_forever()


if __name__ == "__main__":
    main()
