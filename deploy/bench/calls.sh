#!/usr/bin/env bash
# Benchmark cidgate's call events and CDR API on this machine and write
# deploy/bench/results/calls.md.
#
#   deploy/bench/calls.sh
#
# 1. Seeds 10,000,000 ended calls straight into the partitioned call tables (SQL,
#    calls_seed.sql), spread over the last 12 months, then VACUUM ANALYZE.
# 2. Ingestion: PBX connections POST call events to /api/v1/events (wrk, events.lua:
#    every request new call ids), as whole calls (4 events a request) and as single
#    events, as fast as answered and paced at BENCH_EVENT_RATE events/s.
# 3. CDR reads over the 10,000,000 calls: first pages of a month's range, following
#    cursor pages, and activecallkey lookups of random calls (wrk, paths.lua).
# Gateway and PostgreSQL share core BENCH_SERVER_CPU (0), the load generator has
# BENCH_LOAD_CPU (1). Every measurement runs BENCH_ROUNDS times, the scenarios
# interleaved, and the report gives each round and the median. See
# deploy/bench/README.md ("Call events and CDR reads").
#
# Uses the private PostgreSQL cluster `benchcalls` (deploy/local/pg.sh, port
# BENCH_PG_PORT, default 25436) and recreates the database cidgate_bench_calls in it,
# unless BENCH_CALLS_REUSE=1 and it already holds the seeded calls (then seeding is
# skipped: handy when repeating the measurements). Everything it starts is stopped on
# exit. Installs wrk and jq (apt-get, as root) when they are missing.
#
# Knobs (environment): BENCH_CALLS (10000000), BENCH_ROUNDS (3), BENCH_DURATION
# seconds per run (10), BENCH_CONNS for the unpaced ingestion runs (64),
# BENCH_PACED_CONNS (32), BENCH_EVENT_RATE events/s of the paced runs (20000),
# BENCH_READ_CONNS (8), BENCH_PAGE_RATE (200) and BENCH_KEY_RATE (1000) requests/s of
# the paced read runs, BENCH_GW_PORT (18090), BENCH_PG_PORT (25436), BENCH_SERVER_CPU
# (0), BENCH_LOAD_CPU (1), BENCH_CALLS_REUSE (0), BENCH_PERF (0; 1 records a perf
# profile of the server core during one more ingestion run, needs perf), and the
# server's own CIDGATE_* settings (e.g. CIDGATE_DB_POOL_SIZE).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
here=$root/deploy/bench
prog=bench/calls.sh

