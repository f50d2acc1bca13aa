#include "raft/testing/datadriven.h"

#include <fstream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gtest/gtest.h"

namespace spate::raft::testing {
namespace {

constexpr char kSeparator[] = "----";

std::vector<std::string> SplitValues(absl::string_view inner) {
  std::vector<std::string> values;
  for (absl::string_view v : absl::StrSplit(inner, ',', absl::SkipEmpty())) {
    values.emplace_back(absl::StripAsciiWhitespace(v));
  }
  return values;
}

std::string FormatOutput(std::string output) {
  if (!output.empty() && output.back() != '\n') output.push_back('\n');
  if (absl::StrContains(output, "\n\n") || absl::StartsWith(output, "\n")) {
    return absl::StrCat(kSeparator, "\n", kSeparator, "\n", output, kSeparator,
                        "\n", kSeparator, "\n");
  }
  return absl::StrCat(kSeparator, "\n", output);
}

}  // namespace

bool TestCase::HasArg(const std::string& key) const {
  for (const CmdArg& arg : args) {
    if (arg.key == key) return true;
  }
  return false;
}

std::string TestCase::Get(const std::string& key,
                          const std::string& fallback) const {
  for (const CmdArg& arg : args) {
    if (arg.key == key && arg.values.size() == 1) return arg.values[0];
  }
  return fallback;
}

std::vector<std::string> TestCase::Positional() const {
  std::vector<std::string> words;
  for (const CmdArg& arg : args) {
    if (arg.values.empty()) words.push_back(arg.key);
  }
  return words;
}

absl::StatusOr<TestCase> ParseCommandLine(const std::string& line) {
  TestCase tc;
  size_t i = 0;
  auto skip_spaces = [&] {
    while (i < line.size() && line[i] == ' ') ++i;
  };
  skip_spaces();
  while (i < line.size() && line[i] != ' ') tc.command.push_back(line[i++]);
  while (skip_spaces(), i < line.size()) {
    CmdArg arg;
    while (i < line.size() && line[i] != ' ' && line[i] != '=' &&
           line[i] != '(') {
      arg.key.push_back(line[i++]);
    }
    if (i < line.size() && line[i] == '=') ++i;
    if (i < line.size() && line[i] == '(') {
      const size_t close = line.find(')', i);
      if (close == std::string::npos) {
        return absl::InvalidArgumentError(
            absl::StrCat("unbalanced '(' in: ", line));
      }
      arg.values =
          SplitValues(absl::string_view(line).substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (i > 0 && line[i - 1] == '=') {
      std::string value;
      while (i < line.size() && line[i] != ' ') value.push_back(line[i++]);
      arg.values.push_back(value);
    }
    tc.args.push_back(std::move(arg));
  }
  if (tc.command.empty()) return absl::InvalidArgumentError("empty command");
  return tc;
}

void RunTestFile(const std::string& path, const Handler& handler,
                 const std::string& rewrite_path) {
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  std::string rewritten;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (absl::StripAsciiWhitespace(line).empty() ||
        absl::StartsWith(line, "#")) {
      absl::StrAppend(&rewritten, line, "\n");
      ++i;
      continue;
    }
    const std::string position = absl::StrCat(path, ":", i + 1);
    absl::StatusOr<TestCase> parsed = ParseCommandLine(line);
    ASSERT_TRUE(parsed.ok()) << position << ": " << parsed.status();
    TestCase tc = std::move(*parsed);
    tc.position = position;
    absl::StrAppend(&rewritten, line, "\n");
    ++i;
    for (; i < lines.size() && lines[i] != kSeparator; ++i) {
      absl::StrAppend(&tc.input, lines[i], "\n");
      absl::StrAppend(&rewritten, lines[i], "\n");
    }
    ASSERT_LT(i, lines.size()) << position << ": missing " << kSeparator;
    ++i;
    std::vector<std::string> expected;
    if (i < lines.size() && lines[i] == kSeparator) {
      // Doubled separators: the output ends at "----\n----".
      for (++i; i + 1 < lines.size() &&
                !(lines[i] == kSeparator && lines[i + 1] == kSeparator);
           ++i) {
        expected.push_back(lines[i]);
      }
      ASSERT_LT(i + 1, lines.size()) << position << ": unterminated output";
      i += 2;
    } else {
      for (; i < lines.size() && !lines[i].empty(); ++i) {
        expected.push_back(lines[i]);
      }
    }
    tc.expected = absl::StrJoin(expected, "\n");
    std::string actual = handler(tc);
    while (!actual.empty() && actual.back() == '\n') actual.pop_back();
    if (rewrite_path.empty()) {
      EXPECT_EQ(tc.expected, actual) << "at " << position << ": " << line;
    }
    absl::StrAppend(&rewritten, FormatOutput(actual));
    // Keep the blank line that ends a case (unless the file ended).
    if (i < lines.size() && lines[i].empty()) {
      absl::StrAppend(&rewritten, "\n");
      ++i;
    }
  }
  if (!rewrite_path.empty()) {
    std::ofstream out(rewrite_path, std::ios::trunc);
    out << rewritten;
    ASSERT_TRUE(out.good()) << "cannot write " << rewrite_path;
  }
}

}  // namespace spate::raft::testing
