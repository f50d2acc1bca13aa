// `spate cluster status`: every node's state and every raft group's, as
// the nodes themselves report it (Admin.ClusterStatus, merged by
// cluster_view.h): a nodes table (up/down, who reaches whom, groups led)
// and a groups table (leader, term, commit/applied index, each follower's
// lag behind the leader, and the channel's stored messages). A node that
// does not answer is shown down; the command fails only when none answers.
// Threading: runs on the CLI's thread (see cluster_view.h for its own).
#ifndef SPATE_TOOLS_SPATE_CLUSTER_H_
#define SPATE_TOOLS_SPATE_CLUSTER_H_

#include <ostream>

#include "tools/spate/cluster_view.pb.h"
#include "tools/spate/command.h"

namespace spate::cli {

Command ClusterCommand();

// The two tables `spate cluster status` prints (exposed for tests).
void PrintClusterStatus(const ClusterView& view, std::ostream& out);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_CLUSTER_H_
