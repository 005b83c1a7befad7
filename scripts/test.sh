#!/usr/bin/env bash
# The one test command: installs what the tests need, then runs every check and test.
# CI (.ci/run) runs exactly this script on a clean clone with ../shared beside it.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }

# --- What the tests need -------------------------------------------------------------------
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }
for component in rustfmt clippy; do
  if ! cargo "${component/rustfmt/fmt}" --version >/dev/null 2>&1; then
    rustup component add "$component"
  fi
done

# The official OCPP 1.6 schemas are read from ../shared/ocpp16 (or $OCPP16_DIR).
export OCPP16_DIR="${OCPP16_DIR:-$(cd .. && pwd)/shared/ocpp16}"
if [ ! -d "$OCPP16_DIR/schemas" ] || [ ! -d "$OCPP16_DIR/schemas-security" ]; then
  echo "the OCPP 1.6 schemas are not at $OCPP16_DIR (set OCPP16_DIR)" >&2
  exit 1
fi

# PyPI's `ocpp` (2.x), the central system of the interop test, pyftpdlib, the FTP server of
# the FTP test, and schemathesis (4.x), which tests the API against its OpenAPI document, in a
# virtualenv under target/
mkdir -p target
venv=target/interop-venv
if [ ! -x "$venv/bin/python" ]; then
  if ! command -v python3 >/dev/null || ! python3 -m venv "$venv" >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      apt-get update -q && apt-get install -y -q python3 python3-venv python3-pip
      python3 -m venv "$venv"
    else
      echo "python3 with the venv module is required for the interop test (apt-get install python3-venv)" >&2
      exit 1
    fi
  fi
fi
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check 'ocpp>=2.1,<3' 'websockets>=13' 'pyftpdlib>=1.5' 'schemathesis>=4,<5'
export OCPILE_INTEROP_PYTHON="$PWD/$venv/bin/python"

# An MQTT broker for the DBGEnableInsight test: $OCPILE_MQTT (host:port, default the local
# Mosquitto). Where none answers, root installs and starts Mosquitto; anyone else is told.
export OCPILE_MQTT="${OCPILE_MQTT:-127.0.0.1:1883}"
mqtt_up() { (exec 3<>"/dev/tcp/${OCPILE_MQTT%:*}/${OCPILE_MQTT##*:}") 2>/dev/null; }
if ! mqtt_up; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null && [ "$OCPILE_MQTT" = 127.0.0.1:1883 ]; then
    command -v mosquitto >/dev/null || { apt-get update -q && apt-get install -y -q mosquitto; }
    mosquitto -d -p 1883
    for _ in $(seq 50); do mqtt_up && break; sleep 0.1; done
  fi
  mqtt_up || { echo "no MQTT broker answers at $OCPILE_MQTT (start Mosquitto, or set OCPILE_MQTT=host:port)" >&2; exit 1; }
fi

# PostgreSQL for the central system's store tests: $OCPILE_TEST_PG (default the local server,
# database `test`, trust authentication). Each test works in a schema of its own. Where none
# answers, root starts the local cluster; anyone else is told.
export OCPILE_TEST_PG="${OCPILE_TEST_PG:-postgres://postgres@127.0.0.1:5432/test}"
pg_host_port="${OCPILE_TEST_PG#*@}"; pg_host_port="${pg_host_port%%/*}"
pg_up() { (exec 3<>"/dev/tcp/${pg_host_port%:*}/${pg_host_port##*:}") 2>/dev/null; }
if ! pg_up; then
  if [ "$(id -u)" = 0 ] && command -v pg_ctlcluster >/dev/null && [ -d /etc/postgresql ]; then
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
    for _ in $(seq 100); do pg_up && break; sleep 0.1; done
  fi
  pg_up || { echo "no PostgreSQL answers at $pg_host_port for the store tests (start one, or set OCPILE_TEST_PG=postgres://USER@HOST:PORT/DB)" >&2; exit 1; }
