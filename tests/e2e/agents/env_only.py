"""An agent configured the way a new user configures one: by environment variables only.

Run under ``opentelemetry-instrument`` (the OTel distro): the SDK, its exporters and their protocol come from
``OTEL_*`` variables; this file only uses the OpenTelemetry API. It emits one LLM-call span (GenAI semconv) and
records one metric, then prints the trace id. Nothing here names an endpoint or a protocol.
"""

from __future__ import annotations

from opentelemetry import metrics, trace


def main() -> None:
    tracer = trace.get_tracer("e2e.env_only")
    meter = metrics.get_meter("e2e.env_only")
    calls = meter.create_counter("e2e.llm_calls")
    with tracer.start_as_current_span("chat claude-sonnet-4-6", kind=trace.SpanKind.CLIENT) as span:
        span.set_attributes({
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "anthropic",
            "gen_ai.request.model": "claude-sonnet-4-6",
            "gen_ai.usage.input_tokens": 2100,
            "gen_ai.usage.cache_read.input_tokens": 800,
            "gen_ai.usage.output_tokens": 340,
        })
        calls.add(1)
        print(format(span.get_span_context().trace_id, "032x"))


if __name__ == "__main__":
    main()
