// Node, part: the client requests (Connect, Ping, Publish, Subscribe,
// Unsubscribe, Close) and client liveness. The public methods are
// thread-safe and post to the loop; the Do* methods run on it, route the
// request (node_routing.cc) and propose to the right group.
#include <deque>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "base/check.h"
#include "base/log.h"
#include "server/node.h"

namespace spate::server {
// ---- Requests ----

void Node::Connect(const ConnectRequest& request, int hops, ConnectDone done) {
  AtMetaLeader(
      hops, std::move(done),
      [this, request](ConnectDone done) {
        DoConnect(request, std::move(done));
      },
      [this, request, hops](raft::NodeId leader, ConnectDone done) {
        forwarder_->Connect(leader, hops, request, std::move(done));
      });
}

void Node::Ping(const PingRequest& request, int hops, StatusDone done) {
  // Liveness is tracked by the metadata leader.
  AtMetaLeader(
      hops, std::move(done),
      [this, request](StatusDone done) {
        done(CheckClient(request.client_id(), request.conn_id()));
      },
      [this, request, hops](raft::NodeId leader, StatusDone done) {
        forwarder_->Ping(leader, hops, request, std::move(done));
      });
}

void Node::Publish(std::vector<PubMsg> msgs, int hops,
                   std::function<void(size_t index, const PubAck& ack)> on_ack,
                   bool leader_hint) {
  auto shared = std::make_shared<std::vector<PubMsg>>(std::move(msgs));
  if (!Post([this, shared, hops, on_ack, leader_hint] {
        for (size_t i = 0; i < shared->size(); ++i) {
          DoPublish(
              std::move((*shared)[i]), hops,
              [on_ack, i](const PubAck& ack) { on_ack(i, ack); }, leader_hint);
        }
      })) {
    for (size_t i = 0; i < shared->size(); ++i) {
      on_ack(i, ErrorAck((*shared)[i].guid(),
                         absl::UnavailableError(
                             "server is busy or stopping; retry")));
    }
  }
}

void Node::Subscribe(const SubscriptionRequest& request, int hops,
                     std::shared_ptr<SubscriberStream> stream) {
  if (!Post([this, request, hops, stream] {
        DoSubscribe(request, hops, stream);
      })) {
    stream->End(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::SubscriptionAcks(uint64_t channel_id, std::string member_id,
                            std::vector<uint64_t> seqs) {
  // Refused only when stopping or overloaded: the acks are then lost and
  // the messages redelivered, which at-least-once allows.
  Post([this, channel_id, member_id = std::move(member_id),
        seqs = std::move(seqs)] {
    if (ChannelHost* host = FindChannel(channel_id))
      host->Acks(member_id, seqs);
  });
}

void Node::SubscriptionEnded(uint64_t channel_id, std::string member_id) {
  Post([this, channel_id, member_id = std::move(member_id)] {
    if (ChannelHost* host = FindChannel(channel_id)) {
      host->StreamEnded(member_id);
    }
  });
}

void Node::Unsubscribe(const UnsubscribeRequest& request, int hops,
                       StatusDone done) {
  auto shared = std::make_shared<StatusDone>(std::move(done));
  if (!Post([this, request, hops, shared] {
        DoUnsubscribe(request, hops, std::move(*shared));
      })) {
    (*shared)(absl::UnavailableError("server is busy or stopping; retry"));
  }
}

void Node::Close(const CloseRequest& request, int hops, StatusDone done) {
  AtMetaLeader(
      hops, std::move(done),
      [this, request](StatusDone done) { DoClose(request, std::move(done)); },
      [this, request, hops](raft::NodeId leader, StatusDone done) {
        forwarder_->Close(leader, hops, request, std::move(done));
      });
}

int64_t Node::AliveWindowNs() const {
  // A client is alive when it pinged within one and a half intervals.
  return config_.clients().ping_interval_ms() * 1500000;
}

absl::Status Node::CheckClient(const std::string& client_id,
                               const std::string& conn_id) {
  const ClientRecord* client = meta_->FindClient(client_id);
  if (client == nullptr || clients_dropping_.contains(client_id)) {
    return absl::NotFoundError(absl::StrCat(
        "unknown client id '", client_id,
        "': connect first (or it was dropped after missed pings)"));
  }
  if (!conn_id.empty() && client->conn_id() != conn_id) {
    return absl::NotFoundError(absl::StrCat(
        "client '", client_id, "' was replaced by a newer connection"));
  }
  client_seen_ns_[client_id] = clock_->NowNs();
  return absl::OkStatus();
}

void Node::DoConnect(const ConnectRequest& request, ConnectDone done) {
  ConnectResponse response;
  response.set_ping_interval_ms(config_.clients().ping_interval_ms());
  response.set_ping_max_out(config_.clients().ping_max_out());
  response.set_max_payload_bytes(config_.store().max_payload_bytes());
  response.set_cluster_name(config_.node().cluster_name());
  response.set_node_id(self_);

  const std::string& client_id = request.client_id();
  const ClientRecord* existing = meta_->FindClient(client_id);
  if (existing != nullptr && clients_dropping_.contains(client_id)) {
    done(absl::UnavailableError(
        absl::StrCat("client '", client_id, "' is being closed; retry")));
    return;
  }
  if (existing != nullptr && existing->conn_id() == request.conn_id()) {
    client_seen_ns_[client_id] = clock_->NowNs();
    done(response);  // the same connection again: idempotent
    return;
  }
  if (existing != nullptr) {
    auto seen = client_seen_ns_.find(client_id);
    if (seen != client_seen_ns_.end() &&
        clock_->NowNs() - seen->second < AliveWindowNs()) {
      done(absl::AlreadyExistsError(absl::StrCat(
          "client id '", client_id, "' is already connected and alive")));
      return;
    }
  } else if (static_cast<int64_t>(meta_->clients().size()) >=
             config_.clients().max_clients()) {
    done(absl::ResourceExhaustedError(absl::StrCat(
        "max_clients (", config_.clients().max_clients(), ") reached")));
    return;
  }
  MetaCommand command;
  ClientConnect* connect = command.mutable_connect();
  connect->set_client_id(client_id);
  connect->set_conn_id(request.conn_id());
  connect->set_time_ns(clock_->WallNs());
  ProposeMeta(command, [this, client_id, response, done = std::move(done)](
                           const ApplyOutcome& outcome) mutable {
    absl::Status status = OutcomeStatus(outcome);
    if (!status.ok()) {
      done(status);
      return;
    }
    client_seen_ns_[client_id] = clock_->NowNs();
    if (!outcome.meta->replaced_conn_id.empty()) {
      LOG(INFO) << "client replaced client=" << client_id;
    }
    done(response);
  });
}

void Node::DoPublish(PubMsg msg, int hops, PublishDone done, bool leader_hint) {
  if (hops == 0 && gateways_ != nullptr && RouteToGateway(&msg, &done)) return;
  if (IsMirror(msg.subject())) {
    done(ErrorAck(msg.guid(),
                  absl::FailedPreconditionError(absl::StrCat(
                      "channel '", msg.subject(),
                      "' is a mirror of a remote channel: it is read-only; "
                      "publish to its source"))));
    return;
  }
  // Only a client's own publishes are gated: a forwarded batch is already
  // the only one of its stream in transit (its origin gates the next), and
  // gating it too could deadlock two nodes that forward to each other while
  // they disagree on the leader.
  if (hops > 0) {
    RoutePublish(std::move(msg), hops, std::move(done), leader_hint);
    return;
  }
  if (!publish_gates_.empty()) {
    auto it = publish_gates_.find(msg.subject());
    if (it != publish_gates_.end()) {
      PublishGate& gate = it->second;
      if (gate.in_flight->load() > 0 || !gate.waiting.empty()) {
        if (gate.waiting.size() >= kGatedPublishesMax) {
          done(ErrorAck(msg.guid(),
                        absl::UnavailableError(absl::StrCat(
                            "too many publishes to channel '", msg.subject(),
                            "' waiting for its leader; retry"))));
          return;
        }
        gate.waiting.push_back(
            GatedPublish{std::move(msg), hops, std::move(done), leader_hint});
        return;
      }
    }
  }
  RoutePublish(std::move(msg), hops, std::move(done), leader_hint);
}

void Node::RoutePublish(PubMsg msg, int hops, PublishDone done,
                        bool leader_hint) {
  // Fast path: a channel this node serves and a client it knows.
  if (const ChannelDirectoryEntry* entry = meta_->FindChannel(msg.subject())) {
    ChannelHost* host = FindChannel(entry->channel_id());
    if (host != nullptr && host->group()->serving() &&
        CheckClient(msg.client_id(), msg.conn_id()).ok()) {
      host->Publish(msg, std::move(done));
      return;
    }
  }
  // Straight to a leader this node knows (a replica of the channel with a
  // leader): a later publish takes the same way, nothing can overtake it.
  bool direct = false;
  if (const ChannelDirectoryEntry* entry = meta_->FindChannel(msg.subject())) {
    const ChannelHost* host = FindChannel(entry->channel_id());
    direct = host != nullptr && host->group()->leader_id() != raft::kNoNode;
  }
  if (hops > 0 || direct) {
    RouteChannelPublish(std::move(msg), hops, std::move(done), leader_hint);
    return;
  }
  // A detour (through the metadata leader while the channel is created, or
  // a guessed leader) or a wait: in flight (see PublishGate) until its ack.
  std::shared_ptr<std::atomic<int64_t>> in_flight =
      publish_gates_[msg.subject()].in_flight;
  in_flight->fetch_add(1);
  done = [waker = gate_waker_, in_flight,
          done = std::move(done)](const PubAck& ack) mutable {
    done(ack);
    // A forwarded ack arrives on a gRPC thread: wake the loop to release
    // the gate (ReleasePublishGates runs every iteration).
    if (in_flight->fetch_sub(1) == 1) waker->Wake();
  };
  RouteChannelPublish(std::move(msg), hops, std::move(done), leader_hint);
}

void Node::RouteChannelPublish(PubMsg msg, int hops, PublishDone done,
                               bool leader_hint) {
  auto shared_msg = std::make_shared<PubMsg>(std::move(msg));
  auto shared_done = std::make_shared<PublishDone>(std::move(done));
  RouteChannel(
      shared_msg->subject(), /*create=*/true, hops, Deadline(),
      [this, hops, leader_hint, shared_msg,
       shared_done](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          (*shared_done)(ErrorAck(shared_msg->guid(), route.status()));
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          PublishDone done = std::move(*shared_done);
          if (leader_hint && hops == 0) {
            // While the channel is being created this names the metadata
            // leader; that node's own hint then names the channel's.
            std::string address = forwarder_->AddressOf(route->forward_to);
            if (!address.empty()) {
              done = [address = std::move(address),
                      done = std::move(done)](const PubAck& ack) mutable {
                PubAck hinted = ack;
                hinted.set_leader_address(address);
                done(hinted);
              };
            }
          }
          ForwardPublish(route->forward_to, hops, std::move(*shared_msg),
                         std::move(done));
          return;
        }
        ChannelHost* host = route->host;
        const uint64_t channel_id = host->fsm().channel_id();
        CheckClientFresh(
            shared_msg->client_id(), shared_msg->conn_id(),
            [this, channel_id, shared_msg, shared_done](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::UnavailableError("channel was deleted; retry");
              }
              if (!status.ok()) {
                (*shared_done)(ErrorAck(shared_msg->guid(), status));
                return;
              }
              host->Publish(*shared_msg, std::move(*shared_done));
            });
      });
}

void Node::ReleasePublishGates() {
  if (publish_gates_.empty()) return;
  std::vector<std::string> open;
  for (const auto& [subject, gate] : publish_gates_) {
    if (gate.in_flight->load() == 0) open.push_back(subject);
  }
  for (const std::string& subject : open) {
    auto it = publish_gates_.find(subject);
    if (it == publish_gates_.end()) continue;
    if (it->second.waiting.empty()) {
      publish_gates_.erase(it);
      continue;
    }
    std::deque<GatedPublish> waiting;
    waiting.swap(it->second.waiting);
    // Together and in order: they take the same route, and any that is
    // in flight again closes the gate to the publishes after them.
    for (GatedPublish& publish : waiting) {
      RoutePublish(std::move(publish.msg), publish.hops,
                   std::move(publish.done), publish.leader_hint);
    }
  }
}

void Node::ForwardPublish(raft::NodeId to, int hops, PubMsg msg,
                          PublishDone done) {
  ForwardBatch& batch = forward_publishes_[{to, hops}];
  batch.msgs.push_back(std::move(msg));
  batch.dones.push_back(std::move(done));
}

void Node::FlushForwardedPublishes() {
  if (forward_publishes_.empty()) return;
  absl::btree_map<std::pair<raft::NodeId, int>, ForwardBatch> batches;
  batches.swap(forward_publishes_);
  for (auto& [key, batch] : batches) {
    auto dones =
        std::make_shared<std::vector<PublishDone>>(std::move(batch.dones));
    forwarder_->PublishBatch(key.first, key.second, std::move(batch.msgs),
                             [dones](std::vector<PubAck> acks) {
                               for (size_t i = 0; i < acks.size(); ++i) {
                                 (*dones)[i](acks[i]);
                               }
                             });
  }
}

void Node::DoSubscribe(const SubscriptionRequest& request, int hops,
                       std::shared_ptr<SubscriberStream> stream) {
  if (hops == 0 && gateways_ != nullptr) {
    const ChannelDirectoryEntry* entry = meta_->FindChannel(request.subject());
    const std::string owner =
        gateways_->RouteFor(request.subject(), entry != nullptr,
                            (entry != nullptr && entry->has_mirror()) ||
                                IsMirror(request.subject()));
    if (!owner.empty()) {
      gateways_->Subscribe(owner, request, std::move(stream));
      return;
    }
  }
  RouteChannel(
      request.subject(), /*create=*/true, hops, Deadline(),
      [this, request, hops, stream](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          stream->End(route.status());
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          forwarder_->Subscribe(route->forward_to, hops, request, stream);
          return;
        }
        const uint64_t channel_id = route->host->fsm().channel_id();
        CheckClientFresh(
            request.client_id(), request.conn_id(),
            [this, channel_id, request, stream](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::UnavailableError("channel was deleted; retry");
              }
              if (!status.ok()) {
                stream->End(status);
                return;
              }
              host->Subscribe(request, stream);
            });
      });
}

