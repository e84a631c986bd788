#!/usr/bin/env bash
# What the lookup log costs. Runs the gateway like deploy/bench/run.sh does (release
# build, core 0, one worker; wrk on core 1) against 100,000 contacts, and for cached
# hits and new unknown numbers reports the gateway's requests/s and PostgreSQL's CPU
# per logged lookup in three set-ups: as shipped, without the recent-calls index, and
# with the log switched off (a buffer of one entry: nearly every entry is dropped).
# Then what the request log line costs: the shipped level (`info`, a line per request)
# against `RUST_LOG=warn`, in LOG_COST_ROUNDS (4) interleaved rounds (ABBA), medians.
#
#   deploy/bench/log_cost.sh        (about 2 minutes after the release build)
#
# Needs wrk, curl and taskset (deploy/bench/run.sh installs wrk when missing). Uses the
# private cluster `logcost` on 127.0.0.1:25437, recreated on every run, and stops it.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
prog=log_cost.sh
port=${LOG_COST_PG_PORT:-25437}
gw_addr=127.0.0.1:18097
secs=${LOG_COST_SECONDS:-8}
work=$(mktemp -d)
gw_pid=

die() { echo "$prog: $*" >&2; exit 1; }
for tool in wrk curl taskset awk; do
	command -v "$tool" >/dev/null || die "$tool is missing (deploy/bench/run.sh installs wrk)"
done

cleanup() {
	if [[ -n $gw_pid ]]; then
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	"$root/deploy/local/pg.sh" stop logcost >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

cd "$root"
cargo build --release --bin cidgate >&2
cidgate=$root/target/release/cidgate
base=$(deploy/local/pg.sh start logcost "$port" --fast)
pg_bin=${PG_BIN:-$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)}
postmaster=$(head -n 1 "${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/logcost/postmaster.pid")
psql() { "$pg_bin/psql" -X -q -v ON_ERROR_STOP=1 "$@"; }
psql "$base" -c "DROP DATABASE IF EXISTS cidgate_log_cost WITH (FORCE)" -c "CREATE DATABASE cidgate_log_cost"
export DATABASE_URL=${base%/*}/cidgate_log_cost
"$cidgate" migrate 2>/dev/null
"$cidgate" tenant create bench --region RO >/dev/null
token=$("$cidgate" token create --tenant bench --scope lookup)
awk 'BEGIN { print "id,name,phones"; for (i = 1; i <= 100000; i++) printf "%d,Contact %d,0720%06d\n", i, i, i }' >"$work/contacts.csv"
"$cidgate" import --tenant bench "$work/contacts.csv" >/dev/null 2>&1

median() { tr ' ' '\n' | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# CPU ticks of this cluster's processes together.
pg_ticks() {
	local p
	for p in "$postmaster" $(pgrep -P "$postmaster"); do awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null; done |
		awk '{ s += $1 } END { print s + 0 }'
}
written() { curl -fsS "http://$gw_addr/metrics" | awk '$1 == "cidgate_lookup_log_written_total" { print $2 }'; }
load() { # MODE SECONDS: prints requests/s
	local args
	case $1 in
	cycle) args=(1 100 0 1) ;;
	unknown) args=(1 1 0 9000000) ;;
	esac
	taskset -c 1 wrk -t 1 -c 64 -d "${2}s" --timeout 5s -s "$here/walk.lua" "http://$gw_addr" -- \
		"$1" "$token" 1 "${args[@]}" | awk '/^RESULT/ { for (i = 2; i <= NF; i++) if ($i ~ /^rps=/) print substr($i, 5) }'
}
start_gateway() { # extra environment assignments (RUST_LOG=default: the shipped level)
	env RUST_LOG=warn CIDGATE_LISTEN=$gw_addr CIDGATE_WORKERS=1 CIDGATE_LOOKUP_RATE=1000000000 "$@" \
		bash -c '[[ $RUST_LOG != default ]] || unset RUST_LOG; exec "$@"' - \
		taskset -c 0 "$cidgate" serve >"$work/gateway.log" 2>&1 &
	gw_pid=$!
	for _ in $(seq 1 120); do
		curl -fsS -o /dev/null "http://$gw_addr/readyz" 2>/dev/null && return 0
		sleep 0.25
	done
	die "the gateway did not start: $(tail -n 5 "$work/gateway.log")"
}
stop_gateway() { kill "$gw_pid"; wait "$gw_pid" 2>/dev/null || true; gw_pid=; }

printf '| set-up | lookups | req/s | PostgreSQL CPU per logged lookup |\n| --- | --- | ---: | ---: |\n'
measure() { # LABEL, then extra gateway environment
	local label=$1 mode rps w0 w1 t0 t1
	shift
	for mode in cycle unknown; do
		psql "$DATABASE_URL" -c "TRUNCATE lookup_log"
		start_gateway "$@"
		load "$mode" 3 >/dev/null
		w0=$(written) t0=$(pg_ticks)
		rps=$(load "$mode" "$secs")
		w1=$(written) t1=$(pg_ticks)
		stop_gateway
		awk -v l="$label" -v m="$mode" -v r="$rps" -v n=$((w1 - w0)) -v t=$((t1 - t0)) -v hz="$(getconf CLK_TCK)" -v secs="$secs" 'BEGIN {
			# With the log off the few entries that still fit the buffer say nothing.
			per = (n * 10 > r * secs) ? sprintf("%.1f us", t / hz * 1e6 / n) : "(log off)"
			printf "| %s | %s | %.0f | %s |\n", l, (m == "cycle" ? "cached" : "unknown, new"), r, per
		}'
	done
}
measure "as shipped"
psql "$DATABASE_URL" -c "DROP INDEX lookup_log_number_key_idx"
measure "without the recent-calls index"
measure "log off (CIDGATE_LOOKUP_LOG_BUFFER=1)" CIDGATE_LOOKUP_LOG_BUFFER=1

# The request log: the same lookups at the shipped level and at warn, taking turns.
rounds=${LOG_COST_ROUNDS:-4}
printf '\n| lookups | req/s at the shipped level (info) | req/s at RUST_LOG=warn | info / warn (median of per-round ratios) |\n| --- | ---: | ---: | ---: |\n'
for mode in cycle unknown; do
	infos=() warns=() ratios=()
	for ((r = 0; r < rounds; r++)); do
		order=(default warn)
		((r % 2 == 0)) || order=(warn default) # ABBA: neither side always goes first
		for level in "${order[@]}"; do
			start_gateway RUST_LOG=$level
			load "$mode" 2 >/dev/null
			rps=$(load "$mode" "$secs")
			stop_gateway
			if [[ $level == default ]]; then infos+=("$rps"); else warns+=("$rps"); fi
		done
		ratios+=("$(awk -v a="${infos[r]}" -v b="${warns[r]}" 'BEGIN { printf "%.3f", a / b }')")
	done
	printf '| %s | %.0f | %.0f | %s (rounds: %s) |\n' "$([[ $mode == cycle ]] && echo cached || echo 'unknown, new')" \
		"$(median <<<"${infos[*]}")" "$(median <<<"${warns[*]}")" "$(median <<<"${ratios[*]}")" "${ratios[*]}"
done
