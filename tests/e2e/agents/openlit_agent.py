"""OpenLIT (``openlit.init()``) instrumenting the Anthropic and OpenAI Python SDKs, exporting OTLP/HTTP to the
suite's endpoint through the tracer provider OpenLIT sets up itself (resource ``telemetry.sdk.name = openlit``).

Inside a task span: an Anthropic tool loop non-streaming (two calls) and streaming (two calls), and an OpenAI
tool loop non-streaming (two calls) and streaming (two calls). Runs in ``.venv-legacy`` (OpenLIT pins
``anthropic<1``).
Usage: python -m agents.openlit_agent TASK_ID
"""

import os
import sys

import anthropic
import openai
import openlit
from opentelemetry import trace

from agents.anthropic_loop import run_loop as anthropic_loop
from agents.common import anthropic_url, fake_key, openai_url
from agents.openai_loop import run_loop as openai_loop

traces_url = os.environ.get("E2E_OTLP_HTTP", "http://127.0.0.1:4318/v1/traces")
openlit.init(otlp_endpoint=traces_url.removesuffix("/v1/traces"), application_name="e2e-py-openlit",
             environment="e2e", disable_metrics=True, collect_gpu_stats=False)
tracer = trace.get_tracer("e2e.py-openlit", "1.0.0")
task_id = sys.argv[1] if len(sys.argv) > 1 else "task-openlit"
try:
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        for stream in (False, True):
            suffix = "_stream" if stream else ""
            client = anthropic.Anthropic(api_key=fake_key("openlit_anthropic" + suffix), base_url=anthropic_url(),
                                         max_retries=0)
            anthropic_loop(client, "claude-haiku-4-5", tracer, stream)
            openai_loop(openai.OpenAI(api_key=fake_key("openlit_openai" + suffix), base_url=openai_url(),
                                      max_retries=0), stream)
finally:
    provider = trace.get_tracer_provider()
    provider.force_flush(30_000)
    provider.shutdown()
