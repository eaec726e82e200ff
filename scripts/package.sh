#!/usr/bin/env bash
# make package: the path a user takes to deploy keygate, run for real: `sam validate --lint`, then `sam build` of
# every function with SAM's rust-cargolambda build method, with the aws-sam-cli and cargo-lambda (and zig) pinned
# in local/package-requirements.txt. ARCH=arm64 (the default, Graviton) or ARCH=x86_64; TEMPLATE= another template
# (a subset of the functions, say); VENV= another virtualenv (default .venv-package: sam's pins conflict with
# .venv's, see local/package-requirements.txt).
#
# Each function is its own binary, linked with fat LTO and one codegen unit (profile.release): nearly all of the
# time goes to ~80 single-threaded links of about a minute and a half of CPU each. `sam build` makes them one
# after another: its per-function cargo runs share the workspace's target directory (the dependencies are compiled
# once), and with --parallel they would only wait on each other's lock of it. So this script first builds every
# function of the template in ONE cargo-lambda run, with the flags sam passes, which links them side by side on
# every core; sam build then finds each binary up to date (about 2 s a function) and copies it. The artifacts are
# those that a plain `sam build` makes, from the same cargo units.
set -euo pipefail
cd "$(dirname "$0")/.."

ARCH=${ARCH:-arm64}
VENV=${VENV:-.venv-package}
TEMPLATE=${TEMPLATE:-template.yaml}
case "$ARCH" in
  # The flags of aws-lambda-builders' rust-cargolambda workflow for provided.al2023: --arm64, or none (x86_64 is
  # cargo-lambda's default target). Any other flag would make sam's own cargo run rebuild everything.
  arm64) cargo_arch=(--arm64) elf="ARM aarch64" rust_target=aarch64-unknown-linux-gnu ;;
  x86_64) cargo_arch=() elf="x86-64" rust_target=x86_64-unknown-linux-gnu ;;
  *)
    echo "ARCH must be arm64 or x86_64, not '$ARCH'" >&2
    exit 2
    ;;
esac
# Lambda's provided.al2023 has glibc 2.34; cargo-lambda links through zig against an older one.
max_glibc=2.34
start=$SECONDS

requirements=local/package-requirements.txt
stamp="$VENV/.installed-$(sha256sum <"$requirements" | cut -c1-12)"
if [[ ! -e $stamp ]]; then
  echo "==> installing aws-sam-cli and cargo-lambda (with zig) into $VENV"
  [[ -x $VENV/bin/python ]] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --requirement "$requirements"
  rm -f "$VENV"/.installed-* && touch "$stamp"
fi
# sam finds cargo-lambda on PATH, and cargo-lambda finds the zig of the ziglang package through this python.
export PATH="$(cd "$VENV/bin" && pwd):$PATH"
export SAM_CLI_TELEMETRY=0

# cargo-lambda would add the Rust standard library of the target too; asked here, a machine that cannot fetch it
# says so before anything is built.
if command -v rustup >/dev/null; then
  rustup target add "$rust_target"
fi

echo "==> sam validate --lint"
sam validate --lint --template "$TEMPLATE"

# The template is the list of what to build: each function's Binary, and its logical id.
mapfile -t binaries < <(sed -n 's/^ *Binary: *//p' "$TEMPLATE")
mapfile -t functions < <(awk '/^  [A-Za-z0-9]+:$/ { id = substr($1, 1, length($1) - 1) }
  /^    Type: AWS::Serverless::Function$/ { print id }' "$TEMPLATE")
if ((${#binaries[@]} == 0 || ${#binaries[@]} != ${#functions[@]})); then
  echo "$TEMPLATE: ${#functions[@]} functions but ${#binaries[@]} BuildProperties.Binary" >&2
  exit 1
fi

bins=()
for binary in "${binaries[@]}"; do bins+=(--bin "$binary"); done
echo "==> cargo lambda build --release ${cargo_arch[*]-} (${#binaries[@]} functions, one cargo run)"
cargo lambda build --release ${cargo_arch[@]+"${cargo_arch[@]}"} "${bins[@]}"
built=$SECONDS

# rust-cargolambda is a beta build method: without --beta-features sam asks whether to use it, and CI cannot answer.
echo "==> sam build --beta-features --parameter-overrides Architecture=$ARCH"
sam build --beta-features --template "$TEMPLATE" --parameter-overrides "Architecture=$ARCH"

echo "==> checking .aws-sam/build ($ARCH)"
failed=0
total=0
for function in "${functions[@]}"; do
  artifact=.aws-sam/build/$function/bootstrap
  if [[ ! -f $artifact ]]; then
    echo "$function: no $artifact" >&2
    failed=1
    continue
  fi
  kind=$(file -b "$artifact")
  if [[ $kind != "ELF 64-bit"*"$elf"* ]]; then
    echo "$function: not a $ARCH ELF executable: $kind" >&2
    failed=1
  fi
  glibc=$(readelf -V "$artifact" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n 1)
  if [[ -n $glibc && $(printf '%s\n' "$glibc" "$max_glibc" | sort -V | tail -n 1) != "$max_glibc" ]]; then
    echo "$function: needs glibc $glibc, Lambda's provided.al2023 has $max_glibc" >&2
    failed=1
  fi
  size=$(stat -c %s "$artifact")
  total=$((total + size))
  awk -v f="$function" -v s="$size" -v g="${glibc:-none}" 'BEGIN { printf "%-40s %6.2f MiB  glibc %s\n", f, s / 1048576, g }'
done
((failed == 0)) || exit 1
awk -v n="${#functions[@]}" -v a="$ARCH" -v t="$total" -v c=$((built - start)) -v s=$((SECONDS - built)) \
  'BEGIN { printf "%d bootstrap binaries for %s, %.0f MiB in all; cargo %ds, sam build %ds, %ds in all\n", n, a, t / 1048576, c, s, c + s }'
echo "next: sam deploy --guided --parameter-overrides Architecture=$ARCH"
