// Server configuration: ServerConfig (proto/config.proto) loaded from a
// protobuf text file, overridden by command-line flags, validated once.
// Errors name the field (and for files, the line and column).
#ifndef SPATE_SERVER_CONFIG_H_
#define SPATE_SERVER_CONFIG_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/config.pb.h"

namespace spate::server {

// Parses `text` (protobuf text format). Unknown fields and syntax errors are
// InvalidArgument naming the field, line and column.
absl::StatusOr<ServerConfig> ParseConfigText(const std::string& text,
                                             const std::string& source);
absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path);

// Checks every value's range and consistency; InvalidArgument names the
// field (e.g. "raft.election_ticks must be > heartbeat_ticks").
absl::Status ValidateConfig(const ServerConfig& config);

// `status` from ValidateConfig with the line of `text` (the config file
// `source`) that sets the offending field appended, e.g. "config:
// raft.tick_ms must be >= 1 (spate.conf line 12)". Unchanged when the field
// is not in the file (a flag or default) or the status names no field.
absl::Status LocateConfigError(const absl::Status& status,
                               const std::string& text,
                               const std::string& source);

// The contents of the config file at `path` (NotFound if unreadable).
absl::StatusOr<std::string> ReadConfigFile(const std::string& path);

// The effective configuration with every default filled in, as text.
std::string ConfigToText(const ServerConfig& config);

}  // namespace spate::server

#endif  // SPATE_SERVER_CONFIG_H_
