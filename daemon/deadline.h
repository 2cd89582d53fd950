/* deadline.h - when a data subject's request must be answered
 * (../shared/compliance.md; DESIGN.md, "Subject requests"). Dates are
 * civil dates (no time of day, no time zone): the day the request was
 * received, and the last day on which the answer is on time.
 *
 *   GDPR Art. 12(3): one month from receipt, by the calendar-month rule of
 *     Regulation 1182/71 Art. 3(2)(c): the same day of the next month, or
 *     that month's last day when it has no such day (31 Jan -> 28/29 Feb).
 *     Extendable by two further months, with reasons given within the first
 *     month. The extended deadline is the earlier of two readings — three
 *     months from receipt, or two months from the first deadline — so that
 *     it is never later than either (31 Jan -> 28 Apr, not 30 Apr).
 *   CCPA §7021: 45 calendar days; one extension of up to 45 more (90 in
 *     all), noticed within the first 45; receipt confirmed within 10
 *     business days (Monday to Friday; public holidays are counted as
 *     business days, which only ever makes the date earlier). */
#ifndef CUSTOS_DEADLINE_H
#define CUSTOS_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

#include "util.h"

enum dl_regime { DL_GDPR, DL_CCPA };

struct dl_date {
	int year;
	unsigned month, day; /* 1-based */
};

/* Parses YYYY-MM-DD (a real date, years 1900-9999). 0 or -EINVAL. */
int dl_parse(const char *s, struct dl_date *ret) WUR;
/* Writes YYYY-MM-DD into out (11 bytes). */
void dl_format(const struct dl_date *d, char out[11]);

/* Days since 1970-01-01, and back. */
int64_t dl_days(const struct dl_date *d);
struct dl_date dl_from_days(int64_t days);

/* d moved by n calendar months (n >= 0), by the calendar-month rule. */
struct dl_date dl_add_months(const struct dl_date *d, unsigned n);

/* The last day of the answer: first, or extended. */
struct dl_date dl_due(enum dl_regime r, const struct dl_date *received, bool extended);
/* CCPA: the last day to confirm receipt. */
struct dl_date dl_confirm_by(const struct dl_date *received);
/* Whether an extension noticed on day `on` is still allowed: within the
 * first period (on or before its last day), and not after the answer's
 * first deadline has passed. */
bool dl_extension_allowed(enum dl_regime r, const struct dl_date *received, const struct dl_date *on);

/* The regime from its name ("gdpr", "ccpa"); -1 when unknown. */
int dl_regime_from_name(const char *name);

#endif
