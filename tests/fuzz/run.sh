#!/bin/sh
# run.sh - runs every libFuzzer target in a build directory for a while.
#
#   sh tests/fuzz/run.sh BUILD_FUZZ_DIR
#
# Each fuzz_* binary runs for $FUZZ_SECONDS seconds (default 15) on a
# scratch copy of its seed corpus, tests/fuzz/corpus/<target>/ (the
# committed corpus is never grown), with tests/fuzz/<target>.dict when
# there is one. Prints one line per target, then
# `fuzz: N targets, M failures`, and exits 1 when any target failed: a
# crash, a sanitizer report, a check, a timeout (-timeout=10) or running
# out of memory. The failing input and the fuzzer's log are kept in
# $FUZZ_ARTIFACTS (default BUILD_FUZZ_DIR/artifacts/<target>/).
#
# Also: FUZZ_MAX_LEN (default 65536), FUZZ_ARGS (more libFuzzer options).
set -u

if [ $# -ne 1 ] || [ ! -d "$1" ]; then
	echo "usage: sh tests/fuzz/run.sh BUILD_FUZZ_DIR" >&2
	exit 2
fi
bindir=$(cd "$1" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
seconds=${FUZZ_SECONDS:-15}
max_len=${FUZZ_MAX_LEN:-65536}
artifacts=${FUZZ_ARTIFACTS:-$bindir/artifacts}
case $seconds in '' | *[!0-9]*) echo "run.sh: FUZZ_SECONDS must be a number" >&2; exit 2 ;; esac

scratch=$(mktemp -d "${TMPDIR:-/tmp}/custos-fuzz.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT
trap 'exit 130' INT TERM

# A libFuzzer final statistic from a log: stat NAME FILE
stat() {
	sed -n "s/^stat::$1: *//p" "$2" | tail -n 1
}

# Number of files in a directory: count DIR
count() {
	find "$1" -type f | wc -l | tr -d ' '
}

targets=0
failures=0
for bin in "$bindir"/fuzz_*; do
	if [ ! -f "$bin" ] || [ ! -x "$bin" ]; then
		continue
	fi
	name=$(basename "$bin")
	targets=$((targets + 1))
	work=$scratch/$name
	mkdir -p "$work/corpus" "$work/tmp"
	if [ -d "$here/corpus/$name" ]; then
		cp "$here/corpus/$name"/* "$work/corpus/" 2>/dev/null
	fi
	seeds=$(count "$work/corpus")
	set -- -max_total_time="$seconds" -max_len="$max_len" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$work/"
	[ -f "$here/$name.dict" ] && set -- "$@" -dict="$here/$name.dict"
	start=$(date +%s)
	# TMPDIR: where a target keeps its scratch files, removed with the rest.
	# shellcheck disable=SC2086
	# LSAN_OPTIONS: leaks of libraries' own, listed in lsan.supp.
	TMPDIR=$work/tmp LSAN_OPTIONS=suppressions=$here/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS} \
		"$bin" "$@" ${FUZZ_ARGS:-} "$work/corpus" >"$work/log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	runs=$(stat number_of_executed_units "$work/log")
	rate=$(stat average_exec_per_sec "$work/log")
	corpus=$(count "$work/corpus")
	crash=
	for f in "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-*; do
		if [ -f "$f" ]; then
			crash=$(basename "$f")
			break
		fi
	done
	if [ $rc -eq 0 ] && [ -z "$crash" ]; then
		printf '%s: ok, %ss, %s runs, %s exec/s, corpus %s -> %s\n' "$name" "$took" "${runs:-?}" \
			"${rate:-?}" "$seeds" "$corpus"
		continue
	fi
	failures=$((failures + 1))
	keep=$artifacts/$name
	mkdir -p "$keep"
	cp "$work/log" "$keep/log"
	[ -n "$crash" ] && cp "$work/$crash" "$keep/"
	summary=$(grep -m 1 -E '^SUMMARY:|check failed|ERROR: libFuzzer' "$work/log")
	printf '%s: FAILED (exit %s) after %ss: %s\n' "$name" "$rc" "$took" "${summary:-see log}"
	printf '  input: %s\n  log:   %s\n' "${crash:+$keep/$crash}" "$keep/log"
	printf '  reproduce: %s %s\n' "$bin" "${crash:+$keep/$crash}"
	# The stack of the first report, for the CI log.
	sed -n '/ERROR: \|check failed/,/^$/p' "$work/log" | grep -E '^ +#[0-9]+ |ERROR|check failed' |
		grep -vE 'fuzzer::|__sanitizer|libc_start|_start | in main |pthread_kill|raise\.c|abort\.c|libc\.so' |
		sed -e 's/ (BuildId: [0-9a-f]*)//' -e 's/^/  | /' | head -n 12
done

echo "fuzz: $targets targets, $failures failures"
[ "$targets" -gt 0 ] || exit 1
[ "$failures" -eq 0 ]
