#!/usr/bin/env bash
# Builds the web page (wasm32 + wasm-bindgen + wasm-opt) and runs its end-to-end test in
# headless Chromium on WebGPU (SwiftShader). Installs everything it needs on a fresh Debian 12
# machine from the package registries only; tools are cached under $HOME/.cache/easel-web.
# See ../shared/TOOLCHAIN.md for why each piece is what it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${EASEL_WEB_CACHE:-$HOME/.cache/easel-web}
WBG_VERSION=0.2.130
BINARYEN_VERSION=132.0.0
RUST_WEB=1.96.0+dfsg1-1~deb12u2
TOOLS=$CACHE/tools-wbg$WBG_VERSION-binaryen$BINARYEN_VERSION
NODE_TOOLS=$ROOT/web/tests/node_modules
mkdir -p "$CACHE"
t_start=$(date +%s)
step() { echo "== web/ci.sh [$(( $(date +%s) - t_start ))s] $*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi

# --- system packages -------------------------------------------------------------------
need_apt=0
dpkg -s rustc-web 2>/dev/null | grep -q "^Version: $RUST_WEB" || need_apt=1
for p in rust-web-src lld-22 chromium nodejs; do dpkg -s "$p" >/dev/null 2>&1 || need_apt=1; done
if [ $need_apt = 1 ]; then
  step "apt-get install (rustc-web $RUST_WEB, lld-22, chromium, nodejs)"
  $SUDO apt-get update
  pkgs=(rustc-web=$RUST_WEB cargo-web=$RUST_WEB rust-web-src=$RUST_WEB rust-web-llvm=$RUST_WEB
        lld-22 chromium ca-certificates)
  # nodejs may come from elsewhere with its own npm; only add Debian's when none is there.
  command -v node >/dev/null || pkgs+=(nodejs)
  command -v npm >/dev/null || pkgs+=(npm)
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${pkgs[@]}"
fi

# --- wasm-bindgen-cli and wasm-opt (cached, keyed on version) --------------------------
if [ ! -x "$TOOLS/bin/wasm-bindgen" ]; then
  step "cargo install wasm-bindgen-cli $WBG_VERSION"
  RUSTC=/usr/bin/rustc /usr/bin/cargo install wasm-bindgen-cli --version "=$WBG_VERSION" --root "$TOOLS"
fi
if [ ! -x "$TOOLS/node_modules/.bin/wasm-opt" ]; then
  step "npm binaryen@$BINARYEN_VERSION"
  npm install --prefix "$TOOLS" --no-audit --no-fund "binaryen@$BINARYEN_VERSION"
fi
if [ ! -d "$NODE_TOOLS/playwright-core" ]; then
  step "npm playwright-core"
  (cd web/tests && npm install --no-audit --no-fund --no-save playwright-core@1)
fi

# --- wasm32 std sysroot, built from Debian's std sources (keyed on rustc -vV) ----------
RUSTC_KEY=$(/usr/bin/rustc -vV | sha256sum | cut -c1-12)
SYSROOT=$CACHE/sysroot-$RUSTC_KEY
if [ ! -f "$SYSROOT/.done" ]; then
  step "building the wasm32 sysroot into $SYSROOT"
  tmp=$(mktemp -d)
  mkdir -p "$tmp/src"
  printf '[package]\nname = "sysroot-probe"\nversion = "0.0.0"\nedition = "2021"\n[lib]\npath = "src/lib.rs"\n[workspace]\n' >"$tmp/Cargo.toml"
  : >"$tmp/src/lib.rs"
  (cd "$tmp" && env -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 \
     RUSTFLAGS=-Cembed-bitcode=yes /usr/bin/cargo build --release \
     --target wasm32-unknown-unknown -Zbuild-std=std,panic_abort,test)
  rm -rf "$SYSROOT"
  mkdir -p "$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib"
  cp "$tmp"/target/wasm32-unknown-unknown/release/deps/*.rlib "$SYSROOT/lib/rustlib/wasm32-unknown-unknown/lib/"
  ln -s /usr/lib/rustlib/x86_64-unknown-linux-gnu "$SYSROOT/lib/rustlib/x86_64-unknown-linux-gnu"
  rm -rf "$tmp"
  touch "$SYSROOT/.done"
fi

# --- the bundle ---------------------------------------------------------------------------
step "cargo build easel-web (wasm32, release)"
(cd web && env -u RUSTC_BOOTSTRAP -u RUSTFLAGS -u CARGO_ENCODED_RUSTFLAGS \
  RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc CARGO_TARGET_DIR="$ROOT/target/wasm" \
  CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUSTFLAGS="--sysroot=$SYSROOT" RUSTDOCFLAGS="--sysroot=$SYSROOT" \
  /usr/bin/cargo build --release --target wasm32-unknown-unknown)
step "wasm-bindgen + wasm-opt"
rm -rf web/dist
mkdir -p web/dist
cp web/static/* web/dist/
"$TOOLS/bin/wasm-bindgen" --target web --no-typescript --out-dir web/dist/pkg \
  target/wasm/wasm32-unknown-unknown/release/easel_web.wasm
"$TOOLS/node_modules/.bin/wasm-opt" -Oz --enable-bulk-memory --enable-nontrapping-float-to-int \
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue \
  web/dist/pkg/easel_web_bg.wasm -o web/dist/pkg/easel_web_bg.wasm
wasm_bytes=$(stat -c %s web/dist/pkg/easel_web_bg.wasm)
wasm_gz=$(gzip -9c web/dist/pkg/easel_web_bg.wasm | wc -c)
step "bundle: easel_web_bg.wasm $wasm_bytes bytes ($wasm_gz gzipped)"

# --- the crate's own unit tests (pure Rust parts; run natively) -----------------------------
if [ "${EASEL_WEB_SKIP_UNIT:-0}" != 1 ]; then
  step "easel-web format, lints and unit tests (native)"
  (cd web && cargo fmt -- --check && cargo clippy --target-dir "$ROOT/target" --all-targets -- -D warnings \
     && cargo test --target-dir "$ROOT/target")
fi

# --- the native reference image and the e2e test ------------------------------------------
if [ "${EASEL_WEB_SKIP_E2E:-0}" != 1 ]; then
  step "native CLI (reference image)"
  cargo build -p easel-cli
  step "e2e in headless Chromium"
  NODE_PATH=$NODE_TOOLS node web/tests/e2e.mjs
fi
# --- the page on a full-size SD1.5 checkpoint (random weights; minutes on SwiftShader) ------
if [ "${EASEL_WEB_FULL_SIZE:-0}" = 1 ]; then
  cargo build -p easel-cli
  ckpt=$ROOT/target/web-e2e/sd15-random.safetensors
  if [ ! -f "$ckpt" ]; then
    step "writing a full-size checkpoint with random weights ($ckpt)"
    mkdir -p "$(dirname "$ckpt")"
    "$ROOT/target/debug/easel" bench --write-checkpoint "$ckpt"
  fi
  step "e2e at full size in headless Chromium"
  FULL_SIZE_CKPT=$ckpt NODE_PATH=$NODE_TOOLS node web/tests/e2e_full_size.mjs
fi
step "done"
