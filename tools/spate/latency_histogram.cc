#include "tools/spate/latency_histogram.h"

#include <algorithm>
#include <cmath>

#include "base/check.h"

namespace spate::cli {
namespace {

constexpr uint64_t kSubBuckets = uint64_t{1}
                                 << LatencyHistogram::kSubBucketBits;
// Values below this get a bucket each.
constexpr uint64_t kLinearMax = 2 * kSubBuckets;
// Shifts run from 1 (values in [256, 512)) to 63 - kSubBucketBits.
constexpr int kShiftMax = 63 - LatencyHistogram::kSubBucketBits;
constexpr int kBucketCount =
    static_cast<int>(kLinearMax + kShiftMax * kSubBuckets);

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(kBucketCount, 0) {}

int LatencyHistogram::BucketIndex(uint64_t value) {
  if (value < kLinearMax) return static_cast<int>(value);
  const int msb = 63 - __builtin_clzll(value);
  const int shift = msb - kSubBucketBits;  // >= 1
  const uint64_t top = value >> shift;     // in [kSubBuckets, 2 kSubBuckets)
  return static_cast<int>(kLinearMax + (shift - 1) * kSubBuckets +
                          (top - kSubBuckets));
}

uint64_t LatencyHistogram::BucketHighest(int index) {
  CHECK(index >= 0 && index < kBucketCount) << index;
  if (static_cast<uint64_t>(index) < kLinearMax) return index;
  const uint64_t rest = index - kLinearMax;
  const int shift = static_cast<int>(rest / kSubBuckets) + 1;
  const uint64_t top = kSubBuckets + rest % kSubBuckets;
  // The last bucket's range ends at 2^64 - 1.
  return (top << shift) + ((uint64_t{1} << shift) - 1);
}

void LatencyHistogram::RecordNanos(int64_t nanos) {
  nanos = std::max<int64_t>(nanos, 0);
  ++counts_[BucketIndex(static_cast<uint64_t>(nanos))];
  min_nanos_ = count_ == 0 ? nanos : std::min(min_nanos_, nanos);
  max_nanos_ = std::max(max_nanos_, nanos);
  sum_nanos_ += static_cast<double>(nanos);
  ++count_;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (int i = 0; i < kBucketCount; ++i) counts_[i] += other.counts_[i];
  min_nanos_ =
      count_ == 0 ? other.min_nanos_ : std::min(min_nanos_, other.min_nanos_);
  max_nanos_ = std::max(max_nanos_, other.max_nanos_);
  sum_nanos_ += other.sum_nanos_;
  count_ += other.count_;
}

double LatencyHistogram::mean_nanos() const {
  return count_ == 0 ? 0 : sum_nanos_ / static_cast<double>(count_);
}

int64_t LatencyHistogram::PercentileNanos(double quantile) const {
  CHECK(quantile > 0 && quantile <= 1) << quantile;
  if (count_ == 0) return 0;
  const int64_t rank = std::max<int64_t>(
      1,
      static_cast<int64_t>(std::ceil(quantile * static_cast<double>(count_))));
  int64_t seen = 0;
  for (int i = 0; i < kBucketCount; ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const uint64_t highest = BucketHighest(i);
      return std::min<uint64_t>(highest, static_cast<uint64_t>(max_nanos_));
    }
  }
  return max_nanos_;  // unreachable: the buckets add up to count_
}

}  // namespace spate::cli
