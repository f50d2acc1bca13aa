#include "server/config.h"

#include <fstream>
#include <sstream>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/text_format.h"
#include "server/channel_limits.h"
#include "server/validation.h"

namespace spate::server {
namespace {

class ErrorCollector : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors_.push_back(
        absl::StrCat("line ", line + 1, " column ", column + 1, ": ", message));
  }
  void AddWarning(int line, google::protobuf::io::ColumnNumber column,
                  const std::string& message) override {
    AddError(line, column, message);
  }
  std::string Text() const { return absl::StrJoin(errors_, "; "); }

 private:
  std::vector<std::string> errors_;
};

// Copies every field's default into `message` so that printing shows it.
void FillDefaults(google::protobuf::Message* message) {
  const google::protobuf::Descriptor* descriptor = message->GetDescriptor();
  const google::protobuf::Reflection* reflection = message->GetReflection();
  for (int i = 0; i < descriptor->field_count(); ++i) {
    const google::protobuf::FieldDescriptor* field = descriptor->field(i);
    if (field->is_repeated()) {
      if (field->cpp_type() ==
          google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
        for (int j = 0; j < reflection->FieldSize(*message, field); ++j) {
          FillDefaults(reflection->MutableRepeatedMessage(message, field, j));
        }
      }
      continue;
    }
    if (field->cpp_type() ==
        google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
      FillDefaults(reflection->MutableMessage(message, field));
      continue;
    }
    if (reflection->HasField(*message, field)) continue;
    switch (field->cpp_type()) {
      case google::protobuf::FieldDescriptor::CPPTYPE_INT32:
        reflection->SetInt32(message, field, field->default_value_int32());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_INT64:
        reflection->SetInt64(message, field, field->default_value_int64());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT32:
        reflection->SetUInt32(message, field, field->default_value_uint32());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_UINT64:
        reflection->SetUInt64(message, field, field->default_value_uint64());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_BOOL:
        reflection->SetBool(message, field, field->default_value_bool());
        break;
      case google::protobuf::FieldDescriptor::CPPTYPE_STRING:
        reflection->SetString(message, field, field->default_value_string());
        break;
      default:
        break;
    }
  }
}

constexpr char kFieldPayload[] = "spate.config.field";

// The error names the field in its text and, for LocateConfigError, as a
// payload.
absl::Status Invalid(absl::string_view field, absl::string_view why) {
  absl::Status status =
      absl::InvalidArgumentError(absl::StrCat("config: ", field, " ", why));
  status.SetPayload(kFieldPayload, absl::Cord(field));
  return status;
}

// Line (0-based) where `path` (dotted field names from `descriptor`) is set
// under `tree`, or -1. A repeated message on the way is searched element by
// element; a repeated leaf reports its first element.
int FieldLine(const google::protobuf::TextFormat::ParseInfoTree* tree,
              const google::protobuf::Descriptor* descriptor,
              const std::vector<std::string>& path, size_t at,
              const google::protobuf::Message* message) {
  const google::protobuf::FieldDescriptor* field =
      descriptor->FindFieldByName(path[at]);
  if (field == nullptr || tree == nullptr) return -1;
  const google::protobuf::Reflection* reflection = message->GetReflection();
  if (at + 1 == path.size()) {
    return tree->GetLocation(field, field->is_repeated() ? 0 : -1).line;
  }
  if (field->cpp_type() != google::protobuf::FieldDescriptor::CPPTYPE_MESSAGE) {
    return -1;
  }
  if (!field->is_repeated()) {
    return FieldLine(tree->GetTreeForNested(field, -1), field->message_type(),
                     path, at + 1, &reflection->GetMessage(*message, field));
  }
  for (int i = 0; i < reflection->FieldSize(*message, field); ++i) {
    const int line =
        FieldLine(tree->GetTreeForNested(field, i), field->message_type(), path,
                  at + 1, &reflection->GetRepeatedMessage(*message, field, i));
    if (line >= 0) return line;
  }
  return -1;
}

absl::Status ValidateLimits(absl::string_view prefix, const LimitsConfig& l) {
  if (l.max_msgs() < 0)
    return Invalid(absl::StrCat(prefix, "max_msgs"), "must be >= 0");
  if (l.max_bytes() < 0)
    return Invalid(absl::StrCat(prefix, "max_bytes"), "must be >= 0");
  if (l.max_age_ms() < 0)
    return Invalid(absl::StrCat(prefix, "max_age_ms"), "must be >= 0");
  if (l.max_subs() < 0)
    return Invalid(absl::StrCat(prefix, "max_subs"), "must be >= 0");
  if (l.max_inactivity_ms() < 0) {
    return Invalid(absl::StrCat(prefix, "max_inactivity_ms"), "must be >= 0");
  }
  return absl::OkStatus();
}

bool IsClusterName(absl::string_view name) {
  if (name.empty() || name.size() > 64) return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_' &&
        c != '-') {
      return false;
    }
  }
  return true;
}

