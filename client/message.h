// Message: one delivered message as a subscription's MessageHandler sees
// it. A cheap-to-move value wrapping the MsgProto from the wire; it may be
// copied and kept after the handler returns, and Ack() may be called from
// any thread (it forwards to the subscription if that still exists).
#ifndef SPATE_CLIENT_MESSAGE_H_
#define SPATE_CLIENT_MESSAGE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/streaming.pb.h"

namespace spate::client {

// Where Message::Ack goes; implemented by the subscription stream.
class AckSink {
 public:
  virtual ~AckSink() = default;
  // Manual ack of `sequence`; FailedPrecondition for auto-ack
  // subscriptions and after the subscription ended.
  virtual absl::Status Ack(uint64_t sequence) = 0;
};

class Message {
 public:
  Message(MsgProto proto, std::weak_ptr<AckSink> sink)
      : proto_(std::move(proto)), sink_(std::move(sink)) {}

  uint64_t sequence() const { return proto_.sequence(); }
  const std::string& subject() const { return proto_.subject(); }
  const std::string& reply() const { return proto_.reply(); }
  const std::string& data() const { return proto_.data(); }
  const google::protobuf::Map<std::string, std::string>& headers() const {
    return proto_.headers();
  }
  // When the publish was committed.
  absl::Time timestamp() const {
    return absl::FromUnixNanos(proto_.timestamp());
  }
  bool redelivered() const { return proto_.redelivered(); }
  uint32_t redelivery_count() const { return proto_.redelivery_count(); }
  // CRC-32 (zlib) of data() as computed by the server when it stored it.
  uint32_t crc32() const { return proto_.crc32(); }
  const MsgProto& proto() const { return proto_; }

  // Acks this message (manual-ack subscriptions only).
  absl::Status Ack() const;

 private:
  MsgProto proto_;
  std::weak_ptr<AckSink> sink_;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_MESSAGE_H_
