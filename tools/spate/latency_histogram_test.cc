#include "tools/spate/latency_histogram.h"

#include <algorithm>
#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace spate::cli {
namespace {

TEST(LatencyHistogramTest, EmptyReportsZeros) {
  LatencyHistogram histogram;
  EXPECT_EQ(histogram.count(), 0);
  EXPECT_EQ(histogram.min_nanos(), 0);
  EXPECT_EQ(histogram.max_nanos(), 0);
  EXPECT_EQ(histogram.mean_nanos(), 0);
  EXPECT_EQ(histogram.PercentileNanos(0.99), 0);
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram histogram;
  for (int v = 1; v <= 200; ++v) histogram.RecordNanos(v);
  EXPECT_EQ(histogram.count(), 200);
  EXPECT_EQ(histogram.min_nanos(), 1);
  EXPECT_EQ(histogram.max_nanos(), 200);
  EXPECT_DOUBLE_EQ(histogram.mean_nanos(), 100.5);
  EXPECT_EQ(histogram.PercentileNanos(0.5), 100);
  EXPECT_EQ(histogram.PercentileNanos(0.9), 180);
  EXPECT_EQ(histogram.PercentileNanos(1.0), 200);
}

TEST(LatencyHistogramTest, BucketsCoverEveryValueContiguously) {
  // Each bucket starts right after the previous one ends, and a value maps
  // to the bucket whose range holds it.
  uint64_t next_low = 0;
  for (int index = 0; index < 2000; ++index) {
    EXPECT_EQ(LatencyHistogram::BucketIndex(next_low), index) << next_low;
    const uint64_t highest = LatencyHistogram::BucketHighest(index);
    EXPECT_EQ(LatencyHistogram::BucketIndex(highest), index) << highest;
    next_low = highest + 1;
  }
  const uint64_t huge = uint64_t{1} << 62;
  EXPECT_GE(
      LatencyHistogram::BucketHighest(LatencyHistogram::BucketIndex(huge)),
      huge);
}

TEST(LatencyHistogramTest, RelativeErrorStaysBelowOnePercent) {
  for (uint64_t value :
       {300ull, 1'000ull, 123'456ull, 9'999'999ull, 3'600'000'000'000ull}) {
    const uint64_t highest =
        LatencyHistogram::BucketHighest(LatencyHistogram::BucketIndex(value));
    EXPECT_GE(highest, value);
    EXPECT_LE(static_cast<double>(highest - value) / value, 1.0 / 128) << value;
  }
}

TEST(LatencyHistogramTest, PercentilesMatchSortedSamples) {
  // Latencies with a long tail: 1 µs .. 10 ms.
  std::vector<int64_t> samples;
  uint64_t x = 88172645463325252ull;  // xorshift64, fixed seed
  LatencyHistogram histogram;
  for (int i = 0; i < 100'000; ++i) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    const int64_t v = 1'000 + static_cast<int64_t>(
                                  (x % 1000) * (x % 1000) * (x % 10) + x % 997);
    samples.push_back(v);
    histogram.RecordNanos(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const int64_t exact = samples[static_cast<size_t>(q * samples.size()) - 1];
    const int64_t reported = histogram.PercentileNanos(q);
    EXPECT_GE(reported, exact) << q;
    EXPECT_LE(reported, exact + exact / 128 + 1) << q;
  }
  EXPECT_EQ(histogram.PercentileNanos(1.0), samples.back());
  EXPECT_EQ(histogram.min_nanos(), samples.front());
}

TEST(LatencyHistogramTest, MergeEqualsRecordingEverythingInOne) {
  LatencyHistogram a, b, all;
  for (int i = 0; i < 1000; ++i) {
    a.RecordNanos(i * 1000);
    all.RecordNanos(i * 1000);
    b.RecordNanos(5'000'000 + i);
    all.RecordNanos(5'000'000 + i);
  }
  LatencyHistogram merged;
  merged.Merge(a);
  merged.Merge(b);
  merged.Merge(LatencyHistogram());  // an empty one changes nothing
  EXPECT_EQ(merged.count(), all.count());
  EXPECT_EQ(merged.min_nanos(), 0);
  EXPECT_EQ(merged.max_nanos(), all.max_nanos());
  EXPECT_DOUBLE_EQ(merged.mean_nanos(), all.mean_nanos());
  for (double q : {0.1, 0.5, 0.75, 0.99, 1.0}) {
    EXPECT_EQ(merged.PercentileNanos(q), all.PercentileNanos(q)) << q;
  }
}

TEST(LatencyHistogramTest, NegativeSamplesCountAsZero) {
  LatencyHistogram histogram;
  histogram.RecordNanos(-5);
  EXPECT_EQ(histogram.count(), 1);
  EXPECT_EQ(histogram.max_nanos(), 0);
  EXPECT_EQ(histogram.PercentileNanos(0.5), 0);
}

}  // namespace
}  // namespace spate::cli
