/* fuzz_common.h - shared by the libFuzzer targets (tests/fuzz/fuzz_*.c).
 *
 * Each target #includes the daemon source it tests and is linked with every
 * other daemon source except the programs' own (custosd.c, custosctl.c and
 * the ctl_*.c command modules). */
#ifndef CUSTOS_FUZZ_COMMON_H
#define CUSTOS_FUZZ_COMMON_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: violated, it aborts so libFuzzer
 * records the input. */
#define CHECK(c)                                                                                             \
	do {                                                                                                 \
		if (!(c)) {                                                                                  \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                \
			abort();                                                                             \
		}                                                                                            \
	} while (0)

/* Decodes a hex constant of the harness; aborts on a typo. */
static inline void fuzz_hex(const char *hex, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned v;
		if (sscanf(hex + 2 * i, "%2x", &v) != 1)
			abort();
		out[i] = (uint8_t)v;
	}
}

#endif
