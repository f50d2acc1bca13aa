#include "server/channel_fsm.h"

#include <zlib.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "server/validation.h"

namespace spate::server {
namespace {

constexpr size_t kOldestScanCount = 256;
constexpr int64_t kOldestScanBytes = 4 << 20;
constexpr size_t kDedupScanCount = 256;

uint32_t PayloadCrc32(const std::string& data) {
  return static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(data.data()),
            static_cast<uInt>(data.size())));
}

int64_t StoredBytes(const StoredMessage& msg) {
  return MessageBytes(msg.data(), msg.headers());
}

}  // namespace

const MemberRecord* Subscription::FindMember(
    absl::string_view member_id) const {
  for (const MemberRecord& member : record.members()) {
    if (member.member_id() == member_id) return &member;
  }
  return nullptr;
}

ChannelFsm::ChannelFsm(const storage::ChannelStore* store,
                       const ChannelFsmOptions& options)
    : store_(store), options_(options) {}

std::unique_ptr<ChannelFsm> ChannelFsm::Create(
    const storage::ChannelStore* store, uint64_t channel_id,
    const std::string& name, const ChannelLimits& limits, int64_t created_ns,
    const ChannelFsmOptions& options, storage::WriteBatch* batch) {
  CHECK_GT(channel_id, 0u);
  std::unique_ptr<ChannelFsm> fsm(new ChannelFsm(store, options));
  ChannelRecord& record = fsm->record_;
  record.set_channel_id(channel_id);
  record.set_name(name);
  *record.mutable_limits() = limits;
  record.set_first_sequence(1);
  record.set_last_sequence(0);
  record.set_next_sub_id(1);
  record.set_created_ns(created_ns);
  fsm->WriteRecord(batch);
  return fsm;
}

absl::StatusOr<std::unique_ptr<ChannelFsm>> ChannelFsm::Load(
    const storage::ChannelStore* store, uint64_t channel_id,
    const ChannelFsmOptions& options) {
  std::unique_ptr<ChannelFsm> fsm(new ChannelFsm(store, options));
  absl::StatusOr<ChannelRecord> record = store->GetChannel(channel_id);
  if (!record.ok()) return record.status();
  fsm->record_ = *std::move(record);
  CHECK_EQ(fsm->record_.channel_id(), channel_id);
  CHECK_LE(fsm->record_.first_sequence(), fsm->record_.last_sequence() + 1);
  fsm->written_through_ = fsm->record_.last_sequence();

  absl::StatusOr<std::vector<SubscriptionRecord>> subs =
      store->ListSubscriptions(channel_id);
  if (!subs.ok()) return subs.status();
  for (SubscriptionRecord& stored : *subs) {
    Subscription sub;
    for (uint64_t seq : stored.acked()) sub.acked.insert(seq);
    for (const auto& [seq, count] : stored.redelivery_counts()) {
      sub.redelivery_counts[seq] = count;
    }
    stored.clear_acked();
    stored.clear_redelivery_counts();
    sub.record = std::move(stored);
    const uint64_t sub_id = sub.record.sub_id();
    fsm->IndexSubscription(sub);
    fsm->subs_.emplace(sub_id, std::move(sub));
  }
  if (absl::Status s = fsm->RebuildDedup(); !s.ok()) return s;
  return fsm;
}

ChannelSnapshot ChannelFsm::Image() const {
  ChannelSnapshot image;
  *image.mutable_record() = record_;
  for (const auto& [sub_id, sub] : subs_) {
    SubscriptionRecord* out = image.add_subscriptions();
    *out = sub.record;
    for (uint64_t seq : sub.acked) out->add_acked(seq);
    for (const auto& [seq, count] : sub.redelivery_counts) {
      (*out->mutable_redelivery_counts())[seq] = count;
    }
  }
  return image;
}

