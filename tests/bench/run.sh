#!/bin/sh
# make bench: Custos's standard benchmark set. Every figure that has a target
# is printed beside a reference measured in the same run (the machines are
# shared and noisy, so ratios are what to compare).
set -eu
BUILD=${1:-build}
BENCH=$BUILD/custos-bench
CTL=$BUILD/custosctl
WORK=$(mktemp -d "${TMPDIR:-/var/tmp}/custos-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
RECORD_BYTES=${RECORD_BYTES:-512}

val() { # val KEY LINE
	echo "$2" | tr ' ' '\n' | sed -n "s/^$1=//p"
}
newlog() {
	rm -rf "$WORK/$1" "$WORK/$1.key"
	$CTL log init --dir "$WORK/$1" --key-out "$WORK/$1.key" >/dev/null
}
log_run() { # log_run NAME ARGS... (after the write-back of what ran before: measure the log alone)
	name=$1
	shift
	sync
	$BENCH log --dir "$WORK/$name" --record-bytes "$RECORD_BYTES" "$@" | tail -n 1
}

echo "custos bench: $(nproc) CPUs, $(uname -r), record size $RECORD_BYTES bytes, work dir $WORK"
echo

# The best of rounds that alternate with their reference (a single round
# on a shared machine mostly measures the neighbours): better LINE KEY
# keeps, of two key=value lines, the one with the larger KEY.
better() {
	if [ -z "$1" ] || awk -v a="$(val "$3" "$2")" -v b="$(val "$3" "$1")" 'BEGIN{ if (a + 0 > b + 0) exit 0; exit 1 }'; then
		echo "$2"
	else
		echo "$1"
	fi
}
newlog sync32
sync32=$(log_run sync32 --durability sync --writers 32 --records 200000)
newlog sync1
sync1=$(log_run sync1 --durability sync --writers 1 --records 10000)
newlog big
log_run big --durability batch --writers 1 --records 1000000 >/dev/null
batch="" big=""
for _ in 1 2 3; do # an empty log and one of 1,000,000 records (and more), alternating
	newlog batch
	batch=$(better "$batch" "$(log_run batch --durability batch --writers 1 --records 400000)" records_per_s)
	# the last round's segments compressed first: measure the size, not the sealer's backlog
	$BENCH settle --dir "$WORK/big" >/dev/null
	big=$(better "$big" "$(log_run big --durability batch --writers 1 --records 400000)" records_per_s)
done
$BENCH settle --dir "$WORK/big" >/dev/null
verify="" sha_mb=0
for _ in 1 2 3; do # verify and SHA-256 alternating
	verify=$(better "$verify" "$($BENCH verify --dir "$WORK/big" --key "$WORK/big.key" | tail -n 1)" mb_per_s)
	mean=$(val mean_record_bytes "$verify")
	sha=$(openssl speed -evp sha256 -bytes "$mean" -seconds 2 2>/dev/null | tail -n 1 | awk '{print $2}' | tr -d k)
	sha_mb=$(echo "$sha" | awk -v best="$sha_mb" '{v = $1 * 1000 / 1e6; printf "%.1f", (v > best + 0 ? v : best)}')
done

printf '%-44s %14s %10s %10s %s\n' "log benchmark" "records/s" "p50 us" "p99 us" "target"
row() { # row LABEL LINE TARGET
	printf '%-44s %14s %10s %10s %s\n' "$1" "$(val records_per_s "$2")" "$(val p50_us "$2")" "$(val p99_us "$2")" "$3"
}
row "append, sync, 32 writers (group commit)" "$sync32" ">= 100000"
row "append, sync, 1 writer (one fdatasync each)" "$sync1" "(reference)"
row "append, batch, 1 writer, empty log" "$batch" ">= 500000"
row "append, batch, 1 writer, log of 1,000,000+" "$big" "= empty log"
echo "(batch rows: the best of three rounds, empty and large log alternating; verify and sha256: the best of three, alternating)"
ratio_big=$(awk -v a="$(val records_per_s "$big")" -v b="$(val records_per_s "$batch")" 'BEGIN{printf "%.2f", a/b}')
ratio_group=$(awk -v a="$(val records_per_s "$sync32")" -v b="$(val records_per_s "$sync1")" 'BEGIN{printf "%.1f", a/b}')
echo
printf '%-44s %14s\n' "verify (with k0), MB/s" "$(val mb_per_s "$verify")"
printf '%-44s %14s\n' "openssl speed -evp sha256 at $mean bytes, MB/s" "$sha_mb"
ratio_verify=$(awk -v a="$(val mb_per_s "$verify")" -v b="$sha_mb" 'BEGIN{printf "%.2f", a/b}')
echo
echo "ratios: verify/sha256=$ratio_verify (target >= 0.7)  log1M/empty=$ratio_big (target 1.0)  sync32/sync1=$ratio_group"

echo
printf '%-44s %14s %14s %14s\n' "field encryption (AES-256-GCM, cx1 format)" "encrypt/s" "decrypt/s" "openssl ops/s"
# best of three rounds, each side alternating with the other: on a shared
# machine a single round mostly measures the neighbours
max() { awk -v a="$1" -v b="$2" 'BEGIN{print (a + 0 > b + 0) ? a : b}'; }
for b in 16 64 256; do
	enc=0 dec=0 ops=0
	for _ in 1 2 3; do
		c=$($BENCH crypt --bytes "$b" | tail -n 1)
		o=$(openssl speed -evp aes-256-gcm -bytes "$b" -seconds 1 2>/dev/null | tail -n 1 | awk '{print $2}' | tr -d k)
		enc=$(max "$enc" "$(val encrypt_per_s "$c")")
		dec=$(max "$dec" "$(val decrypt_per_s "$c")")
		ops=$(max "$ops" "$(echo "$o" | awk -v b="$b" '{printf "%.0f", $1 * 1000 / b}')")
	done
	printf '%-44s %14s %14s %14s\n' "$b-byte values" "$enc" "$dec" "$ops"
	[ "$b" = 64 ] && crypt64="$enc $dec $ops"
done
echo "$crypt64" | awk '{printf "ratios at 64 bytes: encrypt/openssl=%.2f decrypt/openssl=%.2f (target >= 0.5)\n", $1/$3, $2/$3}'

echo
kc=$($BENCH keycache --records 65536 2>/dev/null | tail -n 1)
printf '%-44s %14s\n' "key-cache lookups/s (65,536 keys, random)" "$(val lookups_per_s "$kc")"
printf '%-44s %14s\n' "  the same under the keystore's mutex" "$(val locked_lookups_per_s "$kc")"

echo
newlog ipcb
ipcb=$($BENCH ipc --dir "$WORK/ipcb" --durability batch --records 20000 | tail -n 1)
newlog ipcs
ipcs=$($BENCH ipc --dir "$WORK/ipcs" --durability sync --records 3000 | tail -n 1)
printf '%-44s %14s %s\n' "append through the logger's IPC" "records/s" "direct (above)"
printf '%-44s %14s %s\n' "  batch, one request at a time" "$(val records_per_s "$ipcb")" "$(val records_per_s "$batch")"
printf '%-44s %14s %s\n' "  sync, one request at a time" "$(val records_per_s "$ipcs")" "$(val records_per_s "$sync1")"

# control-request latency: a real custosd, `status` on its socket
newlog daemon
cat > "$WORK/custosd.conf" <<CONF
log_dir = $WORK/daemon
control_socket = $WORK/run/control.sock
anchor = off
user = $(id -un)
CONF
$BUILD/custosd -c "$WORK/custosd.conf" 2>"$WORK/custosd.err" &
dpid=$!
for _ in $(seq 100); do [ -S "$WORK/run/control.sock" ] && break; sleep 0.1; done
sleep 0.5
ctl=$($BENCH control --socket "$WORK/run/control.sock" --records 2000 | tail -n 1)
kill -TERM $dpid
wait $dpid || true
printf '%-44s %10s %10s\n' "control request \`status\` (records each)" "p50 us" "p99 us"
printf '%-44s %10s %10s\n' "" "$(val p50_us "$ctl")" "$(val p99_us "$ctl")"

# the proxy: pgbench -S through PostgreSQL, pgbouncer and Custos (as root:
# PostgreSQL and pgbouncer run as an unprivileged user)
echo
if [ "$(id -u)" -eq 0 ]; then
	${PYTHON:-/usr/bin/python3} "$(dirname "$0")/proxy_bench.py"
	echo
	${PYTHON:-/usr/bin/python3} "$(dirname "$0")/requests_bench.py"
else
	echo "proxy benchmark: skipped (run make bench as root)"
fi
