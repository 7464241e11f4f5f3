#!/usr/bin/env python3
"""Side-by-side throughput benchmark over a traffic matrix: sink alone, Rotel, tollgate.

Run through bench/run.sh (which builds and installs what this needs). Standard library only.

Each collector runs pinned to one core (COLLECTOR_CORE, default 0); the load generator and the
blackhole sink share another (HARNESS_CORE, default 1). A *traffic* is an encoding (grpc, http =
OTLP/HTTP protobuf, json = OTLP/HTTP JSON), a request size in spans and a number of concurrent
connections. For every traffic and scenario: REPS capacity runs (closed loop, WARMUP then DURATION
seconds), each with a fresh collector process, then one open-loop run at LATENCY_FRACTION of the
median capacity for latency. Repetitions are the outer loop, traffics and scenarios inside it, so
passing noise falls on every cell alike.

Environment (all optional):
  REPS=3 DURATION=5 WARMUP=1 LATENCY_FRACTION=0.5
  TRAFFIC=grpc:500:16,grpc:20:256,...   encoding:spans:connections, comma-separated
                          (default: the matrix {grpc,http,json} × {500,20} spans × {16,256})
  QUICK=1                 one repetition of 3 s after 1 s warm-up
  SCENARIOS=sink,rotel,tollgate-full   (also: tollgate-passthrough, and tollgate-disk-written,
                          tollgate-disk-synced: full with a disk queue)
  LATENCY=0               skip the latency runs
  LOADGEN_GZIP=1          gzip the load generator's requests too (default: plain in, gzip out)
  ROTEL=/path/rotel-agent TOLLGATE=/path/tollgate LOADGEN=/path/tollgate-loadgen
  OUT=bench-out           where results-*.md/json go
"""

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REL = ROOT / "target" / "release"


def env_int(name, default):
    return int(os.environ.get(name, default))


def env_float(name, default):
    return float(os.environ.get(name, default))


QUICK = os.environ.get("QUICK", "") not in ("", "0")
REPS = env_int("REPS", 1 if QUICK else 3)
DURATION = env_int("DURATION", 3 if QUICK else 5)
WARMUP = env_int("WARMUP", 1)
LATENCY = os.environ.get("LATENCY", "1") not in ("", "0")
DEFAULT_TRAFFIC = ",".join(f"{e}:{n}:{c}" for e in ("grpc", "http", "json")
                           for n in (500, 20) for c in (16, 256))
TRAFFIC = [tuple(t.split(":")) for t in os.environ.get("TRAFFIC", DEFAULT_TRAFFIC).split(",")]
TRAFFIC = [(e, int(n), int(c)) for e, n, c in TRAFFIC]
ENCODINGS = {"grpc": ("grpc", "OTLP/gRPC"), "http": ("http", "OTLP/HTTP protobuf"),
             "json": ("http-json", "OTLP/HTTP JSON")}
FRACTION = env_float("LATENCY_FRACTION", 0.5)
COLLECTOR_CORE = os.environ.get("COLLECTOR_CORE", "0")
HARNESS_CORE = os.environ.get("HARNESS_CORE", "1")
LOADGEN_GZIP = os.environ.get("LOADGEN_GZIP", "") not in ("", "0")
SCENARIOS = os.environ.get(
    "SCENARIOS", "sink,rotel,tollgate-full"
).split(",")
LOADGEN = os.environ.get("LOADGEN", str(REL / "tollgate-loadgen"))
TOLLGATE = os.environ.get("TOLLGATE", str(REL / "tollgate"))
OUT = Path(os.environ.get("OUT", ROOT / "bench-out"))

LABELS = {
    "sink": "harness ceiling (loadgen → sink)",
    "rotel": "Rotel passthrough",
    "tollgate-passthrough": "tollgate passthrough",
    "tollgate-full": "tollgate, pricing + tasks + alerts",
    "tollgate-disk-written": "tollgate full, disk queue (written)",
    "tollgate-disk-synced": "tollgate full, disk queue (synced)",
}


