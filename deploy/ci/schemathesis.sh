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

# A tenant with a token of every scope, an agent, a service user with an enabled report:
# each operation is driven with the credential its scope takes, so it gets past
# authentication to its handler.
"$bin" tenant create st --region RO >/dev/null
token() { "$bin" token create --tenant st --scope "$1" --label "schemathesis-$1" | tail -1; }
lookup_token=$(token lookup)
sync_token=$(token sync)
events_token=$(token events)
report_token=$(token report)
admin_token=$(token admin)
"$bin" agent add --tenant st 200 --name Agent1 >/dev/null
service_key=$("$bin" service-user create --tenant st schemathesis 2>/dev/null | tail -1)
report_key=$("$bin" report enable --tenant st --template agent-talking-summary --service-user schemathesis 2>/dev/null | tail -1)

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

session=$(curl -fsS -X POST -H "Authorization: Bearer $sync_token" "$base/api/v1/agents/200/sessions" |
	python3 -c 'import json, sys; print(json.load(sys.stdin)["session"])')

# Each path with the credential its scope takes (operations not listed take none).
config=target/schemathesis.toml
cat >"$config" <<TOML
[[operations]]
include-path-regex = '^/api/(lookup|while1voice)\$'
headers = { Authorization = "Bearer $lookup_token" }

[[operations]]
include-path-regex = '^/api/v1/(contacts|agents)'
headers = { Authorization = "Bearer $sync_token" }

[[operations]]
include-path-regex = '^/api/v1/events'
headers = { Authorization = "Bearer $events_token" }

[[operations]]
include-path-regex = '^/api/v1/reportsCDRLogs\$'
headers = { Authorization = "Bearer $report_token" }

[[operations]]
include-path-regex = '^/api/v1/(profiles|deliveries)'
headers = { Authorization = "Bearer $admin_token" }

[[operations]]
include-path-regex = '^/api/v1/click2call'
parameters = { "query.session" = "$session" }

[[operations]]
include-path-regex = '^/rest/'
headers = { Authorization = "Bearer $service_key" }
parameters = { "path.historicDataKey" = "$report_key" }
TOML

# What must hold: no 5xx, and every answer (status, content type, headers, body) as
# documented. How strictly input is validated beyond the schema (ST201/ST202) is ours
# to decide, so those checks are not run. The coverage phase is skipped: under this
# machine's CPython 3.11 it intermittently dies with an interpreter SystemError.
status=0
"$venv/bin/st" --config-file "$config" run "$base/openapi.json" \
	--checks not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance \
	--phases examples,fuzzing,stateful \
	--max-examples "$max_examples" \
	--seed 20261124 \
	--workers 2 || status=1

if grep -q 'panicked' target/schemathesis-serve.log; then
	echo "schemathesis: the gateway panicked; see target/schemathesis-serve.log" >&2
	status=1
fi
if [[ $status -eq 0 ]]; then
	echo "schemathesis: every operation passed"
else
	echo "schemathesis: failures above" >&2
fi
exit "$status"
