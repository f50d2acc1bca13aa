// A data-driven test runner in the format of etcd/cockroachdb's
// `datadriven` package (~200 lines, no dependency beyond gtest):
//
//   # comment
//   command arg1 key=value key=(v1, v2) (v3,v4)
//   optional input lines
//   ----
//   expected output
//   <blank line>
//
// Output that itself contains blank lines is written between doubled
// separators ("----\n----\n" ... "----\n----\n"). The handler turns a
// TestCase into its actual output; mismatches are gtest failures. With
// `rewrite`, the file is written back with the actual outputs instead, so
// behaviour changes show up as reviewable diffs of testdata/.
// Threading: single-threaded test code.
#ifndef SPATE_RAFT_TESTING_DATADRIVEN_H_
#define SPATE_RAFT_TESTING_DATADRIVEN_H_

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace spate::raft::testing {

struct CmdArg {
  std::string key;                  // empty for a bare "(1,2)" group
  std::vector<std::string> values;  // empty for a bare "key"
};

struct TestCase {
  std::string position;  // "file:line" of the command
  std::string command;
  std::vector<CmdArg> args;
  std::string input;     // lines between the command and "----"
  std::string expected;  // without the final newline

  bool HasArg(const std::string& key) const;
  // The single value of `key`, or `fallback` if absent.
  std::string Get(const std::string& key, const std::string& fallback) const;
  // Bare words after the command (args without '=' and values).
  std::vector<std::string> Positional() const;
};

// Parses one command line ("cmd a b=1 c=(2, 3) (4,5)").
absl::StatusOr<TestCase> ParseCommandLine(const std::string& line);

using Handler = std::function<std::string(const TestCase&)>;

// Runs every test case of the file at `path`. When `rewrite_path` is not
// empty, writes the file with actual outputs there instead of comparing.
void RunTestFile(const std::string& path, const Handler& handler,
                 const std::string& rewrite_path);

}  // namespace spate::raft::testing

#endif  // SPATE_RAFT_TESTING_DATADRIVEN_H_
