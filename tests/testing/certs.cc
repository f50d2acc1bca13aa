#include "tests/testing/certs.h"

#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "tests/testing/server_process.h"

namespace spate::testing {

std::string MakeCerts(const std::string& ca_name) {
  const std::string dir = ServerProcess::NewTempDir(ca_name);
  const char* srcdir = getenv("TEST_SRCDIR");
  const char* workspace = getenv("TEST_WORKSPACE");
  const std::string script =
      absl::StrCat(srcdir ? srcdir : ".", "/", workspace ? workspace : "spate",
                   "/tools/gen-test-certs.sh");
  const std::string command =
      absl::StrCat(script, " ", dir, " ", ca_name, " > /dev/null");
  if (std::system(command.c_str()) != 0) return "";
  return dir;
}

std::string TlsConfigText(const std::string& field, const std::string& dir,
                          const std::string& ca_dir, bool require_client) {
  return absl::StrCat(
      field, " { cert_file: \"", dir, "/node.pem\" key_file: \"", dir,
      "/node.key\" ca_file: \"", ca_dir, "/ca.pem\"",
      require_client ? " require_client_cert: true" : "", " }\n");
}

}  // namespace spate::testing