void Node::DoUnsubscribe(const UnsubscribeRequest& request, int hops,
                         StatusDone done) {
  if (hops == 0 && gateways_ != nullptr) {
    const ChannelDirectoryEntry* entry = meta_->FindChannel(request.subject());
    const std::string owner = gateways_->RouteFor(
        request.subject(), entry != nullptr, IsMirror(request.subject()));
    if (!owner.empty()) {
      gateways_->Unsubscribe(owner, request, std::move(done));
      return;
    }
  }
  auto shared = std::make_shared<StatusDone>(std::move(done));
  RouteChannel(
      request.subject(), /*create=*/false, hops, Deadline(),
      [this, request, hops, shared](absl::StatusOr<ChannelRoute> route) {
        if (!route.ok()) {
          (*shared)(route.status());
          return;
        }
        if (route->forward_to != raft::kNoNode) {
          forwarder_->Unsubscribe(route->forward_to, hops, request,
                                  std::move(*shared));
          return;
        }
        const uint64_t channel_id = route->host->fsm().channel_id();
        CheckClientFresh(
            request.client_id(), request.conn_id(),
            [this, channel_id, request, shared](absl::Status status) {
              ChannelHost* host = FindChannel(channel_id);
              if (status.ok() && host == nullptr) {
                status = absl::NotFoundError("channel was deleted");
              }
              if (!status.ok()) {
                (*shared)(status);
                return;
              }
              host->Unsubscribe(request, std::move(*shared));
            });
      });
}

