#!/usr/bin/env bash
# Benchmark cidgate on this machine and write deploy/bench/results/latest.md.
#
#   deploy/bench/run.sh
#
# Seeds a fresh database (1,000,000 contacts through `cidgate import`), times bulk
# writes through the batch API, then measures lookups against the gateway in its
# default configuration, the gateway and PostgreSQL sharing core 0 and the load
# generator on core 1, compared with two references: the fixed-answer actix-web example
# (the HTTP ceiling) and pgbench running the lookup query. The gateway, the ceiling and
# pgbench take turns in BENCH_ROUNDS interleaved rounds and the report gives medians, so
# that ratios hold on a noisy machine. BENCH_BASELINE=/path/to/another/cidgate adds that
# build to every round (its own database, seeded the same way): an A/B comparison.
# See deploy/bench/README.md for what each figure means.
#
# Uses the private PostgreSQL cluster `bench` (deploy/local/pg.sh, port
# BENCH_PG_PORT, default 25435) and recreates the database cidgate_bench in it on
# every run. Everything it starts is stopped on exit. Installs wrk (apt-get, as root),
# oha (cargo install) and jq (apt-get) when they are missing.
#
# The headline table is the reference set-up (the PHP reference and the other anchors
# were measured on it): 32 connections, one wrk thread. A second, labelled table repeats
# the ceiling, cached hits, the mix and pgbench at BENCH_CONNS_SECOND connections (64).
#
# Knobs (environment): BENCH_CONNS (32), BENCH_CONNS_SECOND (64; 0 leaves the second
# table out), BENCH_HOT cached numbers (10000), BENCH_DURATION seconds (10), BENCH_ROUNDS (3),
# BENCH_WRK_THREADS (1), BENCH_RATE for the fixed-rate runs (10000),
# BENCH_SYNC_RATE for the lookups while the CRM syncs (1000),
# BENCH_BASELINE (a cidgate binary to compare with), BENCH_BASE_GW_PORT (18082),
# BENCH_MEM_ENTRIES (250000), BENCH_BULK_BATCHES of 10,000 (20),
# BENCH_GW_PORT (18080), BENCH_FIXED_PORT (18081), BENCH_PG_PORT (25435),
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), CIDGATE_DB_POOL_SIZE (server default).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
here=$root/deploy/bench
prog=bench/run.sh

conns=${BENCH_CONNS:-32}
conns_second=${BENCH_CONNS_SECOND:-64}
hot=${BENCH_HOT:-10000} # cached hits cycle over this many known numbers
duration=${BENCH_DURATION:-10}
rounds=${BENCH_ROUNDS:-3}
wrk_threads=${BENCH_WRK_THREADS:-1}
rate=${BENCH_RATE:-10000}
sync_rate=${BENCH_SYNC_RATE:-1000}
baseline=${BENCH_BASELINE:-}
mem_entries=${BENCH_MEM_ENTRIES:-250000} # at most 999,900 (seeded numbers 0..999,899)
bulk_batches=${BENCH_BULK_BATCHES:-20}
batch_size=10000
contacts=1000000 # known numbers are 0720 + 6 digits: at most 999,999 + 1
pg_port=${BENCH_PG_PORT:-25435}
gw_addr=127.0.0.1:${BENCH_GW_PORT:-18080}
fixed_addr=127.0.0.1:${BENCH_FIXED_PORT:-18081}
base_addr=127.0.0.1:${BENCH_BASE_GW_PORT:-18082}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
cluster=bench
dbname=cidgate_bench

t_start=$(date +%s.%N)
load_start=$(cut -d' ' -f1 /proc/loadavg)

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
	say "== $1"
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
has_pg_bins() { [[ -n $1 && -x $1/pgbench && -x $1/psql ]]; }
locate_pg_bin() {
	local d
	if [[ -n ${PG_BIN:-} ]]; then
		has_pg_bins "$PG_BIN" && {
			printf '%s\n' "$PG_BIN"
			return 0
		}
		die "PG_BIN=$PG_BIN has no pgbench and psql"
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
	for t in curl awk taskset timeout; do
		command -v "$t" >/dev/null 2>&1 || die "$t is missing"
	done
	command -v wrk >/dev/null 2>&1 || apt_install wrk
	command -v jq >/dev/null 2>&1 || apt_install jq
	if [[ -d ${CARGO_HOME:-$HOME/.cargo}/bin ]]; then
		PATH=$PATH:${CARGO_HOME:-$HOME/.cargo}/bin
	fi
	if ! command -v oha >/dev/null 2>&1; then
		say "installing oha with cargo install (a few minutes, once)"
		cargo install oha --locked >&2
	fi
	pg_bin=$(locate_pg_bin) || die "no pgbench/psql found (set PG_BIN or apt-get install postgresql)"
	local ncpu
	ncpu=$(nproc)
	if ((ncpu < 2)); then
		say "warning: only $ncpu CPU; server and load generator share core 0"
		server_cpu=0
		load_cpu=0
	fi
}

# --- helpers -----------------------------------------------------------------------
psql_db() { "$pg_bin/psql" -X -v ON_ERROR_STOP=1 -q "$@"; }

# Sum of every sample of a metric (all label sets) from /metrics of the gateway at
# $2 (default: the gateway under test).
metric() {
	curl -fsS --max-time 10 "http://${2:-$gw_addr}/metrics" |
		awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}

# CPU time (ticks) the process has used, user + system.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# The same, split: "user system" ticks of the process (all its threads).
cpu_split() { awk '{ sub(/^.*\) /, ""); print $12, $13 }' "/proc/$1/stat"; }
# Busy ticks of the server's core (user, nice, system, irq, softirq): the server, its
# PostgreSQL backends and the kernel's work for both.
core_busy() { awk -v c="cpu$server_cpu" '$1 == c { print $2 + $3 + $4 + $7 + $8 }' /proc/stat; }
clk_tck=$(getconf CLK_TCK)
server_pid=

proc_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

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

