# Sourced by deploy/kubernetes/validate.sh and deploy/validate.sh: a Python venv with the
# validation tools, in target/deploy-tools (outside git, reused between runs, rebuilt when the
# pinned versions change). `deploy_tools_python` prints the venv's python.
# shellcheck shell=bash

DEPLOY_TOOLS_REQUIREMENTS=(
	"kubernetes-validate==1.37.0" # Kubernetes OpenAPI schemas 1.25-1.37, offline
	"check-jsonschema==0.39.0"    # bundles the Compose Specification schema
)

deploy_tools_python() {
	local root venv stamp want python
	root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
	venv=${CIDGATE_DEPLOY_TOOLS_VENV:-$root/target/deploy-tools}
	stamp=$venv/.requirements
	want=$(printf '%s\n' "${DEPLOY_TOOLS_REQUIREMENTS[@]}")
	if [[ -x $venv/bin/python && -f $stamp && "$(cat "$stamp")" == "$want" ]]; then
		printf '%s\n' "$venv/bin/python"
		return 0
	fi
	python=${PYTHON:-python3}
	command -v "$python" >/dev/null 2>&1 || {
		echo "deploy tools: $python not found (apt-get install python3 python3-venv)" >&2
		return 1
	}
	echo "deploy tools: creating $venv (${DEPLOY_TOOLS_REQUIREMENTS[*]})" >&2
	rm -rf "$venv"
	if ! "$python" -m venv "$venv" >&2; then
		echo "deploy tools: '$python -m venv' failed; on Debian: apt-get install python3-venv" >&2
		return 1
	fi
	"$venv/bin/python" -m pip install --disable-pip-version-check --quiet "${DEPLOY_TOOLS_REQUIREMENTS[@]}" >&2
	printf '%s\n' "$want" >"$stamp"
	printf '%s\n' "$venv/bin/python"
}

# missing_packages PACKAGE...: prints those of the Debian packages that are not installed.
missing_packages() {
	local missing=() pkg
	for pkg in "$@"; do
		dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
	done
	printf '%s\n' "${missing[*]}"
}

# ensure_packages PACKAGE...: installs the Debian packages that are missing (as root, with
# apt-get), so a check runs instead of being skipped; otherwise prints the line that
# installs them and returns 1.
ensure_packages() {
	local missing=()
	read -r -a missing <<<"$(missing_packages "$@")"
	((${#missing[@]} == 0)) && return 0
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
		echo "deploy tools: installing ${missing[*]}" >&2
		apt-get update -qq >&2 &&
			DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
		return
	fi
	echo "deploy tools: missing ${missing[*]}: sudo apt-get install ${missing[*]}" >&2
	return 1
}
