/* dsr_access.c - the access report (GDPR Art. 15 and 20, CCPA right to
 * know): the subject's rows found along the policy's paths and decrypted,
 * what the policy says of each column, and who the audit log shows
 * actually accessed them. Data about other people is left out (Art.
 * 15(4)); under the CCPA the §7024(d) items are withheld and named. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "catalog.h"
#include "colcrypt.h"
#include "dsr_index.h"
#include "dsr_run.h"
#include "fieldcrypt.h"
#include "keyclient.h"
#include "ledger.h"
#include "report.h"
#include "subjectrows.h"

/* CCPA §7024(d): never disclosed, only named (by data category prefix). */
static const struct {
	const char *prefix, *holds;
} withheld_kinds[] = {
	{ "user.government_id", "a government-issued identification number" },
	{ "user.financial.bank_account", "a financial account number" },
	{ "user.financial.credit_card", "a financial account number" },
	{ "user.health_and_medical", "a medical or health-insurance identification number" },
	{ "user.authorization.credentials", "an account password or credentials" },
	{ "user.authorization.password", "an account password" },
	{ "user.authorization.security_question", "security questions and answers" },
	{ "user.biometric", "unique biometric data" },
};

struct access {
	struct dsr *d;
	bool ccpa;
	json_t *data, *portable, *withheld, *left_out;
	json_int_t rows;
	char *err;
	size_t errlen;
};

static const char *withheld_as(const struct access *a, const struct pol_column *c)
{
	for (size_t i = 0; a->ccpa && i < ARRAY_SIZE(withheld_kinds); i++) {
		size_t n = strlen(withheld_kinds[i].prefix);
		if (!strncmp(c->category, withheld_kinds[i].prefix, n) &&
		    (!c->category[n] || c->category[n] == '.'))
			return withheld_kinds[i].holds;
	}
	return NULL;
}

static json_t *strlist(const struct pol_list *l)
{
	json_t *a = json_array();
	for (size_t i = 0; i < l->n; i++)
		json_array_append_new(a, json_string(l->v[i]));
	return a;
}

static char *qualified(const struct pol_table *t, const struct pol_column *c, char *out, size_t n)
{
	snprintf(out, n, "%s.%s", t->name, c->name);
	return out;
}

/* A value as the report shows it: decrypted, "[erased]", or NULL with
 * err set when it cannot be read (the report is then not made). */
static json_t *value(struct access *a, const struct pol_table *t, const struct pol_column *c, PGresult *r,
                     int row, int col)
{
	const char *v = PQgetvalue(r, row, col);
	size_t n = (size_t)PQgetlength(r, row, col);
	uint8_t id[FC_KEYID_LEN];
	struct kc_key k;
	struct buf plain = BUF_INIT;

	if (PQgetisnull(r, row, col))
		return json_null();
	if (!c->encrypt || fc_key_id(v, n, id))
		return json_stringn(v, n); /* not (yet) encrypted */
	int e = kcl_key(a->d->kp, id, &k);
	if (!e)
		e = cc_decrypt_with(&k, t->name, c->name, v, n, &plain);
	explicit_bzero(&k, sizeof(k));
	json_t *j = e == -ENOKEY ? json_string(RPT_ERASED) : e ? NULL : json_stringn(plain.p, plain.len);
	if (plain.p)
		explicit_bzero(plain.p, plain.len);
	buf_free(&plain);
	if (!j)
		snprintf(a->err, a->errlen, "a value of %s.%s cannot be decrypted: %s", t->name, c->name,
		         e ? cc_strerror(e) : "not valid UTF-8");
	return j;
}

static json_t *column_info(const struct pol_column *c)
{
	return json_pack("{s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:b}", "name", c->name, "category", c->category,
	                 "purposes", strlist(&c->purposes), "lawful_basis", c->lawful_basis, "retention",
	                 c->retention, "source", c->source, "recipients", strlist(&c->recipients),
	                 "provided_by_subject", c->provided_by_subject);
}

