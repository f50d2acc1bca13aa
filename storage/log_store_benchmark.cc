// Group commit throughput of LogStore over RocksKv: each iteration stages
// 64 entries of 128 B for each of 8 groups into one WriteBatch and writes it
// with one fsync, as the event loop does once per cycle. Also the latency of
// one small synced write (the floor under every cycle), and the staging cost
// without disk (MemKv).
//
//   bazel run -c opt //storage:log_store_benchmark
#include <memory>
#include <string>
#include <vector>

#include "base/check.h"
#include "benchmark/benchmark.h"
#include "storage/log_store.h"
#include "storage/mem_kv.h"
#include "storage/rocks_kv.h"
#include "storage/test_util.h"

namespace spate::storage {
namespace {

constexpr int kGroups = 8;
constexpr int kEntriesPerGroup = 64;
constexpr size_t kEntryBytes = 128;
// Compact each group's log every this many cycles, as a host would after a
// snapshot, so that the log stays bounded during long runs.
constexpr int kCompactEveryCycles = 16;

std::unique_ptr<RocksKv> OpenRocks() {
  absl::StatusOr<std::unique_ptr<RocksKv>> kv =
      RocksKv::Open(MakeTempDir(), RocksKvOptions());
  CHECK_OK(kv.status());
  return std::move(kv).value();
}

// Runs cycles of (stage 8 x 64 entries, one write, OnPersisted) on `kv`.
void RunGroupCommit(benchmark::State& state, Kv* kv, bool sync) {
  std::vector<std::unique_ptr<LogStore>> stores;
  for (int g = 1; g <= kGroups; ++g) {
    absl::StatusOr<std::unique_ptr<LogStore>> store = LogStore::Open(kv, g);
    CHECK_OK(store.status());
    stores.push_back(std::move(store).value());
  }
  std::vector<raft::Entry> entries(kEntriesPerGroup);
  for (raft::Entry& entry : entries) {
    entry.set_term(1);
    entry.set_data(std::string(kEntryBytes, 'x'));
  }
  raft::HardState hard_state;
  hard_state.set_term(1);
  hard_state.set_vote(1);
  WriteBatch batch;
  int cycle = 0;
  for (auto _ : state) {
    ++cycle;
    for (const std::unique_ptr<LogStore>& store : stores) {
      const raft::Index first = store->LastIndex() + 1;
      for (int i = 0; i < kEntriesPerGroup; ++i)
        entries[i].set_index(first + i);
      hard_state.set_commit(first + kEntriesPerGroup - 1);
      CHECK_OK(store->Stage(hard_state, entries, std::nullopt, &batch));
      if (cycle % kCompactEveryCycles == 0) {
        raft::Snapshot snapshot;
        snapshot.mutable_metadata()->set_index(first - 1);
        snapshot.mutable_metadata()->set_term(1);
        snapshot.set_data("state");
        CHECK_OK(store->StageCompaction(snapshot, &batch));
      }
    }
    CHECK_OK(kv->Write(batch, sync));
    batch.Clear();
    for (const std::unique_ptr<LogStore>& store : stores) store->OnPersisted();
  }
  state.SetItemsProcessed(state.iterations() * kGroups * kEntriesPerGroup);
  state.SetBytesProcessed(state.iterations() * kGroups * kEntriesPerGroup *
                          kEntryBytes);
}

void BM_GroupCommitRocksSynced(benchmark::State& state) {
  std::unique_ptr<RocksKv> kv = OpenRocks();
  RunGroupCommit(state, kv.get(), /*sync=*/true);
}
BENCHMARK(BM_GroupCommitRocksSynced)->UseRealTime();

void BM_GroupCommitRocksUnsynced(benchmark::State& state) {
  std::unique_ptr<RocksKv> kv = OpenRocks();
  RunGroupCommit(state, kv.get(), /*sync=*/false);
}
BENCHMARK(BM_GroupCommitRocksUnsynced)->UseRealTime();

void BM_GroupCommitMemKv(benchmark::State& state) {
  MemKv kv;
  RunGroupCommit(state, &kv, /*sync=*/false);
}
BENCHMARK(BM_GroupCommitMemKv);

void BM_SyncedWriteLatency(benchmark::State& state) {
  std::unique_ptr<RocksKv> kv = OpenRocks();
  WriteBatch batch;
  batch.Put(Space::kRaftState, "hard-state", std::string(32, 'h'));
  for (auto _ : state) CHECK_OK(kv->Write(batch, /*sync=*/true));
}
BENCHMARK(BM_SyncedWriteLatency)->UseRealTime();

}  // namespace
}  // namespace spate::storage
