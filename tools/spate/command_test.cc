#include "tools/spate/command.h"

#include <sstream>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tools/spate/common.h"

ABSL_FLAG(int32_t, test_number, 7, "a number for the test command");
ABSL_FLAG(bool, test_switch, false, "a switch for the test command");

namespace spate::cli {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// A command that records what it was run with.
struct Recorder {
  std::vector<std::string> args;
  int32_t number = 0;
  bool flag = false;
  std::string server;
  int runs = 0;

  Command Make() {
    return Command{
        "echo",
        "records its arguments",
        "usage: spate echo [ARGS]",
        {"test_number", "test_switch"},
        [this](const std::vector<std::string>& positional, const Io&) {
          ++runs;
          args = positional;
          number = absl::GetFlag(FLAGS_test_number);
          flag = absl::GetFlag(FLAGS_test_switch);
          server = absl::GetFlag(FLAGS_server);
          return 3;
        }};
  }
};

class RunCliTest : public ::testing::Test {
 protected:
  int Run(std::vector<std::string> argv) {
    argv.insert(argv.begin(), "spate");
    out_.str("");
    err_.str("");
    return RunCli({recorder_.Make()}, argv, io_);
  }

  Recorder recorder_;
  std::istringstream in_;
  std::ostringstream out_;
  std::ostringstream err_;
  std::atomic<bool> interrupted_{false};
  Io io_{&in_, &out_, &err_, &interrupted_};
};

TEST_F(RunCliTest, OverviewListsCommandsAndCommonFlags) {
  EXPECT_EQ(Run({"--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("echo"));
  EXPECT_THAT(out_.str(), HasSubstr("records its arguments"));
  EXPECT_THAT(out_.str(), HasSubstr("--server"));
  EXPECT_EQ(Run({"help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("echo"));
  EXPECT_EQ(Run({}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("usage: spate COMMAND"));
}

TEST_F(RunCliTest, HelpForACommandListsItsFlags) {
  EXPECT_EQ(Run({"help", "echo"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("usage: spate echo"));
  EXPECT_THAT(out_.str(), HasSubstr("--test_number: a number for the test "
                                    "command (default: 7)"));
  EXPECT_EQ(Run({"echo", "--help"}), kExitOk);
  EXPECT_THAT(out_.str(), HasSubstr("--test_switch"));
  EXPECT_EQ(recorder_.runs, 0);
  EXPECT_EQ(Run({"help", "nope"}), kExitUsage);
}

TEST_F(RunCliTest, UnknownCommandIsAUsageError) {
  EXPECT_EQ(Run({"nope"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown command `nope`"));
}

TEST_F(RunCliTest, ParsesEveryFlagFormAndPositionals) {
  EXPECT_EQ(Run({"echo", "a", "--test_number=5", "b", "--test_switch",
                 "--server", "h:1", "--", "--c"}),
            3);
  EXPECT_THAT(recorder_.args, ElementsAre("a", "b", "--c"));
  EXPECT_EQ(recorder_.number, 5);
  EXPECT_TRUE(recorder_.flag);
  EXPECT_EQ(recorder_.server, "h:1");

  EXPECT_EQ(Run({"echo", "--test_number", "9", "--notest_switch"}), 3);
  EXPECT_EQ(recorder_.number, 9);
  EXPECT_FALSE(recorder_.flag);
}

TEST_F(RunCliTest, EachRunStartsFromTheDefaults) {
  ASSERT_EQ(Run({"echo", "--test_number=5", "--test_switch", "--server=x:1"}),
            3);
  ASSERT_EQ(Run({"echo"}), 3);
  EXPECT_EQ(recorder_.number, 7);
  EXPECT_FALSE(recorder_.flag);
  EXPECT_EQ(recorder_.server, "");
}

TEST_F(RunCliTest, FlagsOfOtherCommandsAreRejected) {
  // --count exists in the binary but echo does not take it.
  EXPECT_EQ(Run({"echo", "--count=3"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("unknown flag --count for `spate echo`"));
  EXPECT_EQ(Run({"echo", "--bogus"}), kExitUsage);
  EXPECT_EQ(Run({"echo", "--test_number=abc"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("bad value for --test_number"));
  EXPECT_EQ(Run({"echo", "--test_number"}), kExitUsage);
  EXPECT_THAT(err_.str(), HasSubstr("needs a value"));
  EXPECT_EQ(recorder_.runs, 0);
}

}  // namespace
}  // namespace spate::cli
