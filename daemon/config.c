/* config.c - see config.h. A keyword table drives parsing, defaults and
 * the dump; each kind of value has one parser. */
#define _GNU_SOURCE
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

enum kind { K_PATH, K_CONNINFO, K_NAME, K_UINT, K_SIZE, K_ENUM, K_LIST_PATH, K_LIST_LISTEN };

struct keyword {
	const char *name;
	enum kind kind;
	size_t off;
	const char *def; /* NULL: unset */
	uint64_t min, max;
	const char *const *names; /* K_ENUM, indexed by value */
};

static const char *const durabilities[] = { "sync", "batch", NULL };
static const char *const anchors[] = { "off", "best-effort", "required", NULL };
static const char *const audits[] = { "policy", "all", NULL };

#define F(x) offsetof(struct cfg, x)
static const struct keyword keywords[] = {
	{ "log_dir", K_PATH, F(log_dir), "/var/lib/custos/log", 0, 0, NULL },
	{ "durability", K_ENUM, F(durability), "sync", 0, 0, durabilities },
	{ "checkpoint_seconds", K_UINT, F(checkpoint_seconds), "60", 1, 86400, NULL },
	{ "checkpoint_records", K_UINT, F(checkpoint_records), "10000", 1, 10000000, NULL },
	{ "segment_bytes", K_SIZE, F(segment_bytes), "64M", 65536, 1ull << 40, NULL },
	{ "anchor", K_ENUM, F(anchor), "best-effort", 0, 0, anchors },
	{ "policy", K_LIST_PATH, F(policies), NULL, 0, 0, NULL },
	{ "database", K_CONNINFO, F(database), NULL, 0, 0, NULL },
	{ "keystore", K_CONNINFO, F(keystore), NULL, 0, 0, NULL },
	{ "master_key", K_PATH, F(master_key), NULL, 0, 0, NULL },
	{ "kek_file", K_PATH, F(kek_file), "/var/lib/custos/kek", 0, 0, NULL },
	{ "key_cache", K_UINT, F(key_cache), "65536", 16, 1u << 24, NULL },
	{ "report_dir", K_PATH, F(report_dir), "/var/lib/custos/reports", 0, 0, NULL },
	{ "listen", K_LIST_LISTEN, F(listen), NULL, 0, 0, NULL },
	{ "tls_cert", K_PATH, F(tls_cert), NULL, 0, 0, NULL },
	{ "tls_key", K_PATH, F(tls_key), NULL, 0, 0, NULL },
	{ "tls_client_ca", K_PATH, F(tls_client_ca), NULL, 0, 0, NULL },
	{ "audit_statements", K_ENUM, F(audit_statements), "policy", 0, 0, audits },
	{ "bulk_rows", K_UINT, F(bulk_rows), "1000", 1, 1000000000, NULL },
	{ "proxy_max_message", K_SIZE, F(proxy_max_message), "64M", 65536, 1u << 30, NULL },
	{ "proxy_max_clients", K_UINT, F(proxy_max_clients), "10000", 1, 1000000, NULL },
	{ "proxy_connect_timeout", K_UINT, F(proxy_connect_timeout), "10", 1, 3600, NULL },
	{ "control_socket", K_PATH, F(control_socket), "/run/custos/control.sock", 0, 0, NULL },
	{ "control_group", K_NAME, F(control_group), "custos-ctl", 0, 0, NULL },
	{ "security_group", K_NAME, F(security_group), "custos-security", 0, 0, NULL },
	{ "dpo_group", K_NAME, F(dpo_group), "custos-dpo", 0, 0, NULL },
	{ "admin_group", K_NAME, F(admin_group), "custos-admin", 0, 0, NULL },
	{ "control_max_request", K_SIZE, F(control_max_request), "64K", 1024, 16u << 20, NULL },
	{ "control_max_clients", K_UINT, F(control_max_clients), "8", 1, 1024, NULL },
	{ "user", K_NAME, F(user), "custos", 0, 0, NULL },
};
#undef F

#define FIELD(c, kw, type) ((type *)((char *)(c) + (kw)->off))

