/* proxy_setup.c - what the proxy needs before its first connection: the
 * address of PostgreSQL (resolved once), and the TLS contexts for clients
 * (the server certificate, optional client certificates) and for the
 * upstream (its sslmode, verify-full checking the host name). */
#define _GNU_SOURCE
#include "proxy_conn.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

static enum px_sslmode sslmode_of(const char *v)
{
	static const char *const names[] = { "disable", "prefer", "require", "verify-ca", "verify-full" };

	for (size_t i = 0; v && i < ARRAY_SIZE(names); i++)
		if (!strcmp(v, names[i]))
			return (enum px_sslmode)i;
	return v && !strcmp(v, "allow") ? PX_SSL_DISABLE : PX_SSL_PREFER; /* libpq's default */
}

static int resolve(struct proxy *px, const char *host, const char *port, char *err, size_t errlen)
{
	if (!host || !*host)
		host = "/var/run/postgresql";
	snprintf(px->up_host, sizeof(px->up_host), "%s", host);
	if (*host == '/') {
		struct sockaddr_un *sa = (struct sockaddr_un *)&px->up_addr;
		sa->sun_family = AF_UNIX;
		if ((size_t)snprintf(sa->sun_path, sizeof(sa->sun_path), "%s/.s.PGSQL.%s", host, port) >=
		    sizeof(sa->sun_path)) {
			snprintf(err, errlen, "database: socket directory name too long");
			return -ENAMETOOLONG;
		}
		px->up_addrlen = sizeof(*sa);
		return 0;
	}
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int r = getaddrinfo(host, port, &hints, &ai);
	if (r) {
		snprintf(err, errlen, "database: host %s: %s", host, gai_strerror(r));
		return -EHOSTUNREACH;
	}
	memcpy(&px->up_addr, ai->ai_addr, ai->ai_addrlen);
	px->up_addrlen = ai->ai_addrlen;
	freeaddrinfo(ai);
	return 0;
}

/* The proxy connects where `database` points, with its sslmode. */
int px_upstream_init(struct proxy *px, char *err, size_t errlen)
{
	const struct cfg *c = px->env->cfg;
	char *perr = NULL;
	const char *host = NULL, *port = "5432", *sslmode = NULL, *root = NULL;

	if (!c->database) {
		snprintf(err, errlen, "the proxy needs `database` (where to forward connections)");
		return -EINVAL;
	}
	PQconninfoOption *opts = PQconninfoParse(c->database, &perr);
	if (!opts) {
		snprintf(err, errlen, "database: %s", perr ? perr : "out of memory");
		PQfreemem(perr);
		return -EINVAL;
	}
	for (PQconninfoOption *o = opts; o->keyword; o++) {
		if (!o->val || !*o->val)
			continue;
		if (!strcmp(o->keyword, "host"))
			host = o->val;
		else if (!strcmp(o->keyword, "hostaddr") && !host)
			host = o->val;
		else if (!strcmp(o->keyword, "port"))
			port = o->val;
		else if (!strcmp(o->keyword, "sslmode"))
			sslmode = o->val;
		else if (!strcmp(o->keyword, "sslrootcert"))
			root = o->val;
	}
	int r = resolve(px, host, port, err, errlen);
	px->up_sslmode = px->up_addr.ss_family == AF_UNIX ? PX_SSL_DISABLE : sslmode_of(sslmode);
	if (!r && px->up_sslmode != PX_SSL_DISABLE) {
		px->up_tls = SSL_CTX_new(TLS_client_method());
		if (!px->up_tls)
			r = -ENOMEM;
		else if (px->up_sslmode >= PX_SSL_VERIFY_CA) {
			SSL_CTX_set_verify(px->up_tls, SSL_VERIFY_PEER, NULL);
			if (!(root ? SSL_CTX_load_verify_locations(px->up_tls, root, NULL)
			           : SSL_CTX_set_default_verify_paths(px->up_tls))) {
				snprintf(err, errlen, "database: cannot load the CA certificates %s",
				         root ? root : "(default)");
				r = -EINVAL;
			}
		}
	}
	PQconninfoFree(opts);
	return r;
}

int px_tls_init(struct proxy *px, char *err, size_t errlen)
{
	const struct cfg *c = px->env->cfg;

	if (!c->tls_cert && !c->tls_key)
		return 0;
	if (!c->tls_cert || !c->tls_key) {
		snprintf(err, errlen, "TLS needs both tls_cert and tls_key");
		return -EINVAL;
	}
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	const char *what = NULL;
	if (!ctx)
		return -ENOMEM;
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	if (SSL_CTX_use_certificate_chain_file(ctx, c->tls_cert) != 1)
		what = c->tls_cert;
	else if (SSL_CTX_use_PrivateKey_file(ctx, c->tls_key, SSL_FILETYPE_PEM) != 1 ||
	         SSL_CTX_check_private_key(ctx) != 1)
		what = c->tls_key;
	else if (c->tls_client_ca && SSL_CTX_load_verify_locations(ctx, c->tls_client_ca, NULL) != 1)
		what = c->tls_client_ca;
	if (what) {
		char why[256];
		if (access(what, R_OK))
			snprintf(why, sizeof(why), "%s", strerror(errno));
		else
			ERR_error_string_n(ERR_get_error(), why, sizeof(why));
		snprintf(err, errlen, "TLS: %s: %s", what, why);
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return -EINVAL;
	}
	if (c->tls_client_ca) /* a certificate is asked for; one that is sent must verify */
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	px->tls = ctx;
	return 0;
}
