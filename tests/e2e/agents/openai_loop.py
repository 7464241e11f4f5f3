"""A small tool loop on the OpenAI Python SDK (chat completions), streaming or not."""

from __future__ import annotations

import json

import openai

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]


def run_loop(client: openai.OpenAI, stream: bool, model: str = "gpt-4.1") -> None:
    messages: list[dict] = [{"role": "user", "content": "Weather in Rome?"}]
    for _ in range(4):
        if stream:
            calls: dict[int, dict] = {}
            finish = None
            chunks = client.chat.completions.create(model=model, messages=messages, tools=TOOLS, stream=True,
                                                    stream_options={"include_usage": True})
            for chunk in chunks:
                for c in chunk.choices:
                    finish = c.finish_reason or finish
                    for t in c.delta.tool_calls or []:
                        calls.setdefault(t.index, {"id": t.id, "type": "function",
                                                   "function": {"name": t.function.name, "arguments": ""}})
                        calls[t.index]["function"]["arguments"] += t.function.arguments or ""
            message = {"role": "assistant", "content": None, "tool_calls": list(calls.values())} if calls else \
                {"role": "assistant", "content": "done"}
        else:
            r = client.chat.completions.create(model=model, messages=messages, tools=TOOLS)
            finish = r.choices[0].finish_reason
            message = r.choices[0].message.model_dump(exclude_none=True)
        messages.append(message)
        if finish != "tool_calls":
            return
        for call in message.get("tool_calls") or []:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": json.dumps({"weather": "sunny"})})
