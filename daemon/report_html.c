/* report_html.c - a report as one self-contained HTML page: semantic
 * markup, a small stylesheet for screen and print, no script, nothing
 * fetched. Each section shows the rule it answers. */
#include <stdlib.h>
#include <string.h>

#include "report.h"

const struct rpt_section rpt_access_sections[] = {
	{ "confirmation", "Do we process personal data about you?" },
	{ "personal_data", "A copy of your personal data" },
	{ "categories", "Categories of personal data" },
	{ "purposes", "Why we process it, and on what legal basis" },
	{ "recipients", "Who receives it" },
	{ "accessed_by", "Who accessed your data (from our audit log)" },
	{ "retention", "How long we keep it" },
	{ "sources", "Where it comes from" },
	{ "rights", "Your rights" },
	{ "complaint", "Complaints" },
	{ "automated_decisions", "Automated decisions and profiling" },
	{ "transfers", "Transfers to other countries" },
	{ "sold_or_shared", "Personal information sold or shared" },
	{ "withheld", "Information we hold but may not disclose" },
	{ "left_out", "Data about other people, left out" },
	{ "not_searched", "Records not searched" },
	{ "portability", "Your data in a portable form" },
};
const size_t rpt_access_nsections = ARRAY_SIZE(rpt_access_sections);

const struct rpt_section rpt_erasure_sections[] = {
	{ "erasure", "What was erased, column by column" },
	{ "retained", "What is kept, why, and until when" },
	{ "keys", "Encryption keys destroyed" },
	{ "notify", "Recipients to notify of the erasure" },
	{ "verification", "How the erasure was checked" },
	{ "log", "The erasure in the audit log" },
};
const size_t rpt_erasure_nsections = ARRAY_SIZE(rpt_erasure_sections);

static const char style[] =
    "body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1b1b}"
    "h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid "
    "#ccc}"
    "h3{font-size:1rem}.rule{color:#555;font-size:.85rem;margin-top:-.4rem}"
    "table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}"
    "th,td{border:1px solid #ccc;padding:.2rem .5rem;text-align:left;vertical-align:top}"
    "th{background:#f3f3f3}dl{display:grid;grid-template-columns:max-content auto;gap:.1rem 1rem}"
    "dt{font-weight:600}dd{margin:0}.erased{color:#888;font-style:italic}"
    "@media print{body{margin:0;max-width:none}section{break-inside:avoid-page}}";

static void esc(struct buf *b, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '<': buf_adds(b, "&lt;"); break;
		case '>': buf_adds(b, "&gt;"); break;
		case '&': buf_adds(b, "&amp;"); break;
		case '"': buf_adds(b, "&quot;"); break;
		case '\'': buf_adds(b, "&#39;"); break;
		default: buf_addc(b, *s);
		}
	}
}

/* A JSON value as text: strings as they are, lists joined, others dumped. */
static void text(struct buf *b, json_t *v)
{
	size_t i;
	json_t *e;

	if (json_is_string(v)) {
		const char *s = json_string_value(v);
		if (!strcmp(s, RPT_ERASED))
			buf_adds(b, "<span class=\"erased\">erased</span>");
		else
			esc(b, s);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, e)
		{
			if (i)
				buf_adds(b, ", ");
			text(b, e);
		}
	} else if (json_is_null(v)) {
		buf_adds(b, "—");
	} else if (json_is_true(v) || json_is_false(v)) {
		buf_adds(b, json_is_true(v) ? "yes" : "no");
	} else if (json_is_object(v)) {
		const char *k;
		json_t *x;
		json_object_foreach(v, k, x)
		{
			esc(b, k);
			buf_adds(b, ": ");
			text(b, x);
			buf_adds(b, "; ");
		}
	} else {
		char *s = json_dumps(v, JSON_ENCODE_ANY);
		esc(b, s);
		free(s);
	}
}

/* An array of objects as a table, with the columns the first has. */
static void table(struct buf *b, json_t *rows)
{
	json_t *first = json_array_get(rows, 0), *r, *v;
	const char *k;
	size_t i;

	if (!json_is_object(first)) {
		buf_adds(b, "<ul>");
		json_array_foreach(rows, i, r)
		{
			buf_adds(b, "<li>");
			text(b, r);
			buf_adds(b, "</li>");
		}
		buf_adds(b, "</ul>");
		return;
	}
	buf_adds(b, "<table><thead><tr>");
	json_object_foreach(first, k, v)
	{
		buf_adds(b, "<th scope=\"col\">");
		esc(b, k);
		buf_adds(b, "</th>");
	}
	buf_adds(b, "</tr></thead><tbody>");
	json_array_foreach(rows, i, r)
	{
		buf_adds(b, "<tr>");
		json_object_foreach(first, k, v)
		{
			buf_adds(b, "<td>");
			text(b, json_object_get(r, k));
			buf_adds(b, "</td>");
		}
		buf_adds(b, "</tr>");
	}
	buf_adds(b, "</tbody></table>");
}

