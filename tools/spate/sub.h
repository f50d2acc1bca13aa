// `spate sub CHANNEL`: subscribes with any start position, durable or
// queue group, prints "[#SEQ] [redelivered] DATA" lines until --count
// messages or Ctrl-C, then closes (or unsubscribes).
#ifndef SPATE_TOOLS_SPATE_SUB_H_
#define SPATE_TOOLS_SPATE_SUB_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command SubCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_SUB_H_
