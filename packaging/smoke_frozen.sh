#!/usr/bin/env bash
# Smoke test of the frozen app: one real OCR run through the window, offscreen, plus timings.
#
#   packaging/smoke_frozen.sh [EXE]     EXE defaults to dist/herbdesk/herbdesk (one-folder);
#                                       pass dist/herbdesk for a one-file build
#
# Fails on a non-zero exit, a missing OK marker, or a Qt/Python loading error on stderr:
# a bundle that lacks a plugin often still exits 0 with only a warning to show for it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
exe="${1:-$root/dist/herbdesk/herbdesk}"
[ -d "$exe" ] && exe="$exe/herbdesk"
if [ ! -x "$exe" ]; then
    echo "smoke_frozen: no executable at $exe (build it with packaging/build.py)" >&2
    exit 2
fi
bundle="$exe"  # one-file: the executable is the bundle; one-folder: its folder
if [ -d "$(dirname "$exe")/_internal" ]; then bundle="$(dirname "$exe")"; fi

export QT_QPA_PLATFORM=offscreen
unset DISPLAY WAYLAND_DISPLAY
tmp="$(mktemp -d "${TMPDIR:-/tmp}/herbdesk-frozen-smoke.XXXXXX")"
trap 'rm -rf "$tmp"' EXIT
# Qt says "Could not load the Qt platform plugin", "Cannot load library …", "Failed to create …"
# and still limps on; a Python import error in a hidden module prints a traceback.
qt_errors='qt\.qpa.*(Could not|Failed to)|Cannot load library|This application failed to start'
qt_errors+='|Could not load the Qt platform plugin|Could not find the Qt platform plugin'
qt_errors+='|Traceback \(most recent call last\)|ModuleNotFoundError|ImportError|undefined symbol'

now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

check_stderr() {  # name, stderr file
    if grep -E -n "$qt_errors" "$2" >"$tmp/errors.txt"; then
        echo "smoke_frozen: FAIL: $1 printed loading errors:" >&2
        cat "$tmp/errors.txt" >&2
        return 1
    fi
}

# 1. --version: bootloader, unpacking (one-file) and Python start-up, no Qt.
t0=$(now)
"$exe" --version >"$tmp/version.out" 2>"$tmp/version.err" || {
    echo "smoke_frozen: FAIL: --version exited non-zero" >&2
    cat "$tmp/version.err" >&2
    exit 1
}
t_version=$(secs "$t0" "$(now)")

# 2. Start-up to a rendered window: the app's own --screenshot (it shoots 0.2 s after show()).
t0=$(now)
set +e
"$exe" app --screenshot "$tmp/startup.png" --size 1440x900 >"$tmp/app.out" 2>"$tmp/app.err"
rc=$?
set -e
t_window=$(secs "$t0" "$(now)")
if [ "$rc" -ne 0 ] || [ ! -s "$tmp/startup.png" ]; then
    echo "smoke_frozen: FAIL: app --screenshot exited $rc or wrote no PNG" >&2
    tail -n 40 "$tmp/app.err" >&2
    exit 1
fi
check_stderr "app --screenshot" "$tmp/app.err"

# 3. The smoke test proper: a run of the bundled sample sheets through the real pipeline.
t0=$(now)
set +e
"$exe" --smoke-test >"$tmp/smoke.out" 2>"$tmp/smoke.err"
rc=$?
set -e
t_smoke=$(secs "$t0" "$(now)")
cat "$tmp/smoke.out"
if [ "$rc" -ne 0 ] || ! grep -q '^HERBDESK-SMOKE-OK ' "$tmp/smoke.out"; then
    echo "smoke_frozen: FAIL: --smoke-test exited $rc" >&2
    tail -n 60 "$tmp/smoke.err" >&2
    exit 1
fi
check_stderr "--smoke-test" "$tmp/smoke.err"
# CI builds the compiled log scanner; a bundle without it opens big logs several times slower
if [ -n "${HERBDESK_REQUIRE_SCAN:-}" ] && ! grep -q 'compiled log scanner' "$tmp/smoke.out"; then
    echo "smoke_frozen: FAIL: the bundle lacks the compiled log scanner (herbdesk.events._scan)" >&2
    exit 1
fi

size_mib=$(du -sm "$bundle" | cut -f1)
build_info="$root/build/last-build.txt"
echo "smoke_frozen: OK $(cat "$tmp/version.out")"
[ -f "$build_info" ] && echo "smoke_frozen: last build: $(cat "$build_info")"
echo "smoke_frozen: bundle $bundle: ${size_mib} MiB"
echo "smoke_frozen: start-up: --version ${t_version}s, window rendered (app --screenshot) ${t_window}s"
echo "smoke_frozen: --smoke-test ${t_smoke}s"
