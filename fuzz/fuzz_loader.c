/* libFuzzer target: the workflow-file loader (src/loader.c).
 * Any bytes must give a workflow or clear errors, never a crash or a leak;
 * a loaded workflow must validate and free cleanly. */
#include <stddef.h>
#include <stdint.h>

#include "flowcore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fc_workflow_t *wf = NULL;
  json_t *input = NULL;
  fc_load_errors_t errors;
  size_t i;
  int rc;
  fc_load_errors_init(&errors);
  rc = fc_workflow_load_buffer((const char *)data, size, &wf, &input, &errors);
  if (rc == 0) {
    /* A loaded workflow is valid, named and has nodes. */
    if (wf == NULL || fc_workflow_validate(wf, NULL) != 0 || fc_workflow_node_count(wf) == 0)
      __builtin_trap();
  } else {
    if (wf != NULL || fc_load_errors_total(&errors) == 0)
      __builtin_trap(); /* a failure always says why */
    for (i = 0; i < errors.count; i++)
      if (errors.items[i].text[0] == '\0')
        __builtin_trap();
  }
  fc_load_errors_free(&errors);
  json_decref(input);
  fc_workflow_free(wf);
  return 0;
}
