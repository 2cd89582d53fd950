#!/bin/sh
# make demo. First the main story (demo_story.py): a private PostgreSQL with
# the sample shop, custosd in front of it, the shop's workload through the
# proxy, a customer's access request answered with a signed report and their
# erasure approved by a second person, carried out and certified, and the log
# verified. Then the audit log on its own: a log written directly, shown,
# verified, one customer erased by destroying their key, and what verify
# says when someone edits a copy.
set -eu
BUILD=${1:-build}
CTL=$BUILD/custosctl
WRITER=$BUILD/tests/alog_writer
OUT=$BUILD/demo
rm -rf "$OUT"
mkdir -p "$OUT"
LOG=$OUT/log KEY=$OUT/log.key KEYS=$OUT/subjects.keys

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*"; "$@"; }

${PYTHON:-/usr/bin/python3} "$(dirname "$0")/demo_story.py"

say "The audit log on its own. Create a log; the verification key goes to the security team, off this host."
run "$CTL" log init --dir "$LOG" --key-out "$KEY"

say "The shop's applications read and change customer records (12 accesses)"
rec() { # rec USER ADDR TABLE COLUMNS SUBJECT STMT ROWS
	printf '{"type":"access","actor":{"user":"%s","app":"shop-web","addr":"%s","session":"s-%s"},"table":"%s","columns":[%s],"subjects":[["customer","%s"]],"fp":"%s","stmt":"%s","rows":%s}\n' \
		"$1" "$2" "$5" "$3" "$4" "$5" "$(printf %s "$6" | sha256sum | cut -c1-16)" "$6" "$7"
}
{
	rec app_rw 10.0.0.7 public.customers '"email","name"' 42 'SELECT email, name FROM customers WHERE id = $1' 1
	rec app_rw 10.0.0.7 public.orders '"shipping_address"' 42 'SELECT shipping_address FROM orders WHERE customer_id = $1' 3
	rec support 10.0.0.9 public.support_tickets '"body"' 42 'SELECT body FROM support_tickets WHERE customer_id = $1' 2
	rec app_rw 10.0.0.7 public.customers '"email"' 7 'UPDATE customers SET email = $1 WHERE id = $2' 1
	rec app_rw 10.0.0.8 public.customers '"email","name"' 7 'SELECT email, name FROM customers WHERE id = $1' 1
	rec billing 10.0.0.12 public.payments '"card_last4"' 7 'SELECT card_last4 FROM payments WHERE customer_id = $1' 4
	rec app_rw 10.0.0.7 public.customers '"email","name","phone"' 1001 'INSERT INTO customers (email, name, phone) VALUES ($1, $2, $3)' 1
	rec app_rw 10.0.0.8 public.addresses '"street","city"' 1001 'INSERT INTO addresses (customer_id, street, city) VALUES ($1, $2, $3)' 1
	rec support 10.0.0.9 public.ticket_messages '"body"' 1001 'SELECT body FROM ticket_messages WHERE ticket_id = $1' 5
	rec analyst 10.0.0.30 public.customers '"email"' 42 'SELECT email FROM customers WHERE created_at > $1' 1
	rec app_rw 10.0.0.7 public.marketing_consents '"channel"' 42 'UPDATE marketing_consents SET granted = $1 WHERE customer_id = $2' 1
	rec billing 10.0.0.12 public.invoices '"billing_address"' 1001 'SELECT billing_address FROM invoices WHERE customer_id = $1' 2
} >"$OUT/records.jsonl"
run "$WRITER" --dir "$LOG" --keys "$KEYS" <"$OUT/records.jsonl" | tr '\n' ' '
echo

say "What the log holds: no identifier in clear, only subject refs and ciphertext"
run sh -c "grep -c 'customer:42' $LOG/seg-*.jsonl || true"
run sh -c "jq -c 'select(.type==\"access\") | {seq, actor: .actor.user, table: .object.table, subject: .subjects[0].ref[0:16]}' $LOG/seg-*.jsonl | head -3"

say "Show the records, with the subjects' keys (as the DPO's tools would)"
run "$CTL" log show --dir "$LOG" --keys "$KEYS"

say "Who accessed customer 42's data?"
REF=$("$CTL" log show --dir "$LOG" --keys "$KEYS" --json --type access |
	jq -r 'select(.subjects[0].id=="customer:42") | .subjects[0].ref' | head -n 1)
run "$CTL" log show --dir "$LOG" --keys "$KEYS" --subject-ref "$REF"

say "Verify the log offline, with the key from init"
run "$CTL" log verify --dir "$LOG" --key "$KEY"

say "Erase customer 42 by destroying their key: the records stay, the identity is gone"
run "$WRITER" --keys "$KEYS" --shred customer:42
run "$CTL" log show --dir "$LOG" --keys "$KEYS" --subject-ref "$REF"
run "$CTL" log verify --dir "$LOG" --key "$KEY"

say "Someone edits a copy: the analyst's record now says 1000 rows, not 1"
cp -r "$LOG" "$OUT/tampered"
for SEG in "$OUT"/tampered/seg-*.jsonl; do
	sed -i '/"user":"analyst"/s/"rows":1,/"rows":1000,/' "$SEG"
done
run "$CTL" log verify --dir "$OUT/tampered" --key "$KEY" || echo "(exit status $?: the log was altered)"

say "Export for a SIEM (CEF)"
run sh -c "$CTL log export --dir $LOG --format cef | sed -n 2,3p"

say "Files of the log-only part (the story's are listed above)"
echo "log:               $LOG"
echo "verification key:  $KEY   (keep offline)"
echo "subject keys:      $KEYS (test key provider; the keystore replaces it)"
echo "tampered copy:     $OUT/tampered"