static int table_rows(void *arg, const struct pol_table *t, const struct pol_column *const *cols,
                      size_t ncols, PGresult *r)
{
	struct access *a = arg;
	json_t *rows = json_array(), *prows = json_array(), *info = json_array();
	char q[256];
	bool provided = false;

	for (size_t c = 0; c < ncols; c++) {
		const char *holds = withheld_as(a, cols[c]);
		if (holds)
			json_array_append_new(a->withheld,
			                      json_pack("{s:s, s:s, s:s, s:I}", "column",
			                                qualified(t, cols[c], q, sizeof(q)), "category",
			                                cols[c]->category, "holds", holds, "rows",
			                                (json_int_t)PQntuples(r)));
		else
			json_array_append_new(info, column_info(cols[c]));
		provided |= cols[c]->provided_by_subject && !holds;
	}
	for (int i = 0; i < PQntuples(r); i++) {
		json_t *o = json_object(), *p = json_object();
		for (size_t c = 0; c < ncols; c++) {
			if (withheld_as(a, cols[c]))
				continue;
			json_t *v = value(a, t, cols[c], r, i, (int)c);
			if (!v) {
				json_decref(o), json_decref(p), json_decref(rows), json_decref(prows),
				    json_decref(info);
				return -EIO;
			}
			if (cols[c]->provided_by_subject)
				json_object_set(p, cols[c]->name, v);
			json_object_set_new(o, cols[c]->name, v);
		}
		json_array_append_new(rows, o);
		if (provided)
			json_array_append_new(prows, p);
		else
			json_decref(p);
	}
	a->rows += PQntuples(r);
	json_array_append_new(a->data,
	                      json_pack("{s:s, s:o, s:o}", "table", t->name, "columns", info, "rows", rows));
	if (provided && json_array_size(prows))
		json_object_set_new(a->portable, t->name, prows);
	else
		json_decref(prows);
	return 0;
}

static bool about_subject(const struct pol_column *c)
{
	return !c->about_others;
}

/* Groups the policy's columns by one of their attributes: categories,
 * purposes, recipients, retention, sources. */
struct grouping {
	json_t *by; /* key -> array of columns */
};

static void group_add(json_t *by, const char *key, const char *col)
{
	json_t *cols = json_object_get(by, key);
	if (!cols)
		json_object_set_new(by, key, cols = json_array());
	json_array_append_new(cols, json_string(col));
}

static json_t *grouped(json_t *by, const char *name)
{
	json_t *items = json_array(), *cols;
	const char *k;

	json_object_foreach(by, k, cols)
	{
		json_array_append_new(items, json_pack("{s:s, s:O}", name, k, "columns", cols));
	}
	json_decref(by);
	return items;
}

/* What the policy says, for the columns of the subject's type that the
 * report covers (about the subject, not withheld). */
static void policy_sections(struct access *a, const struct sm_map *m, json_t *doc, const char *const *rules)
{
	json_t *cat = json_object(), *pur = json_object(), *rec = json_object(), *ret = json_object(),
	       *src = json_object(), *basis = json_object();
	const struct policy *p = a->d->pol;
	char q[256];

	for (size_t t = 0; t < p->ntables; t++) {
		const struct pol_table *pt = &p->tables[t];
		struct buf probe = BUF_INIT, root = BUF_INIT;
		int reach = sm_from(m, pt->name, &probe, &root);
		buf_free(&probe);
		buf_free(&root);
		if (reach)
			continue; /* another subject type's */
		for (size_t c = 0; c < pt->ncols; c++) {
			const struct pol_column *pc = &pt->cols[c];
			qualified(pt, pc, q, sizeof(q));
			if (pc->about_others) {
				json_array_append_new(a->left_out,
				                      json_pack("{s:s, s:s}", "column", q, "why",
				                                "data about other people (Art. 15(4))"));
				continue;
			}
			if (withheld_as(a, pc))
				continue;
			group_add(cat, pc->category, q);
			group_add(ret, pc->retention, q);
			group_add(src, pc->source, q);
			for (size_t i = 0; i < pc->purposes.n; i++) {
				group_add(pur, pc->purposes.v[i], q);
				group_add(basis, pc->purposes.v[i], pc->lawful_basis);
			}
			for (size_t i = 0; i < pc->recipients.n; i++)
				group_add(rec, pc->recipients.v[i], q);
		}
	}
	json_t *purposes = grouped(pur, "purpose"), *it;
	size_t i;
	json_array_foreach(purposes, i, it)
	{
		json_t *bases = json_array(), *b;
		size_t j;
		json_array_foreach(json_object_get(basis, json_string_value(json_object_get(it, "purpose"))),
		                   j, b)
		{
			bool dup = false;
			for (size_t k = 0; k < json_array_size(bases); k++)
				dup |= json_equal(json_array_get(bases, k), b);
			if (!dup)
				json_array_append(bases, b);
		}
		json_object_set_new(it, "lawful_basis", bases);
	}
	json_decref(basis);
	json_object_set_new(doc, "categories",
	                    json_pack("{s:s, s:o}", "rule", rules[0], "items", grouped(cat, "category")));
	json_object_set_new(doc, "purposes", json_pack("{s:s, s:o}", "rule", rules[1], "items", purposes));
	json_object_set_new(doc, "recipients",
	                    json_pack("{s:s, s:o}", "rule", rules[2], "items", grouped(rec, "recipient")));
	json_object_set_new(doc, "retention",
	                    json_pack("{s:s, s:o}", "rule", rules[3], "items", grouped(ret, "retention")));
	json_object_set_new(doc, "sources",
	                    json_pack("{s:s, s:o}", "rule", rules[4], "items", grouped(src, "source")));
}

