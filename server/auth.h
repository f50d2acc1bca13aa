// Client authentication and channel authorization (docs/security.md).
//
// Authentication: every client-facing RPC (Streaming, Admin, SnapshotSource)
// calls Authenticator::Authenticate at its top. Credentials travel as gRPC
// metadata on every call, in the standard `authorization` header:
//   "Bearer <token>"                     a static token of a user, or the
//                                        cluster token (node traffic);
//   "Basic base64(<user>:<password>)"    a user with a bcrypt hash;
// or, with none of these, the verified client certificate's subject common
// name (mTLS on the client listener) naming a user. Failures are
// UNAUTHENTICATED with a fixed message that tells a guesser nothing.
//
// Forwarded requests: a node that forwards a request (server/forwarder.h)
// to another node's client listener authenticates with the cluster token
// and is "node traffic": it may do anything, because the edge node that
// took the client's call authenticated and authorized it there, once.
//
// Authorization: per user, channel patterns for publish and for subscribe
// with NATS subject rules on '.'-separated tokens (`*` one token, `>` one or
// more trailing tokens), and an `admin` flag for Admin RPCs. A decision per
// (user, channel) is cached in a bounded hash map, so the publish hot path
// costs a hash lookup, not a pattern walk.
//
// Password checks use libcrypt's bcrypt (`$2b$`), deliberately slow; a
// verified (user, password) pair is remembered by its SHA-256 so that a
// client sending Basic credentials on every RPC pays bcrypt once.
//
// Threading: immutable after Create except the internal caches, which are
// mutex-guarded; Authenticate and the checks run on any gRPC thread.
#ifndef SPATE_SERVER_AUTH_H_
#define SPATE_SERVER_AUTH_H_

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "proto/config.pb.h"
#include "server/channel_limits.h"  // ChannelPatternMatches

namespace spate::server {

inline constexpr char kAuthorizationMetadataKey[] = "authorization";

// A set of channel patterns with a bounded decision cache.
class ChannelPermissions {
 public:
  explicit ChannelPermissions(std::vector<std::string> patterns);
  bool Allows(absl::string_view channel) const;

 private:
  static constexpr size_t kCacheEntriesMax = 16384;
  const std::vector<std::string> patterns_;
  const bool all_;  // a lone ">" pattern: everything, no cache needed
  mutable absl::Mutex mu_;
  mutable absl::flat_hash_map<std::string, bool> cache_ ABSL_GUARDED_BY(mu_);
};

// Who is calling, and what they may do.
class Principal {
 public:
  // Everything allowed: auth off, or node traffic.
  static const Principal* Unrestricted();

  Principal(std::string name, const UserConfig& user);

  const std::string& name() const { return name_; }
  // PERMISSION_DENIED naming the channel when not allowed.
  absl::Status CheckPublish(absl::string_view channel) const;
  absl::Status CheckSubscribe(absl::string_view channel) const;
  absl::Status CheckAdmin() const;

 private:
  Principal();
  std::string name_;
  bool unrestricted_ = false;
  bool admin_ = false;
  ChannelPermissions publish_;
  ChannelPermissions subscribe_;
};

class Authenticator {
 public:
  // InvalidArgument naming the field for a bad config (duplicate user, a
  // password hash that is not bcrypt, a token used twice, ...).
  static absl::StatusOr<std::unique_ptr<Authenticator>> Create(
      const AuthConfig& config);

  // The caller's principal (Principal::Unrestricted() when auth is off), or
  // UNAUTHENTICATED.
  absl::StatusOr<const Principal*> Authenticate(
      const grpc::ServerContextBase& context) const;

  bool enabled() const { return enabled_; }

 private:
  Authenticator() = default;
  absl::StatusOr<const Principal*> CheckPassword(
      absl::string_view user, absl::string_view password) const;

  bool enabled_ = false;
  absl::flat_hash_map<std::string, std::unique_ptr<Principal>> users_;
  absl::flat_hash_map<std::string, std::string> password_hashes_;
  // SHA-256 of a token → its principal (the cluster token → Unrestricted).
  absl::flat_hash_map<std::string, const Principal*> tokens_;
  mutable absl::Mutex mu_;
  // SHA-256 of (user, password) pairs that passed bcrypt.
  mutable absl::flat_hash_map<std::string, const Principal*> verified_
      ABSL_GUARDED_BY(mu_);
};

// The value of the `authorization` header for a token / a user+password
// (client side: client library, CLI, forwarder).
std::string BearerAuthorization(absl::string_view token);
std::string BasicAuthorization(absl::string_view user,
                               absl::string_view password);

// A bcrypt ($2b$) hash of `password` with 2^cost rounds (4..31), for
// config files and tests. Internal error if libcrypt fails.
absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost);

}  // namespace spate::server

#endif  // SPATE_SERVER_AUTH_H_
