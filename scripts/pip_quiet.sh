# Sourced by the set-up scripts: `run_pip VENV ARGS...` runs that venv's pip quietly and drops
# the warning pip prints for every package missing from the machines' local index folders.
run_pip() {
    local venv=$1
    shift
    "$venv/bin/python" -m pip --quiet --disable-pip-version-check "$@" \
        2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
}
