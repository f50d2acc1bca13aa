#include "server/delivery.h"

#include <algorithm>
#include <limits>

#include "base/check.h"

namespace spate::server {

ChannelDelivery::ChannelDelivery(const ChannelFsm* fsm,
                                 const DeliveryOptions& options)
    : fsm_(fsm), options_(options) {}

uint64_t ChannelDelivery::InitialLease(uint64_t start,
                                       int max_in_flight) const {
  return start - 1 +
         std::max<uint64_t>(options_.lease_ahead_min,
                            4 * static_cast<uint64_t>(max_in_flight));
}

uint64_t ChannelDelivery::LeaseAhead(const ActiveSub& sub) const {
  uint64_t window = 0;
  for (const Member& member : sub.members) window += member.max_in_flight;
  return std::max<uint64_t>(options_.lease_ahead_min, 4 * window);
}

void ChannelDelivery::Attach(uint64_t sub_id, const std::string& member_id,
                             uint64_t previous_last_sent,
                             std::shared_ptr<DeliverySink> sink) {
  const Subscription* fsub = fsm_->FindSubscription(sub_id);
  CHECK(fsub != nullptr) << "attach to unknown subscription " << sub_id;
  const MemberRecord* record = fsub->FindMember(member_id);
  CHECK(record != nullptr) << "attach of unknown member " << member_id;
  CHECK(!member_to_sub_.contains(member_id));

  auto [it, inserted] = subs_.try_emplace(sub_id);
  ActiveSub& sub = it->second;
  if (inserted) {
    sub.sub_id = sub_id;
    const uint64_t floor = fsm_->EffectiveAckFloor(*fsub);
    const uint64_t boundary =
        std::max(floor, std::min(previous_last_sent, fsm_->last_sequence()));
    // Delivered in an earlier session and never acked: redeliver first.
    for (uint64_t seq = floor + 1; seq <= boundary; ++seq) {
      if (!fsub->acked.contains(seq)) sub.unassigned.insert(seq);
    }
    sub.cursor = boundary + 1;
  }
  Member member;
  member.member_id = member_id;
  member.sink = std::move(sink);
  member.max_in_flight = record->max_in_flight();
  member.ack_wait_ns = record->ack_wait_ms() * 1000000;
  sub.members.push_back(std::move(member));
  member_to_sub_[member_id] = sub_id;
  dirty_ = true;
}

bool ChannelDelivery::HasMember(const std::string& member_id) const {
  return member_to_sub_.contains(member_id);
}

uint64_t ChannelDelivery::Detach(const std::string& member_id) {
  auto found = member_to_sub_.find(member_id);
  if (found == member_to_sub_.end()) return 0;
  const uint64_t sub_id = found->second;
  member_to_sub_.erase(found);
  ActiveSub& sub = subs_.at(sub_id);
  const uint64_t last_sent = sub.cursor - 1;
  // Hand the member's pending messages to the others, right away.
  for (auto it = sub.pending.begin(); it != sub.pending.end();) {
    if (it->second.member_id == member_id) {
      sub.deadlines.erase({it->second.deadline_ns, it->first});
      sub.unassigned.insert(it->first);
      it = sub.pending.erase(it);
    } else {
      ++it;
    }
  }
  sub.members.erase(
      std::remove_if(sub.members.begin(), sub.members.end(),
                     [&](const Member& m) { return m.member_id == member_id; }),
      sub.members.end());
  if (sub.members.empty()) {
    // Keep what must still be replicated; forget the rest (the FSM holds
    // the unacked set, and last_sent bounds what was delivered).
    if (!sub.acked.empty() || !sub.redelivered.empty()) {
      SubscriptionProgress& orphan = orphan_progress_[sub_id];
      orphan.set_sub_id(sub_id);
      for (uint64_t seq : sub.acked) orphan.add_acked(seq);
      for (uint64_t seq : sub.redelivered) orphan.add_redelivered(seq);
    }
    subs_.erase(sub_id);
  }
  dirty_ = true;
  return last_sent;
}

ChannelDelivery::ActiveSub* ChannelDelivery::FindSubOfMember(
    const std::string& member_id) {
  auto it = member_to_sub_.find(member_id);
  if (it == member_to_sub_.end()) return nullptr;
  return &subs_.at(it->second);
}

ChannelDelivery::Member* ChannelDelivery::FindMember(
    ActiveSub* sub, const std::string& member_id) {
  for (Member& member : sub->members) {
    if (member.member_id == member_id) return &member;
  }
  return nullptr;
}

void ChannelDelivery::Ack(const std::string& member_id, uint64_t sequence) {
  ActiveSub* sub = FindSubOfMember(member_id);
  if (sub == nullptr) return;
  auto it = sub->pending.find(sequence);
  if (it != sub->pending.end()) {
    if (Member* holder = FindMember(sub, it->second.member_id)) {
      --holder->in_flight;
      DCHECK_GE(holder->in_flight, 0);
    }
    sub->deadlines.erase({it->second.deadline_ns, sequence});
    sub->pending.erase(it);
  } else if (sub->unassigned.erase(sequence) == 0) {
    return;  // not pending: a duplicate or stale ack
  }
  sub->acked.push_back(sequence);
  if (metrics_ != nullptr) metrics_->Acked(counters_, 1);
  dirty_ = true;
}

bool ChannelDelivery::Fits(Member* member, int64_t bytes) {
  if (member->outbox_bytes + bytes <= member->budget) return true;
  member->budget_blocked = true;
  return false;
}

bool ChannelDelivery::AnyLive(const ActiveSub& sub) {
  for (const Member& member : sub.members) {
    if (!member.dead) return true;
  }
  return false;
}

int64_t ChannelDelivery::WireBytes(const StoredMessage& msg) const {
  // MsgProto adds the subject and two small varints to what is stored.
  return static_cast<int64_t>(msg.ByteSizeLong() + fsm_->name().size()) + 32;
}

ChannelDelivery::Member* ChannelDelivery::PickMember(ActiveSub* sub,
                                                     bool respect_limit,
                                                     int64_t bytes) {
  Member* best = nullptr;
  const size_t n = sub->members.size();
  // Rotate the starting point so equally loaded members take turns.
  for (size_t i = 0; i < n; ++i) {
    Member& member = sub->members[(rotation_ + i) % n];
    if (member.dead) continue;
    if (respect_limit && member.in_flight >= member.max_in_flight) continue;
    if (!Fits(&member, bytes)) continue;
    if (best == nullptr || member.in_flight < best->in_flight) best = &member;
  }
  ++rotation_;
  return best;
}

void ChannelDelivery::Send(ActiveSub* sub, Member* member,
                           const StoredMessage& msg, bool redelivered,
                           uint32_t count, int64_t now_ns, int64_t bytes) {
  member->outbox_bytes += bytes;
  MsgProto& out = member->outbox.emplace_back();
  out.set_sequence(msg.sequence());
  out.set_subject(fsm_->name());
  out.set_reply(msg.reply());
  out.set_data(msg.data());
  out.set_timestamp(msg.timestamp_ns());
  out.set_redelivered(redelivered);
  out.set_redelivery_count(count);
  out.set_crc32(msg.crc32());
  *out.mutable_headers() = msg.headers();
  const int64_t deadline = now_ns + member->ack_wait_ns;
  sub->pending[msg.sequence()] = {member->member_id, deadline, count};
  sub->deadlines.insert({deadline, msg.sequence()});
  ++member->in_flight;
}

void ChannelDelivery::DropPending(ActiveSub* sub, uint64_t sequence) {
  auto it = sub->pending.find(sequence);
  if (it == sub->pending.end()) return;
  if (Member* holder = FindMember(sub, it->second.member_id)) {
    --holder->in_flight;
  }
  sub->deadlines.erase({it->second.deadline_ns, sequence});
  sub->pending.erase(it);
}

void ChannelDelivery::RedeliverExpired(ActiveSub* sub, int64_t now_ns) {
  const Subscription* fsub = fsm_->FindSubscription(sub->sub_id);
  const bool queue = fsub != nullptr && fsub->queue();
  while (!sub->deadlines.empty() && sub->deadlines.begin()->first <= now_ns) {
    const uint64_t seq = sub->deadlines.begin()->second;
    const Pending pending = sub->pending.at(seq);
    absl::StatusOr<StoredMessage> msg = fsm_->ReadMessage(seq);
    if (!msg.ok()) {  // removed by limits: nothing left to deliver
      DropPending(sub, seq);
      continue;
    }
    const int64_t bytes = WireBytes(*msg);
    Member* holder = FindMember(sub, pending.member_id);
    Member* target = holder;
    if (queue || target == nullptr || target->dead) {
      target = PickMember(sub, /*respect_limit=*/false, bytes);
      // Live members without room: it stays due until one has room.
      if (target == nullptr && AnyLive(*sub)) return;
    } else if (!Fits(target, bytes)) {
      return;  // stays due; the next pump retries (in deadline order)
    }
    DropPending(sub, seq);
    if (target == nullptr) {
      sub->unassigned.insert(seq);
      continue;
    }
    sub->redelivered.push_back(seq);
    Send(sub, target, *msg, /*redelivered=*/true, pending.redelivery_count + 1,
         now_ns, bytes);
  }
}

void ChannelDelivery::SendUnassigned(ActiveSub* sub, int64_t now_ns) {
  const Subscription* fsub = fsm_->FindSubscription(sub->sub_id);
  while (!sub->unassigned.empty()) {
    const uint64_t seq = *sub->unassigned.begin();
    absl::StatusOr<StoredMessage> msg = fsm_->ReadMessage(seq);
    if (!msg.ok()) {  // removed by limits
      sub->unassigned.erase(sub->unassigned.begin());
      continue;
    }
    const int64_t bytes = WireBytes(*msg);
    // None: no live member, or none with room this pump (it waits).
    Member* target = PickMember(sub, /*respect_limit=*/false, bytes);
    if (target == nullptr) return;
    sub->unassigned.erase(sub->unassigned.begin());
    uint32_t count = 0;
    if (fsub != nullptr) {
      auto it = fsub->redelivery_counts.find(seq);
      if (it != fsub->redelivery_counts.end()) count = it->second;
    }
    sub->redelivered.push_back(seq);
    Send(sub, target, *msg, /*redelivered=*/true, count + 1, now_ns, bytes);
  }
}

void ChannelDelivery::SendNew(ActiveSub* sub, int64_t now_ns) {
  const Subscription* fsub = fsm_->FindSubscription(sub->sub_id);
  if (fsub == nullptr) return;
  const uint64_t lease = fsub->record.last_sent();
  sub->cursor = std::max(sub->cursor, fsm_->first_sequence());
  std::vector<StoredMessage> msgs;
  while (sub->cursor <= std::min(fsm_->last_sequence(), lease)) {
    uint64_t capacity = 0;
    int64_t room = 0;  // bytes the members with capacity take this pump
    for (const Member& m : sub->members) {
      if (!m.dead && m.in_flight < m.max_in_flight) {
        capacity += m.max_in_flight - m.in_flight;
        room = std::max(room, m.budget - m.outbox_bytes);
      }
    }
    if (capacity == 0) break;
    const uint64_t available =
        std::min(fsm_->last_sequence(), lease) - sub->cursor + 1;
    const size_t count = static_cast<size_t>(
        std::min<uint64_t>({capacity, available, options_.read_batch_max}));
    msgs.clear();
    // Read no more than fits (at least one message, to find out).
    const int64_t read_bytes =
        std::max<int64_t>(1, std::min(options_.read_bytes_max, room));
    if (!fsm_->ReadMessages(sub->cursor, count, read_bytes, &msgs).ok() ||
        msgs.empty()) {
      break;
    }
    for (const StoredMessage& msg : msgs) {
      if (msg.sequence() > lease) break;
      const int64_t bytes = WireBytes(msg);
      Member* target = PickMember(sub, /*respect_limit=*/true, bytes);
      if (target == nullptr) return;
      Send(sub, target, msg, /*redelivered=*/false, 0, now_ns, bytes);
      sub->cursor = msg.sequence() + 1;
    }
  }
}

void ChannelDelivery::FlushOutboxes(ActiveSub* sub) {
  for (Member& member : sub->members) {
    if (member.outbox.empty()) continue;
    if (metrics_ != nullptr) {
      int64_t bytes = 0;
      int64_t redelivered = 0;
      for (const MsgProto& msg : member.outbox) {
        bytes += static_cast<int64_t>(msg.data().size());
        redelivered += msg.redelivered() ? 1 : 0;
      }
      metrics_->Delivered(counters_, static_cast<int64_t>(member.outbox.size()),
                          bytes, redelivered);
    }
    if (member.dead || !member.sink->Deliver(&member.outbox)) {
      if (!member.dead) dead_members_.push_back(member.member_id);
      member.dead = true;
    }
    member.outbox.clear();
    member.outbox_bytes = 0;
  }
}

void ChannelDelivery::Pump(int64_t now_ns) {
  paced_retry_at_ns_ = std::numeric_limits<int64_t>::max();
  for (auto& [sub_id, sub] : subs_) {
    for (Member& member : sub.members) {
      member.budget_blocked = false;
      if (member.dead) continue;
      member.budget = member.sink->FreeBytes();
      if (member.blocked_since_ns >= 0 &&
          now_ns - member.blocked_since_ns >= options_.slow_consumer_stall_ns) {
        // No room for so long: the client is not reading. Offer more than
        // its sink takes (bounded, so this pump reads little), which cuts it
        // off as a slow consumer.
        member.budget = std::max<int64_t>(member.budget, 0) + (1 << 20);
      }
    }
    RedeliverExpired(&sub, now_ns);
    SendUnassigned(&sub, now_ns);
    SendNew(&sub, now_ns);
    FlushOutboxes(&sub);
    for (Member& member : sub.members) {
      if (member.dead || !member.budget_blocked) {
        member.blocked_since_ns = -1;
        continue;
      }
      if (member.blocked_since_ns < 0) member.blocked_since_ns = now_ns;
      paced_retry_at_ns_ =
          std::min(paced_retry_at_ns_, now_ns + options_.paced_retry_ns);
    }
    // Extend the sent lease well before delivery reaches its end.
    const Subscription* fsub = fsm_->FindSubscription(sub_id);
    if (fsub != nullptr) {
      const uint64_t ahead = LeaseAhead(sub);
      const uint64_t lease =
          std::max(fsub->record.last_sent(), sub.lease_requested);
      if (sub.cursor + ahead / 2 > lease) {
        sub.lease_requested = sub.cursor - 1 + ahead;
      }
    }
  }
  dirty_ = false;
}

bool ChannelDelivery::NeedsPump(int64_t now_ns) const {
  return dirty_ || NextDeadline() <= now_ns;
}

int64_t ChannelDelivery::NextDeadline() const {
  int64_t next = paced_retry_at_ns_;
  for (const auto& [sub_id, sub] : subs_) {
    if (!sub.deadlines.empty()) {
      next = std::min(next, sub.deadlines.begin()->first);
    }
  }
  return next;
}

bool ChannelDelivery::TakeProgress(ProgressBatch* out) {
  bool any = false;
  for (auto& [sub_id, orphan] : orphan_progress_) {
    *out->add_subs() = std::move(orphan);
    any = true;
  }
  orphan_progress_.clear();
  for (auto& [sub_id, sub] : subs_) {
    const Subscription* fsub = fsm_->FindSubscription(sub_id);
    const bool extend = fsub != nullptr &&
                        sub.lease_requested > fsub->record.last_sent() &&
                        sub.lease_requested > sub.lease_proposed;
    if (sub.acked.empty() && sub.redelivered.empty() && !extend) continue;
    SubscriptionProgress* progress = out->add_subs();
    progress->set_sub_id(sub_id);
    for (uint64_t seq : sub.acked) progress->add_acked(seq);
    for (uint64_t seq : sub.redelivered) progress->add_redelivered(seq);
    if (extend) {
      progress->set_last_sent(sub.lease_requested);
      sub.lease_proposed = sub.lease_requested;
    }
    sub.acked.clear();
    sub.redelivered.clear();
    any = true;
  }
  return any;
}

void ChannelDelivery::ProgressDropped() {
  for (auto& [sub_id, sub] : subs_) sub.lease_proposed = 0;
  dirty_ = true;
}

std::vector<std::string> ChannelDelivery::TakeDeadMembers() {
  std::vector<std::string> dead;
  dead.swap(dead_members_);
  return dead;
}

int ChannelDelivery::InFlight(const std::string& member_id) const {
  auto it = member_to_sub_.find(member_id);
  if (it == member_to_sub_.end()) return 0;
  for (const Member& member : subs_.at(it->second).members) {
    if (member.member_id == member_id) return member.in_flight;
  }
  return 0;
}

bool ChannelDelivery::GetMemberStats(const std::string& member_id,
                                     MemberStats* out) const {
  auto it = member_to_sub_.find(member_id);
  if (it == member_to_sub_.end()) return false;
  const ActiveSub& sub = subs_.at(it->second);
  for (const Member& member : sub.members) {
    if (member.member_id != member_id) continue;
    out->in_flight = member.in_flight;
    out->stalled = member.in_flight >= member.max_in_flight;
    out->last_sent = sub.cursor - 1;
    return true;
  }
  return false;
}

}  // namespace spate::server
