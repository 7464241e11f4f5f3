"""The hand computation the suite checks tollgate against, checked by hand."""

from __future__ import annotations

import json
import tomllib
from fractions import Fraction
from pathlib import Path

from expected import expected_call, expected_task, pricing_toml, task_cost_nano
from fake_llm import Scenario, anthropic_usage, openai_usage

SCENARIO = Scenario.load(Path(__file__).with_name("scenario.json"))


def call(api: str, script: str, step: int, model: str) -> dict:
    raw = SCENARIO.step(script, step)
    usage = anthropic_usage(raw["usage"]) if api == "anthropic" else openai_usage(raw["usage"])
    return {"api": api, "script": script, "step": step, "model": raw.get("model", model), "usage": usage}


def test_reference_call_haiku_with_cache():
    # uncached 1200 x $1 + read 800 x $0.10 + 5m write 100 x $1.25 + output 340 x $5, per million tokens
    e = expected_call(call("anthropic", "oi_anthropic", 0, "claude-haiku-4-5"))
    assert e.model == "claude-haiku-4-5-20251001"
    assert e.cost_nano == 1_200_000 + 80_000 + 125_000 + 1_700_000
    assert e.cache_hit_ratio == Fraction(800, 2100)


def test_ts_agent_task_is_over_budget():
    calls = [call("anthropic", "ts_agent", i, "claude-sonnet-4-6") for i in range(3)]
    # step 3 writes 10000 tokens to the 1-hour cache: $6/M, not the 5-minute $3.75/M
    assert [expected_call(c).cost_nano for c in calls] == [330_000_000, 267_000_000, 168_000_000]
    assert task_cost_nano(expected_task(calls, ("ts_agent",))) == 765_000_000 > 500_000_000


def test_openai_cached_tokens_are_inside_prompt_tokens():
    e = expected_call(call("openai", "openai", 0, "gpt-4.1"))
    # 3000 prompt of which 2048 cached: 952 x $2 + 2048 x $0.50 + 150 x $8
    assert (e.uncached_input, e.cache_read) == (952, 2048)
    assert e.cost_nano == 1_904_000 + 1_024_000 + 1_200_000
    assert e.cache_hit_ratio == Fraction(2048, 3000)
    r = expected_call(call("openai", "openai_reasoning", 0, "o4-mini"))
    # reasoning is inside completion tokens and priced as output: 476 x 1.10 + 1024 x 0.275 + 900 x 4.40
    assert r.cost_nano == 476 * 1100 + 1024 * 275 + 900 * 4400


def test_pricing_toml_parses_with_the_contract_keys():
    doc = tomllib.loads(pricing_toml())
    assert doc["pricing"]["builtin"] is False
    names = {m["name"] for m in doc["pricing"]["models"]}
    assert names == {"claude-sonnet-4-6", "claude-haiku-4-5", "gpt-4.1", "o4-mini"}


def test_scenario_file_is_valid_json():
    json.loads(Path(__file__).with_name("scenario.json").read_text())
