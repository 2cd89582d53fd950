/* fuzz_sqlscan.c - the plain-text literal scanner (daemon/sqlscan.c)
 * against libpg_query's own scanner: on every text it takes, it must find
 * the same literal tokens at the same places, and the text must scan.
 * The statement cache keys analyses on these literals, so a difference
 * could give one statement another's analysis. */
#include "../../daemon/sqlscan.c"

#include <errno.h>
#include <pg_query.h>
#include <pg_query/pg_query.pb-c.h>
#include <string.h>

#include "fuzz_common.h"

struct lit {
	size_t start, end;
	int token;
};

struct lits {
	struct lit v[4096];
	size_t n;
};

static int take(void *arg, size_t start, size_t end, enum sqs_token token)
{
	struct lits *l = arg;

	if (l->n == sizeof(l->v) / sizeof(l->v[0]))
		return -ENOSPC;
	l->v[l->n++] =
	    (struct lit){ start, end,
		          token == SQS_ICONST ? PG_QUERY__TOKEN__ICONST : PG_QUERY__TOKEN__SCONST };
	return 0;
}

static bool is_literal(PgQuery__Token t)
{
	return t == PG_QUERY__TOKEN__SCONST || t == PG_QUERY__TOKEN__USCONST ||
	       t == PG_QUERY__TOKEN__ICONST || t == PG_QUERY__TOKEN__FCONST || t == PG_QUERY__TOKEN__BCONST ||
	       t == PG_QUERY__TOKEN__XCONST;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lits fast;
	char *sql = malloc(size + 1);

	if (!sql)
		return 0;
	memcpy(sql, data, size);
	sql[size] = 0;
	fast.n = 0;
	if (sqs_scan(sql, take, &fast) == 1) {
		PgQueryScanResult r = pg_query_scan(sql);
		CHECK(!r.error); /* what the fast scanner takes, PostgreSQL's scans */
		PgQuery__ScanResult *u =
		    pg_query__scan_result__unpack(NULL, r.pbuf.len, (const uint8_t *)r.pbuf.data);
		CHECK(u);
		size_t n = 0;
		for (size_t i = 0; i < u->n_tokens; i++) {
			const PgQuery__ScanToken *t = u->tokens[i];
			if (!is_literal(t->token))
				continue;
			CHECK(n < fast.n);
			CHECK(fast.v[n].start == (size_t)t->start && fast.v[n].end == (size_t)t->end);
			CHECK(fast.v[n].token == (int)t->token);
			n++;
		}
		CHECK(n == fast.n);
		pg_query__scan_result__free_unpacked(u, NULL);
		pg_query_free_scan_result(r);
	}
	free(sql);
	return 0;
}
