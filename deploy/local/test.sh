#!/usr/bin/env bash
# Run the test suite against a throw-away PostgreSQL cluster `test` (fsync off)
# on port CIDGATE_TEST_PG_PORT (default 25433), exported to the tests as
# CIDGATE_TEST_DATABASE_URL. Extra arguments go to the test runner
# (cargo nextest run if installed, else cargo test). The cluster is stopped on exit.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

# Below Linux's ephemeral range (32768-60999): the tests open many outgoing connections,
# and one of them could otherwise hold a cluster's port at the moment it starts.
port=${CIDGATE_TEST_PG_PORT:-25433}

trap 'deploy/local/pg.sh stop test >&2 || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The screen pop's browser test drives Debian's Chromium; install it when missing.
if ! command -v chromium >/dev/null 2>&1; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "test.sh: installing chromium for the browser test" >&2
		apt-get update -qq >&2
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >&2
	else
		echo "test.sh: the browser test needs Chromium: sudo apt-get install chromium" >&2
	fi
fi

# TLS on, as on a managed database: the tests connect through it (and verify the
# server against the cluster's private CA where they say so).
CIDGATE_TEST_DATABASE_URL=$(deploy/local/pg.sh start test "$port" --fast --tls)
pg_root=${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}
[[ $pg_root == /* ]] || pg_root=$PWD/$pg_root
CIDGATE_TEST_DATABASE_CA=$pg_root/test/tls-ca.crt
export CIDGATE_TEST_DATABASE_URL CIDGATE_TEST_DATABASE_CA

if cargo nextest --version >/dev/null 2>&1; then
	runner=(cargo nextest run --no-fail-fast)
else
	runner=(cargo test --no-fail-fast)
fi

status=0
"${runner[@]}" "$@" || status=$?

# PBX end to end: Kamailio + sipp against a real `cidgate serve` (its own PostgreSQL cluster
# `kamailio`); see deploy/pbx/kamailio/README.md. CIDGATE_SKIP_PBX_E2E=1 skips it.
pbx_status=0
if [[ ${CIDGATE_SKIP_PBX_E2E:-0} == 1 ]]; then
	echo "test.sh: CIDGATE_SKIP_PBX_E2E=1: skipping deploy/pbx/kamailio/test.sh" >&2
else
	deploy/pbx/kamailio/test.sh || pbx_status=$?
fi
if ((status == 0 && pbx_status != 0)); then
	status=$pbx_status
fi
exit "$status"
