// The Spate C++ client library in one include: Connection (connect,
// publish, subscribe, close), Subscription, Message and their options.
// See connection.h for the threads and the lock order.
#ifndef SPATE_CLIENT_CLIENT_H_
#define SPATE_CLIENT_CLIENT_H_

#include "client/connection.h"    // IWYU pragma: export
#include "client/message.h"       // IWYU pragma: export
#include "client/options.h"       // IWYU pragma: export
#include "client/subscription.h"  // IWYU pragma: export

#endif  // SPATE_CLIENT_CLIENT_H_
