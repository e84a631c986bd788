#!/usr/bin/env bash
# Benchmark cidgate on this machine and write deploy/bench/results/latest.md.
#
#   deploy/bench/run.sh
#
# Seeds a fresh database (1,000,000 contacts through `cidgate import`), times bulk
# writes through the batch API, then measures lookups against the gateway pinned on
# core 0 with the load generator on core 1, compared with two references: the
# fixed-answer actix-web example (the HTTP ceiling) and pgbench running the lookup
# query. See deploy/bench/README.md for what each figure means.
#
# Uses the private PostgreSQL cluster `bench` (deploy/local/pg.sh, port
# BENCH_PG_PORT, default 25435) and recreates the database cidgate_bench in it on
# every run. Everything it starts is stopped on exit. Installs wrk (apt-get, as root),
# oha (cargo install) and jq (apt-get) when they are missing.
#
# Knobs (environment): BENCH_CONNS (64), BENCH_DURATION seconds (10),
# BENCH_WRK_THREADS (1), BENCH_RATE for the fixed-rate runs (20000),
# BENCH_MEM_ENTRIES (250000), BENCH_BULK_BATCHES of 10,000 (20),
# BENCH_GW_PORT (18080), BENCH_FIXED_PORT (18081), BENCH_PG_PORT (25435),
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), CIDGATE_DB_POOL_SIZE (server default).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
here=$root/deploy/bench
prog=bench/run.sh

conns=${BENCH_CONNS:-64}
duration=${BENCH_DURATION:-10}
wrk_threads=${BENCH_WRK_THREADS:-1}
rate=${BENCH_RATE:-20000}
mem_entries=${BENCH_MEM_ENTRIES:-250000} # at most 999,900 (seeded numbers 0..999,899)
bulk_batches=${BENCH_BULK_BATCHES:-20}
batch_size=10000
contacts=1000000 # known numbers are 0720 + 6 digits: at most 999,999 + 1
pg_port=${BENCH_PG_PORT:-25435}
gw_addr=127.0.0.1:${BENCH_GW_PORT:-18080}
fixed_addr=127.0.0.1:${BENCH_FIXED_PORT:-18081}
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

# Sum of every sample of a metric (all label sets) from /metrics.
metric() {
	curl -fsS --max-time 10 "http://$gw_addr/metrics" |
		awk -v m="$1" '$1 == m || index($1, m "{") == 1 { s += $2 } END { printf "%.0f\n", s }'
}

# CPU time (ticks) the process has used, user + system.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
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

start_gateway() { # log file; sets gw_pid
	# The per-tenant lookup and per-token sync rate limits would answer most of the
	# benchmark's requests with 429: lift them unless the caller set their own.
	CIDGATE_LISTEN=$gw_addr CIDGATE_WORKERS=1 RUST_LOG=warn \
		CIDGATE_LOOKUP_RATE=${CIDGATE_LOOKUP_RATE:-1000000000} CIDGATE_SYNC_RATE=${CIDGATE_SYNC_RATE:-1000000000} \
		taskset -c "$server_cpu" "$cidgate" serve >"$1" 2>&1 &
	gw_pid=$!
	server_pid=$gw_pid
	pids+=("$gw_pid")
	if ! wait_http "$gw_pid" "http://$gw_addr/readyz" gateway 240; then
		tail -n 30 "$1" >&2 || true
		die "the gateway did not become ready"
	fi
}

# Result tables, by scenario key.
declare -A RPS P50 P99 P999 NOTE CPU