def log(msg):
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_rotel():
    if os.environ.get("ROTEL"):
        return os.environ["ROTEL"]
    for p in sorted((ROOT / "bench" / ".venv").rglob("rotel-agent")):
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    return None


def wait_port(port, proc, timeout=20.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def sink_stats(url):
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.loads(r.read())


class Sink:
    def __init__(self):
        cmd = ["taskset", "-c", HARNESS_CORE, LOADGEN, "--threads", "1", "sink",
               "--grpc", "127.0.0.1:0", "--http", "127.0.0.1:0", "--stats", "127.0.0.1:0"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                     text=True)
        addrs = json.loads(self.proc.stdout.readline())
        self.grpc = addrs["grpc"]
        self.http = addrs["http"]
        self.grpc_port = int(self.grpc.rsplit(":", 1)[1])
        self.stats_url = f"http://{addrs['stats']}/stats"

    def spans(self):
        return sink_stats(self.stats_url)["spans"]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class Collector:
    """One collector process, pinned, receiving OTLP on `port` (gRPC or HTTP)."""

    def __init__(self, name, cmd, port, workdir):
        self.name, self.port = name, port
        self.log_path = workdir / f"{name}-{port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(["taskset", "-c", COLLECTOR_CORE] + cmd,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.ok = wait_port(port, self.proc)

    def log_tail(self, n=15):
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return ""

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def collector_cmd(name, grpc_port, http_port, sink, workdir):
    """The command for a scenario, or (None, reason) when it cannot run."""
    port = grpc_port
    if name == "rotel":
        rotel = find_rotel()
        if not rotel:
            return None, "rotel-agent not found (run bench/run.sh, which installs it)"
        return [rotel, "start",
                "--otlp-grpc-endpoint", f"127.0.0.1:{grpc_port}",
                "--otlp-http-endpoint", f"127.0.0.1:{http_port}",
                "--exporter", "otlp",
                "--otlp-exporter-endpoint", f"http://127.0.0.1:{sink.grpc_port}",
                "--otlp-exporter-compression", "gzip",
                "--pid-file", str(workdir / f"rotel-{port}.pid"),
                "--log-file", str(workdir / f"rotel-{port}.file.log")], None
    if name.startswith("tollgate-"):
        if not Path(TOLLGATE).exists():
            return None, f"{TOLLGATE} not built"
        template = (ROOT / "bench" / f"{name}.toml").read_text()
        config = (template.replace("{{GRPC_PORT}}", str(grpc_port))
                  .replace("{{HTTP_PORT}}", str(http_port))
                  .replace("{{ADMIN_PORT}}", str(free_port()))
                  .replace("{{SINK_PORT}}", str(sink.grpc_port))
                  .replace("{{QUEUE_DIR}}", str(workdir / f"{name}-{port}-queue")))
        path = workdir / f"{name}-{port}.toml"
        path.write_text(config)
        return [TOLLGATE, "run", "--config", str(path)], None
    return None, f"unknown scenario {name}"


def loadgen(traffic, endpoint, sink, pid=None, rate=None):
    encoding, spans, streams = traffic
    cmd = ["taskset", "-c", HARNESS_CORE, LOADGEN, "--threads", "1", "send", "--json",
           "--protocol", ENCODINGS[encoding][0],
           "--endpoint", f"http://{endpoint}", "--streams", str(streams),
           "--spans", str(spans), "--duration", f"{DURATION}s", "--warmup", f"{WARMUP}s",
           "--sink-stats", sink.stats_url]
    if pid:
        cmd += ["--watch-pid", str(pid)]
    if rate:
        cmd += ["--rate", f"{rate:.0f}"]
    if LOADGEN_GZIP:
        cmd.append("--gzip")
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=WARMUP + DURATION + 120)
    if out.returncode != 0:
        raise RuntimeError(f"loadgen failed: {out.stderr[-2000:]}")
    return json.loads(out.stdout)


