#!/usr/bin/env python3
"""Runs every PromQL query of the Grafana dashboards against a Prometheus and fails on no data.

    deploy/check-dashboard.py --prometheus http://127.0.0.1:9090 [DASHBOARD.json ...]

Each panel target (rows included) and each `label_values(metric, label)` template variable is
evaluated as an instant query. Grafana variables are replaced first: query variables by their
"All" value (`.*`), `$__rate_interval`/`$__interval` by --rate-interval, `$__range` by --range.
A query fails when Prometheus refuses it, returns no series, or returns only NaN/Inf values.
Exit status: 0 when every query returned data, 1 otherwise, 2 on usage errors.
Only the Python standard library is used.
"""

import argparse
import glob
import json
import math
import os
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DASHBOARDS = os.path.join(HERE, "grafana", "dashboards", "*.json")
LABEL_VALUES = re.compile(r"^\s*label_values\(\s*(.+?)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$")


def panels(items):
    """Every panel, including those nested in (collapsed) rows."""
    for panel in items:
        yield panel
        yield from panels(panel.get("panels", []))


def queries(dashboard):
    """(where, expr) for every panel target and every label_values variable."""
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        query = var.get("query")
        if isinstance(query, dict):
            query = query.get("query", "")
        match = LABEL_VALUES.match(query or "")
        if match:
            metric, label = match.groups()
            yield f"variable ${var['name']}", f"count by ({label}) ({metric})"
        elif query:
            yield f"variable ${var['name']}", query
    for panel in panels(dashboard.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("hide"):
                continue
            expr = target.get("expr")
            if expr:
                yield f"panel {panel.get('title')!r} ({target.get('refId', '?')})", expr


def substitute(expr, dashboard, args):
    """Replaces Grafana's variables with values Prometheus understands."""
    builtins = {
        "__rate_interval": args.rate_interval,
        "__interval": args.rate_interval,
        "__range": args.range,
    }
    values = {}
    for var in dashboard.get("templating", {}).get("list", []):
        if var.get("type") in ("query", "custom"):
            values[var["name"]] = var.get("allValue") or ".*"
        elif var.get("type") in ("constant", "textbox"):
            values[var["name"]] = str(var.get("query", ""))

    def replace(match):
        name = match.group(1) or match.group(2)
        if name in builtins:
            return builtins[name]
        if name in values:
            return values[name]
        raise ValueError(f"unknown variable ${name}")

    return re.sub(r"\$\{([A-Za-z0-9_]+)(?::[a-z]+)?\}|\$([A-Za-z0-9_]+)", replace, expr)


def run_query(base, expr, timeout):
    url = base.rstrip("/") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            body = json.load(response)
    except urllib.error.HTTPError as error:
        try:
            body = json.load(error)
        except ValueError:
            return f"HTTP {error.code}"
    except (urllib.error.URLError, OSError, ValueError) as error:
        return f"request failed: {error}"
    if body.get("status") != "success":
        return f"refused: {body.get('errorType')}: {body.get('error')}"
    data = body["data"]
    if data["resultType"] == "scalar":
        results = [data["result"]]
    else:
        results = [r["value"] for r in data["result"]]
    if not results:
        return "no data"
    if all(not math.isfinite(float(value)) for _, value in results):
        return "only NaN/Inf values"
    return None


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dashboards", nargs="*", help=f"dashboard JSON files (default {DEFAULT_DASHBOARDS})")
    parser.add_argument("--prometheus", required=True, help="base URL, e.g. http://127.0.0.1:9090")
    parser.add_argument("--rate-interval", default="1m", help="value of $__rate_interval (default 1m)")
    parser.add_argument("--range", default="1h", help="value of $__range (default 1h)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query")
    args = parser.parse_args()

    files = args.dashboards or sorted(glob.glob(DEFAULT_DASHBOARDS))
    if not files:
        print("no dashboards found", file=sys.stderr)
        return 2
    failures = total = 0
    for path in files:
        with open(path, encoding="utf-8") as f:
            dashboard = json.load(f)
        for where, raw in queries(dashboard):
            total += 1
            try:
                expr = substitute(raw, dashboard, args)
            except ValueError as error:
                problem = str(error)
            else:
                problem = run_query(args.prometheus, expr, args.timeout)
            if problem:
                failures += 1
                print(f"FAIL {os.path.basename(path)}: {where}: {problem}\n     {raw}")
            else:
                print(f"ok   {os.path.basename(path)}: {where}")
    print(f"{total - failures} passed, {failures} failed")
    return 1 if failures or total == 0 else 0


if __name__ == "__main__":
    sys.exit(main())
