"""Issue 2 acceptance: a real OpenTelemetry SDK client delivers spans through tollgate, every field unchanged.

The Python ``opentelemetry-sdk`` sends through BOTH its exporters — OTLP/gRPC with gzip and OTLP/HTTP protobuf
plain — to tollgate's receivers; tollgate forwards with an ``otlp_http`` exporter to the capture sink. What the SDK
sent is known exactly: an in-memory exporter beside the OTLP one keeps the same spans, and the SDK's own encoder
(the one its exporters use) turns them into the protobuf it put on the wire. Every span must arrive once, with every
field equal: ids, parent, trace_state, flags, name, kind, times, attributes of every type, events, links, status,
resource, scope (name, version, schema URL, attributes) and dropped counts.

The spans carry no LLM usage, so tollgate's pricing must leave them untouched. The only tolerated difference is
the task roll-up (``tollgate.task.*`` attributes, issue 4) that tollgate adds to a task's root span.
"""

from __future__ import annotations

import pytest
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http import Compression as HttpCompression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry import trace
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags, TraceState
from grpc import Compression as GrpcCompression

from otlp_capture import CaptureServer
from tollgate import Tollgate, TollgateConfig

ROLLUP_PREFIX = "tollgate.task."


def emit(tracer, label: str) -> None:
    """A small trace exercising every span field the SDK can set."""
    remote = SpanContext(trace_id=0x0AF7651916CD43DD8448EB211C80319C, span_id=0xB7AD6B7169203331, is_remote=True,
                         trace_flags=TraceFlags(1), trace_state=TraceState([("vendor", "v1"), ("other", "x")]))
    # the root continues a remote trace: parent id, trace_state and the "parent is remote" flag are all set
    parent = trace.set_span_in_context(trace.NonRecordingSpan(remote))
    with tracer.start_as_current_span(f"{label}.root", context=parent, kind=SpanKind.SERVER, attributes={
        "str": "text ✓", "bool": True, "int": -42, "big": 2**62, "float": 3.25,
        "strs": ["a", "b"], "bools": [True, False], "ints": [1, 2, 3], "floats": [0.5, 1.5],
    }) as root:
        root.add_event("started", {"phase": 1, "ok": True})
        with tracer.start_as_current_span(f"{label}.client", kind=SpanKind.CLIENT,
                                          links=[Link(remote, {"link.attr": "l"})]) as child:
            child.set_attribute("http.request.method", "POST")
            child.add_event("retry", {"attempt": 2})
            child.set_status(Status(StatusCode.ERROR, "backend said no"))
        for kind in (SpanKind.PRODUCER, SpanKind.CONSUMER, SpanKind.INTERNAL):
            with tracer.start_as_current_span(f"{label}.{kind.name.lower()}", kind=kind) as s:
                # more attributes than the limit below: the SDK drops some and reports dropped_attributes_count
                for i in range(6):
                    s.set_attribute(f"k{i}", i)
        root.set_status(Status(StatusCode.OK))


def make_provider(service: str, exporter) -> tuple[TracerProvider, InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(
        resource=Resource.create({"service.name": service, "deployment.environment": "e2e", "res.int": 7}),
        span_limits=SpanLimits(max_span_attributes=4, max_events=8, max_links=8),
    )
    provider.add_span_processor(SimpleSpanProcessor(memory))
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=100))
    return provider, memory


def spans_by_id(req_list) -> dict[bytes, tuple]:
    """span id -> (resource, scope, span) across requests (each proto message compared whole)."""
    out: dict[bytes, tuple] = {}
    for req in req_list:
        for rs in req.resource_spans:
            for ss in rs.scope_spans:
                for s in ss.spans:
                    assert s.span_id not in out, f"span {s.span_id.hex()} arrived twice"
                    out[s.span_id] = (rs.resource, rs.schema_url, ss.scope, ss.schema_url, s)
    return out


def without_rollup(span):
    copy = type(span)()
    copy.CopyFrom(span)
    keep = [kv for kv in copy.attributes if not kv.key.startswith(ROLLUP_PREFIX)]
    del copy.attributes[:]
    copy.attributes.extend(keep)
    return copy


@pytest.fixture
def sink():
    s = CaptureServer().start()
    yield s
    s.stop()


def test_python_sdk_grpc_gzip_and_http_through_tollgate(tollgate_binary, procs, workdir, sink):
    cfg = TollgateConfig(otlp_http={"capture": sink.base_url}, pricing=False, alert_rules=False)
    tg = Tollgate(procs, tollgate_binary, cfg, workdir / "roundtrip", name="tollgate-roundtrip").start()
    try:
        grpc_provider, grpc_memory = make_provider("e2e-sdk-grpc", GrpcExporter(
            endpoint=cfg.grpc_endpoint, insecure=True, compression=GrpcCompression.Gzip))
        http_provider, http_memory = make_provider("e2e-sdk-http", HttpExporter(
            endpoint=cfg.http_traces_url, compression=HttpCompression.NoCompression))
        scope_attrs = {"scope.attr": "s"}
        emit(grpc_provider.get_tracer("e2e.grpc", "1.2.3", "https://opentelemetry.io/schemas/1.30.0",
                                      attributes=scope_attrs), "grpc")
        emit(http_provider.get_tracer("e2e.http", "4.5.6", "https://opentelemetry.io/schemas/1.30.0",
                                      attributes=scope_attrs), "http")
        for p in (grpc_provider, http_provider):
            assert p.force_flush(30_000)
            p.shutdown()

        sent = spans_by_id([encode_spans(grpc_memory.get_finished_spans()),
                            encode_spans(http_memory.get_finished_spans())])
        assert len(sent) == 10
        assert sink.wait_for_spans(len(sent), timeout=60), f"only {sink.span_count()} spans arrived"
        got = spans_by_id(sink.requests)
        assert set(got) == set(sent)
        for sid, (resource, rs_schema, scope, ss_schema, span) in sent.items():
            g_resource, g_rs_schema, g_scope, g_ss_schema, g_span = got[sid]
            assert g_resource == resource, sid.hex()
            assert g_rs_schema == rs_schema
            assert g_scope == scope
            assert g_ss_schema == ss_schema
            assert without_rollup(g_span) == span, f"span {span.name} changed in transit"
        # the fields the test means to exercise really were set (guards against a vacuous comparison)
        sent_spans = [v[4] for v in sent.values()]
        assert all(s.trace_state == "vendor=v1,other=x" for s in sent_spans)
        assert any(s.links for s in sent_spans)
        assert any(s.flags & 0x300 == 0x300 for s in sent_spans), "a span with a remote parent"
        assert any(s.dropped_attributes_count for s in sent_spans)
        assert any(s.events for s in sent_spans)
        assert any(s.status.code == 2 and s.status.message for s in sent_spans)
        assert all(v[2].attributes and v[2].version for v in sent.values())
    finally:
        tg.stop()
    assert tg.proc is None
