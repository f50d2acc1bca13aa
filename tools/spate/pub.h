// `spate pub CHANNEL [MESSAGE]`: publishes MESSAGE (or each stdin line),
// synchronously or with --async through the windowed publish stream.
#ifndef SPATE_TOOLS_SPATE_PUB_H_
#define SPATE_TOOLS_SPATE_PUB_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command PubCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_PUB_H_
