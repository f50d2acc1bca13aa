// Gathers the cluster's state for `spate cluster status`, `spate channels`
// and `spate channel info`: asks Admin.ClusterStatus of every --server
// address and of every node an answer lists (until no new node appears),
// then merges the answers into one ClusterView (tools/spate/
// cluster_view.proto). Each node only knows its own replicas, so a group's
// numbers come from the replica best placed to know them: its leader.
// A node that does not answer is part of the view (down), not an error.
// Threading: AskCluster queries the nodes of one discovery round in
// parallel on threads it joins before returning; MergeAnswers is pure.
#ifndef SPATE_TOOLS_SPATE_CLUSTER_VIEW_H_
#define SPATE_TOOLS_SPATE_CLUSTER_VIEW_H_

#include <google/protobuf/message.h>

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "proto/admin.pb.h"
#include "tools/spate/cluster_view.pb.h"
#include "tools/spate/command.h"

// Flags of the commands built on the view.
ABSL_DECLARE_FLAG(bool, json);
ABSL_DECLARE_FLAG(absl::Duration, timeout);

namespace spate::cli {

// One address asked and what it answered.
struct NodeAnswer {
  std::string address;
  absl::StatusOr<ClusterStatusResponse> status;
};

// Asks one node for its view, waiting at most `timeout`.
absl::StatusOr<ClusterStatusResponse> FetchClusterStatus(
    const std::string& address, absl::Duration timeout);

// Asks every address in `servers`, then every client address the answers
// list for nodes that have not answered yet, round after round. Returns
// one answer per address asked, in the order asked.
std::vector<NodeAnswer> AskCluster(const std::vector<std::string>& servers,
                                   absl::Duration timeout);

// Merges the answers (see cluster_view.proto for what each field means).
ClusterView MergeAnswers(const std::vector<NodeAnswer>& answers);

// AskCluster over the common --server list with --timeout, merged.
// Fails (UNAVAILABLE, with every address's error) only when no node
// answered; `view` is filled either way.
absl::Status GatherFromFlags(ClusterView* view);

// A group's leader for the tables: its node id, "n?" when only a follower
// names it (the leader did not answer), "none" when no leader is known.
std::string LeaderCell(const GroupView& group);

// Prints `message` with protobuf's JSON printer (indented, every field,
// proto field names) and a newline; returns the exit code.
int PrintJson(const google::protobuf::Message& message, const Io& io,
              absl::string_view command);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_CLUSTER_VIEW_H_
