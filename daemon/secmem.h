/* secmem.h - memory for secrets: OpenSSL's secure heap, which is mlock()ed,
 * excluded from core dumps and wiped on free. */
#ifndef CUSTOS_SECMEM_H
#define CUSTOS_SECMEM_H

#include <stddef.h>

#include "util.h"

/* Sets up the secure heap (size bytes, a power of two) and turns off core
 * dumps of secrets. 0, or a negative errno when memory cannot be locked;
 * the caller decides whether to go on without it. */
int secmem_init(size_t size) WUR;
void *secmem_alloc(size_t n);        /* zeroed; NULL when out of memory */
void secmem_free(void *p, size_t n); /* wipes; NULL is a no-op */

#endif
