// CliClusterTest: a GoogleTest fixture that runs CLI commands (RunCli, in
// process) against three real spate-server processes, for the tests of the
// subcommands that read cluster state (channels, subs, clients, backup).
// Each test gets a fresh cluster; its logs are printed when a test fails.
//
// Threading: the test thread only (RunCli uses process-global flags).
#ifndef SPATE_TOOLS_SPATE_CLI_CLUSTER_TEST_H_
#define SPATE_TOOLS_SPATE_CLI_CLUSTER_TEST_H_

#include <atomic>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "tests/testing/cluster.h"
#include "tools/spate/command.h"

namespace spate::cli {

// The row of a table `output` whose first cell is `key`, split on runs of
// spaces; empty when there is none.
inline std::vector<std::string> TableRow(const std::string& output,
                                         const std::string& key) {
  for (absl::string_view line : absl::StrSplit(output, '\n')) {
    std::vector<std::string> cells =
        absl::StrSplit(line, ' ', absl::SkipEmpty());
    if (!cells.empty() && cells[0] == key) return cells;
  }
  return {};
}

class CliClusterTest : public ::testing::Test {
 protected:
  // How long RunUntilOk retries (the cluster may still be electing).
  static constexpr absl::Duration kPatience = absl::Seconds(30);

  explicit CliClusterTest(std::vector<Command> commands)
      : commands_(std::move(commands)) {}

  void SetUp() override {
    cluster_ = std::make_unique<testing::TestCluster>(3);
    const absl::Status started = cluster_->Start();
    ASSERT_TRUE(started.ok()) << started << cluster_->Logs();
  }

  void TearDown() override {
    if (HasFailure()) std::cerr << cluster_->Logs();
    cluster_->StopAll();
  }

  // Runs `spate <args...>`; the output is in out_ and err_.
  int Run(std::vector<std::string> args) {
    std::vector<std::string> argv = {"spate"};
    argv.insert(argv.end(), args.begin(), args.end());
    out_.str("");
    err_.str("");
    return RunCli(commands_, argv, io_);
  }

  // Runs `args` until it succeeds.
  void RunUntilOk(std::vector<std::string> args) {
    const absl::Time deadline = absl::Now() + kPatience;
    while (Run(args) != kExitOk) {
      ASSERT_LT(absl::Now(), deadline) << err_.str();
      absl::SleepFor(absl::Milliseconds(200));
    }
  }

  // The --server flag naming node `node`'s client address.
  std::string Via(int node) {
    return "--server=" + cluster_->client_address(node);
  }

  const std::vector<Command> commands_;
  std::unique_ptr<testing::TestCluster> cluster_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_CLI_CLUSTER_TEST_H_
