// A seeded pseudo-random generator whose output is the same on every
// platform and compiler (xoshiro256** seeded through splitmix64). The raft
// core and the simulator draw election jitter and fault schedules from it,
// so a run is replayable from its seed. std::*_distribution and
// absl::BitGen are implementation-defined and therefore not used there.
#ifndef SPATE_BASE_PRNG_H_
#define SPATE_BASE_PRNG_H_

#include <cstdint>

namespace spate::base {

class Prng {
 public:
  explicit Prng(uint64_t seed) {
    for (uint64_t& word : state_) word = SplitMix64(seed);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(state_[1] * 5, 7) * 9;
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = Rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, bound); bound must be > 0. Lemire's multiply-shift; the
  // tiny bias for huge bounds does not matter for jitter and schedules.
  uint64_t Uniform(uint64_t bound) {
    return static_cast<uint64_t>(
        (static_cast<unsigned __int128>(Next()) * bound) >> 64);
  }

  // Uniform in [lo, hi]; requires lo <= hi.
  uint64_t Range(uint64_t lo, uint64_t hi) { return lo + Uniform(hi - lo + 1); }

  // True with probability numerator/denominator.
  bool Chance(uint64_t numerator, uint64_t denominator) {
    return Uniform(denominator) < numerator;
  }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  static uint64_t SplitMix64(uint64_t& x) {
    uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }

  uint64_t state_[4];
};

}  // namespace spate::base

#endif  // SPATE_BASE_PRNG_H_
