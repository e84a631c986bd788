#!/usr/bin/env bash
# How fast a historical report answers over a month of 10,000,000 calls.
#
#   deploy/bench/reports.sh
#
# Seeds one calendar month (the last complete one) of REPORTS_BENCH_CALLS calls
# (default 10,000,000) for one tenant straight into `calls` with SQL, a day per
# statement, through the triggers that keep the hourly report figures (sql/V17), as
# the event writer's statements do. Then times POST /rest/api/v1/historic-data/{key}
# against `cidgate serve` with curl: every call-based template over the whole month,
# the Agent Talking Summary with partial hours at both ends (offsets +05:30), for a
# service user limited to ten agents, and the same sums straight from `calls` (no
# figures) in psql for comparison. Prints a Markdown report and writes it to
# deploy/bench/results/reports.md.
#
# The calls: 100 agents (Agent0(200) .. Agent99(299)) in 10 groups; 60 % inbound on 8
# numbers dialled, 30 % outbound on 2 lines, 10 % internal; 80 % answered with 10 s to
# 10 min of talk; one call in five with an account code (50 codes); no caller numbers.
# Two indexes of `calls` that reports never read (the CDR change feed's and the number
# index) are dropped before seeding: they would only cost disk and seeding time.
#
# Uses the private PostgreSQL cluster `reportsbench` (deploy/local/pg.sh, --fast) on
# port REPORTS_BENCH_PG_PORT (default 25438), recreated on every run, and stops it and
# drops its data on exit unless REPORTS_BENCH_KEEP=1. Needs about 4 GB of free disk
# for 10,000,000 calls (under CIDGATE_PG_ROOT: /dev/shm puts the cluster in memory). REPORTS_BENCH_PROFILE=debug uses the debug build (default
# release). REPORTS_BENCH_RUNS (5): runs per report, the figures are min/median/max.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
prog=bench/reports.sh
calls=${REPORTS_BENCH_CALLS:-10000000}
pg_port=${REPORTS_BENCH_PG_PORT:-25438}
gw_port=${REPORTS_BENCH_GW_PORT:-18098}
profile=${REPORTS_BENCH_PROFILE:-release}
runs=${REPORTS_BENCH_RUNS:-5}
cluster=reportsbench
out=deploy/bench/results/reports.md
work=$(mktemp -d)
gw_pid=

