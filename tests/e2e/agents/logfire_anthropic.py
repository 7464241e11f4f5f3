"""Pydantic Logfire's ``logfire.instrument_anthropic()`` and ``logfire.instrument_openai()`` (Logfire exporting
OTLP to the suite's endpoint, not to Logfire's service). The Anthropic SDK's own spans stay on.

Inside a task span: an Anthropic tool loop non-streaming (two calls) and streaming (two calls), and an OpenAI
tool loop non-streaming (two calls) and streaming (two calls).
Usage: python -m agents.logfire_anthropic TASK_ID
"""

import os
import sys

import anthropic
import logfire
import openai
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from opentelemetry import trace

from agents.anthropic_loop import run_loop as anthropic_loop
from agents.common import anthropic_url, fake_key, openai_url
from agents.openai_loop import run_loop as openai_loop

exporter = OTLPSpanExporter(endpoint=os.environ.get("E2E_OTLP_HTTP", "http://127.0.0.1:4318/v1/traces"))
logfire.configure(send_to_logfire=False, service_name="e2e-py-logfire", console=False,
                  additional_span_processors=[BatchSpanProcessor(exporter, schedule_delay_millis=60000)],
                  resource_attributes={"openinference.project.name": os.environ.get("E2E_PROJECT", "default")})
logfire.instrument_anthropic()
logfire.instrument_openai()
task_id = sys.argv[1] if len(sys.argv) > 1 else "task-logfire"
try:
    with logfire.span("agent.task", **{"agent.task.id": task_id, "agent.task_type": "weather"}):
        def both(stream: bool) -> None:
            script = "logfire_anthropic_stream" if stream else "logfire_anthropic"
            client = anthropic.Anthropic(api_key=fake_key(script), base_url=anthropic_url(), max_retries=0)
            anthropic_loop(client, "claude-haiku-4-5", trace.get_tracer("e2e.py-logfire"), stream)
            script = "logfire_openai_stream" if stream else "logfire_openai"
            openai_loop(openai.OpenAI(api_key=fake_key(script), base_url=openai_url(), max_retries=0), stream)
        both(False)
        both(True)
finally:
    logfire.force_flush()
    logfire.shutdown()
