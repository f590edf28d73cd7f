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
        apt-get update -qq >&2
        export VIRTTUI_APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
            # Debian's python3 needs python3-venv for this.
            rm -rf "$VENV"
            apt_install python3-venv
            "$PYTHON" -m venv "$VENV"
        fi
    fi
    PY="$VENV/bin/python"
    "$PY" -m pip install -q --upgrade pip >&2 2>/dev/null || true
}
