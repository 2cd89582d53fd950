/* clockstep.c - an LD_PRELOAD shim for tests: the wall clock of the
 * process (and of the children it forks) steps back by CLOCKSTEP_BY
 * seconds once CLOCKSTEP_AFTER seconds have passed, as when NTP corrects a
 * clock that ran ahead. CLOCK_MONOTONIC is left alone. */
#define _GNU_SOURCE
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

static long setting(const char *name)
{
	const char *v = getenv(name);

	return v ? atol(v) : 0;
}

static long long mono_s(void)
{
	struct timespec t;

	syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &t);
	return t.tv_sec;
}

static long long start_s = -1;

static long back_s(void)
{
	if (start_s < 0)
		start_s = mono_s();
	return mono_s() - start_s >= setting("CLOCKSTEP_AFTER") ? setting("CLOCKSTEP_BY") : 0;
}

int clock_gettime(clockid_t id, struct timespec *ts)
{
	int r = (int)syscall(SYS_clock_gettime, id, ts);

	if (!r && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
		ts->tv_sec -= back_s();
	return r;
}

time_t time(time_t *out)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (out)
		*out = ts.tv_sec;
	return ts.tv_sec;
}
