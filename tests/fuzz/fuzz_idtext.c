/* fuzz_idtext.c - a subject's id written as text, as the proxy reads it
 * (daemon/idtext.c): the first byte picks the type; what it gives back is
 * not read, or within its room or the input itself, and is its own
 * canonical form. */
#include "../../daemon/idtext.c"
#include "fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint32_t oids[] = { 20, 21, 23, 26, 2950, 25 };
	char room[IDT_ROOM], again[IDT_ROOM];
	const char *t, *u;

	if (!size)
		return 0;
	uint32_t oid = oids[data[0] % (sizeof(oids) / sizeof(oids[0]))];
	char *v = malloc(size - 1 ? size - 1 : 1); /* its own block: ASan sees a read past it */
	CHECK(v);
	memcpy(v, data + 1, size - 1);
	int n = idt_text(oid, v, size - 1, room, &t);
	CHECK(n < 0 || (t == room ? n > 0 && n < IDT_ROOM && (size_t)n == strlen(room)
	                          : t == v && (size_t)n == size - 1));
	if (n >= 0 && t == room) { /* a canonical form reads as itself */
		int m = idt_text(oid, room, (size_t)n, again, &u);
		CHECK(m == n && !memcmp(u, room, (size_t)n));
	}
	free(v);
	return 0;
}