absl::Status ChannelFsm::Install(const ChannelSnapshot& image,
                                 storage::WriteBatch* batch) {
  const ChannelRecord& next = image.record();
  CHECK_EQ(next.channel_id(), record_.channel_id());
  CHECK_LE(next.first_sequence(), next.last_sequence() + 1);
  // Messages outside the image's range go; those inside were fetched.
  if (record_.first_sequence() < next.first_sequence()) {
    store_->DeleteMessages(record_.channel_id(), record_.first_sequence(),
                           next.first_sequence() - 1, batch);
  }
  if (record_.last_sequence() > next.last_sequence()) {
    store_->DeleteMessages(
        record_.channel_id(),
        std::max(next.last_sequence() + 1, record_.first_sequence()),
        record_.last_sequence(), batch);
  }
  for (const auto& [sub_id, sub] : subs_) {
    store_->DeleteSubscription(record_.channel_id(), sub_id, batch);
  }
  subs_.clear();
  durable_index_.clear();
  queue_index_.clear();
  member_index_.clear();
  record_ = next;
  for (const SubscriptionRecord& stored : image.subscriptions()) {
    Subscription sub;
    for (uint64_t seq : stored.acked()) sub.acked.insert(seq);
    for (const auto& [seq, count] : stored.redelivery_counts()) {
      sub.redelivery_counts[seq] = count;
    }
    sub.record = stored;
    sub.record.clear_acked();
    sub.record.clear_redelivery_counts();
    store_->PutSubscription(record_.channel_id(), stored, batch);
    IndexSubscription(sub);
    subs_.emplace(stored.sub_id(), std::move(sub));
  }
  WriteRecord(batch);
  cache_.clear();
  cache_bytes_ = 0;
  oldest_.clear();
  written_through_ = record_.last_sequence();
  // The fetched messages are in the store already (written before raft
  // installed the snapshot), so the dedup window rebuilds from them.
  if (record_.msgs() > 0) {
    absl::StatusOr<StoredMessage> last = ReadMessage(record_.last_sequence());
    if (!last.ok()) {
      return absl::DataLossError(absl::StrCat(
          "channel ", record_.name(), ": snapshot message ",
          record_.last_sequence(), " missing: ", last.status().message()));
    }
  }
  return RebuildDedup();
}

ChannelApplyResult ChannelFsm::Apply(uint64_t index,
                                     const ChannelCommand& command,
                                     storage::WriteBatch* batch) {
  CHECK_GT(index, record_.applied_index()) << "channel " << record_.name();
  ChannelApplyResult result;
  switch (command.kind_case()) {
    case ChannelCommand::kPublish:
      ApplyPublish(command.publish(), batch, &result);
      break;
    case ChannelCommand::kSubscribe:
      ApplySubscribe(command.subscribe(), batch, &result);
      break;
    case ChannelCommand::kCloseSubscription:
      ApplyClose(command.close_subscription(), batch, &result);
      break;
    case ChannelCommand::kDeleteSubscription:
      ApplyDelete(command.delete_subscription(), batch, &result);
      break;
    case ChannelCommand::kProgress:
      ApplyProgress(command.progress(), batch);
      break;
    case ChannelCommand::kTrim:
      ApplyTrim(command.trim(), batch);
      break;
    case ChannelCommand::kMirrorAppend:
      ApplyMirrorAppend(command.mirror_append(), batch, &result);
      break;
    case ChannelCommand::kSetLimits:
      ApplySetLimits(command.set_limits(), batch);
      break;
    case ChannelCommand::KIND_NOT_SET:
      // A command from a newer version or a damaged one: every replica
      // skips it the same way.
      result.status = absl::InvalidArgumentError("empty channel command");
      break;
  }
  record_.set_applied_index(index);
  WriteRecord(batch);
  return result;
}

void ChannelFsm::ApplyEmpty(uint64_t index, storage::WriteBatch* batch) {
  CHECK_GT(index, record_.applied_index());
  record_.set_applied_index(index);
  WriteRecord(batch);
}

void ChannelFsm::MarkWritten() {
  written_through_ = record_.last_sequence();
  while (!cache_.empty() && cache_bytes_ > options_.cache_bytes_max &&
         cache_.front().sequence() <= written_through_) {
    cache_bytes_ -= StoredBytes(cache_.front());
    cache_.pop_front();
  }
}

