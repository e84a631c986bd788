#!/usr/bin/env bash
# Build the Debian package: target/debian/cidgate_<version>_amd64.deb.
#
#   deploy/deb/build.sh                  release build (what to ship)
#   deploy/deb/build.sh --dev            package the dev-profile binary that CI has already
#                                        built, with fast compression: for checking the
#                                        packaging (deploy/deb/check.sh), never for shipping
#   deploy/deb/build.sh -- ARGS...       more arguments for cargo deb (e.g. --deb-revision 2,
#                                        --maintainer "Name <mail>")
#
# Installs cargo-deb (`cargo install cargo-deb --locked`) when it is missing. The binary
# generates the completions and man pages (hidden `cidgate completions` / `cidgate man`) into
# target/deb-assets, so they always describe the binary being packaged. The package's
# contents are listed in Cargo.toml, [package.metadata.deb].
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"

profile=release
deb_args=()
while (($#)); do
	case $1 in
	--dev) profile=dev ;;
	--)
		shift
		deb_args+=("$@")
		break
		;;
	*)
		echo "usage: deploy/deb/build.sh [--dev] [-- cargo-deb arguments]" >&2
		exit 1
		;;
	esac
	shift
done

if ! cargo deb --version >/dev/null 2>&1; then
	echo "build.sh: installing cargo-deb" >&2
	cargo install cargo-deb --locked --version 3.8.0
fi

target=${CARGO_TARGET_DIR:-target}
if [[ $profile == release ]]; then
	cargo build --release --locked --bin cidgate
	bin=$target/release/cidgate
else
	cargo build --locked --bin cidgate
	bin=$target/debug/cidgate
	deb_args+=(--fast)
fi

# Generated assets: cargo-deb reads them from these paths (Cargo.toml's assets).
assets=target/deb-assets
rm -rf "$assets"
mkdir -p "$assets/completions" "$assets/man"
"$bin" completions bash >"$assets/completions/cidgate"
"$bin" completions zsh >"$assets/completions/_cidgate"
"$bin" completions fish >"$assets/completions/cidgate.fish"
"$bin" man --out-dir "$assets/man"
gzip -9n "$assets"/man/*.1

# One package per version in target/debian, so `apt-get install ./target/debian/cidgate_*.deb`
# means this one.
rm -f target/debian/cidgate_*.deb
cargo deb --no-build --profile "$profile" --output target/debian/ "${deb_args[@]}"

