# Sourced by the set-up scripts: `run_pip VENV pip-arguments...` installs into (or uninstalls
# from) the environment VENV.
#
# It uses uv (installed once into .venv-tools from the package registry): uv downloads in
# parallel and links files from one cache (cache/uv), which makes a fresh set-up minutes faster
# than pip. uv reads the same package sources as pip: the index, extra indexes and find-links
# folders of pip's configuration (`pip config list` and PIP_* variables) are passed on, and
# versions are chosen across all of them as pip does (--index-strategy unsafe-best-match).
# Where uv cannot be installed, pip does the work, quietly (without the warning pip prints
# for every package missing from a machine's local index folders).
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
UV_VERSION=0.13.10
uv_bin=$here/.venv-tools/bin/uv

ensure_uv() {
    [ -x "$uv_bin" ] && return 0
    mkdir -p "$here/.venv-tools"
    {
        [ -x "$here/.venv-tools/bin/python" ] || "${PYTHON:-python3}" -m venv "$here/.venv-tools"
    } && "$here/.venv-tools/bin/python" -m pip --quiet --disable-pip-version-check install "uv==$UV_VERSION" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}

run_pip() {
    local venv=$1 command=$2
    shift 2
    if ensure_uv >/dev/null 2>&1 && [ -x "$uv_bin" ]; then
        local sources
        mapfile -t sources < <("${PYTHON:-python3}" "$here/scripts/pip_sources.py")
        [ "$command" = uninstall ] && set -- $(printf '%s\n' "$@" | grep -vx -- -y)
        UV_CACHE_DIR=${UV_CACHE_DIR:-$here/cache/uv} "$uv_bin" pip "$command" --quiet --python "$venv/bin/python" \
            "${sources[@]}" "$@"
    else
        "$venv/bin/python" -m pip --quiet --disable-pip-version-check "$command" "$@" \
            2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
    fi
}