void ChannelFsm::ApplyPublish(const PublishBatch& publish,
                              storage::WriteBatch* batch,
                              ChannelApplyResult* result) {
  result->sequences.reserve(publish.entries_size());
  result->duplicates.reserve(publish.entries_size());
  for (const PublishEntry& entry : publish.entries()) {
    const int64_t timestamp =
        std::max(entry.timestamp_ns(), record_.last_timestamp_ns());
    DedupEvict(timestamp);
    if (!entry.guid().empty()) {
      if (std::optional<uint64_t> original = DedupLookup(entry.guid())) {
        result->sequences.push_back(*original);
        result->duplicates.push_back(true);
        continue;
      }
    }
    StoredMessage msg;
    msg.set_sequence(record_.last_sequence() + 1);
    msg.set_timestamp_ns(timestamp);
    msg.set_guid(entry.guid());
    msg.set_reply(entry.reply());
    msg.set_data(entry.data());
    *msg.mutable_headers() = entry.headers();
    msg.set_crc32(PayloadCrc32(entry.data()));
    const int64_t bytes = StoredBytes(msg);

    store_->PutMessage(record_.channel_id(), msg, batch);
    record_.set_last_sequence(msg.sequence());
    record_.set_last_timestamp_ns(timestamp);
    record_.set_msgs(record_.msgs() + 1);
    record_.set_bytes(record_.bytes() + bytes);
    if (!entry.guid().empty()) {
      dedup_[entry.guid()] = msg.sequence();
      dedup_order_.push_back({msg.sequence(), timestamp, entry.guid()});
      while (dedup_order_.size() >
             static_cast<size_t>(std::max(options_.dedup_entries_max, 0))) {
        const DedupEntry& old = dedup_order_.front();
        auto it = dedup_.find(old.guid);
        if (it != dedup_.end() && it->second == old.sequence) dedup_.erase(it);
        dedup_order_.pop_front();
      }
    }
    result->sequences.push_back(msg.sequence());
    result->duplicates.push_back(false);
    cache_bytes_ += bytes;
    cache_.push_back(std::move(msg));
    EnforceLimits(/*cutoff_ns=*/0, batch);
  }
}

void ChannelFsm::ApplyMirrorAppend(const MirrorAppend& append,
                                   storage::WriteBatch* batch,
                                   ChannelApplyResult* result) {
  // A batch based on another last sequence was proposed twice (a resumed
  // feed, a leader change): applying it again would duplicate or reorder.
  if (append.prev_sequence() != record_.last_sequence()) {
    result->status = absl::FailedPreconditionError(
        absl::StrCat("mirror batch follows sequence ", append.prev_sequence(),
                     " but the channel ends at ", record_.last_sequence()));
    return;
  }
  uint64_t prev = append.prev_sequence();
  for (const StoredMessage& source : append.messages()) {
    if (source.sequence() <= prev) {
      result->status = absl::InvalidArgumentError(
          absl::StrCat("mirror batch sequences not ascending at ",
                       source.sequence(), " after ", prev));
      return;
    }
    prev = source.sequence();
  }
  for (const StoredMessage& source : append.messages()) {
    if (source.sequence() != record_.last_sequence() + 1) {
      // The source's limits removed messages this mirror never received:
      // the mirror continues where the source's log now starts, and drops
      // what it holds before the hole so its sequences stay contiguous.
      if (record_.msgs() > 0) {
        store_->DeleteMessages(record_.channel_id(), record_.first_sequence(),
                               record_.last_sequence(), batch);
      }
      cache_.clear();
      cache_bytes_ = 0;
      oldest_.clear();
      record_.set_msgs(0);
      record_.set_bytes(0);
      record_.set_last_sequence(source.sequence() - 1);
      record_.set_first_sequence(source.sequence());
    }
    StoredMessage msg = source;
    const int64_t bytes = StoredBytes(msg);
    store_->PutMessage(record_.channel_id(), msg, batch);
    record_.set_last_sequence(msg.sequence());
    record_.set_last_timestamp_ns(
        std::max(msg.timestamp_ns(), record_.last_timestamp_ns()));
    record_.set_msgs(record_.msgs() + 1);
    record_.set_bytes(record_.bytes() + bytes);
    result->sequences.push_back(msg.sequence());
    result->duplicates.push_back(false);
    cache_bytes_ += bytes;
    cache_.push_back(std::move(msg));
    EnforceLimits(/*cutoff_ns=*/0, batch);
  }
}

