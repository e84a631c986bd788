#!/usr/bin/env bash
# Check the Debian package the way an admin meets it (run by .ci/run after
# `deploy/deb/build.sh --dev`; needs root and apt-get, and changes the machine only while it
# runs: the package is purged at the end, also when a check fails).
#
#   install  apt-get install ./target/debian/cidgate_*.deb; `cidgate --version` names the
#            version and the commit; the system user, the conffile (mode 0600), the unit
#            (enabled; `systemd-analyze verify` where installed); its start condition skips
#            the start while DATABASE_URL is unset; `man cidgate` renders (man-db is
#            installed when missing); the bash completion loads and completes; a reinstall
#            keeps an edited cidgate.env
#   remove   the program and unit are gone, the edited cidgate.env stays
#   purge    nothing of the package stays: files, settings, user, group, unit state
#
# Usage: deploy/deb/check.sh [PACKAGE.deb]   (default: the one in target/debian)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

fail() {
	echo "check.sh: FAIL: $*" >&2
	exit 1
}
ok() { echo "check.sh: ok: $*"; }

if [[ $(id -u) != 0 ]] || ! command -v apt-get >/dev/null 2>&1; then
	echo "check.sh: needs root and apt-get (it installs and purges the package)" >&2
	exit 1
fi

shopt -s nullglob
debs=("${1:-}")
[[ -n ${debs[0]} ]] || debs=(target/debian/cidgate_*.deb)
((${#debs[@]} == 1)) || fail "expected one target/debian/cidgate_*.deb (run deploy/deb/build.sh), found ${#debs[@]}"
deb=${debs[0]}
[[ $deb == /* || $deb == ./* ]] || deb=./$deb

# Never touch an admin's own installation, user or settings.
if dpkg-query -W -f='${db:Status-Status}' cidgate 2>/dev/null | grep -qv '^not-installed$'; then
	fail "a cidgate package is already on this machine: check.sh installs and purges its own"
fi
getent passwd cidgate >/dev/null && fail "a user named cidgate exists already"
[[ -e /etc/cidgate ]] && fail "/etc/cidgate exists already"

export DEBIAN_FRONTEND=noninteractive
# Without recommends: the package's (postgresql) would stay on the machine after the purge.
apt_install() {
	apt-get install -y -qq --no-install-recommends "$@" >/dev/null || {
		apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null
	}
}
command -v man >/dev/null 2>&1 || apt_install man-db

purge() {
	if dpkg-query -W -f='${db:Status-Status}' cidgate 2>/dev/null | grep -qv '^not-installed$'; then
		apt-get purge -y -qq cidgate >/dev/null
	fi
}
trap 'purge || echo "check.sh: could not purge cidgate" >&2' EXIT

# What the package holds (files, not directories): all of it must be gone after the purge.
mapfile -t packaged < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | grep -v '/$' | sed 's|^\./|/|')
version=$(dpkg-deb -f "$deb" Version)

# --- install --------------------------------------------------------------------------------
apt_install "$deb"
ok "apt-get install $deb"

out=$(cidgate --version)
expected="cidgate ${version%%-*} "
[[ $out == "$expected"* ]] || fail "cidgate --version: '$out', expected '$expected(…)'"
if head=$(git rev-parse --short=12 HEAD 2>/dev/null); then
	[[ $out == "${expected}(commit $head)" ]] || fail "cidgate --version: '$out', expected commit $head"
fi
ok "cidgate --version: $out"

[[ $(getent passwd cidgate | cut -d: -f3) -lt 1000 ]] || fail "cidgate is not a system user"
[[ $(getent passwd cidgate | cut -d: -f7) == */nologin || $(getent passwd cidgate | cut -d: -f7) == /bin/false ]] ||
	fail "the cidgate user has a login shell"
getent group cidgate >/dev/null || fail "no cidgate group"
[[ $(runuser -u cidgate -- cidgate --version) == "$out" ]] || fail "the cidgate user cannot run cidgate"
ok "system user cidgate ($(getent passwd cidgate))"

[[ $(stat -c '%a %U' /etc/cidgate/cidgate.env) == "600 root" ]] || fail "cidgate.env is not 0600 root"
[[ $(stat -c '%a' /etc/cidgate) == 750 ]] || fail "/etc/cidgate is not 0750"
dpkg-query -W -f='${Conffiles}\n' cidgate | grep -q ' /etc/cidgate/cidgate.env ' ||
	fail "/etc/cidgate/cidgate.env is not a conffile"
ok "/etc/cidgate/cidgate.env: conffile, 0600 root"

unit=/usr/lib/systemd/system/cidgate.service
[[ -f $unit ]] || fail "no $unit"
[[ -L /etc/systemd/system/multi-user.target.wants/cidgate.service ]] || fail "cidgate.service is not enabled"
grep -qx 'User=cidgate' "$unit" || fail "the unit does not run as cidgate"
if command -v systemd-analyze >/dev/null 2>&1; then
	systemd-analyze verify "$unit" || fail "systemd-analyze verify $unit"
	ok "systemd-analyze verify $unit"
else
	echo "check.sh: skipped: systemd-analyze verify (not installed)"
fi

# The start condition, run as systemd would ($$ is systemd's escape for $) with the
# environment systemd builds from the file: skipped (exit 1, saying why) until
# DATABASE_URL is set.
condition=$(sed -n "s/^ExecCondition=\/bin\/sh -c '\(.*\)'$/\1/p" "$unit")
condition=${condition//\$\$/\$}
[[ -n $condition ]] || fail "the unit has no ExecCondition"
start_allowed() { # ENV-FILE
	# shellcheck disable=SC2016 # expanded by the inner bash
	env -i bash -c 'set -a; . "$1"; set +a; exec /bin/sh -c "$2"' _ "$1" "$condition"
}
if why=$(start_allowed /etc/cidgate/cidgate.env 2>&1); then
	fail "the service would start with the shipped settings"
fi
[[ $why == *DATABASE_URL* ]] || fail "the skipped start does not say why: '$why'"
configured=$(mktemp)
{
	cat /etc/cidgate/cidgate.env
	echo 'DATABASE_URL=postgres://cidgate:secret@127.0.0.1:5432/cidgate'
} >"$configured"
start_allowed "$configured" || fail "the service would not start with DATABASE_URL set"
rm -f "$configured"
ok "not started until DATABASE_URL is set ($why)"

page=$(env MANPAGER=cat MANWIDTH=100 man cidgate 2>&1) || fail "man cidgate: $page"
[[ $page == *"Caller-lookup and screen-pop gateway"* && $page == *"cidgate-tenant(1)"* ]] ||
	fail "man cidgate does not render the page: $page"
env MANPAGER=cat man cidgate-token-create 2>/dev/null | grep -q -- '--scope' || fail "man cidgate-token-create"
ok "man cidgate renders"

# Loaded the way bash-completion loads it, then asked what follows `cidgate ten` and
# `cidgate token create --sc`.
completion=$(bash --norc -c '
	. /usr/share/bash-completion/completions/cidgate
	complete -p cidgate >/dev/null || exit 1
	COMP_WORDS=(cidgate ten); COMP_CWORD=1; COMP_LINE="cidgate ten"; COMP_POINT=${#COMP_LINE}
	_cidgate cidgate ten cidgate; echo "${COMPREPLY[*]}"
	COMP_WORDS=(cidgate token create --sc); COMP_CWORD=3; COMP_LINE="${COMP_WORDS[*]}"; COMP_POINT=${#COMP_LINE}
	_cidgate cidgate --sc create; echo "${COMPREPLY[*]}"
') || fail "the bash completion does not load"
[[ $completion == $'tenant\n--scope' ]] || fail "bash completion offered: $completion"
ok "bash completion loads and completes (cidgate ten → tenant, token create --sc → --scope)"
for f in /usr/share/zsh/vendor-completions/_cidgate /usr/share/fish/vendor_completions.d/cidgate.fish; do
	[[ -s $f ]] || fail "no $f"
done
if command -v zsh >/dev/null 2>&1; then zsh -n /usr/share/zsh/vendor-completions/_cidgate || fail "zsh -n _cidgate"; fi
if command -v fish >/dev/null 2>&1; then fish -n /usr/share/fish/vendor_completions.d/cidgate.fish || fail "fish -n"; fi
[[ -f /usr/share/doc/cidgate/README.md && -f /usr/share/doc/cidgate/docs/operations.md ]] ||
	fail "no docs in /usr/share/doc/cidgate"
ok "zsh and fish completions, docs in /usr/share/doc/cidgate"

# An admin's edit survives a reinstall (an upgrade with the same conffile).
marker="# edited by check.sh $$"
echo "$marker" >>/etc/cidgate/cidgate.env
apt-get install -y -qq --no-install-recommends --reinstall "$deb" >/dev/null
grep -qxF "$marker" /etc/cidgate/cidgate.env || fail "a reinstall lost the edited cidgate.env"
ok "a reinstall keeps the edited cidgate.env"

# --- remove ---------------------------------------------------------------------------------
apt-get remove -y -qq cidgate >/dev/null
[[ ! -e /usr/bin/cidgate && ! -e $unit ]] || fail "apt-get remove left the program or the unit"
grep -qxF "$marker" /etc/cidgate/cidgate.env || fail "apt-get remove did not keep the edited cidgate.env"
[[ $(dpkg-query -W -f='${db:Status-Status}' cidgate) == config-files ]] || fail "not in state config-files"
ok "apt-get remove: program and unit gone, the edited cidgate.env kept"

# --- purge ----------------------------------------------------------------------------------
apt-get purge -y -qq cidgate >/dev/null
left=()
for f in "${packaged[@]}" /etc/cidgate /etc/systemd/system/cidgate.service \
	/etc/systemd/system/multi-user.target.wants/cidgate.service \
	/var/lib/systemd/deb-systemd-helper-enabled/cidgate.service.dsh-also \
	/var/lib/systemd/deb-systemd-helper-enabled/multi-user.target.wants/cidgate.service \
	/var/lib/systemd/deb-systemd-helper-masked/cidgate.service; do
	[[ -e $f || -L $f ]] && left+=("$f")
done
((${#left[@]} == 0)) || fail "apt-get purge left: ${left[*]}"
getent passwd cidgate >/dev/null && fail "apt-get purge left the cidgate user"
getent group cidgate >/dev/null && fail "apt-get purge left the cidgate group"
if dpkg-query -W -f='${db:Status-Status}' cidgate 2>/dev/null | grep -qv '^not-installed$'; then
	fail "dpkg still knows cidgate after the purge"
fi
ok "apt-get purge: nothing of the package stays (${#packaged[@]} files, settings, user, group, unit state)"
echo "check.sh: the package installs, works, removes and purges cleanly"
