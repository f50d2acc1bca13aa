// Node, part: gateways and mirrors (DESIGN.md §7). Loop thread only,
// except the public Gateway* entry points, which post to the loop.
//
// Remote publish: a client's publish (hops 0) to a channel that the
// gateway directory says another cluster serves is batched per cluster and
// sent once per loop iteration through the GatewayClient; the owner acks it
// after its own commit.
//
// Mirrors: the leader of a mirror channel runs its feed: it fetches the
// source's stored messages from (its last sequence + 1) through the gateway
// and proposes them as MirrorAppend commands chained on the previous
// batch's last sequence. The ChannelFsm applies a batch only when the
// channel still ends at that sequence, so whatever happens (a lost answer,
// a resumed feed, a new leader here or at the source, a restart) no
// message is stored twice and none is skipped; a rejected batch makes the
// feed restart from the channel's applied state.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/log.h"
#include "server/node.h"

namespace spate::server {
namespace {

// A fetch waits at most this long for new messages on the source side.
constexpr int64_t kFetchWaitMsMax = 5000;
// How long a caught-up feed's fetch waits at the source.
constexpr int64_t kFeedWaitMs = 1000;
// MirrorAppend proposals one feed keeps in flight.
constexpr int kFeedProposalsMax = 2;
constexpr int kFetchMessagesCap = 10000;
constexpr int64_t kFetchBytesCap = 16 << 20;
constexpr int kDirectoryPageCap = 1000;

}  // namespace

// ---- Serving other clusters ----

void Node::GatewayDirectory(const GatewayHelloRequest& request,
                            HelloDone done) {
  auto shared = std::make_shared<HelloDone>(std::move(done));
  if (!Post([this, request, shared] {
        GatewayHelloResponse response;
        response.set_cluster_name(config_.node().cluster_name());
        const int max =
            std::clamp(request.directory_max(), 1, kDirectoryPageCap);
        const auto& channels = meta_->channels();
        auto it = request.directory_after().empty()
                      ? channels.begin()
                      : channels.upper_bound(request.directory_after());
        for (; it != channels.end(); ++it) {
          if (it->second.has_mirror()) continue;  // owned by its source
          if (response.channels_size() == max) {
            response.set_more(true);
            break;
          }
          GatewayChannel* channel = response.add_channels();
          channel->set_name(it->first);
          if (ChannelHost* host = FindChannel(it->second.channel_id())) {
            channel->set_last_sequence(host->fsm().last_sequence());
          }
        }
        (*shared)(std::move(response));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::GatewayFetch(const GatewayFetchRequest& request, FetchDone done) {
  auto shared = std::make_shared<FetchDone>(std::move(done));
  if (!Post([this, request, shared] {
        absl::StatusOr<GatewayFetchResponse> response = ReadForGateway(request);
        if (response.ok() && response->messages().empty() &&
            request.wait_ms() > 0) {
          const int64_t wait_ms = std::min(request.wait_ms(), kFetchWaitMsMax);
          fetch_waiters_.push_back(
              FetchWaiter{request, clock_->NowNs() + wait_ms * 1000000,
                          std::move(*shared)});
          return;
        }
        (*shared)(std::move(response));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

absl::StatusOr<GatewayFetchResponse> Node::ReadForGateway(
    const GatewayFetchRequest& request) {
  const ChannelDirectoryEntry* entry = meta_->FindChannel(request.channel());
  if (entry == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("unknown channel '", request.channel(), "'"));
  }
  if (entry->has_mirror()) {
    return absl::FailedPreconditionError(
        absl::StrCat("channel '", request.channel(),
                     "' is itself a mirror; mirror its source instead"));
  }
  ChannelHost* host = FindChannel(entry->channel_id());
  if (host == nullptr) {
    return absl::UnavailableError(
        absl::StrCat("node ", self_, " holds no replica of channel '",
                     request.channel(), "'; retry through another gateway"));
  }
  const ChannelFsm& fsm = host->fsm();
  GatewayFetchResponse response;
  response.set_first_sequence(fsm.first_sequence());
  response.set_last_sequence(fsm.last_sequence());
  const uint64_t from =
      std::max<uint64_t>({request.from_sequence(), fsm.first_sequence(), 1});
  if (from > fsm.last_sequence()) return response;
  const int max_messages =
      std::clamp(request.max_messages(), 1, kFetchMessagesCap);
  const int64_t max_bytes =
      std::clamp<int64_t>(request.max_bytes(), 1, kFetchBytesCap);
  std::vector<StoredMessage> messages;
  if (absl::Status status = fsm.ReadMessages(
          from, static_cast<size_t>(max_messages), max_bytes, &messages);
      !status.ok()) {
    return status;
  }
  for (StoredMessage& message : messages) {
    *response.add_messages() = std::move(message);
  }
  return response;
}

void Node::ServeFetchWaiters(int64_t now_ns) {
  if (fetch_waiters_.empty()) return;
  std::vector<FetchWaiter> waiting;
  waiting.swap(fetch_waiters_);
  for (FetchWaiter& waiter : waiting) {
    bool ready = now_ns >= waiter.deadline_ns;
    if (!ready) {
      const ChannelDirectoryEntry* entry =
          meta_->FindChannel(waiter.request.channel());
      ChannelHost* host =
          entry == nullptr ? nullptr : FindChannel(entry->channel_id());
      ready = host == nullptr ||
              host->fsm().last_sequence() >= waiter.request.from_sequence();
    }
    if (ready) {
      waiter.done(ReadForGateway(waiter.request));
    } else {
      fetch_waiters_.push_back(std::move(waiter));
    }
  }
}

// ---- Remote publish ----

bool Node::IsMirror(const std::string& channel) const {
  if (mirror_names_.contains(channel)) return true;
  const ChannelDirectoryEntry* entry = meta_->FindChannel(channel);
  return entry != nullptr && entry->has_mirror();
}

bool Node::RouteToGateway(PubMsg* msg, PublishDone* done) {
  const ChannelDirectoryEntry* entry = meta_->FindChannel(msg->subject());
  const std::string owner = gateways_->RouteFor(
      msg->subject(), entry != nullptr, IsMirror(msg->subject()));
  if (owner.empty()) return false;
  ForwardBatch& batch = gateway_publishes_[owner];
  batch.msgs.push_back(std::move(*msg));
  batch.dones.push_back(std::move(*done));
  return true;
}

void Node::FlushGatewayPublishes() {
  if (gateway_publishes_.empty()) return;
  absl::btree_map<std::string, ForwardBatch> batches;
  batches.swap(gateway_publishes_);
  for (auto& [cluster, batch] : batches) {
    auto dones =
        std::make_shared<std::vector<PublishDone>>(std::move(batch.dones));
    gateways_->Publish(cluster, std::move(batch.msgs),
                       [dones](std::vector<PubAck> acks) {
                         for (size_t i = 0; i < acks.size(); ++i) {
                           (*dones)[i](acks[i]);
                         }
                       });
  }
}

// ---- Mirrors ----

void Node::ReconcileMirrors() {
  if (gateways_ == nullptr) return;
  std::vector<std::string> owned;
  for (const auto& [name, entry] : meta_->channels()) {
    if (!entry.has_mirror()) owned.push_back(name);
  }
  gateways_->SetLocalChannels(std::move(owned));

  if (meta_group_->serving()) {
    for (const MirrorConfig& mirror : config_.mirrors()) {
      MirrorSource source;
      source.set_cluster(mirror.source_cluster());
      source.set_channel(mirror.source_channel().empty()
                             ? mirror.channel()
                             : mirror.source_channel());
      const ChannelDirectoryEntry* entry = meta_->FindChannel(mirror.channel());
      if (entry == nullptr) {
        if (creating_.contains(mirror.channel())) continue;
        LOG(INFO) << "creating mirror channel=" << mirror.channel()
                  << " source=" << source.cluster() << "/" << source.channel();
        const std::string name = mirror.channel();
        CreateChannel(
            name,
            [name](absl::Status status) {
              if (!status.ok()) {
                LOG(WARNING) << "mirror channel not created channel=" << name
                             << " error=" << status;
              }
            },
            &source);
      } else if (!entry->has_mirror() || entry->mirror().SerializeAsString() !=
                                             source.SerializeAsString()) {
        if (mirror_conflicts_logged_.insert(mirror.channel()).second) {
          LOG(ERROR) << "configured mirror channel=" << mirror.channel()
                     << " exists already with another source or as a "
                        "regular channel; it is left as it is";
        }
      }
    }
  }

  // Feeds follow leadership of the mirror channels.
  for (const auto& [name, entry] : meta_->channels()) {
    if (!entry.has_mirror()) continue;
    ChannelHost* host = FindChannel(entry.channel_id());
    if (host == nullptr || !host->leading()) continue;
    auto [it, inserted] = mirror_feeds_.try_emplace(entry.channel_id());
    if (inserted) {
      it->second.generation = next_feed_generation_++;
      it->second.channel = name;
      it->second.source_cluster = entry.mirror().cluster();
      it->second.source_channel = entry.mirror().channel();
      LOG(INFO) << "mirror feed started channel=" << name
                << " source=" << entry.mirror().cluster() << "/"
                << entry.mirror().channel()
                << " from=" << host->fsm().last_sequence() + 1;
    }
  }
}

uint64_t Node::MirrorBase(const MirrorFeed& feed,
                          const ChannelHost& host) const {
  return feed.proposals > 0 && !feed.resync ? feed.proposed_last
                                            : host.fsm().last_sequence();
}

MirrorStatus Node::FeedStatus(const MirrorFeed& feed,
                              const ChannelHost& host) const {
  MirrorStatus status;
  status.set_channel(host.fsm().name());
  status.set_source_cluster(feed.source_cluster);
  status.set_source_channel(feed.source_channel);
  const uint64_t local = host.fsm().last_sequence();
  status.set_local_last_sequence(local);
  status.set_source_last_sequence(feed.source_last);
  status.set_lag(feed.source_last > local ? feed.source_last - local : 0);
  status.set_state(feed.error.empty() ? "RUNNING" : "WAITING");
  status.set_error(feed.error);
  status.set_messages_applied(feed.messages_applied);
  status.set_bytes_applied(feed.bytes_applied);
  return status;
}

void Node::ReportMirror(const MirrorFeed& feed, const ChannelHost& host) {
  gateways_->ReportMirror(FeedStatus(feed, host));
}

// ---- Mirrors declared at runtime ----

bool Node::ConfiguredMirror(const std::string& channel) const {
  for (const MirrorConfig& mirror : config_.mirrors()) {
    if (mirror.channel() == channel) return true;
  }
  return false;
}

void Node::AtMetaLeaderHere(int hops, StatusDone fail,
                            absl::AnyInvocable<void()> local) {
  auto shared_fail = std::make_shared<StatusDone>(std::move(fail));
  auto shared_local =
      std::make_shared<absl::AnyInvocable<void()>>(std::move(local));
  if (!Post([this, hops, shared_fail, shared_local] {
        RouteMeta(
            hops, Deadline(),
            [this, shared_fail,
             shared_local](absl::StatusOr<raft::NodeId> leader) {
              if (!leader.ok()) {
                (*shared_fail)(leader.status());
              } else if (*leader != self_) {
                (*shared_fail)(absl::UnavailableError(absl::StrCat(
                    "node ", *leader, " leads the metadata group: ask it")));
              } else {
                (*shared_local)();
              }
            });
      })) {
    (*shared_fail)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::AddMirror(const AddMirrorRequest& request, int hops,
                     AddMirrorDone done) {
  auto shared = std::make_shared<AddMirrorDone>(std::move(done));
  AtMetaLeaderHere(
      hops, [shared](absl::Status status) { (*shared)(status); },
      [this, request, shared] {
        MirrorSource source;
        source.set_cluster(request.source_cluster());
        source.set_channel(request.source_channel().empty()
                               ? request.channel()
                               : request.source_channel());
        const std::string described =
            absl::StrCat("mirror '", request.channel(), "' of ",
                         source.cluster(), "/", source.channel());
        if (gateways_ == nullptr || !gateways_->Knows(source.cluster())) {
          (*shared)(absl::InvalidArgumentError(absl::StrCat(
              "cannot declare ", described, ": cluster '", source.cluster(),
              "' is not among this cluster's gateways")));
          return;
        }
        for (const MirrorConfig& mirror : config_.mirrors()) {
          const std::string& configured = mirror.source_channel().empty()
                                              ? mirror.channel()
                                              : mirror.source_channel();
          if (mirror.channel() == request.channel() &&
              (mirror.source_cluster() != source.cluster() ||
               configured != source.channel())) {
            // The configured mirror may not be created yet.
            (*shared)(absl::AlreadyExistsError(absl::StrCat(
                "cannot declare ", described, ": the config file declares '",
                request.channel(), "' a mirror of ", mirror.source_cluster(),
                "/", configured)));
            return;
          }
        }
        const ChannelDirectoryEntry* entry =
            meta_->FindChannel(request.channel());
        if (entry != nullptr && !entry->has_mirror()) {
          (*shared)(absl::AlreadyExistsError(absl::StrCat(
              "cannot declare ", described, ": channel '", request.channel(),
              "' exists already as a regular channel of this cluster")));
          return;
        }
        if (entry != nullptr) {
          if (entry->mirror().SerializeAsString() !=
              source.SerializeAsString()) {
            (*shared)(absl::AlreadyExistsError(absl::StrCat(
                "cannot declare ", described, ": channel '", request.channel(),
                "' mirrors ", entry->mirror().cluster(), "/",
                entry->mirror().channel(), " already")));
            return;
          }
          (*shared)(AddMirrorResponse());  // the same mirror: nothing to do
          return;
        }
        if (creating_.contains(request.channel())) {
          // A client's first publish or subscribe is creating it as a
          // regular channel right now.
          (*shared)(absl::UnavailableError(absl::StrCat(
              "channel '", request.channel(), "' is being created; retry")));
          return;
        }
        LOG(INFO) << "declaring mirror channel=" << request.channel()
                  << " source=" << source.cluster() << "/" << source.channel();
        CreateChannel(
            request.channel(),
            [shared](absl::Status status) {
              if (!status.ok()) {
                (*shared)(status);
                return;
              }
              AddMirrorResponse response;
              response.set_created(true);
              (*shared)(response);
            },
            &source);
      });
}

void Node::RemoveMirror(const RemoveMirrorRequest& request, int hops,
                        StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  AtMetaLeaderHere(
      hops, [shared](absl::Status status) { (*shared)(status); },
      [this, request, shared] {
        const std::string& name = request.channel();
        // Before the directory: the configured mirror may not exist yet.
        if (ConfiguredMirror(name)) {
          (*shared)(absl::FailedPreconditionError(absl::StrCat(
              "mirror '", name,
              "' is declared in the config file (mirrors); remove it there")));
          return;
        }
        const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
        if (entry == nullptr) {
          (*shared)(absl::NotFoundError(
              absl::StrCat("no mirror channel '", name, "'")));
          return;
        }
        if (!entry->has_mirror()) {
          (*shared)(absl::FailedPreconditionError(absl::StrCat(
              "channel '", name, "' is a regular channel, not a mirror")));
          return;
        }
        LOG(INFO) << "removing mirror channel=" << name
                  << " source=" << entry->mirror().cluster() << "/"
                  << entry->mirror().channel();
        MetaCommand command;
        command.mutable_delete_channel()->set_name(name);
        command.mutable_delete_channel()->set_channel_id(entry->channel_id());
        ProposeMeta(command, [shared](const ApplyOutcome& outcome) {
          (*shared)(OutcomeStatus(outcome));
        });
      });
}

void Node::ListMirrors(
    absl::AnyInvocable<void(absl::StatusOr<ListMirrorsResponse>)> done) {
  auto shared = std::make_shared<
      absl::AnyInvocable<void(absl::StatusOr<ListMirrorsResponse>)>>(
      std::move(done));
  if (!Post([this, shared] {
        ListMirrorsResponse response;
        for (const auto& [name, entry] : meta_->channels()) {
          if (!entry.has_mirror()) continue;
          MirrorEntry* out = response.add_mirrors();
          out->set_channel(name);
          out->set_source_cluster(entry.mirror().cluster());
          out->set_source_channel(entry.mirror().channel());
          out->set_configured(ConfiguredMirror(name));
          ChannelHost* host = FindChannel(entry.channel_id());
          if (host == nullptr) continue;
          out->set_has_replica(true);
          out->set_local_last_sequence(host->fsm().last_sequence());
          auto feed = mirror_feeds_.find(entry.channel_id());
          if (feed != mirror_feeds_.end() && host->leading()) {
            *out->mutable_feed() = FeedStatus(feed->second, *host);
          }
        }
        (*shared)(std::move(response));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::PumpMirrors(int64_t now_ns) {
  if (mirror_feeds_.empty()) return;
  std::vector<uint64_t> gone;
  for (auto& [channel_id, feed] : mirror_feeds_) {
    ChannelHost* host = FindChannel(channel_id);
    if (host == nullptr || !host->leading()) {
      gone.push_back(channel_id);
      continue;
    }
    if (feed.fetching && now_ns > feed.fetch_deadline_ns) {
      // The answer was lost (refused post): forget it, fetch again.
      feed.fetching = false;
      feed.generation = next_feed_generation_++;
    }
    if (feed.resync && feed.proposals == 0) feed.resync = false;
    if (feed.fetching || feed.resync || now_ns < feed.retry_ns ||
        feed.proposals >= kFeedProposalsMax) {
      continue;
    }
    const uint64_t base = MirrorBase(feed, *host);
    GatewayFetchRequest request;
    request.set_channel(feed.source_channel);
    request.set_from_sequence(base + 1);
    request.set_max_messages(config_.gateway().fetch_messages_max());
    request.set_max_bytes(config_.gateway().fetch_bytes_max());
    request.set_wait_ms(kFeedWaitMs);
    feed.fetching = true;
    feed.fetch_deadline_ns =
        now_ns +
        (config_.gateway().request_timeout_ms() + kFeedWaitMs + 1000) * 1000000;
    const uint64_t generation = feed.generation;
    const uint64_t id = channel_id;
    gateways_->Fetch(
        feed.source_cluster, request,
        [this, id, generation,
         base](absl::StatusOr<GatewayFetchResponse> fetched) {
          auto shared = std::make_shared<absl::StatusOr<GatewayFetchResponse>>(
              std::move(fetched));
          Post([this, id, generation, base, shared] {
            OnMirrorFetched(id, generation, base, std::move(*shared));
          });
        });
  }
  for (uint64_t channel_id : gone) {
    auto it = mirror_feeds_.find(channel_id);
    LOG(INFO) << "mirror feed stopped here (not leading) channel="
              << it->second.channel;
    gateways_->ForgetMirror(it->second.channel);
    mirror_feeds_.erase(it);
  }
}

void Node::OnMirrorFetched(uint64_t channel_id, uint64_t generation,
                           uint64_t base,
                           absl::StatusOr<GatewayFetchResponse> fetched) {
  auto it = mirror_feeds_.find(channel_id);
  if (it == mirror_feeds_.end() || it->second.generation != generation) return;
  MirrorFeed& feed = it->second;
  feed.fetching = false;
  ChannelHost* host = FindChannel(channel_id);
  if (host == nullptr || !host->leading()) return;
  const int64_t now_ns = clock_->NowNs();
  if (!fetched.ok()) {
    ++feed.failures;
    const int64_t backoff_ms =
        std::min<int64_t>(100 << std::min(feed.failures, 5), 2000);
    feed.retry_ns = now_ns + backoff_ms * 1000000;
    if (feed.error.empty()) {
      LOG(WARNING) << "mirror feed waiting channel=" << host->fsm().name()
                   << " error=" << fetched.status();
    }
    feed.error = std::string(fetched.status().message());
    ReportMirror(feed, *host);
    return;
  }
  if (!feed.error.empty()) {
    LOG(INFO) << "mirror feed resumed channel=" << host->fsm().name()
              << " from=" << base + 1;
  }
  feed.failures = 0;
  feed.error.clear();
  feed.source_last = fetched->last_sequence();
  // A proposal failed or another batch went first: this answer no longer
  // follows the channel; the next fetch starts from the right place.
  if (feed.resync || MirrorBase(feed, *host) != base) {
    ReportMirror(feed, *host);
    return;
  }
  ChannelCommand command;
  MirrorAppend* append = command.mutable_mirror_append();
  append->set_prev_sequence(base);
  int64_t bytes = 0;
  for (StoredMessage& message : *fetched->mutable_messages()) {
    if (message.sequence() <= base) continue;
    bytes += static_cast<int64_t>(message.data().size());
    *append->add_messages() = std::move(message);
  }
  if (append->messages().empty()) {
    ReportMirror(feed, *host);
    return;
  }
  const int64_t count = append->messages_size();
  feed.proposed_last = append->messages(append->messages_size() - 1).sequence();
  ++feed.proposals;
  host->group()->Propose(
      command.SerializeAsString(), [this, channel_id, generation, count,
                                    bytes](const ApplyOutcome& outcome) {
        auto it = mirror_feeds_.find(channel_id);
        if (it == mirror_feeds_.end() || it->second.generation != generation) {
          return;
        }
        MirrorFeed& feed = it->second;
        --feed.proposals;
        absl::Status status = OutcomeStatus(outcome);
        if (!status.ok()) {
          LOG(INFO) << "mirror batch not applied channel_id=" << channel_id
                    << " status=" << status << "; resuming from the channel";
          feed.resync = true;
          return;
        }
        feed.messages_applied += count;
        feed.bytes_applied += bytes;
        if (ChannelHost* host = FindChannel(channel_id)) {
          ReportMirror(feed, *host);
        }
      });
  ReportMirror(feed, *host);
}

}  // namespace spate::server
