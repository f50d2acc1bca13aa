#include "server/channel_host.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "base/check.h"
#include "base/log.h"
#include "server/validation.h"

namespace spate::server {
namespace {

// A stream attached to a channel led here: acks and its end go back to the
// channel through the node's loop.
class LocalUpstream : public SubscriptionUpstream {
 public:
  // Copies the node's routes: the stream may outlive this channel's host.
  LocalUpstream(const ChannelHostOptions& options, uint64_t channel_id,
                std::string member_id)
      : post_acks_(options.post_acks),
        post_stream_end_(options.post_stream_end),
        channel_id_(channel_id),
        member_id_(std::move(member_id)) {}
  void Acks(std::vector<uint64_t> seqs) override {
    post_acks_(channel_id_, member_id_, std::move(seqs));
  }
  void HalfClosed() override { post_stream_end_(channel_id_, member_id_); }
  void Gone() override { post_stream_end_(channel_id_, member_id_); }

 private:
  decltype(ChannelHostOptions::post_acks) post_acks_;
  decltype(ChannelHostOptions::post_stream_end) post_stream_end_;
  const uint64_t channel_id_;
  const std::string member_id_;
};

}  // namespace

PubAck ErrorAck(const std::string& guid, const absl::Status& status) {
  PubAck ack;
  ack.set_guid(guid);
  ack.set_error(std::string(status.message()));
  ack.set_error_code(static_cast<int>(status.code()));
  return ack;
}

ChannelHost::ChannelHost(std::unique_ptr<ChannelFsm> fsm,
                         std::unique_ptr<RaftGroup> group,
                         const ChannelHostOptions& options, const Clock* clock)
    : fsm_(std::move(fsm)),
      group_(std::move(group)),
      options_(options),
      clock_(clock),
      last_activity_ns_(clock->NowNs()) {
  CHECK(options_.config != nullptr);
  if (options_.metrics != nullptr) {
    counters_ = options_.metrics->ForChannel(fsm_->name());
  }
}

ChannelHost::~ChannelHost() {
  Shutdown(absl::UnavailableError("channel is shutting down"));
}

void ChannelHost::Shutdown(const absl::Status& status) {
  for (PublishDone& done : pending_.dones) done(ErrorAck("", status));
  pending_ = PendingPublish();
  StopLeading(status);
  group_->FailAll(status);
}

// ---- Publish ----

namespace {

// Counts what a committed publish batch stored (not the deduplicated).
void CountPublished(Metrics* metrics, ChannelCounters* counters,
                    const ChannelApplyResult& result,
                    const std::vector<int64_t>& sizes) {
  int64_t msgs = 0;
  int64_t bytes = 0;
  for (size_t i = 0; i < sizes.size(); ++i) {
    if (i < result.duplicates.size() && result.duplicates[i]) continue;
    ++msgs;
    bytes += sizes[i];
  }
  metrics->Published(counters, msgs, bytes);
}

}  // namespace

void ChannelHost::Publish(const PubMsg& msg, PublishDone done) {
  last_activity_ns_ = clock_->NowNs();
  if (!Serving()) {
    group_->WhenServing(
        clock_->NowNs() + options_.serving_wait_ns,
        [this, msg, done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) {
            done(ErrorAck(msg.guid(), status));
            return;
          }
          Publish(msg, std::move(done));
        });
    return;
  }
  if (pending_.dones.empty()) pending_.first_arrival_ns = clock_->NowNs();
  PublishEntry* entry = pending_.batch.add_entries();
  entry->set_client_id(msg.client_id());
  entry->set_guid(msg.guid());
  entry->set_reply(msg.reply());
  entry->set_data(msg.data());
  *entry->mutable_headers() = msg.headers();
  entry->set_timestamp_ns(clock_->WallNs());
  pending_.dones.push_back(std::move(done));
  pending_.bytes += MessageBytes(msg.data(), msg.headers());
  if (pending_.batch.entries_size() >=
          static_cast<int>(options_.publish_batch_entries_max) ||
      pending_.bytes >= options_.publish_batch_bytes_max) {
    ProposePublishes();
  }
}

