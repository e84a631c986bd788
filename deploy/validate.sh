#!/usr/bin/env bash
# Offline checks of everything under deploy/ that has a checker; exits non-zero on any error.
#
#   kubernetes/   deploy/kubernetes/validate.sh (schemas, kustomization, policy)
#   compose.yaml  the Compose Specification schema (check-jsonschema's bundled copy)
#   haproxy/      haproxy -c                      when haproxy is installed
#   systemd/      systemd-analyze verify          when systemd-analyze is installed
#   deb/          the package's unit: systemd-analyze verify, and the hardening of systemd/'s;
#                 its settings file: the settings of systemd/'s
#   pbx/kamailio  kamailio -c                     with kamailio-utils-modules and -extra-modules installed
#   scripts       shellcheck                      when shellcheck is installed
#   pbx/*/        XML well-formedness (3CX template, FreeSWITCH dialplan, sipp scenarios)
#   pbx/freeswitch the Lua scripts' unit tests  when a Lua interpreter is installed
#   pbx recipes   check_recipes.py: what the real PBXs can read (no JSON_DECODE, the answer
#                 forms asked for, FILTER sets, mod_curl's `secure`)
#   exposure      check_exposure.py: HAProxy's log (no query, no /pop/ link; run live when
#                 haproxy is installed), compose's trusted proxy, direct_line dialled only
#                 in the PBX recipes' agents contexts
#
# The checkers come from Debian's packages (haproxy, lua5.4, shellcheck, kamailio with the
# recipe's modules): as root they are installed when missing, so CI runs every check;
# otherwise a check whose tool is missing is reported as skipped, with the
# line that installs it. The Python tools are installed into target/deploy-tools (PyPI).
set -uo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
cd "$root" || exit 2

# shellcheck source=SCRIPTDIR/tools.sh
. "$here/tools.sh"
export PYTHONDONTWRITEBYTECODE=1

passed=0
failed=0
skipped=0
check() { # NAME COMMAND...
	local name=$1 out
	shift
	if out=$("$@" 2>&1); then
		passed=$((passed + 1))
		printf 'ok      %s\n' "$name"
	else
		failed=$((failed + 1))
		printf 'FAILED  %s\n' "$name"
		printf '%s\n' "$out" | sed 's/^/        /'
	fi
}
skip() {
	skipped=$((skipped + 1))
	printf 'skipped %s (%s)\n' "$1" "$2"
}

py=$(deploy_tools_python) || exit 2
# kamailio -c loads every module of the recipe: http_client and jansson are in the
# utils and extra module packages (without them it fails, so the check needs all three).
kamailio_packages=(kamailio kamailio-utils-modules kamailio-extra-modules)
debian_tools=(haproxy lua5.4 shellcheck "${kamailio_packages[@]}")
command -v dpkg-query >/dev/null 2>&1 && { ensure_packages "${debian_tools[@]}" || true; }
venv_bin=$(dirname "$py")

check "kubernetes manifests" "$here/kubernetes/validate.sh"
check "compose.yaml (Compose Specification)" \
	"$venv_bin/check-jsonschema" --builtin-schema vendor.compose-spec "$here/compose.yaml"
check "exposure (logs, trusted proxy, direct_line dialling)" "$py" "$here/check_exposure.py" --self-test "$here"
check "pbx recipes (what Asterisk, FreeSWITCH and 3CX can read)" "$py" "$here/pbx/check_recipes.py" "$here/pbx"

if command -v haproxy >/dev/null 2>&1; then
	check "haproxy/haproxy.cfg" haproxy -c -q -f "$here/haproxy/haproxy.cfg"
else
	skip "haproxy/haproxy.cfg" "haproxy not installed"
fi

systemd_verify() { # UNIT-FILE BINARY-PATH-IN-IT
	local tmp rc=0 exe=/bin/true
	tmp=$(mktemp -d)
	# verify insists that ExecStart exists: point it at a binary that does.
	[[ -x $root/target/release/cidgate ]] && exe=$root/target/release/cidgate
	sed -e "s|$2|$exe|g" \
		-e 's|^EnvironmentFile=/|EnvironmentFile=-/|' \
		"$1" >"$tmp/cidgate.service"
	# The package installs the man page it names; here it is not installed.
	systemd-analyze verify --man=no "$tmp/cidgate.service" || rc=$?
	rm -rf "$tmp"
	return "$rc"
}
if command -v systemd-analyze >/dev/null 2>&1; then
	check "systemd/cidgate.service" systemd_verify "$here/systemd/cidgate.service" /usr/local/bin/cidgate
	check "deb/cidgate.service" systemd_verify "$here/deb/cidgate.service" /usr/bin/cidgate
