/* idtext.h - a subject's id as PostgreSQL gives it back as text, from the
 * forms a client sends it in: the binary format of its type, or text
 * written as the client wrote it ('007', an upper-case uuid in braces).
 * A subject's key is found by its id: an id that read as another string
 * for each form it came in would split one subject's values among keys,
 * and leave some out of reach of its erasure. */
#ifndef CUSTOS_IDTEXT_H
#define CUSTOS_IDTEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pgproto.h"

#define IDT_ROOM 40

/* The text form of a value that came in the binary format, for the types
 * an id comes in: the integers and oid in decimal, uuid, and the string
 * types (their bytes are their text). Returns its length, with *ret
 * pointing into room or into v; -1 for another type or a value that is
 * not one of its type. */
int idt_binary(uint32_t type_oid, const struct pgp_value *v, char room[IDT_ROOM], const char **ret);

/* The text PostgreSQL gives back for v[0..n), written as text for a value
 * of the type: an integer in decimal (spaces, a sign '+', leading zeros,
 * a 0x prefix or _ gone), a uuid in lower case with its four hyphens; a
 * value of another type as it is. Returns its length, with *ret pointing
 * into room or to v itself; -1 when v is no integer or uuid of the type
 * (PostgreSQL refuses it, or converts it from another type, 12.0 or
 * 1e3: Custos cannot tell the id it stands for). */
int idt_text(uint32_t type_oid, const char *v, size_t n, char room[IDT_ROOM], const char **ret);
/* idt_text's, as a string of its own in *ret: 0, -ENOTSUP, -ENOMEM. */
int idt_dup(uint32_t type_oid, const char *v, size_t n, char **ret);
/* Whether PostgreSQL's equality on the type is that of idt_text's text:
 * the integers, oid and uuid (numeric finds 7.0 = 7; a string type may
 * follow a collation that is not deterministic). */
bool idt_exact(uint32_t type_oid);
/* Whether the type is a string type (text, varchar, name): its values are
 * ids as they are, and a value cast or written as a number may not be. */
bool idt_string(uint32_t type_oid);

#endif
