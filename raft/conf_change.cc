#include "raft/conf_change.h"

#include <algorithm>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace spate::raft {
namespace {

bool Contains(const google::protobuf::RepeatedField<uint64_t>& ids, NodeId id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

void Erase(google::protobuf::RepeatedField<uint64_t>* ids, NodeId id) {
  auto it = std::find(ids->begin(), ids->end(), id);
  if (it != ids->end()) ids->erase(it);
}

}  // namespace

absl::Status ValidateConfState(const ConfState& cs) {
  absl::flat_hash_set<NodeId> seen;
  for (const auto* ids : {&cs.voters(), &cs.learners()}) {
    for (NodeId id : *ids) {
      if (id == kNoNode) {
        return absl::InvalidArgumentError("ConfState holds node id 0");
      }
      if (!seen.insert(id).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ConfState lists node ", id, " twice: ", ConfStateString(cs)));
      }
    }
  }
  return absl::OkStatus();
}

ConfState NormalizeConfState(ConfState cs) {
  std::sort(cs.mutable_voters()->begin(), cs.mutable_voters()->end());
  std::sort(cs.mutable_learners()->begin(), cs.mutable_learners()->end());
  return cs;
}

absl::StatusOr<ConfState> ApplyConfChangeTo(const ConfState& cs,
                                            const ConfChange& cc) {
  const NodeId id = cc.node_id();
  if (id == kNoNode) {
    return absl::InvalidArgumentError("ConfChange.node_id must be >= 1");
  }
  ConfState next = cs;
  switch (cc.type()) {
    case ConfChange::ADD_VOTER:
      if (!IsVoter(cs, id)) {
        Erase(next.mutable_learners(), id);
        next.add_voters(id);
      }
      break;
    case ConfChange::ADD_LEARNER:
      if (!IsLearner(cs, id)) {
        Erase(next.mutable_voters(), id);
        next.add_learners(id);
      }
      break;
    case ConfChange::REMOVE_VOTER:
      Erase(next.mutable_voters(), id);
      Erase(next.mutable_learners(), id);
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("unknown ConfChange type ", cc.type()));
  }
  if (next.voters().empty()) {
    return absl::InvalidArgumentError(absl::StrCat(ConfChangeString(cc),
                                                   " would leave no voter in ",
                                                   ConfStateString(cs)));
  }
  return NormalizeConfState(std::move(next));
}

bool IsVoter(const ConfState& cs, NodeId id) {
  return Contains(cs.voters(), id);
}

bool IsLearner(const ConfState& cs, NodeId id) {
  return Contains(cs.learners(), id);
}

std::string ConfStateString(const ConfState& cs) {
  std::string out =
      absl::StrCat("voters=(", absl::StrJoin(cs.voters(), ","), ")");
  if (!cs.learners().empty()) {
    absl::StrAppend(&out, " learners=(", absl::StrJoin(cs.learners(), ","),
                    ")");
  }
  return out;
}

std::string ConfChangeString(const ConfChange& cc) {
  const char* type = "unknown";
  switch (cc.type()) {
    case ConfChange::ADD_VOTER:
      type = "add-voter";
      break;
    case ConfChange::REMOVE_VOTER:
      type = "remove-voter";
      break;
    case ConfChange::ADD_LEARNER:
      type = "add-learner";
      break;
    default:
      break;
  }
  return absl::StrCat(type, " ", cc.node_id());
}

}  // namespace spate::raft
