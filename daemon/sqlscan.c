/* sqlscan.c - the literals of plain SQL texts (sqlscan.h), by the rules of
 * PostgreSQL 15's scanner (src/backend/parser/scan.l), for the subset it
 * takes. Each rule below names the construct of scan.l it stands for. */
#include "sqlscan.h"

#include <stdbool.h>

static bool is_alpha(char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
}

static bool is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

static bool is_space(char ch) /* scan.l's space (\v is not one before PostgreSQL 16) */
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f';
}

/* A character that may follow a number or a parameter without making it
 * something else (a decimal, a real, "trailing junk"). */
static bool ends_number(char ch)
{
	return !is_alpha(ch) && !is_digit(ch) && ch != '.' && ch != '$' && !(ch & 0x80);
}

/* Punctuation and operators: none of them starts a literal but a point
 * before a digit; the pairs that start comments are left to libpg_query,
 * and so are \ and & (U&'...'). */
static bool plain_punct(const char *p)
{
	static const char ok[] = "()[],;:.=<>+-*/%^~!@#|`?{}";

	if ((p[0] == '-' && p[1] == '-') || (p[0] == '/' && p[1] == '*') || (p[0] == '.' && is_digit(p[1])))
		return false; /* comments; .5 is a decimal */
	for (const char *o = ok; *o; o++)
		if (*p == *o)
			return true;
	return false;
}

/* After a quoted text's closing quote at p: its end, or NULL when the
 * next quote continues it (quotecontinue: whitespace with a newline). */
static const char *string_end(const char *p)
{
	const char *q = p;
	bool newline = false;

	while (is_space(*q))
		newline |= *q == '\n' || *q == '\r', q++;
	return newline && *q == '\'' ? NULL : p;
}

/* p at a quote: past its closing quote (doubled quotes inside), or NULL
 * when it does not close. */
static const char *quoted(const char *p)
{
	char quote = *p++;

	for (;; p++) {
		if (!*p)
			return NULL;
		if (*p == quote && p[1] == quote)
			p++;
		else if (*p == quote)
			return p + 1;
	}
}

int sqs_scan(const char *sql, sqs_literal_fn fn, void *arg)
{
	const char *p = sql;

	while (*p) {
		const char *s = p;
		int r = 0;
		if (is_space(*p)) {
			p++;
		} else if (is_alpha(*p)) { /* identifier or keyword */
			while (is_alpha(*p) || is_digit(*p) || *p == '$')
				p++;
			if (*p == '\'' || *p == '&' || (*p & 0x80))
				return 0;  /* E'', B'', X'', N'', U&: other literals */
		} else if (is_digit(*p)) { /* integer */
			while (is_digit(*p))
				p++;
			if (p - s > 9 || !ends_number(*p))
				return 0; /* perhaps past int32 (FCONST), or a decimal, real or junk */
			r = fn(arg, (size_t)(s - sql), (size_t)(p - sql), SQS_ICONST);
		} else if (*p == '$') { /* param */
			for (p++; is_digit(*p);)
				p++;
			if (p - s < 2 || !ends_number(*p))
				return 0; /* a dollar quote, or param_junk */
		} else if (*p == '"') {   /* delimited identifier */
			if (p[1] == '"' || !(p = quoted(p)))
				return 0; /* zero-length or unterminated */
		} else if (*p == '\'') {  /* xq: a standard string */
			if (!(p = quoted(p)) || !string_end(p))
				return 0;
			r = fn(arg, (size_t)(s - sql), (size_t)(p - sql), SQS_SCONST);
		} else if (plain_punct(p)) {
			while (plain_punct(p) && p - s < 32)
				p++;
			if (p - s == 32)
				return 0; /* an operator may be too long (63 bytes at most) */
		} else {
			return 0;
		}
		if (r)
			return r;
	}
	return 1;
}
