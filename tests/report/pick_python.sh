# Sourced by the report and bench tests: PY = the first python3 that imports every module
# named in $1 (space separated), or empty. Debian's /usr/bin/python3 carries the apt
# packages (python3-jsonschema, python3-matplotlib); a pyenv python3 on PATH may not.
pick_python() {
    PY=
    for cand in python3 /usr/bin/python3; do
        command -v "$cand" > /dev/null 2>&1 || continue
        local ok=1 m
        for m in $1; do "$cand" -c "import $m" > /dev/null 2>&1 || ok=0; done
        if [ $ok = 1 ]; then PY=$cand; return 0; fi
    done
    return 1
}
