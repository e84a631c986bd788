#!/usr/bin/env bash
# Validate deploy/kubernetes/ offline: Kubernetes schemas (strict, bundled with the PyPI
# package kubernetes-validate), a local subset schema for the CloudNativePG Cluster, the
# kustomization and the project's consistency/hardening rules (validate.py says which).
# Installs its tools into a venv under target/ on first use (needs PyPI once). Exit status is
# non-zero on any error.
#
#   deploy/kubernetes/validate.sh              # validate, after a self-test of the checks
#   K8S_VERSIONS="1.29.0 1.37.0" deploy/kubernetes/validate.sh
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

# shellcheck source=SCRIPTDIR/../tools.sh
. "$root/deploy/tools.sh"

export PYTHONDONTWRITEBYTECODE=1
py=$(deploy_tools_python)
exec "$py" "$here/validate.py" --self-test "$here"
