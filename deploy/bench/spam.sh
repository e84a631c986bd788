#!/usr/bin/env bash
# Does a 1,000,000-number spam list slow lookups? (issue 36; docs/trust.md)
#
#   deploy/bench/spam.sh
#
# One gateway (release build) on a fresh database `cidgate_spambench` of the private
# cluster `spambench` (port BENCH_PG_PORT, default 25437): tenant `bench` with
# BENCH_CONTACTS (200,000) contacts (0720 + 6 digits) and screening on
# (`--spam-route screening`). The spam list holds 1,000,000 numbers (0730000000 + 10 i,
# so a tenth of the unknown callers wrk walks are on it), imported once with
# `cidgate spam import --format csv`. Each round measures the 30/70 mix of run.sh
# (walk.lua `mix`: 30 % known numbers never asked before, 70 % unknown ones) twice, with
# the list unflagged (`--spam-threshold 1000000`: no flagged number in memory) and
# flagged (`--spam-threshold 2`: 1,000,000 in memory), the order alternating between
# rounds. Prints a Markdown table: req/s and p99 per round, and the ratio of medians.
#
# Knobs: BENCH_REUSE=1 (keep the database of an earlier run: no seeding), BENCH_ROUNDS (3), BENCH_DURATION seconds (10), BENCH_CONNS (64),
# BENCH_CONTACTS (200000), BENCH_PG_PORT (25437), BENCH_GW_PORT (18090),
# BENCH_SERVER_CPU (0), BENCH_LOAD_CPU (1), BENCH_PROFILE (release; `debug` uses the
# debug build as it is, when a release build is out of reach: the ratio still holds,
# the absolute figures do not). Needs wrk.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
here=$root/deploy/bench
rounds=${BENCH_ROUNDS:-3}
duration=${BENCH_DURATION:-10}
conns=${BENCH_CONNS:-64}
contacts=${BENCH_CONTACTS:-200000}
pg_port=${BENCH_PG_PORT:-25437}
gw_addr=127.0.0.1:${BENCH_GW_PORT:-18090}
server_cpu=${BENCH_SERVER_CPU:-0}
load_cpu=${BENCH_LOAD_CPU:-1}
cluster=spambench
spam=1000000

