// Micro-benchmarks of the raft core, in memory (MemoryLog, no fsync, no
// network): how many proposals a 3-replica group commits per second when the
// host batches 1 or 64 proposals per Ready cycle, and what one Step costs on
// the hot paths (a follower taking an append, a leader taking an ack, a
// follower taking a heartbeat).
//   bazel run -c opt //raft:replica_benchmark
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "raft/replica.h"
#include "raft/testing/memory_log.h"

namespace spate::raft {
namespace {

using testing::MemoryLog;

constexpr size_t kEntryBytes = 128;
// Compact the in-memory logs every so many entries to bound memory.
constexpr Index kCompactEvery = 1 << 16;

ConfState Voters(int n) {
  ConfState cs;
  for (int i = 1; i <= n; ++i) cs.add_voters(i);
  return cs;
}

// Three replicas wired together in memory; Pump() plays the hosts.
class Group {
 public:
  explicit Group(int n) {
    for (int i = 1; i <= n; ++i) {
      logs_[i] = std::make_unique<MemoryLog>(Voters(n));
      ReplicaOptions options;
      options.id = i;
      options.group = 1;
      replicas_[i] = *Replica::Create(options, logs_[i].get());
    }
    if (!replicas_[1]->Campaign().ok()) std::abort();
    Pump();
  }

  Replica& leader() { return *replicas_[1]; }
  MemoryLog& log(NodeId id) { return *logs_[id]; }

  // The host's work for one Ready of `id`, dropping its messages.
  void ProcessOne(NodeId id) {
    Ready ready = replicas_[id]->TakeReady();
    if (!logs_[id]->Persist(ready).ok()) std::abort();
    if (!ready.committed_entries.empty()) {
      applied_[id] = ready.committed_entries.back().index();
    }
    replicas_[id]->Advance(ready);
    MaybeCompact();
  }

  // Runs Ready cycles and deliveries until the network is quiet.
  void Pump() {
    for (bool busy = true; busy;) {
      busy = false;
      for (auto& [id, replica] : replicas_) {
        while (replica->HasReady()) {
          Ready ready = replica->TakeReady();
          if (!logs_[id]->Persist(ready).ok()) std::abort();
          for (Message& m : ready.messages) inbox_.push_back(std::move(m));
          if (!ready.committed_entries.empty()) {
            applied_[id] = ready.committed_entries.back().index();
          }
          replica->Advance(ready);
          busy = true;
        }
      }
      std::vector<Message> batch;
      batch.swap(inbox_);
      for (const Message& m : batch) {
        if (!replicas_[m.to()]->Step(m).ok()) std::abort();
        busy = true;
      }
    }
    MaybeCompact();
  }

 private:
  void MaybeCompact() {
    for (auto& [id, log] : logs_) {
      const Index applied = applied_[id];
      if (applied >= log->FirstIndex() + kCompactEvery) {
        if (!log->Compact(applied, "", log->conf_state()).ok()) std::abort();
      }
    }
  }

  std::map<NodeId, std::unique_ptr<MemoryLog>> logs_;
  std::map<NodeId, std::unique_ptr<Replica>> replicas_;
  std::map<NodeId, Index> applied_;
  std::vector<Message> inbox_;
};

// Proposals committed (and applied on every replica) per second; the
// argument is the number of proposals per Ready cycle.
void BM_Commit3Replicas(benchmark::State& state) {
  const int batch = static_cast<int>(state.range(0));
  Group group(3);
  const std::string payload(kEntryBytes, 'p');
  for (auto _ : state) {
    for (int i = 0; i < batch; ++i) {
      if (!group.leader().Propose(payload).ok()) std::abort();
    }
    group.Pump();
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetBytesProcessed(state.iterations() * batch * kEntryBytes);
}
BENCHMARK(BM_Commit3Replicas)->Arg(1)->Arg(64);

// A follower's Step of one AppendEntries carrying one 128-byte entry (the
// host's Ready cycle runs every 64 steps, outside the timing).
void BM_FollowerStepAppend(benchmark::State& state) {
  MemoryLog log(Voters(3));
  ReplicaOptions options;
  options.id = 2;
  options.group = 1;
  auto replica = *Replica::Create(options, &log);
  Message m;
  m.set_type(MSG_APPEND);
  m.set_group(1);
  m.set_from(1);
  m.set_to(2);
  m.set_term(1);
  Entry* e = m.add_entries();
  e->set_term(1);
  e->set_data(std::string(kEntryBytes, 'p'));
  Index next = 1;
  for (auto _ : state) {
    m.set_index(next - 1);
    m.set_log_term(next == 1 ? 0 : 1);
    m.set_commit(next - 1);
    e->set_index(next);
    if (!replica->Step(m).ok()) std::abort();
    if (++next % 64 == 0) {
      state.PauseTiming();
      Ready ready = replica->TakeReady();
      if (!log.Persist(ready).ok()) std::abort();
      replica->Advance(ready);
      if (next % kCompactEvery == 0) {
        const Index applied = replica->log().applied();
        if (!log.Compact(applied, "", log.conf_state()).ok()) std::abort();
      }
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FollowerStepAppend);

// A follower's Step of one heartbeat (the steady state of an idle group).
void BM_FollowerStepHeartbeat(benchmark::State& state) {
  MemoryLog log(Voters(3));
  ReplicaOptions options;
  options.id = 2;
  options.group = 1;
  auto replica = *Replica::Create(options, &log);
  Message m;
  m.set_type(MSG_HEARTBEAT);
  m.set_group(1);
  m.set_from(1);
  m.set_to(2);
  m.set_term(1);
  int n = 0;
  for (auto _ : state) {
    if (!replica->Step(m).ok()) std::abort();
    if (++n % 64 == 0) {
      state.PauseTiming();
      Ready ready = replica->TakeReady();
      if (!log.Persist(ready).ok()) std::abort();
      replica->Advance(ready);
      state.ResumeTiming();
    }
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_FollowerStepHeartbeat);

// A leader's Step of one acknowledgement that commits one entry (leader and
// follower 2 make the quorum; 3 is silent). Proposing, persisting and
// applying run outside the timing.
void BM_LeaderStepAppendResponse(benchmark::State& state) {
  Group group(3);
  Replica& leader = group.leader();
  const std::string payload(kEntryBytes, 'p');
  Message ack;
  ack.set_type(MSG_APPEND_RESPONSE);
  ack.set_group(1);
  ack.set_from(2);
  ack.set_to(1);
  ack.set_term(leader.term());
  for (auto _ : state) {
    state.PauseTiming();
    if (!leader.Propose(payload).ok()) std::abort();
    group.ProcessOne(1);
    ack.set_index(leader.log().LastIndex());
    state.ResumeTiming();
    if (!leader.Step(ack).ok()) std::abort();
    state.PauseTiming();
    group.ProcessOne(1);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_LeaderStepAppendResponse);

}  // namespace
}  // namespace spate::raft
