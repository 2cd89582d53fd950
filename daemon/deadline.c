/* deadline.c - see deadline.h. Day numbers use the proleptic Gregorian
 * calendar (Howard Hinnant's days-from-civil). */
#include "deadline.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static bool leap(int y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(int y, unsigned m)
{
	static const unsigned days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && leap(y) ? 29 : days[m - 1];
}

int dl_parse(const char *s, struct dl_date *ret)
{
	int y, n = 0;
	unsigned m, d;

	if (!s || strlen(s) != 10 || sscanf(s, "%4d-%2u-%2u%n", &y, &m, &d, &n) != 3 || n != 10 ||
	    s[4] != '-' || s[7] != '-')
		return -EINVAL;
	for (int i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	if (y < 1900 || m < 1 || m > 12 || d < 1 || d > month_days(y, m))
		return -EINVAL;
	*ret = (struct dl_date){ y, m, d };
	return 0;
}

void dl_format(const struct dl_date *d, char out[11])
{
	snprintf(out, 11, "%04d-%02u-%02u", d->year, d->month, d->day);
}

int64_t dl_days(const struct dl_date *d)
{
	int64_t y = d->year - (d->month <= 2);
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (d->month + (d->month > 2 ? -3 : 9)) + 2) / 5 + d->day - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return era * 146097 + doe - 719468;
}

struct dl_date dl_from_days(int64_t z)
{
	z += 719468;
	int64_t era = (z >= 0 ? z : z - 146096) / 146097;
	int64_t doe = z - era * 146097;
	int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	int64_t mp = (5 * doy + 2) / 153;
	unsigned d = (unsigned)(doy - (153 * mp + 2) / 5 + 1);
	unsigned m = (unsigned)(mp < 10 ? mp + 3 : mp - 9);

	return (struct dl_date){ (int)(yoe + era * 400 + (m <= 2)), m, d };
}

struct dl_date dl_add_months(const struct dl_date *d, unsigned n)
{
	unsigned m0 = d->month - 1 + n;
	struct dl_date r = { d->year + (int)(m0 / 12), m0 % 12 + 1, d->day };
	unsigned last = month_days(r.year, r.month);

	if (r.day > last)
		r.day = last; /* no such day: that month's last */
	return r;
}

static struct dl_date add_days(const struct dl_date *d, int64_t n)
{
	return dl_from_days(dl_days(d) + n);
}

struct dl_date dl_due(enum dl_regime r, const struct dl_date *received, bool extended)
{
	if (r == DL_CCPA)
		return add_days(received, extended ? 90 : 45);
	struct dl_date first = dl_add_months(received, 1);
	if (!extended)
		return first;
	struct dl_date a = dl_add_months(received, 3), b = dl_add_months(&first, 2);
	return dl_days(&a) <= dl_days(&b) ? a : b;
}

struct dl_date dl_confirm_by(const struct dl_date *received)
{
	int64_t day = dl_days(received);

	for (unsigned n = 0; n < 10;) {
		day++;
		int64_t dow = (day % 7 + 7 + 3) % 7; /* 1970-01-01 was a Thursday: 0 = Monday */
		n += dow < 5;
	}
	return dl_from_days(day);
}

bool dl_extension_allowed(enum dl_regime r, const struct dl_date *received, const struct dl_date *on)
{
	struct dl_date first = dl_due(r, received, false);

	return dl_days(on) >= dl_days(received) && dl_days(on) <= dl_days(&first);
}

int dl_regime_from_name(const char *name)
{
	return !strcmp(name, "gdpr") ? DL_GDPR : !strcmp(name, "ccpa") ? DL_CCPA : -1;
}
