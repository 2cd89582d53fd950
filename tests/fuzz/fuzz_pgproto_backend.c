/* fuzz_pgproto_backend.c - the proxy's parser of backend messages
 * (daemon/pgproto.c); the body is fuzz_pgproto_stream.h. A DataRow's
 * values are read as the binary format of the types an id comes in. */
#include <stdint.h>

struct pgp_msg;
static void each_message(const struct pgp_msg *m);
#define CHECK_MESSAGE pgp_check_backend
#define EACH_MESSAGE each_message
#include "fuzz_pgproto_stream.h"
#include "../../daemon/idtext.c"

static void each_message(const struct pgp_msg *m)
{
	static const uint32_t oids[] = { 0, 20, 21, 23, 25, 26, 2950, 701 };
	static struct pgp_value vals[PGP_MAX_FIELDS];
	uint16_t n;

	if (m->type != 'D' || pgp_parse_datarow(m, vals, PGP_MAX_FIELDS, &n))
		return;
	for (uint16_t i = 0; i < n; i++) {
		char room[IDT_ROOM];
		const char *t = NULL;
		int len = idt_binary(oids[i % ARRAY_SIZE(oids)], &vals[i], room, &t);
		CHECK(len < 0 ||
		      (t == room ? len < IDT_ROOM : t == (const char *)vals[i].p && len == vals[i].len));
		CHECK(len < 0 || t != room || strlen(room) == (size_t)len);
	}
}