static void personal_data(struct buf *b, json_t *sec)
{
	json_t *t;
	size_t i;

	json_array_foreach(json_object_get(sec, "tables"), i, t)
	{
		json_t *rows = json_object_get(t, "rows");
		buf_adds(b, "<h3>");
		esc(b, json_string_value(json_object_get(t, "table")));
		buf_printf(b, " (%zu %s)</h3>", json_array_size(rows),
		           json_array_size(rows) == 1 ? "row" : "rows");
		if (json_array_size(rows))
			table(b, rows);
	}
}

/* Any other section: its list as a table or list, other fields as a
 * definition list. */
static void generic(struct buf *b, json_t *sec)
{
	const char *k;
	json_t *v;
	bool dl = false;

	json_object_foreach(sec, k, v)
	{
		if (!strcmp(k, "rule"))
			continue;
		if (json_is_array(v)) {
			if (dl)
				buf_adds(b, "</dl>"), dl = false;
			if (strcmp(k, "items")) {
				buf_adds(b, "<h3>");
				esc(b, k);
				buf_adds(b, "</h3>");
			}
			if (json_array_size(v))
				table(b, v);
			else
				buf_adds(b, "<p>None.</p>");
			continue;
		}
		if (!dl)
			buf_adds(b, "<dl>"), dl = true;
		buf_adds(b, "<dt>");
		esc(b, k);
		buf_adds(b, "</dt><dd>");
		text(b, v);
		buf_adds(b, "</dd>");
	}
	if (dl)
		buf_adds(b, "</dl>");
}

static void head(struct buf *b, json_t *doc, const char *title)
{
	json_t *req = json_object_get(doc, "request"), *ctl = json_object_get(doc, "controller"),
	       *subj = json_object_get(doc, "subject"), *rep = json_object_get(doc, "report");

	buf_adds(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
	esc(b, title);
	buf_printf(b, "</title><style>%s</style></head><body><header><h1>", style);
	esc(b, title);
	buf_adds(b, "</h1><dl><dt>Controller</dt><dd>");
	esc(b, json_string_value(json_object_get(ctl, "name")));
	buf_adds(b, "</dd><dt>Contact</dt><dd>");
	esc(b, json_string_value(json_object_get(ctl, "contact")));
	buf_adds(b, "</dd><dt>Data subject</dt><dd>");
	esc(b, json_string_value(json_object_get(subj, "type")));
	buf_adds(b, " ");
	esc(b, json_string_value(json_object_get(subj, "id")));
	buf_printf(b, "</dd><dt>Request</dt><dd>%" JSON_INTEGER_FORMAT " (",
	           json_integer_value(json_object_get(req, "id")));
	esc(b, json_string_value(json_object_get(rep, "regime")));
	buf_adds(b, "), received ");
	esc(b, json_string_value(json_object_get(req, "received_on")));
	buf_adds(b, "</dd><dt>Produced</dt><dd>");
	esc(b, json_string_value(json_object_get(rep, "generated_at")));
	buf_adds(b, "</dd></dl></header><main>");
}

void rpt_html(json_t *doc, struct buf *b)
{
	bool erasure = !strcmp(
	    json_string_value(json_object_get(json_object_get(doc, "report"), "kind")) ?: "", "erasure");
	const struct rpt_section *secs = erasure ? rpt_erasure_sections : rpt_access_sections;
	size_t nsecs = erasure ? rpt_erasure_nsections : rpt_access_nsections;

	head(b, doc, erasure ? "Deletion certificate" : "Your personal data: access report");
	for (size_t i = 0; i < nsecs; i++) {
		json_t *sec = json_object_get(doc, secs[i].key);
		if (!sec)
			continue;
		buf_printf(b, "<section id=\"%s\"><h2>", secs[i].key);
		esc(b, secs[i].title);
		buf_adds(b, "</h2><p class=\"rule\">");
		esc(b, json_string_value(json_object_get(sec, "rule")));
		buf_adds(b, "</p>");
		if (!strcmp(secs[i].key, "personal_data"))
			personal_data(b, sec);
		else
			generic(b, sec);
		buf_adds(b, "</section>");
	}
	buf_adds(b, "</main><footer><p>Signed: see SHA256SUMS and SHA256SUMS.sig; check with "
	            "<code>custosctl report verify</code>.</p></footer></body></html>\n");
}
