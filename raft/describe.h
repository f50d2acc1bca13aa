// One-line, human-readable renderings of raft values for logs, golden test
// files (raft/testdata) and debugging, in the spirit of etcd's describe.go:
//   1->2 MsgApp Term:2 Log:1/3 Commit:3 Entries:[2/4 EntryNormal "x"]
// The format is part of the golden files: change it only with a rewrite of
// raft/testdata.
// Threading: pure functions.
#ifndef SPATE_RAFT_DESCRIBE_H_
#define SPATE_RAFT_DESCRIBE_H_

#include <string>

#include "proto/raft.pb.h"
#include "raft/ready.h"

namespace spate::raft {

// "MsgApp", "MsgVoteResp", ...
const char* MessageTypeShortName(MessageType type);

std::string DescribeEntry(const Entry& entry);
std::string DescribeHardState(const HardState& hs);
std::string DescribeSnapshot(const Snapshot& snapshot);
std::string DescribeMessage(const Message& message);
// Multi-line, one field per line, only the non-empty fields.
std::string DescribeReady(const Ready& ready);

}  // namespace spate::raft

#endif  // SPATE_RAFT_DESCRIBE_H_
