/* util.h - small helpers shared by every Custos module: hex, time stamps,
 * number parsing, whole-file I/O. Nothing here logs. */
#ifndef CUSTOS_UTIL_H
#define CUSTOS_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define WUR __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Length of a time stamp "2026-11-23T12:00:00.123456Z", without NUL. */
#define TS_LEN 27
#define TS_SECONDS_LEN 19 /* up to the seconds: 2026-12-06T04:30:00 */

void hex_encode(const uint8_t *in, size_t n, char *out); /* writes 2n chars + NUL */
bool hex_decode(const char *in, size_t hexlen, uint8_t *out) WUR;

/* The length of the valid UTF-8 sequence of more than one byte that s
 * (n bytes left) begins with, or 0. */
size_t utf8_seq(const unsigned char *s, size_t n);
/* Whether s[0..n) is text PostgreSQL takes in UTF8: valid UTF-8, no NUL byte. */
bool utf8_valid(const char *s, size_t n);

int64_t now_us(void);
/* Microseconds on CLOCK_MONOTONIC: for intervals and deadlines, which a
 * wall clock stepped back or forward must not stretch. */
int64_t mono_us(void);
void ts_format(int64_t us, char out[TS_LEN + 1]);
/* Accepts "YYYY-MM-DD", "YYYY-MM-DDTHH:MM:SSZ" and "YYYY-MM-DDTHH:MM:SS.ffffffZ". */
bool ts_parse(const char *s, int64_t *ret_us) WUR;

bool parse_u64(const char *s, uint64_t *ret) WUR;
/* Accepts a number with an optional K, M or G suffix (powers of 1024). */
bool parse_size(const char *s, uint64_t *ret) WUR;

/* Reads a whole file of at most max bytes; *ret_buf is NUL-terminated.
 * Returns 0 or a negative errno (-EFBIG when larger than max). */
int read_file(const char *path, size_t max, char **ret_buf, size_t *ret_len) WUR;
/* The same for an open file. */
int read_fd(int fd, size_t max, char **ret_buf, size_t *ret_len) WUR;
/* Reads exactly len bytes. 0, -EIO when the file ends first, or a negative errno. */
int read_all(int fd, void *buf, size_t len) WUR;
/* Writes all of data (retrying short writes). 0 or a negative errno. */
int write_all(int fd, const void *data, size_t len) WUR;
/* Creates path exclusively with mode, writes data and fsyncs it and its
 * directory. Returns 0 or a negative errno (-EEXIST if it exists). */
int write_file_excl(const char *path, const void *data, size_t len, mode_t mode) WUR;
int fsync_dir(const char *dir) WUR;
/* -EACCES when the file behind fd is readable by group or others. */
int check_private(int fd) WUR;

#endif
