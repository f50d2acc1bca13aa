#include "tests/testing/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "base/prng.h"

namespace spate::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits for `pid` to exit, up to `timeout`. Returns the wait status or -1.
int WaitExit(pid_t pid, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    int status = 0;
    pid_t done = waitpid(pid, &status, WNOHANG);
    if (done == pid) return status;
    if (done < 0 && errno != EINTR) return -1;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return -1;
}

}  // namespace

ServerProcess::ServerProcess(std::string data_dir, std::string config_text,
                             std::vector<std::string> extra_args)
    : data_dir_(std::move(data_dir)),
      config_text_(std::move(config_text)),
      extra_args_(std::move(extra_args)) {
  log_path_ = data_dir_ + ".log";
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) Kill();
}

std::string ServerProcess::BinaryPath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/",
                      workspace ? workspace : "spate", "/server/spate-server");
}

std::string ServerProcess::NewTempDir(const std::string& prefix) {
  static std::atomic<int> counter{0};
  const char* tmp = getenv("TEST_TMPDIR");
  std::string dir = absl::StrCat(tmp ? tmp : "/tmp", "/", prefix, "-", getpid(),
                                 "-", counter++);
  mkdir(dir.c_str(), 0755);
  return dir;
}

namespace {

// Test ports come from below the kernel's ephemeral range (32768-60999 by
// default), so an outgoing connection never takes a port a test picked for
// a server that is about to (re)start on it, and each pick is reserved by
// an flock on a file shared by every test process on the machine (released
// when the process exits), so concurrent tests never pick the same port.
constexpr int kFirstTestPort = 20000;
constexpr int kTestPorts = 12000;
constexpr char kPortLockDir[] = "/tmp/spate-test-ports";

bool BindsNow(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok =
      bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  close(fd);
  return ok;
}

// Takes the machine-wide reservation of `port`; the descriptor stays open
// (and the lock held) for the life of the process.
bool Reserve(int port) {
  mkdir(kPortLockDir, 0777);
  const std::string path = absl::StrCat(kPortLockDir, "/", port);
  int fd = open(path.c_str(), O_CREAT | O_RDWR | O_CLOEXEC, 0666);
  if (fd < 0) return false;
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return false;
  }
  return true;
}

// The kernel's pick (bind to port 0), for when no reserved port is free.
int EphemeralPort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof(addr);
  int port = 0;
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  close(fd);
  return port;
}

}  // namespace

int ServerProcess::FreePort() {
  static absl::Mutex mu;
  static std::set<int>* taken = new std::set<int>();
  static base::Prng* prng =
      new base::Prng(static_cast<uint64_t>(getpid()) * 1000003u ^
                     static_cast<uint64_t>(absl::GetCurrentTimeNanos()));
  absl::MutexLock lock(&mu);
  for (int attempt = 0; attempt < 200; ++attempt) {
    const int port =
        kFirstTestPort + static_cast<int>(prng->Uniform(kTestPorts));
    if (taken->count(port) > 0) continue;
    if (!Reserve(port)) continue;
    // Reserved from now on even if busy, so this process skips it later.
    taken->insert(port);
    if (BindsNow(port)) return port;
  }
  return EphemeralPort();
}

absl::Status ServerProcess::Start(absl::Duration timeout) {
  if (pid_ > 0) return absl::FailedPreconditionError("already running");
  mkdir(data_dir_.c_str(), 0755);
  const std::string ready = data_dir_ + ".ready";
  unlink(ready.c_str());
  std::vector<std::string> args = {
      BinaryPath(),
      "--data_dir=" + data_dir_,
      "--client_address=" + client_address_,
      "--ready_file=" + ready,
  };
  if (!config_text_.empty()) {
    const std::string config_path = data_dir_ + ".conf";
    std::ofstream(config_path) << config_text_;
    args.push_back("--config=" + config_path);
  }
  for (const std::string& arg : extra_args_) args.push_back(arg);

  pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    int fd = open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 2);
      dup2(fd, 1);
    }
    for (std::string& variable : environment_) putenv(variable.data());
    std::vector<char*> argv;
    for (std::string& arg : args) argv.push_back(arg.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  pid_ = pid;
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    std::string text = ReadFile(ready);
    if (!text.empty()) {
      // Line 1: the client address; then "monitor=ADDRESS" if enabled.
      std::vector<std::string> lines =
          absl::StrSplit(text, '\n', absl::SkipWhitespace());
      address_ = std::string(absl::StripAsciiWhitespace(lines.at(0)));
      monitor_address_.clear();
      for (size_t i = 1; i < lines.size(); ++i) {
        if (absl::StartsWith(lines[i], "monitor=")) {
          monitor_address_ = std::string(absl::StripAsciiWhitespace(
              absl::string_view(lines[i]).substr(8)));
        }
      }
      return absl::OkStatus();
    }
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return absl::InternalError(
          absl::StrCat("spate-server exited during start: ", Log()));
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  Kill();
  return absl::DeadlineExceededError(
      absl::StrCat("spate-server did not start in time: ", Log()));
}

absl::Status ServerProcess::Stop(absl::Duration timeout) {
  if (pid_ <= 0) return absl::OkStatus();
  kill(pid_, SIGCONT);
  kill(pid_, SIGTERM);
  const int status = WaitExit(pid_, timeout);
  if (status == -1) {
    Kill();
    return absl::DeadlineExceededError("spate-server did not stop in time");
  }
  pid_ = -1;
  if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("spate-server exited with status ", status, ": ", Log()));
}

void ServerProcess::Kill() {
  if (pid_ <= 0) return;
  kill(pid_, SIGKILL);
  WaitExit(pid_, absl::Seconds(30));
  pid_ = -1;
}

void ServerProcess::Pause() {
  if (pid_ > 0) kill(pid_, SIGSTOP);
}

void ServerProcess::Resume() {
  if (pid_ > 0) kill(pid_, SIGCONT);
}

std::string ServerProcess::Log() const { return ReadFile(log_path_); }

}  // namespace spate::testing
