// guest/workloads/counter_chain.h: the counter workload's deterministic hash chain.
// Shared verbatim by the guest (which runs it at CPL3, compiled with -mavx) and by the host
// oracle (which recomputes it). Freestanding: only <stdint.h>, GCC vector extensions.
// Each step mixes a 256-bit vector state (kept in SSE/AVX registers by the compiler) with a
// pseudo-randomly chosen word of a per-vCPU scratch array in memory, and writes a word back, so
// both vector registers and guest RAM are part of the chain's state: losing, repeating or
// corrupting either changes every later digest. Not thread-safe: one ChainState per vCPU.
#ifndef REHOME_GUEST_WORKLOADS_COUNTER_CHAIN_H_
#define REHOME_GUEST_WORKLOADS_COUNTER_CHAIN_H_

#include <stdint.h>

namespace rehome::counter {

typedef uint64_t U64x4 __attribute__((vector_size(32)));

inline constexpr uint32_t kScratchWords = 4096;  // 32 KiB of scratch per vCPU

struct ChainState {
  U64x4 v;
  uint64_t step;
  uint64_t pad[3];
  uint64_t scratch[kScratchWords];
};

inline uint64_t SplitMix64(uint64_t* x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline void Init(ChainState* s, uint32_t vcpu, uint64_t seed) {
  uint64_t x = seed * 0x100000001b3ULL + vcpu;
  s->v = U64x4{SplitMix64(&x), SplitMix64(&x), SplitMix64(&x), SplitMix64(&x)};
  s->step = 0;
  s->pad[0] = s->pad[1] = s->pad[2] = 0;
  for (uint32_t i = 0; i < kScratchWords; ++i) s->scratch[i] = SplitMix64(&x);
}

// Advances the chain by one step.
inline void Step(ChainState* s) {
  const uint64_t i = ++s->step;
  U64x4 v = s->v;
  const uint32_t idx = static_cast<uint32_t>(v[0] ^ (v[2] >> 17)) & (kScratchWords - 1);
  const uint64_t m = s->scratch[idx];
  const U64x4 k = {i, i * 0x9e3779b97f4a7c15ULL, m, m ^ 0xd6e8feb86659fd93ULL};
  v += k;
  v ^= (v >> 29);
  v = U64x4{v[1], v[2], v[3], v[0]} ^ (v << 7);
  v += U64x4{0x2545f4914f6cdd1dULL, 0x9fb21c651e98df25ULL, 0xc2b2ae3d27d4eb4fULL,
             0x165667b19e3779f9ULL};
  s->scratch[idx] = m ^ v[1] ^ (v[3] << 1);
  s->v = v;
}

// The reported digest: the vector state folded with the step count.
inline void Digest(const ChainState* s, uint64_t out[4]) {
  for (int j = 0; j < 4; ++j) out[j] = s->v[j] ^ (s->step * (2 * j + 1));
}

}  // namespace rehome::counter

#endif  // REHOME_GUEST_WORKLOADS_COUNTER_CHAIN_H_
