// `spate mirror add|remove|list`: mirrors declared at runtime (DESIGN.md
// §7, docs/gateways.md) through Admin.AddMirror / RemoveMirror, sent to
// each --server until the metadata leader takes it, and the mirrors every
// --server knows (Admin.ListMirrors), merged: each mirror's numbers come
// from the node that feeds it (leads its group), else from any replica.
// Threading: runs on the CLI's thread.
#ifndef SPATE_TOOLS_SPATE_MIRROR_H_
#define SPATE_TOOLS_SPATE_MIRROR_H_

#include <ostream>
#include <vector>

#include "proto/admin.pb.h"
#include "tools/spate/command.h"

namespace spate::cli {

Command MirrorCommand();

// Merges the answers of several nodes: one entry per mirror channel
// (ascending), preferring the one with the feed's status (exposed for
// tests).
ListMirrorsResponse MergeMirrorLists(
    const std::vector<ListMirrorsResponse>& answers);

// The table `spate mirror list` prints (exposed for tests).
void PrintMirrors(const ListMirrorsResponse& mirrors, std::ostream& out);

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_MIRROR_H_
