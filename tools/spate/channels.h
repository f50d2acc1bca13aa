// `spate channels` (one line per channel: stored messages, bytes, first
// and last sequence, subscriptions, leader) and `spate channel info NAME`
// (one channel in detail, with each replica's raft state). Both read the
// same merged cluster view as `spate cluster status` (cluster_view.h), so
// every number comes from the channel's leader when it answered.
// Threading: runs on the CLI's thread.
#ifndef SPATE_TOOLS_SPATE_CHANNELS_H_
#define SPATE_TOOLS_SPATE_CHANNELS_H_

#include "tools/spate/command.h"

namespace spate::cli {

Command ChannelsCommand();
Command ChannelCommand();

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_CHANNELS_H_
