// Throwaway certificates for TLS tests: runs tools/gen-test-certs.sh (a
// `data` dependency of the test) into a fresh temporary directory, giving
// a CA (ca.pem) and node, client and alice certificates signed by it.
// Two calls give two unrelated CAs.
//
// Threading: any thread (runs a child process).
#ifndef SPATE_TESTS_TESTING_CERTS_H_
#define SPATE_TESTS_TESTING_CERTS_H_

#include <string>

namespace spate::testing {

// Makes the CA `ca_name` and its certificates; returns the directory, or
// the empty string when the script failed.
std::string MakeCerts(const std::string& ca_name);

// A TlsConfig text block `field { ... }` with `dir`'s node certificate and
// `ca_dir`'s CA (proto/config.proto).
std::string TlsConfigText(const std::string& field, const std::string& dir,
                          const std::string& ca_dir, bool require_client);

}  // namespace spate::testing

#endif  // SPATE_TESTS_TESTING_CERTS_H_