/* ---- who accessed the data: the audit log, through its subject index ---- */

static json_t *accesses(struct access *a, const char *type, const char *id, const char *rule)
{
	struct kc_key k;
	char ref[65];
	int e = kcl_subject(a->d->kp, type, id, &k);

	if (e == -ENOKEY) /* erased: the log's records no longer name them */
		return json_pack(
		    "{s:s, s:s, s:i, s:[], s:[], s:[]}", "rule", rule, "searched",
		    "not searched: this subject was erased, and the audit log's records can no longer "
		    "be attributed to them",
		    "total", 0, "by_actor", "recent", "attempted");
	if (e) {
		snprintf(a->err, a->errlen, "the subject's ref cannot be had from the keeper: %s",
		         strerror(-e));
		return NULL;
	}
	hex_encode(k.ref, sizeof(k.ref), ref);
	explicit_bzero(&k, sizeof(k));
	if (dsr_index_catch_up(a->d, 0, a->err, a->errlen))
		return NULL;
	json_t *acc = dsr_index_accesses(a->d, ref, a->err, a->errlen);
	if (acc) {
		json_object_set_new(acc, "rule", json_string(rule));
		json_object_set_new(
		    acc, "searched",
		    json_string(
		        "every access and attempt record of the audit log, from its first record on"));
	}
	return acc;
}

/* ---- the whole report ---- */

enum {
	R_CONFIRM,
	R_COPY,
	R_CAT,
	R_PURPOSE,
	R_RECIP,
	R_RETAIN,
	R_SOURCE,
	R_RIGHTS,
	R_COMPLAIN,
	R_AUTO,
	R_TRANSFER,
	R_PORTABLE,
	R_OTHERS,
	R_SOLD,
	R_WITHHELD,
	R_NOT_SEARCHED,
	R_ACCESSED,
	R_NRULES
};

static const char *const gdpr_rules[R_NRULES] = {
	"GDPR Art. 15(1)",
	"GDPR Art. 15(3)",
	"GDPR Art. 15(1)(b)",
	"GDPR Art. 15(1)(a)",
	"GDPR Art. 15(1)(c)",
	"GDPR Art. 15(1)(d)",
	"GDPR Art. 15(1)(g)",
	"GDPR Art. 15(1)(e)",
	"GDPR Art. 15(1)(f)",
	"GDPR Art. 15(1)(h), Art. 22",
	"GDPR Art. 15(2), Art. 46",
	"GDPR Art. 20",
	"GDPR Art. 15(4)",
	"CCPA §1798.115",
	"CCPA §7024(d)",
	"CCPA §7024(c)",
	"GDPR Art. 15(1)(c) (recipients in fact)",
};
static const char *const ccpa_rules[R_NRULES] = {
	"CCPA §1798.110",
	"CCPA §1798.110(a)(5), §1798.130(a)(2)",
	"CCPA §1798.110(a)(1)",
	"CCPA §1798.110(a)(3)",
	"CCPA §1798.110(a)(4)",
	"CCPA §1798.100(a)(3)",
	"CCPA §1798.110(a)(2)",
	"CCPA §1798.105, §1798.106, §1798.120",
	"CCPA §1798.199.45",
	"CCPA §1798.185(a)(16)",
	"GDPR Art. 15(2) (not required by the CCPA)",
	"CCPA §1798.130(a)(2)",
	"GDPR Art. 15(4) (others' data left out)",
	"CCPA §1798.115",
	"CCPA §7024(d)",
	"CCPA §7024(c)",
	"CCPA §1798.110(a)(4), §7024(h) (disclosures in fact)",
};

static json_t *rights(bool ccpa, const char *rule)
{
	json_t *items =
	    ccpa
	        ? json_pack("[s, s, s, s]", "to delete personal information collected from you (§1798.105)",
	                    "to correct inaccurate personal information (§1798.106)",
	                    "to opt out of the sale or sharing of personal information (§1798.120)",
	                    "not to be discriminated against for exercising these rights (§1798.125)")
	        : json_pack("[s, s, s, s]", "rectification of inaccurate data (Art. 16)", "erasure (Art. 17)",
	                    "restriction of processing (Art. 18)", "objection to processing (Art. 21)");
	return json_pack("{s:s, s:o}", "rule", rule, "items", items);
}