void ChannelHost::ProposePublishes() {
  if (pending_.dones.empty()) return;
  PendingPublish pending = std::move(pending_);
  pending_ = PendingPublish();
  ChannelCommand command;
  *command.mutable_publish() = std::move(pending.batch);
  std::vector<std::string> guids;
  std::vector<int64_t> sizes;
  guids.reserve(pending.dones.size());
  sizes.reserve(pending.dones.size());
  for (const PublishEntry& entry : command.publish().entries()) {
    guids.push_back(entry.guid());
    sizes.push_back(static_cast<int64_t>(entry.data().size()));
  }
  group_->Propose(
      command.SerializeAsString(),
      [guids = std::move(guids), sizes = std::move(sizes),
       dones = std::move(pending.dones), metrics = options_.metrics,
       counters = counters_, clock = clock_,
       arrival_ns =
           pending.first_arrival_ns](const ApplyOutcome& outcome) mutable {
        if (metrics != nullptr && outcome.status.ok() &&
            outcome.channel->status.ok()) {
          CountPublished(metrics, counters, *outcome.channel, sizes);
          metrics->PublishCommitted(
              static_cast<double>(clock->NowNs() - arrival_ns) * 1e-9);
        }
        for (size_t i = 0; i < dones.size(); ++i) {
          if (!outcome.status.ok()) {
            dones[i](ErrorAck(guids[i], outcome.status));
            continue;
          }
          const ChannelApplyResult& result = *outcome.channel;
          if (!result.status.ok()) {
            dones[i](ErrorAck(guids[i], result.status));
            continue;
          }
          PubAck ack;
          ack.set_guid(guids[i]);
          ack.set_sequence(result.sequences[i]);
          dones[i](ack);
        }
      });
}

// ---- Subscribe ----

std::string ChannelHost::NewMemberId() {
  return absl::StrFormat("%s.%d.%d", options_.member_id_prefix,
                         fsm_->channel_id(), ++member_counter_);
}

void ChannelHost::Subscribe(const SubscriptionRequest& request,
                            std::shared_ptr<SubscriberStream> stream) {
  last_activity_ns_ = clock_->NowNs();
  if (!Serving()) {
    group_->WhenServing(clock_->NowNs() + options_.serving_wait_ns,
                        [this, request, stream](absl::Status status) mutable {
                          if (!status.ok()) {
                            stream->End(status);
                            return;
                          }
                          Subscribe(request, std::move(stream));
                        });
    return;
  }
  DoSubscribe(request, std::move(stream));
}

void ChannelHost::DoSubscribe(const SubscriptionRequest& request,
                              std::shared_ptr<SubscriberStream> stream) {
  CHECK(delivery_ != nullptr);
  absl::StatusOr<uint64_t> start =
      fsm_->ResolveStartSequence(request, clock_->WallNs());
  if (!start.ok()) {
    stream->End(start.status());
    return;
  }
  SubscriptionCreate create;
  create.set_client_id(request.client_id());
  create.set_conn_id(request.conn_id());
  create.set_durable_name(request.durable_name());
  create.set_q_group(request.q_group());
  create.set_max_in_flight(request.max_in_flight());
  create.set_ack_wait_ms(int64_t{request.ack_wait_in_secs()} * 1000);
  create.set_start_sequence(*start);
  create.set_member_id(NewMemberId());
  const Subscription* existing = fsm_->FindExisting(create);
  bool stale_closed = false;
  if (existing != nullptr && !existing->queue() && existing->online()) {
    // A durable still attached to a connection that is gone (its close is
    // on the way): close that member first; log order makes the create
    // below find the durable offline.
    const MemberRecord& member = existing->record.members(0);
    if (!options_.connection_alive(member.client_id(), member.conn_id())) {
      const uint64_t sub_id = existing->record.sub_id();
      const std::string stale = member.member_id();
      const uint64_t last_sent = DetachMember(
          sub_id, stale,
          absl::NotFoundError("client was replaced by a newer connection"));
      ProposeClose(sub_id, stale, last_sent, nullptr);
      stale_closed = true;
    }
  }
  if (!stale_closed) {
    if (absl::Status status = fsm_->CheckSubscriptionCreate(create);
        !status.ok()) {
      stream->End(status);
      return;
    }
  }
  const uint64_t next =
      existing != nullptr ? existing->record.last_sent() + 1 : *start;
  create.set_sent_lease(delivery_->InitialLease(next, request.max_in_flight()));
  ProposeProgress();  // keep acks ahead of a resume in the log
  ChannelCommand command;
  *command.mutable_subscribe() = create;
  const std::string member_id = create.member_id();
  group_->Propose(
      command.SerializeAsString(),
      [this, member_id, stream](const ApplyOutcome& outcome) {
        absl::Status status = outcome.status;
        if (status.ok()) status = outcome.channel->status;
        if (!status.ok()) {
          stream->End(status);
          return;
        }
        if (delivery_ == nullptr) {  // lost leadership meanwhile
          stream->End(absl::UnavailableError("leadership changed; retry"));
          return;
        }
        const ChannelApplyResult& result = *outcome.channel;
        delivery_->Attach(result.sub_id, member_id, result.previous_last_sent,
                          stream);
        streams_[member_id] = stream;
        SubscriptionResponse response;
        response.set_subscription_id(member_id);
        const Subscription* sub = fsm_->FindSubscription(result.sub_id);
        response.set_start_sequence(fsm_->EffectiveAckFloor(*sub) + 1);
        if (!stream->Started(response,
                             std::make_shared<LocalUpstream>(
                                 options_, fsm_->channel_id(), member_id))) {
          StreamEnded(member_id);
        }
      });
}

