// Basic raft vocabulary shared by the core, storage and the host.
// *index* = raft log position; *term* = raft election term; a *group* is
// one raft group (the metadata group or one channel); a *node* is a server
// process, identified by its NodeId in every group it belongs to.
#ifndef SPATE_RAFT_TYPES_H_
#define SPATE_RAFT_TYPES_H_

#include <cstdint>

namespace spate::raft {

using NodeId = uint64_t;
using GroupId = uint64_t;
using Term = uint64_t;
using Index = uint64_t;

// "No node": no vote cast, no known leader.
inline constexpr NodeId kNoNode = 0;

}  // namespace spate::raft

#endif  // SPATE_RAFT_TYPES_H_