static json_t *not_searched(struct access *a, const struct catalog *cat, const char *rule)
{
	json_t *items =
	    json_pack("[s, s]",
	              "backups of the customer database: not searched, because restoring them for a "
	              "request is disproportionate; encrypted values in them are unreadable once the "
	              "subject's keys are destroyed",
	              "systems and records outside the customer database that Custos protects "
	              "(e-mail, paper files, other databases): not covered by this report");
	struct buf t = BUF_INIT;
	for (size_t i = 0; i < cat->ntables; i++) {
		const char *name = cat->tables[i].name;
		if (!pol_table(a->d->pol, name) && strncmp(name, "pg_", 3) &&
		    strncmp(name, "information_schema.", 19))
			buf_printf(&t, "%s%s", t.len ? ", " : "", name);
	}
	if (t.len && !t.failed) {
		buf_addc(&t, 0);
		json_array_append_new(items, json_pack("{s:s, s:s}", "tables", t.p, "why",
		                                       "declared by the policy to hold no personal data"));
	}
	buf_free(&t);
	return json_pack("{s:s, s:o}", "rule", rule, "items", items);
}

json_t *dsr_access_report(struct dsr *d, json_t *row, json_t **ret_portable, char *err, size_t errlen)
{
	const char *type = lg_str(row, "subject_type"), *id = lg_str(row, "subject_id");
	bool ccpa = !strcmp(lg_str(row, "regime"), "ccpa");
	const char *const *rules = ccpa ? ccpa_rules : gdpr_rules;
	struct access a = {
		d, ccpa, json_array(), json_object(), json_array(), json_array(), 0, err, errlen
	};
	struct catalog *cat = NULL;
	struct sm_map *m = NULL;
	json_t *doc = NULL;
	const struct pol_controller *ctl = &d->pol->controller;
	char now[TS_LEN + 1];

	int r = cat_load(d->data, &cat, err, errlen);
	if (!r && (r = sm_build(d->pol, cat, type, &m)))
		snprintf(err, errlen, "the policy has no subject type %.32s", type);
	if (!r)
		r = srw_each(d->data, d->pol, m, id, about_subject, table_rows, &a, err, errlen);
	json_t *acc = r ? NULL : accesses(&a, type, id, rules[R_ACCESSED]);
	if (!r && acc) {
		ts_format(now_us(), now);
		doc = json_pack("{s:{s:s, s:s, s:i, s:s}, s:O, s:{s:s?, s:s?, s:s?, s:s?}, s:{s:s, s:s}}",
		                "report", "kind", "access", "regime", ccpa ? "ccpa" : "gdpr", "format",
		                RPT_FORMAT, "generated_at", now, "request", row, "controller", "name",
		                ctl->name, "contact", ctl->contact, "dpo", ctl->dpo, "supervisory_authority",
		                ctl->authority, "subject", "type", type, "id", id);
		json_object_set_new(doc, "confirmation",
		                    json_pack("{s:s, s:b, s:I}", "rule", rules[R_CONFIRM], "processed",
		                              a.rows > 0, "rows", a.rows));
		json_object_set_new(doc, "personal_data",
		                    json_pack("{s:s, s:O}", "rule", rules[R_COPY], "tables", a.data));
		policy_sections(&a, m, doc, rules + R_CAT);
		json_object_set_new(doc, "accessed_by", acc);
		json_object_set_new(doc, "rights", rights(ccpa, rules[R_RIGHTS]));
		json_object_set_new(
		    doc, "complaint",
		    json_pack("{s:s, s:s?}", "rule", rules[R_COMPLAIN], "authority", ctl->authority));
		json_object_set_new(doc, "automated_decisions",
		                    json_pack("{s:s, s:s}", "rule", rules[R_AUTO], "text",
		                              ctl->automated ? ctl->automated : "none"));
		json_object_set_new(
		    doc, "transfers",
		    json_pack("{s:s, s:o}", "rule", rules[R_TRANSFER], "items", strlist(&ctl->transfers)));
		json_object_set_new(
		    doc, "sold_or_shared",
		    json_pack("{s:s, s:o}", "rule", rules[R_SOLD], "items", strlist(&ctl->sold_or_shared)));
		json_object_set_new(doc, "withheld",
		                    json_pack("{s:s, s:O}", "rule", rules[R_WITHHELD], "items", a.withheld));
		json_object_set_new(doc, "not_searched", not_searched(&a, cat, rules[R_NOT_SEARCHED]));
		json_object_set_new(doc, "left_out",
		                    json_pack("{s:s, s:O}", "rule", rules[R_OTHERS], "items", a.left_out));
		json_object_set_new(
		    doc, "portability",
		    json_pack("{s:s, s:s, s:s}", "rule", rules[R_PORTABLE], "file", "portable.json", "what",
		              "the data you provided, structured and machine-readable (JSON)"));
		*ret_portable = json_pack("{s:s, s:{s:s, s:s}, s:O}", "format", "custos-portable-1",
		                          "subject", "type", type, "id", id, "data", a.portable);
	}
	json_decref(a.data), json_decref(a.portable), json_decref(a.withheld), json_decref(a.left_out);
	sm_free(m);
	cat_free(cat);
	return doc;
}
