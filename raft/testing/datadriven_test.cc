#include "raft/testing/datadriven.h"

#include <cstdio>
#include <fstream>
#include <sstream>

#include "gtest/gtest.h"

namespace spate::raft::testing {
namespace {

TEST(DatadrivenTest, ParsesArguments) {
  absl::StatusOr<TestCase> tc =
      ParseCommandLine("deliver-msgs 1 2 drop=(3, 4) type=app (5,6) flag");
  ASSERT_TRUE(tc.ok());
  EXPECT_EQ(tc->command, "deliver-msgs");
  ASSERT_EQ(tc->args.size(), 6u);
  EXPECT_EQ(tc->Positional(), (std::vector<std::string>{"1", "2", "flag"}));
  EXPECT_EQ(tc->args[2].key, "drop");
  EXPECT_EQ(tc->args[2].values, (std::vector<std::string>{"3", "4"}));
  EXPECT_EQ(tc->Get("type", ""), "app");
  EXPECT_EQ(tc->Get("missing", "x"), "x");
  EXPECT_EQ(tc->args[4].key, "");
  EXPECT_EQ(tc->args[4].values, (std::vector<std::string>{"5", "6"}));
  EXPECT_FALSE(ParseCommandLine("cmd a=(1,2").ok());
}

std::string Slurp(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(DatadrivenTest, RewriteProducesTheActualOutputs) {
  const std::string dir = ::testing::TempDir();
  const std::string in_path = dir + "/in.txt";
  const std::string out_path = dir + "/out.txt";
  {
    std::ofstream out(in_path);
    out << "# a comment\n"
        << "echo hello\n----\nstale\n\n"
        << "echo two lines\ninput line\n----\nold\n\n"
        << "echo\n----\n";
  }
  int calls = 0;
  RunTestFile(
      in_path,
      [&calls](const TestCase& tc) {
        ++calls;
        if (tc.Positional().empty()) return std::string();
        if (tc.Positional().size() == 2) return std::string("a\n\nb\n");
        return tc.Positional()[0];
      },
      out_path);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(Slurp(out_path),
            "# a comment\n"
            "echo hello\n----\nhello\n\n"
            "echo two lines\ninput line\n----\n----\na\n\nb\n----\n----\n\n"
            "echo\n----\n");
  // The rewritten file passes as is.
  RunTestFile(
      out_path,
      [](const TestCase& tc) {
        if (tc.Positional().empty()) return std::string();
        if (tc.Positional().size() == 2) return std::string("a\n\nb\n");
        return tc.Positional()[0];
      },
      "");
}

}  // namespace
}  // namespace spate::raft::testing
