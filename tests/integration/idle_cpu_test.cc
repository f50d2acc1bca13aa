// Idle cost of many channels (manual: `bazel test //tests/integration:
// idle_cpu_test --test_output=all`). Creates 1,000 channels on a 3-node
// cluster, waits until their raft groups are quiesced, then reports the
// CPU time all three server processes use over 30 s of idleness. It
// prints a measurement; it asserts only that the groups went quiet.
#include <unistd.h>

#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "proto/admin.grpc.pb.h"
#include "tests/testing/cluster.h"
#include "tests/testing/stream_client.h"

namespace spate::testing {
namespace {

// utime + stime of `pid`, in seconds.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string line;
  std::getline(in, line);
  // Fields after the command name (which is in parentheses).
  std::vector<std::string> fields =
      absl::StrSplit(line.substr(line.rfind(')') + 2), ' ');
  const double ticks = std::stod(fields[11]) + std::stod(fields[12]);
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int QuiescedGroups(const std::string& address, int* total) {
  auto stub = Admin::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
  ClusterStatusResponse status;
  if (!stub->ClusterStatus(&context, ClusterStatusRequest(), &status).ok()) {
    return -1;
  }
  int quiesced = 0;
  *total = status.groups_size();
  for (const GroupStatus& group : status.groups()) quiesced += group.quiesced();
  return quiesced;
}

TEST(IdleCpuTest, ThousandQuietChannels) {
  constexpr int kChannels = 1000;
  TestCluster cluster(3,
                      "clients { ping_interval_ms: 600000 } "
                      "store { max_channels: 5000 }");
  ASSERT_TRUE(cluster.Start().ok()) << cluster.Logs();
  TestConnection conn(cluster.client_address(1), "creator");
  absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (!conn.Connect().ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
  }
  for (int start = 0; start < kChannels; start += 100) {
    PubBatch batch;
    for (int i = start; i < start + 100; ++i) {
      PubMsg* msg = batch.add_msgs();
      *msg = conn.Msg(absl::StrCat("idle.", i), "hello");
    }
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    PubAckBatch acks;
    ASSERT_TRUE(conn.stub()->PublishBatch(&context, batch, &acks).ok());
    for (const PubAck& ack : acks.acks()) ASSERT_EQ(ack.error(), "");
  }

  // Wait for the groups to go quiet on every node.
  int quiesced = 0, total = 0;
  deadline = absl::Now() + absl::Seconds(60);
  while (absl::Now() < deadline) {
    quiesced = 0;
    int all = 0;
    for (int id = 1; id <= 3; ++id) {
      int groups = 0;
      quiesced +=
          std::max(0, QuiescedGroups(cluster.client_address(id), &groups));
      all += groups;
    }
    total = all;
    if (quiesced >= total - 3) break;  // metadata groups may stay awake
    absl::SleepFor(absl::Milliseconds(500));
  }
  std::cout << "quiesced groups: " << quiesced << " of " << total << "\n";
  EXPECT_GE(quiesced, 3 * kChannels * 99 / 100);

  double before[3], after[3];
  for (int id = 1; id <= 3; ++id)
    before[id - 1] = CpuSeconds(cluster.node(id).pid());
  const absl::Duration window = absl::Seconds(30);
  absl::SleepFor(window);
  double used = 0;
  for (int id = 1; id <= 3; ++id) {
    after[id - 1] = CpuSeconds(cluster.node(id).pid());
    const double seconds = after[id - 1] - before[id - 1];
    used += seconds;
    std::cout << "node " << id << ": " << seconds << " CPU s in "
              << absl::ToDoubleSeconds(window) << " s\n";
  }
  std::cout << "idle CPU of all three nodes with " << kChannels
            << " channels: " << 100.0 * used / absl::ToDoubleSeconds(window)
            << "% of one core\n";
  cluster.StopAll();
}

}  // namespace
}  // namespace spate::testing