else
	skip "systemd/cidgate.service, deb/cidgate.service" "systemd-analyze not installed"
fi

# The package's unit keeps every directive of the hand-installed one but those it changes
# on purpose (its own user, path and documentation).
units_agree() {
	local missing
	missing=$(comm -23 \
		<(grep -E '^[A-Za-z]+=' "$here/systemd/cidgate.service" |
			grep -Ev '^(DynamicUser|ExecStart|Documentation)=' | sort -u) \
		<(grep -E '^[A-Za-z]+=' "$here/deb/cidgate.service" | sort -u))
	[[ -z $missing ]] || {
		echo "deploy/deb/cidgate.service lacks:"
		echo "$missing"
		return 1
	}
}
check "deb/cidgate.service keeps systemd/cidgate.service's hardening" units_agree

# The package's settings file offers the same settings as systemd/cidgate.env; it differs in
# its comments and in leaving DATABASE_URL unset (so that the service waits for it).
settings_agree() {
	local differ
	differ=$(diff \
		<(grep -E '^#?[A-Z_]+=' "$here/systemd/cidgate.env" | sed 's/^DATABASE_URL=/#DATABASE_URL=/') \
		<(grep -E '^#?[A-Z_]+=' "$here/deb/cidgate.env")) || {
		echo "deploy/deb/cidgate.env and deploy/systemd/cidgate.env offer different settings:"
		echo "$differ"
		return 1
	}
}
check "deb/cidgate.env offers systemd/cidgate.env's settings" settings_agree

kamailio_missing=kamailio
if command -v kamailio >/dev/null 2>&1; then
	kamailio_missing=
	command -v dpkg-query >/dev/null 2>&1 && kamailio_missing=$(missing_packages "${kamailio_packages[@]}")
fi
if [[ -z $kamailio_missing ]]; then
	check "pbx/kamailio/kamailio.cfg" kamailio -c -f "$here/pbx/kamailio/kamailio.cfg"
else
	skip "pbx/kamailio/kamailio.cfg" "needs $kamailio_missing: sudo apt-get install $kamailio_missing"
fi

xml_files=()
while IFS= read -r f; do xml_files+=("$f"); done < <(find "$here/pbx" -name '*.xml' | sort)
xml_wellformed() {
	"$py" - "$@" <<'PY'
import sys
import xml.dom.minidom
for path in sys.argv[1:]:
    xml.dom.minidom.parse(path)
PY
}
check "pbx XML (${#xml_files[@]} files well-formed)" xml_wellformed "${xml_files[@]}"

lua=
for candidate in lua5.4 lua5.3 lua5.2 lua5.1 lua luajit; do
	if command -v "$candidate" >/dev/null 2>&1; then
		lua=$candidate
		break
	fi
done
if [[ -n $lua ]]; then
	check "pbx/freeswitch/cidgate_lookup.lua (unit test, $lua)" "$lua" "$here/pbx/freeswitch/test_lookup.lua"
	check "pbx/freeswitch/cidgate_call_end.lua (unit test, $lua)" "$lua" "$here/pbx/freeswitch/test_call_end.lua"
else
	skip "pbx/freeswitch/cidgate_lookup.lua, cidgate_call_end.lua" "no Lua interpreter (apt-get install lua5.4)"
fi

if command -v shellcheck >/dev/null 2>&1; then
	# The scripts this file's checks cover (local/, bench/ and others have their owners).
	scripts=("$here/validate.sh" "$here/tools.sh" "$here/kubernetes/validate.sh" "$here/pbx/kamailio/test.sh"
		"$here/deb/build.sh" "$here/deb/check.sh" "$here/deb/maintainer-scripts/postinst"
		"$here/deb/maintainer-scripts/postrm")
	check "shellcheck (${#scripts[@]} scripts)" shellcheck -x "${scripts[@]}"
else
	skip "shellcheck" "shellcheck not installed"
fi

echo "deploy-checks: $passed passed, $failed failed, $skipped skipped"
((failed == 0))
