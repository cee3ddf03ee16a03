#!/usr/bin/env bash
# Fetch benchmark files into dataset/, e.g. `bash scripts/fetch_data.sh ETTh1 weather` (see dataset/README.md).
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHONPATH="$REPO_ROOT${PYTHONPATH:+:$PYTHONPATH}" exec python -m data_provider.fetch "$@"
