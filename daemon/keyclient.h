/* keyclient.h - a key provider (keyprov.h) for roles other than the
 * keeper: subject keys and refs come from the keeper over the role's
 * channel to it, and stay in a small cache in locked memory for at most
 * ttl_s seconds (so a key destroyed by a shred is gone from here within
 * that time). Used by the logger for the subject ids in access records. */
#ifndef CUSTOS_KEYCLIENT_H
#define CUSTOS_KEYCLIENT_H

#include "keyprov.h"
#include "role.h"

#define KCL_SLOTS 1024
#define KCL_HEAP (KCL_SLOTS * 128) /* locked memory it needs */

/* NULL when out of (locked) memory. */
struct keyprov *kcl_new(struct role_env *env, unsigned ttl_s);

#endif
