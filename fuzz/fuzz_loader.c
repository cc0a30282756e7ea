/* libFuzzer target: the workflow-file loader (src/loader.c).
 * Any bytes must give a workflow or clear errors, never a crash or a leak;
 * a loaded workflow must validate and free cleanly. And loading the text
 * (one node at a time when it has the usual shape) must give exactly what
 * loading jansson's whole tree of it gives: the same result, the same
 * errors in the same order, the same syntax error with its line:column.
 * Every input is loaded with the loader's second thread allowed (src/loader.c,
 * "two parts at once"), so the same holds of that path: the same nodes in
 * the same order. A loaded text is loaded again with FC_LOAD_LAZY_CONSTANTS:
 * every `set` node's constant, made from the text it keeps, must equal
 * the value the first load parsed. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flowcore.h"
#include "nodes/node_type.h"
#include "nodes/nodes_int.h"
#include "workflow_int.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* What fc_workflow_load_buffer must give for `data`, from the whole tree. */
static int load_whole(const uint8_t *data, size_t size, fc_workflow_t **wf,
                      fc_load_errors_t *errors) {
  json_error_t jerr;
  json_t *root = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, &jerr);
  int rc;
  *wf = NULL;
  if (root == NULL) {
    /* The loader's message for a syntax error (src/loader.c, parse_text). */
    errors->items = calloc(1, sizeof *errors->items);
    if (errors->items == NULL)
      __builtin_trap();
    errors->count = errors->cap = 1;
    errors->items[0].code = FC_EDEFINITION;
    snprintf(errors->items[0].where, sizeof errors->items[0].where, "%d:%d", jerr.line,
             jerr.column);
    snprintf(errors->items[0].text, sizeof errors->items[0].text, "%s: invalid JSON: %s",
             errors->items[0].where, jerr.text);
    return FC_EDEFINITION;
  }
  rc = fc_workflow_load_json(root, wf, NULL, errors);
  json_decref(root);
  return rc;
}

/* The same text loaded lazily has the same nodes, and its `set` nodes
 * make the constants wf's parsed. */
static void check_lazy(const uint8_t *data, size_t size, const fc_workflow_t *wf) {
  fc_workflow_t *lazy = NULL;
  size_t i;
  if (fc_workflow_load_buffer_ex((const char *)data, size, FC_LOAD_LAZY_CONSTANTS, &lazy, NULL,
                                 NULL) != 0 ||
      lazy->nnodes != wf->nnodes)
    __builtin_trap();
  for (i = 0; i < wf->nnodes; i++) {
    json_t *want, *got;
    if (strcmp(wf->nodes[i]->type, "set") != 0)
      continue;
    want = fc__node_deferred_output(wf->nodes[i]);
    got = fc__node_deferred_output(lazy->nodes[i]);
    if (want == NULL || got == NULL || !json_equal(want, got))
      __builtin_trap();
    json_decref(want);
    json_decref(got);
  }
  fc_workflow_free(lazy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fc_workflow_t *wf = NULL, *whole = NULL;
  json_t *input = NULL;
  fc_load_errors_t errors, expected;
  size_t i;
  int rc, rc_whole;
  fc__load_split_min = 0;
  fc_load_errors_init(&errors);
  fc_load_errors_init(&expected);
  rc = fc_workflow_load_buffer((const char *)data, size, &wf, &input, &errors);
  if (rc == 0) {
    /* A loaded workflow is valid, named and has nodes. */
    if (wf == NULL || fc_workflow_validate(wf, NULL) != 0 || fc_workflow_node_count(wf) == 0)
      __builtin_trap();
    check_lazy(data, size, wf);
  } else {
    if (wf != NULL || fc_load_errors_total(&errors) == 0)
      __builtin_trap(); /* a failure always says why */
    for (i = 0; i < errors.count; i++)
      if (errors.items[i].text[0] == '\0')
        __builtin_trap();
  }
  if (size <= FC_LOAD_MAX_FILE_BYTES) {
    rc_whole = load_whole(data, size, &whole, &expected);
    if (rc_whole != rc || errors.count != expected.count || errors.omitted != expected.omitted ||
        (wf == NULL) != (whole == NULL) ||
        (wf != NULL && fc_workflow_node_count(wf) != fc_workflow_node_count(whole)))
      __builtin_trap();
    for (i = 0; wf != NULL && i < wf->nnodes; i++)
      if (strcmp(wf->nodes[i]->id, whole->nodes[i]->id) != 0 || wf->nodes[i]->index != i ||
          wf->nodes[i]->wf != wf || wf->nodes[i]->nout != whole->nodes[i]->nout)
        __builtin_trap();
    for (i = 0; i < errors.count; i++)
      if (errors.items[i].code != expected.items[i].code ||
          strcmp(errors.items[i].where, expected.items[i].where) != 0 ||
          strcmp(errors.items[i].text, expected.items[i].text) != 0)
        __builtin_trap();
  }
  fc_load_errors_free(&errors);
  fc_load_errors_free(&expected);
  json_decref(input);
  fc_workflow_free(wf);
  fc_workflow_free(whole);
  return 0;
}
