// Block-mode scan of arbitrary bytes. Besides "no crash, no leak, no UB":
//   - results keep the scanner's documented shape (ordered, non-overlapping,
//     in range, right line numbers, previews that hide the value);
//   - redact() of those findings replaces exactly their bytes, hides them,
//     and leaves everything else as it was (redaction_check.hpp);
//   - every SIMD level of the fast path finds the same things as the scalar
//     classifier (the reference).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "scan_support.hpp"
#include "redaction_check.hpp"
#include "inspect/detectors.hpp"
#include "inspect/fastpath.hpp"
#include "inspect/finding.hpp"
#include "inspect/scanner.hpp"
#include "inspect/text.hpp"

namespace {

using namespace airlock::inspect;
using airlock::fuzz::difference;

ScanResult scan_at(SimdLevel level, std::string_view input) {
    FastPath::force_simd_level(level);
    static Session session = [] {
        auto created = airlock::fuzz::shared_scanner().new_session();
        FUZZ_CHECK(created.has_value());
        return std::move(*created);
    }();
    auto result = session.scan(input);
    FUZZ_CHECK(result.has_value());
    return std::move(*result);
}

void check_shape(std::string_view input, const ScanResult& result) {
    FUZZ_CHECK(!result.skipped);
    FUZZ_CHECK(!result.truncated);  // inputs are far below the 10000-finding cap
    FUZZ_CHECK(result.bytes_scanned == input.size());
    std::uint64_t previous_end = 0;
    for (const Finding& f : result.findings) {
        const Detector* detector = find_detector(f.type);
        FUZZ_CHECK(detector != nullptr);
        FUZZ_CHECK(f.length > 0);
        FUZZ_CHECK(f.offset >= previous_end);  // ordered, non-overlapping
        FUZZ_CHECK(f.offset + f.length <= input.size());
        previous_end = f.offset + f.length;
        const auto offset = static_cast<std::size_t>(f.offset);
        FUZZ_CHECK(f.line == 1 + static_cast<std::uint64_t>(
                                     std::count(input.begin(), input.begin() + static_cast<std::ptrdiff_t>(offset), '\n')));
        FUZZ_CHECK(f.confidence > 0 && f.confidence <= 1);
        FUZZ_CHECK(f.severity == detector->severity);
        FUZZ_CHECK(f.keyed_hash.hex().size() == 64);
        const std::string_view raw = input.substr(offset, f.length);
        FUZZ_CHECK(f.preview == masked_preview(*detector, raw));
        FUZZ_CHECK(f.preview.size() <= std::max<std::size_t>(raw.size() + 16, 48));
        if (raw.size() >= 8) FUZZ_CHECK(f.preview.view().find(raw) == std::string::npos);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = airlock::fuzz::as_text(data, size);
    const ScanResult reference = scan_at(SimdLevel::scalar, input);
    check_shape(input, reference);
    airlock::fuzz::check_redaction(input, reference.findings);
    for (SimdLevel level : {SimdLevel::sse2, SimdLevel::avx2}) {
        const ScanResult simd = scan_at(level, input);
        const std::string diff = difference(reference, simd);
        if (!diff.empty()) std::fprintf(stderr, "scalar and SIMD level %d differ: %s\n", static_cast<int>(level), diff.c_str());
        FUZZ_CHECK(diff.empty());
    }
    FastPath::force_simd_level(SimdLevel::best);
    return 0;
}
