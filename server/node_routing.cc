// Node, part: where a request goes. A request for the metadata group or
// a channel runs here when this node leads the group, is forwarded to the
// leader it knows (Forwarder, with a hop count so it cannot loop), or waits
// (bounded by the request deadline) until some leader is known. Missing
// channels are created by the metadata leader. Loop thread only.
#include <utility>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "server/channel_limits.h"
#include "server/node.h"
#include "server/placement.h"

namespace spate::server {

// ---- Routing ----

bool Node::PeerUp(raft::NodeId node) const {
  // A leader whose node this transport cannot reach is probably gone: the
  // client should retry (by then a new leader is known) rather than wait
  // for a connection error.
  return transport_ == nullptr || transport_->PeerReachable(node);
}

int64_t Node::Deadline() const {
  return clock_->NowNs() + host_options_.serving_wait_ns;
}

void Node::RouteMeta(int hops, int64_t deadline_ns, RouteDone then) {
  if (meta_group_->serving()) {
    then(self_);
    return;
  }
  const raft::NodeId leader = meta_group_->leader_id();
  if (leader != raft::kNoNode && leader != self_) {
    if (hops >= kForwardHopsMax || forwarder_ == nullptr || !PeerUp(leader)) {
      then(absl::UnavailableError(absl::StrCat(
          "node ", self_, " does not lead the metadata group (node ", leader,
          " does); retry")));
      return;
    }
    then(leader);
    return;
  }
  auto shared = std::make_shared<RouteDone>(std::move(then));
  meta_group_->WhenRoutable(
      deadline_ns, [this, hops, deadline_ns, shared](absl::Status status) {
        if (!status.ok()) {
          (*shared)(status);
          return;
        }
        RouteMeta(hops, deadline_ns, std::move(*shared));
      });
}

void Node::RouteChannel(const std::string& name, bool create, int hops,
                        int64_t deadline_ns, ChannelRouteDone then) {
  auto retry = [this, name, create, hops, deadline_ns](ChannelRouteDone then) {
    auto shared = std::make_shared<ChannelRouteDone>(std::move(then));
    return
        [this, name, create, hops, deadline_ns, shared](absl::Status status) {
          if (!status.ok()) {
            (*shared)(status);
            return;
          }
          RouteChannel(name, create, hops, deadline_ns, std::move(*shared));
        };
  };
  const ChannelDirectoryEntry* entry = meta_->FindChannel(name);
  if (entry == nullptr) {
    if (!create) {
      then(absl::NotFoundError(absl::StrCat("unknown channel '", name, "'")));
      return;
    }
    if (meta_group_->serving()) {
      CreateChannel(name, retry(std::move(then)));
      return;
    }
    // The metadata leader creates it (and routes the request on).
    auto shared = std::make_shared<ChannelRouteDone>(std::move(then));
    RouteMeta(hops, deadline_ns,
              [this, name, create, hops, deadline_ns,
               shared](absl::StatusOr<raft::NodeId> leader) {
                if (!leader.ok()) {
                  (*shared)(leader.status());
                } else if (*leader == self_) {
                  RouteChannel(name, create, hops, deadline_ns,
                               std::move(*shared));
                } else {
                  (*shared)(ChannelRoute{nullptr, *leader});
                }
              });
    return;
  }
  auto forward = [&](raft::NodeId to) {
    if (to == self_ || hops >= kForwardHopsMax || forwarder_ == nullptr ||
        !PeerUp(to)) {
      then(absl::UnavailableError(
          absl::StrCat("node ", self_, " does not lead channel '", name,
                       "' (node ", to, " does); retry")));
    } else {
      then(ChannelRoute{nullptr, to});
    }
  };
  ChannelHost* host = FindChannel(entry->channel_id());
  if (host == nullptr) {
    // Not a replica here: its designated leader is the best guess.
    const auto& replicas = entry->replicas();
    if (replicas.empty()) {
      then(absl::UnavailableError("channel has no replicas"));
      return;
    }
    forward(replicas[entry->channel_id() % replicas.size()]);
    return;
  }
  if (host->group()->serving()) {
    then(ChannelRoute{host, raft::kNoNode});
    return;
  }
  const raft::NodeId leader = host->group()->leader_id();
  if (leader != raft::kNoNode && leader != self_) {
    forward(leader);
    return;
  }
  host->group()->WhenRoutable(deadline_ns, retry(std::move(then)));
}

void Node::CreateChannel(const std::string& name, StatusDone done,
                         const MirrorSource* mirror) {
  auto& waiters = creating_[name];
  waiters.push_back(std::move(done));
  if (waiters.size() > 1) return;  // creation already proposed

  auto finish = [this, name](const absl::Status& status) {
    auto waiting = creating_.extract(name);
    if (waiting.empty()) return;
    for (auto& waiter : waiting.mapped()) waiter(status);
  };
  const int64_t pending = static_cast<int64_t>(creating_.size()) - 1;
  if (static_cast<int64_t>(meta_->channels().size()) + pending >=
      config_.store().max_channels()) {
    finish(absl::ResourceExhaustedError(
        absl::StrCat("cannot create channel '", name, "': max_channels (",
                     config_.store().max_channels(), ") reached")));
    return;
  }
  MetaCommand command;
  ChannelCreate* create = command.mutable_create_channel();
  create->set_name(name);
  *create->mutable_limits() = ResolveChannelLimits(name, LiveStore());
  create->set_time_ns(clock_->WallNs());
  if (mirror != nullptr) *create->mutable_mirror() = *mirror;
  for (uint64_t node : PlaceNewChannel(ActiveNodes(), meta_->channels())) {
    create->add_replicas(node);
  }
  // The waiters re-route once the channel's host exists (it is created
  // after the apply batch is written).
  ProposeMeta(command, [this, finish](const ApplyOutcome& outcome) {
    after_apply_.push_back(
        [finish, status = OutcomeStatus(outcome)] { finish(status); });
  });
}

void Node::CheckClientFresh(const std::string& client_id,
                            const std::string& conn_id, StatusDone then) {
  absl::Status status = CheckClient(client_id, conn_id);
  if (status.ok() || meta_group_->serving()) {
    then(status);
    return;
  }
  auto shared = std::make_shared<StatusDone>(std::move(then));
  meta_group_->ReadBarrier(
      Deadline(), [this, client_id, conn_id, shared](absl::Status barrier) {
        (*shared)(barrier.ok() ? CheckClient(client_id, conn_id) : barrier);
      });
}

}  // namespace spate::server
