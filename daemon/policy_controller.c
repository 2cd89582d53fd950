/* policy_controller.c - the policy's `controller:` and `requests:`
 * sections: who answers subject requests and what every report says about
 * them (policies/README.md, "Controller and requests"). */
#include "policy_yaml.h"

#include <stdlib.h>

#define CTL(f) ((struct pol_controller *)obj)->f

static bool c_name(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "controller name", &CTL(name));
}

static bool c_contact(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "controller contact", &CTL(contact));
}

static bool c_dpo(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "dpo", &CTL(dpo));
}

static bool c_authority(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "supervisory_authority", &CTL(authority));
}

static bool c_automated(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_str(c, v, "automated_decisions", &CTL(automated));
}

static bool c_transfers(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_list(c, v, "transfers", &CTL(transfers));
}

static bool c_sold(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	return pyl_list(c, v, "sold_or_shared", &CTL(sold_or_shared));
}

bool pol_parse_controller(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const struct pyl_key keys[] = {
		{ "name", c_name, true },
		{ "contact", c_contact, true },
		{ "dpo", c_dpo, false },
		{ "supervisory_authority", c_authority, true },
		{ "automated_decisions", c_automated, false },
		{ "transfers", c_transfers, false },
		{ "sold_or_shared", c_sold, false },
	};
	struct pol_controller *ctl = &c->p->controller;

	(void)obj;
	if (ctl->pos.file) {
		pyl_err(c, v, "controller: given again (first at %s:%u)", ctl->pos.file, ctl->pos.line);
		return false;
	}
	ctl->pos = pyl_pos(c, v);
	unsigned seen = pyl_walk(c, v, keys, ARRAY_SIZE(keys), ctl, "controller");
	if (v->type == YAML_MAPPING_NODE)
		pyl_required(c, v, keys, ARRAY_SIZE(keys), seen, "controller");
	return true;
}

static bool r_approval(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const char *const ways[] = { [POL_APPROVAL_NONE] = "none",
		                            [POL_APPROVAL_ANY] = "any",
		                            [POL_APPROVAL_SECOND_PERSON] = "second_person" };
	int w;

	(void)obj;
	if (!pyl_enum(c, v, "erasure_approval", ways, ARRAY_SIZE(ways), &w))
		return false;
	c->p->requests.erasure_approval = (enum pol_approval)w;
	return true;
}

bool pol_parse_requests(struct pyl_ctx *c, yaml_node_t *v, void *obj)
{
	static const struct pyl_key keys[] = { { "erasure_approval", r_approval, false } };

	(void)obj;
	if (c->p->requests.pos.file) {
		pyl_err(c, v, "requests: given again (first at %s:%u)", c->p->requests.pos.file,
		        c->p->requests.pos.line);
		return false;
	}
	c->p->requests.pos = pyl_pos(c, v);
	pyl_walk(c, v, keys, ARRAY_SIZE(keys), NULL, "requests");
	return true;
}

void pol_controller_free(struct pol_controller *ctl)
{
	free(ctl->name);
	free(ctl->contact);
	free(ctl->dpo);
	free(ctl->authority);
	free(ctl->automated);
	pyl_list_free(&ctl->transfers);
	pyl_list_free(&ctl->sold_or_shared);
}
