#!/usr/bin/env bash
# End-to-end test of deploy/pbx/kamailio/kamailio.cfg, everything on 127.0.0.1:
#
#   sipp UAC (caller) --INVITE--> Kamailio --HTTP--> cidgate serve --> PostgreSQL (pg.sh kamailio)
#                                    |
#                                    +--INVITE + caller data--> sipp UAS (called side)
#
# Kamailio runs with WITH_DIRECT_LINE_RURI (AGENTS_HOP is the same sipp UAS). Cases: a known
# caller gets the CRM name (From display name, X-Caller-Name) and X-Direct-Line, and the call
# goes to the agent's extension (Request-URI user 101); a contact whose direct_line is a
# dial string from the CRM (a premium-rate number) gets the name but no X-Direct-Line, and
# the call keeps the dialled number (no toll fraud through a CRM field);
# an unknown caller connects without them; a call the called side refuses (486) is missed;
# with cidgate stalled (SIGSTOP: connections are accepted, nothing answers) and with cidgate
# stopped, calls still connect, without caller data, within the HTTP timeout. A call from a
# number on the tenant's spam list, whose P-Asserted-Identity says verstat=TN-Validation-Failed
# (and whose Identity PASSporT says attest C), goes to the screening route (sip:screening@…,
# X-Route-Identifier: screening, X-Caller-Name: SPAM?). Then cidgate is
# started again and every call placed must be in the CDR API (GET /api/v1/reportsCDRLogs, with
# a report token), ended, with its caller number and outcome: Kamailio reports each call's end
# from its timer process, and retries those cidgate missed while it was stalled or stopped.
# Ends with `kamailio-e2e: N passed, M failed`; exits non-zero on any failure or setup error.
#
# Needs Debian's kamailio, kamailio-utils-modules (http_client), kamailio-extra-modules
# (jansson), sip-tester (sipp) and jq: installed with apt-get when missing and running as root.
#
# Environment:
#   CIDGATE_BIN                    cidgate binary to use (default: cargo build --bin cidgate,
#                                  then target/debug/cidgate)
#   CIDGATE_KAMAILIO_PG_PORT       port of the private PostgreSQL cluster (default 25440)
#   CIDGATE_KAMAILIO_E2E_TIMEOUT   seconds the run may take once set up (default 300)
#   CIDGATE_KEEP_WORKDIR=1         keep the temp dir with configs and logs (kept on failure)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
here=$root/deploy/pbx/kamailio
cd "$root"

pg_name=kamailio
pg_port=${CIDGATE_KAMAILIO_PG_PORT:-25440}
limit=${CIDGATE_KAMAILIO_E2E_TIMEOUT:-300}
http_timeout=1 # seconds; http_client's resolution is whole seconds
packages=(kamailio kamailio-utils-modules kamailio-extra-modules sip-tester jq)

say() { printf 'kamailio-e2e: %s\n' "$*" >&2; }
die() {
	say "error: $*"
	exit 1
}

# ---------------------------------------------------------------- processes and cleanup
work=
pg_started=0
cidgate_pid=
kamailio_pid=
uas_pid=
watchdog_pid=
failed_any=0

stop_pid() { # PID [seconds to wait before SIGKILL]
	local pid=$1 wait=${2:-10} i
	[[ -n $pid ]] || return 0
	kill -0 "$pid" 2>/dev/null || return 0
	kill -CONT "$pid" 2>/dev/null || true
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < wait * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || true
}

