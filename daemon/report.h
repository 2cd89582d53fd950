/* report.h - the documents a subject request produces: the access report
 * (report_access.c) and the deletion certificate (erasure), as JSON
 * validated by the JSON Schemas in schemas/, rendered to self-contained HTML
 * (report_html.c). Every section is an object with the rule it answers
 * ("rule": "GDPR Art. 15(1)(b)"), so that a DPO can trace each item to
 * ../shared/compliance.md. */
#ifndef CUSTOS_REPORT_H
#define CUSTOS_REPORT_H

#include <jansson.h>
#include <stdbool.h>

#include "buf.h"

#define RPT_FORMAT 1
#define RPT_ERASED "[erased]" /* a value whose key was destroyed */

/* Renders a report or certificate (by its "report"."kind") as HTML. */
void rpt_html(json_t *doc, struct buf *out);

/* The section keys of a document, in reading order, with their titles:
 * what rpt_html walks, and what a reader of the JSON finds. */
struct rpt_section {
	const char *key, *title;
};
extern const struct rpt_section rpt_access_sections[];
extern const size_t rpt_access_nsections;
extern const struct rpt_section rpt_erasure_sections[];
extern const size_t rpt_erasure_nsections;

#endif
