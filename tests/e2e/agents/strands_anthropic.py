"""Strands Agents (its built-in OpenTelemetry tracing) on its Anthropic model provider.

Inside a task span: one agent invocation with the tool loop (two model calls) and one streamed invocation
(``stream_async``: two model calls). Strands always streams from the model API.
Usage: python -m agents.strands_anthropic TASK_ID
"""

import asyncio
import sys

from opentelemetry import trace
from strands import Agent, tool
from strands.models.anthropic import AnthropicModel

from agents.common import anthropic_url, fake_key, finish, start_tracing

provider = start_tracing("e2e-py-strands")


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def agent(script: str) -> Agent:
    model = AnthropicModel(client_args={"api_key": fake_key(script), "base_url": anthropic_url(), "max_retries": 0},
                           model_id="claude-haiku-4-5", max_tokens=512)
    return Agent(model=model, tools=[get_weather], name="weather", callback_handler=None)


async def main(task_id: str) -> None:
    tracer = trace.get_tracer("e2e.py-strands", "1.0.0")
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        agent("strands")("Weather in Rome?")
        async for _ in agent("strands_stream").stream_async("Weather in Rome?"):
            pass


try:
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "task-strands"))
finally:
    finish(provider)