void ChannelHost::Acks(const std::string& member_id,
                       absl::Span<const uint64_t> seqs) {
  if (delivery_ == nullptr) return;
  for (uint64_t seq : seqs) delivery_->Ack(member_id, seq);
}

uint64_t ChannelHost::DetachMember(uint64_t sub_id,
                                   const std::string& member_id,
                                   const absl::Status& stream_status) {
  uint64_t last_sent;
  if (delivery_ != nullptr && delivery_->HasMember(member_id)) {
    last_sent = delivery_->Detach(member_id);
  } else {
    // Attached by an earlier leader or run: bounded by the lease.
    const Subscription* sub = fsm_->FindSubscription(sub_id);
    last_sent = sub == nullptr
                    ? 0
                    : std::min(sub->record.last_sent(), fsm_->last_sequence());
  }
  auto it = streams_.find(member_id);
  if (it != streams_.end()) {
    it->second->End(stream_status);
    streams_.erase(it);
  }
  return last_sent;
}

void ChannelHost::ProposeClose(uint64_t sub_id, const std::string& member_id,
                               uint64_t last_sent, StatusDone done) {
  ProposeProgress();  // acks first, so they are never lost by the close
  ChannelCommand command;
  SubscriptionClose* close = command.mutable_close_subscription();
  close->set_sub_id(sub_id);
  close->set_member_id(member_id);
  close->set_last_sent(last_sent);
  group_->Propose(
      command.SerializeAsString(),
      [done = std::move(done)](const ApplyOutcome& outcome) mutable {
        absl::Status status = outcome.status;
        if (status.ok()) status = outcome.channel->status;
        if (done) done(status);
      });
}

void ChannelHost::StreamEnded(const std::string& member_id) {
  if (delivery_ == nullptr || !delivery_->HasMember(member_id)) return;
  const Subscription* sub = fsm_->FindByMember(member_id);
  if (sub == nullptr) return;
  const uint64_t sub_id = sub->record.sub_id();
  // The stream ends only once the close (and the acks before it) are
  // committed: a client that half-closed learns its position is saved.
  std::shared_ptr<SubscriberStream> stream;
  if (auto it = streams_.find(member_id); it != streams_.end()) {
    stream = std::move(it->second);
    streams_.erase(it);
  }
  const uint64_t last_sent = delivery_->Detach(member_id);
  ProposeClose(sub_id, member_id, last_sent, [stream](absl::Status status) {
    if (stream != nullptr) stream->End(status);
  });
}

void ChannelHost::Unsubscribe(const UnsubscribeRequest& request,
                              StatusDone done) {
  if (!Serving()) {
    group_->WhenServing(
        clock_->NowNs() + options_.serving_wait_ns,
        [this, request, done = std::move(done)](absl::Status status) mutable {
          if (!status.ok()) {
            done(status);
            return;
          }
          Unsubscribe(request, std::move(done));
        });
    return;
  }
  DoUnsubscribe(request, std::move(done));
}

