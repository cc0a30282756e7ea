/* A program outside the project that uses the installed flowcore: built by
 * scripts/check-install once with `pkg-config --cflags --libs flowcore` and
 * once with CMake's find_package(flowcore). It loads a workflow from JSON
 * text, runs it, and prints "consumer ok <output>" when it completed; it
 * also calls libuv and jansson directly, as the public headers let it. */
#define _POSIX_C_SOURCE 200809L

#include <flowcore.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  static const char text[] = "{\"name\": \"consumer\", \"nodes\": ["
                             "{\"id\": \"a\", \"type\": \"set\", \"output\": 42},"
                             "{\"id\": \"b\", \"type\": \"pass\", \"after\": [\"a\"]}]}";
  fc_workflow_t *wf = NULL;
  fc_run_result_t result;
  fc_error_t err;
  char *out;
  int rc;

  if (fc_workflow_load_buffer(text, strlen(text), &wf, NULL, NULL) != 0) {
    fprintf(stderr, "consumer: the workflow does not load\n");
    return 1;
  }
  fc_error_clear(&err);
  memset(&result, 0, sizeof result);
  rc = fc_workflow_run(wf, NULL, NULL, &result, &err);
  fc_workflow_free(wf);
  if (rc != 0 || result.status != FC_WORKFLOW_COMPLETED) {
    fprintf(stderr, "consumer: the run failed (%s)\n", rc != 0 ? fc_strerror(rc) : "status");
    fc_run_result_clear(&result);
    return 1;
  }
  out = json_dumps(result.output, JSON_COMPACT | JSON_SORT_KEYS);
  printf("consumer ok %s flowcore %s libuv %s\n", out != NULL ? out : "?", fc_version_string(),
         uv_version_string());
  free(out);
  fc_run_result_clear(&result);
  return 0;
}
