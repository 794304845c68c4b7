// Internal: SHA-256 block compression with the x86 SHA extensions, two
// independent blocks at a time. The keyed hash of a finding is an HMAC of a
// short value: two compressions that depend on each other, each bound by the
// latency of sha256rnds2 (about 65 ns here), not by throughput. Interleaving
// two findings' compressions fills the idle issue slots, so two hashes cost
// about what one did.
#pragma once

#include <cstdint>

namespace airlock::inspect {

// Whether the CPU has the SHA extensions (and SSSE3/SSE4.1) these need.
[[nodiscard]] bool sha256_x2_available() noexcept;

// state_a/state_b: the eight chaining words (a..h) before and after; each
// block is 64 bytes of message. Only when sha256_x2_available().
void sha256_compress_x2(std::uint32_t state_a[8], const unsigned char block_a[64], std::uint32_t state_b[8],
                        const unsigned char block_b[64]) noexcept;

}  // namespace airlock::inspect
