"""LangChain / LangGraph (``langchain.agents.create_agent``) on ``langchain-anthropic``, instrumented with
``openinference-instrumentation-langchain``. The Anthropic SDK's own spans stay on.

Inside a task span: one agent run with non-streaming calls (a tool loop: two model calls) and one streamed agent
run (``stream_mode="messages"``, ``ChatAnthropic(streaming=True)``: two model calls).
Usage: python -m agents.langchain_anthropic TASK_ID
"""

import sys

from langchain.agents import create_agent
from langchain_anthropic import ChatAnthropic
from langchain_core.tools import tool
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry import trace

from agents.common import anthropic_url, fake_key, finish, start_tracing

provider = start_tracing("e2e-py-langchain")
LangChainInstrumentor().instrument(tracer_provider=provider)


@tool
def get_weather(city: str) -> str:
    """Weather for a city."""
    return f"sunny in {city}"


def model(script: str, streaming: bool) -> ChatAnthropic:
    return ChatAnthropic(model="claude-haiku-4-5", api_key=fake_key(script), base_url=anthropic_url(),
                         max_retries=0, streaming=streaming, max_tokens=512)


task_id = sys.argv[1] if len(sys.argv) > 1 else "task-langchain"
tracer = trace.get_tracer("e2e.py-langchain", "1.0.0")
try:
    with tracer.start_as_current_span("agent.task") as task:
        task.set_attribute("agent.task.id", task_id)
        task.set_attribute("agent.task_type", "weather")
        question = {"messages": [{"role": "user", "content": "Weather in Rome?"}]}
        create_agent(model("langchain", False), tools=[get_weather]).invoke(question)
        streamed = create_agent(model("langchain_stream", True), tools=[get_weather])
        for _ in streamed.stream(question, stream_mode="messages"):
            pass
finally:
    finish(provider)
