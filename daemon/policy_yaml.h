/* policy_yaml.h - walking a policy's YAML document (libyaml) with key
 * tables: one table per mapping the format has, a handler per key. Every
 * problem becomes a "file:line:col: message" line in the context's errors
 * and is counted in the policy. Used by policy.c (subjects, tables,
 * relations) and policy_controller.c (the controller and its requests). */
#ifndef CUSTOS_POLICY_YAML_H
#define CUSTOS_POLICY_YAML_H

#include <stdbool.h>
#include <yaml.h>

#include "policy.h"

#define PYL_MAX_NODES 200000 /* aliases can make a small file walk large */

struct pyl_ctx {
	struct policy *p;
	yaml_document_t *doc;
	const char *file;
	struct buf *errs;
	size_t visits;
};

struct pyl_key {
	const char *name;
	bool (*fn)(struct pyl_ctx *c, yaml_node_t *val, void *obj);
	bool required;
};

void pyl_err(struct pyl_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
struct pol_pos pyl_pos(struct pyl_ctx *c, const yaml_node_t *n);
/* The node with this id; NULL (and an error) past PYL_MAX_NODES visits. */
yaml_node_t *pyl_node(struct pyl_ctx *c, int id);
/* A scalar's text, or NULL. */
const char *pyl_text(const yaml_node_t *n);

/* Scalars into *ret; false (with an error) when n is not one. */
bool pyl_str(struct pyl_ctx *c, yaml_node_t *n, const char *what, char **ret);
bool pyl_bool(struct pyl_ctx *c, yaml_node_t *n, const char *what, bool *ret);
bool pyl_enum(struct pyl_ctx *c, yaml_node_t *n, const char *what, const char *const *words, size_t nw,
              int *ret);
/* A sequence of non-empty strings (may be empty: []). */
bool pyl_list(struct pyl_ctx *c, yaml_node_t *n, const char *what, struct pol_list *ret);
bool pyl_list_add(struct pol_list *l, const char *s);
void pyl_list_free(struct pol_list *l);

/* Calls each key's handler; refuses unknown and repeated keys. Returns a
 * bit per key table entry that was present. */
unsigned pyl_walk(struct pyl_ctx *c, yaml_node_t *n, const struct pyl_key *keys, size_t nk, void *obj,
                  const char *where);
/* One error naming every required key that is missing. */
void pyl_required(struct pyl_ctx *c, yaml_node_t *n, const struct pyl_key *keys, size_t nk, unsigned seen,
                  const char *where);

/* policy_controller.c's sections, and their cleanup. */
bool pol_parse_controller(struct pyl_ctx *c, yaml_node_t *v, void *obj);
bool pol_parse_requests(struct pyl_ctx *c, yaml_node_t *v, void *obj);
void pol_controller_free(struct pol_controller *ctl);

#endif
