"""Expected costs, computed by hand from the fake server's usage and the price table the suite configures.

Money is exact: integer nano-USD. A price of $3 per million tokens is 3000 nano-USD per token.
The same ``PRICES`` table is written into tollgate's config (``[[pricing.models]]``, builtin table off), so the suite
checks tollgate against numbers that depend on nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any


@dataclass(frozen=True)
class Price:
    """USD per million tokens (as strings, to stay exact)."""

    name: str
    provider: str
    match: tuple[str, ...]
    input: str
    output: str
    cache_read: str
    cache_write: str | None = None
    cache_write_1h: str | None = None

    def nano_per_token(self, field: str) -> int:
        value = getattr(self, field)
        if value is None:
            raise ValueError(f"{self.name} has no {field} price")
        nano = Decimal(value) * 1000  # USD per 1M tokens -> nano-USD per token
        if nano != nano.to_integral_value():
            raise ValueError(f"{self.name}.{field} is not a whole number of nano-USD per token")
        return int(nano)


PRICES: list[Price] = [
    Price("claude-sonnet-4-6", "anthropic", ("claude-sonnet-4-6*",), "3.00", "15.00", "0.30", "3.75", "6.00"),
    Price("claude-haiku-4-5", "anthropic", ("claude-haiku-4-5*",), "1.00", "5.00", "0.10", "1.25", "2.00"),
    Price("gpt-4.1", "openai", ("gpt-4.1-2*",), "2.00", "8.00", "0.50"),
    Price("o4-mini", "openai", ("o4-mini-2*",), "1.10", "4.40", "0.275"),
]


def price_for(model: str) -> Price:
    for p in PRICES:
        if model == p.name or model.startswith(p.name + "-"):
            return p
    raise KeyError(model)


@dataclass(frozen=True)
class Expected:
    """One model call as the fake server answered it."""

    script: str
    step: int
    model: str
    uncached_input: int
    cache_read: int
    cache_write_5m: int
    cache_write_1h: int
    output: int
    reasoning: int
    cost_nano: int

    @property
    def input_incl_cache(self) -> int:
        return self.uncached_input + self.cache_read + self.cache_write_5m + self.cache_write_1h

    @property
    def cache_hit_ratio(self) -> Fraction | None:
        return Fraction(self.cache_read, self.input_incl_cache) if self.input_incl_cache else None

    @property
    def cost_usd(self) -> Decimal:
        return Decimal(self.cost_nano) / Decimal(10**9)


def expected_call(call: dict[str, Any]) -> Expected:
    """Expected figures for one entry of the fake server's ``/_calls`` log."""
    u = call["usage"]
    p = price_for(call["model"])
    if call["api"] == "anthropic":
        w5 = u["cache_creation"]["ephemeral_5m_input_tokens"]
        w1 = u["cache_creation"]["ephemeral_1h_input_tokens"]
        e = dict(uncached_input=u["input_tokens"], cache_read=u["cache_read_input_tokens"], cache_write_5m=w5,
                 cache_write_1h=w1, output=u["output_tokens"], reasoning=0)
    else:
        cached = u["prompt_tokens_details"]["cached_tokens"]
        e = dict(uncached_input=u["prompt_tokens"] - cached, cache_read=cached, cache_write_5m=0, cache_write_1h=0,
                 output=u["completion_tokens"], reasoning=u["completion_tokens_details"]["reasoning_tokens"])
    cost = (e["uncached_input"] * p.nano_per_token("input") + e["cache_read"] * p.nano_per_token("cache_read")
            + e["output"] * p.nano_per_token("output"))
    if e["cache_write_5m"]:
        cost += e["cache_write_5m"] * p.nano_per_token("cache_write")
    if e["cache_write_1h"]:
        cost += e["cache_write_1h"] * p.nano_per_token("cache_write_1h")
    return Expected(script=call["script"], step=call["step"], model=call["model"], cost_nano=cost, **e)


def expected_task(calls: list[dict[str, Any]], scripts: tuple[str, ...]) -> list[Expected]:
    return [expected_call(c) for c in calls if c["script"] in scripts]


def task_cost_nano(calls: list[Expected]) -> int:
    return sum(c.cost_nano for c in calls)


def task_cache_hit_ratio(calls: list[Expected]) -> Fraction | None:
    """sum(read) / sum(input incl. cache), never an average of ratios."""
    total = sum(c.input_incl_cache for c in calls)
    return Fraction(sum(c.cache_read for c in calls), total) if total else None


def pricing_toml() -> str:
    """The ``[pricing]`` section for tollgate's config: exactly ``PRICES``, no built-in table."""
    lines = ["[pricing]", "builtin = false", ""]
    for p in PRICES:
        lines += ["[[pricing.models]]", f'name = "{p.name}"', f'provider = "{p.provider}"',
                  "match = [" + ", ".join(f'"{m}"' for m in p.match) + "]",
                  f"input = {p.input}", f"output = {p.output}", f"cache_read = {p.cache_read}"]
        if p.cache_write is not None:
            lines.append(f"cache_write = {p.cache_write}")
        if p.cache_write_1h is not None:
            lines.append(f"cache_write_1h = {p.cache_write_1h}")
        lines.append("")
    return "\n".join(lines)
