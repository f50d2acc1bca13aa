// Names the calling thread so that `top -H`, gdb and /proc show which client
// thread is which. Linux truncates names to 15 characters. Header-only.
#ifndef SPATE_CLIENT_THREAD_NAME_H_
#define SPATE_CLIENT_THREAD_NAME_H_

#include <pthread.h>

namespace spate::client {

inline void NameThisThread(const char* name) {
  pthread_setname_np(pthread_self(), name);
}

}  // namespace spate::client

#endif  // SPATE_CLIENT_THREAD_NAME_H_
