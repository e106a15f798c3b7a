#!/usr/bin/env bash
# The project's own test command (README command 2; .ci/run runs exactly this).
# Sets up what it needs (system packages, venv, Python packages, offline Docker images), then:
# lint, step-doc freshness, the stub-report gate, unit and integration tests (with the fast mutant
# cases), every acceptance feature under pytest on the local backend with a run-time hollow-step check on
# the trace, the MLServer target and a project of its own, and the features whose docker behaviour differs
# (images, networks, link proxies, kills, memory limits, a PostgreSQL container) under pytest on docker
# and a cross-section under behave. Exits non-zero on the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
step() { printf '\n=== %s === (%s)\n' "$*" "$(date +%H:%M:%S)"; }

step "system packages"
# PostgreSQL (catalog scenarios and tests), debootstrap (offline base image), chromium and wrk, from Debian.
missing=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || missing+=(postgresql-15)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
# headless Chromium: the run-report test looks at the HTML report in a real browser
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# wrk: benchmarks/load_capacity.py and load_vs_wrk.py compare the harness's load with it
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing system packages: ${missing[*]} (install them: apt-get install ${missing[*]})" >&2
    exit 1
  fi
fi

step "Python environment"
if [ ! -x .venv/bin/python ]; then "$PYTHON" -m venv .venv; fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
export PATH="$PWD/.venv/bin:$PATH"
export TESTCONTAINERS_RYUK_DISABLED=true
mkdir -p reports

DOCKER=0
if docker info >/dev/null 2>&1; then DOCKER=1; fi
if [ "${CI:-}" = "true" ] && [ "$DOCKER" = 0 ]; then
  echo "CI runs the docker backend too, and no Docker engine answers" >&2
  exit 1
fi

step "lint"
ruff check .
ruff format --check .

step "step vocabulary doc is up to date"
python tools/step_docs.py --check

step "stub report gate (0 stubs, 0 hollow, 0 undefined, 0 ambiguous, 0 unreadable files)"
python tools/stub_report.py --max-stubs 0 --max-hollow 0 --max-undefined 0 --max-ambiguous 0 --max-errors 0

if [ "$DOCKER" = 1 ]; then
  step "offline Docker images (base, postgres)"
  python tools/build_base_image.py
  python tools/build_postgres_image.py
fi

step "unit and integration tests"
markers=()
[ "$DOCKER" = 1 ] || markers=(-m "not docker")
pytest -q "${markers[@]}" --junitxml=reports/unit.xml

step "acceptance features: pytest, local backend"
rm -f reports/trace-local.jsonl
pytest --gherkin --backend local --step-trace reports/trace-local.jsonl \
  --junitxml=reports/features-local.xml --cucumberjson=reports/features-local.cucumber.json

step "run-time check: no step passed without touching a service"
python tools/stub_report.py --trace reports/trace-local.jsonl --max-hollow 0

step "acceptance features: behave, local backend (a cross-section: the same steps as under pytest)"
behave -D backend=local --junit --junit-directory reports/behave \
  features/protocol_inference.feature features/protocol_repository.feature features/hot_swap.feature \
  features/worker_churn.feature features/security.feature

step "acceptance features: MLServer target, local backend (scenarios it cannot serve are skipped)"
pytest --gherkin --target mlserver --backend local \
  --junitxml=reports/features-mlserver-local.xml --cucumberjson=reports/features-mlserver-local.cucumber.json

step "a project of its own using the harness as a package (examples/own-server), against MLServer"
(cd examples/own-server && pytest --gherkin --target mlserver --backend local --junitxml=../../reports/example.xml)

if [ "$DOCKER" = 1 ]; then
  step "acceptance features: pytest, docker backend (the features whose docker mechanisms differ)"
  pytest --gherkin --backend docker \
    --junitxml=reports/features-docker.xml --cucumberjson=reports/features-docker.cucumber.json \
    features/protocol_inference.feature features/protocol_readiness.feature features/protocol_repository.feature \
    features/hot_swap.feature features/worker_churn.feature features/network_partition.feature \
    features/oom.feature features/worker_restart.feature features/database_corruption.feature

else
  echo "(no Docker engine answers: the docker backend was not run)"
fi

step "nothing left behind"
processes=$(pgrep -f -- '(-m sut\.(gateway|worker|trainer)|mlserver start)( |$)' | wc -l || true)
echo "service processes left: $processes"
[ "$processes" = 0 ]
if [ "$DOCKER" = 1 ]; then
  containers=$(docker ps -aq --filter label=servingbdd.run | wc -l)
  networks=$(docker network ls -q --filter label=servingbdd.run | wc -l)
  echo "harness containers left: $containers, networks left: $networks"
  [ "$containers" = 0 ] && [ "$networks" = 0 ]
fi
step "done"
