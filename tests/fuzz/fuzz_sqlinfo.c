/* fuzz_sqlinfo.c - statement analysis (daemon/sqlinfo.c, sqlcache.c): any text is
 * analysed or refused cleanly; an analysed statement has a kind, a
 * fingerprint and normalised text, and a refusal's message quotes none of
 * the input. The cache, which shares one analysis among texts differing
 * only in literals, must give what a fresh analysis of the text gives
 * (one cache for the run: earlier inputs are the other texts). The text
 * is also read as a routine's definition (sqlbody.c), as the catalog
 * gives one: it is analysed or refused, never crashes libpg_query's
 * PL/pgSQL parser (which asserts that a function has a body). */
#include "../../daemon/sqlinfo.c"
#include "../../daemon/sqlcache.c"
#include "sqlbody.h"
#include "sqlreading.h"
#include "fuzz_common.h"

static bool same_table(const struct sqi_table *a, const struct sqi_table *b)
{
	return !strcmp(a->name, b->name) && !a->schema == !b->schema &&
	       (!a->schema || !strcmp(a->schema, b->schema)) && a->write == b->write;
}

static void check_cache(const char *sql, const struct sqi_info *fresh)
{
	static struct sqi_cache *cache;
	const struct sqi_info *c;
	const struct sqi_literal *lits;
	size_t nlits;
	char err[256];

	if (!cache && !(cache = sqi_cache_new(64)))
		return;
	if (sqi_cache_get(cache, sql, &c, &lits, &nlits, err, sizeof(err)))
		return; /* out of memory, or it does not scan */
	CHECK(c->n == fresh->n);
	for (size_t i = 0; i < c->n; i++) {
		const struct sqi_stmt *a = &c->stmts[i], *b = &fresh->stmts[i];
		CHECK(a->kind == b->kind && !strcmp(a->fingerprint, b->fingerprint) &&
		      a->ntables == b->ntables && a->npreds == b->npreds && a->nuses == b->nuses);
		for (size_t j = 0; j < a->ntables; j++)
			CHECK(same_table(&a->tables[j], &b->tables[j]));
		for (size_t j = 0; j < a->npreds; j++) {
			const struct sqi_pred *p = &a->preds[j];
			CHECK(!strcmp(p->column, b->preds[j].column) && p->param == b->preds[j].param);
			if (p->literal < 0)
				continue;
			CHECK((size_t)p->literal < nlits);
			char *v = sqi_literal_text(&lits[p->literal]);
			/* a plain literal reads as the parser read it */
			CHECK(!v || !b->preds[j].value || lits[p->literal].number ||
			      !strcmp(v, b->preds[j].value));
			free(v);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sqi_info *info;
	char err[256] = "", *sql;

	if (size > 4096 || !(sql = malloc(size + 1)))
		return 0;
	memcpy(sql, data, size);
	sql[size] = 0;
	int r = sqi_analyse(sql, &info, err, sizeof(err));
	CHECK(r == 0 || r == -EINVAL || r == -E2BIG || r == -EILSEQ || r == -ENOMEM);
	(void)sqr_changes_reading(sql); /* its own walks of the parse: no crash, no leak */
	(void)sqr_keeps_reading(sql);
	/* its own scan of the bytes (a text without a backslash reads alike) */
	CHECK(sqr_reads_alike((const char *)data, size, false) || memchr(data, '\\', size));
	(void)sqr_reads_alike((const char *)data, size, true);
	if (r == 0) {
		for (size_t i = 0; i < info->n; i++) {
			const struct sqi_stmt *st = &info->stmts[i];
			CHECK(st->kind <= SQI_OTHER && strlen(st->fingerprint) == 16);
			CHECK(st->normalized);
			for (size_t j = 0; j < st->ntables; j++)
				CHECK(st->tables[j].name);
			for (size_t j = 0; j < st->nconflict_cols; j++)
				CHECK(st->conflict_cols[j]);
			for (size_t j = 0; j < st->npreds; j++) /* a cast column is never rewritten */
				CHECK(!(st->preds[j].plain && st->preds[j].col_cast));
			CHECK(!st->nested_writes || st->write_all);
		}
		check_cache(sql, info);
		sqi_free(info);
	} else if (r == -EILSEQ) { /* (the text is not UTF-8, and the message says so) */
		CHECK(strstr(err, "not UTF-8"));
	} else if (r == -EINVAL) {
		CHECK(!strncmp(err, "the statement does not parse", 28) ||
		      !strncmp(err, "cannot analyse", 14));
	}
	struct sqb_routine rt;
	r = sqb_routine(sql, &rt);
	CHECK(r == 0 || r == -EINVAL || r == -ENOMEM);
	CHECK(r == 0 || !rt.ntables);
	for (size_t i = 0; i < rt.ntables; i++) { /* what an UPDATE writes is among what is written */
		const struct sqb_table *t = &rt.tables[i];
		CHECK(t->name && (!t->cols.all || t->write) && (!t->updated.all || t->write));
		CHECK(t->updated.n <= t->cols.n || t->cols.all);
	}
	sqb_routine_free(&rt);
	free(sql);
	return 0;
}
