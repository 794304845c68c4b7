// Internal: the SIMD fast path. Numbers people write (cards, SSNs, phones,
// IPs, IBANs, ...) have no literal a regex engine could anchor on; compiled
// into the vectorscan database they cut its throughput twentyfold. Instead a
// SIMD pass classifies 64 bytes at a time and flags only a few shapes (four
// digits in a row, "ddd ddd", "+d", two "d.d" an octet apart, two capitals
// before two digits, "::" or "hhhh:" at a token edge, '@'); hand-written
// shape checks and validators run on those spots only.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>

#include "inspect/detectors.hpp"

namespace airlock::inspect {

struct FastMatch {
    const Detector* detector = nullptr;
    std::size_t start = 0;  // relative to the data scanned
    std::size_t end = 0;
    float confidence = 0;
};

class FastPathSink {
public:
    virtual ~FastPathSink() = default;
    // Returns false to stop the scan (the findings cap was reached).
    virtual bool on_fast_match(const FastMatch& match) = 0;
};

// Instruction sets the classifier can use; `best` picks at run time.
enum class SimdLevel { scalar, sse2, avx2, avx512, best };

class FastPath {
public:
    // Only the SIMD-engine detectors among `enabled` are looked for.
    explicit FastPath(std::span<const Detector* const> enabled);

    [[nodiscard]] bool active() const noexcept;

    // Looks at trigger positions in [from, data.size()). Candidates may read
    // `data` back to 64 bytes before a trigger (never before `min_start`) and
    // up to 128 bytes after it. A match never starts before `min_start`,
    // which is advanced past every match reported.
    // Returns where to resume: data.size() when done, or the position of the
    // first trigger whose candidate reaches the end of `data` when
    // `complete` is false (the bytes after it decide).
    std::size_t scan(std::string_view data, std::size_t from, bool complete, std::size_t& min_start,
                     FastPathSink& sink) const;

    // Tests compare the SIMD classifiers with the scalar one.
    static void force_simd_level(SimdLevel level) noexcept;
    [[nodiscard]] static SimdLevel simd_level() noexcept;

private:
    const Detector* card_ = nullptr;
    const Detector* ssn_ = nullptr;
    const Detector* itin_ = nullptr;
    const Detector* sin_ = nullptr;
    const Detector* aadhaar_ = nullptr;
    const Detector* phone_ = nullptr;
    const Detector* iban_ = nullptr;
    const Detector* nino_ = nullptr;
    const Detector* ipv4_ = nullptr;
    const Detector* ipv6_ = nullptr;
    const Detector* email_ = nullptr;

    friend class FastPathScan;
};

// Occurrences of `byte` in [data, data + size), SIMD where available (line
// numbers of findings are counted this way over whole buffers).
[[nodiscard]] std::size_t count_byte(const char* data, std::size_t size, char byte) noexcept;

}  // namespace airlock::inspect