say() { printf 'spam-bench: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
command -v wrk >/dev/null 2>&1 || die "wrk is missing (apt-get install wrk)"

work=$(mktemp -d /tmp/cidgate-spambench.XXXXXX)
gw_pid=
cluster_started=0
cleanup() {
	local rc=$?
	if [[ -n $gw_pid ]] && kill -0 "$gw_pid" 2>/dev/null; then
		kill -TERM "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	if ((cluster_started)); then
		deploy/local/pg.sh stop "$cluster" >/dev/null 2>&1 || true
	fi
	if ((rc == 0)); then
		rm -rf "$work"
	else
		say "logs kept in $work"
	fi
	exit "$rc"
}
trap cleanup EXIT

profile=${BENCH_PROFILE:-release}
if [[ $profile == release ]]; then
	cargo build --release --bin cidgate >&2
fi
bin=${CARGO_TARGET_DIR:-target}/$profile/cidgate
[[ -x $bin ]] || die "no cidgate binary at $bin"
cluster_started=1
base_url=$(taskset -c "$server_cpu" deploy/local/pg.sh start "$cluster" "$pg_port")
export DATABASE_URL=${base_url%/*}/cidgate_spambench RUST_LOG=warn
import_secs="n/a (BENCH_REUSE)"
if [[ ${BENCH_REUSE:-0} != 1 ]]; then
	psql -X -q -v ON_ERROR_STOP=1 "$base_url" -c "DROP DATABASE IF EXISTS cidgate_spambench WITH (FORCE)" \
		-c "CREATE DATABASE cidgate_spambench"
	"$bin" migrate >&2
	"$bin" tenant create bench --region RO >&2
	"$bin" tenant set bench --spam-route screening --spam-name 'SPAM?' --spam-threshold 1000000 >&2
	awk -v n="$contacts" 'BEGIN { print "id,name,phones"; for (i = 1; i <= n; i++) printf "%d,Contact %d,0720%06d\n", i, i, i - 1 }' >"$work/contacts.csv"
	"$bin" import --tenant bench "$work/contacts.csv" >&2
	awk -v n="$spam" 'BEGIN { print "number,reports"; for (i = 0; i < n; i++) printf "073%07d,2\n", 10 * i }' >"$work/spam.csv"
	t0=$(date +%s.%N)
	"$bin" spam import --tenant bench --format csv "$work/spam.csv" >&2
	import_secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
	psql -X -q "$DATABASE_URL" -c "VACUUM ANALYZE"
fi
token=$("$bin" token create --tenant bench --scope lookup | tail -n 1)
"$bin" tenant set bench --spam-threshold 1000000 >&2

env CIDGATE_LISTEN="$gw_addr" CIDGATE_LOOKUP_RATE=1000000000 taskset -c "$server_cpu" "$bin" serve >"$work/gateway.log" 2>&1 &
gw_pid=$!
for ((i = 0; i < 600; i++)); do
	curl -fsS -o /dev/null --max-time 2 "http://$gw_addr/readyz" 2>/dev/null && break
	kill -0 "$gw_pid" 2>/dev/null || die "the gateway exited: $(tail -n 5 "$work/gateway.log")"
	sleep 0.1
done

screened() { # is the listed 0730000000 answered with the screening route?
	curl -fsS --max-time 5 "http://$gw_addr/api/lookup?telephone=0730000000&token=$token" | grep -q '"route_identifier":"screening"'
}
current=off
flag() { # on|off: the whole list flagged (threshold 2) or none (threshold 1,000,000)
	local threshold=1000000 i t0
	# Only a change: a new threshold reloads the lists, which must not overlap a run.
	[[ $1 == "$current" ]] && return 0
	current=$1
	[[ $1 == on ]] && threshold=2
	t0=$(date +%s.%N)
	"$bin" tenant set bench --spam-threshold "$threshold" >/dev/null 2>&1
	for ((i = 0; i < 600; i++)); do
		if [[ $1 == on ]] && screened; then break; fi
		if [[ $1 == off ]] && ! screened; then break; fi
		sleep 0.1
	done
	((i < 600)) || die "the list did not become $1"
	say "list $1 after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
	sleep 2 # let the reload's garbage go before measuring
}

declare -A RPS P99
run=0
mix() { # key: one wrk run of the mix over number ranges no run used before
	local out=$work/wrk-$1.txt line kbase=$((run * 30000 % contacts)) ubase=$((run * 1000000))
	run=$((run + 1))
	taskset -c "$load_cpu" wrk -t 1 -c "$conns" -d "${duration}s" --timeout 5s -s "$here/walk.lua" \
		"http://$gw_addr" -- mix "$token" 1 "$kbase" 30000 "$ubase" 1000000 3 >"$out" 2>&1 || die "wrk failed: $(tail -n 5 "$out")"
	line=$(grep '^RESULT ' "$out" | tail -n 1)
	RPS[$1]=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
	P99[$1]=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
	say "$1: ${RPS[$1]} req/s, p99 ${P99[$1]} us ($(grep -o 'non2xx=[0-9]*' <<<"$line"))"
}

for ((r = 1; r <= rounds; r++)); do
	order=(off on)
	((r % 2 == 0)) && order=(on off)
	for state in "${order[@]}"; do
		flag "$state"
		mix "${state}_r$r"
	done
done
median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
offs=() ons=()
for ((r = 1; r <= rounds; r++)); do
	offs+=("${RPS[off_r$r]}")
	ons+=("${RPS[on_r$r]}")
done
m_off=$(median <<<"${offs[*]}")
m_on=$(median <<<"${ons[*]}")
{
	printf '\n| round | mix, no flagged number (req/s, p99 ms) | mix, 1,000,000 flagged (req/s, p99 ms) |\n| --- | ---: | ---: |\n'
	for ((r = 1; r <= rounds; r++)); do
		printf '| %s | %.0f, %.2f | %.0f, %.2f |\n' "$r" "${RPS[off_r$r]}" "$(awk -v u="${P99[off_r$r]}" 'BEGIN{print u/1000}')" \
			"${RPS[on_r$r]}" "$(awk -v u="${P99[on_r$r]}" 'BEGIN{print u/1000}')"
	done
	printf '| median | %.0f | %.0f |\n\nflagged / none (medians): %s; spam import of %s numbers: %s s; load average now: %s\n' \
		"$m_off" "$m_on" "$(awk -v a="$m_on" -v b="$m_off" 'BEGIN { printf "%.3f", a / b }')" "$spam" "$import_secs" "$(cut -d' ' -f1 /proc/loadavg)"
	printf 'binary: %s build; ' "$profile"
	printf 'gateway RSS: %s\n' "$(awk '$1 == "VmRSS:" { print $2 " kB" }' "/proc/$gw_pid/status")"
}
