// CHECK/DCHECK: crash on bugs (STYLE.md: "Crash on bugs, return Status on
// weather"). abseil 20220623 from Debian has no absl/log, so Spate carries
// this small equivalent. A failed CHECK prints file:line, the condition, the
// compared values (for CHECK_EQ and friends) and any streamed context, then
// aborts. DCHECKs compile to nothing under NDEBUG (opt builds) and are meant
// for hot paths; CHECKs are always on.
#ifndef SPATE_BASE_CHECK_H_
#define SPATE_BASE_CHECK_H_

#include <sstream>
#include <string>

#include "absl/base/optimization.h"

namespace spate::base::internal {

// Collects the failure message; its destructor prints it and aborts.
class CheckFailure {
 public:
  CheckFailure(const char* file, int line, const char* condition);
  CheckFailure(const CheckFailure&) = delete;
  CheckFailure& operator=(const CheckFailure&) = delete;
  [[noreturn]] ~CheckFailure();
  std::ostream& stream() { return stream_; }

 private:
  std::ostringstream stream_;
};

// Lets `CHECK(x) << "context"` parse as one expression statement.
struct Voidify {
  void operator&(std::ostream&) {}
};

template <typename A, typename B>
std::string FormatOperands(const A& a, const B& b) {
  std::ostringstream out;
  out << "(" << a << " vs " << b << ") ";
  return out.str();
}

}  // namespace spate::base::internal

#define CHECK(condition)                                            \
  ABSL_PREDICT_TRUE(condition)                                      \
  ? (void)0                                                         \
  : ::spate::base::internal::Voidify() &                            \
          ::spate::base::internal::CheckFailure(__FILE__, __LINE__, \
                                                #condition)         \
              .stream()

#define SPATE_CHECK_OP(op, a, b)                                    \
  ABSL_PREDICT_TRUE((a)op(b))                                       \
  ? (void)0                                                         \
  : ::spate::base::internal::Voidify() &                            \
          ::spate::base::internal::CheckFailure(__FILE__, __LINE__, \
                                                #a " " #op " " #b)  \
                  .stream()                                         \
              << ::spate::base::internal::FormatOperands((a), (b))

#define CHECK_EQ(a, b) SPATE_CHECK_OP(==, a, b)
#define CHECK_NE(a, b) SPATE_CHECK_OP(!=, a, b)
#define CHECK_LE(a, b) SPATE_CHECK_OP(<=, a, b)
#define CHECK_LT(a, b) SPATE_CHECK_OP(<, a, b)
#define CHECK_GE(a, b) SPATE_CHECK_OP(>=, a, b)
#define CHECK_GT(a, b) SPATE_CHECK_OP(>, a, b)
#define CHECK_OK(status) CHECK((status).ok()) << (status) << " "

#ifdef NDEBUG
#define SPATE_DCHECK_NOP(condition) \
  while (false) CHECK(condition)
#define DCHECK(condition) SPATE_DCHECK_NOP(condition)
#define DCHECK_EQ(a, b) SPATE_DCHECK_NOP((a) == (b))
#define DCHECK_NE(a, b) SPATE_DCHECK_NOP((a) != (b))
#define DCHECK_LE(a, b) SPATE_DCHECK_NOP((a) <= (b))
#define DCHECK_LT(a, b) SPATE_DCHECK_NOP((a) < (b))
#define DCHECK_GE(a, b) SPATE_DCHECK_NOP((a) >= (b))
#define DCHECK_GT(a, b) SPATE_DCHECK_NOP((a) > (b))
#else
#define DCHECK(condition) CHECK(condition)
#define DCHECK_EQ(a, b) CHECK_EQ(a, b)
#define DCHECK_NE(a, b) CHECK_NE(a, b)
#define DCHECK_LE(a, b) CHECK_LE(a, b)
#define DCHECK_LT(a, b) CHECK_LT(a, b)
#define DCHECK_GE(a, b) CHECK_GE(a, b)
#define DCHECK_GT(a, b) CHECK_GT(a, b)
#endif

#endif  // SPATE_BASE_CHECK_H_
