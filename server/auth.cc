#include "server/auth.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cstring>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/check.h"

namespace spate::server {
namespace {

// One message for every failure, so that a guesser learns nothing (which
// user exists, whether the token or the password was wrong).
absl::Status Unauthenticated() {
  return absl::UnauthenticatedError("authentication failed");
}

std::string Sha256(absl::string_view a, absl::string_view b = {}) {
  // `a` NUL `b`: user names cannot contain NUL, so pairs cannot collide.
  const std::string input = absl::StrCat(a, absl::string_view("\0", 1), b);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  CHECK(EVP_Digest(input.data(), input.size(), digest, &length, EVP_sha256(),
                   nullptr) == 1);
  return std::string(reinterpret_cast<const char*>(digest), length);
}

bool IsBcrypt(absl::string_view hash) {
  return absl::StartsWith(hash, "$2b$") || absl::StartsWith(hash, "$2a$") ||
         absl::StartsWith(hash, "$2y$");
}

// bcrypt of `password` with the salt and cost in `hash`, compared with
// `hash` in constant time.
bool BcryptMatches(absl::string_view password, const std::string& hash) {
  if (password.find('\0') != absl::string_view::npos) return false;
  const std::string phrase(password);
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_rn(phrase.c_str(), hash.c_str(), data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr) return false;
  const size_t n = std::strlen(out);
  return n == hash.size() && CRYPTO_memcmp(out, hash.data(), n) == 0;
}

absl::Status ValidatePatterns(
    const google::protobuf::RepeatedPtrField<std::string>& patterns,
    const std::string& field) {
  for (const std::string& pattern : patterns) {
    if (absl::Status status = ValidateChannelPattern(pattern); !status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ": ", status.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace

ChannelPermissions::ChannelPermissions(std::vector<std::string> patterns)
    : patterns_(std::move(patterns)),
      all_(patterns_.size() == 1 && patterns_[0] == ">") {}

bool ChannelPermissions::Allows(absl::string_view channel) const {
  if (all_) return true;
  if (patterns_.empty()) return false;
  absl::MutexLock lock(&mu_);
  auto it = cache_.find(channel);
  if (it != cache_.end()) return it->second;
  bool allowed = false;
  for (const std::string& pattern : patterns_) {
    if (ChannelPatternMatches(pattern, channel)) {
      allowed = true;
      break;
    }
  }
  // Bounded: a client naming endless channels resets the cache instead of
  // growing it.
  if (cache_.size() >= kCacheEntriesMax) cache_.clear();
  cache_.emplace(std::string(channel), allowed);
  return allowed;
}

Principal::Principal()
    : unrestricted_(true), admin_(true), publish_({">"}), subscribe_({">"}) {}

Principal::Principal(std::string name, const UserConfig& user)
    : name_(std::move(name)),
      admin_(user.admin()),
      publish_({user.publish().begin(), user.publish().end()}),
      subscribe_({user.subscribe().begin(), user.subscribe().end()}) {}

const Principal* Principal::Unrestricted() {
  static const Principal* const kUnrestricted = new Principal();
  return kUnrestricted;
}

absl::Status Principal::CheckPublish(absl::string_view channel) const {
  if (unrestricted_ || publish_.Allows(channel)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("not allowed to publish to ", channel));
}

absl::Status Principal::CheckSubscribe(absl::string_view channel) const {
  if (unrestricted_ || subscribe_.Allows(channel)) return absl::OkStatus();
  return absl::PermissionDeniedError(
      absl::StrCat("not allowed to subscribe to ", channel));
}

absl::Status Principal::CheckAdmin() const {
  if (admin_) return absl::OkStatus();
  return absl::PermissionDeniedError("admin permission required");
}

absl::StatusOr<std::unique_ptr<Authenticator>> Authenticator::Create(
    const AuthConfig& config) {
  std::unique_ptr<Authenticator> auth(new Authenticator());
  auth->enabled_ = config.enabled();
  for (int i = 0; i < config.users_size(); ++i) {
    const UserConfig& user = config.users(i);
    const std::string field = absl::StrCat("auth.users[", i, "]");
    if (user.name().empty()) {
      return absl::InvalidArgumentError(absl::StrCat(field, ".name: empty"));
    }
    if (auth->users_.contains(user.name())) {
      return absl::InvalidArgumentError(
          absl::StrCat(field, ".name: duplicate user ", user.name()));
    }
    if (!user.password_hash().empty()) {
      if (!IsBcrypt(user.password_hash())) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".password_hash: not a bcrypt hash ($2b$...)"));
      }
      auth->password_hashes_[user.name()] = user.password_hash();
    }
    if (absl::Status s =
            ValidatePatterns(user.publish(), absl::StrCat(field, ".publish"));
        !s.ok()) {
      return s;
    }
    if (absl::Status s = ValidatePatterns(user.subscribe(),
                                          absl::StrCat(field, ".subscribe"));
        !s.ok()) {
      return s;
    }
    auto principal = std::make_unique<Principal>(user.name(), user);
    for (const std::string& token : user.tokens()) {
      if (token.empty() ||
          !auth->tokens_.emplace(Sha256(token), principal.get()).second) {
        return absl::InvalidArgumentError(
            absl::StrCat(field, ".tokens: empty or used twice"));
      }
    }
    auth->users_[user.name()] = std::move(principal);
  }
  if (!config.cluster_token().empty() &&
      !auth->tokens_
           .emplace(Sha256(config.cluster_token()), Principal::Unrestricted())
           .second) {
    return absl::InvalidArgumentError(
        "auth.cluster_token: also used as a user's token");
  }
  return auth;
}

absl::StatusOr<const Principal*> Authenticator::Authenticate(
    const grpc::ServerContextBase& context) const {
  if (!enabled_) return Principal::Unrestricted();
  const auto& metadata = context.client_metadata();
  auto it = metadata.find(kAuthorizationMetadataKey);
  if (it != metadata.end()) {
    const absl::string_view value(it->second.data(), it->second.size());
    if (absl::StartsWith(value, "Bearer ")) {
      auto token = tokens_.find(Sha256(value.substr(7)));
      if (token == tokens_.end()) return Unauthenticated();
      return token->second;
    }
    if (absl::StartsWith(value, "Basic ")) {
      std::string decoded;
      if (!absl::Base64Unescape(value.substr(6), &decoded)) {
        return Unauthenticated();
      }
      const size_t colon = decoded.find(':');
      if (colon == std::string::npos) return Unauthenticated();
      return CheckPassword(absl::string_view(decoded).substr(0, colon),
                           absl::string_view(decoded).substr(colon + 1));
    }
    return Unauthenticated();
  }
  // A client certificate verified by the listener (client_tls with a CA)
  // whose common name is a user.
  std::shared_ptr<const grpc::AuthContext> auth_context =
      context.auth_context();
  if (auth_context != nullptr && auth_context->IsPeerAuthenticated()) {
    for (const grpc::string_ref& cn :
         auth_context->FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
      auto user = users_.find(absl::string_view(cn.data(), cn.size()));
      if (user != users_.end()) return user->second.get();
    }
  }
  return Unauthenticated();
}

absl::StatusOr<const Principal*> Authenticator::CheckPassword(
    absl::string_view user, absl::string_view password) const {
  const std::string key = Sha256(user, password);
  {
    absl::MutexLock lock(&mu_);
    auto it = verified_.find(key);
    if (it != verified_.end()) return it->second;
  }
  auto hash = password_hashes_.find(user);
  if (hash == password_hashes_.end() ||
      !BcryptMatches(password, hash->second)) {
    return Unauthenticated();
  }
  const Principal* principal = users_.find(user)->second.get();
  absl::MutexLock lock(&mu_);
  // Bounded like the permission caches; only successful logins get here.
  if (verified_.size() >= 4096) verified_.clear();
  verified_[key] = principal;
  return principal;
}

std::string BearerAuthorization(absl::string_view token) {
  return absl::StrCat("Bearer ", token);
}

std::string BasicAuthorization(absl::string_view user,
                               absl::string_view password) {
  return absl::StrCat("Basic ",
                      absl::Base64Escape(absl::StrCat(user, ":", password)));
}

absl::StatusOr<std::string> HashPassword(absl::string_view password, int cost) {
  char salt[CRYPT_GENSALT_OUTPUT_SIZE];
  if (crypt_gensalt_rn("$2b$", static_cast<unsigned long>(cost), nullptr, 0,
                       salt, sizeof(salt)) == nullptr) {
    return absl::InternalError("crypt_gensalt_rn failed");
  }
  const std::string phrase(password);
  auto data = std::make_unique<crypt_data>();
  std::memset(data.get(), 0, sizeof(crypt_data));
  const char* out = crypt_rn(phrase.c_str(), salt, data.get(),
                             static_cast<int>(sizeof(crypt_data)));
  if (out == nullptr || out[0] == '*') {
    return absl::InternalError("bcrypt failed");
  }
  return std::string(out);
}

}  // namespace spate::server
