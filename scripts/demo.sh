#!/usr/bin/env bash
# Install virttui into .venv and open the console on the embedded three-host demo.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
ensure_venv
"$PY" -m pip install -q "$ROOT"
exec "$VENV/bin/virttui" --demo "$@"