cleanup() {
	local status=$?
	trap - EXIT
	stop_pid "$uas_pid" 5
	stop_pid "$kamailio_pid" 10
	stop_pid "$cidgate_pid" 35
	if ((pg_started)); then
		"$root/deploy/local/pg.sh" stop "$pg_name" >/dev/null 2>&1 || say "warning: could not stop PostgreSQL cluster '$pg_name'"
	fi
	if [[ -n $watchdog_pid ]]; then
		kill -TERM "$watchdog_pid" 2>/dev/null || true
		wait "$watchdog_pid" 2>/dev/null || true
	fi
	if [[ -n $work && -d $work ]]; then
		if ((status != 0 || failed_any)) || [[ ${CIDGATE_KEEP_WORKDIR:-0} == 1 ]]; then
			say "configs and logs kept in $work"
		else
			rm -rf "$work"
		fi
	fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---------------------------------------------------------------- prerequisites
missing_packages() {
	local p
	for p in "${packages[@]}"; do
		if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
			printf '%s\n' "$p"
		fi
	done
}

command -v dpkg-query >/dev/null 2>&1 || die "this test needs a Debian-like system (dpkg-query, apt-get)"
mapfile -t need < <(missing_packages)
if ((${#need[@]})); then
	if [[ $(id -u) -ne 0 ]]; then
		die "missing packages; install them with: sudo apt-get update && sudo apt-get install -y --no-install-recommends ${need[*]}"
	fi
	say "installing ${need[*]} (Debian may start its own kamailio service on port 5060; this test does not use it)"
	apt-get update >&2
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${need[@]}" >&2
fi
for tool in kamailio sipp curl ss psql jq; do
	command -v "$tool" >/dev/null 2>&1 || die "'$tool' not found (packages: kamailio, sip-tester, curl, iproute2, postgresql-client, jq)"
done

if [[ -n ${CIDGATE_BIN:-} ]]; then
	bin=$CIDGATE_BIN
else
	say "building cidgate (cargo build --bin cidgate)"
	cargo build --quiet --bin cidgate >&2
	bin=$root/target/debug/cidgate
fi
[[ -x $bin ]] || die "no cidgate binary at $bin"

# From here on everything is bounded in time.
(
	trap 'kill "$sp" 2>/dev/null; exit 0' TERM
	sleep "$limit" &
	sp=$!
	wait "$sp"
	printf 'kamailio-e2e: error: timed out after %ss\n' "$limit" >&2
	kill -TERM $$
) &
watchdog_pid=$!

work=$(mktemp -d "${TMPDIR:-/tmp}/cidgate-kamailio.XXXXXX")

# ---------------------------------------------------------------- ports
used_ports=" $pg_port "
port_busy() { # tcp|udp PORT
	[[ $used_ports == *" $2 "* ]] && return 0
	[[ -n $(ss -Hln --"$1" "sport = :$2" 2>/dev/null) ]]
}
free_port() { # tcp|udp
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 30000))
		if ! port_busy tcp "$p" && ! port_busy udp "$p"; then
			used_ports+="$p "
			printf '%s\n' "$p"
			return 0
		fi
	done
	die "no free port found"
}
wait_udp_listen() { # PORT PID WHAT
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -n $(ss -Hlnu "sport = :$1" 2>/dev/null) ]] && return 0
		kill -0 "$2" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

cg_port=$(free_port tcp)
sip_port=$(free_port udp)
uas_port=$(free_port udp)
uac_port=$(free_port udp)

# ---------------------------------------------------------------- PostgreSQL + cidgate
database_url=$("$root/deploy/local/pg.sh" start "$pg_name" "$pg_port" --fast)
pg_started=1
# Start from an empty database every run.
psql -q -X -v ON_ERROR_STOP=1 "$database_url" >/dev/null <<'SQL'
DROP DATABASE IF EXISTS cidgate_kamailio_e2e WITH (FORCE);
CREATE DATABASE cidgate_kamailio_e2e;
SQL
DATABASE_URL=${database_url%/*}/cidgate_kamailio_e2e
export DATABASE_URL
export RUST_LOG=${RUST_LOG:-warn}

"$bin" migrate >&2
"$bin" tenant create kamailio-e2e --region RO --name "Kamailio e2e" >/dev/null
# The PBX's token: lookups and call events, nothing else. `token create` prints the token
# alone on its last line.
pbx_token=$("$bin" token create --tenant kamailio-e2e --scope lookup,events --label kamailio | tail -n 1)
sync_token=$("$bin" token create --tenant kamailio-e2e --scope sync --label e2e | tail -n 1)
report_token=$("$bin" token create --tenant kamailio-e2e --scope report --label e2e-cdr | tail -n 1)
for t in "$pbx_token" "$sync_token" "$report_token"; do
	[[ $t =~ ^[A-Za-z0-9_-]+$ ]] || die "unexpected token format"
done

base=http://127.0.0.1:$cg_port
start_cidgate() {
	# This script's own CIDGATE_* settings are not cidgate's (it would warn about each).
	env -u CIDGATE_BIN -u CIDGATE_KAMAILIO_PG_PORT -u CIDGATE_KAMAILIO_E2E_TIMEOUT \
		-u CIDGATE_KEEP_WORKDIR -u CIDGATE_SKIP_PBX_E2E \
		CIDGATE_LISTEN="127.0.0.1:$cg_port" "$bin" serve >>"$work/cidgate.log" 2>&1 &
	cidgate_pid=$!
	local i
	for ((i = 0; ; i++)); do
		if curl -fsS -o /dev/null --max-time 2 "$base/readyz" 2>/dev/null; then
			return 0
		fi
		kill -0 "$cidgate_pid" 2>/dev/null || {
			tail -n 20 "$work/cidgate.log" >&2
			die "cidgate serve exited"
		}
		((i < 300)) || die "cidgate did not become ready in 30 s"
		sleep 0.1
	done
}
start_cidgate

known_number=0722000007
known_name="Ion Popescu"
known_direct="SIP/101"
known_agent=101
toll_number=0722000066
toll_name="Mallory Dialout"
toll_direct="SIP/+449001234567"
unknown_number=0722999999
spam_number=+15550001111
dialled=0210000000

# Caller trust: the tenant screens flagged numbers to the route `screening`.
"$bin" tenant set kamailio-e2e --spam-route screening --spam-name 'SPAM?' >/dev/null 2>&1 ||
	die "cidgate tenant set --spam-route failed"
"$bin" spam add --tenant kamailio-e2e "$spam_number" >/dev/null 2>&1 || die "cidgate spam add failed"

status=$(curl -sS -o "$work/put.json" -w '%{http_code}' --max-time 10 -X PUT \
	"$base/api/v1/contacts/12345" \
	-H "Authorization: Bearer $sync_token" -H 'Content-Type: application/json' \
	-d "{\"name\":\"$known_name\",\"phones\":[\"$known_number\"],\"direct_line\":\"$known_direct\",\"crm_url\":\"https://crm.example.com/contacts/12345\"}")
[[ $status == 201 ]] || die "PUT /api/v1/contacts/12345 answered $status: $(cat "$work/put.json")"
status=$(curl -sS -o "$work/put.json" -w '%{http_code}' --max-time 10 -X PUT \
	"$base/api/v1/contacts/66666" \
	-H "Authorization: Bearer $sync_token" -H 'Content-Type: application/json' \
	-d "{\"name\":\"$toll_name\",\"phones\":[\"$toll_number\"],\"direct_line\":\"$toll_direct\"}")
[[ $status == 201 ]] || die "PUT /api/v1/contacts/66666 answered $status: $(cat "$work/put.json")"

answer=$(curl -fsS --max-time 5 -H "Authorization: Bearer $pbx_token" \
	"$base/api/lookup?telephone=$known_number&dnid=$dialled")
[[ $answer == *"\"name\":\"$known_name\""* ]] || die "cidgate lookup does not find the contact: $answer"

# ---------------------------------------------------------------- Kamailio
sed -e "s|^#!substdef \"!CIDGATE_LOOKUP_URL!.*|#!substdef \"!CIDGATE_LOOKUP_URL!$base/api/lookup!g\"|" \
	-e "s|^#!substdef \"!CIDGATE_CALL_END_URL!.*|#!substdef \"!CIDGATE_CALL_END_URL!$base/api/v1/events/call-end!g\"|" \
	-e "s|^#!substdef \"!CIDGATE_TOKEN!.*|#!substdef \"!CIDGATE_TOKEN!$pbx_token!g\"|" \
	-e "s|^#!substdef \"!CIDGATE_TIMEOUT!.*|#!substdef \"!CIDGATE_TIMEOUT!$http_timeout!g\"|" \
	-e "s|^#!substdef \"!SIP_LISTEN!.*|#!substdef \"!SIP_LISTEN!udp:127.0.0.1:$sip_port!g\"|" \
	-e "s|^#!substdef \"!NEXT_HOP!.*|#!substdef \"!NEXT_HOP!sip:127.0.0.1:$uas_port!g\"|" \
	-e "s|^#!substdef \"!AGENTS_HOP!.*|#!substdef \"!AGENTS_HOP!sip:127.0.0.1:$uas_port!g\"|" \
	-e "s|^#!substdef \"!SCREENING_HOP!.*|#!substdef \"!SCREENING_HOP!sip:127.0.0.1:$uas_port!g\"|" \
	"$here/kamailio.cfg" >"$work/kamailio.cfg"
for key in "$base/api/lookup" "$base/api/v1/events/call-end" "$pbx_token" "udp:127.0.0.1:$sip_port" "sip:127.0.0.1:$uas_port"; do
	grep -qF -- "$key" "$work/kamailio.cfg" || die "rendering kamailio.cfg failed (missing $key)"
done
mkdir -p "$work/run"

kamailio -c -f "$work/kamailio.cfg" >"$work/kamailio-check.log" 2>&1 || {
	cat "$work/kamailio-check.log" >&2
	die "kamailio -c rejects the rendered config"
}
kamailio -c -A WITH_DIRECT_LINE_RURI -f "$work/kamailio.cfg" >>"$work/kamailio-check.log" 2>&1 || {
	cat "$work/kamailio-check.log" >&2
	die "kamailio -c rejects the config with WITH_DIRECT_LINE_RURI"
}

# -DD: the main process stays in the foreground (no systemd, no daemon); -E: log to stderr.
# `kamailio -c` does not run the modules' fixups (a bad variable name passes it): starting
# Kamailio is the real check, and it exits at once on such an error.
kamailio -A WITH_DIRECT_LINE_RURI -f "$work/kamailio.cfg" -P "$work/run/kamailio.pid" -Y "$work/run" -w "$work/run" \
	-DD -E -m 64 -M 8 >"$work/kamailio.log" 2>&1 &
kamailio_pid=$!
wait_udp_listen "$sip_port" "$kamailio_pid" || {
	tail -n 30 "$work/kamailio.log" >&2
	die "kamailio did not start listening on udp 127.0.0.1:$sip_port"
}

# ---------------------------------------------------------------- calls
passed=0
failed=0
call_ms=0
# The calls placed, for the CDR check: NAME -> Call-ID, caller number, expected outcome.
declare -A call_id=() call_caller=() call_outcome=()
calls=()
test_started=$(date -u -d '-5 min' +%Y-%m-%dT%H:%M:%SZ)

# place_call NAME CALLER [OUTCOME [UAC]]: one call through Kamailio, answered (uac.xml/uas.xml)
# or, with OUTCOME missed, refused with 486 (uac_busy.xml/uas_busy.xml); UAC another caller
# scenario (uac_screened.xml). The INVITE the UAS got is
# in $work/NAME.uas.msg; the call's Call-ID is remembered for the CDR check.
place_call() {
	local name=$1 caller=$2 outcome=${3:-answered} uas_rc=0 uac_rc=0 t0 t1 uac=uac.xml uas=uas.xml id
	if [[ $outcome == missed ]]; then
		uac=uac_busy.xml
		uas=uas_busy.xml
	fi
	uac=${4:-$uac}
	: >"$work/$name.uas.msg"
	timeout 30 sipp -sf "$here/sipp/$uas" -i 127.0.0.1 -p "$uas_port" -m 1 -nostdin \
		-timeout 25s -timeout_error -trace_msg -message_file "$work/$name.uas.msg" \
		>"$work/$name.uas.out" 2>&1 &
	uas_pid=$!
	if ! wait_udp_listen "$uas_port" "$uas_pid"; then
		say "$name: the sipp UAS did not start"
		return 1
	fi
	t0=$(date +%s%N)
	timeout 30 sipp -sf "$here/sipp/$uac" -i 127.0.0.1 -p "$uac_port" -m 1 -nostdin \
		-key caller "$caller" -s "$dialled" -timeout 25s -timeout_error \
		-trace_msg -message_file "$work/$name.uac.msg" \
		"127.0.0.1:$sip_port" >"$work/$name.uac.out" 2>&1 || uac_rc=$?
	t1=$(date +%s%N)
	call_ms=$(((t1 - t0) / 1000000))
	wait "$uas_pid" || uas_rc=$?
	uas_pid=
	if ((uac_rc != 0 || uas_rc != 0)); then
		say "$name: call did not complete (caller sipp exit $uac_rc, called sipp exit $uas_rc)"
		return 1
	fi
	# The caller's sipp logs the messages it sent and received: all carry the Call-ID.
	id=$(grep -m 1 -i '^Call-ID:' "$work/$name.uac.msg" | sed -e 's/^[^:]*:[[:space:]]*//' -e 's/[[:space:]]*$//') || true
	if [[ -z $id ]]; then
		say "$name: no Call-ID in the caller's message log"
		return 1
	fi
	call_id[$name]=$id
	call_caller[$name]=$caller
	call_outcome[$name]=$outcome
	calls+=("$name")
}

# The INVITE as the called side received it (first message in the UAS log).
received_invite() {
	awk '/^INVITE /{p=1} p && /^[[:space:]]*$/{exit} p' "$work/$1.uas.msg"
}

check_has() { # NAME REGEX WHAT
	if ! received_invite "$1" | grep -Eq -- "$2"; then
		say "$1: the INVITE at the called side lacks $3"
		return 1
	fi
}
check_lacks() { # NAME REGEX WHAT
	if received_invite "$1" | grep -Eq -- "$2"; then
		say "$1: the INVITE at the called side carries $3"
		return 1
	fi
}

report() { # NAME STATUS
	if (($2 == 0)); then
		passed=$((passed + 1))
		say "PASS $1 (${call_ms} ms)"
	else
		failed=$((failed + 1))
		failed_any=1
		say "FAIL $1 (${call_ms} ms)"
		if [[ -f $work/$1.uas.msg ]]; then
			say "INVITE at the called side:"
			received_invite "$1" | sed 's/^/    /' >&2 || true
		fi
		say "last kamailio log lines:"
		tail -n 15 "$work/kamailio.log" | sed 's/^/    /' >&2 || true
	fi
}

no_caller_data() {
	check_lacks "$1" '^X-Caller-Name:' "X-Caller-Name" &&
		check_lacks "$1" '^X-Direct-Line:' "X-Direct-Line" &&
		check_lacks "$1" '^From: *"' "a From display name"
}

# 1. Known caller: name and direct line from cidgate; the caller's own X-Caller-Name is dropped.
case_known() {
	local n=known_caller_gets_name_and_direct_line rc=0
	{
		place_call "$n" "$known_number" &&
			check_has "$n" "^From: *\"$known_name\" *<sip:$known_number@" "From: \"$known_name\" <sip:$known_number@…>" &&
			check_has "$n" "^X-Caller-Name: $known_name\s*\$" "X-Caller-Name: $known_name" &&
			check_has "$n" "^X-Direct-Line: $known_agent\s*\$" "X-Direct-Line: $known_agent" &&
			check_has "$n" "^INVITE sip:$known_agent@" "the agent's extension as Request-URI user" &&
			check_has "$n" '^X-CRM-Id: 12345\s*$' "X-CRM-Id: 12345" &&
			check_lacks "$n" 'Spoofed By Caller' "the caller's spoofed X-Caller-Name"
	} || rc=1
	report "$n" "$rc"
}

# 1b. A direct_line that is a dial string (a premium-rate number set in the CRM): the name is
# added, the dial string is not passed on, and the call keeps the number dialled.
case_toll() {
	local n=crm_dial_string_is_never_passed_on rc=0
	{
		place_call "$n" "$toll_number" &&
			check_has "$n" "^X-Caller-Name: $toll_name\s*\$" "X-Caller-Name: $toll_name" &&
			check_lacks "$n" '^X-Direct-Line:' "X-Direct-Line" &&
			check_lacks "$n" '449001234567' "the CRM's dial string" &&
			check_has "$n" "^INVITE sip:$dialled@" "the dialled number as Request-URI user"
	} || rc=1
	report "$n" "$rc"
}

# 2. Unknown caller: connects, nothing added.
case_unknown() {
	local n=unknown_caller_connects_without_name rc=0
	{ place_call "$n" "$unknown_number" && no_caller_data "$n"; } || rc=1
	report "$n" "$rc"
}

# 2b. A listed number whose caller ID the carrier could not verify: to the screening route.
case_screened() {
	local n=listed_caller_goes_to_the_screening_route rc=0
	{
		place_call "$n" "$spam_number" answered uac_screened.xml &&
			check_has "$n" '^INVITE sip:screening@' "the screening route as Request-URI user" &&
			check_has "$n" '^X-Route-Identifier: screening\s*$' "X-Route-Identifier: screening" &&
			check_has "$n" '^X-Caller-Name: SPAM\?\s*$' "X-Caller-Name: SPAM?" &&
			check_lacks "$n" 'spoofed-route' "the caller's spoofed X-Route-Identifier"
	} || rc=1
	report "$n" "$rc"
}

# 3. The called side refuses the call (486 Busy Here): it is reported as missed.
case_missed() {
	local n=refused_call_is_reported_missed rc=0
	{ place_call "$n" "$known_number" missed && check_has "$n" "^X-Caller-Name: $known_name\s*\$" "X-Caller-Name: $known_name"; } || rc=1
	report "$n" "$rc"
}

# 4. cidgate accepts connections but never answers: the call waits at most the HTTP timeout.
case_stalled() {
	local n=stalled_cidgate_call_connects_after_http_timeout rc=0
	kill -STOP "$cidgate_pid"
	{ place_call "$n" "$known_number" && no_caller_data "$n"; } || rc=1
	kill -CONT "$cidgate_pid"
	if ((rc == 0 && call_ms > (http_timeout + 2) * 1000)); then
		say "$n: the call took ${call_ms} ms, more than the ${http_timeout} s HTTP timeout + 2 s"
		rc=1
	fi
	report "$n" "$rc"
}

# 5. cidgate stopped: the call connects at once, without caller data.
case_stopped() {
	local n=stopped_cidgate_call_connects_without_name rc=0
	stop_pid "$cidgate_pid" 35
	cidgate_pid=
	{ place_call "$n" "$known_number" && no_caller_data "$n"; } || rc=1
	if ((rc == 0 && call_ms > (http_timeout + 2) * 1000)); then
		say "$n: the call took ${call_ms} ms, more than the ${http_timeout} s HTTP timeout + 2 s"
		rc=1
	fi
	report "$n" "$rc"
}

# 6. cidgate back (same database): every call placed above is in the CDR API, ended, with
# its caller and outcome. The ends of the calls placed while cidgate was stalled or stopped
# reach it through Kamailio's retries.
cdr_get() { # QUERY-ARGS... : one CDR API page (curl -G arguments) on stdout
	curl -fsS --max-time 10 -G -H "Authorization: Bearer $report_token" "$@" "$base/api/v1/reportsCDRLogs"
}

# All calls of the range, every page, as one JSON array in $work/cdr.json.
cdr_fetch() {
	local page=0 cursor='' answer
	: >"$work/cdr.pages"
	answer=$(cdr_get --data-urlencode "startdate=$test_started" --data-urlencode "finishdate=$test_finished") || return 1
	while :; do
		printf '%s\n' "$answer" >>"$work/cdr.pages"
		jq -e '.CallList | length > 0' <<<"$answer" >/dev/null || break
		cursor=$(jq -r '.cursor // empty' <<<"$answer")
		[[ -n $cursor ]] || break
		page=$((page + 1))
		((page < 50)) || return 1
		answer=$(cdr_get --data-urlencode "cursor=$cursor") || return 1
	done
	# A call that changed after it was listed comes back on a later page: its last copy counts.
	jq -s '[.[].CallList[]] | group_by(.call_id) | map(last)' "$work/cdr.pages" >"$work/cdr.json"
}

# The CDR record of one Call-ID (its first leg's PBX id), or nothing.
cdr_record() {
	jq -c --arg k "$1" '[.[] | select(.activecallkey == $k)] | if length == 1 then .[0] else empty end' "$work/cdr.json"
}

case_cdr() {
	local name rec rc digits i
	stop_pid "$cidgate_pid" 35
	start_cidgate
	test_finished=$(date -u -d '+5 min' +%Y-%m-%dT%H:%M:%SZ)
	# Call ends go out every 0.5 s and cidgate writes events in batches: wait until every
	# call is there and ended (or 20 s).
	for ((i = 0; i < 40; i++)); do
		if cdr_fetch; then
			rc=0
			for name in "${calls[@]}"; do
				rec=$(cdr_record "${call_id[$name]}")
				if [[ -z $rec ]] || [[ $(jq -r '.ended_at // empty' <<<"$rec") == "" ]]; then
					rc=1
					break
				fi
			done
			((rc == 0)) && break
		fi
		sleep 0.5
	done
	[[ -f $work/cdr.json ]] || echo '[]' >"$work/cdr.json"
	call_ms=0
	for name in "${calls[@]}"; do
		rc=0
		rec=$(cdr_record "${call_id[$name]}")
		# The caller's number as cidgate normalizes it (+40722…) ends with its national digits.
		digits=${call_caller[$name]//[!0-9]/}
		digits=${digits#"${digits%%[!0]*}"}
		if [[ -z $rec ]]; then
			say "cdr_$name: Call-ID ${call_id[$name]} is not in the CDR API (one record per call expected)"
			rc=1
		elif ! jq -e --arg d "$digits" --arg o "${call_outcome[$name]}" --arg dnis "$dialled" '
				.ended_at != null and .started_at != null
				and .outcome == $o
				and ((.caller_number // "") | gsub("[^0-9]"; "") | endswith($d))
				and ((.dnis // "") | gsub("[^0-9]"; "") | endswith($dnis | ltrimstr("0")))
				and ((.direction // "") | ascii_downcase) == "inbound"
				and (if $o == "answered" then .answered_at != null else .answered_at == null end)' \
				<<<"$rec" >/dev/null; then
			say "cdr_$name: expected an ended Inbound call from ${call_caller[$name]} to $dialled, outcome ${call_outcome[$name]}; got:"
			jq . <<<"$rec" | sed 's/^/    /' >&2
			rc=1
		fi
		report_cdr "cdr_$name" "$rc"
	done
	# activecallkey finds the one call whose leg has that PBX call id.
	name=${calls[0]:-}
	rc=0
	if [[ -z $name ]]; then
		rc=1
	else
		rec=$(cdr_get --data-urlencode "activecallkey=${call_id[$name]}") || rec='{}'
		jq -e --arg k "${call_id[$name]}" '(.CallList | length) == 1 and .CallList[0].activecallkey == $k and has("cursor")' \
			<<<"$rec" >/dev/null || {
			say "cdr_activecallkey: ?activecallkey=${call_id[$name]} answered: $rec"
			rc=1
		}
	fi
	report_cdr cdr_activecallkey_finds_the_call "$rc"
	# The lookup carried the Call-ID (docs/calls.md): the known caller's record names the
	# contact its lookup found, the unknown caller's says the lookup identified no one.
	rc=0
	for name in known_caller_gets_name_and_direct_line unknown_caller_connects_without_name; do
		[[ -n ${call_id[$name]:-} ]] || {
			say "cdr_lookup_link: the call $name was not placed"
			rc=1
			continue
		}
		rec=$(cdr_record "${call_id[$name]}")
		if [[ $name == known_* ]]; then
			expected='.lookup.identified == true and .lookup.contact_id == "12345" and .contact_id == "12345"'
		else
			expected='.lookup.identified == false and .lookup.contact_id == null and .contact_id == null'
		fi
		jq -e "$expected" <<<"${rec:-null}" >/dev/null 2>&1 || {
			say "cdr_lookup_link: $name: expected $expected; got: ${rec:-no record}"
			rc=1
		}
	done
	report_cdr cdr_the_lookup_links_the_call_to_its_contact "$rc"
	# The screened call's record keeps what the carrier said of the caller ID.
	rc=0
	name=listed_caller_goes_to_the_screening_route
	if [[ -z ${call_id[$name]:-} ]]; then
		say "cdr_caller_trust: the call $name was not placed"
		rc=1
	else
		rec=$(cdr_record "${call_id[$name]}")
		expected='.caller_trust.verstat == "TN-Validation-Failed" and .caller_trust.attest == "C" and .lookup.screened == "spam_list"'
		jq -e "$expected" <<<"${rec:-null}" >/dev/null 2>&1 || {
			say "cdr_caller_trust: expected $expected; got: ${rec:-no record}"
			rc=1
		}
	fi
	report_cdr cdr_the_screened_call_keeps_its_caller_trust "$rc"
}

report_cdr() { # NAME STATUS
	if (($2 == 0)); then
		passed=$((passed + 1))
		say "PASS $1"
	else
		failed=$((failed + 1))
		failed_any=1
		say "FAIL $1"
		say "last kamailio log lines mentioning cidgate:"
		grep -i 'cidgate' "$work/kamailio.log" | tail -n 10 | sed 's/^/    /' >&2 || true
		say "last cidgate log lines:"
		tail -n 10 "$work/cidgate.log" | sed 's/^/    /' >&2 || true
	fi
}

case_known
case_toll
case_unknown
case_screened
case_missed
case_stalled
case_stopped
case_cdr

echo "kamailio-e2e: $passed passed, $failed failed"
((failed == 0))