fi
# The schemas of earlier runs' tests (each test works in one named ocpile_TEST_PID_NANOS) are
# dropped once the process that made them is gone.
if command -v psql >/dev/null; then
  for schema in $(psql "$OCPILE_TEST_PG" -qtA -c "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'ocpile\_%'" 2>/dev/null); do
    pid="${schema%_*}"; pid="${pid##*_}"
    if [[ "$pid" =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
      psql "$OCPILE_TEST_PG" -qtA -c "DROP SCHEMA \"$schema\" CASCADE" >/dev/null 2>&1 || true
    fi
  done
fi

# NATS (JetStream on) for the central system's cluster tests: $OCPILE_TEST_NATS (default the
# local server). Each test's nodes use subjects of their own cluster. Where none answers on this
# host, root starts nats-server if it is installed; anyone else is told.
export OCPILE_TEST_NATS="${OCPILE_TEST_NATS:-nats://127.0.0.1:4222}"
nats_host_port="${OCPILE_TEST_NATS#*://}"; nats_host_port="${nats_host_port#*@}"; nats_host_port="${nats_host_port%%/*}"
nats_up() { (exec 3<>"/dev/tcp/${nats_host_port%:*}/${nats_host_port##*:}") 2>/dev/null; }
if ! nats_up; then
  if [ "$(id -u)" = 0 ] && command -v nats-server >/dev/null && [[ "${nats_host_port%:*}" =~ ^(127\.0\.0\.1|localhost)$ ]]; then
    nats-server -js -a "${nats_host_port%:*}" -p "${nats_host_port##*:}" -sd target/nats >target/nats-server.log 2>&1 &
    for _ in $(seq 100); do nats_up && break; sleep 0.1; done
  fi
  nats_up || { echo "no NATS server answers at $nats_host_port for the cluster tests (start nats-server -js, or set OCPILE_TEST_NATS=nats://HOST:PORT)" >&2; exit 1; }
fi

# Chromium and ChromeDriver for the dashboard's browser test (Debian's packages). Where they
# are missing, root installs them; anyone else is told.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q chromium chromium-driver || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }
  fi
  command -v chromium >/dev/null && command -v chromedriver >/dev/null || {
    echo "the browser test needs chromium and chromedriver (apt-get install chromium chromium-driver)" >&2
    exit 1
  }
fi
export OCPILE_CHROMIUM="${OCPILE_CHROMIUM:-$(command -v chromium)}"

# HAProxy for the test of deploy/haproxy.cfg in front of two centrals (Debian's package, in
# /usr/sbin). Where it is missing, root installs it; anyone else is told.
haproxy_bin="${OCPILE_HAPROXY:-$(PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v haproxy || true)}"
if [ -z "$haproxy_bin" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get install -y -q haproxy || { apt-get update -q && apt-get install -y -q haproxy; }
    haproxy_bin="$(PATH="$PATH:/usr/sbin" command -v haproxy || true)"
  fi
  [ -n "$haproxy_bin" ] || {
    echo "the HAProxy test needs haproxy (apt-get install haproxy, or set OCPILE_HAPROXY)" >&2
    exit 1
  }
fi
export OCPILE_HAPROXY="$haproxy_bin"

# --- Checks ----------------------------------------------------------------------------------
say "rustfmt"
cargo fmt --all -- --check

say "clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

# --- Tests -----------------------------------------------------------------------------------
say "tests"
# --include-ignored: the interop tests and the API's schemathesis test, which need the PyPI
# packages installed above, the browser test, which needs chromium, and the HAProxy test.
cargo test --workspace --locked -- --include-ignored 2>&1 | tee target/test-output.txt

say "the central as a cluster of one node"
# The central's process tests and its SIGKILL test again, each central a node of a cluster of
# its own (PostgreSQL and NATS instead of SQLite alone); their schemas are dropped once their
# process is gone.
OCPILE_TEST_CLUSTER=1 cargo test -p ocpile --locked --test central_process --test central_kill 2>&1 | tee -a target/test-output.txt
if command -v psql >/dev/null; then
  for schema in $(psql "$OCPILE_TEST_PG" -qtA -c "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'ocpile\_one\_%'" 2>/dev/null); do
    pid="${schema%_*}"; pid="${pid##*_}"
    if [[ "$pid" =~ ^[0-9]+$ ]] && ! kill -0 "$pid" 2>/dev/null; then
      psql "$OCPILE_TEST_PG" -qtA -c "DROP SCHEMA \"$schema\" CASCADE" >/dev/null 2>&1 || true
    fi
  done
fi

# The benchmarks are built and linked in the test profile (their figures come from
# `cargo bench` and `ocpile bench` with the release build; here only that they still build):
# the release profile's whole-program optimisation would add minutes to every run.
say "benchmarks compile"
cargo test --workspace --locked --benches --no-run >/dev/null 2>&1 || cargo test --workspace --locked --benches --no-run

passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' target/test-output.txt | awk '{s+=$4} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' target/test-output.txt | awk '{s+=$1} END {print s+0}')
echo
echo "${passed} passed, ${failed} failed"
[ "$failed" -eq 0 ]
