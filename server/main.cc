// spate-server: parses flags and the config file into a ServerConfig,
// validates it, starts the Server and waits for signals:
//   SIGTERM, SIGINT  graceful shutdown: leaderships handed to peers, client
//                    streams ended with UNAVAILABLE (clients reconnect
//                    elsewhere), the store flushed and closed; exit 0.
//   SIGHUP           re-reads the config file (flags still override) and
//                    applies what can change live: log_level and the
//                    channel limits (store.limits, channel_overrides). Other
//                    changes are logged as needing a restart; an invalid
//                    file is logged and ignored (the old config stays).
#include <signal.h>

#include <cstdio>
#include <iostream>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/flags/usage.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "base/log.h"
#include "google/protobuf/util/message_differencer.h"
#include "server/config.h"
#include "server/server.h"
#include "storage/rocks_kv.h"

ABSL_FLAG(std::string, config, "",
          "Config file (protobuf text of ServerConfig)");
ABSL_FLAG(bool, print_config, false, "Print the effective config and exit");
ABSL_FLAG(std::string, data_dir, "", "Overrides node.data_dir");
ABSL_FLAG(std::string, client_address, "", "Overrides node.client_address");
ABSL_FLAG(std::string, cluster_address, "", "Overrides node.cluster_address");
ABSL_FLAG(uint64_t, node_id, 0, "Overrides node.id");
ABSL_FLAG(std::string, cluster_name, "", "Overrides node.cluster_name");
ABSL_FLAG(std::string, log_level, "",
          "Overrides log_level (debug|info|warning|error)");
ABSL_FLAG(std::string, ready_file, "",
          "Write the bound client address (and a line monitor=ADDRESS when "
          "monitoring is on) to this file once serving");
ABSL_FLAG(std::string, monitor_address, "",
          "Overrides monitor_address (HTTP monitoring, host:port)");
ABSL_FLAG(bool, test_lose_unsynced_writes, false,
          "TEST ONLY: hold written bytes in memory until they are fsynced, so "
          "that killing the process loses what a power failure would "
          "(tests/faults/)");

namespace {

void ApplyFlags(spate::ServerConfig* config) {
  spate::NodeConfig* node = config->mutable_node();
  if (!absl::GetFlag(FLAGS_data_dir).empty()) {
    node->set_data_dir(absl::GetFlag(FLAGS_data_dir));
  }
  if (!absl::GetFlag(FLAGS_client_address).empty()) {
    node->set_client_address(absl::GetFlag(FLAGS_client_address));
  }
  if (!absl::GetFlag(FLAGS_cluster_address).empty()) {
    node->set_cluster_address(absl::GetFlag(FLAGS_cluster_address));
  }
  if (absl::GetFlag(FLAGS_node_id) != 0)
    node->set_id(absl::GetFlag(FLAGS_node_id));
  if (!absl::GetFlag(FLAGS_cluster_name).empty()) {
    node->set_cluster_name(absl::GetFlag(FLAGS_cluster_name));
  }
  if (!absl::GetFlag(FLAGS_monitor_address).empty()) {
    config->set_monitor_address(absl::GetFlag(FLAGS_monitor_address));
  }
  if (!absl::GetFlag(FLAGS_log_level).empty()) {
    config->set_log_level(absl::GetFlag(FLAGS_log_level));
  }
}

// The effective config: the file (if any), then the flags; validated, with
// the offending line of the file named.
absl::StatusOr<spate::ServerConfig> LoadEffectiveConfig() {
  spate::ServerConfig config;
  const std::string path = absl::GetFlag(FLAGS_config);
  std::string text;
  if (!path.empty()) {
    absl::StatusOr<std::string> read = spate::server::ReadConfigFile(path);
    if (!read.ok()) return read.status();
    text = *std::move(read);
    absl::StatusOr<spate::ServerConfig> parsed =
        spate::server::ParseConfigText(text, path);
    if (!parsed.ok()) return parsed.status();
    config = *std::move(parsed);
  }
  ApplyFlags(&config);
  if (absl::Status status = spate::server::ValidateConfig(config);
      !status.ok()) {
    return path.empty() ? status
                        : spate::server::LocateConfigError(status, text, path);
  }
  return config;
}

// SIGHUP: applies what can change live and says what cannot.
void Reload(spate::ServerConfig* current, spate::server::Server* server) {
  absl::StatusOr<spate::ServerConfig> loaded = LoadEffectiveConfig();
  if (!loaded.ok()) {
    LOG(ERROR) << "config reload rejected, keeping the running config: "
               << loaded.status().message();
    return;
  }
  if (loaded->log_level() != current->log_level()) {
    spate::base::LogLevel level;
    spate::base::ParseLogLevel(loaded->log_level(), &level);
    // Logged at both levels' threshold: visible whichever way it goes.
    LOG(WARNING) << "config reloaded: log_level " << current->log_level()
                 << " -> " << loaded->log_level();
    spate::base::SetLogLevel(level);
    current->set_log_level(loaded->log_level());
  }
  // Channel limits: live, through each channel's raft log.
  spate::StoreConfig live = current->store();
  *live.mutable_limits() = loaded->store().limits();
  *live.mutable_channel_overrides() = loaded->store().channel_overrides();
  if (!google::protobuf::util::MessageDifferencer::Equals(live,
                                                          current->store())) {
    std::string changes;
    google::protobuf::util::MessageDifferencer limits_differ;
    limits_differ.ReportDifferencesToString(&changes);
    limits_differ.Compare(current->store(), live);
    LOG(WARNING) << "config reloaded: channel limits changed (applied to "
                    "the channels this node leads): "
                 << changes;
    server->ReloadLimits(live);
    *current->mutable_store() = live;
  }
  std::string differences;
  google::protobuf::util::MessageDifferencer differ;
  differ.ReportDifferencesToString(&differences);
  if (!differ.Compare(*current, *loaded)) {
    LOG(WARNING) << "config reloaded: these changes take effect after a "
                    "restart: "
                 << differences;
  } else {
    LOG(INFO) << "config reloaded: nothing else changed";
  }
}

}  // namespace