void ChannelHost::DoUnsubscribe(const UnsubscribeRequest& request,
                                StatusDone done) {
  const Subscription* sub = fsm_->FindByMember(request.subscription_id());
  const MemberRecord* member =
      sub == nullptr ? nullptr : sub->FindMember(request.subscription_id());
  if (member == nullptr || member->client_id() != request.client_id()) {
    done(absl::NotFoundError(absl::StrCat(
        "client '", request.client_id(), "' has no subscription '",
        request.subscription_id(), "' on channel '", fsm_->name(), "'")));
    return;
  }
  if (!request.durable_name().empty() &&
      request.durable_name() != sub->record.durable_name()) {
    done(absl::InvalidArgumentError(
        absl::StrCat("durable_name: subscription '", request.subscription_id(),
                     "' is not durable '", request.durable_name(), "'")));
    return;
  }
  const uint64_t sub_id = sub->record.sub_id();
  const std::string member_id = request.subscription_id();
  const uint64_t last_sent = DetachMember(sub_id, member_id, absl::OkStatus());
  if (request.close_only()) {
    ProposeClose(sub_id, member_id, last_sent, std::move(done));
    return;
  }
  ProposeProgress();
  ChannelCommand command;
  SubscriptionDelete* del = command.mutable_delete_subscription();
  del->set_sub_id(sub_id);
  del->set_member_id(member_id);
  group_->Propose(
      command.SerializeAsString(),
      [done = std::move(done)](const ApplyOutcome& outcome) mutable {
        absl::Status status = outcome.status;
        if (status.ok()) status = outcome.channel->status;
        done(status);
      });
}

void ChannelHost::CloseClientMembers(const std::string& client_id,
                                     const std::string& conn_id,
                                     const absl::Status& stream_status) {
  if (!Serving()) return;  // the channel's leader does it
  for (auto& [sub_id, member_id] : fsm_->MembersOfClient(client_id)) {
    const MemberRecord* member =
        fsm_->FindSubscription(sub_id)->FindMember(member_id);
    if (!conn_id.empty() && member->conn_id() != conn_id) continue;
    const uint64_t last_sent = DetachMember(sub_id, member_id, stream_status);
    ProposeClose(sub_id, member_id, last_sent, nullptr);
  }
}

// ---- Loop ----

void ChannelHost::ProposeProgress() {
  if (delivery_ == nullptr) return;
  ChannelCommand command;
  if (!delivery_->TakeProgress(command.mutable_progress())) return;
  group_->Propose(command.SerializeAsString(),
                  [this](const ApplyOutcome& outcome) {
                    if (!outcome.status.ok() && delivery_ != nullptr) {
                      delivery_->ProgressDropped();
                    }
                  });
}

void ChannelHost::FlushProposals() {
  ProposePublishes();
  ProposeProgress();
}

ChannelApplyResult ChannelHost::Apply(const raft::Entry& entry,
                                      storage::WriteBatch* batch) {
  if (entry.data().empty()) {
    fsm_->ApplyEmpty(entry.index(), batch);
    return ChannelApplyResult{};
  }
  ChannelCommand command;
  if (!command.ParseFromString(entry.data())) {
    // Every replica sees the same bytes, so every replica skips it alike.
    LOG(ERROR) << "unparsable channel command skipped channel=" << fsm_->name()
               << " index=" << entry.index();
    fsm_->ApplyEmpty(entry.index(), batch);
    ChannelApplyResult result;
    result.status = absl::DataLossError("unparsable channel command");
    return result;
  }
  ChannelApplyResult result = fsm_->Apply(entry.index(), command, batch);
  if (delivery_ != nullptr) delivery_->MarkDirty();
  if (base::LogEnabled(base::LogLevel::kDebug) && !command.has_publish()) {
    LOG(DEBUG) << "applied channel=" << fsm_->name()
               << " index=" << entry.index() << " term=" << entry.term()
               << " command=" << command.ShortDebugString()
               << " status=" << result.status;
  }
  return result;
}

void ChannelHost::AfterApplyWritten() { fsm_->MarkWritten(); }

absl::Status ChannelHost::InstallSnapshot(const ChannelSnapshot& image,
                                          storage::WriteBatch* batch) {
  // A leader never installs a snapshot; whatever was leader-side is stale.
  StopLeading(absl::UnavailableError("channel leadership moved; retry"));
  return fsm_->Install(image, batch);
}

