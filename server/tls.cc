#include "server/tls.h"

#include <algorithm>
#include <climits>
#include <cstdint>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "server/auth.h"

namespace spate::server {
namespace {

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    const char* field) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": cannot read ", path));
  }
  std::stringstream contents;
  contents << in.rdbuf();
  if (contents.str().find("-----BEGIN") == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", path, " is not a PEM file"));
  }
  return contents.str();
}

}  // namespace

bool TlsEnabled(const TlsConfig& tls) { return !tls.cert_file().empty(); }

absl::Status ValidateTlsConfig(const TlsConfig& tls, const std::string& field) {
  if (!TlsEnabled(tls)) {
    if (!tls.key_file().empty() || tls.require_client_cert()) {
      return absl::InvalidArgumentError(
          absl::StrCat(field,
                       ".cert_file: required with key_file or "
                       "require_client_cert"));
    }
    return absl::OkStatus();
  }
  if (tls.key_file().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".key_file: required with cert_file"));
  }
  if (tls.require_client_cert() && tls.ca_file().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ".ca_file: required with require_client_cert"));
  }
  const std::string cert_field = absl::StrCat(field, ".cert_file");
  const std::string key_field = absl::StrCat(field, ".key_file");
  const std::string ca_field = absl::StrCat(field, ".ca_file");
  if (absl::StatusOr<std::string> pem =
          ReadPem(tls.cert_file(), cert_field.c_str());
      !pem.ok()) {
    return pem.status();
  }
  if (absl::StatusOr<std::string> pem =
          ReadPem(tls.key_file(), key_field.c_str());
      !pem.ok()) {
    return pem.status();
  }
  if (!tls.ca_file().empty()) {
    if (absl::StatusOr<std::string> pem =
            ReadPem(tls.ca_file(), ca_field.c_str());
        !pem.ok()) {
      return pem.status();
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ServerCredentialsFor(
    const TlsConfig& tls) {
  if (!TlsEnabled(tls)) return grpc::InsecureServerCredentials();
  absl::StatusOr<std::string> cert = ReadPem(tls.cert_file(), "cert_file");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(tls.key_file(), "key_file");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions options(
      tls.require_client_cert()
          ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
          : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  if (!tls.ca_file().empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca_file(), "ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
    // With a CA but without require_client_cert, a client certificate is
    // optional but verified when presented (certificate users, auth).
    if (!tls.require_client_cert()) {
      options.client_certificate_request =
          GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
    }
  }
  options.pem_key_cert_pairs.push_back({*key, *cert});
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> ChannelCredentialsFor(
    const TlsConfig& tls) {
  if (!TlsEnabled(tls) && tls.ca_file().empty()) {
    return grpc::InsecureChannelCredentials();
  }
  grpc::SslCredentialsOptions options;
  if (!tls.ca_file().empty()) {
    absl::StatusOr<std::string> ca = ReadPem(tls.ca_file(), "ca_file");
    if (!ca.ok()) return ca.status();
    options.pem_root_certs = *ca;
  }
  if (TlsEnabled(tls)) {
    absl::StatusOr<std::string> cert = ReadPem(tls.cert_file(), "cert_file");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPem(tls.key_file(), "key_file");
    if (!key.ok()) return key.status();
    options.pem_cert_chain = *cert;
    options.pem_private_key = *key;
  }
  return grpc::SslCredentials(options);
}

void AddTlsChannelArguments(const TlsConfig& tls,
                            grpc::ChannelArguments* args) {
  if (!tls.server_name_override().empty()) {
    args->SetSslTargetNameOverride(tls.server_name_override());
  }
}

std::shared_ptr<grpc::Channel> ClientLinkOptions::Dial(
    const std::string& address) const {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(max_message_bytes);
  args.SetMaxSendMessageSize(max_message_bytes);
  if (!server_name_override.empty()) {
    args.SetSslTargetNameOverride(server_name_override);
  }
  return grpc::CreateCustomChannel(
      address,
      credentials != nullptr ? credentials : grpc::InsecureChannelCredentials(),
      args);
}

void ClientLinkOptions::Prepare(grpc::ClientContext* context) const {
  if (!authorization.empty()) {
    context->AddMetadata(kAuthorizationMetadataKey, authorization);
  }
}

absl::StatusOr<ClientLinkOptions> ClientLinkOptionsFor(
    const ServerConfig& config) {
  ClientLinkOptions link;
  const TlsConfig& tls = config.client_tls();
  if (TlsEnabled(tls)) {
    absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> credentials =
        ChannelCredentialsFor(tls);
    if (!credentials.ok()) return credentials.status();
    link.credentials = *std::move(credentials);
    link.server_name_override = tls.server_name_override();
  }
  if (!config.auth().cluster_token().empty()) {
    link.authorization = BearerAuthorization(config.auth().cluster_token());
  }
  // Deliveries relayed from a leader are bounded by its max_pending_bytes,
  // publishes by max_payload_bytes; both plus framing.
  link.max_message_bytes = static_cast<int>(std::min<int64_t>(
      INT32_MAX, std::max(config.store().max_payload_bytes(),
                          config.subscriptions().max_pending_bytes()) +
                     (int64_t{4} << 20)));
  return link;
}

}  // namespace spate::server