calls=${BENCH_CALLS:-10000000}
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNS:-64}
paced_conns=${BENCH_PACED_CONNS:-32}
event_rate=${BENCH_EVENT_RATE:-20000}
read_conns=${BENCH_READ_CONNS:-8}
page_rate=${BENCH_PAGE_RATE:-200}
key_rate=${BENCH_KEY_RATE:-1000}
pg_port=${BENCH_PG_PORT:-25436}
gw_addr=127.0.0.1:${BENCH_GW_PORT:-18090}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
reuse=${BENCH_CALLS_REUSE:-0}
perf_profile=${BENCH_PERF:-0}
span_days=365   # the seeded calls' span, within the default 400-day retention
chunk=1000000   # calls seeded per transaction
contacts=100000 # the tenant's contacts: half the ingested calls' callers are among them
cluster=benchcalls
dbname=cidgate_bench_calls
pg_data=${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/$cluster

t_start=$(date +%s.%N)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

say() { printf '%s [%6.1fs] %s\n' "$prog" "$(elapsed_since "$t_start")" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
now() { date +%s.%N; }
elapsed_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
is_root() { [[ $(id -u) -eq 0 ]]; }

# --- phases: how long each took goes into the report -------------------------------
phase_names=()
phase_secs=()
phase_started=
phase_name=
phase() {
	phase_end
	phase_name=$1
	phase_started=$(now)
	say "== $1 (load average $(cut -d' ' -f1-3 /proc/loadavg))"
}
phase_end() {
	if [[ -n $phase_name ]]; then
		phase_names+=("$phase_name")
		phase_secs+=("$(elapsed_since "$phase_started")")
		phase_name=
	fi
}

# --- cleanup: only what this script started, by PID --------------------------------
work=
pids=()
cluster_started=0
stop_pid() {
	local pid=$1 i
	kill -0 "$pid" 2>/dev/null || return 0
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 150; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		say "pid $pid ignored SIGTERM for 15 s; killing it"
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}
forget_pid() {
	local keep=() p
	for p in "${pids[@]}"; do
		[[ $p == "$1" ]] || keep+=("$p")
	done
	pids=("${keep[@]}")
}
cleanup() {
	local rc=$? p
	for p in "${pids[@]}"; do
		stop_pid "$p"
	done
	if ((cluster_started)); then
		deploy/local/pg.sh stop "$cluster" || true
	fi
	if [[ -n $work && -d $work ]]; then
		if ((rc == 0)); then
			rm -rf "$work"
		else
			say "failed (exit $rc); logs and inputs kept in $work"
		fi
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------
has_pg_bins() { [[ -n $1 && -x $1/psql ]]; }
locate_pg_bin() {
	local d
	if [[ -n ${PG_BIN:-} ]]; then
		has_pg_bins "$PG_BIN" && {
			printf '%s\n' "$PG_BIN"
			return 0
		}
		die "PG_BIN=$PG_BIN has no psql"
	fi
	if command -v pg_config >/dev/null 2>&1; then
		d=$(pg_config --bindir 2>/dev/null || true)
		if has_pg_bins "$d"; then
			printf '%s\n' "$d"
			return 0
		fi
	fi
	d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if has_pg_bins "$d"; then
		printf '%s\n' "$d"
		return 0
	fi
	return 1
}

apt_updated=0
apt_install() {
	if ! is_root || ! command -v apt-get >/dev/null 2>&1; then
		die "$1 is missing; install it (Debian: apt-get install $1)"
	fi
	if ((!apt_updated)); then
		say "apt-get update"
		apt-get update -q >&2
		apt_updated=1
	fi
	say "installing $1 with apt-get"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$1" >&2
}

ensure_tools() {
	local t
	for t in curl awk taskset timeout sort; do
		command -v "$t" >/dev/null 2>&1 || die "$t is missing"
	done
	command -v wrk >/dev/null 2>&1 || apt_install wrk
	command -v jq >/dev/null 2>&1 || apt_install jq
	if ((perf_profile)) && ! command -v perf >/dev/null 2>&1; then
		apt_install linux-perf
	fi
	pg_bin=$(locate_pg_bin) || die "no psql found (set PG_BIN or apt-get install postgresql)"
	if (($(nproc) < 2)); then
		say "warning: only $(nproc) CPU; server and load generator share core 0"
		server_cpu=0
		load_cpu=0
	fi
}

# --- helpers -----------------------------------------------------------------------
psql_db() { "$pg_bin/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }
sql_value() { psql_db "$db_url" -At -c "$1"; }

clk_tck=$(getconf CLK_TCK)
# CPU time (ticks) a process has used, user + system.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0; }
# CPU ticks of the cluster's processes together (its backends stay: the pool keeps them).
pg_ticks() {
	local pm p
	pm=$(head -n 1 "$pg_data/postmaster.pid")
	for p in "$pm" $(pgrep -P "$pm"); do cpu_ticks "$p"; done | awk '{ s += $1 } END { print s + 0 }'
}
# Busy ticks of one core (everything but idle and iowait), whoever ran there: with the
# gateway's and PostgreSQL's own ticks it tells how much of the server core other
# processes on the machine took during a run.
core_busy() { awk -v c="cpu$1" '$1 == c { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
pct_of_core() { # ticks_before ticks_after t0 t1
	awk -v a="$1" -v b="$2" -v t0="$3" -v t1="$4" -v hz="$clk_tck" 'BEGIN { printf "%.0f", (b - a) / hz / (t1 - t0) * 100 }'
}

wait_http() { # pid url what seconds
	local pid=$1 url=$2 what=$3 limit=$4 i
	for ((i = 0; i < limit * 4; i++)); do
		kill -0 "$pid" 2>/dev/null || return 1
		if curl -fsS -o /dev/null --max-time 2 "$url" 2>/dev/null; then
			return 0
		fi
		sleep 0.25
	done
	say "$what did not answer $url within $limit s"
	return 1
}

gw_pid=
start_gateway() { # log file [cpu list]; sets gw_pid
	# The sync rate limit (which CDR reads count against) would answer most of the
	# benchmark's reads with 429: lift it (and the lookup and event ones) unless the
	# caller set their own.
	CIDGATE_LISTEN=$gw_addr CIDGATE_WORKERS=${CIDGATE_WORKERS:-1} RUST_LOG=${RUST_LOG:-warn} \
		CIDGATE_LOOKUP_RATE=${CIDGATE_LOOKUP_RATE:-1000000000} CIDGATE_SYNC_RATE=${CIDGATE_SYNC_RATE:-1000000000} \
		CIDGATE_EVENT_RATE=${CIDGATE_EVENT_RATE:-1000000000} \
		taskset -c "${2:-$server_cpu}" "$cidgate" serve >"$1" 2>&1 &
	gw_pid=$!
	pids+=("$gw_pid")
	if ! wait_http "$gw_pid" "http://$gw_addr/readyz" gateway 240; then
		tail -n 30 "$1" >&2 || true
		die "the gateway did not become ready"
	fi
}
stop_gateway() {
	stop_pid "$gw_pid"
	forget_pid "$gw_pid"
	gw_pid=
}

start_cluster() { # cpu list for the postmaster and every backend ("" = unpinned)
	if [[ -n $1 ]]; then
		base_url=$(taskset -c "$1" deploy/local/pg.sh start "$cluster" "$pg_port")
	else
		base_url=$(deploy/local/pg.sh start "$cluster" "$pg_port")
	fi
	cluster_started=1
	db_url=${base_url%/*}/$dbname
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.1f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt_ms() { if [[ -z ${1:-} ]]; then printf 'n/a'; else awk -v u="$1" 'BEGIN { printf "%.2f", u / 1000 }'; fi; }
fmt_int() { if [[ -z ${1:-} ]]; then printf 'n/a'; else awk -v x="$1" 'BEGIN { printf "%.0f", x }'; fi; }
verdict() { # value op target
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "n/a" || v == "") { print "n/a"; exit }
		ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0)
		print ok ? "PASS" : "FAIL" }'
}

# Per scenario key: space-separated figures of every round, and the command used.
declare -A R_RATE R_P50 R_P99 R_P999 R_GW R_PG R_OTHER R_CPU R_NOTE CMD LABEL
keys=()

# run_wrk KEY LABEL CONNS SCRIPT SCRIPT_ARGS... — one run of DURATION seconds, whose
# figures are appended to KEY's rounds. With KEY "-" the run is a warm-up.
# For event runs the rate is events/s, counted in the database (call_events rows
# added), otherwise requests/s.
run_wrk() {
	local key=$1 label=$2 c=$3 script=$4 out line kv k v
	shift 4
	out=$work/wrk-${key//[^a-z0-9_]/_}-$(date +%s%N).txt
	local g0 p0 b0 t0 g1 p1 b1 t1 e0=0 e1=0 events=0
	[[ $script == events.lua ]] && events=1
	((events)) && e0=$(sql_value "SELECT count(*) FROM call_events")
	g0=$(cpu_ticks "$gw_pid")
	p0=$(pg_ticks)
	b0=$(core_busy "$server_cpu")
	t0=$(now)
	local cmd=(taskset -c "$load_cpu" wrk -t 1 -c "$c" -d "${duration}s" --timeout 5s -s "$here/$script"
		"http://$gw_addr" -- "$@")
	if ! timeout $((duration + 60)) "${cmd[@]}" >"$out" 2>&1; then
		cat "$out" >&2
		die "wrk failed ($key)"
	fi
	t1=$(now)
	b1=$(core_busy "$server_cpu")
	g1=$(cpu_ticks "$gw_pid")
	p1=$(pg_ticks)
	line=$(grep '^RESULT ' "$out" | tail -n 1) || {
		cat "$out" >&2
		die "no RESULT line from wrk ($key)"
	}
	local -A r=()
	for kv in ${line#RESULT }; do
		k=${kv%%=*}
		v=${kv#*=}
		r[$k]=$v
	done
	local rate=${r[rps]} note=""
	if ((events)); then
		e1=$(sql_value "SELECT count(*) FROM call_events")
		rate=$(awk -v n="$((e1 - e0))" -v s="${r[duration_s]}" 'BEGIN { printf "%.0f", n / s }')
		note="$((e1 - e0)) events recorded for ${r[requests]} answered requests; "
	fi
	((r[non2xx] == 0)) || note+="${r[non2xx]} non-2xx; "
	((r[sockerr] == 0)) || note+="${r[sockerr]} socket errors; "
	local gw_pct pg_pct other_pct cpu_us units
	if ((events)); then units=$((e1 - e0)); else units=${r[requests]}; fi
	cpu_us=$(awk -v t=$(((g1 - g0) + (p1 - p0))) -v n="$units" -v hz="$clk_tck" 'BEGIN { if (n > 0) printf "%.0f", t / hz * 1e6 / n; else print "" }')
	gw_pct=$(pct_of_core "$g0" "$g1" "$t0" "$t1")
	pg_pct=$(pct_of_core "$p0" "$p1" "$t0" "$t1")
	other_pct=$(pct_of_core 0 $(((b1 - b0) - (g1 - g0) - (p1 - p0))) "$t0" "$t1")
	((other_pct >= 0)) || other_pct=0
	say "$key: ${rate}$( ((events)) && echo ' events/s' || echo ' req/s') (${r[rps]} req/s), p50 ${r[p50_us]} us, p99 ${r[p99_us]} us, p99.9 ${r[p999_us]} us, CPU of core $server_cpu: gateway ${gw_pct}%, PostgreSQL ${pg_pct}%, other processes ${other_pct}%; server CPU ${cpu_us} us per $( ((events)) && echo event || echo request) ${note:+($note)}"
	[[ $key == - ]] && return 0
	if [[ -z ${LABEL[$key]:-} ]]; then
		keys+=("$key")
		LABEL[$key]=$label
		CMD[$key]="wrk -t 1 -c $c -d ${duration}s --timeout 5s -s deploy/bench/$script URL -- $(printf '%s ' "$@" | sed -e "s/$events_token/EVENTS_TOKEN/g; s/$report_token/REPORT_TOKEN/g; s|$work/||g")"
	fi
	R_RATE[$key]+="$rate "
	R_P50[$key]+="${r[p50_us]} "
	R_P99[$key]+="${r[p99_us]} "
	R_P999[$key]+="${r[p999_us]} "
	R_GW[$key]+="$gw_pct "
	R_PG[$key]+="$pg_pct "
	R_OTHER[$key]+="$other_pct "
	R_CPU[$key]+="$cpu_us "
	if [[ -n $note && ($events -eq 0 || $note == *non-2xx* || $note == *socket*) ]]; then
		R_NOTE[$key]+="round: $note"
	fi
}

# ==================================================================================
((calls >= 100000)) || die "BENCH_CALLS must be at least 100000"
work=$(mktemp -d /tmp/cidgate-bench-calls.XXXXXX)
chmod 755 "$work"

phase "tools and build"
ensure_tools
if [[ -n ${BENCH_CIDGATE:-} ]]; then
	cidgate=$BENCH_CIDGATE
	[[ -x $cidgate ]] || die "BENCH_CIDGATE=$cidgate is not an executable"
	say "using $cidgate (BENCH_CIDGATE), not a build of this tree"
else
	cargo build --release --bin cidgate >&2
	cidgate=${CARGO_TARGET_DIR:-target}/release/cidgate
	[[ -x $cidgate ]] || die "build did not produce $cidgate"
fi
say "wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}'), psql from $pg_bin"
export RUST_LOG=warn

phase "database"
# Unpinned while seeding (both cores); restarted on the server core before measuring.
start_cluster ""
# A server for 10,000,000 calls, not the 128 MB default; the WAL may grow during the
# seeding rather than checkpoint every few seconds. Read at the restart below.
psql_db "$base_url" -c "ALTER SYSTEM SET shared_buffers = '1GB'" -c "ALTER SYSTEM SET max_wal_size = '8GB'" \
	-c "SELECT pg_reload_conf()" >/dev/null
seeded=0
if ((reuse)) && [[ $(psql_db "$base_url" -At -c "SELECT count(*) FROM pg_database WHERE datname = '$dbname'") == 1 ]]; then
	seeded=$(psql_db "$db_url" -At -c "SELECT coalesce((SELECT last_report_call_id FROM call_counters c JOIN tenants t ON t.id = c.tenant_id WHERE t.slug = 'bench'), 0)" 2>/dev/null || echo 0)
	((seeded >= calls)) || seeded=0
fi
export DATABASE_URL=$db_url
if ((seeded)); then
	say "BENCH_CALLS_REUSE=1: reusing $dbname (its tenant has handed out $seeded report call ids); not seeding"
	tenant_id=$(sql_value "SELECT id FROM tenants WHERE slug = 'bench'")
	calls_stored=$(sql_value "SELECT count(*) FROM calls WHERE tenant_id = $tenant_id")
else
	psql_db "$base_url" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" -c "CREATE DATABASE $dbname"
	"$cidgate" migrate >&2
	"$cidgate" tenant create bench --region RO >&2
	tenant_id=$(sql_value "SELECT id FROM tenants WHERE slug = 'bench'")
	awk -v n="$contacts" 'BEGIN {
		print "id,name,phones"
		for (i = 0; i < n; i++) printf "%d,Contact %d,0720%06d\n", i, i, i
	}' >"$work/contacts.csv"
	"$cidgate" import --tenant bench "$work/contacts.csv" >&2
	# The gateway makes the monthly partitions (retention back, two months ahead) when it
	# starts: start it once, unpinned.
	start_gateway "$work/gateway-partitions.log" "0-$(($(nproc) - 1))"
	stop_gateway
	say "partitions: $(sql_value "SELECT count(*) FROM pg_inherits WHERE inhparent = 'calls'::regclass") per call table"

	phase "seed $calls calls"
	t_end=$(($(date +%s) - 7200)) # the last seeded call started two hours ago
	t0=$(now)
	for ((first = 1; first <= calls; first += chunk)); do
		last=$((first + chunk - 1))
		((last <= calls)) || last=$calls
		psql_db "$db_url" -v tenant="$tenant_id" -v first="$first" -v last="$last" -v total="$calls" \
			-v t_end="$t_end" -v span_days="$span_days" -f "$here/calls_seed.sql"
		say "seeded calls $first..$last ($(elapsed_since "$t0") s)"
	done
	seed_secs=$(elapsed_since "$t0")
	t0=$(now)
	# The tenant's call count (`--max-calls`), as the gateway keeps it.
	psql_db "$db_url" -c "UPDATE call_counters SET calls = (SELECT count(*) FROM calls WHERE tenant_id = $tenant_id) WHERE tenant_id = $tenant_id"
	psql_db "$db_url" -c "VACUUM (ANALYZE) calls, call_keys, call_events, call_counters"
	vacuum_secs=$(elapsed_since "$t0")
	say "seeded $calls calls in $seed_secs s ($(awk -v n="$calls" -v s="$seed_secs" 'BEGIN { printf "%.0f", n / s }') calls/s); VACUUM ANALYZE $vacuum_secs s"
	calls_stored=$calls
fi
db_size=$(sql_value "SELECT pg_size_pretty(pg_database_size(current_database()))")
calls_size=$(sql_value "SELECT pg_size_pretty(sum(pg_total_relation_size(inhrelid))) FROM pg_inherits WHERE inhparent = 'calls'::regclass")
per_month=$(sql_value "SELECT string_agg(to_char(month, 'YYYY-MM') || ' ' || n, ', ' ORDER BY month) FROM (SELECT month, count(*) n FROM calls GROUP BY month) m")
say "database $db_size (calls with indexes $calls_size); calls per month: $per_month"

# The measurements: PostgreSQL (postmaster and every backend) on the server core.
deploy/local/pg.sh stop "$cluster"
start_cluster "$server_cpu"
# Settings a failed run may have left (the query plans' auto_explain).
psql_db "$db_url" -c "ALTER DATABASE $dbname RESET ALL"
pg_settings=$(sql_value "SELECT string_agg(name || '=' || setting || coalesce(unit, ''), ', ' ORDER BY name) FROM pg_settings WHERE name IN ('shared_buffers', 'max_wal_size', 'fsync', 'synchronous_commit', 'max_connections')")
say "PostgreSQL pinned on core $server_cpu: $pg_settings"
# The ingestion runs add calls past the default cap of stored calls.
"$cidgate" tenant set bench --max-calls 1000000000 >&2
events_token=$("$cidgate" token create --tenant bench --scope lookup,events | tail -n 1)
report_token=$("$cidgate" token create --tenant bench --scope report | tail -n 1)
[[ $events_token =~ ^[A-Za-z0-9._~-]+$ && $report_token =~ ^[A-Za-z0-9._~-]+$ ]] || die "unexpected token format"
start_gateway "$work/gateway.log"
say "gateway ready (pid $gw_pid) on core $server_cpu"

# A quick check that the events are taken as meant.
probe_id=probe-$$-$(date +%s%N)
probe=$(curl -fsS --max-time 10 -H "Authorization: Bearer $events_token" -H 'Content-Type: application/json' \
	--data-binary "[{\"call_id\":\"$probe_id\",\"event\":\"started\",\"caller\":\"0720000001\"},{\"call_id\":\"$probe_id\",\"event\":\"hangup\"}]" \
	"http://$gw_addr/api/v1/events")
[[ $probe == '{"received":2,"recorded":2,"duplicates":0}' ]] || die "unexpected answer to the probe events: $probe"

# ----------------------------------------------------------------------------------
phase "ingestion"
run_id=$(date +%s)
ev_args() { # mode rate: sets a; the run's call ids are unique across runs and rounds
	run_seq=$((run_seq + 1))
	a=("$1" "$events_token" "r$run_id-$run_seq" "$2")
}
run_seq=0
ev_args call4 0
run_wrk - warmup "$conns" events.lua "${a[@]}"
for ((round = 1; round <= rounds; round++)); do
	say "ingestion round $round of $rounds"
	ev_args call4 0
	run_wrk ev_call4 "whole calls (4 events a request), $conns connections, as fast as answered" "$conns" events.lua "${a[@]}"
	ev_args single 0
	run_wrk ev_single "single events, $conns connections, as fast as answered" "$conns" events.lua "${a[@]}"
	ev_args call4 $((event_rate / 4))
	run_wrk ev_call4_paced "whole calls, $paced_conns connections, paced at $event_rate events/s" "$paced_conns" events.lua "${a[@]}"
	ev_args single "$event_rate"
	run_wrk ev_single_paced "single events, $paced_conns connections, paced at $event_rate events/s" "$paced_conns" events.lua "${a[@]}"
done
ingested=$(sql_value "SELECT count(*) FROM call_events")
dups=$(sql_value "SELECT count(*) - count(DISTINCT (call_id, fingerprint)) FROM call_events")
say "call_events now holds $ingested events ($dups repeated)"
if ((perf_profile)); then
	say "perf: recording core $server_cpu during one more whole-call run"
	perf record -F 499 -g -C "$server_cpu" -o "$work/perf.data" -- sleep "$duration" >"$work/perf-record.log" 2>&1 &
	perf_pid=$!
	pids+=("$perf_pid")
	ev_args call4 0
	run_wrk - "perf" "$conns" events.lua "${a[@]}"
	wait "$perf_pid" || true
	forget_pid "$perf_pid"
	perf report -i "$work/perf.data" --no-children --sort comm,dso --stdio 2>/dev/null |
		grep -v '^#' | awk 'NF' | head -n 25 >"$work/perf-comm.txt" || true
	perf report -i "$work/perf.data" --no-children --sort comm,symbol --stdio -g none 2>/dev/null |
		grep -v '^#' | awk 'NF' | head -n 40 >"$work/perf-sym.txt" || true
fi

# ----------------------------------------------------------------------------------
phase "CDR paths"
# First pages: 1,000 ranges of 30 days starting at random times of the seeded span's
# first 11 months; activecallkey: 100,000 random seeded calls by PBX call id, and
# 100,000 by UUID.
psql_db "$db_url" -At -c "SELECT setseed(0.42)" -c "
	SELECT format('/api/v1/reportsCDRLogs?startdate=%s&finishdate=%s',
	              to_char(s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'),
	              to_char((s + interval '30 days') AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'))
	FROM (SELECT (SELECT min(started_at) FROM calls) + random() * interval '330 days' AS s
	      FROM generate_series(1, 1000)) r" | tail -n +2 >"$work/first-pages.txt"
awk -v n="$calls_stored" 'BEGIN { srand(7); for (i = 0; i < 100000; i++) printf "/api/v1/reportsCDRLogs?activecallkey=bc-%d\n", 1 + int(rand() * n) }' >"$work/keys.txt"
psql_db "$db_url" -At -c "SELECT setseed(0.17)" -c "
	SELECT '/api/v1/reportsCDRLogs?activecallkey=' || md5('cidgate-bench-call-' || (1 + floor(random() * $calls_stored))::bigint)::uuid
	FROM generate_series(1, 100000)" | tail -n +2 >"$work/uuids.txt"
# Cursor pages: walk 50 pages of 20 of those ranges, one request after another (a CRM
# exporting a month), keeping every cursor handed out; the walk's own latencies count too.
: >"$work/cursors.txt"
: >"$work/walk-times.txt"
walk_ranges=20
walk_pages=50
walk_calls=0
for ((w = 1; w <= walk_ranges; w++)); do
	path=$(sed -n "$((w * 37))p" "$work/first-pages.txt")
	for ((p = 1; p <= walk_pages; p++)); do
		curl -fsS --max-time 10 -H "Authorization: Bearer $report_token" -o "$work/page.json" \
			-w '%{time_total}\n' "http://$gw_addr$path" >>"$work/walk-times.txt" ||
			die "CDR page failed: $path"
		read -r n cursor < <(jq -r '"\(.CallList | length) \(.cursor)"' "$work/page.json")
		((n == 100)) || die "a page of a month's range held $n calls, not 100: $path"
		walk_calls=$((walk_calls + n))
		path="/api/v1/reportsCDRLogs?cursor=$cursor"
		echo "$path" >>"$work/cursors.txt"
	done
done
read -r walk_p50 walk_p99 walk_max < <(awk '{ print $1 * 1e6 }' "$work/walk-times.txt" | sort -g | awk '
	{ v[NR] = $1 } END { printf "%d %d %d\n", v[int(NR * 0.5)], v[int(NR * 0.99)], v[NR] }')
say "walked $walk_ranges ranges x $walk_pages pages ($walk_calls calls) one by one: p50 $walk_p50 us, p99 $walk_p99 us, max $walk_max us"
# The cursors' pages hold calls (not past a range's end).
# One lookup of each kind first: found, and how long alone. A lookup that takes more than
# a second alone would pile up under a paced run: its runs are skipped (and said so).
declare -A key_alone_ms
for kind in keys uuids; do
	key=$(sed -n 1p "$work/$kind.txt")
	secs=$(curl -fsS --max-time 120 -H "Authorization: Bearer $report_token" -o "$work/key.json" \
		-w '%{time_total}' "http://$gw_addr$key")
	n=$(jq '.CallList | length' "$work/key.json")
	((n == 1)) || die "activecallkey lookup found $n calls: $key"
	key_alone_ms[$kind]=$(awk -v s="$secs" 'BEGIN { printf "%.1f", s * 1000 }')
	say "activecallkey ($kind) alone: ${key_alone_ms[$kind]} ms"
done
key_runs=1
if awk -v a="${key_alone_ms[keys]}" -v b="${key_alone_ms[uuids]}" 'BEGIN { exit !(a > 1000 || b > 1000) }'; then
	key_runs=0
	say "activecallkey lookups take more than a second alone: their wrk runs are skipped"
fi

phase "CDR reads"
run_wrk - warmup "$read_conns" paths.lua "$work/first-pages.txt" "$report_token" 0 1
((key_runs)) && run_wrk - warmup "$read_conns" paths.lua "$work/keys.txt" "$report_token" 0 1
for ((round = 1; round <= rounds; round++)); do
	say "CDR round $round of $rounds"
	run_wrk cdr_first "first page of a 30-day range (100 calls), paced at $page_rate req/s" \
		"$read_conns" paths.lua "$work/first-pages.txt" "$report_token" "$page_rate" "$round"
	run_wrk cdr_cursor "following page by cursor (100 calls), paced at $page_rate req/s" \
		"$read_conns" paths.lua "$work/cursors.txt" "$report_token" "$page_rate" "$round"
	((key_runs)) || continue
	run_wrk key_pbx "activecallkey = a leg's PBX call id, paced at $key_rate req/s" \
		"$read_conns" paths.lua "$work/keys.txt" "$report_token" "$key_rate" "$round"
	run_wrk key_uuid "activecallkey = the call's UUID, paced at $key_rate req/s" \
		"$read_conns" paths.lua "$work/uuids.txt" "$report_token" "$key_rate" "$round"
done
# How many the server can answer (closed loop): once each.
run_wrk cdr_first_max "first page, $read_conns connections, as fast as answered" \
	"$read_conns" paths.lua "$work/first-pages.txt" "$report_token" 0 9
run_wrk cdr_cursor_max "following page, $read_conns connections, as fast as answered" \
	"$read_conns" paths.lua "$work/cursors.txt" "$report_token" 0 9
if ((key_runs)); then
	run_wrk key_pbx_max "activecallkey (PBX call id), $read_conns connections, as fast as answered" \
		"$read_conns" paths.lua "$work/keys.txt" "$report_token" 0 9
fi
stop_gateway

phase "query plans"
# The plans of the gateway's own CDR queries (src/store/cdr.rs), as auto_explain logs
# them (with ANALYZE and BUFFERS) for one request of each kind: the database's settings
# load it into the connections of a gateway started for this, and are reset after.
psql_db "$db_url" -c "ALTER DATABASE $dbname SET session_preload_libraries = 'auto_explain'" \
	-c "ALTER DATABASE $dbname SET auto_explain.log_min_duration = 0" \
	-c "ALTER DATABASE $dbname SET auto_explain.log_analyze = on" \
	-c "ALTER DATABASE $dbname SET auto_explain.log_buffers = on"
log_from=$(($(stat -c %s "$pg_data/server.log") + 1))
start_gateway "$work/gateway-plans.log"
for kind in first-pages cursors keys uuids; do
	path=$(sed -n 5p "$work/$kind.txt")
	curl -fsS -o /dev/null --max-time 10 -H "Authorization: Bearer $report_token" "http://$gw_addr$path" ||
		die "plans: $kind request failed"
	printf '%s\n' "$kind" >>"$work/plan-kinds.txt"
done
stop_gateway
psql_db "$db_url" -c "ALTER DATABASE $dbname RESET ALL"
# Entries are a "duration: … plan:" line and its tab-indented continuation; keep those
# of the CDR reads (their column list), label them in request order.
tail -c "+$log_from" "$pg_data/server.log" | awk '
	/ LOG: +duration: .* plan:/ { flush(); keep = 0; buf = $0 "\n"; next }
	/^\t/ && buf != "" { buf = buf $0 "\n"; if (index($0, "report_call_id, activecallkey")) keep = 1; next }
	{ flush(); buf = "" }
	function flush() { if (keep && buf != "") printf "%s\n", buf; keep = 0; buf = "" }
	END { flush() }' | sed -e 's/^[^\t]*LOG: \+duration: \([0-9.]* ms\).*/-- duration \1/' -e 's/^\t//' >"$work/plans.txt"
say "plans: $(grep -c '^-- duration' "$work/plans.txt") CDR statements logged ($(grep '^-- duration' "$work/plans.txt" | tr '\n' ' '))"
phase_end

# ==================================================================================
total_secs=$(elapsed_since "$t_start")
load_end=$(cut -d' ' -f1-3 /proc/loadavg)
med() { median <<<"$1"; }
row() { # key
	local k=$1
	printf '| %s | %s | %s | %s | %s | %s / %s / %s | %s | %s | %s |\n' "${LABEL[$k]}" \
		"$(fmt_int "$(med "${R_RATE[$k]}")")" \
		"$(fmt_ms "$(med "${R_P50[$k]}")")" "$(fmt_ms "$(med "${R_P99[$k]}")")" "$(fmt_ms "$(med "${R_P999[$k]}")")" \
		"$(med "${R_GW[$k]}")" "$(med "${R_PG[$k]}")" "$(med "${R_OTHER[$k]}")" "$(med "${R_CPU[$k]}")" \
		"$(for v in ${R_RATE[$k]}; do printf '%s ' "$(fmt_int "$v")"; done)/ $(for v in ${R_P99[$k]}; do printf '%s ' "$(fmt_ms "$v")"; done)" \
		"${R_NOTE[$k]:-}"
}
ev_best=$(med "${R_RATE[ev_call4]}")
ev_paced_rate=$(med "${R_RATE[ev_call4_paced]}")
ev_paced_p99=$(fmt_ms "$(med "${R_P99[ev_call4_paced]}")")
ev_single_paced_rate=$(med "${R_RATE[ev_single_paced]}")
ev_single_paced_p99=$(fmt_ms "$(med "${R_P99[ev_single_paced]}")")
first_p99=$(fmt_ms "$(med "${R_P99[cdr_first]}")")
cursor_p99=$(fmt_ms "$(med "${R_P99[cdr_cursor]}")")
key_p99=$(fmt_ms "$(med "${R_P99[key_pbx]}")")
uuid_p99=$(fmt_ms "$(med "${R_P99[key_uuid]}")")

mkdir -p "$here/results"
report=$here/results/calls.md
# shellcheck disable=SC2016 # backquotes are Markdown
{
	printf '# cidgate benchmark: call events and CDR reads\n\n'
	printf 'Written by `deploy/bench/calls.sh` (see deploy/bench/README.md, "Call events and CDR reads").\n\n'
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf -- '- commit: %s%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' (with uncommitted changes)')"
	printf -- '- machine: %s, %s cores; gateway (1 worker) and PostgreSQL both on core %s, wrk on core %s\n' \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" "$server_cpu" "$load_cpu"
	printf -- '- load average (1, 5, 15 min) at start / end: %s / %s (the machine is shared: other work skews every figure)\n' \
		"$load_start" "$load_end"
	printf -- '- PostgreSQL: %s\n' "$pg_settings"
	printf -- '- data: %s calls stored (%s of them seeded by SQL, over %s days), %s contacts; database %s, calls table with indexes %s\n' \
		"$calls_stored" "$calls" "$span_days" "$contacts" "$db_size" "$calls_size"
	printf -- '- calls per month: %s\n' "$per_month"
	if [[ -n ${seed_secs:-} ]]; then
		printf -- '- seeding: %s s (%s transactions of %s calls), VACUUM ANALYZE %s s\n' "$seed_secs" \
			"$(((calls + chunk - 1) / chunk))" "$chunk" "$vacuum_secs"
	else
		printf -- '- seeding: skipped (BENCH_CALLS_REUSE=1, the database of an earlier run)\n'
	fi
	printf -- '- %s rounds of %s s per scenario, scenarios interleaved; figures are medians of the rounds\n\n' "$rounds" "$duration"
	printf '## Targets\n\n| target | measured | goal | verdict |\n| --- | ---: | ---: | --- |\n'
	printf '| ingestion, whole calls as fast as answered (events/s) | %s | >= 20000 | %s |\n' "$(fmt_int "$ev_best")" "$(verdict "$ev_best" '>=' 20000)"
	printf '| ingestion, whole calls paced at %s events/s: achieved (events/s) | %s | >= 20000 | %s |\n' "$event_rate" "$(fmt_int "$ev_paced_rate")" "$(verdict "$ev_paced_rate" '>=' 19800)"
	printf '| ingestion, whole calls paced at %s events/s: p99 (ms) | %s | < 20 | %s |\n' "$event_rate" "$ev_paced_p99" "$(verdict "$ev_paced_p99" '<' 20)"
	printf '| ingestion, single events paced at %s events/s: achieved (events/s) | %s | >= 20000 | %s |\n' "$event_rate" "$(fmt_int "$ev_single_paced_rate")" "$(verdict "$ev_single_paced_rate" '>=' 19800)"
	printf '| ingestion, single events paced at %s events/s: p99 (ms) | %s | < 20 | %s |\n' "$event_rate" "$ev_single_paced_p99" "$(verdict "$ev_single_paced_p99" '<' 20)"
	printf '| CDR first page p99 (ms) | %s | < 20 | %s |\n' "$first_p99" "$(verdict "$first_p99" '<' 20)"
	printf '| CDR cursor page p99 (ms) | %s | < 20 | %s |\n' "$cursor_p99" "$(verdict "$cursor_p99" '<' 20)"
	printf '| CDR pages walked one by one, p99 (ms) | %s | < 20 | %s |\n' "$(fmt_ms "$walk_p99")" "$(verdict "$(fmt_ms "$walk_p99")" '<' 20)"
	printf '| activecallkey (PBX call id) p99 (ms) | %s | < 5 | %s |\n' "$key_p99" "$(verdict "$key_p99" '<' 5)"
	printf '| activecallkey (UUID) p99 (ms) | %s | < 5 | %s |\n' "$uuid_p99" "$(verdict "$uuid_p99" '<' 5)"
	printf '| activecallkey (PBX call id), one lookup alone before the runs (ms) | %s | < 5 | %s |\n' "${key_alone_ms[keys]}" "$(verdict "${key_alone_ms[keys]}" '<' 5)"
	printf '| activecallkey (UUID), one lookup alone before the runs (ms) | %s | < 5 | %s |\n\n' "${key_alone_ms[uuids]}" "$(verdict "${key_alone_ms[uuids]}" '<' 5)"
	if ((!key_runs)); then
		printf 'The activecallkey runs were skipped: one lookup alone took more than a second.\n\n'
	fi
	printf '## Runs\n\n'
	printf 'Rate: events/s recorded (rows added to `call_events` over the run), or requests/s for reads. '
	printf 'CPU: %% of core %s over the run taken by the gateway / all PostgreSQL processes / other processes of the machine (from /proc/stat: the core is not reserved, pinning only keeps ours on it).\n\n' "$server_cpu"
	printf '| scenario | rate | p50 ms | p99 ms | p99.9 ms | core %s: gw / pg / others %% | server CPU us per event or request | each round: rate / p99 ms | notes |\n' "$server_cpu"
	printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |\n'
	for k in "${keys[@]}"; do row "$k"; done
	printf '\nCDR pages walked one after another (%s ranges x %s pages, curl): p50 %s ms, p99 %s ms, max %s ms.\n' \
		"$walk_ranges" "$walk_pages" "$(fmt_ms "$walk_p50")" "$(fmt_ms "$walk_p99")" "$(fmt_ms "$walk_max")"
	printf 'After the ingestion runs `call_events` held %s events, %s of them repeated (0 expected: every request new call ids).\n\n' "$ingested" "$dups"
	printf '## Commands\n\nURL is http://%s; the paths files hold the requests (first pages, cursors, keys) calls.sh generated.\n\n' "$gw_addr"
	for k in "${keys[@]}"; do printf -- '- %s: `%s`\n' "$k" "${CMD[$k]}"; done
	printf '\n## Query plans\n\nauto_explain (ANALYZE, BUFFERS) of the CDR statements the gateway ran for one first page, one cursor page, one activecallkey by PBX call id and one by UUID, in that order, after the runs:\n\n```\n'
	cat "$work/plans.txt"
	printf '```\n'
	if [[ -s $work/perf-comm.txt ]]; then
		printf '\n## perf: core %s during one more whole-call ingestion run\n\n```\n' "$server_cpu"
		cat "$work/perf-comm.txt"
		printf '```\n\n```\n'
		cat "$work/perf-sym.txt"
		printf '```\n'
	fi
	printf '\n| phase | seconds |\n| --- | ---: |\n'
	for i in "${!phase_names[@]}"; do
		printf '| %s | %s |\n' "${phase_names[$i]}" "${phase_secs[$i]}"
	done
	printf '| total | %s |\n' "$total_secs"
} >"$report"

cat "$report"
say "report written to ${report#"$root"/}"
