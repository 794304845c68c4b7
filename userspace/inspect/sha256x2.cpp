#include "inspect/sha256x2.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AIRLOCK_SHA_X86 1
#endif

namespace airlock::inspect {

#ifdef AIRLOCK_SHA_X86
namespace {

alignas(16) constexpr std::uint32_t round_constants[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define AIRLOCK_SHA_TARGET __attribute__((target("sha,ssse3,sse4.1")))

// One stream's registers: the state as ABEF/CDGH (the layout sha256rnds2
// wants) and the last four message vectors of the schedule.
struct Lane {
    __m128i abef;
    __m128i cdgh;
    __m128i abef_saved;
    __m128i cdgh_saved;
    __m128i w[4];
};

AIRLOCK_SHA_TARGET inline void load(Lane& l, const std::uint32_t state[8], const unsigned char* block) {
    const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bULL, 0x0405060700010203ULL);
    const __m128i dcba = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);  // CDAB
    const __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
    l.abef = _mm_alignr_epi8(dcba, efgh, 8);
    l.cdgh = _mm_blend_epi16(efgh, dcba, 0xF0);
    l.abef_saved = l.abef;
    l.cdgh_saved = l.cdgh;
    for (int i = 0; i < 4; ++i) {
        l.w[i] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * i)), byte_swap);
    }
}

// Rounds 4g..4g+3; for g >= 4 the message vector is extended first
// (W[t] = s1(W[t-2]) + W[t-7] + s0(W[t-15]) + W[t-16], four words at once).
[[gnu::always_inline]] AIRLOCK_SHA_TARGET inline void rounds(Lane& l, int g) {
    __m128i& w = l.w[g & 3];
    if (g >= 4) {
        const __m128i previous = l.w[(g - 1) & 3];
        const __m128i before = l.w[(g - 2) & 3];
        w = _mm_sha256msg1_epu32(w, l.w[(g - 3) & 3]);
        w = _mm_add_epi32(w, _mm_alignr_epi8(previous, before, 4));
        w = _mm_sha256msg2_epu32(w, previous);
    }
    __m128i message = _mm_add_epi32(w, _mm_load_si128(reinterpret_cast<const __m128i*>(round_constants + 4 * g)));
    l.cdgh = _mm_sha256rnds2_epu32(l.cdgh, l.abef, message);
    message = _mm_shuffle_epi32(message, 0x0E);
    l.abef = _mm_sha256rnds2_epu32(l.abef, l.cdgh, message);
}

AIRLOCK_SHA_TARGET inline void store(Lane& l, std::uint32_t state[8]) {
    const __m128i abef = _mm_add_epi32(l.abef, l.abef_saved);
    const __m128i cdgh = _mm_add_epi32(l.cdgh, l.cdgh_saved);
    const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
    const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));      // DCBA
    _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));  // HGFE
}

}  // namespace

bool sha256_x2_available() noexcept {
    static const bool available = __builtin_cpu_supports("sha") && __builtin_cpu_supports("ssse3") &&
                                  __builtin_cpu_supports("sse4.1");
    return available;
}

AIRLOCK_SHA_TARGET void sha256_compress_x2(std::uint32_t state_a[8], const unsigned char block_a[64],
                                           std::uint32_t state_b[8], const unsigned char block_b[64]) noexcept {
    Lane a;
    Lane b;
    load(a, state_a, block_a);
    load(b, state_b, block_b);
#pragma GCC unroll 16
    for (int g = 0; g < 16; ++g) {
        rounds(a, g);
        rounds(b, g);
    }
    store(a, state_a);
    store(b, state_b);
}

#else

bool sha256_x2_available() noexcept { return false; }

void sha256_compress_x2(std::uint32_t*, const unsigned char*, std::uint32_t*, const unsigned char*) noexcept {}

#endif

}  // namespace airlock::inspect