# start_gateway LOG [BINARY ADDRESS DATABASE_URL]; prints the PID.
# The default configuration (log level, workers: one, as the process sees one core),
# except the per-tenant lookup and per-token sync rate limits, which would answer most
# of the benchmark's requests with 429: lifted unless the caller set their own.
start_gateway() {
	local log=$1 bin=${2:-$cidgate} addr=${3:-$gw_addr} url=${4:-$db_url} pid
	env -u RUST_LOG DATABASE_URL="$url" CIDGATE_LISTEN="$addr" \
		CIDGATE_LOOKUP_RATE="${CIDGATE_LOOKUP_RATE:-1000000000}" CIDGATE_SYNC_RATE="${CIDGATE_SYNC_RATE:-1000000000}" \
		taskset -c "$server_cpu" "$bin" serve >"$log" 2>&1 &
	pid=$!
	pids+=("$pid")
	if ! wait_http "$pid" "http://$addr/readyz" gateway 240; then
		tail -n 30 "$log" >&2 || true
		die "the gateway $bin did not become ready"
	fi
	echo "$pid"
}

# Result tables, by scenario key.
declare -A RPS P50 P99 P999 NOTE CPU CSW USR SYS CORE

# run_wrk KEY SECONDS BASE_URL MODE KBASE KSPAN UBASE USPAN [KNOWN_PER_10 [EXTRA_PARAMS]]
# With KEY "-" the run is a warm-up and its figures are not kept.
run_wrk() {
	local key=$1 secs=$2 url=$3 mode=$4 out line kv k v
	shift 4
	out=$work/wrk-${key//[^a-z0-9]/_}-$mode-$(date +%s%N).txt
	local c0 t0 u0 s0 b0
	c0=$(cpu_ticks "$server_pid")
	read -r u0 s0 < <(cpu_split "$server_pid")
	b0=$(core_busy)
	t0=$(now)
	local perf_out=$work/perf-${key//[^a-z0-9]/_}.txt perf_pid=
	# Context switches of the server (all its threads) during the run, when perf works.
	if [[ $key != - ]] && ((has_perf)); then
		perf stat -e context-switches -x, -p "$server_pid" -o "$perf_out" -- sleep "$secs" 2>/dev/null &
		perf_pid=$!
	fi
	if ! taskset -c "$load_cpu" timeout $((secs + 60)) wrk -t "$wrk_threads" -c "${run_conns:-$conns}" -d "${secs}s" \
		--timeout 5s -s "$here/walk.lua" "$url" -- "$mode" "$wrk_token" "$wrk_threads" "$@" >"$out" 2>&1; then
		cat "$out" >&2
		die "wrk failed ($key)"
	fi
	line=$(grep '^RESULT ' "$out" | tail -n 1) || {
		cat "$out" >&2
		die "no RESULT line from wrk ($key)"
	}
	[[ $key == - ]] && return 0
	server_cpu_pct "$key" "$c0" "$t0"
	local u1 s1 b1
	read -r u1 s1 < <(cpu_split "$server_pid")
	b1=$(core_busy)
	local -A r=()
	for kv in ${line#RESULT }; do
		k=${kv%%=*}
		v=${kv#*=}
		r[$k]=$v
	done
	# Microseconds of CPU per answered request: the server's user and kernel time, and
	# everything its core did (PostgreSQL included).
	USR[$key]=$(per_request "$((u1 - u0))" "${r[requests]}")
	SYS[$key]=$(per_request "$((s1 - s0))" "${r[requests]}")
	CORE[$key]=$(per_request "$((b1 - b0))" "${r[requests]}")
	CSW[$key]=
	if [[ -n $perf_pid ]] && wait "$perf_pid" 2>/dev/null && ((r[requests] > 0)); then
		CSW[$key]=$(awk -F, -v n="${r[requests]}" '$3 == "context-switches" { printf "%.2f", $1 / n }' "$perf_out")
	fi
	RPS[$key]=${r[rps]}
	P50[$key]=${r[p50_us]}
	P99[$key]=${r[p99_us]}
	P999[$key]=${r[p999_us]}
	local note=""
	((r[non2xx] == 0)) || note+="${r[non2xx]} non-2xx; "
	((r[sockerr] == 0)) || note+="${r[sockerr]} socket errors; "
	((r[wrapped] == 0)) || note+="${r[wrapped]} numbers repeated (range too small); "
	NOTE[$key]=$note
	say "$key: ${r[rps]} req/s, p50 ${r[p50_us]} us, p99 ${r[p99_us]} us, p99.9 ${r[p999_us]} us, server CPU ${CPU[$key]}% ${note:+($note)}"
}

per_request() { # ticks requests -> microseconds per request
	awk -v t="$1" -v n="$2" -v hz="$clk_tck" 'BEGIN { if (n > 0) printf "%.1f", t / hz / n * 1e6 }'
}

# How busy the server under test was during a run, in % of one core: well below 100
# in a CPU-bound run means something else took its core.
server_cpu_pct() { # key ticks_before time_before
	CPU[$1]=$(awk -v a="$2" -v b="$(cpu_ticks "$server_pid")" -v t0="$3" -v t1="$(now)" -v hz="$clk_tck" \
		'BEGIN { printf "%.0f", (b - a) / hz / (t1 - t0) * 100 }')
}

# A gateway run that also records how many answers were degraded meanwhile; the
# gateway is the one at ${url#http://} (run_wrk's third argument).
run_gw() {
	local key=$1 addr=${3#http://} before after
	before=$(metric cidgate_degraded_answers_total "$addr")
	run_wrk "$@"
	after=$(metric cidgate_degraded_answers_total "$addr")
	if ((after > before)); then
		NOTE[$key]+="$((after - before)) degraded answers; "
		say "$key: $((after - before)) degraded answers"
	fi
}

# run_oha KEY URL: fixed rate; oha's json gives seconds.
run_oha() {
	local key=$1 url=$2 out json
	out=$work/oha-$key.json
	local c0 t0
	c0=$(cpu_ticks "$server_pid")
	t0=$(now)
	if ! taskset -c "$load_cpu" timeout $((duration + 60)) oha -q "$rate" --latency-correction \
		-z "${duration}s" -c "$conns" --no-tui --output-format json "$url" >"$out" 2>"$out.err"; then
		cat "$out.err" >&2
		die "oha failed ($key)"
	fi
	server_cpu_pct "$key" "$c0" "$t0"
	json=$(cat "$out")
	RPS[$key]=$(jq -r '.summary.requestsPerSec' <<<"$json")
	P50[$key]=$(jq -r '.latencyPercentiles.p50 * 1e6 | floor' <<<"$json")
	P99[$key]=$(jq -r '.latencyPercentiles.p99 * 1e6 | floor' <<<"$json")
	P999[$key]=$(jq -r '.latencyPercentiles["p99.9"] * 1e6 | floor' <<<"$json")
	local ok total
	ok=$(jq -r '[.statusCodeDistribution["200"] // 0] | add' <<<"$json")
	# Requests still in flight when -z ends are "aborted due to deadline": not failures.
	total=$(jq -r '[.statusCodeDistribution[]] + [.errorDistribution | to_entries[]
		| select(.key | test("deadline") | not) | .value] | add // 0' <<<"$json")
	NOTE[$key]=""
	if [[ $ok != "$total" ]]; then
		NOTE[$key]="$((total - ok)) of $total not 200; "
	fi
	say "$key: ${RPS[$key]} req/s, p50 ${P50[$key]} us, p99 ${P99[$key]} us, p99.9 ${P999[$key]} us, server CPU ${CPU[$key]}%"
}

lookup_url() { # number [address token]
	printf 'http://%s/api/lookup?telephone=%s&dnid=0210000000&token=%s' "${2:-$gw_addr}" "$1" "${3:-$lookup_token}"
}

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { if (NR == 0) print ""; else if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
fmt_ms() { # microseconds -> ms with 3 decimals, or n/a
	if [[ -z ${1:-} ]]; then printf 'n/a'; else awk -v u="$1" 'BEGIN { printf "%.3f", u / 1000 }'; fi
}
fmt_int() { if [[ -z ${1:-} ]]; then printf 'n/a'; else awk -v x="$1" 'BEGIN { printf "%.0f", x }'; fi; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.3f", a / b; else printf "n/a" }'; }
verdict() { # value op target
	awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
		if (v == "n/a" || v == "") { print "n/a"; exit }
		ok = (op == ">=") ? (v + 0 >= t + 0) : (v + 0 < t + 0)
		print ok ? "PASS" : "FAIL" }'
}

# ==================================================================================
((mem_entries >= 1000 && mem_entries <= 999900)) || die "BENCH_MEM_ENTRIES must be 1000..999900"
((rounds >= 1)) || die "BENCH_ROUNDS must be at least 1"
work=$(mktemp -d /tmp/cidgate-bench.XXXXXX)
chmod 755 "$work"

phase "tools and build"
ensure_tools
has_perf=0
if command -v perf >/dev/null 2>&1 && perf stat -e context-switches -x, -o /dev/null -- true 2>/dev/null; then
	has_perf=1
fi
cargo build --release --bin cidgate --example fixed_answer >&2
target=${CARGO_TARGET_DIR:-target}
cidgate=$target/release/cidgate
fixed=$target/release/examples/fixed_answer
[[ -x $cidgate && -x $fixed ]] || die "build did not produce $cidgate and $fixed"
if [[ -n $baseline ]]; then
	[[ -x $baseline ]] || die "BENCH_BASELINE=$baseline is not an executable"
	say "baseline: $baseline"
fi
say "wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}'), $(oha --version), pgbench from $pg_bin, perf $((has_perf)) "

phase "database"
cluster_started=1
# PostgreSQL on the server's core: the postmaster and every backend it forks.
base_url=$(taskset -c "$server_cpu" deploy/local/pg.sh start "$cluster" "$pg_port")
export RUST_LOG=warn

# seed_database BINARY DATABASE: migrates, creates tenant `bench`; prints its lookup
# and sync tokens on one line.
seed_database() {
	local bin=$1 name=$2 url=${base_url%/*}/$2 lookup sync
	psql_db "$base_url" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" -c "CREATE DATABASE $name"
	DATABASE_URL=$url "$bin" migrate >&2
	DATABASE_URL=$url "$bin" tenant create bench --region RO >&2
	lookup=$(DATABASE_URL=$url "$bin" token create --tenant bench --scope lookup)
	sync=$(DATABASE_URL=$url "$bin" token create --tenant bench --scope sync)
	[[ $lookup =~ ^[A-Za-z0-9._~-]+$ ]] || die "unexpected lookup token format from $bin"
	echo "$lookup $sync"
}
db_url=${base_url%/*}/$dbname
export DATABASE_URL=$db_url
read -r lookup_token sync_token < <(seed_database "$cidgate" "$dbname")
tenant_id=$(psql_db "$db_url" -At -c "SELECT id FROM tenants WHERE slug = 'bench'")
say "tenant id $tenant_id"
if [[ -n $baseline ]]; then
	base_db_url=${base_url%/*}/${dbname}_base
	read -r base_lookup_token base_sync_token < <(seed_database "$baseline" "${dbname}_base")
fi

phase "generate inputs"
csv=$work/contacts.csv
awk -v n="$contacts" 'BEGIN {
	print "id,name,phones"
	for (i = 1; i <= n; i++) printf "%d,Contact %d,0720%06d\n", i, i, i % 1000000
}' >"$csv"
# Batch files: NEW contacts 2000001.., phones 0725 + 6 digits; the first half for one
# sender, the second for two.
for ((b = 0; b < 2 * bulk_batches; b++)); do
	awk -v first=$((2000001 + b * batch_size)) -v n="$batch_size" 'BEGIN {
		printf "["
		for (i = 0; i < n; i++) {
			id = first + i
			printf "%s{\"op\":\"upsert\",\"id\":\"%d\",\"name\":\"Bulk %d\",\"phones\":[\"0725%06d\"]}", (i ? "," : ""), id, id, (id - 2000000) % 1000000
		}
		printf "]"
	}' >"$work/batch-$b.json"
done
say "$(wc -l <"$csv") CSV lines, $((2 * bulk_batches)) batch files of $batch_size"

# import BINARY DATABASE_URL: prints the rate in contacts/s. The import is the sync
# job's side: it runs on the load generator's core, PostgreSQL writes on the server's.
import() {
	local out t0 secs
	t0=$(now)
	out=$(DATABASE_URL=$2 timeout 900 taskset -c "$load_cpu" "$1" import --tenant bench "$csv")
	secs=$(elapsed_since "$t0")
	say "$1: $out"
	[[ $out == *"imported $contacts rows"* ]] || die "import did not report $contacts rows: $out"
	psql_db "$2" -c "VACUUM ANALYZE"
	awk -v n="$contacts" -v s="$secs" 'BEGIN { printf "%.0f\n", n / s }'
}
phase "import 1,000,000 contacts"
import_rate=$(import "$cidgate" "$db_url")
say "import: $import_rate contacts/s"
if [[ -n $baseline ]]; then
	base_import_rate=$(import "$baseline" "$base_db_url")
	say "import (baseline): $base_import_rate contacts/s"
fi

start_fixed() {
	WORKERS=1 taskset -c "$server_cpu" "$fixed" "$fixed_addr" >>"$work/fixed.log" 2>&1 &
	fixed_pid=$!
	pids+=("$fixed_pid")
	wait_http "$fixed_pid" "http://$fixed_addr/api/lookup" fixed_answer 30 || die "fixed_answer did not start"
}

phase "gateway start"
gw_pid=$(start_gateway "$work/gateway.log")
say "gateway ready (pid $gw_pid), known numbers: $(metric cidgate_known_numbers)"
body=$(curl -fsS --max-time 5 "$(lookup_url 0720000001)")
[[ $body == *'"Contact 1"'* ]] || die "known number 0720000001 not found: $body"
body=$(curl -fsS --max-time 5 "$(lookup_url 0739999999)")
[[ $body == *'"name":null'* ]] || die "unknown number 0739999999 not answered as unknown: $body"
if [[ -n $baseline ]]; then
	base_pid=$(start_gateway "$work/gateway-base.log" "$baseline" "$base_addr" "$base_db_url")
	body=$(curl -fsS --max-time 5 "$(lookup_url 0720000001 "$base_addr" "$base_lookup_token")")
	[[ $body == *'"Contact 1"'* ]] || die "baseline: known number 0720000001 not found: $body"
fi

phase "bulk writes through the batch API"
# post_batches FIRST STEP END ADDRESS TOKEN: posts batch files FIRST, FIRST + STEP, ...
# below END from the load generator's core; prints how many were created.
post_batches() {
	local first=$1 step=$2 end=$3 addr=$4 token=$5 b resp code created=0
	for ((b = first; b < end; b += step)); do
		resp=$(taskset -c "$load_cpu" curl -sS --max-time 300 -w '\n%{http_code}' -H "Authorization: Bearer $token" \
			-H 'Content-Type: application/json' --data-binary "@$work/batch-$b.json" \
			"http://$addr/api/v1/contacts/batch")
		code=${resp##*$'\n'}
		resp=${resp%$'\n'*}
		[[ $code == 200 ]] || die "batch $b answered $code: ${resp:0:500}"
		created=$((created + $(jq -r '.created // 0' <<<"$resp")))
	done
	echo "$created"
}
bulk_total=$((bulk_batches * batch_size))
# bulk ADDRESS TOKEN DATABASE_URL: prints the rates with one sender and with two.
# One sender: the gateway validates each batch, then PostgreSQL writes it, in series.
# Two senders (how a bulk sync job loads) overlap one's validation with the other's write.
bulk() {
	local addr=$1 token=$2 t0 created secs one two sender
	t0=$(now)
	created=$(post_batches 0 1 "$bulk_batches" "$addr" "$token")
	secs=$(elapsed_since "$t0")
	((created == bulk_total)) || die "one sender: $created created, expected $bulk_total"
	one=$(awk -v n="$bulk_total" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
	t0=$(now)
	post_batches "$bulk_batches" 2 $((2 * bulk_batches)) "$addr" "$token" >"$work/bulk-sender-1" &
	sender=$!
	pids+=("$sender")
	created=$(post_batches $((bulk_batches + 1)) 2 $((2 * bulk_batches)) "$addr" "$token")
	wait "$sender" || die "the first of two senders failed"
	forget_pid "$sender"
	created=$((created + $(cat "$work/bulk-sender-1")))
	secs=$(elapsed_since "$t0")
	((created == bulk_total)) || die "two senders: $created created, expected $bulk_total"
	two=$(awk -v n="$bulk_total" -v s="$secs" 'BEGIN { printf "%.0f", n / s }')
	psql_db "$3" -c "VACUUM ANALYZE"
	echo "$one $two"
}
read -r bulk_rate bulk2_rate < <(bulk "$gw_addr" "$sync_token" "$db_url")
say "bulk: one sender $bulk_rate contacts/s, two senders $bulk2_rate contacts/s; known numbers now $(metric cidgate_known_numbers)"
if [[ -n $baseline ]]; then
	read -r base_bulk_rate base_bulk2_rate < <(bulk "$base_addr" "$base_sync_token" "$base_db_url")
	say "bulk (baseline): one sender $base_bulk_rate contacts/s, two senders $base_bulk2_rate contacts/s"
fi

phase "ceiling without a wrk Lua script"
start_fixed
out=$work/wrk-ceiling-plain.txt
taskset -c "$load_cpu" wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency \
	"http://$fixed_addr/api/lookup?telephone=0730000000&dnid=0210000000&token=x" >"$out" 2>&1 ||
	die "wrk failed (ceiling without Lua)"
ceiling_plain_rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
say "ceiling without Lua: $ceiling_plain_rps req/s"

pgb_args=(-h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared -j 1
	-f "$here/lookup.pgbench" -D "tid=$tenant_id")
taskset -c "$load_cpu" "$pg_bin/pgbench" "${pgb_args[@]}" -c "$conns" -T 3 "$dbname" >"$work/pgbench-warm.txt" 2>&1 ||
	{
		cat "$work/pgbench-warm.txt" >&2
		die "pgbench warm-up failed"
	}

# run_pgbench KEY: the lookup query as fast as PostgreSQL answers, percentiles from its
# per-transaction log.
run_pgbench() {
	local key=$1 dir=$work/pgbench-$1
	mkdir -p "$dir"
	(cd "$dir" && taskset -c "$load_cpu" "$pg_bin/pgbench" "${pgb_args[@]}" -c "${run_conns:-$conns}" -T "$duration" -l --log-prefix=pgblog \
		"$dbname" >"$dir/out.txt" 2>&1) || {
		cat "$dir/out.txt" >&2
		die "pgbench failed"
	}
	RPS[$key]=$(awk '/^tps = / { print $3; exit }' "$dir/out.txt")
	read -r "P50[$key]" "P99[$key]" "P999[$key]" < <(cat "$dir"/pgblog.* | awk '{ print $3 }' | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) { print "", "", ""; exit }
			i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
			i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
			i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
			print v[i50], v[i99], v[i999]
		}')
	NOTE[$key]="TPS; "
	say "$key: ${RPS[$key]} tps, p50 ${P50[$key]} us, p99 ${P99[$key]} us, p99.9 ${P999[$key]} us"
}

# gateway_round PREFIX ROUND ADDRESS PID TOKEN: the lookup scenarios against one gateway.
# "All new" scenarios walk a different slice of their range in every round.
gateway_round() {
	local p=$1 round=$2 gw_url=http://$3 i=$(($2 - 1))
	server_pid=$4
	wrk_token=$5
	local kspan=$((390000 / rounds)) mspan=$((200000 / rounds)) uspan=$((4000000 / rounds))
	# b. cached hits: BENCH_HOT known numbers; unknown numbers after their first miss:
	#    100 never-seeded numbers; both warmed first (the first pass over the hot
	#    numbers asks the database).
	run_gw - 3 "$gw_url" cycle 1 "$hot" 0 1
	run_gw "${p}cached_r$round" "$duration" "$gw_url" cycle 1 "$hot" 0 1
	run_gw - 1 "$gw_url" ucycle 1 1 9000000 100
	run_gw "${p}unknown_repeat_r$round" "$duration" "$gw_url" ucycle 1 1 9000000 100
	# b, as XML (type=xml, issue 35): the same numbers, already warm.
	run_gw "${p}cached_xml_r$round" "$duration" "$gw_url" cycle 1 100 0 1 3 'type=xml&'
	run_gw "${p}unknown_repeat_xml_r$round" "$duration" "$gw_url" ucycle 1 1 9000000 100 3 'type=xml&'
	# c. known numbers never asked before: 100001..490000.
	run_gw "${p}known_new_r$round" "$duration" "$gw_url" known $((100001 + i * kspan)) "$kspan" 0 1
	# d. unknown numbers never asked before: 073 + 7 digits, 0..3,999,999.
	run_gw "${p}unknown_new_r$round" "$duration" "$gw_url" unknown 1 1 $((i * uspan)) "$uspan"
	# e. 30% known-new (500001..700000) / 70% unknown-new (4,000,000..7,999,999).
	run_gw "${p}mix_r$round" "$duration" "$gw_url" mix $((500001 + i * mspan)) "$mspan" $((4000000 + i * uspan)) "$uspan" 3
}

lookup_scenarios=(cached unknown_repeat cached_xml unknown_repeat_xml known_new unknown_new mix)
phase "interleaved rounds"
for ((r = 1; r <= rounds; r++)); do
	say "-- round $r of $rounds"
	server_pid=$fixed_pid
	wrk_token=x
	run_wrk - 1 "http://$fixed_addr" cycle 1 100 0 1
	run_wrk "ceiling_r$r" "$duration" "http://$fixed_addr" cycle 1 100 0 1
	gateway_round "" "$r" "$gw_addr" "$gw_pid" "$lookup_token"
	if [[ -n $baseline ]]; then
		gateway_round base_ "$r" "$base_addr" "$base_pid" "$base_lookup_token"
	fi
	run_pgbench "pgbench_r$r"
done
# The second, labelled table: the same machine at BENCH_CONNS_SECOND connections, its
# own interleaved rounds, and number ranges no other scenario walks.
second_scenarios=()
if ((conns_second > 0)); then
	second_scenarios=(w_ceiling w_cached w_mix w_pgbench)
	phase "interleaved rounds at $conns_second connections"
	run_conns=$conns_second
	for ((r = 1; r <= rounds; r++)); do
		say "-- round $r of $rounds ($conns_second connections)"
		i=$((r - 1))
		server_pid=$fixed_pid
		wrk_token=x
		run_wrk "w_ceiling_r$r" "$duration" "http://$fixed_addr" cycle 1 100 0 1
		server_pid=$gw_pid
		wrk_token=$lookup_token
		run_gw "w_cached_r$r" "$duration" "http://$gw_addr" cycle 1 "$hot" 0 1
		run_gw "w_mix_r$r" "$duration" "http://$gw_addr" mix $((700001 + i * 200000 / rounds)) $((200000 / rounds)) \
			$((8000000 + i * 1000000 / rounds)) $((1000000 / rounds)) 3
		run_pgbench "w_pgbench_r$r"
	done
	run_conns=
fi

# Medians of the rounds for every figure; ratios are taken within each round (both
# sides saw the same machine) and their median reported.
keys=(ceiling pgbench "${lookup_scenarios[@]}" "${second_scenarios[@]}")
[[ -z $baseline ]] || for k in "${lookup_scenarios[@]}"; do keys+=("base_$k"); done
for k in "${keys[@]}"; do
	for field in RPS P50 P99 P999 CPU CSW USR SYS CORE; do
		# shellcheck disable=SC2178 # a name reference to one of the tables
		declare -n table=$field
		values=()
		for ((r = 1; r <= rounds; r++)); do values+=("${table[${k}_r$r]:-}"); done
		# shellcheck disable=SC2004 # $k is a key of an associative array
		table[$k]=$(median <<<"${values[*]}")
		unset -n table
	done
	notes=
	for ((r = 1; r <= rounds; r++)); do
		[[ -z ${NOTE[${k}_r$r]:-} ]] || notes+="round $r: ${NOTE[${k}_r$r]}"
	done
	NOTE[$k]=$notes
done
# round_ratio A B: median over the rounds of A_rN / B_rN.
round_ratio() {
	local values=() r
	for ((r = 1; r <= rounds; r++)); do values+=("$(ratio "${RPS[${1}_r$r]}" "${RPS[${2}_r$r]}")"); done
	median <<<"${values[*]}"
}
r_cached=$(round_ratio cached ceiling)
r_repeat=$(round_ratio unknown_repeat ceiling)
r_unknown=$(round_ratio unknown_new ceiling)
r_known=$(round_ratio known_new pgbench)
r_mix=$(round_ratio mix pgbench)
if ((conns_second > 0)); then
	r_w_cached=$(round_ratio w_cached w_ceiling)
	r_w_mix=$(round_ratio w_mix w_pgbench)
fi

phase "fixed rate"
# g. fixed rate: cached hit, repeated unknown number, and the ceiling for reference.
server_pid=$fixed_pid
run_oha rate_ceiling "$(lookup_url 0739999999 "$fixed_addr")"
stop_pid "$fixed_pid"
forget_pid "$fixed_pid"
server_pid=$gw_pid
curl -fsS -o /dev/null --max-time 5 "$(lookup_url 0720000001)"
run_oha rate_cached "$(lookup_url 0720000001)"
run_oha rate_unknown "$(lookup_url 0739999999)"
phase "lookups while the CRM syncs"
# Lookups at a fixed rate (random numbers, half known, half unknown) while the same
# tenant imports 1,000,000 new contacts, then while two senders post 10,000-contact
# batches: the p99 a caller waits while the CRM syncs.
sync_csv=$work/contacts-sync.csv
awk -v n="$contacts" 'BEGIN {
	print "id,name,phones"
	for (i = 1; i <= n; i++) printf "%d,Synced %d,0740%06d\n", 3000000 + i, i, i % 1000000
}' >"$sync_csv"
for ((b = 0; b < bulk_batches; b++)); do
	awk -v first=$((4000001 + b * batch_size)) -v n="$batch_size" 'BEGIN {
		printf "["
		for (i = 0; i < n; i++) {
			id = first + i
			printf "%s{\"op\":\"upsert\",\"id\":\"%d\",\"name\":\"Stream %d\",\"phones\":[\"0745%06d\"]}", (i ? "," : ""), id, id, (id - 4000000) % 1000000
		}
		printf "]"
	}' >"$work/stream-$b.json"
done
# run_oha_during KEY SECONDS: random lookups at BENCH_SYNC_RATE for SECONDS.
run_oha_during() {
	local key=$1 secs=$2 out=$work/oha-$1.json before after
	# A regular expression (oha takes dots literally; the query's `?` is escaped).
	local url="http://$gw_addr/api/lookup\\?telephone=07[23]0[0-9]{6}&dnid=0210000000&token=$lookup_token"
	before=$(metric cidgate_degraded_answers_total)
	taskset -c "$load_cpu" oha -q "$sync_rate" --latency-correction -z "${secs}s" -c 16 --no-tui \
		--output-format json --rand-regex-url "$url" >"$out" 2>"$out.err" || {
		cat "$out.err" >&2
		die "oha failed ($key)"
	}
	after=$(metric cidgate_degraded_answers_total)
	RPS[$key]=$(jq -r '.summary.requestsPerSec' "$out")
	P50[$key]=$(jq -r '.latencyPercentiles.p50 * 1e6 | floor' "$out")
	P99[$key]=$(jq -r '.latencyPercentiles.p99 * 1e6 | floor' "$out")
	P999[$key]=$(jq -r '.latencyPercentiles["p99.9"] * 1e6 | floor' "$out")
	NOTE[$key]="$((after - before)) degraded answers; "
	say "$key: ${RPS[$key]} req/s, p50 ${P50[$key]} us, p99 ${P99[$key]} us, p99.9 ${P999[$key]} us, ${NOTE[$key]}"
}
# The lookups run for most of what the sync is expected to take (from the rates
# measured above), so that every one of them overlaps it.
during_import=$(awk -v n="$contacts" -v r="$import_rate" 'BEGIN { s = int(n / r * 0.8); print (s < 3) ? 3 : s }')
DATABASE_URL=$db_url taskset -c "$load_cpu" "$cidgate" import --tenant bench "$sync_csv" >"$work/sync-import.txt" 2>&1 &
sync_import=$!
pids+=("$sync_import")
run_oha_during sync_import "$during_import"
wait "$sync_import" || die "the import during lookups failed: $(tail -n 3 "$work/sync-import.txt")"
forget_pid "$sync_import"
during_batches=$(awk -v n="$bulk_total" -v r="$bulk2_rate" 'BEGIN { s = int(n / r * 0.8); print (s < 3) ? 3 : s }')
stream() { # first: posts stream files first, first + 2, ...
	local b
	for ((b = $1; b < bulk_batches; b += 2)); do
		taskset -c "$load_cpu" curl -fsS -o /dev/null --max-time 300 -H "Authorization: Bearer $sync_token" \
			-H 'Content-Type: application/json' --data-binary "@$work/stream-$b.json" \
			"http://$gw_addr/api/v1/contacts/batch" || return 1
	done
}
stream 0 &
sender_a=$!
stream 1 &
sender_b=$!
pids+=("$sender_a" "$sender_b")
run_oha_during sync_batches "$during_batches"
wait "$sender_a" || die "a batch sender failed during lookups"
wait "$sender_b" || die "a batch sender failed during lookups"
forget_pid "$sender_a"
forget_pid "$sender_b"

gw_hwm_kb=$(proc_kb "$gw_pid" VmHWM)
gw_rss_kb=$(proc_kb "$gw_pid" VmRSS)
# Lookups the log could not keep up with are dropped and counted, never waited for.
log_written=$(metric cidgate_lookup_log_written_total)
log_dropped=$(metric cidgate_lookup_log_dropped_total)
lines_dropped=$(metric cidgate_log_lines_dropped_total)
say "lookup log: $log_written written, $log_dropped dropped; log lines dropped: $lines_dropped"
say "gateway VmHWM ${gw_hwm_kb} kB, VmRSS ${gw_rss_kb} kB"
stop_pid "$gw_pid"
forget_pid "$gw_pid"
if [[ -n $baseline ]]; then
	stop_pid "$base_pid"
	forget_pid "$base_pid"
fi

phase "memory per known number"
# A gateway on an empty database against one on the bench database: the difference in
# RSS once ready is the known-number index (and the little else that grows with data).
seed_database "$cidgate" "${dbname}_empty" >/dev/null
empty_pid=$(start_gateway "$work/gateway-empty.log" "$cidgate" "$gw_addr" "${base_url%/*}/${dbname}_empty")
empty_rss=$(proc_kb "$empty_pid" VmRSS)
stop_pid "$empty_pid"
forget_pid "$empty_pid"
gw_pid=$(start_gateway "$work/gateway-mem.log")
server_pid=$gw_pid
full_rss=$(proc_kb "$gw_pid" VmRSS)
known=$(metric cidgate_known_numbers)
bytes_per_number=$(awk -v a="$empty_rss" -v b="$full_rss" -v n="$known" 'BEGIN { if (n > 0) printf "%.1f", (b - a) * 1024 / n }')
say "RSS empty ${empty_rss} kB, with $known known numbers ${full_rss} kB: $bytes_per_number bytes per number"

phase "memory per cached entry"
# Touch the lookup path once so its one-off allocations are not counted per entry
# (100 numbers above the walked range: 999900..999999).
wrk_token=$lookup_token
run_gw - 2 "http://$gw_addr" cycle 999900 100 0 1
rss0=$(proc_kb "$gw_pid" VmRSS)
entries0=$(metric cidgate_cache_entries)
mem_rate=${RPS[known_new]%.*}
((mem_rate > 500)) || mem_rate=500
mem_secs=$((mem_entries * 10 / (mem_rate * 7) + 3))
((mem_secs <= 300)) || mem_secs=300
say "walking $mem_entries known numbers once (up to $mem_secs s)"
run_gw memwalk "$mem_secs" "http://$gw_addr" once 0 "$mem_entries" 0 1
rss1=$(proc_kb "$gw_pid" VmRSS)
entries1=$(metric cidgate_cache_entries)
weighted1=$(metric cidgate_cache_weighted_bytes)
mem_hwm_kb=$(proc_kb "$gw_pid" VmHWM)
new_entries=$((entries1 - entries0))
if ((new_entries > 0)); then
	bytes_per_entry=$(((rss1 - rss0) * 1024 / new_entries))
	weighted_per_entry=$((weighted1 / entries1))
else
	bytes_per_entry=
	weighted_per_entry=
fi
say "RSS ${rss0} kB -> ${rss1} kB, cache entries $entries0 -> $entries1: ${bytes_per_entry:-n/a} bytes/entry (cache's own estimate ${weighted_per_entry:-n/a})"
((new_entries >= mem_entries * 95 / 100)) || say "warning: only $new_entries new cache entries for $mem_entries numbers walked"
stop_pid "$gw_pid"
forget_pid "$gw_pid"
phase_end

# ==================================================================================
total_secs=$(elapsed_since "$t_start")
p99_cached_ms=$(fmt_ms "${P99[rate_cached]}")
p99_unknown_ms=$(fmt_ms "${P99[rate_unknown]}")

row() { # key label
	printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(fmt_int "${RPS[$1]:-}")" \
		"$(fmt_ms "${P50[$1]:-}")" "$(fmt_ms "${P99[$1]:-}")" "$(fmt_ms "${P999[$1]:-}")" "${CPU[$1]:-}" \
		"${USR[$1]:-}" "${SYS[$1]:-}" "${CORE[$1]:-}" "${CSW[$1]:-}" "${NOTE[$1]:-}"
}
table_head() {
	printf '| scenario | req/s | p50 ms | p99 ms | p99.9 ms | server CPU %% | server user µs/req | server kernel µs/req | core %s busy µs/req | context switches per request | notes |\n' "$server_cpu"
	printf '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n'
}
rounds_row() { # key label
	local r cells=
	for ((r = 1; r <= rounds; r++)); do cells+=" $(fmt_int "${RPS[${1}_r$r]:-}") |"; done
	printf '| %s |%s\n' "$2" "$cells"
}
labels=(
	"cached:b. cached hits ($hot numbers, warmed)"
	"unknown_repeat:b. unknown numbers after their first miss (100 numbers, warmed)"
	"cached_xml:b. cached hits answered as XML (type=xml)"
	"unknown_repeat_xml:b. unknown numbers after their first miss, as XML (type=xml)"
	"known_new:c. known numbers, all new (DB)"
	"unknown_new:d. unknown numbers, all new"
	"mix:e. mix 30% known-new / 70% unknown-new"
)

mkdir -p "$here/results"
report=$here/results/latest.md
{
	printf '# cidgate benchmark\n\n'
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf -- '- commit: %s%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' (with uncommitted changes)')"
	[[ -z $baseline ]] || printf -- '- baseline (A/B): %s\n' "$baseline"
	printf -- '- machine: %s, %s cores; gateway, ceiling and PostgreSQL on core %s; load generators (wrk, oha, pgbench, import, batch senders) on core %s\n' \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" "$server_cpu" "$load_cpu"
	printf -- '- the gateway in its default configuration (log level, lookup log on, one worker as it sees one core), rate limits lifted\n'
	printf -- '- load: %s connections, %s s per run, wrk %s thread(s); fixed-rate runs: oha -q %s\n' \
		"$conns" "$duration" "$wrk_threads" "$rate"
	printf -- '- %s interleaved rounds (ceiling, gateway scenarios%s, pgbench); figures are medians of the rounds, ratios medians of per-round ratios\n' \
		"$rounds" "${baseline:+, baseline scenarios}"
	printf -- '- load average (1 min) at start / end: %s / %s (other work on the machine skews every figure)\n' \
		"$load_start" "$(cut -d' ' -f1 /proc/loadavg)"
	printf -- '- data: %s imported contacts + %s through the batch API; gateway pool size %s\n\n' \
		"$contacts" "$((2 * bulk_total))" "${CIDGATE_DB_POOL_SIZE:-default}"
	printf '## The reference set-up: %s connections, wrk %s thread(s)\n\n' "$conns" "$wrk_threads"
	printf 'Server user/kernel µs per request: CPU time of the process under test (gateway or ceiling; pgbench: none) over the requests it answered; core busy: all work on core %s (PostgreSQL and the kernel included) per request.\n\n' "$server_cpu"
	table_head
	row ceiling "a. ceiling: fixed_answer example"
	for l in "${labels[@]}"; do row "${l%%:*}" "${l#*:}"; done
	row pgbench "f. pgbench, lookup query (-M prepared)"
	row rate_ceiling "g. ceiling (fixed_answer) at fixed $rate req/s (oha)"
	row rate_cached "g. cached hit at fixed $rate req/s (oha)"
	row rate_unknown "g. repeated unknown at fixed $rate req/s (oha)"
	row sync_import "h. random lookups at $sync_rate req/s during an import of $contacts contacts (oha)"
	row sync_batches "h. random lookups at $sync_rate req/s while two senders post batches of $batch_size (oha)"
	if ((conns_second > 0)); then
		printf '\n## The same machine at %s connections (not the reference set-up)\n\n' "$conns_second"
		table_head
		row w_ceiling "a. ceiling: fixed_answer example"
		row w_cached "b. cached hits ($hot numbers, warmed)"
		row w_mix "e. mix 30% known-new / 70% unknown-new"
		row w_pgbench "f. pgbench, lookup query (-M prepared)"
		printf '\ncached / ceiling %s, mix / pgbench %s (medians of per-round ratios)\n' "$r_w_cached" "$r_w_mix"
	fi
	printf '\nEach round (req/s):\n\n| scenario |'
	for ((r = 1; r <= rounds; r++)); do printf ' round %s |' "$r"; done
	printf '\n| --- |'
	for ((r = 1; r <= rounds; r++)); do printf ' ---: |'; done
	printf '\n'
	rounds_row ceiling "a. ceiling"
	for l in "${labels[@]}"; do
		rounds_row "${l%%:*}" "${l#*:}"
		[[ -z $baseline ]] || rounds_row "base_${l%%:*}" "${l#*:} (baseline)"
	done
	rounds_row pgbench "f. pgbench"
	if [[ -n $baseline ]]; then
		printf '\nA/B: this build against the baseline, median of per-round ratios (1.000 = no change):\n\n'
		printf '| scenario | this build req/s | baseline req/s | this / baseline |\n| --- | ---: | ---: | ---: |\n'
		for l in "${labels[@]}"; do
			k=${l%%:*}
			printf '| %s | %s | %s | %s |\n' "${l#*:}" "$(fmt_int "${RPS[$k]}")" "$(fmt_int "${RPS[base_$k]}")" "$(round_ratio "$k" "base_$k")"
		done
		printf '| import (contacts/s) | %s | %s | %s |\n' "$import_rate" "$base_import_rate" "$(ratio "$import_rate" "$base_import_rate")"
		printf '| bulk, two senders (contacts/s) | %s | %s | %s |\n' "$bulk2_rate" "$base_bulk2_rate" "$(ratio "$bulk2_rate" "$base_bulk2_rate")"
	fi
	printf '\n'
	printf '| figure | value |\n| --- | ---: |\n'
	printf '| ceiling without a wrk Lua script (req/s) | %s |\n' "$(fmt_int "$ceiling_plain_rps")"
	printf '| import rate (contacts/s) | %s |\n' "$import_rate"
	printf '| bulk rate, batch API, one sender, batches of %s (contacts/s) | %s |\n' "$batch_size" "$bulk_rate"
	printf '| bulk rate, two senders (contacts/s) | %s |\n' "$bulk2_rate"
	printf '| lookup log entries written / dropped during the rounds (the writer may lag) | %s / %s |\n' "$log_written" "$log_dropped"
	printf '| request log lines dropped (cidgate_log_lines_dropped_total) | %s |\n' "$lines_dropped"
	printf '| gateway peak RSS, VmHWM after the rounds (MiB) | %s |\n' "$(awk -v k="$gw_hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| gateway peak RSS, VmHWM of the memory run (MiB) | %s |\n' "$(awk -v k="$mem_hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| RSS when ready: empty database -> %s known numbers (MiB) | %s -> %s |\n' "$known" \
		"$(awk -v k="$empty_rss" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="$full_rss" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| memory run: RSS before -> after (MiB) | %s -> %s |\n' \
		"$(awk -v k="$rss0" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="$rss1" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| memory run: cidgate_cache_entries before -> after | %s -> %s |\n' "$entries0" "$entries1"
	printf '| cidgate_cache_weighted_bytes / entries (bytes) | %s |\n' "${weighted_per_entry:-n/a}"
	printf '\n| target | measured | goal | verdict |\n| --- | ---: | ---: | --- |\n'
	printf '| cached / ceiling | %s | >= 0.50 | %s |\n' "$r_cached" "$(verdict "$r_cached" '>=' 0.5)"
	printf '| unknown after the first miss / ceiling | %s | >= 0.50 | %s |\n' "$r_repeat" "$(verdict "$r_repeat" '>=' 0.5)"
	printf '| (not a target) unknown-new / ceiling | %s | | |\n' "$r_unknown"
	printf '| p99 cached at %s req/s (ms) | %s | < 1 | %s |\n' "$rate" "$p99_cached_ms" "$(verdict "$p99_cached_ms" '<' 1)"
	printf '| p99 unknown at %s req/s (ms) | %s | < 1 | %s |\n' "$rate" "$p99_unknown_ms" "$(verdict "$p99_unknown_ms" '<' 1)"
	printf '| known-new / pgbench | %s | >= 0.60 | %s |\n' "$r_known" "$(verdict "$r_known" '>=' 0.6)"
	for k in sync_import sync_batches; do
		printf '| p99 of lookups during the %s (ms; %s) | %s | < 10 | %s |\n' "${k#sync_}" "${NOTE[$k]% ; }" \
			"$(fmt_ms "${P99[$k]}")" "$(verdict "$(fmt_ms "${P99[$k]}")" '<' 10)"
	done
	printf '| mix / pgbench | %s | >= 1.20 | %s |\n' "$r_mix" "$(verdict "$r_mix" '>=' 1.2)"
	printf '| import (contacts/s) | %s | >= 50000 | %s |\n' "$import_rate" "$(verdict "$import_rate" '>=' 50000)"
	printf '| bulk writes, batch API, two senders (contacts/s) | %s | >= 50000 | %s |\n' "$bulk2_rate" "$(verdict "$bulk2_rate" '>=' 50000)"
	printf '| bytes of RSS per cached entry | %s | <= 400 | %s |\n' "${bytes_per_entry:-n/a}" "$(verdict "${bytes_per_entry:-n/a}" '<' 401)"
	printf '| bytes of RSS per known number | %s | <= 24 | %s |\n' "${bytes_per_number:-n/a}" "$(verdict "${bytes_per_number:-n/a}" '<' 24.05)"
	printf '\n| phase | seconds |\n| --- | ---: |\n'
	for i in "${!phase_names[@]}"; do
		printf '| %s | %s |\n' "${phase_names[$i]}" "${phase_secs[$i]}"
	done
	printf '| total | %s |\n' "$total_secs"
} >"$report"

cat "$report"
say "report written to ${report#"$root"/}"
