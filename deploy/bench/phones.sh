#!/usr/bin/env bash
# How fast a desk phone's directory search answers on a tenant of 1,000,000 contacts
# (issue 35).
#
#   deploy/bench/phones.sh
#
# Seeds PHONES_BENCH_CONTACTS contacts (default 1,000,000) for one tenant straight into
# `contacts` and `contact_phones` with SQL (names drawn from 200 first names and 500
# family names, one mobile number each), then times GET /phones/yealink/directory against
# `cidgate serve` with curl, one request at a time: part of a name (3-5 letters), a whole
# number in national form, the first eight digits of a number, and no term (the first
# page). PHONES_BENCH_RUNS (default 200) requests per kind, each with its own term; the
# figures are p50 / p99 / max in ms. Prints a Markdown report and writes it to
# deploy/bench/results/phones.md. The XML lookup's figures are in run.sh's table
# (`cached_xml`, `unknown_repeat_xml`).
#
# Uses the private PostgreSQL cluster `phonesbench` (deploy/local/pg.sh, --fast) on port
# PHONES_BENCH_PG_PORT (default 25439), recreated on every run, and stops it and drops its
# data on exit unless PHONES_BENCH_KEEP=1. PHONES_BENCH_PROFILE=debug uses the debug build
# (default release).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
prog=bench/phones.sh
contacts=${PHONES_BENCH_CONTACTS:-1000000}
pg_port=${PHONES_BENCH_PG_PORT:-25439}
gw_port=${PHONES_BENCH_GW_PORT:-18099}
profile=${PHONES_BENCH_PROFILE:-release}
runs=${PHONES_BENCH_RUNS:-200}
cluster=phonesbench
out=deploy/bench/results/phones.md
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
	if [[ ${PHONES_BENCH_KEEP:-0} != 1 ]]; then
		deploy/local/pg.sh stop "$cluster" >/dev/null 2>&1 || true
		rm -rf "${CIDGATE_PG_ROOT:-/tmp/cidgate-pg-$(id -u)}/$cluster"
	fi
	rm -rf "$work"
}
trap cleanup EXIT
for tool in curl awk sort; do
	command -v "$tool" >/dev/null || die "$tool is missing"
done

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
psql "$admin_url" -c 'DROP DATABASE IF EXISTS cidgate_phones WITH (FORCE)' -c 'CREATE DATABASE cidgate_phones'
export DATABASE_URL=${admin_url%/postgres}/cidgate_phones

"$cidgate" tenant create bench --region RO >/dev/null 2>&1
token=$("$cidgate" token create --tenant bench --scope phones --label bench 2>/dev/null | tail -1)
tenant_id=$(psql "$DATABASE_URL" -At -c "SELECT id FROM tenants WHERE slug = 'bench'")

say "seeding $contacts contacts"
seed_start=$(date +%s.%N)
psql "$DATABASE_URL" <<SQL
CREATE TEMP TABLE first_names AS
    SELECT row_number() OVER () - 1 AS n, initcap(w) AS w
    FROM (SELECT DISTINCT substr(md5('f' || i), 1 + i % 5, 4 + i % 4) AS w FROM generate_series(1, 400) i) s
    LIMIT 200;
CREATE TEMP TABLE last_names AS
    SELECT row_number() OVER () - 1 AS n, initcap(w) AS w
    FROM (SELECT DISTINCT translate(substr(md5('l' || i), 1, 7 + i % 4), '0123456789', 'aeiouyrstn') AS w
          FROM generate_series(1, 1000) i) s
    LIMIT 500;
INSERT INTO contacts (tenant_id, crm_id, name)
SELECT $tenant_id, i::text, f.w || ' ' || l.w
FROM generate_series(1, $contacts) i
JOIN first_names f ON f.n = abs(hashint4(i)) % 200
JOIN last_names l ON l.n = abs(hashint4(-i)) % 500;
INSERT INTO contact_phones (tenant_id, crm_id, number)
SELECT $tenant_id, i::text, '+407' || lpad((20000000 + i)::text, 8, '0')
FROM generate_series(1, $contacts) i;
VACUUM ANALYZE contacts;
VACUUM ANALYZE contact_phones;
SQL
seed_secs=$(awk -v a="$seed_start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.0f", b - a }')

CIDGATE_LISTEN=127.0.0.1:$gw_port RUST_LOG=warn "$cidgate" serve >/dev/null 2>&1 &
gw_pid=$!
for _ in $(seq 1 600); do
	curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://127.0.0.1:$gw_port/readyz" >/dev/null || die "the gateway did not start"

# Terms, one a line, for each kind of search.
psql "$DATABASE_URL" -At -c "SELECT substr(name, 1 + (i % 4), 3 + i % 3) FROM contacts
    JOIN generate_series(1, $runs) i ON crm_id = (1 + (abs(hashint4(i)) % $contacts))::text" >"$work/names"
awk -v n="$runs" -v c="$contacts" 'BEGIN { srand(7); for (i = 0; i < n; i++) printf "07%08d\n", 20000000 + 1 + int(rand() * c) }' >"$work/numbers"
awk '{ print substr($0, 1, 8) }' "$work/numbers" >"$work/prefixes"
awk -v n="$runs" 'BEGIN { for (i = 0; i < n; i++) print "" }' >"$work/browse"

# p50 / p99 / max (ms) of one request per term in FILE.
time_searches() {
	local file=$1 term status t times=()
	while IFS= read -r term; do
		read -r status t < <(curl -sS -o "$work/answer.xml" -w '%{http_code} %{time_total}\n' -G \
			"http://127.0.0.1:$gw_port/phones/yealink/directory" \
			--data-urlencode "token=$token" --data-urlencode "term=$term")
		[[ $status == 200 ]] || die "search ${term:-(none)} answered $status: $(cat "$work/answer.xml")"
		times+=("$(awk -v t="$t" 'BEGIN { printf "%.1f", t * 1000 }')")
	done <"$file"
	printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END {
		p99 = int(NR * 0.99); if (p99 < 1) p99 = 1
		printf "%s / %s / %s", v[int((NR + 1) / 2)], v[p99], v[NR] }'
}

rows=()
for kind in names:"part of a name (3-5 letters)" numbers:"a whole number, national form" \
	prefixes:"the first 8 digits of a number" browse:"no term (the first page)"; do
	rows+=("| ${kind#*:} | $(time_searches "$work/${kind%%:*}") |")
done

mkdir -p deploy/bench/results
{
	printf '# Directory search on %s contacts\n\n' "$contacts"
	printf -- '- %s, build %s; load average before: %s, after: %s\n' \
		"$(date -u +%Y-%m-%dT%H:%MZ)" "$profile" "$load_before" "$(cut -d' ' -f1-3 /proc/loadavg)"
	printf -- '- seeded in %s s; %s requests per kind, one at a time (curl), a page of 100\n\n' "$seed_secs" "$runs"
	printf '| search | p50 / p99 / max ms |\n| --- | --- |\n'
	printf '%s\n' "${rows[@]}"
} | tee "$out"
