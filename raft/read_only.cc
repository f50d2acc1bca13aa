#include "raft/read_only.h"

#include <utility>

#include "base/check.h"

namespace spate::raft {

uint64_t ReadOnly::Add(Index index, NodeId from, std::string context) {
  const uint64_t id = next_id_++;
  pending_.push_back(Request{id, index, from, std::move(context), {}});
  return id;
}

const absl::btree_set<NodeId>* ReadOnly::RecvAck(uint64_t id, NodeId from) {
  if (pending_.empty() || id < pending_.front().id || id > pending_.back().id) {
    return nullptr;
  }
  Request& request = pending_[id - pending_.front().id];
  DCHECK_EQ(request.id, id);  // ids are consecutive in the deque
  request.acks.insert(from);
  return &request.acks;
}

std::vector<ReadOnly::Request> ReadOnly::Release(uint64_t id) {
  std::vector<Request> released;
  while (!pending_.empty() && pending_.front().id <= id) {
    released.push_back(std::move(pending_.front()));
    pending_.pop_front();
  }
  return released;
}

std::string ReadOnly::EncodeId(uint64_t id) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(id & 0xff);
    id >>= 8;
  }
  return out;
}

std::optional<uint64_t> ReadOnly::DecodeId(absl::string_view context) {
  if (context.size() != 8) return std::nullopt;
  uint64_t id = 0;
  for (char c : context) id = (id << 8) | static_cast<unsigned char>(c);
  return id;
}

}  // namespace spate::raft
