#include "tests/faults/checker.h"

#include <map>
#include <set>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"

namespace spate::faults {
namespace {

class Judge {
 public:
  explicit Judge(const History& history) : history_(history) {}

  CheckResult Run() {
    IndexPublishes();
    CheckReads();
    for (const SubscriberHistory& sub : history_.subscribers) {
      CheckSubscriber(sub);
    }
    CountLost();
    CheckLastSequences();
    return std::move(result_);
  }

 private:
  void Detail(std::string text) {
    if (result_.details.size() < CheckResult::kDetailsMax) {
      result_.details.push_back(std::move(text));
    }
  }

  void IndexPublishes() {
    for (const PublishAttempt& attempt : history_.publishes) {
      ++result_.attempted;
      attempts_[attempt.payload] = &attempt;
      switch (attempt.outcome) {
        case PublishOutcome::kAcked:
          ++result_.acked;
          Agree(attempt.channel, attempt.sequence, attempt.payload, "ack");
          break;
        case PublishOutcome::kFailed:
          ++result_.failed;
          break;
        case PublishOutcome::kUnknown:
          ++result_.unknown;
          break;
      }
    }
  }

  // Records that `source` saw `payload` at (channel, sequence); a second
  // payload at the same place is a divergence.
  void Agree(const std::string& channel, uint64_t sequence,
             const std::string& payload, const std::string& source) {
    auto [it, inserted] =
        agreed_.emplace(std::make_pair(channel, sequence), payload);
    if (!inserted && it->second != payload) {
      ++result_.divergent;
      Detail(absl::StrCat("divergent ", channel, "#", sequence, ": ",
                          it->second, " vs ", payload, " (", source, ")"));
    }
  }

  // A payload seen stored or delivered: was it ever attempted?
  void Seen(const std::string& channel, const std::string& payload,
            const std::string& source) {
    auto it = attempts_.find(payload);
    const bool known = it != attempts_.end() &&
                       it->second->outcome != PublishOutcome::kFailed &&
                       it->second->channel == channel;
    if (!known && unexpected_.insert(payload).second) {
      ++result_.unexpected;
      Detail(absl::StrCat("unexpected ", channel, " payload '", payload, "' (",
                          source, ")"));
    }
    if (known && it->second->outcome == PublishOutcome::kUnknown &&
        unknown_stored_.insert(payload).second) {
      ++result_.unknown_stored;
    }
  }

  void CheckReads() {
    for (const auto& [node, channels] : history_.reads) {
      for (const auto& [channel, log] : channels) {
        const std::string source = absl::StrCat("read via node ", node);
        std::map<std::string, uint64_t> positions;
        uint64_t expected = 1;
        for (const auto& [sequence, payload] : log) {
          if (sequence > expected) {
            result_.holes += sequence - expected;
            Detail(absl::StrCat("hole ", channel, "#", expected, "..",
                                sequence - 1, " (", source, ")"));
          }
          expected = sequence + 1;
          Agree(channel, sequence, payload, source);
          Seen(channel, payload, source);
          auto [it, inserted] = positions.emplace(payload, sequence);
          if (!inserted && stored_twice_.insert(payload).second) {
            ++result_.stored_twice;
            Detail(absl::StrCat("stored twice ", channel, " '", payload,
                                "' at #", it->second, " and #", sequence));
          }
          read_payloads_[node].insert(payload);
        }
      }
    }
  }

