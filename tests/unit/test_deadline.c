/* test_deadline.c - when requests are due (daemon/deadline.c): the
 * calendar-month rule at month ends and in leap years, CCPA's calendar and
 * business days, and the limits of extensions. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "deadline.h"

static struct dl_date D(const char *s) {
	struct dl_date d;

	if (dl_parse(s, &d))
		fail_msg("bad date in the table: %s", s);
	return d;
}

static void
test_parse(void **state)
{
	static const char *const bad[] = { "",           "2026-1-01",   "2026-13-01", "2026-02-29",
		                           "2026-04-31", "2026-00-10",  "1899-12-31", "2026-01-1x",
		                           "2026/01/01", "2026-01-011", "+026-01-01", "2026-01-00" };
	struct dl_date d;
	char out[11];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
		if (dl_parse(bad[i], &d) == 0)
			fail_msg("accepted %s", bad[i]);
	assert_int_equal(dl_parse("2024-02-29", &d), 0);
	dl_format(&d, out);
	assert_string_equal(out, "2024-02-29");
}

static void test_day_numbers(void **state)
{
	(void)state;
	struct dl_date epoch = D("1970-01-01");
	assert_int_equal(dl_days(&epoch), 0);
	for (int64_t n = -800000; n <= 3000000; n += 997) { /* 1900 to 10000, round trip */
		struct dl_date d = dl_from_days(n);
		assert_int_equal(dl_days(&d), n);
	}
	struct dl_date a = D("2000-03-01"), b = D("2000-02-28");
	assert_int_equal(dl_days(&a) - dl_days(&b), 2); /* 2000 was a leap year */
	a = D("1900-03-01"), b = D("1900-02-28");
	assert_int_equal(dl_days(&a) - dl_days(&b), 1); /* 1900 was not */
}

static const struct {
	const char *regime, *received;
	bool extended;
	const char *due;
} dues[] = {
	/* GDPR: the same day next month, or that month's last day */
	{ "gdpr", "2026-01-15", false, "2026-02-15" },
	{ "gdpr", "2026-01-31", false, "2026-02-28" },
	{ "gdpr", "2028-01-31", false, "2028-02-29" }, /* leap year */
	{ "gdpr", "2026-01-29", false, "2026-02-28" },
	{ "gdpr", "2028-01-29", false, "2028-02-29" },
	{ "gdpr", "2026-03-31", false, "2026-04-30" },
	{ "gdpr", "2026-12-31", false, "2027-01-31" }, /* across the year */
	{ "gdpr", "2026-12-15", false, "2027-01-15" },
	{ "gdpr", "2026-02-28", false, "2026-03-28" },
	{ "gdpr", "2028-02-29", false, "2028-03-29" },
	/* GDPR extended: the earlier of receipt + 3 months and first deadline + 2 months */
	{ "gdpr", "2026-01-15", true, "2026-04-15" },
	{ "gdpr", "2026-01-31", true, "2026-04-28" }, /* not 04-30: 02-28 + 2 months */
	{ "gdpr", "2026-11-30", true, "2027-02-28" },
	{ "gdpr", "2027-11-30", true, "2028-02-29" },
	{ "gdpr", "2026-10-31", true, "2027-01-30" }, /* 11-30 + 2 months */
	{ "gdpr", "2026-12-31", true, "2027-03-31" },
	/* CCPA: calendar days */
	{ "ccpa", "2026-01-01", false, "2026-02-15" },
	{ "ccpa", "2026-12-20", false, "2027-02-03" },
	{ "ccpa", "2028-02-01", false, "2028-03-17" }, /* 29 days in February */
	{ "ccpa", "2026-02-01", false, "2026-03-18" },
	{ "ccpa", "2026-01-01", true, "2026-04-01" }, /* 90 in all */
	{ "ccpa", "2027-12-01", true, "2028-02-29" },
};

static void test_due_dates(void **state)
{
	char got[11];

	(void)state;
	for (size_t i = 0; i < sizeof(dues) / sizeof(*dues); i++) {
		struct dl_date r = D(dues[i].received);
		struct dl_date d =
		    dl_due((enum dl_regime)dl_regime_from_name(dues[i].regime), &r, dues[i].extended);
		dl_format(&d, got);
		if (strcmp(got, dues[i].due))
			fail_msg("%s received %s%s: due %s, want %s", dues[i].regime, dues[i].received,
			         dues[i].extended ? " extended" : "", got, dues[i].due);
	}
}

static const struct {
	const char *received, *confirm_by;
} confirms[] = {
	{ "2026-12-07", "2026-12-21" }, /* a Monday: two working weeks */
	{ "2026-12-04", "2026-12-18" }, /* a Friday */
	{ "2026-12-05", "2026-12-18" }, /* a Saturday: counting starts Monday */
	{ "2026-12-06", "2026-12-18" }, /* a Sunday */
	{ "2026-12-24", "2027-01-07" }, /* across the year (holidays count as business days) */
	{ "2028-02-22", "2028-03-07" }, /* through 29 February */
};

static void test_confirmation(void **state)
{
	char got[11];

	(void)state;
	for (size_t i = 0; i < sizeof(confirms) / sizeof(*confirms); i++) {
		struct dl_date r = D(confirms[i].received), c = dl_confirm_by(&r);
		dl_format(&c, got);
		if (strcmp(got, confirms[i].confirm_by))
			fail_msg("received %s: confirm by %s, want %s", confirms[i].received, got,
			         confirms[i].confirm_by);
	}
}

static const struct {
	const char *regime, *received, *on;
	bool allowed;
} extensions[] = {
	{ "gdpr", "2026-01-31", "2026-02-28", true },  /* the first month's last day */
	{ "gdpr", "2026-01-31", "2026-03-01", false }, /* too late */
	{ "gdpr", "2026-01-31", "2026-01-31", true },
	{ "gdpr", "2026-01-31", "2026-01-30", false }, /* before it was received */
	{ "ccpa", "2026-01-01", "2026-02-15", true },  /* day 45 */
	{ "ccpa", "2026-01-01", "2026-02-16", false },
};

static void test_extension_limits(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(extensions) / sizeof(*extensions); i++) {
		struct dl_date r = D(extensions[i].received), on = D(extensions[i].on);
		bool got =
		    dl_extension_allowed((enum dl_regime)dl_regime_from_name(extensions[i].regime), &r, &on);
		if (got != extensions[i].allowed)
			fail_msg("%s received %s, extended on %s: %s", extensions[i].regime,
			         extensions[i].received, extensions[i].on, got ? "allowed" : "refused");
	}
	assert_int_equal(dl_regime_from_name("lgpd"), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_day_numbers),
		cmocka_unit_test(test_due_dates),
		cmocka_unit_test(test_confirmation),
		cmocka_unit_test(test_extension_limits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