bool ChannelHost::Serving() {
  if (!group_->serving()) return false;
  UpdateLeadership();  // serving waiters may run before the loop's update
  return true;
}

void ChannelHost::UpdateLeadership() {
  if (delivery_ == nullptr && group_->serving()) {
    StartLeading();
  } else if (delivery_ != nullptr && !group_->leader()) {
    StopLeading(absl::UnavailableError("channel leadership moved; retry"));
  }
}

void ChannelHost::StartLeading() {
  delivery_ = std::make_unique<ChannelDelivery>(fsm_.get(), options_.delivery);
  if (counters_ != nullptr) delivery_->set_metrics(options_.metrics, counters_);
  // Members recorded by an earlier leader or run have no stream here.
  std::vector<std::pair<uint64_t, std::string>> stale;
  for (const auto& [sub_id, sub] : fsm_->subscriptions()) {
    for (const MemberRecord& member : sub.record.members()) {
      stale.emplace_back(sub_id, member.member_id());
    }
  }
  for (const auto& [sub_id, member_id] : stale) {
    const uint64_t last_sent =
        DetachMember(sub_id, member_id, absl::UnavailableError("stale"));
    ProposeClose(sub_id, member_id, last_sent, nullptr);
  }
  if (!stale.empty()) {
    LOG(INFO) << "closed subscriptions of a previous leader channel="
              << fsm_->name() << " members=" << stale.size();
  }
}

void ChannelHost::StopLeading(const absl::Status& status) {
  for (auto& [member_id, stream] : streams_) stream->End(status);
  streams_.clear();
  delivery_.reset();
}

void ChannelHost::Pump(int64_t now_ns) {
  if (delivery_ == nullptr || !delivery_->NeedsPump(now_ns)) return;
  delivery_->Pump(now_ns);
  for (const std::string& member_id : delivery_->TakeDeadMembers()) {
    LOG(INFO) << "subscriber stream gone or too slow channel=" << fsm_->name()
              << " member=" << member_id;
    StreamEnded(member_id);
  }
}

int64_t ChannelHost::NextDeadline() const {
  return delivery_ == nullptr ? INT64_MAX : delivery_->NextDeadline();
}

void ChannelHost::OnTick(int64_t now_ns) {
  group_->ExpireServingWaiters(now_ns);
  if (delivery_ != nullptr) MaybeTrim(now_ns);
}

void ChannelHost::SetLimits(const ChannelLimits& limits) {
  if (!leading() || limits_in_flight_ ||
      limits.SerializeAsString() ==
          fsm_->record().limits().SerializeAsString()) {
    return;
  }
  ChannelCommand command;
  *command.mutable_set_limits()->mutable_limits() = limits;
  limits_in_flight_ = true;
  group_->Propose(
      command.SerializeAsString(), [this, limits](const ApplyOutcome& outcome) {
        limits_in_flight_ = false;
        LOG(INFO) << "channel limits changed channel=" << fsm_->name()
                  << " max_msgs=" << limits.max_msgs()
                  << " max_bytes=" << limits.max_bytes()
                  << " max_age_ms=" << limits.max_age_ms() << " "
                  << outcome.status;
      });
}

void ChannelHost::MaybeTrim(int64_t now_ns) {
  const int64_t max_age_ms = fsm_->record().limits().max_age_ms();
  if (max_age_ms <= 0 || trim_in_flight_ || now_ns < next_trim_check_ns_) {
    return;
  }
  // Check about ten times per max_age, at most every 10 ms.
  next_trim_check_ns_ =
      now_ns + std::max<int64_t>(max_age_ms * 100000, 10'000'000);
  if (fsm_->record().msgs() == 0) return;
  absl::StatusOr<StoredMessage> oldest =
      fsm_->ReadMessage(fsm_->first_sequence());
  // Ages compare message timestamps, so with the wall clock.
  const int64_t wall_ns = clock_->WallNs();
  if (!oldest.ok() ||
      oldest->timestamp_ns() >= wall_ns - max_age_ms * 1000000) {
    return;
  }
  ChannelCommand command;
  command.mutable_trim()->set_now_ns(wall_ns);
  trim_in_flight_ = true;
  group_->Propose(command.SerializeAsString(),
                  [this](const ApplyOutcome&) { trim_in_flight_ = false; });
}

}  // namespace spate::server