absl::Status ValidateGateways(const ServerConfig& config) {
  const std::string& own = config.node().cluster_name();
  if (config.gateways_size() > 0 && !IsClusterName(own)) {
    return Invalid("node.cluster_name",
                   "must match [A-Za-z0-9_-]{1,64} when gateways are set");
  }
  absl::flat_hash_set<std::string> names;
  for (const RemoteClusterConfig& remote : config.gateways()) {
    if (!IsClusterName(remote.name())) {
      return Invalid("gateways.name",
                     absl::StrCat("must match [A-Za-z0-9_-]{1,64} ('",
                                  remote.name(), "')"));
    }
    if (remote.name() == own) {
      return Invalid("gateways.name",
                     absl::StrCat("'", own,
                                  "' is this cluster's own name: every "
                                  "linked cluster needs a unique name"));
    }
    if (!names.insert(remote.name()).second) {
      return Invalid("gateways.name",
                     absl::StrCat("lists cluster '", remote.name(), "' twice"));
    }
    if (remote.addresses_size() == 0) {
      return Invalid("gateways.addresses",
                     absl::StrCat("must list at least one gateway address of "
                                  "cluster '",
                                  remote.name(), "'"));
    }
    for (const std::string& address : remote.addresses()) {
      if (address.empty() || address.find(':') == std::string::npos) {
        return Invalid("gateways.addresses",
                       absl::StrCat("'", address, "' is not a host:port"));
      }
    }
  }
  absl::flat_hash_set<std::string> mirrors;
  for (const MirrorConfig& mirror : config.mirrors()) {
    if (absl::Status s = ValidateChannelName(mirror.channel()); !s.ok()) {
      return Invalid("mirrors.channel", s.message());
    }
    if (!mirrors.insert(mirror.channel()).second) {
      return Invalid("mirrors.channel",
                     absl::StrCat("lists '", mirror.channel(), "' twice"));
    }
    if (!names.contains(mirror.source_cluster())) {
      return Invalid("mirrors.source_cluster",
                     absl::StrCat("'", mirror.source_cluster(),
                                  "' is not one of the configured gateways"));
    }
    if (!mirror.source_channel().empty()) {
      if (absl::Status s = ValidateChannelName(mirror.source_channel());
          !s.ok()) {
        return Invalid("mirrors.source_channel", s.message());
      }
    }
  }
  const GatewayConfig& gateway = config.gateway();
  if (gateway.request_timeout_ms() < 10) {
    return Invalid("gateway.request_timeout_ms", "must be >= 10");
  }
  if (gateway.directory_refresh_ms() < 10) {
    return Invalid("gateway.directory_refresh_ms", "must be >= 10");
  }
  if (gateway.fetch_messages_max() < 1) {
    return Invalid("gateway.fetch_messages_max", "must be >= 1");
  }
  if (gateway.fetch_bytes_max() < config.store().max_payload_bytes()) {
    return Invalid("gateway.fetch_bytes_max",
                   "must be >= store.max_payload_bytes");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ServerConfig> ParseConfigText(const std::string& text,
                                             const std::string& source) {
  ServerConfig config;
  google::protobuf::TextFormat::Parser parser;
  ErrorCollector errors;
  parser.RecordErrorsTo(&errors);
  if (!parser.ParseFromString(text, &config)) {
    return absl::InvalidArgumentError(
        absl::StrCat("config ", source, ": ", errors.Text()));
  }
  return config;
}

absl::StatusOr<std::string> ReadConfigFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read config file ", path));
  }
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

absl::StatusOr<ServerConfig> LoadConfigFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadConfigFile(path);
  if (!text.ok()) return text.status();
  return ParseConfigText(*text, path);
}

