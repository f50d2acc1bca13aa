// The `spate` CLI's subcommand registry and dispatcher. Each subcommand
// (pub, sub; later bench, channels, cluster) lives in its own file pair,
// defines its absl flags there and returns a Command; main.cc lists them.
// RunCli parses the command line itself with abseil's flag objects, so that
// each subcommand accepts only its own flags plus the common ones, `spate
// help NAME` can list them, and tests can run it repeatedly in one process
// (every accepted flag is reset to its default first).
// Threading: RunCli runs on the calling thread; flags are process-global,
// so only one RunCli runs at a time.
#ifndef SPATE_TOOLS_SPATE_COMMAND_H_
#define SPATE_TOOLS_SPATE_COMMAND_H_

#include <atomic>
#include <functional>
#include <iosfwd>
#include <string>
#include <vector>

namespace spate::cli {

// Where a command reads and writes, injectable for tests.
struct Io {
  std::istream* in;
  std::ostream* out;
  std::ostream* err;
  // Set when the user asked to stop (SIGINT/SIGTERM); long-running
  // commands poll it.
  const std::atomic<bool>* interrupted;
};

// Exit codes.
constexpr int kExitOk = 0;
constexpr int kExitError = 1;  // The operation failed (status printed).
constexpr int kExitUsage = 2;  // Bad command line.

struct Command {
  std::string name;
  // One line for `spate --help`.
  std::string summary;
  // `spate help NAME`: synopsis and description; the flags' own help
  // texts are appended.
  std::string usage;
  // Flags this command accepts besides the common ones (without "--").
  std::vector<std::string> flags;
  // Runs with the positional arguments after the command name; returns
  // the exit code.
  std::function<int(const std::vector<std::string>& args, const Io& io)> run;
};

// Flags every command accepts (defined in common.cc).
const std::vector<std::string>& CommonFlags();

// Dispatches argv (argv[0] is the program) to one of `commands`.
int RunCli(const std::vector<Command>& commands,
           const std::vector<std::string>& argv, const Io& io);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_COMMAND_H_
