#include "tools/spate/common.h"

#include <cstdlib>
#include <ostream>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/time.h"
#include "client/ids.h"
#include "client/session.h"

ABSL_FLAG(std::string, server, "",
          "comma-separated host:port list of servers, tried in order "
          "(default: $SPATE_SERVER, else 127.0.0.1:4222)");
ABSL_FLAG(std::string, client_id, "",
          "client id, [A-Za-z0-9_-]+ (default: spate-cli-<random>)");
ABSL_FLAG(int64_t, count, 0, "number of messages (0: see the command)");
ABSL_FLAG(absl::Duration, reconnect_wait, absl::Seconds(30),
          "how long to keep reconnecting (and resubscribing) after the "
          "connection breaks before giving up; 0 disables reconnection");

ABSL_FLAG(std::string, token, "",
          "authentication token (default: $SPATE_TOKEN)");
ABSL_FLAG(std::string, user, "",
          "user name for password authentication (default: $SPATE_USER)");
ABSL_FLAG(std::string, password, "",
          "password of --user (default: $SPATE_PASSWORD)");
ABSL_FLAG(std::string, tls_ca, "",
          "CA bundle (PEM) to verify the servers with; turns TLS on "
          "(default: $SPATE_TLS_CA)");
ABSL_FLAG(std::string, tls_cert, "",
          "client certificate (PEM) for mTLS (default: $SPATE_TLS_CERT)");
ABSL_FLAG(std::string, tls_key, "",
          "private key of --tls_cert (default: $SPATE_TLS_KEY)");

namespace spate::cli {
namespace {

// The flag, else the environment variable, else empty.
std::string FlagOrEnv(const absl::Flag<std::string>& flag, const char* env) {
  std::string value = absl::GetFlag(flag);
  if (value.empty()) {
    const char* from_env = std::getenv(env);
    if (from_env != nullptr) value = from_env;
  }
  return value;
}

}  // namespace

const std::vector<std::string>& CommonFlags() {
  static const std::vector<std::string>* flags = new std::vector<std::string>{
      "server",   "client_id", "reconnect_wait", "token",  "user",
      "password", "tls_ca",    "tls_cert",       "tls_key"};
  return *flags;
}

void SecurityFromFlags(client::ClientOptions* options) {
  options->token = FlagOrEnv(FLAGS_token, "SPATE_TOKEN");
  options->user = FlagOrEnv(FLAGS_user, "SPATE_USER");
  options->password = FlagOrEnv(FLAGS_password, "SPATE_PASSWORD");
  options->tls_ca_file = FlagOrEnv(FLAGS_tls_ca, "SPATE_TLS_CA");
  options->tls_cert_file = FlagOrEnv(FLAGS_tls_cert, "SPATE_TLS_CERT");
  options->tls_key_file = FlagOrEnv(FLAGS_tls_key, "SPATE_TLS_KEY");
}

std::vector<std::string> ServersFromFlags() {
  std::string list = absl::GetFlag(FLAGS_server);
  if (list.empty()) {
    const char* env = std::getenv("SPATE_SERVER");
    list = env != nullptr && env[0] != '\0' ? env : kDefaultServer;
  }
  std::vector<std::string> servers;
  for (absl::string_view server : absl::StrSplit(list, ',')) {
    server = absl::StripAsciiWhitespace(server);
    if (!server.empty()) servers.emplace_back(server);
  }
  return servers;
}

std::string ClientIdFromFlags() {
  std::string id = absl::GetFlag(FLAGS_client_id);
  return id.empty() ? "spate-cli-" + client::RandomAlnum(8) : id;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> DialFromFlags(
    const std::string& address) {
  client::ClientOptions options;
  SecurityFromFlags(&options);
  return client::NewChannel(options, address);
}

void AuthorizeFromFlags(grpc::ClientContext* context) {
  client::ClientOptions options;
  SecurityFromFlags(&options);
  client::AuthorizeCall(options, context);
}

absl::StatusOr<std::unique_ptr<client::Connection>> ConnectFromFlags(
    client::ConnectionLostHandler lost) {
  client::ClientOptions options;
  options.servers = ServersFromFlags();
  options.client_id = ClientIdFromFlags();
  options.reconnect_wait = absl::GetFlag(FLAGS_reconnect_wait);
  SecurityFromFlags(&options);
  options.connection_lost_handler = std::move(lost);
  return client::Connection::Connect(std::move(options));
}

int PrintError(const Io& io, absl::string_view command,
               const absl::Status& status) {
  *io.err << "spate " << command << ": " << status << std::endl;
  return kExitError;
}

int UsageError(const Io& io, absl::string_view command,
               absl::string_view message) {
  *io.err << "spate " << command << ": " << message << " (see `spate help "
          << command << "`)" << std::endl;
  return kExitUsage;
}

}  // namespace spate::cli
