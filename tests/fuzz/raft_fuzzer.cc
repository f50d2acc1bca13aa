// Fuzz target: the raft core (raft/replica.h) handling arbitrary messages,
// ticks and proposals, as a member of a 3-voter group would receive them
// from its transport. Step must refuse malformed messages with a Status
// (raft/message_check.h) and never crash; after every Ready the host
// persists, CheckInvariants (raft/invariants.h) must hold.
//
// Input: records (tests/fuzz/fuzz_input.h). Selector low 3 bits: 0 tick,
// 1 propose the bytes, 2 campaign, 3 process the Ready, otherwise step the
// bytes as a raft::Message. Selector bit 0x10 fixes the message's group and
// addressee (and bit 0x20 picks peer 2 or 3 as the sender) so that most
// messages get past the addressing checks into the role logic.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "base/check.h"
#include "proto/raft.pb.h"
#include "raft/invariants.h"
#include "raft/options.h"
#include "raft/ready.h"
#include "raft/replica.h"
#include "raft/testing/memory_log.h"
#include "tests/fuzz/fuzz_input.h"

namespace spate::fuzz {
namespace {

constexpr raft::GroupId kGroup = 7;
constexpr raft::NodeId kSelf = 1;

class RaftHarness {
 public:
  RaftHarness() : log_(Voters()) {
    raft::ReplicaOptions options;
    options.id = kSelf;
    options.group = kGroup;
    options.seed = 1;
    options.election_ticks = 4;
    options.heartbeat_ticks = 1;
    absl::StatusOr<std::unique_ptr<raft::Replica>> replica =
        raft::Replica::Create(options, &log_);
    CHECK_OK(replica.status());
    replica_ = *std::move(replica);
  }

  void Tick() { replica_->Tick(); }
  void Propose(absl::string_view bytes) {
    replica_->Propose(std::string(bytes)).status().IgnoreError();  // refusals
  }
  void Campaign() { replica_->Campaign().IgnoreError(); }  // may be refused

  void Step(uint8_t selector, absl::string_view bytes) {
    raft::Message message;
    if (!message.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
      return;
    }
    if (selector & 0x10) {
      message.set_group(kGroup);
      message.set_to(kSelf);
      message.set_from((selector & 0x20) ? 3 : 2);
    }
    // A refused message is the expected outcome for most inputs.
    replica_->Step(message).IgnoreError();
  }

  // The host's Ready loop (server/raft_group.cc does the same with
  // RocksDB): persist, apply conf changes, advance, check invariants.
  void Process() {
    for (int i = 0; i < 8 && replica_->HasReady(); ++i) {
      raft::Ready ready = replica_->TakeReady();
      CHECK_OK(log_.Persist(ready));
      for (const raft::Entry& entry : ready.committed_entries) {
        if (entry.type() != raft::ENTRY_CONF_CHANGE) continue;
        raft::ConfChange change;
        if (!change.ParseFromString(entry.data())) continue;
        absl::StatusOr<raft::ConfState> cs = replica_->ApplyConfChange(change);
        if (cs.ok()) log_.SetConfState(*cs);
      }
      replica_->Advance(ready);
      CHECK_OK(raft::CheckInvariants(*replica_));
    }
  }

 private:
  static raft::ConfState Voters() {
    raft::ConfState cs;
    for (raft::NodeId id : {1, 2, 3}) cs.add_voters(id);
    return cs;
  }

  raft::testing::MemoryLog log_;
  std::unique_ptr<raft::Replica> replica_;
};

}  // namespace
}  // namespace spate::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  spate::fuzz::QuietProtobufLogs();
  spate::fuzz::RaftHarness harness;
  spate::fuzz::FuzzInput input(data, size);
  spate::fuzz::FuzzRecord record;
  int steps = 0;
  while (input.Next(&record) && steps++ < 128) {
    switch (record.selector & 0x7) {
      case 0:
        harness.Tick();
        break;
      case 1:
        harness.Propose(record.bytes);
        break;
      case 2:
        harness.Campaign();
        break;
      case 3:
        harness.Process();
        break;
      default:
        harness.Step(record.selector, record.bytes);
        break;
    }
  }
  harness.Process();
  return 0;
}