  void CheckSubscriber(const SubscriberHistory& sub) {
    // sequence -> epoch of its first delivery.
    std::map<uint64_t, int64_t> seen;
    int64_t epoch = -1;
    uint64_t last_first = 0;
    for (const Delivery& d : sub.deliveries) {
      ++result_.delivered;
      if (d.redelivered) ++result_.redelivered;
      Agree(sub.channel, d.sequence, d.payload, sub.name);
      Seen(sub.channel, d.payload, sub.name);
      delivered_[sub.name].insert(d.payload);
      if (d.epoch != epoch) {
        epoch = d.epoch;
        last_first = 0;
      }
      auto it = seen.find(d.sequence);
      if (it != seen.end()) {
        ++result_.duplicated;
        if (!d.redelivered && it->second == d.epoch) {
          ++result_.dup_unflagged;
          Detail(absl::StrCat(sub.name, ": unflagged duplicate #", d.sequence,
                              " in epoch ", d.epoch));
        }
        it->second = d.epoch;
        continue;
      }
      seen.emplace(d.sequence, d.epoch);
      if (d.redelivered) continue;
      if (d.sequence <= last_first) {
        ++result_.reordered;
        Detail(absl::StrCat(sub.name, ": #", d.sequence, " after #", last_first,
                            " in epoch ", d.epoch));
      }
      last_first = std::max(last_first, d.sequence);
    }
    // Every sequence up to the highest delivered must have been delivered.
    if (!seen.empty()) {
      const uint64_t top = seen.rbegin()->first;
      const uint64_t missing = top - seen.size();
      if (missing > 0) {
        result_.holes += missing;
        Detail(absl::StrCat(sub.name, ": ", missing,
                            " sequences never delivered below #", top));
      }
    }
    const std::set<uint64_t> acked(sub.acked_before_close.begin(),
                                   sub.acked_before_close.end());
    for (const Delivery& d : sub.after_reopen) {
      if (acked.count(d.sequence)) {
        ++result_.backwards;
        Detail(absl::StrCat(sub.name, ": acked #", d.sequence,
                            " delivered again after reopening"));
      }
    }
  }

  void CountLost() {
    for (const PublishAttempt& attempt : history_.publishes) {
      if (attempt.outcome != PublishOutcome::kAcked) continue;
      std::string where;
      for (const auto& [node, payloads] : read_payloads_) {
        if (!payloads.count(attempt.payload)) {
          where = absl::StrCat("read via node ", node);
          break;
        }
      }
      for (const SubscriberHistory& sub : history_.subscribers) {
        if (!where.empty()) break;
        if (sub.channel == attempt.channel &&
            !delivered_[sub.name].count(attempt.payload)) {
          where = sub.name;
        }
      }
      if (!where.empty()) {
        ++result_.lost;
        Detail(absl::StrCat("lost ", attempt.channel, "#", attempt.sequence,
                            " '", attempt.payload, "' (missing in ", where,
                            ")"));
      }
    }
  }

  void CheckLastSequences() {
    std::map<std::string, uint64_t> top;
    for (const auto& [node, channels] : history_.last_sequences) {
      for (const auto& [channel, last] : channels) {
        top[channel] = std::max(top[channel], last);
      }
    }
    for (const auto& [node, channels] : history_.last_sequences) {
      for (const auto& [channel, last] : channels) {
        if (last < top[channel]) {
          ++result_.lagging;
          Detail(absl::StrCat("node ", node, " holds ", channel, " up to #",
                              last, " of #", top[channel], " (lagging)"));
        }
      }
    }
    // A replica claiming more than anyone can read is a hole in the reads.
    for (const auto& [channel, last] : top) {
      for (const auto& [node, channels] : history_.reads) {
        auto it = channels.find(channel);
        const uint64_t read = it == channels.end() || it->second.empty()
                                  ? 0
                                  : it->second.rbegin()->first;
        if (read < last) {
          result_.holes += last - read;
          Detail(absl::StrCat("read via node ", node, " ends ", channel,
                              " at #", read, " but a replica holds #", last));
        }
      }
    }
  }

  const History& history_;
  CheckResult result_;
  absl::flat_hash_map<std::string, const PublishAttempt*> attempts_;
  std::map<std::pair<std::string, uint64_t>, std::string> agreed_;
  absl::flat_hash_set<std::string> unexpected_;
  absl::flat_hash_set<std::string> unknown_stored_;
  absl::flat_hash_set<std::string> stored_twice_;
  std::map<int, absl::flat_hash_set<std::string>> read_payloads_;
  std::map<std::string, absl::flat_hash_set<std::string>> delivered_;
};

}  // namespace

std::string CheckResult::Summary() const {
  return absl::StrCat(
      valid() ? "VALID" : "INVALID", " attempted=", attempted, " acked=", acked,
      " failed=", failed, " unknown=", unknown,
      " unknown_stored=", unknown_stored, " delivered=", delivered,
      " redelivered=", redelivered, " lost=", lost, " unexpected=", unexpected,
      " duplicated=", duplicated, " dup_unflagged=", dup_unflagged,
      " reordered=", reordered, " holes=", holes, " divergent=", divergent,
      " backwards=", backwards, " lagging=", lagging,
      " stored_twice=", stored_twice);
}

CheckResult Check(const History& history) { return Judge(history).Run(); }

}  // namespace spate::faults
