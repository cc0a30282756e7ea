/* The writer's configuration (defaults, policy names) and its counters' names. */
#include "history/writer_int.h"

static const char *const kind_names[FC_REC_KIND_COUNT] = {"workflow", "node", "error"};

static const char *const reason_names[FC_DROP_REASON_COUNT] = {
    "queue_full", "deadline", "spool_full", "rejected", "unconfirmed"};

const char *fc_record_kind_name(fc_record_kind_t kind) {
  return (unsigned)kind < FC_REC_KIND_COUNT ? kind_names[kind] : "unknown";
}

const char *fc_drop_reason_name(fc_drop_reason_t reason) {
  return (unsigned)reason < FC_DROP_REASON_COUNT ? reason_names[reason] : "unknown";
}

void fc_history_config_init(fc_history_config_t *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->batch_size = 8000;
  cfg->flush_interval_ms = 100;
  cfg->queue_capacity = 200000;
  cfg->policy = FC_QUEUE_BLOCK;
  cfg->spool_fsync_ms = 200;
  cfg->spool_max_bytes = (uint64_t)1 << 30;
  cfg->shutdown_deadline_ms = 10000;
  cfg->connections = 2;
  cfg->max_payload_bytes = 1024 * 1024;
  cfg->reconnect_min_ms = 100;
  cfg->reconnect_max_ms = 5000;
  cfg->max_bytes = (uint64_t)256 << 20;
}

const char *fc_queue_policy_name(fc_queue_policy_t p) {
  switch (p) {
  case FC_QUEUE_BLOCK:
    return "block";
  case FC_QUEUE_DROP:
    return "drop";
  case FC_QUEUE_SPOOL:
    return "spool";
  }
  return "unknown";
}

int fc_queue_policy_parse(const char *name, fc_queue_policy_t *out) {
  if (name == NULL)
    return FC_EINVAL;
  if (strcmp(name, "block") == 0)
    *out = FC_QUEUE_BLOCK;
  else if (strcmp(name, "drop") == 0)
    *out = FC_QUEUE_DROP;
  else if (strcmp(name, "spool") == 0)
    *out = FC_QUEUE_SPOOL;
  else
    return FC_EINVAL;
  return 0;
}

int fc__history_config_resolve(const fc_history_config_t *cfg, fc_history_config_t *out,
                               fc_error_t *err) {
  fc_history_config_t def;
  fc_history_config_init(&def);
  *out = cfg != NULL ? *cfg : def;
  if (out->batch_size == 0)
    out->batch_size = def.batch_size;
  if (out->flush_interval_ms == 0)
    out->flush_interval_ms = def.flush_interval_ms;
  if (out->queue_capacity == 0)
    out->queue_capacity = def.queue_capacity;
  if (out->max_bytes == 0)
    out->max_bytes = def.max_bytes;
  if (out->connections <= 0)
    out->connections = def.connections;
  if (out->connections > 16)
    return fc__error_set(err, FC_EINVAL, "connections", "connections: at most 16, got %d",
                         out->connections);
  if (out->reconnect_min_ms == 0)
    out->reconnect_min_ms = def.reconnect_min_ms;
  if (out->reconnect_max_ms < out->reconnect_min_ms)
    out->reconnect_max_ms = out->reconnect_min_ms;
  if (out->spool_fsync_ms == 0)
    out->spool_fsync_ms = def.spool_fsync_ms;
  return 0;
}
