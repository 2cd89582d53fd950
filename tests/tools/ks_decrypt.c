/* ks_decrypt - decrypts column values with the keystore, for the tests.
 *
 *   ks_decrypt KEYSTORE-CONNINFO MASTER-KEY-FILE KEK-FILE
 *
 * Reads lines "table<TAB>column<TAB>ciphertext" and answers each with
 * "ok<TAB>plaintext" or "err<TAB>errno-name", so a test can tell an erased
 * value (ENOKEY) from an altered one (EBADMSG). Before each line it takes
 * the keystore's notifications, as the keeper does: a key shredded by
 * another process leaves its cache. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "colcrypt.h"
#include "masterkey.h"
#include "secmem.h"

static const char *errname(int err)
{
	switch (-err) {
	case ENOKEY: return "ENOKEY";
	case EBADMSG: return "EBADMSG";
	case EINVAL: return "EINVAL";
	case EPROTONOSUPPORT: return "EPROTONOSUPPORT";
	case EIO: return "EIO";
	default: return "OTHER";
	}
}

int main(int argc, char **argv)
{
	uint8_t *master;
	struct keystore *ks;
	char err[1024], *line = NULL;
	size_t cap = 0;
	ssize_t n;

	if (argc != 4)
		return fprintf(stderr, "usage: ks_decrypt CONNINFO MASTER-KEY KEK-FILE\n"), 2;
	if (secmem_init(1u << 20))
		fprintf(stderr, "ks_decrypt: no secure heap\n");
	if (masterkey_load(argv[2], NULL, &master, err, sizeof(err)))
		return fprintf(stderr, "ks_decrypt: %s\n", err), 2;
	struct ks_config cfg = {
		.conninfo = argv[1], .kek_path = argv[3], .master_key = master, .cache_keys = 4096
	};
	int r = ks_open(&cfg, &ks, err, sizeof(err));
	secmem_free(master, MASTER_KEY_LEN);
	if (r)
		return fprintf(stderr, "ks_decrypt: %s\n", err), 2;
	if (ks_listen(ks))
		return fprintf(stderr, "ks_decrypt: %s\n", ks_error(ks)), 2;
	while ((n = getline(&line, &cap, stdin)) > 0) {
		if (ks_notified(ks) < 0) /* as the keeper does when its socket is readable */
			return fprintf(stderr, "ks_decrypt: %s\n", ks_error(ks)), 2;
		if (line[n - 1] == '\n')
			line[--n] = 0;
		char *col = strchr(line, '\t'), *ct = col ? strchr(col + 1, '\t') : NULL;
		if (!ct)
			return fprintf(stderr, "ks_decrypt: bad input line\n"), 2;
		*col++ = 0;
		*ct++ = 0;
		struct buf out = BUF_INIT;
		r = cc_decrypt(ks, line, col, ct, strlen(ct), &out);
		if (r)
			printf("err\t%s\n", errname(r));
		else
			printf("ok\t%.*s\n", (int)out.len, out.p);
		fflush(stdout);
		buf_free(&out);
	}
	free(line);
	ks_close(ks);
	return 0;
}
