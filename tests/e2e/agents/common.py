"""Shared OpenTelemetry setup for the Python agents.

Environment:
  E2E_OTLP_HTTP       full OTLP/HTTP traces URL (protobuf), default http://127.0.0.1:4318/v1/traces
  E2E_OTLP_PROTOCOL   "http/protobuf" (default) or "grpc"
  E2E_OTLP_GRPC       gRPC endpoint when the protocol is grpc, default http://127.0.0.1:4317
  E2E_PROJECT         Phoenix project (resource attribute openinference.project.name)
  E2E_ANTHROPIC_URL / E2E_OPENAI_URL   base URL of the fake LLM server
"""

from __future__ import annotations

import os

from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor


def start_tracing(service_name: str) -> TracerProvider:
    """A global tracer provider exporting OTLP to the endpoint the suite gives."""
    protocol = os.environ.get("E2E_OTLP_PROTOCOL", "http/protobuf")
    if protocol == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter

        exporter = GrpcExporter(endpoint=os.environ.get("E2E_OTLP_GRPC", "http://127.0.0.1:4317"), insecure=True)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter

        exporter = HttpExporter(endpoint=os.environ.get("E2E_OTLP_HTTP", "http://127.0.0.1:4318/v1/traces"))
    provider = TracerProvider(resource=Resource.create({
        "service.name": service_name,
        "openinference.project.name": os.environ.get("E2E_PROJECT", "default"),
        "e2e.protocol": protocol,
    }))
    # One export at shutdown: a task's spans reach tollgate in one request (see otel.ts).
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=60000))
    trace.set_tracer_provider(provider)
    return provider


def fake_key(script: str) -> str:
    return f"sk-ant-fake--{script}"


def anthropic_url() -> str:
    return os.environ.get("E2E_ANTHROPIC_URL", "http://127.0.0.1:8080")


def openai_url() -> str:
    return os.environ.get("E2E_OPENAI_URL", anthropic_url()) + "/v1"


def finish(provider: TracerProvider) -> None:
    """Flush every span, then shut the exporter down (an agent exits only after this)."""
    provider.force_flush(30_000)
    provider.shutdown()
