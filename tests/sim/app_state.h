// AppState: the simulated state machine that every node applies committed
// entries to. Instead of keeping the commands it folds each applied entry
// (index, term, type, data) into a 64-bit digest chain, so "every node applies
// the same sequence" (Raft's State Machine Safety) reduces to "equal digests
// at equal applied indexes", checked by the Checker after every apply, and a
// snapshot is just the encoded AppState (what a real host would serialize).
// Threading: a plain value type.
#ifndef SPATE_TESTS_SIM_APP_STATE_H_
#define SPATE_TESTS_SIM_APP_STATE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/strings/string_view.h"
#include "proto/raft.pb.h"
#include "raft/types.h"

namespace spate::sim {

struct AppState {
  // Last applied index; the digest covers entries 1..applied.
  raft::Index applied = 0;
  uint64_t digest = 0;
  // Client commands applied (non-empty normal entries).
  uint64_t commands = 0;

  // Folds `entry` (which must be at applied + 1) into the state.
  void Apply(const raft::Entry& entry);

  // Snapshot image: "applied:digest:commands".
  std::string Encode() const;
  static std::optional<AppState> Decode(absl::string_view data);
};

}  // namespace spate::sim

#endif  // SPATE_TESTS_SIM_APP_STATE_H_
