#!/usr/bin/env python3
"""Proves deploy/check-dashboard.py against a real Prometheus (Debian package) on loopback.

A small HTTP server serves fixture.prom (every metric the dashboard uses, values multiplied by the
scrape count so counters grow); Prometheus scrapes it every second with the real recording and
alerting rules loaded. Then:
  1. the checker passes on the real dashboard;
  2. the checker fails on a copy of the dashboard with one query for a metric that does not exist;
  3. the checker fails on a copy with a query Prometheus refuses (syntax error).
Everything started here is stopped by its PID. Exit status 0 on success.
"""

import http.server
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
DEPLOY = os.path.dirname(HERE)
CHECKER = os.path.join(DEPLOY, "check-dashboard.py")
DASHBOARD = os.path.join(DEPLOY, "grafana", "dashboards", "tollgate.json")
FIXTURE = os.path.join(HERE, "fixture.prom")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{.*\})?) (\S+)$")


def serve_fixture():
    """Starts the exporter on 127.0.0.1:0; returns (server, port)."""
    with open(FIXTURE, encoding="utf-8") as f:
        lines = f.read().splitlines()
    scrapes = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server API)
            scrapes[0] += 1
            n = scrapes[0]
            out = []
            for line in lines:
                m = SAMPLE.match(line)
                out.append(f"{m.group(1)} {float(m.group(2)) * n!r}" if m else line)
            body = ("\n".join(out) + "\n").encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, server.server_address[1]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get_json(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)


def checker(prometheus, dashboard):
    cmd = [sys.executable, CHECKER, "--prometheus", prometheus, "--rate-interval", "30s", "--range", "5m", dashboard]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def broken_copy(tmp, name, expr):
    with open(DASHBOARD, encoding="utf-8") as f:
        dash = json.load(f)
    panel = next(p for p in dash["panels"] if p.get("targets"))
    panel["targets"][0]["expr"] = expr
    path = os.path.join(tmp, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(dash, f)
    return path


def main():
    prometheus_bin = shutil.which("prometheus")
    if not prometheus_bin:
        print("prometheus is not installed (apt-get install prometheus)", file=sys.stderr)
        return 1
    tmp = tempfile.mkdtemp(prefix="tollgate-dash-")
    server, exporter_port = serve_fixture()
    prom_port = free_port()
    config = os.path.join(tmp, "prometheus.yml")
    rules = os.path.join(DEPLOY, "prometheus", "rules")
    with open(config, "w", encoding="utf-8") as f:
        f.write(
            "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
            f"rule_files: ['{rules}/tollgate-recording.yml', '{rules}/tollgate-alerts.yml']\n"
            "scrape_configs:\n"
            f"  - job_name: tollgate\n    static_configs: [{{targets: ['127.0.0.1:{exporter_port}']}}]\n"
        )
    log = open(os.path.join(tmp, "prometheus.log"), "w")
    proc = subprocess.Popen(
        [prometheus_bin, f"--config.file={config}", f"--storage.tsdb.path={tmp}/data",
         f"--web.listen-address=127.0.0.1:{prom_port}"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{prom_port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/-/ready", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                print("Prometheus did not become ready; log:\n" + open(log.name).read(), file=sys.stderr)
                return 1
            time.sleep(0.3)
        # Wait until rate() over 30s has at least 5 samples of every series.
        deadline = time.time() + 90
        while True:
            res = get_json(base + "/api/v1/query?query=count_over_time(tollgate_llm_calls_total[30s])")
            got = res["data"]["result"]
            if got and float(got[0]["value"][1]) >= 5:
                break
            if time.time() > deadline:
                print("Prometheus did not scrape the fixture: " + json.dumps(res), file=sys.stderr)
                return 1
            time.sleep(0.5)

        ok = checker(base, DASHBOARD)
        print(ok.stdout, end="")
        if ok.returncode != 0:
            print("FAIL: the checker rejected the dashboard against the fixture", file=sys.stderr)
            return 1
        missing = checker(base, broken_copy(tmp, "missing.json", "sum(rate(tollgate_no_such_metric_total[$__rate_interval]))"))
        if missing.returncode == 0 or "no data" not in missing.stdout:
            print("FAIL: the checker accepted a query with no data:\n" + missing.stdout, file=sys.stderr)
            return 1
        invalid = checker(base, broken_copy(tmp, "invalid.json", "sum(rate(tollgate_llm_calls_total[$__rate_interval])"))
        if invalid.returncode == 0 or "refused" not in invalid.stdout:
            print("FAIL: the checker accepted an invalid query:\n" + invalid.stdout, file=sys.stderr)
            return 1
        print("dashboard checker self-test: ok (passes on data, fails on no data and on invalid PromQL)")
        return 0
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.shutdown()
        log.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
