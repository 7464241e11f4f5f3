"""Agent 5: the OpenAI Python SDK instrumented with openinference-instrumentation-openai.

OpenAI token semantics: cached tokens are a subset of prompt tokens, reasoning a subset of completion tokens.
A gpt-4.1 tool loop (two calls) and one o4-mini call with reasoning tokens, inside a task span.
Usage: python -m agents.openinference_openai TASK_ID
"""

import json
import sys

import openai
from openinference.instrumentation.openai import OpenAIInstrumentor
from opentelemetry import trace

from agents.common import fake_key, finish, openai_url, start_tracing

TOOLS = [{"type": "function", "function": {
    "name": "lookup_order", "description": "Look up an order",
    "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]

provider = start_tracing("e2e-py-openinference-openai")
OpenAIInstrumentor().instrument(tracer_provider=provider)
tracer = trace.get_tracer("e2e.py-openai", "1.0.0")
task_id = sys.argv[1] if len(sys.argv) > 1 else "task-openai"
try:
    client = openai.OpenAI(api_key=fake_key("openai"), base_url=openai_url(), max_retries=0)
    reasoner = openai.OpenAI(api_key=fake_key("openai_reasoning"), base_url=openai_url(), max_retries=0)
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "orders")
        messages: list[dict] = [{"role": "user", "content": "Where is order A-17?"}]
        for _ in range(4):
            r = client.chat.completions.create(model="gpt-4.1", messages=messages, tools=TOOLS)
            choice = r.choices[0]
            messages.append(choice.message.model_dump(exclude_none=True))
            if choice.finish_reason != "tool_calls":
                break
            for call in choice.message.tool_calls or []:
                with tracer.start_as_current_span("tool.lookup_order") as span:
                    span.set_attribute("tool.name", call.function.name)
                    messages.append({"role": "tool", "tool_call_id": call.id,
                                     "content": json.dumps({"status": "ships tomorrow"})})
        reasoner.chat.completions.create(model="o4-mini", messages=[{"role": "user", "content": "Think hard."}])
finally:
    finish(provider)
