# Shared by scripts/demo.sh and scripts/test.sh: a project virtualenv in .venv.
# Sourced, not run. Sets VENV and PY.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIRTTUI_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

apt_install() {
    # Install Debian packages that are missing; only possible as root.
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" != 0 ]; then
        echo "virttui: missing Debian packages (run as root to install them): ${missing[*]}" >&2
        return 1
    fi
    echo "virttui: installing ${missing[*]}" >&2
    if [ -z "${VIRTTUI_APT_UPDATED:-}" ]; then
        apt-get update -qq -o DPkg::Lock::Timeout=600 >&2
        export VIRTTUI_APT_UPDATED=1
    fi
    # A freshly booted machine's unattended-upgrades often holds the dpkg lock for a while: wait for it.
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        -o DPkg::Lock::Timeout=600 "${missing[@]}" >&2
}

ensure_venv() {
    # A venv whose creation was interrupted has bin/python but no pip: make it again (--clear),
    # but never clear a directory that is not a virtualenv.
    if ! "$VENV/bin/python" -m pip --version >/dev/null 2>&1; then
        if [ -e "$VENV" ] && [ ! -f "$VENV/pyvenv.cfg" ]; then
            echo "virttui: $VENV exists and is not a virtualenv; move it away or set VIRTTUI_VENV" >&2
            return 1
        fi
        local existed=""
        [ -e "$VENV" ] && existed=1
        if ! "$PYTHON" -m venv --clear "$VENV" 2>/dev/null; then
            # Debian's python3 needs python3-venv for this. Remove only a directory made here.
            [ -z "$existed" ] && rm -rf "$VENV"
            apt_install python3-venv
            "$PYTHON" -m venv --clear "$VENV"
        fi
    fi
    PY="$VENV/bin/python"
    "$PY" -m pip install -q --upgrade pip >&2 2>/dev/null || true
}