absl::Status ValidateConfig(const ServerConfig& config) {
  const NodeConfig& node = config.node();
  if (node.id() < 1) return Invalid("node.id", "must be >= 1");
  if (node.cluster_name().empty()) {
    return Invalid("node.cluster_name", "must not be empty");
  }
  if (node.data_dir().empty())
    return Invalid("node.data_dir", "must not be empty");
  if (node.client_address().empty()) {
    return Invalid("node.client_address", "must not be empty");
  }
  absl::flat_hash_set<uint64_t> ids = {node.id()};
  for (const PeerConfig& peer : node.peers()) {
    if (peer.id() < 1 || !ids.insert(peer.id()).second) {
      return Invalid("node.peers.id",
                     absl::StrCat("must be >= 1 and unique (", peer.id(), ")"));
    }
    if (peer.cluster_address().empty()) {
      return Invalid("node.peers.cluster_address", "must not be empty");
    }
  }
  if (node.peers_size() > 0 && node.cluster_address().empty()) {
    return Invalid("node.cluster_address", "is required with peers");
  }
  const StoreConfig& store = config.store();
  if (absl::Status s = ValidateLimits("store.limits.", store.limits());
      !s.ok()) {
    return s;
  }
  for (const ChannelLimitsOverride& o : store.channel_overrides()) {
    if (absl::Status s = ValidateChannelPattern(o.pattern()); !s.ok()) {
      return Invalid("store.channel_overrides.pattern", s.message());
    }
    if (absl::Status s =
            ValidateLimits("store.channel_overrides.limits.", o.limits());
        !s.ok()) {
      return s;
    }
  }
  if (store.max_channels() < 1)
    return Invalid("store.max_channels", "must be >= 1");
  if (store.max_payload_bytes() < 1 || store.max_payload_bytes() > (64 << 20)) {
    return Invalid("store.max_payload_bytes", "must be in [1, 64 MiB]");
  }
  if (store.dedup_window_ms() < 0) {
    return Invalid("store.dedup_window_ms", "must be >= 0");
  }
  if (store.dedup_entries_max() < 0) {
    return Invalid("store.dedup_entries_max", "must be >= 0");
  }
  const ClientsConfig& clients = config.clients();
  if (clients.ping_interval_ms() < 10) {
    return Invalid("clients.ping_interval_ms", "must be >= 10");
  }
  if (clients.ping_max_out() < 1)
    return Invalid("clients.ping_max_out", "must be >= 1");
  if (clients.max_clients() < 1)
    return Invalid("clients.max_clients", "must be >= 1");
  if (clients.max_streams() < 1)
    return Invalid("clients.max_streams", "must be >= 1");
  const SubscriptionsConfig& subs = config.subscriptions();
  if (subs.min_ack_wait_ms() < 1) {
    return Invalid("subscriptions.min_ack_wait_ms", "must be >= 1");
  }
  if (subs.max_in_flight_max() < 1) {
    return Invalid("subscriptions.max_in_flight_max", "must be >= 1");
  }
  if (subs.max_subscriptions_per_client() < 1) {
    return Invalid("subscriptions.max_subscriptions_per_client",
                   "must be >= 1");
  }
  if (subs.max_pending_bytes() < store.max_payload_bytes()) {
    return Invalid("subscriptions.max_pending_bytes",
                   "must be >= store.max_payload_bytes");
  }
  const RaftConfig& raft = config.raft();
  if (raft.tick_ms() < 1) return Invalid("raft.tick_ms", "must be >= 1");
  if (raft.heartbeat_ticks() < 1)
    return Invalid("raft.heartbeat_ticks", "must be >= 1");
  if (raft.election_ticks() <= raft.heartbeat_ticks()) {
    return Invalid("raft.election_ticks", "must be > raft.heartbeat_ticks");
  }
  if (raft.inflight_msgs_max() < 1) {
    return Invalid("raft.inflight_msgs_max", "must be >= 1");
  }
  if (raft.append_bytes_max() < 1) {
    return Invalid("raft.append_bytes_max", "must be >= 1");
  }
  if (raft.snapshot_entries() < 1) {
    return Invalid("raft.snapshot_entries", "must be >= 1");
  }
  if (absl::Status s = ValidateGateways(config); !s.ok()) return s;
  // Forwarded requests authenticate with the cluster token
  // (server/auth.h); without one, a follower could forward nothing.
  if (config.auth().enabled() && node.peers_size() > 0 &&
      config.auth().cluster_token().empty()) {
    return Invalid("auth.cluster_token",
                   "required with auth.enabled in a multi-node cluster");
  }
  static const char* kLevels[] = {"debug", "info", "warning", "error"};
  bool level_ok = false;
  for (const char* level : kLevels) level_ok |= config.log_level() == level;
  if (!level_ok) {
    return Invalid("log_level", "must be debug, info, warning or error");
  }
  return absl::OkStatus();
}

absl::Status LocateConfigError(const absl::Status& status,
                               const std::string& text,
                               const std::string& source) {
  absl::optional<absl::Cord> field = status.GetPayload(kFieldPayload);
  if (!field.has_value()) return status;
  ServerConfig parsed;
  google::protobuf::TextFormat::Parser parser;
  google::protobuf::TextFormat::ParseInfoTree tree;
  ErrorCollector ignored;  // the text parsed before; errors are not news
  parser.RecordErrorsTo(&ignored);
  parser.WriteLocationsTo(&tree);
  if (!parser.ParseFromString(text, &parsed)) return status;
  const std::vector<std::string> path =
      absl::StrSplit(std::string(*field), '.');
  const int line = FieldLine(&tree, parsed.GetDescriptor(), path, 0, &parsed);
  if (line < 0) return status;  // set by a flag or left at its default
  absl::Status located = absl::InvalidArgumentError(
      absl::StrCat(status.message(), " (", source, " line ", line + 1, ")"));
  located.SetPayload(kFieldPayload, *field);
  return located;
}

std::string ConfigToText(const ServerConfig& config) {
  ServerConfig filled = config;
  FillDefaults(&filled);
  std::string text;
  google::protobuf::TextFormat::PrintToString(filled, &text);
  return text;
}

}  // namespace spate::server