void Node::DoClose(const CloseRequest& request, StatusDone done) {
  if (absl::Status status = CheckClient(request.client_id(), request.conn_id());
      !status.ok()) {
    done(status);
    return;
  }
  const ClientRecord* client = meta_->FindClient(request.client_id());
  DropClient(request.client_id(), client->conn_id(), ClientClose::CLOSED,
             std::move(done));
}

void Node::DropClient(const std::string& client_id, const std::string& conn_id,
                      ClientClose::Reason reason, StatusDone done) {
  if (!clients_dropping_.insert(client_id).second) {
    done(absl::UnavailableError(
        absl::StrCat("client '", client_id, "' is already being closed")));
    return;
  }
  // Its members are closed by every channel leader once this applies.
  MetaCommand command;
  command.mutable_close()->set_client_id(client_id);
  command.mutable_close()->set_conn_id(conn_id);
  command.mutable_close()->set_reason(reason);
  ProposeMeta(command, [this, client_id, done = std::move(done)](
                           const ApplyOutcome& outcome) mutable {
    clients_dropping_.erase(client_id);
    absl::Status status = OutcomeStatus(outcome);
    if (status.ok() && meta_->FindClient(client_id) == nullptr) {
      client_seen_ns_.erase(client_id);
    }
    done(status);
  });
}