struct ctx {
	const char *name;
	unsigned line, errors;
	struct buf *errs;
	bool checked; /* the parent checked this text: libpq is not asked again */
};

static void err_at(struct ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void err_at(struct ctx *x, const char *fmt, ...)
{
	va_list ap;
	char msg[512];

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	buf_printf(x->errs, "%s:%u: %s\n", x->name, x->line, msg);
	x->errors++;
}

static bool valid_name(const char *v)
{
	if (!*v || strlen(v) > 32 || !((*v >= 'a' && *v <= 'z') || *v == '_'))
		return false;
	return strspn(v, "abcdefghijklmnopqrstuvwxyz0123456789_-") == strlen(v);
}

/* host:port (host a name, IPv4 or [IPv6]) or an absolute path. */
static bool valid_listen(const char *v)
{
	const char *colon = strrchr(v, ':');
	uint64_t port;

	if (*v == '/')
		return strlen(v) < 108;
	return colon && colon != v && parse_u64(colon + 1, &port) && port >= 1 && port <= 65535 &&
	       strcspn(v, " \t") == strlen(v);
}

static int add_list(struct pol_list *l, const char *v)
{
	char **nv = realloc(l->v, (l->n + 1) * sizeof(*nv));
	if (!nv)
		return -ENOMEM;
	l->v = nv;
	if (!(l->v[l->n] = strdup(v)))
		return -ENOMEM;
	l->n++;
	return 0;
}

static int set_string(char **field, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static void wipe_str(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
}

/* Whether a fragment libpq quotes in an error may be repeated: "=", "]"
 * or an option's name. Anything else may be a piece of a password. */
static bool quotable(const char *q, size_t len)
{
	static const char *const options[] = {
		"host",
		"hostaddr",
		"port",
		"dbname",
		"user",
		"password",
		"passfile",
		"sslmode",
		"sslrootcert",
		"sslcert",
		"sslkey",
		"sslcrl",
		"connect_timeout",
		"options",
		"application_name",
		"target_session_attrs",
		"service",
		"channel_binding",
		"gssencmode",
		"requirepeer",
		"keepalives",
		"client_encoding",
	};

	if (len == 1 && (*q == '=' || *q == ']'))
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (strlen(options[i]) == len && !memcmp(options[i], q, len))
			return true;
	return false;
}

/* libpq's message with the quoted fragments quotable() refuses blanked
 * ("..."): it quotes where it stopped reading, a password included. */
static void unquoted(const char *msg, char *out, size_t n)
{
	size_t o = 0;

	for (const char *p = msg; *p && *p != '\n' && o + 4 < n;) {
		const char *end = *p == '"' ? strchr(p + 1, '"') : NULL;
		if (!end) {
			out[o++] = *p++;
			continue;
		}
		size_t len = (size_t)(end - p - 1);
		bool keep = quotable(p + 1, len);
		size_t k = keep ? len + 2 : 5;
		if (o + k >= n)
			break;
		memcpy(out + o, keep ? p : "\"...\"", k);
		o += k;
		if (!keep)
			break; /* a quote inside the fragment would pair with the wrong one: say no more */
		p = end + 1;
	}
	out[o] = 0;
}

/* libpq's verdict on a connection string: "" when it parses, else why. */
static void libpq_verdict(const char *v, char *why, size_t n)
{
	char *msg = NULL;
	PQconninfoOption *o = PQconninfoParse(v, &msg);

	if (o || !msg)
		snprintf(why, n, "%s", o ? "" : "out of memory");
	else
		unquoted(msg, why, n);
	if (msg)
		explicit_bzero(msg, strlen(msg));
	PQconninfoFree(o);
	PQfreemem(msg);
}

#ifdef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION
#define isolated_verdict libpq_verdict
#else
/* libpq's verdict, reached in a child process. libpq's parser copies the
 * string, password and all, and frees its copies without wiping them; the
 * process that parses the configuration forks the roles, and they would
 * inherit those copies in its heap (a test found them). */
enum { VERDICT_VALID = 3, VERDICT_INVALID = 4 }; /* the child's exit status; anything else: it failed */

static void isolated_verdict(const char *v, char *why, size_t n)
{
	int fd[2], status = 0;
	pid_t pid = -1;

	if (!pipe2(fd, O_CLOEXEC) && (pid = fork()) < 0) {
		int e = errno;
		close(fd[0]);
		close(fd[1]);
		errno = e;
	}
	if (pid == 0) {
		close(fd[0]);
		libpq_verdict(v, why, n);
		if (!*why)
			_exit(VERDICT_VALID);
		_exit(write(fd[1], why, strlen(why)) < 0 ? 1 : VERDICT_INVALID);
	}
	if (pid < 0) {
		snprintf(why, n, "cannot be checked: %s", strerror(errno));
		return;
	}
	close(fd[1]);
	size_t got = 0;
	for (ssize_t r;
	     got < n - 1 && ((r = read(fd[0], why + got, n - 1 - got)) > 0 || (r < 0 && errno == EINTR));)
		got += r > 0 ? (size_t)r : 0;
	why[got] = 0;
	close(fd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	int verdict = WIFEXITED(status) ? WEXITSTATUS(status) : 0;
	if (verdict == VERDICT_VALID)
		why[0] = 0;
	else if (verdict != VERDICT_INVALID || !*why)
		snprintf(why, n, "cannot be checked (the checking process failed)");
}
#endif

static bool check_conninfo(struct ctx *x, const struct keyword *kw, const char *v)
{
	char why[256] = "";

	if (!x->checked)
		isolated_verdict(v, why, sizeof(why));
	if (*why)
		err_at(x, "%s: not a libpq connection string: %s%s", kw->name, why,
		       strstr(why, "\"...\"")
		           ? " (the parts shown as \"...\" are left out: they may hold a password)"
		           : "");
	return !*why;
}

static bool set_number(struct ctx *x, const struct keyword *kw, const char *v, uint64_t *n)
{
	bool ok = kw->kind == K_SIZE ? parse_size(v, n) : parse_u64(v, n);

	if (!ok || *n < kw->min || *n > kw->max) {
		err_at(x, "%s: \"%s\" is not %s from %llu to %llu", kw->name, v,
		       kw->kind == K_SIZE ? "a size (bytes, or with K, M or G)" : "a whole number",
		       (unsigned long long)kw->min, (unsigned long long)kw->max);
		return false;
	}
	return true;
}

static bool set_enum(struct ctx *x, const struct keyword *kw, const char *v, int *field)
{
	char list[128] = "";
	size_t n;

	for (n = 0; kw->names[n]; n++) {
		if (!strcmp(kw->names[n], v)) {
			*field = (int)n;
			return true;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", n ? ", " : "",
		         kw->names[n]);
	}
	const char *s = pol_suggest(v, (const char *const *)kw->names, n);
	if (s)
		err_at(x, "%s: \"%s\" is not one of %s; did you mean \"%s\"?", kw->name, v, list, s);
	else
		err_at(x, "%s: \"%s\" is not one of %s", kw->name, v, list);
	return false;
}

/* Sets one keyword from its text. Returns false (having said why) when
 * the value is bad; -ENOMEM is reported as an error too. */
static bool set_value(struct cfg *c, struct ctx *x, const struct keyword *kw, const char *v)
{
	uint64_t n;
	int err = 0;

	switch (kw->kind) {
	case K_PATH:
	case K_LIST_PATH:
		if (*v != '/') {
			err_at(x, "%s: \"%s\" is not an absolute path", kw->name, v);
			return false;
		}
		break;
	case K_CONNINFO:
		if (!check_conninfo(x, kw, v))
			return false;
		break;
	case K_NAME:
		if (!valid_name(v)) {
			err_at(x, "%s: \"%s\" is not a user or group name", kw->name, v);
			return false;
		}
		break;
	case K_LIST_LISTEN:
		if (!valid_listen(v)) {
			err_at(x, "%s: \"%s\" is not host:port or an absolute socket path", kw->name, v);
			return false;
		}
		break;
	case K_UINT:
	case K_SIZE:
		if (!set_number(x, kw, v, &n))
			return false;
		*FIELD(c, kw, uint64_t) = n;
		return true;
	case K_ENUM: return set_enum(x, kw, v, FIELD(c, kw, int));
	}
	if (kw->kind == K_LIST_PATH || kw->kind == K_LIST_LISTEN) {
		struct pol_list *l = FIELD(c, kw, struct pol_list);
		if (l->n == CFG_MAX_LIST) {
			err_at(x, "%s: at most %d values", kw->name, CFG_MAX_LIST);
			return false;
		}
		err = add_list(l, v);
	} else {
		err = set_string(FIELD(c, kw, char *), v);
	}
	if (err)
		err_at(x, "out of memory");
	return !err;
}

static const struct keyword *find_keyword(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(keywords); i++)
		if (!strcmp(keywords[i].name, name))
			return &keywords[i];
	return NULL;
}

static void unknown_key(struct ctx *x, const char *key)
{
	const char *names[ARRAY_SIZE(keywords)];

	for (size_t i = 0; i < ARRAY_SIZE(keywords); i++)
		names[i] = keywords[i].name;
	const char *s = pol_suggest(key, names, ARRAY_SIZE(names));
	if (s)
		err_at(x, "unknown setting \"%s\"; did you mean \"%s\"?", key, s);
	else
		err_at(x, "unknown setting \"%s\" (scripts/custosd.conf lists them all)", key);
}

static char *trim(char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	size_t n = strlen(s);
	while (n && (s[n - 1] == ' ' || s[n - 1] == '\t' || s[n - 1] == '\r'))
		s[--n] = 0;
	return s;
}

static void parse_line(struct cfg *c, struct ctx *x, char *line, unsigned char *seen)
{
	char *eq = strchr(line, '='), *key, *val;

	line = trim(line);
	if (!*line || *line == '#')
		return;
	if (!eq) {
		err_at(x, "expected \"key = value\"");
		return;
	}
	*eq = 0;
	key = trim(line);
	val = trim(eq + 1);
	const struct keyword *kw = find_keyword(key);
	if (!kw)
		return unknown_key(x, key);
	size_t i = (size_t)(kw - keywords);
	if (seen[i] && kw->kind != K_LIST_PATH && kw->kind != K_LIST_LISTEN)
		return err_at(x, "%s is set twice", key);
	seen[i] = 1;
	if (!*val)
		return err_at(x, "%s: no value", key);
	set_value(c, x, kw, val);
}

static unsigned parse(struct cfg *c, const char *name, const char *data, size_t len, struct buf *errs,
                      bool checked)
{
	struct ctx x = { .name = name, .errs = errs, .checked = checked };
	unsigned char seen[ARRAY_SIZE(keywords)] = { 0 };
	const char *p = data, *end = data + len;

	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		x.line++;
		if (memchr(p, 0, n)) {
			err_at(&x, "a NUL byte: this is not a text file");
		} else if (n > 4096) {
			err_at(&x, "line longer than 4096 bytes");
		} else {
			char line[4097];
			memcpy(line, p, n);
			line[n] = 0;
			parse_line(c, &x, line, seen);
			explicit_bzero(line, n); /* it may have held a password */
		}
		p += n + 1;
	}
	return x.errors;
}

unsigned cfg_parse(struct cfg *c, const char *name, const char *data, size_t len, struct buf *errs)
{
	return parse(c, name, data, len, errs, false);
}

unsigned cfg_parse_checked(struct cfg *c, const char *name, const char *data, size_t len, struct buf *errs)
{
	return parse(c, name, data, len, errs, true);
}

int cfg_load(struct cfg *c, const char *path, struct buf *errs)
{
	char *data;
	size_t len;
	int r = read_file(path, CFG_MAX_FILE, &data, &len);

	if (r) {
		buf_printf(errs, "%s: %s\n", path, r == -EFBIG ? "larger than 32 KiB" : strerror(-r));
		return r;
	}
	r = (int)cfg_parse(c, path, data, len, errs);
	free(data);
	return r;
}

struct cfg *cfg_new(void)
{
	struct cfg *c = calloc(1, sizeof(*c));
	struct buf errs = BUF_INIT;
	struct ctx x = { .name = "defaults", .errs = &errs };

	for (size_t i = 0; c && i < ARRAY_SIZE(keywords); i++)
		if (keywords[i].def && !set_value(c, &x, &keywords[i], keywords[i].def)) {
			cfg_free(c);
			c = NULL;
		}
	buf_free(&errs);
	return c;
}

static void free_list(struct pol_list *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
}

void cfg_free(struct cfg *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(keywords); i++) {
		const struct keyword *kw = &keywords[i];
		if (kw->kind == K_LIST_PATH || kw->kind == K_LIST_LISTEN)
			free_list(FIELD(c, kw, struct pol_list));
		else if (kw->kind != K_UINT && kw->kind != K_SIZE && kw->kind != K_ENUM)
			cfg_free_text(*FIELD(c, kw, char *));
	}
	free(c);
}