# run_wrk KEY SECONDS BASE_URL MODE KBASE KSPAN UBASE USPAN [KNOWN_PER_10]
# With KEY "-" the run is a warm-up and its figures are not kept.
run_wrk() {
	local key=$1 secs=$2 url=$3 mode=$4 out line kv k v
	shift 4
	out=$work/wrk-${key//[^a-z0-9]/_}-$mode-$(date +%s%N).txt
	local c0 t0
	c0=$(cpu_ticks "$server_pid")
	t0=$(now)
	if ! taskset -c "$load_cpu" timeout $((secs + 60)) wrk -t "$wrk_threads" -c "$conns" -d "${secs}s" \
		--timeout 5s -s "$here/walk.lua" "$url" -- "$mode" "$lookup_token" "$wrk_threads" "$@" >"$out" 2>&1; then
		cat "$out" >&2
		die "wrk failed ($key)"
	fi
	line=$(grep '^RESULT ' "$out" | tail -n 1) || {
		cat "$out" >&2
		die "no RESULT line from wrk ($key)"
	}
	[[ $key == - ]] && return 0
	server_cpu_pct "$key" "$c0" "$t0"
	local -A r=()
	for kv in ${line#RESULT }; do
		k=${kv%%=*}
		v=${kv#*=}
		r[$k]=$v
	done
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

# How busy the server under test was during a run, in % of one core: well below 100
# in a CPU-bound run means something else took its core.
server_cpu_pct() { # key ticks_before time_before
	CPU[$1]=$(awk -v a="$2" -v b="$(cpu_ticks "$server_pid")" -v t0="$3" -v t1="$(now)" -v hz="$clk_tck" \
		'BEGIN { printf "%.0f", (b - a) / hz / (t1 - t0) * 100 }')
}

# A gateway run that also records how many answers were degraded meanwhile.
run_gw() {
	local key=$1 before after
	before=$(metric cidgate_degraded_answers_total)
	run_wrk "$@"
	after=$(metric cidgate_degraded_answers_total)
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

lookup_url() { # number [address]
	printf 'http://%s/api/lookup?telephone=%s&dnid=0210000000&token=%s' "${2:-$gw_addr}" "$1" "$lookup_token"
}

min_of() { awk -v a="$1" -v b="$2" 'BEGIN { print (a < b) ? a : b }'; }
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
work=$(mktemp -d /tmp/cidgate-bench.XXXXXX)
chmod 755 "$work"

phase "tools and build"
ensure_tools
cargo build --release --bin cidgate --example fixed_answer >&2
target=${CARGO_TARGET_DIR:-target}
cidgate=$target/release/cidgate
fixed=$target/release/examples/fixed_answer
[[ -x $cidgate && -x $fixed ]] || die "build did not produce $cidgate and $fixed"
say "wrk $(wrk -v 2>&1 | head -n 1 | awk '{print $2}'), $(oha --version), pgbench from $pg_bin"

phase "database"
cluster_started=1
base_url=$(deploy/local/pg.sh start "$cluster" "$pg_port")
psql_db "$base_url" -c "DROP DATABASE IF EXISTS $dbname WITH (FORCE)" -c "CREATE DATABASE $dbname"
db_url=${base_url%/*}/$dbname
export DATABASE_URL=$db_url
export RUST_LOG=warn
"$cidgate" migrate >&2
"$cidgate" tenant create bench --region RO >&2
lookup_token=$("$cidgate" token create --tenant bench --scope lookup)
sync_token=$("$cidgate" token create --tenant bench --scope sync)
[[ $lookup_token =~ ^[A-Za-z0-9._~-]+$ ]] || die "unexpected lookup token format"
tenant_id=$(psql_db "$db_url" -At -c "SELECT id FROM tenants WHERE slug = 'bench'")
say "tenant id $tenant_id"

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

phase "import 1,000,000 contacts"
t0=$(now)
import_out=$(timeout 900 "$cidgate" import --tenant bench "$csv")
import_secs=$(elapsed_since "$t0")
say "$import_out"
[[ $import_out == *"imported $contacts rows"* ]] || die "import did not report $contacts rows: $import_out"
import_rate=$(awk -v n="$contacts" -v s="$import_secs" 'BEGIN { printf "%.0f", n / s }')
say "import: $contacts contacts in $import_secs s = $import_rate contacts/s"
psql_db "$db_url" -c "VACUUM ANALYZE"

start_fixed() {
	WORKERS=1 taskset -c "$server_cpu" "$fixed" "$fixed_addr" >>"$work/fixed.log" 2>&1 &
	fixed_pid=$!
	server_pid=$fixed_pid
	pids+=("$fixed_pid")
	wait_http "$fixed_pid" "http://$fixed_addr/api/lookup" fixed_answer 30 || die "fixed_answer did not start"
}

phase "ceiling: fixed_answer example"
start_fixed
run_wrk - 2 "http://$fixed_addr" cycle 1 100 0 1
run_wrk ceiling1 "$duration" "http://$fixed_addr" cycle 1 100 0 1
# The same without a Lua script, to show how much the load generator itself costs.
out=$work/wrk-ceiling-plain.txt
taskset -c "$load_cpu" wrk -t "$wrk_threads" -c "$conns" -d "${duration}s" --latency \
	"http://$fixed_addr/api/lookup?telephone=0730000000&dnid=0210000000&token=x" >"$out" 2>&1 ||
	die "wrk failed (ceiling without Lua)"
ceiling_plain_rps=$(awk '$1 == "Requests/sec:" { print $2 }' "$out")
say "ceiling without Lua: $ceiling_plain_rps req/s"
# The fixed-rate reference: what the load generator and the HTTP stack alone add.
run_oha rate_ceiling "$(lookup_url 0739999999 "$fixed_addr")"
stop_pid "$fixed_pid"
forget_pid "$fixed_pid"

phase "gateway start"
start_gateway "$work/gateway.log"
known=$(metric cidgate_known_numbers)
say "gateway ready (pid $gw_pid), known numbers: $known"
body=$(curl -fsS --max-time 5 "$(lookup_url 0720000001)")
[[ $body == *'"Contact 1"'* ]] || die "known number 0720000001 not found: $body"
body=$(curl -fsS --max-time 5 "$(lookup_url 0739999999)")
[[ $body == *'"name":null'* ]] || die "unknown number 0739999999 not answered as unknown: $body"

phase "bulk writes through the batch API"
# Posts batch files first, first + step, ... below end; prints how many were created.
post_batches() {
	local first=$1 step=$2 end=$3 b resp code created=0
	for ((b = first; b < end; b += step)); do
		resp=$(curl -sS --max-time 300 -w '\n%{http_code}' -H "Authorization: Bearer $sync_token" \
			-H 'Content-Type: application/json' --data-binary "@$work/batch-$b.json" \
			"http://$gw_addr/api/v1/contacts/batch")
		code=${resp##*$'\n'}
		resp=${resp%$'\n'*}
		[[ $code == 200 ]] || die "batch $b answered $code: ${resp:0:500}"
		created=$((created + $(jq -r '.created // 0' <<<"$resp")))
	done
	echo "$created"
}
bulk_total=$((bulk_batches * batch_size))
# One sender: the gateway validates each batch, then PostgreSQL writes it, in series.
# Two senders (how a bulk sync job loads) overlap one's validation with the other's write.
t0=$(now)
created=$(post_batches 0 1 "$bulk_batches")
bulk_secs=$(elapsed_since "$t0")
bulk_rate=$(awk -v n="$bulk_total" -v s="$bulk_secs" 'BEGIN { printf "%.0f", n / s }')
say "bulk, one sender: $bulk_total contacts ($created created) in $bulk_secs s = $bulk_rate contacts/s"
((created == bulk_total)) || die "one sender: $created created, expected $bulk_total"
t0=$(now)
post_batches "$bulk_batches" 2 $((2 * bulk_batches)) >"$work/bulk-sender-1" &
sender=$!
pids+=("$sender")
created=$(post_batches $((bulk_batches + 1)) 2 $((2 * bulk_batches)))
wait "$sender" || die "the first of two senders failed"
forget_pid "$sender"
created=$((created + $(cat "$work/bulk-sender-1")))
bulk2_secs=$(elapsed_since "$t0")
bulk2_rate=$(awk -v n="$bulk_total" -v s="$bulk2_secs" 'BEGIN { printf "%.0f", n / s }')
say "bulk, two senders: $bulk_total contacts ($created created) in $bulk2_secs s = $bulk2_rate contacts/s; known numbers now $(metric cidgate_known_numbers)"
((created == bulk_total)) || die "two senders: $created created, expected $bulk_total"
psql_db "$db_url" -c "VACUUM ANALYZE"

phase "gateway lookups"
gw="http://$gw_addr"
# b. cached hits: 100 known numbers, warmed first.
run_gw - 3 "$gw" cycle 1 100 0 1
run_gw cached "$duration" "$gw" cycle 1 100 0 1
# b. unknown numbers after their first miss: 100 never-seeded numbers, warmed first.
run_gw - 3 "$gw" ucycle 1 1 9000000 100
run_gw unknown_repeat "$duration" "$gw" ucycle 1 1 9000000 100
# c. known numbers never asked before: 100001..500000, spread.
run_gw known_new "$duration" "$gw" known 100001 400000 0 1
# d. unknown numbers never asked before: 073 + 7 digits, 0..3,999,999.
run_gw unknown_new "$duration" "$gw" unknown 1 1 0 4000000
# e. 30% known-new (500001..700000) / 70% unknown-new (4,000,000..7,999,999).
run_gw mix "$duration" "$gw" mix 500001 200000 4000000 4000000 3
# g. fixed rate: cached hit, repeated unknown number.
curl -fsS -o /dev/null --max-time 5 "$(lookup_url 0720000001)"
run_oha rate_cached "$(lookup_url 0720000001)"
run_oha rate_unknown "$(lookup_url 0739999999)"
gw_hwm_kb=$(proc_kb "$gw_pid" VmHWM)
gw_rss_kb=$(proc_kb "$gw_pid" VmRSS)
# Lookups the log could not keep up with are dropped and counted, never waited for.
log_written=$(metric cidgate_lookup_log_written_total)
log_dropped=$(metric cidgate_lookup_log_dropped_total)
say "lookup log: $log_written written, $log_dropped dropped"
say "gateway VmHWM ${gw_hwm_kb} kB, VmRSS ${gw_rss_kb} kB"
stop_pid "$gw_pid"
forget_pid "$gw_pid"

# The ceiling again: both figures show how steady the machine was; the targets use the
# higher one.
phase "ceiling again"
start_fixed
run_wrk - 2 "http://$fixed_addr" cycle 1 100 0 1
run_wrk ceiling2 "$duration" "http://$fixed_addr" cycle 1 100 0 1
stop_pid "$fixed_pid"
forget_pid "$fixed_pid"
if awk -v a="${RPS[ceiling1]}" -v b="${RPS[ceiling2]}" 'BEGIN { exit !(a >= b) }'; then
	ceiling_key=ceiling1
else
	ceiling_key=ceiling2
fi
RPS[ceiling]=${RPS[$ceiling_key]}

phase "pgbench"
pgb_args=(-h 127.0.0.1 -p "$pg_port" -U postgres -n -M prepared -c "$conns" -j 1
	-f "$here/lookup.pgbench" -D "tid=$tenant_id")
taskset -c "$load_cpu" "$pg_bin/pgbench" "${pgb_args[@]}" -T 3 "$dbname" >"$work/pgbench-warm.txt" 2>&1 ||
	{
		cat "$work/pgbench-warm.txt" >&2
		die "pgbench warm-up failed"
	}
(cd "$work" && taskset -c "$load_cpu" "$pg_bin/pgbench" "${pgb_args[@]}" -T "$duration" -l --log-prefix=pgblog \
	"$dbname" >"$work/pgbench.txt" 2>&1) || {
	cat "$work/pgbench.txt" >&2
	die "pgbench failed"
}
pg_tps=$(awk '/^tps = / { print $3; exit }' "$work/pgbench.txt")
pg_avg_ms=$(awk '/^latency average = / { print $4; exit }' "$work/pgbench.txt")
read -r pg_p50 pg_p99 pg_p999 < <(cat "$work"/pgblog.* | awk '{ print $3 }' | sort -n | awk '
	{ v[NR] = $1 }
	END {
		if (NR == 0) { print "", "", ""; exit }
		i50 = int(NR * 0.50); if (i50 < 1) i50 = 1
		i99 = int(NR * 0.99); if (i99 < 1) i99 = 1
		i999 = int(NR * 0.999); if (i999 < 1) i999 = 1
		print v[i50], v[i99], v[i999]
	}')
RPS[pgbench]=$pg_tps
P50[pgbench]=$pg_p50
P99[pgbench]=$pg_p99
P999[pgbench]=$pg_p999
NOTE[pgbench]="TPS; latency average $pg_avg_ms ms; "
say "pgbench: $pg_tps tps, avg $pg_avg_ms ms, p50 $pg_p50 us, p99 $pg_p99 us, p99.9 $pg_p999 us"

phase "memory per cached entry"
start_gateway "$work/gateway-mem.log"
# Touch the lookup path once so its one-off allocations are not counted per entry
# (100 numbers above the walked range: 999900..999999).
run_gw - 2 "$gw" cycle 999900 100 0 1
sleep 1
rss0=$(proc_kb "$gw_pid" VmRSS)
entries0=$(metric cidgate_cache_entries)
mem_rate=${RPS[known_new]%.*}
((mem_rate > 500)) || mem_rate=500
mem_secs=$((mem_entries * 10 / (mem_rate * 7) + 3))
((mem_secs <= 300)) || mem_secs=300
say "walking $mem_entries known numbers once (up to $mem_secs s)"
run_gw memwalk "$mem_secs" "$gw" once 0 "$mem_entries" 0 1
sleep 1
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
r_cached=$(ratio "${RPS[cached]}" "${RPS[ceiling]}")
r_cached_hi=$(ratio "${RPS[cached]}" "$(min_of "${RPS[ceiling1]}" "${RPS[ceiling2]}")")
r_repeat_hi=$(ratio "${RPS[unknown_repeat]}" "$(min_of "${RPS[ceiling1]}" "${RPS[ceiling2]}")")
r_repeat=$(ratio "${RPS[unknown_repeat]}" "${RPS[ceiling]}")
r_unknown=$(ratio "${RPS[unknown_new]}" "${RPS[ceiling]}")
r_known=$(ratio "${RPS[known_new]}" "$pg_tps")
r_mix=$(ratio "${RPS[mix]}" "$pg_tps")
p99_cached_ms=$(fmt_ms "${P99[rate_cached]}")
p99_unknown_ms=$(fmt_ms "${P99[rate_unknown]}")

row() { # key label
	printf '| %s | %s | %s | %s | %s | %s | %s |\n' "$2" "$(fmt_int "${RPS[$1]:-}")" \
		"$(fmt_ms "${P50[$1]:-}")" "$(fmt_ms "${P99[$1]:-}")" "$(fmt_ms "${P999[$1]:-}")" "${CPU[$1]:-}" "${NOTE[$1]:-}"
}

mkdir -p "$here/results"
report=$here/results/latest.md
{
	printf '# cidgate benchmark\n\n'
	printf -- '- date: %s\n' "$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
	printf -- '- commit: %s%s\n' "$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
		"$(git diff --quiet HEAD -- src Cargo.toml 2>/dev/null || echo ' (with uncommitted changes)')"
	printf -- '- machine: %s, %s cores; gateway/ceiling on core %s (1 worker), load generator on core %s, PostgreSQL unpinned\n' \
		"$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)" "$(nproc)" "$server_cpu" "$load_cpu"
	printf -- '- load: %s connections, %s s per run, wrk %s thread(s); fixed-rate runs: oha -q %s\n' \
		"$conns" "$duration" "$wrk_threads" "$rate"
	printf -- '- load average (1 min) at start / end: %s / %s (other work on the machine skews every figure)\n' \
		"$load_start" "$(cut -d' ' -f1 /proc/loadavg)"
	printf -- '- data: %s imported contacts + %s through the batch API; gateway pool size %s\n\n' \
		"$contacts" "$((2 * bulk_total))" "${CIDGATE_DB_POOL_SIZE:-default}"
	printf '| scenario | req/s | p50 ms | p99 ms | p99.9 ms | server CPU %% | notes |\n'
	printf '| --- | ---: | ---: | ---: | ---: | ---: | --- |\n'
	row ceiling1 "a. ceiling: fixed_answer example (before the gateway runs)"
	row ceiling2 "a. ceiling: fixed_answer example (after the gateway runs)"
	row cached "b. cached hits (100 numbers, warmed)"
	row unknown_repeat "b. unknown numbers after their first miss (100 numbers, warmed)"
	row known_new "c. known numbers, all new (DB)"
	row unknown_new "d. unknown numbers, all new"
	row mix "e. mix 30% known-new / 70% unknown-new"
	row pgbench "f. pgbench, lookup query (-M prepared)"
	row rate_ceiling "g. ceiling (fixed_answer) at fixed $rate req/s (oha)"
	row rate_cached "g. cached hit at fixed $rate req/s (oha)"
	row rate_unknown "g. repeated unknown at fixed $rate req/s (oha)"
	printf '\n'
	printf '| figure | value |\n| --- | ---: |\n'
	printf '| ceiling without a wrk Lua script (req/s) | %s |\n' "$(fmt_int "$ceiling_plain_rps")"
	printf '| import: %s contacts (s) | %s |\n' "$contacts" "$import_secs"
	printf '| import rate (contacts/s) | %s |\n' "$import_rate"
	printf '| bulk batch API, one sender: %s contacts in batches of %s (s) | %s |\n' "$bulk_total" "$batch_size" "$bulk_secs"
	printf '| bulk rate, one sender (contacts/s) | %s |\n' "$bulk_rate"
	printf '| bulk batch API, two concurrent senders: %s contacts (s) | %s |\n' "$bulk_total" "$bulk2_secs"
	printf '| bulk rate, two senders (contacts/s) | %s |\n' "$bulk2_rate"
	printf '| lookup log entries written / dropped during runs b-g (the writer may lag) | %s / %s |\n' "$log_written" "$log_dropped"
	printf '| gateway peak RSS, VmHWM after runs b-g (MiB) | %s |\n' "$(awk -v k="$gw_hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| gateway peak RSS, VmHWM of the memory run (MiB) | %s |\n' "$(awk -v k="$mem_hwm_kb" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| memory run: RSS before -> after (MiB) | %s -> %s |\n' \
		"$(awk -v k="$rss0" 'BEGIN { printf "%.1f", k / 1024 }')" "$(awk -v k="$rss1" 'BEGIN { printf "%.1f", k / 1024 }')"
	printf '| memory run: cidgate_cache_entries before -> after | %s -> %s |\n' "$entries0" "$entries1"
	printf '| RSS growth per cached entry (bytes) | %s |\n' "${bytes_per_entry:-n/a}"
	printf '| cidgate_cache_weighted_bytes / entries (bytes) | %s |\n' "${weighted_per_entry:-n/a}"
	printf '\n| target | measured | goal | verdict |\n| --- | ---: | ---: | --- |\n'
	printf '| cached / ceiling (higher ceiling; vs the lower: %s) | %s | >= 0.80 | %s |\n' \
		"$r_cached_hi" "$r_cached" "$(verdict "$r_cached" '>=' 0.8)"
	printf '| unknown after the first miss / ceiling (higher ceiling; vs the lower: %s) | %s | >= 0.80 | %s |\n' \
		"$r_repeat_hi" "$r_repeat" "$(verdict "$r_repeat" '>=' 0.8)"
	printf '| (not a target) unknown-new / ceiling | %s | | |\n' "$r_unknown"
	printf '| p99 cached at %s req/s (ms) | %s | < 1 | %s |\n' "$rate" "$p99_cached_ms" "$(verdict "$p99_cached_ms" '<' 1)"
	printf '| p99 unknown at %s req/s (ms) | %s | < 1 | %s |\n' "$rate" "$p99_unknown_ms" "$(verdict "$p99_unknown_ms" '<' 1)"
	printf '| known-new / pgbench | %s | >= 0.50 | %s |\n' "$r_known" "$(verdict "$r_known" '>=' 0.5)"
	printf '| mix / pgbench | %s | >= 1.50 | %s |\n' "$r_mix" "$(verdict "$r_mix" '>=' 1.5)"
	printf '| bulk writes, batch API, two senders (one sender: %s) (contacts/s) | %s | >= 50000 | %s |\n' \
		"$bulk_rate" "$bulk2_rate" "$(verdict "$bulk2_rate" '>=' 50000)"
	printf '| bulk writes, import (contacts/s) | %s | >= 50000 | %s |\n' "$import_rate" "$(verdict "$import_rate" '>=' 50000)"
	printf '| bytes per cached entry (RSS) | %s | < 300 | %s |\n' "${bytes_per_entry:-n/a}" "$(verdict "${bytes_per_entry:-n/a}" '<' 300)"
	printf '\n| phase | seconds |\n| --- | ---: |\n'
	for i in "${!phase_names[@]}"; do
		printf '| %s | %s |\n' "${phase_names[$i]}" "${phase_secs[$i]}"
	done
	printf '| total | %s |\n' "$total_secs"
} >"$report"

cat "$report"
say "report written to ${report#"$root"/}"
