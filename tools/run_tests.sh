#!/usr/bin/env bash
# The project's own test command (README command 2; .ci/run runs exactly this).
# Sets up what it needs (system packages, venv, Python packages, offline Docker images), then:
# lint, step-doc freshness, the stub-report gate, unit and integration tests (with the fast mutant
# cases), every acceptance feature under pytest on the local backend with a run-time hollow-step check on
# the trace, a cross-section under behave, the MLServer target and a project of its own, and the features
# whose docker behaviour differs (images, networks, link proxies, kills, memory limits, a PostgreSQL
# container) under pytest on docker, and the load profiles on docker with Locust worker containers.
# Exits non-zero on the first failed stage.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
# The machine's CPU seconds spent so far (all cores: user, nice, system, irq, softirq), printed with each
# stage header: benchmarks/ci_stages.py tells from it whether a stage waited or had no core to spare.
cpu_busy() { awk -v hz="$(getconf CLK_TCK)" '/^cpu /{printf "%.0f", ($2+$3+$4+$7+$8)/hz; exit}' /proc/stat; }
step() { printf '\n=== %s === (%s) [cpu %s s, %s cores]\n' "$*" "$(date +%H:%M:%S)" "$(cpu_busy)" "$(nproc)"; }

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
# Bytecode is cached (__pycache__, ignored by git): with PYTHONDONTWRITEBYTECODE set, as in this machine's
# sessions, every pytest process and every local service start compiles the project's sources again,
# and pytest rewrites every test module's asserts again (~1.5 CPU-s per pytest process).
unset PYTHONDONTWRITEBYTECODE
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

# Two lanes at a time (most of the time goes into waiting on services, not CPU); what is sensitive to
# timing (latency baselines and SLOs, the latency-after-churn scenario) runs alone at the end.
# A lane's output goes to reports/lanes/NAME.log and is printed when the lane ends.
mkdir -p reports/lanes
lanes() {
  local pids=() names=() failed=0 i started
  started=$(date +%s)
  for name in "$@"; do
    ( set -e; "$name" ) >"reports/lanes/$name.log" 2>&1 &
    pids+=("$!")
    names+=("$name")
  done
  for i in "${!pids[@]}"; do
    local rc=0
    wait "${pids[$i]}" || rc=$?
    printf -- '--- lane %s: %s after %ss; its output:\n' "${names[$i]}" \
      "$([ "$rc" = 0 ] && echo passed || echo "FAILED (exit $rc)")" "$(($(date +%s) - started))"
    cat "reports/lanes/${names[$i]}.log"
    [ "$rc" = 0 ] || failed=1
  done
  return "$failed"
}

markers=()
[ "$DOCKER" = 1 ] || markers=(-m "not docker")
# unit lane a: the mutants' scenario runs and most of the services' own tests; lane b: the harness (with
# docker) and the slowest services' tests (SUT_B), so that both lanes take about as long
# (benchmarks/ci_stages.py shows the lanes' times and the slowest tests).
SUT_B=(tests/sut/test_gateway_versioning.py tests/sut/test_gateway_swap.py tests/sut/test_gateway_routing.py)
unit_a() {
  local ignore=()
  for path in "${SUT_B[@]}"; do ignore+=("--ignore=$path"); done
  pytest -q "${markers[@]}" --junitxml=reports/unit-a.xml tests/test_mutants.py tests/sut "${ignore[@]}"
}
unit_b() {  # every test but the mutants' and lane a's (pytest's --ignore also drops paths given explicitly)
  local ignore=(--ignore=tests/test_mutants.py --ignore=tests/test_load_mutants.py)
  for path in tests/sut/test_*.py; do
    case " ${SUT_B[*]} " in *" $path "*) ;; *) ignore+=("--ignore=$path") ;; esac
  done
  pytest -q "${markers[@]}" --junitxml=reports/unit-b.xml tests "${ignore[@]}"
}
step "unit and integration tests (two lanes)"
lanes unit_a unit_b

