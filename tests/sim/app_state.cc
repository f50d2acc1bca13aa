#include "tests/sim/app_state.h"

#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "base/check.h"

namespace spate::sim {
namespace {

// FNV-1a over bytes: portable and stable, unlike std::hash.
uint64_t Fnv(uint64_t h, const void* data, size_t size) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ULL;
  }
  return h;
}

uint64_t FnvU64(uint64_t h, uint64_t v) {
  unsigned char bytes[8];
  for (int i = 0; i < 8; ++i)
    bytes[i] = static_cast<unsigned char>(v >> (8 * i));
  return Fnv(h, bytes, sizeof(bytes));
}

}  // namespace

void AppState::Apply(const raft::Entry& entry) {
  CHECK_EQ(entry.index(), applied + 1) << "entries are applied in order";
  uint64_t h = FnvU64(digest ^ 0xcbf29ce484222325ULL, entry.index());
  h = FnvU64(h, entry.term());
  h = FnvU64(h, static_cast<uint64_t>(entry.type()));
  h = Fnv(h, entry.data().data(), entry.data().size());
  digest = h;
  applied = entry.index();
  if (entry.type() == raft::ENTRY_NORMAL && !entry.data().empty()) ++commands;
}

std::string AppState::Encode() const {
  return absl::StrCat(applied, ":", digest, ":", commands);
}

std::optional<AppState> AppState::Decode(absl::string_view data) {
  const std::vector<absl::string_view> parts = absl::StrSplit(data, ':');
  AppState state;
  if (parts.size() != 3 || !absl::SimpleAtoi(parts[0], &state.applied) ||
      !absl::SimpleAtoi(parts[1], &state.digest) ||
      !absl::SimpleAtoi(parts[2], &state.commands)) {
    return std::nullopt;
  }
  return state;
}

}  // namespace spate::sim
