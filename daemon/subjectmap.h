/* subjectmap.h - which rows belong to a data subject. From the subject's
 * root table, relations (the policy's, and the database's foreign keys
 * unless the policy turns them off) lead to every table with personal
 * data; the map keeps, for each table, the shortest such path and turns
 * it into SQL joins. Used to find a subject's values (erasure, access
 * reports) and the subject of each row (encrypt-existing). */
#ifndef CUSTOS_SUBJECTMAP_H
#define CUSTOS_SUBJECTMAP_H

#include <stdbool.h>

#include "buf.h"
#include "catalog.h"
#include "idtext.h"
#include "policy.h"
#include "util.h"

struct sm_map;

/* The map for the subject type named type. 0; -ENOENT no such subject
 * type; -ENOMEM. */
int sm_build(const struct policy *p, const struct catalog *c, const char *type, struct sm_map **ret) WUR;
void sm_free(struct sm_map *m);

/* Appends `FROM <table> AS j0 LEFT JOIN <parent> AS j1 ON ... LEFT JOIN
 * <root> AS jN ON ...` to sql, identifiers quoted, and the root's id
 * column as `jN."id"` to root_id. The table's own columns are j0's.
 * -ENOENT when nothing leads from the root to the table. */
int sm_from(const struct sm_map *m, const char *table, struct buf *sql, struct buf *root_id) WUR;

/* Where table lies from the root: 0 the root, larger further away
 * (breadth-first order, so a table's parent comes before it); -1 when
 * nothing leads to it. Erasure deletes in the reverse order. */
int sm_order(const struct sm_map *m, const char *table);

/* Whether column of table links rows to the subject on the map's paths
 * (the subject's id column, or a column of a relation or foreign key the
 * map follows): erasing it would cut the subject's other rows loose. */
bool sm_is_link(const struct sm_map *m, const char *table, const char *column);

/* The column of table that holds the subject's id itself: the root's id
 * column, or a column referencing it; NULL when the id is further away. */
const char *sm_direct_column(const struct sm_map *m, const char *table);

/* The subject's id as PostgreSQL stores it in the root's id column (c:
 * the catalog the map was built from): "+007" for a bigint is 7, as the
 * proxy names a subject in the log and the keystore (idtext.h). *id then
 * points into room or stays. -EINVAL for an id the column's type cannot
 * hold, -ENOENT for no such column; err says which (naming no id). */
int sm_stored_id(const struct sm_map *m, const struct catalog *c, const char **id, char room[IDT_ROOM],
                 char *err, size_t errlen) WUR;

/* Appends a quoted identifier ("schema"."table" for a dotted name). */
void sm_quote(struct buf *sql, const char *name);
/* One identifier (a column), quoted the same way, dots and all. */
void sm_quote_ident(struct buf *sql, const char *name);

#endif
