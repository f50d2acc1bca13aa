// LatencyHistogram: an HDR-style histogram of latencies in nanoseconds for
// `spate bench` — constant memory whatever the number of samples, a
// relative error below 1/128 (0.8 %) at every magnitude from 1 ns to
// centuries, and exact count, min, max and mean. Percentiles are read by
// walking the buckets, so p99.9 of a million samples costs the same as
// p50 of ten.
//
// Buckets (log-linear, as HdrHistogram with 2 significant digits): values
// below 256 ns get one bucket each; above, every power-of-two range
// [2^k, 2^(k+1)) is split into 128 equal buckets. A percentile reports the
// highest value its bucket holds (never above the recorded max), so it
// errs on the high side, as HdrHistogram's "highest equivalent value".
//
// Threading: not thread-safe; give each recording thread its own histogram
// and Merge() them afterwards.
#ifndef SPATE_TOOLS_SPATE_LATENCY_HISTOGRAM_H_
#define SPATE_TOOLS_SPATE_LATENCY_HISTOGRAM_H_

#include <cstdint>
#include <vector>

namespace spate::cli {

class LatencyHistogram {
 public:
  // Sub-buckets per power of two above the linear range.
  static constexpr int kSubBucketBits = 7;

  LatencyHistogram();

  // Records one sample; negative values (a clock step) count as 0.
  void RecordNanos(int64_t nanos);
  // Adds every sample of `other`.
  void Merge(const LatencyHistogram& other);

  int64_t count() const { return count_; }
  // 0 when empty.
  int64_t min_nanos() const { return count_ == 0 ? 0 : min_nanos_; }
  int64_t max_nanos() const { return max_nanos_; }
  double mean_nanos() const;
  // The value at `quantile` (0 < quantile <= 1, e.g. 0.999): the highest
  // value of the bucket that holds the ceil(quantile * count)-th smallest
  // sample, capped at max_nanos(). 0 when empty.
  int64_t PercentileNanos(double quantile) const;

  // Bucket arithmetic, exposed for tests.
  static int BucketIndex(uint64_t value);
  static uint64_t BucketHighest(int index);

 private:
  std::vector<int64_t> counts_;
  int64_t count_ = 0;
  int64_t min_nanos_ = 0;
  int64_t max_nanos_ = 0;
  // Sum of samples as a double: exact enough for a mean, never overflows.
  double sum_nanos_ = 0;
};

}  // namespace spate::cli

#endif  // SPATE_TOOLS_SPATE_LATENCY_HISTOGRAM_H_
