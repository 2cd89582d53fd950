/* logshow.c - see logshow.h */
#include "logshow.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog.h"
#include "buf.h"
#include "util.h"

static const char *subject_id(const char *ct, struct keyprov *kp, struct buf *pt)
{
	struct fc_key k;
	uint8_t id[FC_KEYID_LEN];
	size_t n = strlen(ct);

	if (fc_key_id(ct, n, id))
		return "[malformed]";
	int r = kp->key_by_id(kp, id, &k);
	if (r == -ENOKEY)
		return LS_ERASED;
	buf_reset(pt);
	r = r ? r : fc_decrypt(&k, ALOG_SUBJECT_CTX, strlen(ALOG_SUBJECT_CTX), ct, n, pt);
	OPENSSL_cleanse(&k, sizeof(k));
	if (r)
		return "[undecryptable]";
	buf_addc(pt, '\0');
	return pt->failed ? "[undecryptable]" : pt->p;
}

void ls_decrypt_subjects(json_t *rec, struct keyprov *kp)
{
	struct buf pt = BUF_INIT;
	size_t i;
	json_t *s;

	if (!kp)
		return;
	json_array_foreach(json_object_get(rec, "subjects"), i, s)
	{
		const char *ct = json_string_value(json_object_get(s, "id"));
		if (ct)
			json_object_set_new(s, "id", json_string(subject_id(ct, kp, &pt)));
	}
	if (pt.p)
		OPENSSL_cleanse(pt.p, pt.cap);
	buf_free(&pt);
}

static const char *str(json_t *o, const char *key)
{
	const char *s = json_string_value(json_object_get(o, key));
	return s ? s : "";
}

static void cell(FILE *out, const char *s, int width, bool wide)
{
	int n = (int)strlen(s);

	if (!wide && n > width)
		fprintf(out, "%.*s… ", width - 1, s);
	else
		fprintf(out, "%-*s ", width, s);
}

void ls_table_header(FILE *out)
{
	fprintf(out, "%-8s %-20s %-12s %-22s %-24s %-24s %s\n", "SEQ", "TIME (UTC)", "TYPE", "ACTOR",
	        "OBJECT", "SUBJECTS", "STATEMENT OR DETAIL");
}

static void join_subjects(json_t *rec, struct buf *b)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(rec, "subjects"), i, s)
	{
		const char *id = str(s, "id");
		if (i)
			buf_addc(b, ',');
		if (!strncmp(id, "cx", 2)) /* still encrypted: show the ref */
			buf_printf(b, "ref:%.12s", str(s, "ref"));
		else
			buf_adds(b, id);
	}
	buf_addc(b, '\0');
}

void ls_table_row(FILE *out, json_t *rec, bool wide)
{
	json_t *actor = json_object_get(rec, "actor"), *obj = json_object_get(rec, "object");
	struct buf b = BUF_INIT;
	char ts[20] = "";

	strncpy(ts, str(rec, "ts"), 19);
	if (strlen(ts) == 19)
		ts[10] = ' ';
	fprintf(out, "%-8lld %-20s ", (long long)json_integer_value(json_object_get(rec, "seq")), ts);
	cell(out, str(rec, "type"), 12, wide);
	buf_printf(&b, "%s%s%s", str(actor, "user"), *str(actor, "addr") ? "@" : "", str(actor, "addr"));
	buf_addc(&b, '\0');
	cell(out, b.failed ? "" : b.p, 22, wide);
	cell(out, str(obj, "table"), 24, wide);
	buf_reset(&b);
	join_subjects(rec, &b);
	cell(out, b.failed ? "" : b.p, 24, wide);
	json_t *detail = json_object_get(rec, "detail");
	char *d =
	    !*str(rec, "stmt") && detail ? json_dumps(detail, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	fprintf(out, "%s\n", d ? d : str(rec, "stmt"));
	free(d);
	buf_free(&b);
}

/* CEF: header fields escape \ and |; extension values escape \, = and
 * line breaks. */
static void cef_escape(FILE *out, const char *s, bool header)
{
	for (; *s; s++) {
		if (*s == '\\' || (header && *s == '|') || (!header && *s == '='))
			fputc('\\', out), fputc(*s, out);
		else if (*s == '\n')
			fputs(header ? " " : "\\n", out);
		else if (*s == '\r')
			fputs(header ? " " : "\\r", out);
		else
			fputc(*s, out);
	}
}

static const struct cef_type {
	const char *type, *name;
	int severity;
} cef_types[] = {
	{ "access", "Personal data accessed", 3 },
	{ "checkpoint", "Audit log checkpoint", 1 },
	{ "log_init", "Audit log created", 3 },
	{ "recovery", "Audit log recovered after a crash or write failure", 7 },
	{ "control", "Control request", 3 },
	{ "security", "Security event", 8 },
	{ "service", "Custos service started or stopped", 3 },
};

static bool is_ip(const char *s)
{
	struct in6_addr a; /* big enough for either */

	return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

static void cef_ext(FILE *out, const char *key, const char *val)
{
	if (!val || !*val)
		return;
	fprintf(out, " %s=", key);
	cef_escape(out, val, false);
}

void ls_cef(FILE *out, json_t *rec)
{
	const char *type = str(rec, "type"), *name = type;
	json_t *actor = json_object_get(rec, "actor"), *obj = json_object_get(rec, "object");
	int sev = 5;
	int64_t us = 0;
	char num[32];

	for (size_t i = 0; i < ARRAY_SIZE(cef_types); i++)
		if (!strcmp(cef_types[i].type, type))
			name = cef_types[i].name, sev = cef_types[i].severity;
	fputs("CEF:0|Custos|custosd|0.1|", out);
	cef_escape(out, type, true);
	fputc('|', out);
	cef_escape(out, name, true);
	fprintf(out, "|%d|", sev);
	snprintf(num, sizeof(num), "%lld", (long long)json_integer_value(json_object_get(rec, "seq")));
	fprintf(out, "externalId=%s", num);
	if (ts_parse(str(rec, "ts"), &us)) {
		snprintf(num, sizeof(num), "%lld", (long long)(us / 1000));
		cef_ext(out, "rt", num);
	}
	cef_ext(out, "suser", str(actor, "user"));
	/* CEF's src is an IP address; anything else (a Unix socket) is shost */
	cef_ext(out, is_ip(str(actor, "addr")) ? "src" : "shost", str(actor, "addr"));
	cef_ext(out, "requestClientApplication", str(actor, "app"));
	if (obj) {
		cef_ext(out, "cs1Label", "table");
		cef_ext(out, "cs1", str(obj, "table"));
	}
	struct buf refs = BUF_INIT;
	size_t i;
	json_t *s;
	json_array_foreach(json_object_get(rec, "subjects"), i, s)
	{
		if (i)
			buf_addc(&refs, ',');
		buf_adds(&refs, str(s, "ref"));
	}
	buf_addc(&refs, '\0');
	if (json_array_size(json_object_get(rec, "subjects")) && !refs.failed) {
		cef_ext(out, "cs2Label", "subjectRefs");
		cef_ext(out, "cs2", refs.p);
	}
	buf_free(&refs);
	if (json_is_integer(json_object_get(rec, "rows"))) {
		snprintf(num, sizeof(num), "%lld",
		         (long long)json_integer_value(json_object_get(rec, "rows")));
		cef_ext(out, "cnt", num);
	}
	cef_ext(out, "cs3Label", *str(rec, "fp") ? "fingerprint" : NULL);
	cef_ext(out, "cs3", str(rec, "fp"));
	cef_ext(out, "msg", str(rec, "stmt"));
}