void ChannelFsm::DedupEvict(int64_t now_ns) {
  const int64_t cutoff = now_ns - options_.dedup_window_ms * 1000000;
  // Kept by sequence whatever the timestamps say: a leader whose clock
  // jumped forward stamps a time far ahead, and a client's retry of what it
  // published just before must still be recognized.
  const uint64_t last = record_.last_sequence();
  const uint64_t kept_from =
      last > kDedupKeptSequences ? last - kDedupKeptSequences + 1 : 1;
  while (!dedup_order_.empty()) {
    const DedupEntry& old = dedup_order_.front();
    if (old.sequence >= record_.first_sequence() &&
        (old.timestamp_ns >= cutoff || old.sequence >= kept_from)) {
      break;
    }
    auto it = dedup_.find(old.guid);
    if (it != dedup_.end() && it->second == old.sequence) dedup_.erase(it);
    dedup_order_.pop_front();
  }
}

std::optional<uint64_t> ChannelFsm::DedupLookup(const std::string& guid) const {
  auto it = dedup_.find(guid);
  if (it == dedup_.end() || it->second < record_.first_sequence()) {
    return std::nullopt;
  }
  return it->second;
}

absl::Status ChannelFsm::RebuildDedup() {
  // The same set a replica that never restarted holds: the newest
  // dedup_entries_max messages with a guid, within the window of the last
  // message's timestamp or among the newest kDedupKeptSequences sequences,
  // still stored. Scan backwards in chunks.
  dedup_.clear();
  dedup_order_.clear();
  if (record_.last_sequence() < record_.first_sequence()) {
    return absl::OkStatus();
  }
  const int64_t cutoff =
      record_.last_timestamp_ns() - options_.dedup_window_ms * 1000000;
  const size_t cap =
      static_cast<size_t>(std::max(options_.dedup_entries_max, 0));
  // As DedupEvict left it after storing the last message: it ran before
  // that message, with the sequence before it.
  const uint64_t before_last = record_.last_sequence() - 1;
  const uint64_t kept_from = before_last > kDedupKeptSequences
                                 ? before_last - kDedupKeptSequences + 1
                                 : 1;
  std::vector<DedupEntry> newest_first;
  uint64_t hi = record_.last_sequence();
  bool done = cap == 0;
  std::vector<StoredMessage> chunk;
  while (!done && hi >= record_.first_sequence()) {
    const uint64_t lo =
        std::max(record_.first_sequence(),
                 hi >= kDedupScanCount ? hi - kDedupScanCount + 1 : 1);
    chunk.clear();
    if (absl::Status s = store_->ScanMessages(
            record_.channel_id(), lo, hi, kDedupScanCount, INT64_MAX, &chunk);
        !s.ok()) {
      return s;
    }
    for (auto it = chunk.rbegin(); it != chunk.rend() && !done; ++it) {
      if (it->timestamp_ns() < cutoff && it->sequence() < kept_from) {
        done = true;
      } else if (!it->guid().empty()) {
        newest_first.push_back(
            {it->sequence(), it->timestamp_ns(), it->guid()});
        done = newest_first.size() >= cap;
      }
    }
    if (lo == record_.first_sequence()) break;
    hi = lo - 1;
  }
  for (auto it = newest_first.rbegin(); it != newest_first.rend(); ++it) {
    dedup_[it->guid] = it->sequence;  // newer ones come later and win
    dedup_order_.push_back(*it);
  }
  return absl::OkStatus();
}

