// The property redact() promises (finding.hpp), checked from the outside:
// findings are applied in offset order; one that overlaps an applied one
// or lies outside the content is skipped; the bytes between applied
// findings are copied unchanged; a number people recognize by its shape
// keeps its separators and at most its last three or four digits, anything
// else becomes "[REDACTED:<type>]".
#pragma once

#include <algorithm>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "inspect/detectors.hpp"
#include "inspect/finding.hpp"
#include "inspect/text.hpp"

namespace airlock::fuzz {

inline void check_redaction(std::string_view content, std::span<const inspect::Finding> findings) {
    using namespace airlock::inspect;
    const std::string out = redact(content, findings);
    std::vector<const Finding*> ordered;
    for (const Finding& f : findings) ordered.push_back(&f);
    std::stable_sort(ordered.begin(), ordered.end(), [](const Finding* a, const Finding* b) { return a->offset < b->offset; });
    std::string_view rest = out;
    std::size_t cursor = 0;
    for (const Finding* f : ordered) {
        if (f->offset < cursor || f->offset > content.size() || f->length > content.size() - f->offset) continue;
        const auto offset = static_cast<std::size_t>(f->offset);
        const std::string_view gap = content.substr(cursor, offset - cursor);
        FUZZ_CHECK(rest.starts_with(gap));
        rest.remove_prefix(gap.size());
        const std::string_view raw = content.substr(offset, f->length);
        const Detector* detector = find_detector(f->type);
        const MaskStyle style = detector != nullptr ? detector->mask : MaskStyle::hidden;
        if (style == MaskStyle::keep_last4_digits || style == MaskStyle::keep_last3_digits || style == MaskStyle::card) {
            const std::size_t keep = style == MaskStyle::keep_last3_digits ? 3 : 4;
            FUZZ_CHECK(rest.size() >= raw.size());
            const std::string_view masked = rest.substr(0, raw.size());
            std::size_t digits = 0;
            std::size_t shown = 0;
            for (std::size_t i = 0; i < raw.size(); ++i) {
                if (!is_digit(raw[i])) {
                    FUZZ_CHECK(masked[i] == raw[i]);  // separators keep the shape
                    continue;
                }
                ++digits;
                if (masked[i] != '*') {
                    FUZZ_CHECK(masked[i] == raw[i]);
                    ++shown;
                }
            }
            FUZZ_CHECK(shown <= keep);
            FUZZ_CHECK(shown == 0 || shown < digits);  // some digit is always hidden
            rest.remove_prefix(raw.size());
        } else {
            const std::string tag = "[REDACTED:" + std::string(f->type.empty() ? "unknown" : f->type) + "]";
            FUZZ_CHECK(rest.starts_with(tag));
            rest.remove_prefix(tag.size());
        }
        cursor = offset + f->length;
    }
    FUZZ_CHECK(rest == content.substr(cursor));
}

}  // namespace airlock::fuzz
