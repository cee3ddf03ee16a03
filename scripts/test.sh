#!/usr/bin/env bash
# Create .venv from requirements.txt if needed, then run the test suite on CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh
ensure_venv
"$PY" -m pytest -q "$@"
