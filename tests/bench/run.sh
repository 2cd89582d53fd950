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
log_run() { # log_run NAME ARGS...
	name=$1
	shift
	$BENCH log --dir "$WORK/$name" --record-bytes "$RECORD_BYTES" "$@" | tail -n 1
}

echo "custos bench: $(nproc) CPUs, $(uname -r), record size $RECORD_BYTES bytes, work dir $WORK"
echo

newlog sync32
sync32=$(log_run sync32 --durability sync --writers 32 --records 200000)
newlog sync1
sync1=$(log_run sync1 --durability sync --writers 1 --records 10000)
newlog batch
batch=$(log_run batch --durability batch --writers 1 --records 200000)
newlog big
log_run big --durability batch --writers 1 --records 1000000 >/dev/null
$BENCH settle --dir "$WORK/big" >/dev/null # compress the backlog first: measure the size, not the sealer
big=$(log_run big --durability batch --writers 1 --records 200000)
verify=$($BENCH verify --dir "$WORK/big" --key "$WORK/big.key" | tail -n 1)
mean=$(val mean_record_bytes "$verify")
sha=$(openssl speed -evp sha256 -bytes "$mean" -seconds 3 2>/dev/null | tail -n 1 | awk '{print $2}' | tr -d k)
sha_mb=$(echo "$sha" | awk '{printf "%.1f", $1 * 1000 / 1e6}')

printf '%-44s %14s %10s %10s %s\n' "log benchmark" "records/s" "p50 us" "p99 us" "target"
row() { # row LABEL LINE TARGET
	printf '%-44s %14s %10s %10s %s\n' "$1" "$(val records_per_s "$2")" "$(val p50_us "$2")" "$(val p99_us "$2")" "$3"
}
row "append, sync, 32 writers (group commit)" "$sync32" ">= 100000"
row "append, sync, 1 writer (one fdatasync each)" "$sync1" "(reference)"
row "append, batch, 1 writer, empty log" "$batch" ">= 500000"
row "append, batch, 1 writer, log of 1,000,000" "$big" "= empty log"
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
for b in 16 64 256; do
	c=$($BENCH crypt --bytes "$b" | tail -n 1)
	o=$(openssl speed -evp aes-256-gcm -bytes "$b" -seconds 2 2>/dev/null | tail -n 1 | awk '{print $2}' | tr -d k)
	ops=$(echo "$o" | awk -v b="$b" '{printf "%.0f", $1 * 1000 / b}')
	printf '%-44s %14s %14s %14s\n' "$b-byte values" "$(val encrypt_per_s "$c")" "$(val decrypt_per_s "$c")" "$ops"
	[ "$b" = 64 ] && crypt64="$(val encrypt_per_s "$c") $(val decrypt_per_s "$c") $ops"
done
echo "$crypt64" | awk '{printf "ratios at 64 bytes: encrypt/openssl=%.2f decrypt/openssl=%.2f (target >= 0.5)\n", $1/$3, $2/$3}'

echo
kc=$($BENCH keycache --records 65536 2>/dev/null | tail -n 1)
printf '%-44s %14s\n' "key-cache lookups/s (65,536 keys, random)" "$(val lookups_per_s "$kc")"
printf '%-44s %14s\n' "  the same under the keystore's mutex" "$(val locked_lookups_per_s "$kc")"
