// Helpers shared by storage/'s tests and benchmark (testonly): fresh
// temporary directories for RocksKv stores.
// Threading: any thread.
#ifndef SPATE_STORAGE_TEST_UTIL_H_
#define SPATE_STORAGE_TEST_UTIL_H_

#include <string>

namespace spate::storage {

// A new, empty directory under $TEST_TMPDIR (or /tmp outside Bazel).
// Crashes if it cannot be created: a test cannot run without it.
std::string MakeTempDir();

}  // namespace spate::storage

#endif  // SPATE_STORAGE_TEST_UTIL_H_
