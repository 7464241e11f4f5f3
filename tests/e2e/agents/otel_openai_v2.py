"""The OpenAI Python SDK instrumented with the OpenTelemetry ``opentelemetry-instrumentation-openai-v2``.

Inside a task span: a non-streaming tool loop (two calls) and a streaming tool loop (two calls,
``stream_options.include_usage``). OpenAI semantics: cached tokens are a subset of prompt tokens.
Usage: python -m agents.otel_openai_v2 TASK_ID
"""

import sys

import openai
from opentelemetry import trace
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

from agents.common import fake_key, finish, openai_url, start_tracing
from agents.openai_loop import run_loop

provider = start_tracing("e2e-py-otel-openai-v2")
OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = trace.get_tracer("e2e.py-otel-openai-v2", "1.0.0")
task_id = sys.argv[1] if len(sys.argv) > 1 else "task-openai-v2"
try:
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        run_loop(openai.OpenAI(api_key=fake_key("otel_openai_v2"), base_url=openai_url(), max_retries=0), False)
        run_loop(openai.OpenAI(api_key=fake_key("otel_openai_v2_stream"), base_url=openai_url(), max_retries=0), True)
finally:
    finish(provider)