/* The secret settings and what each is. */
static const struct {
	const char *name;
	unsigned bit;
	size_t off;
} secrets[] = {
	{ "database", CFG_SECRET_DATABASE, offsetof(struct cfg, database) },
	{ "keystore", CFG_SECRET_KEYSTORE, offsetof(struct cfg, keystore) },
};

void cfg_free_text(char *text)
{
	wipe_str(text);
	free(text);
}

void cfg_keep_secrets(struct cfg *c, unsigned keep)
{
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
		char **v = (char **)((char *)c + secrets[i].off);
		if (!(keep & secrets[i].bit)) {
			cfg_free_text(*v);
			*v = NULL;
		}
	}
}

/* Whether line (without its newline) is a comment or sets a secret that
 * is not kept, read as parse_line reads it. */
static bool withheld(const char *line, size_t n, unsigned keep)
{
	while (n && (*line == ' ' || *line == '\t'))
		line++, n--;
	if (n && *line == '#')
		return true;
	for (size_t i = 0; i < ARRAY_SIZE(secrets); i++) {
		size_t k = strlen(secrets[i].name);
		if (keep & secrets[i].bit || n < k || memcmp(line, secrets[i].name, k))
			continue;
		size_t j = k + strspn(line + k, " \t\r"); /* as trim() reads the key */
		if (j < n && line[j] == '=')
			return true;
	}
	return false;
}

