/* logmsg.c - see logmsg.h */
#include "logmsg.h"

#include <errno.h>

#include "role.h"

#define RECORD_TIMEOUT_MS 10000

enum {
	F_TYPE,
	F_USER,
	F_APP,
	F_ADDR,
	F_SESSION,
	F_TLS,
	F_TABLE,
	F_COLUMNS,
	F_SUBJECTS,
	F_FP,
	F_STMT,
	F_ROWS,
	F_DETAIL,
	F_EVENT,
	F_FLAGS,
	F_N
};

#define FLAG_LAZY 1u

static bool clean(const char *s)
{
	return !s || !strpbrk(s, "\x1e\x1f");
}

/* lists: the columns, a NUL, the subjects, a NUL. */
static int render_lists(const struct alog_rec *r, struct buf *lists, size_t *ret_subjects_at)
{
	if (r->ncolumns > LOGMSG_MAX_COLUMNS || r->nsubjects > LOGMSG_MAX_SUBJECTS)
		return -E2BIG;
	buf_reset(lists);
	for (size_t i = 0; i < r->ncolumns; i++) {
		if (!clean(r->columns[i]) || !*r->columns[i])
			return -EINVAL;
		buf_adds(lists, r->columns[i]);
		buf_addc(lists, LOGMSG_ITEM);
	}
	buf_addc(lists, 0);
	*ret_subjects_at = lists->len;
	for (size_t i = 0; i < r->nsubjects; i++) {
		const struct alog_subject *s = &r->subjects[i];
		if (!clean(s->type) || !clean(s->id))
			return -EINVAL;
		buf_adds(lists, s->type);
		buf_addc(lists, LOGMSG_PART);
		buf_adds(lists, s->id);
		buf_addc(lists, LOGMSG_ITEM);
	}
	buf_addc(lists, 0);
	return lists->failed ? -ENOMEM : 0;
}

int logmsg_encode(const struct alog_rec *r, const char *event, bool lazy, struct buf *lists,
                  struct ipc_msg *m)
{
	static const struct alog_actor none;
	const struct alog_actor *a = r->actor ? r->actor : &none;
	size_t subjects_at;
	int err = render_lists(r, lists, &subjects_at);

	if (err)
		return err;
	*m = (struct ipc_msg){ .type = IPC_LOG_APPEND, .nfields = F_N, .fd = -1 };
	const char *const strs[F_N] = {
		[F_TYPE] = r->type,
		[F_USER] = a->user,
		[F_APP] = a->app,
		[F_ADDR] = a->addr,
		[F_SESSION] = a->session,
		[F_TLS] = a->tls,
		[F_TABLE] = r->table,
		[F_FP] = r->fingerprint,
		[F_STMT] = r->statement,
		[F_DETAIL] = r->detail,
		[F_EVENT] = event,
		[F_COLUMNS] = (char *)lists->p,
		[F_SUBJECTS] = (char *)lists->p + subjects_at,
	};
	for (int i = 0; i < F_N; i++)
		m->f[i] = ipc_str(strs[i]);
	m->f[F_ROWS] = ipc_i64(r->rows);
	m->f[F_FLAGS] = (struct ipc_field){ .kind = 'u', .u = lazy ? FLAG_LAZY : 0 };
	return 0;
}

static const char *opt(const struct ipc_field *f)
{
	return f->s.len ? f->s.p : NULL;
}

/* Splits a list in place; each item is cut into at most two parts. */
static int split(const struct ipc_field *f, size_t max, void (*put)(void *, size_t, char *, char *),
                 void *arg, size_t *ret_n)
{
	char *p = (char *)f->s.p, *end = p + f->s.len;
	size_t n = 0;

	while (p < end) {
		char *item_end = memchr(p, LOGMSG_ITEM, (size_t)(end - p));
		if (!item_end || n == max)
			return -EBADMSG;
		*item_end = 0;
		char *part = strchr(p, LOGMSG_PART);
		if (part)
			*part++ = 0;
		if (!*p || (part && (!*part || strchr(part, LOGMSG_PART))))
			return -EBADMSG;
		put(arg, n++, p, part);
		p = item_end + 1;
	}
	*ret_n = n;
	return 0;
}

static void put_column(void *arg, size_t i, char *name, char *part)
{
	struct logmsg *o = arg;
	o->columns[i] = name;
	(void)part;
}

static void put_subject(void *arg, size_t i, char *type, char *id)
{
	struct logmsg *o = arg;
	o->subjects[i] = (struct alog_subject){ type, id };
}

int logmsg_decode(struct ipc_msg *m, struct logmsg *o)
{
	size_t nsubjects = 0;

	if (m->type != IPC_LOG_APPEND || m->nfields != F_N)
		return -EBADMSG;
	o->actor = (struct alog_actor){ opt(&m->f[F_USER]), opt(&m->f[F_APP]), opt(&m->f[F_ADDR]),
		                        opt(&m->f[F_SESSION]), opt(&m->f[F_TLS]) };
	o->rec = (struct alog_rec){ .type = m->f[F_TYPE].s.p,
		                    .actor = &o->actor,
		                    .table = opt(&m->f[F_TABLE]),
		                    .columns = o->columns,
		                    .subjects = o->subjects,
		                    .fingerprint = opt(&m->f[F_FP]),
		                    .statement = opt(&m->f[F_STMT]),
		                    .rows = m->f[F_ROWS].i,
		                    .detail = opt(&m->f[F_DETAIL]) };
	o->event = m->f[F_EVENT].s.p;
	if (m->f[F_FLAGS].u & ~(uint64_t)FLAG_LAZY)
		return -EBADMSG;
	o->lazy = m->f[F_FLAGS].u & FLAG_LAZY;
	if (split(&m->f[F_COLUMNS], LOGMSG_MAX_COLUMNS, put_column, o, &o->rec.ncolumns) ||
	    split(&m->f[F_SUBJECTS], LOGMSG_MAX_SUBJECTS, put_subject, o, &nsubjects))
		return -EBADMSG;
	o->rec.nsubjects = nsubjects;
	for (size_t i = 0; i < nsubjects; i++)
		if (!o->subjects[i].id)
			return -EBADMSG;
	if (o->rec.ncolumns && !o->rec.table)
		return -EBADMSG;
	return 0;
}

int logmsg_record(struct role_env *env, const struct alog_rec *r, const char *event, uint64_t *ret_seq)
{
	static uint8_t reply[IPC_MAX_MSG + 1]; /* env->buf may hold the request being served */
	struct ipc_msg m, ret;
	struct buf lists = BUF_INIT;
	int fd = role_peer(env, "logger");

	if (fd < 0)
		return -ENOTCONN;
	int err = logmsg_encode(r, event, false, &lists, &m);
	if (!err)
		err = role_call(env, fd, &m, reply, &ret, RECORD_TIMEOUT_MS);
	buf_free(&lists);
	if (!err && ret.type != IPC_LOG_APPENDED)
		err = -EIO;
	if (!err && ret_seq)
		*ret_seq = ret.f[0].u;
	return err;
}
