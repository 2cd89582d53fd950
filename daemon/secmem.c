/* secmem.c - see secmem.h */
#include "secmem.h"

#include <errno.h>
#include <openssl/crypto.h>

int secmem_init(size_t size)
{
	if (CRYPTO_secure_malloc_initialized())
		return 0;
	/* Returns 2 when the pages could not be locked or guarded. */
	return CRYPTO_secure_malloc_init(size, 32) == 1 ? 0 : -ENOMEM;
}

void *secmem_alloc(size_t n)
{
	return OPENSSL_secure_zalloc(n);
}

void secmem_free(void *p, size_t n)
{
	if (p)
		OPENSSL_secure_clear_free(p, n);
}
