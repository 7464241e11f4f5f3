"""Agent 2: Anthropic Python SDK instrumented with openinference-instrumentation-anthropic.

The SDK's own spans stay on (a global tracer provider exists), so each call is described by the SDK span and the
OpenInference span. Usage: python -m agents.openinference_anthropic TASK_ID
"""

import sys

import anthropic
from openinference.instrumentation.anthropic import AnthropicInstrumentor

from agents.anthropic_loop import run_task
from agents.common import anthropic_url, fake_key, finish, start_tracing

provider = start_tracing("e2e-py-openinference-anthropic")
AnthropicInstrumentor().instrument(tracer_provider=provider)
client = anthropic.Anthropic(api_key=fake_key("oi_anthropic"), base_url=anthropic_url(), max_retries=0)
try:
    run_task(client, "claude-haiku-4-5", sys.argv[1] if len(sys.argv) > 1 else "task-oi", "e2e.py-openinference")
finally:
    finish(provider)