void Node::ExpireClients(int64_t now_ns) {
  if (!meta_group_->serving()) return;
  const int64_t limit_ns = config_.clients().ping_interval_ms() * 1000000 *
                           config_.clients().ping_max_out();
  std::vector<std::pair<std::string, std::string>> expired;
  for (const auto& [client_id, seen] : client_seen_ns_) {
    if (now_ns - seen <= limit_ns || clients_dropping_.contains(client_id)) {
      continue;
    }
    if (const ClientRecord* client = meta_->FindClient(client_id)) {
      expired.emplace_back(client_id, client->conn_id());
    }
  }
  for (const auto& [client_id, conn_id] : expired) {
    LOG(INFO) << "client expired after missed pings client=" << client_id;
    DropClient(client_id, conn_id, ClientClose::EXPIRED, [](absl::Status) {});
  }
}

void Node::MaybeDeleteInactiveChannels(int64_t now_ns) {
  if (!meta_group_->serving()) return;
  for (auto& [id, host] : channels_) {
    const ChannelFsm& fsm = host->fsm();
    const int64_t max_inactivity_ms = fsm.record().limits().max_inactivity_ms();
    if (max_inactivity_ms <= 0 || !host->leading() ||
        !fsm.subscriptions().empty() || host->attached_streams() > 0 ||
        deleting_.contains(id)) {
      continue;
    }
    const int64_t last =
        std::max(host->last_activity_ns(), fsm.record().last_timestamp_ns());
    if (now_ns - last < max_inactivity_ms * 1000000) continue;
    LOG(INFO) << "deleting inactive channel channel=" << fsm.name();
    MetaCommand command;
    command.mutable_delete_channel()->set_name(fsm.name());
    command.mutable_delete_channel()->set_channel_id(id);
    deleting_.insert(id);
    ProposeMeta(command,
                [this, id](const ApplyOutcome&) { deleting_.erase(id); });
  }
}

}  // namespace spate::server
