// Throughput of GrpcTransport between two transports in one process over
// loopback: AppendEntries messages carrying one 128-byte entry each, sent in
// batches of 1 (one Send per message) or 64 (what a busy loop iteration
// produces for a peer).
//
// Second argument, the window: how many sent messages may be unreceived.
// 16384 lets Sends pile up while frames are on the wire (the transport
// coalesces them; raft's inflight limits bound a real backlog the same way,
// so Send never drops here). A window equal to the batch is lockstep: each
// Send waits until the previous batch arrived, so every batch is its own
// frame and the time per iteration is one frame's round trip through both
// transports.
//
// Reports messages/s (items), wire MB/s (bytes) and messages per frame.
//   bazel run //server:grpc_transport_benchmark
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "base/check.h"
#include "benchmark/benchmark.h"
#include "server/grpc_transport.h"

namespace spate::server {
namespace {

raft::Message Append(uint64_t index) {
  raft::Message message;
  message.set_type(raft::MSG_APPEND);
  message.set_group(index % 1000 + 1);
  message.set_from(1);
  message.set_to(2);
  message.set_term(3);
  message.set_log_term(3);
  message.set_index(index);
  message.set_commit(index);
  raft::Entry* entry = message.add_entries();
  entry->set_term(3);
  entry->set_index(index + 1);
  entry->set_data(std::string(128, 'p'));
  return message;
}

void BM_SendAppends(benchmark::State& state) {
  const int batch_size = static_cast<int>(state.range(0));
  const int64_t window = state.range(1);
  std::atomic<int64_t> received{0};
  auto count = [&](raft::NodeId, std::vector<raft::Message> messages) {
    received.fetch_add(static_cast<int64_t>(messages.size()),
                       std::memory_order_relaxed);
  };
  GrpcTransportOptions options1;
  options1.cluster_name = "bench";
  options1.node_id = 1;
  options1.listen_address = "127.0.0.1:0";
  GrpcTransportOptions options2 = options1;
  options2.node_id = 2;
  auto t1 = GrpcTransport::Start(options1, count);
  CHECK_OK(t1.status());
  options2.peers[1] = (*t1)->bound_address();
  auto t2 = GrpcTransport::Start(options2, count);
  CHECK_OK(t2.status());
  CHECK_OK((*t1)->SetPeers({{2, (*t2)->bound_address()}}));
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!(*t1)->PeerReachable(2)) {
    CHECK(absl::Now() < deadline) << "peer never reachable";
    absl::SleepFor(absl::Milliseconds(1));
  }

  // Each message is a copy of one prototype, so the loop measures the
  // transport plus one proto copy per message (the node moves its own in).
  const raft::Message prototype = Append(1);
  int64_t sent = 0;
  for (auto _ : state) {
    while (sent + batch_size - received.load(std::memory_order_relaxed) >
           window) {
      std::this_thread::yield();
    }
    std::vector<raft::Message> batch(batch_size, prototype);
    CHECK((*t1)->Send(2, std::move(batch))) << "dropped";
    sent += batch_size;
  }
  while (received.load() < sent) std::this_thread::yield();
  const TransportStats stats = (*t1)->Stats();
  const PeerStats& peer = stats.peers.at(2);
  state.SetItemsProcessed(sent);
  state.SetBytesProcessed(static_cast<int64_t>(peer.bytes_sent));
  state.counters["msgs_per_frame"] = static_cast<double>(peer.messages_sent) /
                                     static_cast<double>(peer.batches_sent);
  (*t1)->Shutdown();
  (*t2)->Shutdown();
}
BENCHMARK(BM_SendAppends)
    ->ArgNames({"batch", "window"})
    ->Args({1, 16384})
    ->Args({64, 16384})
    ->Args({1, 1})
    ->Args({64, 64})
    ->UseRealTime();

}  // namespace
}  // namespace spate::server