def drain(sink, before, expected, timeout=30.0):
    """Waits until the sink has `expected` spans more than `before`, or stops growing."""
    deadline = time.time() + timeout
    last, still_since = None, time.time()
    while time.time() < deadline:
        got = sink.spans() - before
        if got >= expected:
            return got
        if got != last:
            last, still_since = got, time.time()
        elif time.time() - still_since > 3.0:
            return got
        time.sleep(0.2)
    return sink.spans() - before


def one_run(traffic, name, sink, workdir, rate=None):
    """One run of a scenario. Returns a result dict, or raises SkipScenario."""
    collector = None
    grpc = traffic[0] == "grpc"
    endpoint, pid = (sink.grpc if grpc else sink.http), None
    if name != "sink":
        grpc_port, http_port = free_port(), free_port()
        port = grpc_port if grpc else http_port
        cmd, reason = collector_cmd(name, grpc_port, http_port, sink, workdir)
        if cmd is None:
            raise SkipScenario(reason)
        collector = Collector(name, cmd, port, workdir)
        if not collector.ok:
            code = collector.proc.poll()
            tail = collector.log_tail()
            collector.stop()
            why = ("did not listen within 20 s" if code is None
                   else f"exited with code {code} before listening")
            raise SkipScenario(f"{name} ({' '.join(cmd[:3])} …) {why} on port {port}. "
                               f"Log tail:\n{tail or '(empty)'}")
        endpoint, pid = f"127.0.0.1:{port}", collector.proc.pid
    try:
        before = sink.spans()
        try:
            report = loadgen(traffic, endpoint, sink, pid=pid, rate=rate)
        except (RuntimeError, subprocess.TimeoutExpired, json.JSONDecodeError) as e:
            tail = collector.log_tail() if collector is not None else ""
            raise SkipScenario(f"{name}: the load generator failed: {e}\n{tail}")
        accepted_total = report["total"]["accepted_spans"]
        delivered_total = drain(sink, before, accepted_total)
        if collector is not None and collector.proc.poll() is not None:
            raise SkipScenario(f"{name} exited during the run:\n{collector.log_tail()}")
    finally:
        if collector is not None:
            collector.stop()
    proc = report.get("process") or {}
    return {
        "accepted": report["accepted_spans_per_sec"],
        "delivered": (report.get("sink") or {}).get("spans_per_sec", 0.0),
        "accepted_total": accepted_total,
        "delivered_total": delivered_total,
        "lost": accepted_total - delivered_total,
        "refused": report["total"]["refused_spans"],
        "errors": report["total"]["errors"],
        "cpu_percent": proc.get("cpu_percent"),
        "cpu_us_per_span": proc.get("cpu_us_per_span"),
        "peak_rss_mib": proc.get("peak_rss_mib"),
        "p50_ms": report["latency"]["p50_ms"],
        "p99_ms": report["latency"]["p99_ms"],
        "request_bytes": report["request_bytes"],
        "first_error": report.get("first_error"),
    }


class SkipScenario(Exception):
    pass


def fmt_rate(v):
    if v is None:
        return "–"
    return f"{v / 1e6:.2f} M" if v >= 1e6 else f"{v / 1e3:.1f} k"


def fmt(v, spec="{:.0f}"):
    return "–" if v is None else spec.format(v)


def summarise(runs, latency):
    acc = [r["accepted"] for r in runs]
    dlv = [r["delivered"] for r in runs]
    med = lambda xs: statistics.median(xs) if xs and None not in xs else None
    return {
        "accepted_median": med(acc), "accepted_min": min(acc), "accepted_max": max(acc),
        "delivered_median": med(dlv), "delivered_min": min(dlv), "delivered_max": max(dlv),
        "lost_total": sum(r["lost"] for r in runs),
        "refused_total": sum(r["refused"] for r in runs),
        "errors_total": sum(r["errors"] for r in runs),
        "cpu_percent": med([r["cpu_percent"] for r in runs]),
        "cpu_us_per_span": med([r["cpu_us_per_span"] for r in runs]),
        "peak_rss_mib": max((r["peak_rss_mib"] or 0) for r in runs) or None,
        "latency": latency,
    }


