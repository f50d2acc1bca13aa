// What one established connection shares with its publisher and its
// subscriptions: the options, the gRPC channel and stub to the server that
// accepted the Connect, the client and connection ids, and the server's
// ConnectResponse. Created once by Connection::Connect and never changed
// afterwards, so any thread may read it without locking; holders keep it
// alive with a shared_ptr (a Subscription can outlive its Connection).
#ifndef SPATE_CLIENT_SESSION_H_
#define SPATE_CLIENT_SESSION_H_

#include <memory>
#include <string>

#include "client/options.h"
#include "grpcpp/channel.h"
#include "proto/streaming.grpc.pb.h"
#include "proto/streaming.pb.h"

namespace spate::client {

struct Session {
  ClientOptions options;
  // The "host:port" that accepted the Connect.
  std::string server;
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<Streaming::Stub> stub;
  // 16 random bytes naming this connection in every request.
  std::string conn_id;
  ConnectResponse info;

  const std::string& client_id() const { return options.client_id; }
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_SESSION_H_
