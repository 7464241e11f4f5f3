"""A small tool loop on the Anthropic Python SDK, shared by the Anthropic instrumentation agents."""

from __future__ import annotations

import anthropic
from opentelemetry import trace

TOOLS = [{"name": "get_weather", "description": "Weather for a city",
          "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


def run_loop(client: anthropic.Anthropic, model: str, tracer, stream: bool = False) -> int:
    """Calls the model until it stops asking for tools (``messages.stream`` when ``stream``); returns the steps."""
    messages: list[dict] = [{"role": "user", "content": "What is the weather?"}]
    for step in range(6):
        if stream:
            with client.messages.stream(model=model, max_tokens=512, tools=TOOLS, messages=messages) as s:
                for _ in s:
                    pass
                r = s.get_final_message()
        else:
            r = client.messages.create(model=model, max_tokens=512, tools=TOOLS, messages=messages)
        messages.append({"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in r.content]})
        uses = [b for b in r.content if b.type == "tool_use"]
        if r.stop_reason != "tool_use" or not uses:
            break
        results = []
        for u in uses:
            with tracer.start_as_current_span(f"tool.{u.name}") as span:
                span.set_attribute("tool.name", u.name)
                span.set_attribute("tool.success", True)
                results.append({"type": "tool_result", "tool_use_id": u.id, "content": "sunny, 21C"})
        messages.append({"role": "user", "content": results})
    return step + 1


def run_task(client: anthropic.Anthropic, model: str, task_id: str, tracer_name: str) -> None:
    tracer = trace.get_tracer(tracer_name, "1.0.0")
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        task.set_attribute("agent.total_steps", run_loop(client, model, tracer))