say() { printf '%s: %s\n' "$prog" "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}
cleanup() {
	if [[ -n $gw_pid ]]; then
		kill "$gw_pid" 2>/dev/null || true
		wait "$gw_pid" 2>/dev/null || true
	fi
	if [[ ${REPORTS_BENCH_KEEP:-0} != 1 ]]; then
		deploy/local/pg.sh stop "$cluster" >/dev/null 2>&1 || true
		rm -rf "${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/$cluster"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
for tool in curl awk sort; do
	command -v "$tool" >/dev/null || die "$tool is missing"
done

need_kb=$((calls * 4 / 10 + 500000)) # about 400 bytes a call
data_dir=${CIDGATE_PG_ROOT:-/tmp}
while [[ ! -d $data_dir ]]; do data_dir=$(dirname "$data_dir"); done
free_kb=$(df -Pk "$data_dir" | awk 'NR == 2 { print $4 }')
((free_kb > need_kb)) || die "about $((need_kb / 1000000)) GB of free disk needed, $((free_kb / 1000000)) GB free"

if [[ $profile == release ]]; then
	cargo build --release --bin cidgate >&2
else
	cargo build --bin cidgate >&2
fi
cidgate=$root/target/$profile/cidgate
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

admin_url=$(deploy/local/pg.sh start "$cluster" "$pg_port" --fast)
psql_bin=$(command -v psql || ls -d /usr/lib/postgresql/*/bin/psql | sort -V | tail -1)
psql() { "$psql_bin" -X -q -v ON_ERROR_STOP=1 "$@"; }
# The seed writes gigabytes: keep at most ~200 MB of WAL on disk meanwhile.
psql "$admin_url" -c "ALTER SYSTEM SET max_wal_size = '128MB'" -c 'SELECT pg_reload_conf()' >/dev/null
psql "$admin_url" -c 'DROP DATABASE IF EXISTS cidgate_reports WITH (FORCE)' -c 'CREATE DATABASE cidgate_reports'
export DATABASE_URL=${admin_url%/postgres}/cidgate_reports

"$cidgate" tenant create bench --region RO --time-zone America/Chicago >/dev/null 2>&1
key=$("$cidgate" service-user create --tenant bench bi 2>/dev/null | tail -1)
limited=$("$cidgate" service-user create --tenant bench team --agents "$(seq -s, 200 209)" 2>/dev/null | tail -1)
declare -A report
for template in agent-talking-summary calls-by-dnis missed-calls-by-group account-code-usage; do
	report[$template]=$("$cidgate" report enable --tenant bench --template "$template" --service-user bi 2>/dev/null | tail -1)
done
team_report=$("$cidgate" report enable --tenant bench --template agent-talking-summary --service-user team 2>/dev/null | tail -1)

# The gateway creates the months' partitions at start.
CIDGATE_LISTEN=127.0.0.1:$gw_port RUST_LOG=warn "$cidgate" serve >/dev/null 2>&1 &
gw_pid=$!
for _ in $(seq 1 300); do
	curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null || die "the gateway did not start"

month=$(date -u -d "$(date -u +%Y-%m-01) -1 month" +%Y-%m-01)
days=$(date -u -d "$month +1 month -1 day" +%d)
per_day=$(((calls + days - 1) / days))
say "seeding $calls calls in $month ($days days, $per_day a day)"
psql "$DATABASE_URL" -c 'DROP INDEX calls_changed_idx' -c 'DROP INDEX calls_number_idx'
tenant_id=$(psql "$DATABASE_URL" -At -c "SELECT id FROM tenants WHERE slug = 'bench'")
seed_start=$(date +%s.%N)
for ((d = 0; d < days; d++)); do
	first=$((d * per_day))
	n=$((calls - first < per_day ? calls - first : per_day))
	((n > 0)) || break
	# An hour's calls per statement, as a busy event writer's batches come (each
	# statement runs the figures' triggers once).
	psql "$DATABASE_URL" <<SQL
DO \$\$
DECLARE
    lo BIGINT;
    hi BIGINT;
BEGIN
    FOR hour IN 0..23 LOOP
        lo := $first + hour * $n / 24;
        hi := $first + (hour + 1) * $n / 24 - 1;
        WITH h AS (
            SELECT i, abs(hashint8(i)::bigint) AS h1, abs(hashint8(-i - 1)::bigint) AS h2
            FROM generate_series(lo, hi) AS i
        ), g AS (
            -- Agent, direction, number dialled, outcome, talk and code drawn independently.
            SELECT i, h1 % 100 AS a, h2 % 10 AS kind, (h2 / 10) % 5 <> 4 AS answered,
                   10000 + (h1 / 100) % 590000 AS talk, (h1 / 1000000) % 8 AS line,
                   (h2 / 100) % 5 = 0 AS coded, (h2 / 1000) % 50 AS code,
                   timestamptz '$month 00:00:00+00' + make_interval(days => $d)
                       + make_interval(secs => ((i - $first) * 86400.0 / $n)) AS started
            FROM h
        )
        INSERT INTO calls (tenant_id, month, id, report_call_id, activecallkey, direction,
                           agent, call_group, dnis, account_codes, started_at, answered_at,
                           ended_at, duration_ms, talk_ms, outcome, legs, change_seq)
        SELECT $tenant_id, date '$month', gen_random_uuid(), i + 1, 'b' || i,
               CASE WHEN kind < 6 THEN 'Inbound' WHEN kind < 9 THEN 'Outbound'
                    ELSE 'Internal' END,
               'Agent' || a || '(' || (200 + a) || ')', 'Group' || (a % 10),
               CASE WHEN kind < 6 THEN '021000000' || line
                    WHEN kind < 9 THEN '031000000' || line % 2 END,
               CASE WHEN coded THEN ARRAY['AC' || code] ELSE '{}' END,
               started,
               CASE WHEN answered THEN started + interval '5 s' END,
               started + CASE WHEN answered
                              THEN interval '5 s' + make_interval(secs => talk / 1000.0)
                              ELSE interval '20 s' END,
               CASE WHEN answered THEN 5000 + talk ELSE 20000 END,
               CASE WHEN answered THEN talk ELSE 0 END,
               CASE WHEN answered THEN 'answered' ELSE 'missed' END, '[]', 1
        FROM g;
    END LOOP;
END
\$\$;
SQL
	printf '.' >&2
done
printf '\n' >&2
seed_secs=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')
psql "$DATABASE_URL" -c 'VACUUM ANALYZE calls' -c 'VACUUM ANALYZE call_stats' -c 'VACUUM ANALYZE call_code_stats'
stats_rows=$(psql "$DATABASE_URL" -At -c 'SELECT count(*) FROM call_stats')
calls_size=$(psql "$DATABASE_URL" -At -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'calls'::regclass")
stats_size=$(psql "$DATABASE_URL" -At -c "SELECT pg_size_pretty(sum(pg_total_relation_size(c.oid))) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'call_stats'::regclass")

last_day=$(date -u -d "$month +1 month -1 day" +%Y-%m-%d)
next_month=$(date -u -d "$month +1 month" +%Y-%m-%d)
body() { # format start end
	printf '{"format":"%s","parameters":[{"name":"Report Timeframe","valueType":"REPORT_TIMEFRAME","value":{"type":"REPORT_TIMEFRAME","start":"%s","end":"%s"}}]}' "$1" "$2" "$3"
}
whole=$(body json "${month}T00:00:00.000Z" "${last_day}T23:59:59.000Z")
partial=$(body json "${month}T06:00:00.000+05:30" "${next_month}T00:29:59.000+05:30")
# One report, REPORTS_BENCH_RUNS times: "min median max" in ms, and what the last answered.
time_report() { # key report body
	local t times=() status
	for ((r = 0; r < runs; r++)); do
		read -r status t < <(curl -sS -o "$work/answer.json" -w '%{http_code} %{time_total}\n' \
			-X POST "http://127.0.0.1:$gw_port/rest/api/v1/historic-data/$2" \
			-H "Authorization: Bearer $1" -H 'Content-Type: application/json' -d "$3")
		[[ $status == 200 ]] || die "report $2 answered $status: $(cat "$work/answer.json")"
		times+=("$(awk -v t="$t" 'BEGIN { printf "%.0f", t * 1000 }')")
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { printf "%d / %d / %d", v[1], v[int((NR + 1) / 2)], v[NR] }'
}
total_calls() { grep -o '"title":"Total Calls","value":[0-9]*' "$work/answer.json" | grep -o '[0-9]*$'; }

rows=()
ats=$(time_report "$key" "${report[agent-talking-summary]}" "$whole")
rows+=("| agent-talking-summary, the month (100 agents) | $ats | $(total_calls) |")
rows+=("| agent-talking-summary, the month at +05:30 (partial hours at both ends) | $(time_report "$key" "${report[agent-talking-summary]}" "$partial") | $(total_calls) |")
rows+=("| agent-talking-summary, a service user limited to 10 agents | $(time_report "$limited" "$team_report" "$whole") | $(total_calls) |")
for template in calls-by-dnis missed-calls-by-group account-code-usage; do
	rows+=("| $template, the month | $(time_report "$key" "${report[$template]}" "$whole") | |")
done
rows+=("| agent-talking-summary as CSV | $(time_report "$key" "${report[agent-talking-summary]}" "$(body csv "${month}T00:00:00.000Z" "${last_day}T23:59:59.000Z")") | |")

# The same sums straight from the calls, without the hourly figures.
raw_ms=$(psql "$DATABASE_URL" -At <<SQL | awk '/Execution Time/ { printf "%.0f", $3 }'
EXPLAIN (ANALYZE, FORMAT TEXT)
SELECT agent_extension(agent), count(*) FILTER (WHERE direction = 'Inbound'),
       count(*) FILTER (WHERE direction = 'Outbound'), count(*), sum(talk_ms)
FROM calls WHERE tenant_id = $tenant_id AND ended_at IS NOT NULL
  AND started_at >= '${month}T00:00:00Z' AND started_at < '${next_month}T00:00:00Z'
GROUP BY 1;
SQL
)
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

mkdir -p "$(dirname "$out")"
{
	echo "# Historical reports over a month of $calls calls"
	echo
	echo "$(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load average $load_before before and $load_after after"
	echo "(other work shares the machine), PostgreSQL $("$psql_bin" --version | awk '{ print $3 }') with"
	echo "default memory settings (fsync off, data under $data_dir), cidgate $profile build. Seeding: ${seed_secs} s"
	echo "($((calls / (seed_secs > 0 ? seed_secs : 1))) calls/s through the figures' triggers). \`calls\` $calls_size;"
	echo "\`call_stats\` $stats_rows rows, $stats_size."
	echo
	echo "| report | ms, whole POST: min / median / max of $runs | Total Calls |"
	echo "| --- | --- | --- |"
	printf '%s\n' "${rows[@]}"
	echo
	echo "The Agent Talking Summary's sums read straight from \`calls\` (psql, EXPLAIN ANALYZE): ${raw_ms} ms."
} | tee "$out"
