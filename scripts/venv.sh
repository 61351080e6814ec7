# Sourced by the test scripts: ensure_venv VENV REQUIREMENTS LABEL creates or updates the virtual environment VENV
# from the pinned REQUIREMENTS file, reinstalling only when the file changed since the last install (its sha256 is
# kept in the venv).
ensure_venv() {
    local venv="$1" requirements="$2" label="$3"
    local stamp="$venv/.requirements.sha256" wanted
    wanted="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [[ ! -x "$venv/bin/python" || ! -f "$stamp" || "$(cat "$stamp")" != "$wanted" ]]; then
        echo "== $label venv: installing $requirements into $venv"
        python3 -m venv "$venv"
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
        echo "$wanted" > "$stamp"
    fi
}
