#!/usr/bin/env bash
# Property-based API testing: schemathesis (from PyPI, into a venv under target/)
# drives the running gateway from its own /openapi.json and fails on any 5xx or any
# answer that contradicts the description. Bounded: MAX_EXAMPLES per operation.
# Usage: deploy/ci/schemathesis.sh   (run by .ci/run; needs nothing started)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

port=${CIDGATE_ST_PG_PORT:-25434}
max_examples=${MAX_EXAMPLES:-40}
venv=target/schemathesis-venv
version=4.32.5

if [[ ! -x $venv/bin/st ]]; then
	python3 -m venv "$venv"
	"$venv/bin/pip" install --quiet "schemathesis==$version"
fi

cargo build --quiet --bin cidgate
bin=${CARGO_TARGET_DIR:-target}/debug/cidgate

server_pid=
cleanup() {
	if [[ -n $server_pid ]]; then
		kill "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
	fi
	deploy/local/pg.sh stop schemathesis >&2 || true
}
trap cleanup EXIT

admin_url=$(deploy/local/pg.sh start schemathesis "$port" --fast)
psql=$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
"$psql" -q "$admin_url" -c 'DROP DATABASE IF EXISTS cidgate_st WITH (FORCE)' -c 'CREATE DATABASE cidgate_st'
export DATABASE_URL=${admin_url%/postgres}/cidgate_st

"$bin" tenant create st --region RO >/dev/null
lookup_token=$("$bin" token create --tenant st --scope lookup --label schemathesis)
sync_token=$("$bin" token create --tenant st --scope sync --label schemathesis)
report_token=$("$bin" service-user create --tenant st schemathesis 2>/dev/null | tail -1)

listen_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$listen_port
CIDGATE_LISTEN=127.0.0.1:$listen_port CIDGATE_LOOKUP_RATE=100000 CIDGATE_SYNC_RATE=100000 \
	CIDGATE_AUTH_FAILURES_PER_MIN=100000 RUST_LOG=warn "$bin" serve >target/schemathesis-serve.log 2>&1 &
server_pid=$!
for _ in $(seq 1 300); do
	curl -fsS "$base/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "$base/readyz" >/dev/null

# What must hold: no 5xx, and every answer (status, content type, headers, body) as
# documented. How strictly input is validated beyond the schema (ST201/ST202) is ours
# to decide, so those checks are not run. The coverage phase is skipped: under this
# machine's CPython 3.11 it intermittently dies with an interpreter SystemError.
run() {
	"$venv/bin/st" run "$base/openapi.json" \
		--checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
		--phases examples,fuzzing,stateful \
		--max-examples "$max_examples" \
		--seed 20261124 \
		--workers 2 \
		"$@"
}

status=0
# The lookup with its own token, the sync API with its own, reports with a service
# user's key, the rest without.
run --include-path-regex '^/api/(lookup|while1voice)$' -H "Authorization: Bearer $lookup_token" || status=1
run --include-path-regex '^/api/v1/' -H "Authorization: Bearer $sync_token" || status=1
run --include-path-regex '^/rest/' -H "Authorization: Bearer $report_token" || status=1
run --include-path-regex '^/(healthz|readyz|metrics|openapi\.json)$' || status=1

if grep -q 'panicked' target/schemathesis-serve.log; then
	echo "schemathesis: the gateway panicked; see target/schemathesis-serve.log" >&2
	status=1
fi
if [[ $status -eq 0 ]]; then
	echo "schemathesis: 4 passed, 0 failed"
else
	echo "schemathesis: failures above" >&2
fi
exit "$status"
