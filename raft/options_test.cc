#include "raft/options.h"

#include "gtest/gtest.h"

namespace spate::raft {
namespace {

ReplicaOptions Valid() {
  ReplicaOptions options;
  options.id = 1;
  return options;
}

TEST(ReplicaOptionsTest, DefaultsWithAnIdAreValid) {
  EXPECT_TRUE(Valid().Validate().ok());
}

TEST(ReplicaOptionsTest, EachBadFieldIsNamed) {
  struct Case {
    void (*mutate)(ReplicaOptions*);
    const char* field;
  };
  const Case cases[] = {
      {[](ReplicaOptions* o) { o->id = kNoNode; }, "id"},
      {[](ReplicaOptions* o) { o->heartbeat_ticks = 0; }, "heartbeat_ticks"},
      {[](ReplicaOptions* o) { o->election_ticks = 1; }, "election_ticks"},
      {[](ReplicaOptions* o) { o->inflight_msgs_max = 0; },
       "inflight_msgs_max"},
      {[](ReplicaOptions* o) { o->append_bytes_max = 0; }, "append_bytes_max"},
      {[](ReplicaOptions* o) { o->inflight_bytes_max = 1; },
       "inflight_bytes_max"},
      {[](ReplicaOptions* o) { o->committed_bytes_max = 0; },
       "committed_bytes_max"},
      {[](ReplicaOptions* o) { o->uncommitted_bytes_max = 0; },
       "uncommitted_bytes_max"},
  };
  for (const Case& c : cases) {
    ReplicaOptions options = Valid();
    c.mutate(&options);
    absl::Status status = options.Validate();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.field;
    EXPECT_NE(status.message().find(c.field), absl::string_view::npos)
        << status;
  }
}

}  // namespace
}  // namespace spate::raft
