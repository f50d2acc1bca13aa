// `spate subs CHANNEL`: the channel's subscriptions as its leader sees them
// (client, durable and queue names, online or offline, in-flight window,
// pending messages, last sent, ack wait, stalled), and `spate clients`:
// the connected clients with their subscriptions. Both read the monitoring
// endpoints through Admin.Monitor (tools/spate/monitor_call.h); --json
// prints the endpoint's JSON unchanged.
// Threading: runs on the CLI's thread.
#ifndef SPATE_TOOLS_SPATE_SUBS_H_
#define SPATE_TOOLS_SPATE_SUBS_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command SubsCommand();
Command ClientsCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_SUBS_H_
