#!/usr/bin/env bash
# Benchmark web-service deliveries on this machine and write
# deploy/bench/results/webhooks.md.
#
#   deploy/bench/webhooks.sh
#
# 1. Throughput: BENCH_DELIVERIES (20,000) deliveries are queued straight into the
#    outbox (SQL) for one profile whose target is a local receiver
#    (examples/webhook_receiver.rs), then one `cidgate serve` with CIDGATE_ROLES=deliver
#    starts and sends them: deliveries/s from the first to the last delivered.
# 2. Receiver down: BENCH_QUEUED (100,000) deliveries are queued while nothing listens
#    on the receiver's port; the gateway tries them (connection refused) and retries on
#    a short schedule; after BENCH_DOWN_SECS (20) the receiver starts, and the script
#    waits until every delivery is delivered, then checks that none failed or is
#    missing: how long draining took after the receiver came back.
#
# Uses the private PostgreSQL cluster `benchhooks` (deploy/local/pg.sh, port
# BENCH_PG_PORT, default 25437) and recreates the database cidgate_bench_hooks in it;
# everything it starts is stopped on exit. BENCH_BUILD=debug uses a debug build
# (quicker to build, slower to run). Knobs: BENCH_DELIVERIES, BENCH_QUEUED,
# BENCH_DOWN_SECS, BENCH_PG_PORT, BENCH_RECEIVER_PORT (18095), BENCH_GW_PORT (18096),
# BENCH_RECEIVER_WORKERS (1), and the server's own CIDGATE_* settings (e.g.
# CIDGATE_WEBHOOK_CONCURRENCY).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
prog=bench/webhooks.sh
build=${BENCH_BUILD:-release}
deliveries=${BENCH_DELIVERIES:-20000}
queued=${BENCH_QUEUED:-100000}
down_secs=${BENCH_DOWN_SECS:-20}
pg_port=${BENCH_PG_PORT:-25437}
receiver_addr=127.0.0.1:${BENCH_RECEIVER_PORT:-18095}
gw_addr=127.0.0.1:${BENCH_GW_PORT:-18096}
receiver_workers=${BENCH_RECEIVER_WORKERS:-1}
cluster=benchhooks
dbname=cidgate_bench_hooks
out=deploy/bench/results/webhooks.md

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
now() { date +%s.%N; }

pids=()
cleanup() {
	for pid in "${pids[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	wait 2>/dev/null || true
	deploy/local/pg.sh stop "$cluster" >/dev/null 2>&1 || true
}
trap cleanup EXIT

pg_bin=${PG_BIN:-}
if [[ -z $pg_bin ]]; then
	pg_bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
fi
[[ -x $pg_bin/psql ]] || die "no psql found (set PG_BIN or apt-get install postgresql)"

say "building cidgate and the receiver ($build)"
if [[ $build == release ]]; then
	cargo build --release --bin cidgate --example webhook_receiver >&2
	bin=target/release
else
	cargo build --bin cidgate --example webhook_receiver >&2
	bin=target/debug
fi

