#!/usr/bin/env bash
# Build the browser demo (wasm32 + wasm-bindgen into web/pkg) and serve it on 127.0.0.1.
#   bash web/demo.sh               build, then serve on http://127.0.0.1:8080/
#   bash web/demo.sh --port N      another port
#   bash web/demo.sh --build-only  build web/pkg and stop
# Needs: rustup target add wasm32-unknown-unknown; cargo install wasm-bindgen-cli --version 0.2.130;
# Node.js; the model (AURA_MODEL, or run `cargo run --release --example chat` once to fetch it).
set -euo pipefail
cd "$(dirname "$0")/.."
build_only=0
port=8080
while [ $# -gt 0 ]; do
  case "$1" in
    --build-only) build_only=1 ;;
    --port) port="$2"; shift ;;
    -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
want=$(grep -A1 '^name = "wasm-bindgen"$' Cargo.lock | sed -n 's/^version = "\(.*\)"/\1/p')
if ! command -v wasm-bindgen >/dev/null || [ "$(wasm-bindgen --version | awk '{print $2}')" != "$want" ]; then
  echo "error: wasm-bindgen $want is needed: cargo install wasm-bindgen-cli --version $want" >&2
  exit 1
fi
echo "== cargo build -p aura-web --target wasm32-unknown-unknown --release"
cargo build -q -p aura-web --target wasm32-unknown-unknown --release
echo "== wasm-bindgen --target web -> web/pkg"
rm -rf web/pkg.tmp
wasm-bindgen --target web --no-typescript --out-dir web/pkg.tmp target/wasm32-unknown-unknown/release/aura_web.wasm
rm -rf web/pkg && mv web/pkg.tmp web/pkg
ls -l web/pkg
[ "$build_only" = 1 ] && exit 0
exec node web/serve.mjs --port "$port"
