// The `spate` command-line client. Lists the subcommands and hands the
// command line to RunCli; SIGINT/SIGTERM set a flag that long-running
// commands poll, so Ctrl-C closes subscriptions cleanly (a second one
// kills the process).
#include <signal.h>

#include <atomic>
#include <iostream>
#include <string>
#include <vector>

#include "tools/spate/backup.h"
#include "tools/spate/bench.h"
#include "tools/spate/channels.h"
#include "tools/spate/cluster.h"
#include "tools/spate/command.h"
#include "tools/spate/mirror.h"
#include "tools/spate/pub.h"
#include "tools/spate/sub.h"
#include "tools/spate/subs.h"

namespace {

std::atomic<bool> g_interrupted{false};

void OnSignal(int) { g_interrupted.store(true); }

}  // namespace

int main(int argc, char** argv) {
  static_assert(std::atomic<bool>::is_always_lock_free,
                "the signal handler needs a lock-free flag");
  struct sigaction action = {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  // No SA_RESTART: a blocked stdin read returns, so `pub` stops too.
  action.sa_flags = SA_RESETHAND;
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const std::vector<spate::cli::Command> commands = {
      spate::cli::PubCommand(),      spate::cli::SubCommand(),
      spate::cli::ChannelsCommand(), spate::cli::ChannelCommand(),
      spate::cli::ClusterCommand(),  spate::cli::BenchCommand(),
      spate::cli::SubsCommand(),     spate::cli::ClientsCommand(),
      spate::cli::BackupCommand(),   spate::cli::MirrorCommand(),
  };
  const spate::cli::Io io{&std::cin, &std::cout, &std::cerr, &g_interrupted};
  return spate::cli::RunCli(commands,
                            std::vector<std::string>(argv, argv + argc), io);
}