int cfg_text_keeping(const char *text, size_t len, unsigned keep, struct buf *out)
{
	const char *p = text, *end = text + len;

	if (!buf_reserve(out, len + 1)) /* at once: no copy of a secret is left behind by a realloc */
		return -ENOMEM;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
		if (!withheld(p, n, keep))
			buf_add(out, p, n);
		if (nl)
			buf_addc(out, '\n');
		p += n + 1;
	}
	return out->failed ? -ENOMEM : 0;
}

void cfg_dump(const struct cfg *c, struct buf *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(keywords); i++) {
		const struct keyword *kw = &keywords[i];
		switch (kw->kind) {
		case K_UINT:
		case K_SIZE:
			buf_printf(out, "%s = %llu\n", kw->name, (unsigned long long)*FIELD(c, kw, uint64_t));
			break;
		case K_ENUM: buf_printf(out, "%s = %s\n", kw->name, kw->names[*FIELD(c, kw, int)]); break;
		case K_LIST_PATH:
		case K_LIST_LISTEN: {
			const struct pol_list *l = FIELD(c, kw, struct pol_list);
			for (size_t j = 0; j < l->n; j++)
				buf_printf(out, "%s = %s\n", kw->name, l->v[j]);
			break;
		}
		default: {
			const char *v = *FIELD(c, kw, char *);
			if (v && kw->kind != K_CONNINFO) /* connection strings may hold passwords */
				buf_printf(out, "%s = %s\n", kw->name, v);
			else if (v)
				buf_printf(out, "%s = (set)\n", kw->name);
		}
		}
	}
}
