#include "client/ids.h"

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace spate::client {
namespace {

TEST(GuidGeneratorTest, UniqueAcrossThreadsAndShortEnough) {
  // The server deduplicates by guid (at most 64 bytes): a repeated guid
  // would silently drop a message.
  GuidGenerator guids;
  absl::Mutex mu;
  std::set<std::string> seen;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      std::vector<std::string> mine;
      for (int i = 0; i < 20000; ++i) mine.push_back(guids.Next());
      absl::MutexLock lock(&mu);
      for (std::string& guid : mine) {
        EXPECT_LE(guid.size(), GuidGenerator::kGuidCharsMax);
        seen.insert(std::move(guid));
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(seen.size(), 80000u);
}

TEST(GuidGeneratorTest, GeneratorsHaveDifferentRandomPrefixes) {
  GuidGenerator a;
  GuidGenerator b;
  EXPECT_NE(a.Next().substr(0, GuidGenerator::kPrefixChars),
            b.Next().substr(0, GuidGenerator::kPrefixChars));
}

TEST(RandomBytesTest, SizeAndVariety) {
  const std::string one = RandomBytes(16);
  const std::string two = RandomBytes(16);
  EXPECT_EQ(one.size(), 16u);
  EXPECT_NE(one, two);
  EXPECT_EQ(RandomBytes(5).size(), 5u);
  const std::string text = RandomAlnum(8);
  EXPECT_EQ(text.size(), 8u);
  for (char c : text) {
    EXPECT_TRUE(isalnum(static_cast<unsigned char>(c)));
  }
}

}  // namespace
}  // namespace spate::client
