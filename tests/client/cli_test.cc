// The `spate` CLI (a child process) against a real spate-server: pub with a
// message, --count and stdin lines, sub with start positions, a durable
// resuming per --client_id with --count, and a sub that rides out a server
// crash and restart (reconnection, --reconnect_wait).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/client/recorder.h"
#include "tests/testing/server_process.h"

namespace spate::testing {
namespace {

using ::testing::HasSubstr;

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string SpatePath() {
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  return absl::StrCat(srcdir ? srcdir : ".", "/",
                      workspace ? workspace : "spate", "/tools/spate/spate");
}

// One `spate` run: stdin from a file, stdout and stderr to files; stopped
// by PID (SIGKILL) if it outlives its wait.
class SpateProcess {
 public:
  SpateProcess(std::vector<std::string> args, const std::string& input = "") {
    const std::string base = ServerProcess::NewTempDir("spate") + "/run";
    out_path_ = base + ".out";
    err_path_ = base + ".err";
    const std::string in_path = base + ".in";
    std::ofstream(in_path) << input;
    args.insert(args.begin(), SpatePath());
    pid_ = fork();
    if (pid_ == 0) {
      const int in = open(in_path.c_str(), O_RDONLY);
      const int out = open(out_path_.c_str(), O_WRONLY | O_CREAT, 0644);
      const int err = open(err_path_.c_str(), O_WRONLY | O_CREAT, 0644);
      dup2(in, 0);
      dup2(out, 1);
      dup2(err, 2);
      std::vector<char*> argv;
      for (std::string& arg : args) argv.push_back(arg.data());
      argv.push_back(nullptr);
      execv(argv[0], argv.data());
      _exit(127);
    }
  }
  ~SpateProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }

  // The exit code, or -1 if it did not exit within `timeout` (then it is
  // killed).
  int Wait(absl::Duration timeout = absl::Seconds(60)) {
    const absl::Time deadline = absl::Now() + timeout;
    while (absl::Now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
      }
      absl::SleepFor(absl::Milliseconds(10));
    }
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
    return -1;
  }

  std::string Out() const { return ReadFile(out_path_); }
  std::string Err() const { return ReadFile(err_path_); }

 private:
  pid_t pid_ = -1;
  std::string out_path_;
  std::string err_path_;
};

// "[#SEQ] [redelivered] DATA" lines of `spate sub` as (sequence, data).
std::vector<std::pair<uint64_t, std::string>> SubLines(const std::string& out) {
  std::vector<std::pair<uint64_t, std::string>> lines;
  for (absl::string_view line : absl::StrSplit(out, '\n', absl::SkipEmpty())) {
    uint64_t sequence = 0;
    if (!absl::ConsumePrefix(&line, "[#")) continue;
    const size_t end = line.find("] ");
    if (end == absl::string_view::npos ||
        !absl::SimpleAtoi(line.substr(0, end), &sequence)) {
      continue;
    }
    line.remove_prefix(end + 2);
    absl::ConsumePrefix(&line, "[redelivered] ");
    lines.emplace_back(sequence, std::string(line));
  }
  return lines;
}

class CliTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ =
        std::make_unique<ServerProcess>(ServerProcess::NewTempDir("node"));
    server_->set_client_address(
        absl::StrCat("127.0.0.1:", ServerProcess::FreePort()));
    const absl::Status started = server_->Start();
    ASSERT_TRUE(started.ok()) << started;
  }

  void TearDown() override {
    if (HasFailure() || getenv("SPATE_TEST_LOGS")) {
      std::cerr << "---- server log ----\n" << server_->Log();
    }
    const absl::Status stopped = server_->Stop();
    EXPECT_TRUE(stopped.ok()) << stopped;
  }

  // Runs `spate COMMAND ARGS --server=<the server>` to completion.
  std::unique_ptr<SpateProcess> Run(std::vector<std::string> args,
                                    const std::string& input = "") {
    args.push_back("--server=" + server_->address());
    auto process = std::make_unique<SpateProcess>(std::move(args), input);
    exit_code_ = process->Wait();
    return process;
  }

  std::unique_ptr<ServerProcess> server_;
  int exit_code_ = -1;
};

using Lines = std::vector<std::pair<uint64_t, std::string>>;

TEST_F(CliTest, PubAndSubWithStartPositionsAndADurable) {
  auto pub = Run({"pub", "orders", "hello"});
  ASSERT_EQ(exit_code_, 0) << pub->Err();
  EXPECT_EQ(pub->Out(), "published orders seq=1\n");
  pub = Run({"pub", "orders", "again", "--count=4"});
  ASSERT_EQ(exit_code_, 0) << pub->Err();
  EXPECT_THAT(pub->Out(), HasSubstr("published 4 messages to orders"));
  EXPECT_THAT(pub->Out(), HasSubstr("last seq=5"));
  pub = Run({"pub", "orders", "--async"}, "a\nb\n");
  ASSERT_EQ(exit_code_, 0) << pub->Err();
  EXPECT_EQ(pub->Out(), "published orders seq=6\npublished orders seq=7\n");

  // A durable prints --count messages, acks only those, and resumes after
  // them for the same client id.
  const std::vector<std::string> durable = {
      "sub",       "orders",      "--all",
      "--count=3", "--durable=d", "--client_id=reader"};
  auto sub = Run(durable);
  ASSERT_EQ(exit_code_, 0) << sub->Err();
  EXPECT_EQ(SubLines(sub->Out()),
            (Lines{{1, "hello"}, {2, "again"}, {3, "again"}}));
  sub = Run(durable);
  ASSERT_EQ(exit_code_, 0) << sub->Err();
  EXPECT_EQ(SubLines(sub->Out()),
            (Lines{{4, "again"}, {5, "again"}, {6, "a"}}));

  sub = Run({"sub", "orders", "--seq=7", "--count=1"});
  ASSERT_EQ(exit_code_, 0) << sub->Err();
  EXPECT_EQ(sub->Out(), "[#7] b\n");
  sub = Run({"sub", "orders", "--last", "--count=1"});
  ASSERT_EQ(exit_code_, 0) << sub->Err();
  EXPECT_EQ(sub->Out(), "[#7] b\n");
}

TEST_F(CliTest, SubRidesOutAServerCrash) {
  SpateProcess sub({"sub", "events", "--count=4", "--client_id=watcher",
                    "--reconnect_wait=60s", "--server=" + server_->address()});
  // Subscribed (new messages only) once it says so.
  ASSERT_TRUE(Eventually([&] {
    return sub.Err().find("subscribed to events") != std::string::npos;
  }));
  auto pub = Run({"pub", "events", "before", "--count=2"});
  ASSERT_EQ(exit_code_, 0) << pub->Err();
  ASSERT_TRUE(Eventually([&] { return SubLines(sub.Out()).size() == 2; }));

  server_->Kill();
  const absl::Status restarted = server_->Start();
  ASSERT_TRUE(restarted.ok()) << restarted;
  pub = Run({"pub", "events", "after", "--count=2"});
  ASSERT_EQ(exit_code_, 0) << pub->Err();

  ASSERT_EQ(sub.Wait(), 0) << sub.Err();
  // The plain subscription came back after the last message it printed:
  // no gap, nothing twice.
  EXPECT_EQ(SubLines(sub.Out()),
            (Lines{{1, "before"}, {2, "before"}, {3, "after"}, {4, "after"}}));
}

}  // namespace
}  // namespace spate::testing
