// SessionTracker: which Session (session.h) a Connection currently uses,
// and the health checks its streams ask for when one of them breaks.
//
// A stream that ends unexpectedly — the async publish stream, or a
// subscription's Subscribe call — cannot tell on its own whether the server
// is gone or only that stream ended (a channel's leader moved). Its owner
// calls RequestCheck() and then AwaitCheck(). The connection's supervisor
// thread (connection.h) sees the request, pings at once and then either
//   - confirms the session: CheckPassed(); AwaitCheck returns the same
//     Session and the owner reopens its stream on it;
//   - reconnects: BeginReconnect() ... Reconnected(new session);
//     AwaitCheck returns the new Session;
//   - gives up: Lose(reason) or Close(); AwaitCheck returns the reason.
//
//   kConnected --BeginReconnect--> kReconnecting --Reconnected--> kConnected
//       |                               |
//       +--Lose--> kLost <--Lose--------+
//   any state --Close--> kClosed             (kLost, kClosed: final)
//
// Tickets: RequestCheck returns an increasing number; a check satisfies
// every ticket handed out before it started. A reconnect satisfies every
// ticket handed out before it finished (they all concerned older sessions).
//
// Thread-safe: one mutex, held only briefly; no user code runs under it.
#ifndef SPATE_CLIENT_SESSION_TRACKER_H_
#define SPATE_CLIENT_SESSION_TRACKER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "client/session.h"

namespace spate::client {

class SessionTracker {
 public:
  enum class State { kConnected, kReconnecting, kLost, kClosed };

  explicit SessionTracker(std::shared_ptr<const Session> session);
  SessionTracker(const SessionTracker&) = delete;
  SessionTracker& operator=(const SessionTracker&) = delete;

  // The current session; while reconnecting, the one that failed.
  std::shared_ptr<const Session> session() const;
  State state() const;
  // OK while connected or reconnecting; otherwise FailedPrecondition
  // saying why ("connection to X lost (...)", "connection closed").
  absl::Status CheckUsable() const;
  // Successful reconnections so far.
  int64_t reconnects() const;

  // --- Stream side. ---

  // Asks the supervisor to check the connection; returns the ticket to
  // pass to AwaitCheck.
  uint64_t RequestCheck();
  // Waits until check `ticket` is done and returns the session to use now
  // (the same as before when the check passed, a new one after a
  // reconnect). Fails with Unavailable once the connection is lost,
  // Cancelled once it is closed or when `*abandon` becomes true (checked
  // whenever the mutex is released, see WakeWaiters), DeadlineExceeded at
  // `deadline`.
  absl::StatusOr<std::shared_ptr<const Session>> AwaitCheck(
      uint64_t ticket, absl::Time deadline,
      const std::atomic<bool>* abandon = nullptr);
  // Makes AwaitCheck callers re-read their `abandon` flags (call after
  // setting one).
  void WakeWaiters();

  // --- Supervisor side. ---

  // Waits until a check newer than ticket `seen` is requested, the state
  // is final, or `deadline`. Returns the newest ticket requested and not
  // yet checked, 0 for none.
  uint64_t AwaitRequest(absl::Time deadline, uint64_t seen = 0);
  // The connection answered: every ticket up to `ticket` is done.
  void CheckPassed(uint64_t ticket);
  // False (and nothing changes) when the state is already final.
  bool BeginReconnect();
  // Installs the new session, satisfies every ticket so far and returns
  // true; after Close() the session is still installed (so that Close can
  // tell that server goodbye) but the state stays closed and it returns
  // false.
  bool Reconnected(std::shared_ptr<const Session> session);
  // Final; ignored once lost or closed.
  void Lose(const absl::Status& reason);
  // Final, also after a loss. Returns the state before.
  State Close();
  // Sleeps until `deadline` unless the tracker is closed first (false).
  bool SleepUnlessClosed(absl::Time deadline);

 private:
  bool FinalLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return state_ == State::kLost || state_ == State::kClosed;
  }
  absl::Status FinalStatusLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable absl::Mutex mu_;
  std::shared_ptr<const Session> session_ ABSL_GUARDED_BY(mu_);
  State state_ ABSL_GUARDED_BY(mu_) = State::kConnected;
  absl::Status lost_reason_ ABSL_GUARDED_BY(mu_);
  // Tickets handed out, and the newest one satisfied.
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t reconnects_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace spate::client

#endif  // SPATE_CLIENT_SESSION_TRACKER_H_