def traffic_label(traffic):
    encoding, spans, streams = traffic
    return f"{ENCODINGS[encoding][1]}, {spans} spans, {streams} conns"


def primary_tollgate():
    for name in ("tollgate-full", "tollgate-passthrough"):
        if name in SCENARIOS:
            return name
    return None


def per_rep_ratios(raw_cell, name):
    """tollgate / Rotel delivered spans/s within each repetition (same moment, same noise)."""
    a, b = raw_cell.get(name, {}).get("runs", []), raw_cell.get("rotel", {}).get("runs", [])
    return [x["delivered"] / y["delivered"] for x, y in zip(a, b) if y["delivered"]]


def matrix_table(summary, raw, machine):
    """One row per traffic: tollgate (the primary scenario) against Rotel in the same run."""
    tg = primary_tollgate()
    lines = [
        f"{machine}; collector on core {COLLECTOR_CORE}, load generator + sink on core "
        f"{HARNESS_CORE}; OTLP in → OTLP/gRPC (gzip) out; median of {REPS} × {DURATION} s after "
        f"{WARMUP} s warm-up per cell, interleaved" + ("; QUICK mode" if QUICK else "")
        + f"; tollgate = `{tg}`",
        "",
        "| traffic | harness ceiling | Rotel spans/s (median, min–max) | tollgate spans/s "
        "(median, min–max) | tollgate / Rotel (per-rep range) | peak RSS Rotel / tollgate "
        f"| refused spans at saturation Rotel / tollgate | lost | p99 at {FRACTION:.0%} load Rotel / tollgate "
        "| CPU µs/span Rotel / tollgate (ratio) | goals: 3x · RSS ≤ ½ · no refusal below capacity "
        "· p99 ≤ Rotel |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for traffic in TRAFFIC:
        cell = summary.get(traffic, {})
        sink, rotel, ours = cell.get("sink"), cell.get("rotel"), cell.get(tg) if tg else None
        rate = lambda s: ("–" if not s else f"{fmt_rate(s['delivered_median'])} "
                          f"({fmt_rate(s['delivered_min'])}–{fmt_rate(s['delivered_max'])})")
        ratio = goals = "–"
        if rotel and ours and rotel["delivered_median"]:
            r = ours["delivered_median"] / rotel["delivered_median"]
            reps = per_rep_ratios(raw.get(traffic, {}), tg)
            ratio = f"**{r:.2f}x**" + (f" ({min(reps):.2f}–{max(reps):.2f})" if reps else "")
            rss_ok = (ours["peak_rss_mib"] or 0) <= (rotel["peak_rss_mib"] or 0) / 2
            lat_ok = None
            if ours["latency"] and rotel["latency"]:
                lat_ok = ours["latency"]["p99_ms"] <= rotel["latency"]["p99_ms"]
            mark = lambda ok: "–" if ok is None else ("✓" if ok else "✗")
            below = None if not ours["latency"] else ours["latency"]["refused"] == 0
            goals = " · ".join([mark(r >= 3.0), mark(rss_ok), mark(below), mark(lat_ok)])
        rss = lambda s: "–" if not s or s["peak_rss_mib"] is None else f"{s['peak_rss_mib']:.0f}"
        p99 = lambda s: "–" if not s or not s["latency"] else f"{s['latency']['p99_ms']:.1f}"
        refused = lambda s: "–" if not s else str(s["refused_total"])
        cpu = lambda s: "–" if not s else fmt(s["cpu_us_per_span"], "{:.2f}")
        cpu_ratio = lambda a, b: ("" if not a or not b or not a["cpu_us_per_span"]
                                  or not b["cpu_us_per_span"]
                                  else f" ({a['cpu_us_per_span'] / b['cpu_us_per_span']:.1f}x)")
        lost = sum(s["lost_total"] for s in (rotel, ours) if s)
        lines.append(
            f"| {traffic_label(traffic)} | {fmt_rate(sink['delivered_median']) if sink else '–'} "
            f"| {rate(rotel)} | {rate(ours)} | {ratio} | {rss(rotel)} / {rss(ours)} MiB "
            f"| {refused(rotel)} / {refused(ours)} | {lost if lost == 0 else f'**{lost}**'} "
            f"| {p99(rotel)} / {p99(ours)} ms "
            f"| {cpu(rotel)} / {cpu(ours)}{cpu_ratio(rotel, ours)} | {goals} |")
    return "\n".join(lines)


def detail_table(summary):
    lines = [
        "| traffic | setup | delivered spans/s (median, min–max) | accepted spans/s (median) "
        "| lost | refused | collector CPU % | CPU µs/span | peak RSS | p50 / p99 at "
        f"{FRACTION:.0%} load |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for traffic in TRAFFIC:
        for name in SCENARIOS:
            s = summary.get(traffic, {}).get(name)
            if not s:
                continue
            lat = s["latency"]
            lat_s = ("–" if not lat else
                     f"{lat['p50_ms']:.1f} / {lat['p99_ms']:.1f} ms @ {fmt_rate(lat['rate'])}")
            rss = "–" if s["peak_rss_mib"] is None else f"{s['peak_rss_mib']:.0f} MiB"
            lines.append(
                f"| {traffic_label(traffic)} | {LABELS.get(name, name)} "
                f"| {fmt_rate(s['delivered_median'])} ({fmt_rate(s['delivered_min'])}–"
                f"{fmt_rate(s['delivered_max'])}) | {fmt_rate(s['accepted_median'])} "
                f"| {s['lost_total']} | {s['refused_total']} | {fmt(s['cpu_percent'])} "
                f"| {fmt(s['cpu_us_per_span'], '{:.2f}')} | {rss} | {lat_s} |")
    return "\n".join(lines)


def table(summary, raw, skipped, machine):
    lines = [matrix_table(summary, raw, machine), "", "Every cell:", "", detail_table(summary)]
    if any(s["lost_total"] for cell in summary.values() for s in cell.values()):
        lines += ["", "**Loss**: accepted by the collector but not delivered to the sink after "
                  "draining (accepted − delivered, summed over the capacity runs)."]
    for name, reason in skipped.items():
        lines += ["", f"`{name}` skipped: ```{reason}```"]
    return "\n".join(lines)


def uptime():
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except (OSError, ValueError):
        return None


def machine_line():
    model = "unknown CPU"
    try:
        for line in subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines():
            if line.startswith("Model name:"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    mem = ""
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    except OSError:
        pass
    return f"{os.cpu_count()} × {model}{mem}"


def main():
    if not Path(LOADGEN).exists():
        sys.exit(f"{LOADGEN} not built: run bench/run.sh")
    OUT.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="tollgate-bench-"))
    machine = machine_line()
    cells = len(TRAFFIC) * len(SCENARIOS)
    log(f"{machine}; {len(TRAFFIC)} traffics × scenarios {SCENARIOS}; {REPS} × {DURATION}s "
        f"(+{WARMUP}s warm-up) per cell, ~{cells * (REPS + LATENCY) * (DURATION + WARMUP + 2) / 60:.0f} min")
    load_start = loadavg()
    uptime_start = uptime()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    sink = Sink()
    summary, skipped, raw = {}, {}, {}
    # Repetitions are the outer loop, so that noise from elsewhere on the machine falls on every
    # cell alike instead of on whichever ran at the wrong moment.
    runs = {t: {name: [] for name in SCENARIOS} for t in TRAFFIC}
    try:
        for rep in range(REPS):
            for traffic in TRAFFIC:
                for name in SCENARIOS:
                    if name in skipped:
                        continue
                    try:
                        r = one_run(traffic, name, sink, workdir)
                    except SkipScenario as e:
                        log(f"SKIPPING {name}: {e}")
                        skipped[name] = str(e)
                        continue
                    log(f"{traffic_label(traffic)} · {name} #{rep + 1}: delivered "
                        f"{fmt_rate(r['delivered'])}/s, accepted {fmt_rate(r['accepted'])}/s, "
                        f"lost {r['lost']}, refused {r['refused']}, CPU {fmt(r['cpu_percent'])} %, "
                        f"RSS {fmt(r['peak_rss_mib'])} MiB"
                        + (f", first error: {r['first_error']}" if r["first_error"] else ""))
                    runs[traffic][name].append(r)
        for traffic in TRAFFIC:
            for name in SCENARIOS:
                cell = runs[traffic][name]
                if name in skipped or not cell:
                    continue
                capacity = statistics.median(
                    [min(r["accepted"], r["delivered"] or r["accepted"]) for r in cell])
                latency, lr = None, None
                if LATENCY and name != "sink" and capacity > 0:
                    rate = capacity * FRACTION
                    try:
                        lr = one_run(traffic, name, sink, workdir, rate=rate)
                        latency = {"rate": rate, "p50_ms": lr["p50_ms"], "p99_ms": lr["p99_ms"],
                                   "cpu_percent": lr["cpu_percent"],
                                   "refused": lr["refused"]}
                        log(f"{traffic_label(traffic)} · {name} at {fmt_rate(rate)}/s: p50 "
                            f"{lr['p50_ms']:.2f} ms, p99 {lr['p99_ms']:.2f} ms")
                    except SkipScenario as e:
                        log(f"latency run of {name} failed: {e}")
                summary.setdefault(traffic, {})[name] = summarise(cell, latency)
                raw.setdefault(traffic, {})[name] = {"runs": cell, "latency_run": lr}
    finally:
        sink.stop()
    text = table(summary, raw, skipped, machine)
    load_end = loadavg()
    ended = time.strftime("%H:%M UTC", time.gmtime())
    text = (f"Run {started} – {ended}; `uptime` at the start: {uptime_start}; at the end: "
            f"{uptime()}\n\n" + text)
    noisy = sorted({n for cell in summary.values() for n, s in cell.items()
                    if n != "sink" and s["cpu_percent"] is not None and s["cpu_percent"] < 90})
    if noisy or (load_start or 0) > 2.5 or (load_end or 0) > 2.5:
        text += (f"\n\n**Noise warning**: load average {load_start} at start, {load_end} at end "
                 f"(this benchmark alone keeps about 2 busy)"
                 + (f"; collectors below 90 % CPU at saturation in some cell: {', '.join(noisy)}"
                    if noisy else "")
                 + ". Other work shared the cores; ratios within a run stay comparable.")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    (OUT / f"results-{stamp}.md").write_text(text + "\n")
    key = lambda t: f"{t[0]}:{t[1]}:{t[2]}"
    (OUT / f"results-{stamp}.json").write_text(json.dumps(
        {"machine": machine, "reps": REPS, "duration": DURATION, "warmup": WARMUP,
         "traffic": [key(t) for t in TRAFFIC], "scenarios": SCENARIOS,
         "summary": {key(t): v for t, v in summary.items()}, "skipped": skipped,
         "raw": {key(t): v for t, v in raw.items()}}, indent=2))
    print(text)
    log(f"written to {OUT}/results-{stamp}.md and .json")


def render(path):
    """Prints the tables of a results-*.json again (with this version of the table code)."""
    global TRAFFIC, SCENARIOS, REPS, DURATION, WARMUP
    data = json.loads(Path(path).read_text())
    REPS, DURATION, WARMUP = data["reps"], data["duration"], data["warmup"]
    parse = lambda k: (k.split(":")[0], int(k.split(":")[1]), int(k.split(":")[2]))
    TRAFFIC = [parse(k) for k in data["traffic"]]
    SCENARIOS = data["scenarios"]
    summary = {parse(k): v for k, v in data["summary"].items()}
    raw = {parse(k): v for k, v in data["raw"].items()}
    print(table(summary, raw, data["skipped"], data["machine"]))


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--render":
        render(sys.argv[2])
    else:
        main()