int main(int argc, char** argv) {
  // Debug-only bookkeeping on every lock; not wanted in a server.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  absl::SetProgramUsageMessage(
      "spate-server: a Spate streaming node.\n"
      "  spate-server --config spate.conf\n"
      "  spate-server --data_dir /var/lib/spate --client_address 0.0.0.0:4222");
  absl::ParseCommandLine(argc, argv);

  absl::StatusOr<spate::ServerConfig> loaded = LoadEffectiveConfig();
  if (!loaded.ok()) {
    std::cerr << "spate-server: " << loaded.status().message() << "\n";
    return 2;
  }
  spate::ServerConfig config = *std::move(loaded);
  if (absl::GetFlag(FLAGS_print_config)) {
    std::cout << spate::server::ConfigToText(config);
    return 0;
  }
  spate::base::LogLevel level;
  spate::base::ParseLogLevel(config.log_level(), &level);
  spate::base::SetLogLevel(level);

  if (absl::GetFlag(FLAGS_test_lose_unsynced_writes)) {
    LOG(WARNING) << "test mode: unsynced writes are lost on a crash";
    spate::storage::LoseUnsyncedWritesOnCrashForTesting();
  }

  // Block the signals before any thread starts; sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<std::unique_ptr<spate::server::Server>> server =
      spate::server::Server::Start(config);
  if (!server.ok()) {
    std::cerr << "spate-server: cannot start: " << server.status().message()
              << "\n";
    return 1;
  }
  if (!absl::GetFlag(FLAGS_ready_file).empty()) {
    const std::string path = absl::GetFlag(FLAGS_ready_file);
    const std::string tmp = path + ".tmp";
    if (FILE* f = std::fopen(tmp.c_str(), "w")) {
      std::fprintf(f, "%s\n", (*server)->client_address().c_str());
      // Tests read the bound monitoring port from here too.
      if (!(*server)->monitor_address().empty()) {
        std::fprintf(f, "monitor=%s\n", (*server)->monitor_address().c_str());
      }
      std::fclose(f);
      std::rename(tmp.c_str(), path.c_str());
    }
  }
  while (true) {
    int signal_number = 0;
    sigwait(&signals, &signal_number);
    if (signal_number == SIGHUP) {
      LOG(INFO) << "SIGHUP: reloading config";
      Reload(&config, server->get());
      continue;
    }
    LOG(INFO) << "stopping on signal " << signal_number;
    break;
  }
  (*server)->Drain(absl::Seconds(5));
  (*server)->Stop();
  LOG(INFO) << "stopped cleanly";
  return 0;
}
