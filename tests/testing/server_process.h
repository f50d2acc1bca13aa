// ServerProcess: a real spate-server child process for multi-process tests.
// It binds 127.0.0.1 on a port the kernel picks (port 0), reports the bound
// address through --ready_file, and is stopped by PID (SIGTERM, or SIGKILL
// to simulate a crash). Every wait is bounded.
#ifndef SPATE_TESTS_TESTING_SERVER_PROCESS_H_
#define SPATE_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace spate::testing {

class ServerProcess {
 public:
  // `data_dir` is created if missing; `config_text` (protobuf text of
  // ServerConfig, may be empty) is written next to it and passed with
  // --config; `extra_args` are appended.
  ServerProcess(std::string data_dir, std::string config_text = "",
                std::vector<std::string> extra_args = {});

  // The client address to bind (default 127.0.0.1:0, a free port chosen
  // at each start). A fixed port keeps the address across restarts.
  void set_client_address(std::string address) {
    client_address_ = std::move(address);
  }
  // "NAME=value" entries added to the child's environment at each start
  // (e.g. LD_PRELOAD of libfaketime for clock faults).
  void set_environment(std::vector<std::string> environment) {
    environment_ = std::move(environment);
  }
  ~ServerProcess();  // SIGKILLs a still running child

  // Starts the child and waits until it serves (or fails, or times out).
  absl::Status Start(absl::Duration timeout = absl::Seconds(30));
  // SIGTERM and wait for a clean exit; returns the exit status.
  absl::Status Stop(absl::Duration timeout = absl::Seconds(30));
  // SIGKILL (a crash) and reap.
  void Kill();
  void Pause();   // SIGSTOP
  void Resume();  // SIGCONT

  bool running() const { return pid_ > 0; }
  pid_t pid() const { return pid_; }
  const std::string& address() const { return address_; }
  // The HTTP monitoring address (config monitor_address), with its bound
  // port; empty when monitoring is off.
  const std::string& monitor_address() const { return monitor_address_; }
  const std::string& data_dir() const { return data_dir_; }
  // The child's stderr so far (its log).
  std::string Log() const;

  // Path of the spate-server binary in the test's runfiles.
  static std::string BinaryPath();
  // A fresh directory under TEST_TMPDIR.
  static std::string NewTempDir(const std::string& prefix);
  // A TCP port on 127.0.0.1 that is free and reserved for this process (an
  // flock under /tmp/spate-test-ports, held until exit; below the ephemeral
  // range, so no outgoing connection takes it), for processes that must know
  // each other's ports up front and restart on the same ports.
  static int FreePort();

 private:
  std::string data_dir_;
  std::string config_text_;
  std::vector<std::string> extra_args_;
  std::vector<std::string> environment_;
  std::string log_path_;
  std::string client_address_ = "127.0.0.1:0";
  std::string address_;
  std::string monitor_address_;
  pid_t pid_ = -1;
};

}  // namespace spate::testing

#endif  // SPATE_TESTS_TESTING_SERVER_PROCESS_H_