# The acceptance features on the local backend: lane a is this list, lane b every other feature but
# the timing-sensitive ones (so that a new feature runs in lane b without being listed).
TIMING=(composition performance regression load_profiles)
LANE_A=(security provider_failover protocol_inference protocol_readiness protocol_repository
  database_corruption oom memory_truth access lineage multi_version worker_restart readiness_truth)
LANE_B=()
for path in features/*.feature; do
  name=$(basename "$path" .feature)
  case " ${TIMING[*]} ${LANE_A[*]} " in *" $name "*) ;; *) LANE_B+=("$name") ;; esac
done
feature_files() { for name in "$@"; do printf 'features/%s.feature\n' "$name"; done; }
features_local() {  # LANE PART...: pytest on the local backend with its own reports and step trace
  local lane=$1
  shift
  rm -f "reports/trace-local-$lane.jsonl"
  # shellcheck disable=SC2046
  pytest --gherkin --backend local --step-trace "reports/trace-local-$lane.jsonl" \
    --junitxml="reports/features-local-$lane.xml" --cucumberjson="reports/features-local-$lane.cucumber.json" \
    $(feature_files "$@")
}
features_a() { features_local a "${LANE_A[@]}"; }
features_b() { features_local b "${LANE_B[@]}"; }
step "acceptance features: pytest, local backend (two lanes)"
lanes features_a features_b

behave_local() {  # a cross-section: the same steps as under pytest
  behave -D backend=local --junit --junit-directory reports/behave \
    features/protocol_inference.feature features/protocol_repository.feature features/hot_swap.feature \
    features/worker_churn.feature features/security.feature
}
mlserver_local() {  # scenarios MLServer cannot serve are skipped; then a project of its own against it
  pytest --gherkin --target mlserver --backend local \
    --junitxml=reports/features-mlserver-local.xml --cucumberjson=reports/features-mlserver-local.cucumber.json
  (cd examples/own-server && pytest --gherkin --target mlserver --backend local --junitxml=../../reports/example.xml)
}
behave_and_mlserver() { behave_local; mlserver_local; }
features_docker() {  # the features whose docker mechanisms differ: images, networks, link proxies, kills,
  # memory limits, a PostgreSQL container
  pytest --gherkin --backend docker \
    --junitxml=reports/features-docker.xml --cucumberjson=reports/features-docker.cucumber.json \
    features/protocol_inference.feature features/protocol_readiness.feature features/protocol_repository.feature \
    features/hot_swap.feature features/worker_churn.feature features/network_partition.feature \
    features/oom.feature features/worker_restart.feature features/database_corruption.feature
}
if [ "$DOCKER" = 1 ]; then
  step "behave (local), the MLServer target (local) and a project of its own | pytest, docker backend"
  lanes behave_and_mlserver features_docker
else
  step "behave (local), the MLServer target (local) and a project of its own"
  lanes behave_and_mlserver
  echo "(no Docker engine answers: the docker backend was not run)"
fi

step "timing-sensitive, alone: latency features on the local backend, the added-latency mutant"
features_local timing "${TIMING[@]}"
pytest -q --junitxml=reports/unit-load-mutants.xml tests/test_load_mutants.py

if [ "$DOCKER" = 1 ]; then
  step "load from several places, alone: the load profiles on docker, 2 Locust worker containers"
  pytest --gherkin --backend docker --load-workers 2 \
    --junitxml=reports/features-docker-load.xml --cucumberjson=reports/features-docker-load.cucumber.json \
    features/load_profiles.feature
fi

step "run-time check: no step passed without touching a service"
cat reports/trace-local-a.jsonl reports/trace-local-b.jsonl reports/trace-local-timing.jsonl \
  >reports/trace-local.jsonl
python tools/stub_report.py --trace reports/trace-local.jsonl --max-hollow 0

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
