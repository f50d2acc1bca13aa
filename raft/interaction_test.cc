// Runs the data-driven interaction scripts in raft/testdata (one gtest case
// per file; format in raft/testing/datadriven.h, commands in
// raft/testing/interaction_env.h).
//
// To accept new outputs after an intended behaviour change, rewrite the
// golden files in the source tree and review the diff:
//   bazel run //raft:interaction_test -- --rewrite
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "raft/testing/datadriven.h"
#include "raft/testing/interaction_env.h"

namespace spate::raft {
namespace {

bool rewrite = false;

std::string TestdataDir() {
  if (rewrite) {
    const char* workspace = std::getenv("BUILD_WORKSPACE_DIRECTORY");
    if (workspace == nullptr) {
      ADD_FAILURE()
          << "--rewrite needs `bazel run` (BUILD_WORKSPACE_DIRECTORY)";
      return "";
    }
    return std::string(workspace) + "/raft/testdata";
  }
  const char* srcdir = std::getenv("TEST_SRCDIR");
  const std::string root = srcdir != nullptr ? srcdir : ".";
  return root + "/spate/raft/testdata";
}

class InteractionTest : public ::testing::Test {
 public:
  explicit InteractionTest(std::string path) : path_(std::move(path)) {}
  void TestBody() override {
    testing::InteractionEnv env;
    testing::RunTestFile(
        path_, [&env](const testing::TestCase& tc) { return env.Handle(tc); },
        rewrite ? path_ : "");
  }

 private:
  std::string path_;
};

void RegisterScripts() {
  std::vector<std::string> paths;
  const std::string dir = TestdataDir();
  if (dir.empty()) return;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() == ".txt") paths.push_back(entry.path());
  }
  std::sort(paths.begin(), paths.end());
  for (const std::string& path : paths) {
    const std::string name = std::filesystem::path(path).stem();
    ::testing::RegisterTest(
        "InteractionTest", name.c_str(), nullptr, nullptr, __FILE__, __LINE__,
        [path]() -> ::testing::Test* { return new InteractionTest(path); });
  }
}

}  // namespace
}  // namespace spate::raft

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--rewrite") == 0) spate::raft::rewrite = true;
  }
  spate::raft::RegisterScripts();
  return RUN_ALL_TESTS();
}
