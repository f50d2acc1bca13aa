// Resolves the limits of a channel from the server config: the server-wide
// limits, overridden field by field by the first channel override whose
// pattern matches the channel name. The result is recorded in the channel
// (ChannelCreate), so every replica enforces the same limits even if nodes
// have different config files.
#ifndef SPATE_SERVER_CHANNEL_LIMITS_H_
#define SPATE_SERVER_CHANNEL_LIMITS_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "proto/config.pb.h"
#include "proto/records.pb.h"

namespace spate::server {

// True when `name` matches `pattern`: literal tokens, `*` matching exactly
// one token, `>` (last token only) matching one or more tokens.
bool ChannelPatternMatches(absl::string_view pattern, absl::string_view name);

// A pattern is channel-name-like tokens where a token may be `*`, and the
// last may be `>`.
absl::Status ValidateChannelPattern(absl::string_view pattern);

ChannelLimits ResolveChannelLimits(absl::string_view name,
                                   const StoreConfig& store);

}  // namespace spate::server

#endif  // SPATE_SERVER_CHANNEL_LIMITS_H_
