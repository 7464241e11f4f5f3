"""The OpenAI Agents SDK instrumented with ``openinference-instrumentation-openai-agents`` (its trace processor).

The SDK's default model (the Responses API) is pointed at the fake server. Inside a task span: one ``Runner.run``
(a tool loop: two model calls) and one ``Runner.run_streamed`` (two streamed model calls).
The SDK's import name is ``agents``, the name of the suite's own agent package: this file lives outside it, is run
from its own directory, and loads the suite's ``agents/common.py`` by path.
Usage: python tests/e2e/openai_agents_sdk/agent.py TASK_ID
"""

import asyncio
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
E2E = HERE.parent
sys.path = [p for p in sys.path if Path(p or ".").resolve() != E2E]
_spec = importlib.util.spec_from_file_location("e2e_agents_common", E2E / "agents" / "common.py")
agents_common = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(agents_common)
fake_key, finish, openai_url, start_tracing = (agents_common.fake_key, agents_common.finish,
                                               agents_common.openai_url, agents_common.start_tracing)

from agents import Agent, OpenAIResponsesModel, Runner, function_tool  # noqa: E402
from openai import AsyncOpenAI  # noqa: E402
from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor  # noqa: E402
from opentelemetry import trace  # noqa: E402

provider = start_tracing("e2e-py-openai-agents")
OpenAIAgentsInstrumentor().instrument(tracer_provider=provider)


@function_tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def agent(script: str) -> Agent:
    client = AsyncOpenAI(api_key=fake_key(script), base_url=openai_url(), max_retries=0)
    return Agent(name="weather", instructions="Answer briefly.", tools=[get_weather],
                 model=OpenAIResponsesModel(model="gpt-4.1", openai_client=client))


async def main(task_id: str) -> None:
    tracer = trace.get_tracer("e2e.py-openai-agents", "1.0.0")
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        await Runner.run(agent("openai_agents"), "Weather in Rome?")
        streamed = Runner.run_streamed(agent("openai_agents_stream"), "Weather in Rome?")
        async for _ in streamed.stream_events():
            pass


try:
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "task-openai-agents"))
finally:
    finish(provider)
