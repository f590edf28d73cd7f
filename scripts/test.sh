#!/usr/bin/env bash
# Install everything (Debian packages too, when run as root) and run the whole test suite.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k pilot`.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Real components the tests use: virsh cross-checks the test-driver node files; libvirtd,
# QEMU, sanlock and sshd are the real stack for the real-host and lease tests.
apt_install libvirt-clients libvirt-daemon libvirt-daemon-driver-qemu qemu-system-x86 qemu-utils \
    openssh-server sanlock libvirt-sanlock gcc libc6-dev

ensure_venv
"$PY" -m pip install -q -e "$ROOT[test]"
cd "$ROOT"
# The project's own lint and type checks first: a finding fails the run, as a failing test does.
"$PY" -m ruff check virttui bench
"$PY" -m mypy
exec "$PY" -m pytest "$@"