absl::StatusOr<ChannelFsm::OldestInfo> ChannelFsm::Oldest() {
  const uint64_t first = record_.first_sequence();
  CHECK_LE(first, record_.last_sequence());
  if (!cache_.empty() && first >= cache_.front().sequence()) {
    const StoredMessage& msg = cache_[first - cache_.front().sequence()];
    return OldestInfo{msg.sequence(), StoredBytes(msg), msg.timestamp_ns()};
  }
  while (!oldest_.empty() && oldest_.front().sequence < first) {
    oldest_.pop_front();
  }
  if (oldest_.empty() || oldest_.front().sequence != first) {
    oldest_.clear();
    // Everything below the cache is in the store (the cache keeps every
    // unwritten message).
    const uint64_t upper = cache_.empty() ? record_.last_sequence()
                                          : cache_.front().sequence() - 1;
    std::vector<StoredMessage> msgs;
    if (absl::Status s =
            store_->ScanMessages(record_.channel_id(), first, upper,
                                 kOldestScanCount, kOldestScanBytes, &msgs);
        !s.ok()) {
      return s;
    }
    for (const StoredMessage& msg : msgs) {
      oldest_.push_back({msg.sequence(), StoredBytes(msg), msg.timestamp_ns()});
    }
    if (oldest_.empty() || oldest_.front().sequence != first) {
      return absl::DataLossError(absl::StrCat("channel ", record_.name(),
                                              ": message ", first,
                                              " is missing from the store"));
    }
  }
  return oldest_.front();
}

void ChannelFsm::EnforceLimits(int64_t cutoff_ns, storage::WriteBatch* batch) {
  const ChannelLimits& limits = record_.limits();
  const uint64_t first_before = record_.first_sequence();
  while (record_.msgs() > 0) {
    const bool over_msgs =
        limits.max_msgs() > 0 && record_.msgs() > limits.max_msgs();
    // A single message larger than max_bytes is still kept: the limit
    // removes older messages, never the newest one.
    const bool over_bytes = limits.max_bytes() > 0 &&
                            record_.bytes() > limits.max_bytes() &&
                            record_.msgs() > 1;
    if (!over_msgs && !over_bytes && cutoff_ns <= 0) break;
    absl::StatusOr<OldestInfo> oldest = Oldest();
    // A message we stored is missing or damaged: the replica cannot keep
    // applying deterministically. Crash rather than diverge; recovery
    // repairs from peers (DESIGN.md §6).
    CHECK(oldest.ok()) << oldest.status();
    if (!over_msgs && !over_bytes && oldest->timestamp_ns >= cutoff_ns) break;
    record_.set_first_sequence(oldest->sequence + 1);
    record_.set_msgs(record_.msgs() - 1);
    record_.set_bytes(record_.bytes() - oldest->bytes);
    if (!cache_.empty() && cache_.front().sequence() == oldest->sequence) {
      cache_bytes_ -= StoredBytes(cache_.front());
      cache_.pop_front();
    }
  }
  if (record_.first_sequence() > first_before) {
    store_->DeleteMessages(record_.channel_id(), first_before,
                           record_.first_sequence() - 1, batch);
  }
  CHECK_EQ(record_.msgs() == 0,
           record_.first_sequence() == record_.last_sequence() + 1);
}

void ChannelFsm::ApplyTrim(const ChannelTrim& trim,
                           storage::WriteBatch* batch) {
  if (record_.limits().max_age_ms() <= 0) return;
  EnforceLimits(trim.now_ns() - record_.limits().max_age_ms() * 1000000, batch);
}

void ChannelFsm::ApplySetLimits(const ChannelSetLimits& set,
                                storage::WriteBatch* batch) {
  *record_.mutable_limits() = set.limits();
  EnforceLimits(/*cutoff_ns=*/0, batch);
}

std::string ChannelFsm::DurableKey(absl::string_view client_id,
                                   absl::string_view durable) {
  return absl::StrCat(client_id, "\n", durable);
}

std::string ChannelFsm::QueueKey(absl::string_view durable,
                                 absl::string_view group) {
  return absl::StrCat(durable, "\n", group);
}

const Subscription* ChannelFsm::FindExisting(
    const SubscriptionCreate& create) const {
  const absl::flat_hash_map<std::string, uint64_t>* index = nullptr;
  std::string key;
  if (!create.q_group().empty()) {
    index = &queue_index_;
    key = QueueKey(create.durable_name(), create.q_group());
  } else if (!create.durable_name().empty()) {
    index = &durable_index_;
    key = DurableKey(create.client_id(), create.durable_name());
  } else {
    return nullptr;
  }
  auto it = index->find(key);
  return it == index->end() ? nullptr : FindSubscription(it->second);
}

