"""Pydantic AI (its own OpenTelemetry instrumentation, ``Agent.instrument_all()``) on Anthropic. The Anthropic SDK's own
spans stay on.

Inside a task span: one agent run with non-streaming calls (a tool loop: two model calls) and one streamed run
(``run_stream_events``: two model calls).
Usage: python -m agents.pydantic_ai_anthropic TASK_ID
"""

import asyncio
import sys

from opentelemetry import trace
from pydantic_ai import Agent
from pydantic_ai.models.anthropic import AnthropicModel
from pydantic_ai.providers.anthropic import AnthropicProvider

from agents.common import anthropic_url, fake_key, finish, start_tracing

provider = start_tracing("e2e-py-pydantic-ai")
Agent.instrument_all()


def agent(script: str) -> Agent:
    model = AnthropicModel("claude-haiku-4-5", provider=AnthropicProvider(api_key=fake_key(script),
                                                                         base_url=anthropic_url()))
    a = Agent(model, name="weather")

    @a.tool_plain
    def get_weather(city: str) -> str:
        """Weather for a city."""
        return f"sunny in {city}"

    return a


async def main(task_id: str) -> None:
    tracer = trace.get_tracer("e2e.py-pydantic-ai", "1.0.0")
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        await agent("pydantic_ai").run("Weather in Rome?")
        async with agent("pydantic_ai_stream").run_stream_events("Weather in Rome?") as events:
            async for _ in events:
                pass


try:
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "task-pydantic-ai"))
finally:
    finish(provider)
