// spate-server: parses flags and the config file into a ServerConfig,
// validates it, starts the Server and waits for SIGINT/SIGTERM.
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
          "Write the bound client address to this file once serving");
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
  if (!absl::GetFlag(FLAGS_log_level).empty()) {
    config->set_log_level(absl::GetFlag(FLAGS_log_level));
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

  spate::ServerConfig config;
  if (!absl::GetFlag(FLAGS_config).empty()) {
    absl::StatusOr<spate::ServerConfig> loaded =
        spate::server::LoadConfigFile(absl::GetFlag(FLAGS_config));
    if (!loaded.ok()) {
      std::cerr << "spate-server: " << loaded.status().message() << "\n";
      return 2;
    }
    config = *std::move(loaded);
  }
  ApplyFlags(&config);
  if (absl::Status status = spate::server::ValidateConfig(config);
      !status.ok()) {
    std::cerr << "spate-server: " << status.message() << "\n";
    return 2;
  }
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

  // Block the stop signals before any thread starts; sigwait below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
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
      std::fclose(f);
      std::rename(tmp.c_str(), path.c_str());
    }
  }
  int signal_number = 0;
  sigwait(&signals, &signal_number);
  LOG(INFO) << "stopping on signal " << signal_number;
  (*server)->Stop();
  return 0;
}
