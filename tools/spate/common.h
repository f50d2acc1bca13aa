// What every `spate` subcommand shares: the common flags (--server,
// --client_id, --reconnect_wait, credentials and TLS), --count (declared here,
// listed by the commands that use it), connecting from the flags, and printing
// errors the same way. Threading: call from the command's thread (flags are
// read once).
#ifndef SPATE_TOOLS_SPATE_COMMON_H_
#define SPATE_TOOLS_SPATE_COMMON_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "client/client.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "tools/spate/command.h"

ABSL_DECLARE_FLAG(std::string, server);
ABSL_DECLARE_FLAG(std::string, client_id);
ABSL_DECLARE_FLAG(int64_t, count);
ABSL_DECLARE_FLAG(absl::Duration, reconnect_wait);

namespace spate::cli {

constexpr char kDefaultServer[] = "127.0.0.1:4222";

// --server, else $SPATE_SERVER, else kDefaultServer; comma-separated.
std::vector<std::string> ServersFromFlags();

// --client_id, else "spate-cli-" and 8 random characters.
std::string ClientIdFromFlags();

// Credentials and TLS from --token/--user/--password/--tls_ca/--tls_cert/
// --tls_key, each else from $SPATE_TOKEN, $SPATE_USER, $SPATE_PASSWORD,
// $SPATE_TLS_CA, $SPATE_TLS_CERT, $SPATE_TLS_KEY.
void SecurityFromFlags(client::ClientOptions* options);

// A gRPC channel to `address` (an Admin call) with the TLS flags;
// an error when a TLS file cannot be read.
absl::StatusOr<std::shared_ptr<grpc::Channel>> DialFromFlags(
    const std::string& address);

// Adds the credential flags (token, or user and password) to a call.
void AuthorizeFromFlags(grpc::ClientContext* context);

// Connects with the common flags; `lost` (may be empty) runs if the
// connection is lost later (it broke and reconnecting failed within
// --reconnect_wait).
absl::StatusOr<std::unique_ptr<client::Connection>> ConnectFromFlags(
    client::ConnectionLostHandler lost);

// Prints "spate COMMAND: <status>" to io.err; returns kExitError.
int PrintError(const Io& io, absl::string_view command,
               const absl::Status& status);

// Prints "spate COMMAND: <message>" and the help hint; returns kExitUsage.
int UsageError(const Io& io, absl::string_view command,
               absl::string_view message);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_COMMON_H_