base_url=$(deploy/local/pg.sh start "$cluster" "$pg_port" --fast)
psql() { "$pg_bin/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }
psql "$base_url" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" -c "CREATE DATABASE $dbname"
db_url=${base_url%/*}/$dbname
export DATABASE_URL=$db_url
export CIDGATE_WEBHOOK_ALLOW_NETWORKS=127.0.0.0/8
$bin/cidgate migrate 2>/dev/null
$bin/cidgate tenant create bench --region RO >/dev/null
$bin/cidgate profile create --tenant bench crm --url "http://$receiver_addr/calls" \
	--form 'call=<Report Call ID>' --form 'caller=<Caller Number>' --form 'talk=<Talk Duration>' \
	--secret-header 'Authorization: Bearer bench' >/dev/null
value() { psql "$db_url" -At -c "$1"; }
tenant=$(value "SELECT id FROM tenants WHERE slug = 'bench'")
profile=$(value "SELECT id FROM webhook_profiles WHERE name = 'crm'")

# Deliveries of made-up finished calls, as the outbox holds them.
queue() {
	psql "$db_url" -c "
		INSERT INTO webhook_deliveries (id, message_id, tenant_id, profile_id, call_id, trigger, call)
		SELECT s.u, s.u, $tenant, $profile, gen_random_uuid(), 'call-finished',
		       jsonb_build_object('id', gen_random_uuid(), 'report_call_id', g,
		           'activecallkey', 'bench-' || g, 'direction', 'Inbound',
		           'caller_number', '+40721000001', 'other_number', '+40721000001',
		           'started_at', now(), 'answered_at', now(), 'ended_at', now(),
		           'duration_ms', 60000, 'talk_ms', 50000, 'outcome', 'answered')
		FROM (SELECT gen_random_uuid() AS u, g FROM generate_series(1, $1) g) s"
}
delivered() { value "SELECT count(*) FROM webhook_deliveries WHERE state = 'delivered'"; }
wait_delivered() {
	local want=$1 give_up=$2
	while (($(delivered) < want)); do
		(($(date +%s) < give_up)) || die "only $(delivered) of $want delivered in time"
		sleep 0.2
	done
}
# Whether URL answers 2xx within 10 seconds.
answers() {
	for _ in $(seq 200); do
		curl -fs -o /dev/null "$1" && return 0
		sleep 0.05
	done
	return 1
}
start_receiver() {
	WORKERS=$receiver_workers $bin/examples/webhook_receiver "$receiver_addr" 2>/dev/null &
	pids+=($!)
	answers "http://$receiver_addr/" || die "the receiver did not start"
}
start_gateway() {
	CIDGATE_LISTEN=$gw_addr CIDGATE_ROLES=deliver RUST_LOG=warn "$@" $bin/cidgate serve 2>/dev/null &
	pids+=($!)
	answers "http://$gw_addr/readyz" || die "the gateway did not start"
}
stop_gateway() {
	kill "${pids[-1]}" && wait "${pids[-1]}" 2>/dev/null || true
	unset 'pids[-1]'
}

# 1. Throughput.
start_receiver
queue "$deliveries"
say "sending $deliveries deliveries"
t0=$(now)
start_gateway env
wait_delivered "$deliveries" $(($(date +%s) + 600))
t1=$(now)
stop_gateway
rate=$(awk -v n="$deliveries" -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", n / (b - a) }')
secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
say "throughput: $deliveries in ${secs}s (start included): $rate deliveries/s"
kill "${pids[0]}" && wait "${pids[0]}" 2>/dev/null || true
pids=()

# 2. 100,000 queued while the receiver is down.
psql "$db_url" -c "TRUNCATE webhook_attempts, webhook_deliveries"
queue "$queued"
say "$queued queued; the receiver is down for ${down_secs}s"
start_gateway env CIDGATE_WEBHOOK_RETRY_SCHEDULE=0s,1s,2s,5s,10s,10s,10s,10s,10s,10s,30s,60s,120s,300s
sleep "$down_secs"
tried=$(value "SELECT count(*) FROM webhook_deliveries WHERE attempts > 0")
start_receiver
t2=$(now)
wait_delivered "$queued" $(($(date +%s) + 1800))
t3=$(now)
drain=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }')
failed=$(value "SELECT count(*) FROM webhook_deliveries WHERE state <> 'delivered'")
attempts=$(value "SELECT count(*) FROM webhook_attempts")
say "receiver back: all $queued delivered ${drain}s later; not delivered: $failed; attempts: $attempts"

mkdir -p "$(dirname "$out")"
cat >"$out" <<REPORT
# Web-service deliveries ($(date -u +%Y-%m-%d), $build build, $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg))

| measurement | result |
|---|---|
| throughput: $deliveries queued deliveries sent by one instance to a local receiver | $rate deliveries/s ($deliveries in ${secs} s, gateway start included) |
| $queued queued while the receiver is down (${down_secs} s; $tried tried meanwhile) | all delivered ${drain} s after it came back; $failed not delivered; $attempts attempts in all |
REPORT
cat "$out"