absl::Status ChannelFsm::CheckSubscriptionCreate(
    const SubscriptionCreate& create) const {
  const Subscription* existing = FindExisting(create);
  if (existing != nullptr && !existing->queue() && existing->online()) {
    return absl::AlreadyExistsError(
        absl::StrCat("durable subscription '", create.durable_name(),
                     "' of client '", create.client_id(), "' on channel '",
                     record_.name(), "' is already active"));
  }
  if (member_index_.contains(create.member_id())) {
    return absl::AlreadyExistsError("subscription id already in use");
  }
  const bool adds_to_count =
      existing == nullptr || (existing->queue() && existing->online());
  const int max_subs = record_.limits().max_subs();
  if (adds_to_count && max_subs > 0 && SubscriptionCount() >= max_subs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("channel '", record_.name(), "' has reached max_subs (",
                     max_subs, ")"));
  }
  return absl::OkStatus();
}

void ChannelFsm::ApplySubscribe(const SubscriptionCreate& create,
                                storage::WriteBatch* batch,
                                ChannelApplyResult* result) {
  result->status = CheckSubscriptionCreate(create);
  if (!result->status.ok()) return;
  MemberRecord member;
  member.set_member_id(create.member_id());
  member.set_client_id(create.client_id());
  member.set_conn_id(create.conn_id());
  member.set_max_in_flight(create.max_in_flight());
  member.set_ack_wait_ms(create.ack_wait_ms());

  const Subscription* existing = FindExisting(create);
  Subscription* sub;
  if (existing != nullptr) {
    sub = &subs_.at(existing->record.sub_id());
    result->resumed = true;
    result->previous_last_sent = sub->record.last_sent();
  } else {
    const uint64_t sub_id = record_.next_sub_id();
    record_.set_next_sub_id(sub_id + 1);
    Subscription fresh;
    fresh.record.set_sub_id(sub_id);
    fresh.record.set_durable_name(create.durable_name());
    fresh.record.set_q_group(create.q_group());
    if (create.q_group().empty())
      fresh.record.set_client_id(create.client_id());
    // Start at `start_sequence`: everything before it counts as handled.
    const uint64_t start = std::max<uint64_t>(create.start_sequence(), 1);
    fresh.record.set_ack_floor(start - 1);
    fresh.record.set_last_sent(start - 1);
    fresh.record.set_created_ns(record_.last_timestamp_ns());
    result->previous_last_sent = start - 1;
    sub = &subs_.emplace(sub_id, std::move(fresh)).first->second;
    IndexSubscription(*sub);
  }
  sub->record.set_last_sent(
      std::max(sub->record.last_sent(), create.sent_lease()));
  *sub->record.add_members() = member;
  member_index_[member.member_id()] = sub->record.sub_id();
  result->sub_id = sub->record.sub_id();
  WriteSubscription(*sub, batch);
}

void ChannelFsm::ApplyClose(const SubscriptionClose& close,
                            storage::WriteBatch* batch,
                            ChannelApplyResult* result) {
  auto it = subs_.find(close.sub_id());
  if (it == subs_.end() ||
      it->second.FindMember(close.member_id()) == nullptr) {
    result->status = absl::NotFoundError("no such subscription");
    return;
  }
  Subscription& sub = it->second;
  auto* members = sub.record.mutable_members();
  for (int i = 0; i < members->size(); ++i) {
    if (members->Get(i).member_id() == close.member_id()) {
      members->DeleteSubrange(i, 1);
      break;
    }
  }
  member_index_.erase(close.member_id());
  if (!sub.online()) {
    // The last member left: the closing leader knows exactly what it sent.
    // With members left, the lease still covers the others.
    sub.record.set_last_sent(
        std::max(close.last_sent(), EffectiveAckFloor(sub)));
  }
  if (!sub.online() && !sub.durable()) {
    RemoveSubscription(close.sub_id(), batch);
    result->subscription_removed = true;
    return;
  }
  WriteSubscription(sub, batch);
}

