#!/usr/bin/env bash
# The API's client-side tests: the real `webuiapi` package against `easel serve`, a bounded
# load test, and two workers behind nginx. Needs a built `easel` (cargo build -p easel-cli),
# python3 and nginx (Debian's nginx-light). The Python venv holds only `webuiapi` (and what
# it pulls in: requests, pillow); EASEL_API_VENV reuses an existing one.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
EASEL=${EASEL:-${CARGO_TARGET_DIR:-$ROOT/target}/debug/easel}
MODELS=$ROOT/tests/fixtures/models
VENV=${EASEL_API_VENV:-${HOME}/.cache/easel-api-venv}
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c "import webuiapi" 2>/dev/null; then
  echo "== creating $VENV with webuiapi"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet webuiapi
fi
[ -x "$EASEL" ] || { echo "no easel binary at $EASEL (cargo build -p easel-cli)"; exit 1; }
echo "== webuiapi client"
"$VENV/bin/python" tests/api/webuiapi_client.py "$EASEL" "$MODELS"
echo "== load test"
"$VENV/bin/python" tests/api/load_test.py "$EASEL" "$MODELS"
echo "== two workers behind nginx"
"$VENV/bin/python" tests/api/nginx_test.py "$EASEL" "$MODELS"
