#!/usr/bin/env bash
# Fuzz phone-number normalization and lookup query parsing with libFuzzer
# (cargo fuzz) for a bounded time per target. Crashes are saved under
# fuzz/artifacts/<target>/ and fail the run.
# Usage: deploy/fuzz/run.sh [SECONDS_PER_TARGET]   (default 60)
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
seconds=${1:-60}

# shellcheck source=SCRIPTDIR/../tools.sh
. "$root/deploy/tools.sh"
# libfuzzer-sys builds libFuzzer, which is C++.
command -v c++ >/dev/null 2>&1 || ensure_packages g++
command -v cargo-fuzz >/dev/null 2>&1 || cargo install cargo-fuzz --locked
# cargo fuzz needs nightly-only compiler flags; the stable toolchain allows them
# with RUSTC_BOOTSTRAP (the only toolchain this project's machines have).
export RUSTC_BOOTSTRAP=1

for target in phone_number lookup_query; do
	mkdir -p "fuzz/corpus/$target"
	echo "fuzz: $target for ${seconds}s" >&2
	cargo fuzz run "$target" -- -max_total_time="$seconds" -max_len=512
done
echo "fuzz: 2 passed, 0 failed"
