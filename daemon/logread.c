/* logread.c - see logread.h */
#define _GNU_SOURCE
#include "logread.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "logrec.h"
#include "logseg.h"

static bool has_subject(json_t *rec, const char *ref)
{
	size_t i;
	json_t *s;

	json_array_foreach(json_object_get(rec, "subjects"), i, s)
	{
		const char *r = json_string_value(json_object_get(s, "ref"));
		if (r && !strcmp(r, ref))
			return true;
	}
	return false;
}

/* What the frame alone tells: the type and the time. */
static bool wanted_frame(const struct lrd_filter *f, const struct lr_frame *fr)
{
	char ts[TS_LEN + 1];
	int64_t us;

	if (fr->seq <= f->after_seq || (f->type && !lr_is(fr, f->type)))
		return false;
	if (f->has_since || f->has_until) {
		memcpy(ts, fr->ts, TS_LEN);
		ts[TS_LEN] = '\0';
		if (!ts_parse(ts, &us) || (f->has_since && us < f->since) || (f->has_until && us >= f->until))
			return false;
	}
	return true;
}

struct rd {
	const struct lrd_filter *f;
	lrd_fn fn;
	void *arg;
	struct lrd_error *err;
	uint64_t expect;
	bool resumed;       /* at a position: the next record must be the one after it */
	bool until_reached; /* past until_seq */
};

static int bad(struct rd *rd, const struct seginfo *s, uint64_t off, const char *why)
{
	rd->err->seq = rd->expect;
	snprintf(rd->err->reason, sizeof(rd->err->reason), "%s (%s, offset %" PRIu64 ")", why, s->name, off);
	return 1;
}

static int one_line(struct rd *rd, const struct seginfo *s, const char *line, size_t len, uint64_t off)
{
	struct lr_frame fr;
	json_error_t je;
	const char *why = lr_scan(line, len, &fr);

	if (why)
		return bad(rd, s, off, why);
	if (rd->f->until_seq && fr.seq > rd->f->until_seq) {
		rd->until_reached = true;
		return 1; /* ends the walk; lrd_each returns 0 */
	}
	if (rd->resumed && fr.seq != rd->expect)
		return bad(rd, s, off, "not the record after the one the last walk stopped at");
	rd->resumed = false;
	rd->expect = fr.seq + 1;
	if (rd->f->pos)
		*rd->f->pos = (struct lrd_pos){ s->first, off + len + 1, fr.seq };
	if (!wanted_frame(rd->f, &fr) ||
	    (rd->f->contains && !memmem(line, len, rd->f->contains, strlen(rd->f->contains))))
		return 0; /* not even parsed */
	json_t *rec = json_loadb(line, len, JSON_REJECT_DUPLICATES, &je);
	if (!json_is_object(rec)) {
		json_decref(rec);
		rd->expect = fr.seq;
		return bad(rd, s, off, "record is not a JSON object");
	}
	int r =
	    !rd->f->subject_ref || has_subject(rec, rd->f->subject_ref) ? rd->fn(rd->arg, rec, line, len) : 0;
	json_decref(rec);
	return r;
}

static int one_segment(struct rd *rd, int dirfd, const struct seginfo *s, bool last)
{
	struct segreader *sr;
	const char *line;
	size_t len;
	uint64_t off = 0;
	int r = segreader_open(dirfd, s, &sr);

	if (r) {
		snprintf(rd->err->reason, sizeof(rd->err->reason), "%s: %s", s->name, strerror(-r));
		return r;
	}
	if (rd->f->trust_end && last && !s->gz)
		segreader_trust_end(sr);
	const struct lrd_pos *p = rd->f->pos;
	if (p && p->first == s->first && p->seq == rd->f->after_seq && p->off && !s->gz &&
	    !segreader_seek(sr, p->off)) {
		rd->resumed = true;
		rd->expect = p->seq + 1;
	}
	for (;;) {
		int n = segreader_next(sr, &line, &len, &off);
		if (n == 1 && !(r = one_line(rd, s, line, len, off)))
			continue;
		if (n == 1 || n == 0)
			break;
		if (n == 2) /* the active segment may end in a line being written */
			r = last ? 0 : bad(rd, s, off, "unterminated line in a sealed segment");
		else if (n == SEG_JUNK)
			r = bad(rd, s, off, "data after the end of the segment");
		else if (n == -E2BIG)
			r = bad(rd, s, off, "line too long");
		else if (n == -EBADMSG)
			r = bad(rd, s, off, "compressed segment damaged");
		else
			snprintf(rd->err->reason, sizeof(rd->err->reason), "%s: %s", s->name,
			         strerror(-(r = n)));
		break;
	}
	segreader_free(sr);
	return r;
}

int lrd_each(const char *dir, const struct lrd_filter *f, lrd_fn fn, void *arg, struct lrd_error *ret_err)
{
	struct rd rd = { .f = f, .fn = fn, .arg = arg, .err = ret_err, .expect = 1 };
	struct seginfo *v = NULL;
	size_t n = 0;
	int dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int r = dirfd < 0 ? -errno : logseg_list(dir, &v, &n);

	if (r)
		snprintf(ret_err->reason, sizeof(ret_err->reason), "%s: %s", dir, strerror(-r));
	for (size_t i = 0; !r && i < n; i++) {
		if (i + 1 < n && v[i + 1].first == v[i].first)
			continue; /* the plain copy of a segment being sealed */
		if (i + 1 < n && v[i + 1].first <= f->after_seq + 1)
			continue; /* every record in it is at or before after_seq */
		rd.expect = v[i].first;
		r = one_segment(&rd, dirfd, &v[i], i + 1 == n);
		if (rd.until_reached) {
			r = 0;
			break;
		}
	}
	free(v);
	if (dirfd >= 0)
		close(dirfd);
	return r;
}
