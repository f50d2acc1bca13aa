#include "client/session_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"

namespace spate::client {

SessionTracker::SessionTracker(std::shared_ptr<const Session> session)
    : session_(std::move(session)) {}

std::shared_ptr<const Session> SessionTracker::session() const {
  absl::MutexLock lock(&mu_);
  return session_;
}

SessionTracker::State SessionTracker::state() const {
  absl::MutexLock lock(&mu_);
  return state_;
}

int64_t SessionTracker::reconnects() const {
  absl::MutexLock lock(&mu_);
  return reconnects_;
}

absl::Status SessionTracker::FinalStatusLocked() const {
  if (state_ == State::kLost) {
    return absl::UnavailableError(absl::StrCat("connection to ",
                                               session_->server, " lost (",
                                               lost_reason_.ToString(), ")"));
  }
  return absl::CancelledError("connection closed");
}

absl::Status SessionTracker::CheckUsable() const {
  absl::MutexLock lock(&mu_);
  switch (state_) {
    case State::kConnected:
    case State::kReconnecting:
      return absl::OkStatus();
    case State::kLost:
      return absl::FailedPreconditionError(
          absl::StrCat("connection to ", session_->server, " lost (",
                       lost_reason_.ToString(), "); connect again"));
    case State::kClosed:
      break;
  }
  return absl::FailedPreconditionError("connection closed");
}

uint64_t SessionTracker::RequestCheck() {
  absl::MutexLock lock(&mu_);
  return ++requested_;
}

absl::StatusOr<std::shared_ptr<const Session>> SessionTracker::AwaitCheck(
    uint64_t ticket, absl::Time deadline, const std::atomic<bool>* abandon) {
  absl::MutexLock lock(&mu_);
  auto settled = [&]() {
    return done_ >= ticket || FinalLocked() ||
           (abandon != nullptr && abandon->load());
  };
  mu_.AwaitWithDeadline(absl::Condition(&settled), deadline);
  if (FinalLocked()) return FinalStatusLocked();
  if (abandon != nullptr && abandon->load()) {
    return absl::CancelledError("stopped waiting for the connection");
  }
  if (done_ < ticket) {
    return absl::DeadlineExceededError("connection check still running");
  }
  return session_;
}

void SessionTracker::WakeWaiters() {
  // Releasing an absl::Mutex re-evaluates the waiters' conditions.
  absl::MutexLock lock(&mu_);
}

uint64_t SessionTracker::AwaitRequest(absl::Time deadline, uint64_t seen) {
  absl::MutexLock lock(&mu_);
  auto wanted = [this, seen]() {
    return (requested_ > done_ && requested_ > seen) || FinalLocked();
  };
  mu_.AwaitWithDeadline(absl::Condition(&wanted), deadline);
  return requested_ > done_ && !FinalLocked() ? requested_ : 0;
}

void SessionTracker::CheckPassed(uint64_t ticket) {
  absl::MutexLock lock(&mu_);
  done_ = std::max(done_, ticket);
}

bool SessionTracker::BeginReconnect() {
  absl::MutexLock lock(&mu_);
  if (FinalLocked()) return false;
  state_ = State::kReconnecting;
  return true;
}

bool SessionTracker::Reconnected(std::shared_ptr<const Session> session) {
  absl::MutexLock lock(&mu_);
  session_ = std::move(session);
  if (FinalLocked()) return false;
  state_ = State::kConnected;
  done_ = requested_;
  ++reconnects_;
  return true;
}

void SessionTracker::Lose(const absl::Status& reason) {
  absl::MutexLock lock(&mu_);
  if (FinalLocked()) return;
  state_ = State::kLost;
  lost_reason_ = reason;
}

SessionTracker::State SessionTracker::Close() {
  absl::MutexLock lock(&mu_);
  const State before = state_;
  state_ = State::kClosed;
  return before;
}

bool SessionTracker::SleepUnlessClosed(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto closed = [this]() { return state_ == State::kClosed; };
  return !mu_.AwaitWithDeadline(absl::Condition(&closed), deadline);
}

}  // namespace spate::client
