"""Agent 3: Anthropic Python SDK instrumented with opentelemetry-instrumentation-anthropic (OpenLLMetry).

The SDK's own spans stay on. Usage: python -m agents.openllmetry_anthropic TASK_ID
"""

import sys

import anthropic
from opentelemetry.instrumentation.anthropic import AnthropicInstrumentor

from agents.anthropic_loop import run_task
from agents.common import anthropic_url, fake_key, finish, start_tracing

provider = start_tracing("e2e-py-openllmetry-anthropic")
AnthropicInstrumentor().instrument(tracer_provider=provider)
client = anthropic.Anthropic(api_key=fake_key("openllmetry"), base_url=anthropic_url(), max_retries=0)
try:
    run_task(client, "claude-sonnet-4-6", sys.argv[1] if len(sys.argv) > 1 else "task-ollm", "e2e.py-openllmetry")
finally:
    finish(provider)
