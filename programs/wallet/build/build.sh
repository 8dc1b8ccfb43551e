#!/bin/sh
# Builds the Numpay wallet program (no_std Rust, no crates) into an SBPF v3 program from Debian
# packages alone: rustc-web (rustc with LLVM's BPF target), rust-web-src (the `core` sources),
# llvm-22 (llc for -mcpu=v3). Installs nothing: says what is missing and how to install it.
#
# Usage: build.sh OUTPUT.so [WORK_DIR]
#   WORK_DIR (default programs/wallet/target) holds the cached BPF sysroot and intermediates.
# The output is deterministic: same package versions + same sources = same bytes
# (`make program-check` relies on it).
set -eu

HERE=$(cd "$(dirname "$0")/.." && pwd)
OUT=${1:?usage: build.sh OUTPUT.so [WORK_DIR]}
WORK=${2:-$HERE/target}

missing=""
for package in rustc-web rust-web-src llvm-22; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing="$missing $package"
  fi
done
if [ -n "$missing" ]; then
  echo "make program: missing Debian packages:$missing" >&2
  echo "  install them (as root):  apt-get update && apt-get install -y rustc-web rust-web-src llvm-22" >&2
  exit 1
fi

RUSTC=/usr/bin/rustc
LLC=llc-22
LIBRARY=/usr/lib/rustlib/src/rust/library
TARGET=bpfel-unknown-none
FLAGS="--target $TARGET -C opt-level=3 -C target-cpu=v3 -C panic=abort -C debuginfo=0"
export RUSTC_BOOTSTRAP=1  # building `core` for a tier-3 target needs unstable flags

# The sysroot (core + compiler_builtins for BPF), cached per compiler version.
SYSROOT=$WORK/sysroot
LIB=$SYSROOT/lib/rustlib/$TARGET/lib
STAMP="$($RUSTC --version) | $FLAGS"
if [ ! -f "$SYSROOT/stamp" ] || [ "$(cat "$SYSROOT/stamp")" != "$STAMP" ]; then
  echo "building the BPF sysroot (core, compiler_builtins; about 30 s, once)"
  rm -rf "$SYSROOT" && mkdir -p "$LIB"
  $RUSTC --edition 2024 --crate-type rlib --crate-name core "$LIBRARY/core/src/lib.rs" $FLAGS \
    -Zforce-unstable-if-unmarked -o "$LIB/libcore.rlib"
  $RUSTC --edition 2024 --crate-type rlib --crate-name compiler_builtins \
    "$LIBRARY/compiler-builtins/compiler-builtins/src/lib.rs" \
    --cfg 'feature="compiler-builtins"' --cfg 'feature="mem"' $FLAGS --sysroot "$SYSROOT" \
    -Zforce-unstable-if-unmarked -C codegen-units=1 -o "$LIB/libcompiler_builtins.rlib"
  echo "$STAMP" > "$SYSROOT/stamp"
fi

# Rust -> one LLVM bitcode module (fat LTO) -> BPF relocatable object (SBPF v3 ISA) -> our linker.
BUILD=$WORK/build
rm -rf "$BUILD" && mkdir -p "$BUILD/archive"
(cd "$HERE" && $RUSTC --edition 2024 --crate-type staticlib --crate-name numpay_wallet src/lib.rs $FLAGS \
  --sysroot "$SYSROOT" -C lto=fat -C codegen-units=1 --remap-path-prefix "$HERE=programs/wallet" \
  -o "$BUILD/libnumpay_wallet.a")
(cd "$BUILD/archive" && ar x ../libnumpay_wallet.a)
set -- "$BUILD"/archive/*.o
if [ "$#" -ne 1 ]; then
  echo "build.sh: expected one object in the static library, found $#: $*" >&2
  exit 1
fi
$LLC -march=bpfel -mcpu=v3 -O2 -bpf-stack-size=4096 -filetype=obj "$1" -o "$BUILD/numpay_wallet.o"
python3 "$HERE/build/link_sbpf.py" "$BUILD/numpay_wallet.o" "$OUT"
