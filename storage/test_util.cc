#include "storage/test_util.h"

#include <stdlib.h>

#include <cerrno>
#include <cstring>

#include "base/check.h"

namespace spate::storage {

std::string MakeTempDir() {
  const char* root = getenv("TEST_TMPDIR");
  std::string pattern =
      std::string(root != nullptr && *root != '\0' ? root : "/tmp") +
      "/spate_storage_XXXXXX";
  CHECK(mkdtemp(pattern.data()) != nullptr)
      << "mkdtemp " << pattern << ": " << strerror(errno);
  return pattern;
}

}  // namespace spate::storage
