/* logshow.h - presenting audit records: a readable table, JSON with the
 * subjects' identifiers decrypted when a key provider is at hand, and CEF
 * for SIEMs. */
#ifndef CUSTOS_LOGSHOW_H
#define CUSTOS_LOGSHOW_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "keyprov.h"

#define LS_ERASED "[erased]"

/* Replaces each subject's encrypted "id" by its plaintext, or by
 * "[erased]" when its key was destroyed. Without kp, nothing changes. */
void ls_decrypt_subjects(json_t *rec, struct keyprov *kp);

void ls_table_header(FILE *out);
void ls_table_row(FILE *out, json_t *rec, bool wide);
/* One CEF line (without newline) for a record. */
void ls_cef(FILE *out, json_t *rec);

#endif