void ChannelFsm::ApplyDelete(const SubscriptionDelete& del,
                             storage::WriteBatch* batch,
                             ChannelApplyResult* result) {
  auto it = subs_.find(del.sub_id());
  if (it == subs_.end() || it->second.FindMember(del.member_id()) == nullptr) {
    result->status = absl::NotFoundError("no such subscription");
    return;
  }
  Subscription& sub = it->second;
  if (!sub.queue() || sub.record.members_size() == 1) {
    RemoveSubscription(del.sub_id(), batch);
    result->subscription_removed = true;
    return;
  }
  auto* members = sub.record.mutable_members();
  for (int i = 0; i < members->size(); ++i) {
    if (members->Get(i).member_id() == del.member_id()) {
      members->DeleteSubrange(i, 1);
      break;
    }
  }
  member_index_.erase(del.member_id());
  WriteSubscription(sub, batch);
}

void ChannelFsm::ApplyProgress(const ProgressBatch& progress,
                               storage::WriteBatch* batch) {
  for (const SubscriptionProgress& update : progress.subs()) {
    auto it = subs_.find(update.sub_id());
    if (it == subs_.end()) continue;  // removed since the leader sent it
    Subscription& sub = it->second;
    for (uint64_t seq : update.acked()) {
      if (seq > sub.record.ack_floor() && seq <= record_.last_sequence()) {
        sub.acked.insert(seq);
        sub.redelivery_counts.erase(seq);
      }
    }
    for (uint64_t seq : update.redelivered()) {
      if (seq > sub.record.ack_floor() && seq <= record_.last_sequence() &&
          !sub.acked.contains(seq)) {
        ++sub.redelivery_counts[seq];
      }
    }
    sub.record.set_last_sent(
        std::max(sub.record.last_sent(), update.last_sent()));
    NormalizeFloor(&sub);
    WriteSubscription(sub, batch);
  }
}

void ChannelFsm::NormalizeFloor(Subscription* sub) const {
  uint64_t floor = std::max(sub->record.ack_floor(), EffectiveAckFloor(*sub));
  while (!sub->acked.empty() && *sub->acked.begin() <= floor + 1) {
    floor = std::max(floor, *sub->acked.begin());
    sub->acked.erase(sub->acked.begin());
  }
  sub->redelivery_counts.erase(sub->redelivery_counts.begin(),
                               sub->redelivery_counts.upper_bound(floor));
  sub->record.set_ack_floor(floor);
  if (sub->record.last_sent() < floor) sub->record.set_last_sent(floor);
}

uint64_t ChannelFsm::EffectiveAckFloor(const Subscription& sub) const {
  return std::max(sub.record.ack_floor(), record_.first_sequence() - 1);
}

void ChannelFsm::WriteSubscription(const Subscription& sub,
                                   storage::WriteBatch* batch) const {
  SubscriptionRecord record = sub.record;
  for (uint64_t seq : sub.acked) record.add_acked(seq);
  for (const auto& [seq, count] : sub.redelivery_counts) {
    (*record.mutable_redelivery_counts())[seq] = count;
  }
  store_->PutSubscription(record_.channel_id(), record, batch);
}

void ChannelFsm::RemoveSubscription(uint64_t sub_id,
                                    storage::WriteBatch* batch) {
  auto it = subs_.find(sub_id);
  CHECK(it != subs_.end());
  const Subscription& sub = it->second;
  for (const MemberRecord& member : sub.record.members()) {
    member_index_.erase(member.member_id());
  }
  if (sub.queue()) {
    queue_index_.erase(
        QueueKey(sub.record.durable_name(), sub.record.q_group()));
  } else if (sub.durable()) {
    durable_index_.erase(
        DurableKey(sub.record.client_id(), sub.record.durable_name()));
  }
  store_->DeleteSubscription(record_.channel_id(), sub_id, batch);
  subs_.erase(it);
}

void ChannelFsm::IndexSubscription(const Subscription& sub) {
  const uint64_t sub_id = sub.record.sub_id();
  if (sub.queue()) {
    queue_index_[QueueKey(sub.record.durable_name(), sub.record.q_group())] =
        sub_id;
  } else if (sub.durable()) {
    durable_index_[DurableKey(sub.record.client_id(),
                              sub.record.durable_name())] = sub_id;
  }
  for (const MemberRecord& member : sub.record.members()) {
    member_index_[member.member_id()] = sub_id;
  }
}

