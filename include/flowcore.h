/* flowcore: workflow engine on libuv with a callback system.
 * The umbrella header: include this one. */
#ifndef FLOWCORE_H
#define FLOWCORE_H

#include "flowcore/common.h"
#include "flowcore/event.h"
#include "flowcore/handler.h"
#include "flowcore/workflow.h"
#include "flowcore/run.h"
#include "flowcore/uuid.h"
#include "flowcore/recorder.h"
#include "flowcore/log_handler.h"
#include "flowcore/history.h"
#include "flowcore/migrate.h"
#include "flowcore/nodes.h"
#include "flowcore/loader.h"
#include "flowcore/batch_handler.h"
#include "flowcore/async_handler.h"
#include "flowcore/compose.h"
#include "flowcore/notify_handler.h"
#include "flowcore/progress_handler.h"
#include "flowcore/metrics_handler.h"

#endif