void ChannelFsm::WriteRecord(storage::WriteBatch* batch) const {
  store_->PutChannel(record_, batch);
}

const Subscription* ChannelFsm::FindSubscription(uint64_t sub_id) const {
  auto it = subs_.find(sub_id);
  return it == subs_.end() ? nullptr : &it->second;
}

const Subscription* ChannelFsm::FindByMember(
    absl::string_view member_id) const {
  auto it = member_index_.find(member_id);
  return it == member_index_.end() ? nullptr : FindSubscription(it->second);
}

int ChannelFsm::SubscriptionCount() const {
  int count = 0;
  for (const auto& [id, sub] : subs_) {
    count += std::max(1, sub.record.members_size());
  }
  return count;
}

std::vector<std::pair<uint64_t, std::string>> ChannelFsm::MembersOfClient(
    absl::string_view client_id) const {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (const auto& [id, sub] : subs_) {
    for (const MemberRecord& member : sub.record.members()) {
      if (member.client_id() == client_id) {
        out.emplace_back(id, member.member_id());
      }
    }
  }
  return out;
}

absl::StatusOr<uint64_t> ChannelFsm::ResolveStartSequence(
    const SubscriptionRequest& request, int64_t now_ns) const {
  const uint64_t first = record_.first_sequence();
  const uint64_t last = record_.last_sequence();
  switch (request.start_position()) {
    case NEW_ONLY:
      return last + 1;
    case LAST_RECEIVED:
      return last >= first ? last : last + 1;
    case FIRST:
      return first;
    case SEQUENCE_START:
      return std::clamp(request.start_sequence(), first, last + 1);
    case TIME_DELTA_START: {
      const int64_t target = now_ns - request.start_time_delta_ns();
      // Timestamps are non-decreasing in sequence order: binary search.
      uint64_t lo = first, hi = last + 1;
      while (lo < hi) {
        const uint64_t mid = lo + (hi - lo) / 2;
        absl::StatusOr<StoredMessage> msg = ReadMessage(mid);
        if (!msg.ok()) return msg.status();
        if (msg->timestamp_ns() < target) {
          lo = mid + 1;
        } else {
          hi = mid;
        }
      }
      return lo;
    }
    default:
      return absl::InvalidArgumentError("unknown start position");
  }
}

absl::StatusOr<StoredMessage> ChannelFsm::ReadMessage(uint64_t sequence) const {
  if (sequence < record_.first_sequence() ||
      sequence > record_.last_sequence()) {
    return absl::NotFoundError(
        absl::StrCat("channel ", record_.name(), " has no message ", sequence));
  }
  if (!cache_.empty() && sequence >= cache_.front().sequence()) {
    return cache_[sequence - cache_.front().sequence()];
  }
  return store_->GetMessage(record_.channel_id(), sequence);
}

absl::Status ChannelFsm::ReadMessages(uint64_t from, size_t max_count,
                                      int64_t max_bytes,
                                      std::vector<StoredMessage>* out) const {
  from = std::max(from, record_.first_sequence());
  const uint64_t last = record_.last_sequence();
  int64_t bytes = 0;
  size_t count = 0;
  if (from > last || max_count == 0) return absl::OkStatus();
  const uint64_t cache_first =
      cache_.empty() ? last + 1 : cache_.front().sequence();
  if (from < cache_first) {
    std::vector<StoredMessage> stored;
    if (absl::Status s =
            store_->ScanMessages(record_.channel_id(), from, cache_first - 1,
                                 max_count, max_bytes, &stored);
        !s.ok()) {
      return s;
    }
    for (StoredMessage& msg : stored) {
      bytes += StoredBytes(msg);
      ++count;
      from = msg.sequence() + 1;
      out->push_back(std::move(msg));
    }
    if (from < cache_first) return absl::OkStatus();  // hit a bound
  }
  for (uint64_t seq = from; seq <= last && count < max_count; ++seq) {
    const StoredMessage& msg = cache_[seq - cache_first];
    if (count > 0 && bytes + StoredBytes(msg) > max_bytes) break;
    bytes += StoredBytes(msg);
    ++count;
    out->push_back(msg);
  }
  return absl::OkStatus();
}

}  // namespace spate::server
