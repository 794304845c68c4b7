#include "inspect/finding.hpp"

#include <algorithm>
#include <vector>

#include "inspect/detectors.hpp"
#include "inspect/text.hpp"

namespace airlock::inspect {
namespace {

// Every digit but the last `keep` replaced by '*'; separators stay so the
// shape is still recognizable.
std::string mask_digits_keep_last(std::string_view raw, std::size_t keep) {
    const auto total = static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), [](char c) { return is_digit(c); }));
    std::string out(raw);
    std::size_t seen = 0;
    for (char& c : out) {
        if (!is_digit(c)) continue;
        if (total < keep * 2 || seen < total - keep) c = '*';  // short numbers keep nothing
        ++seen;
    }
    return out;
}

std::string compact_upper_alnum(std::string_view raw) {
    std::string out;
    for (char c : raw) {
        if (is_alnum(c)) out.push_back(is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c);
    }
    return out;
}

std::string key_block_label(std::string_view raw) {
    constexpr std::string_view begin = "-----BEGIN ";
    if (raw.starts_with(begin)) {
        const std::size_t end = raw.find("-----", begin.size());
        if (end != std::string_view::npos && end - begin.size() <= 40) {
            return "[" + std::string(raw.substr(begin.size(), end - begin.size())) + " block]";
        }
    }
    return "[PRIVATE KEY block]";
}

}  // namespace

std::string_view to_string(Category category) noexcept {
    return category == Category::pii ? "pii" : "secret";
}

std::string_view to_string(Severity severity) noexcept {
    switch (severity) {
        case Severity::low: return "low";
        case Severity::medium: return "medium";
        case Severity::high: return "high";
        case Severity::critical: return "critical";
    }
    return "unknown";
}

std::string masked_preview(std::string_view type, std::string_view raw) {
    const Detector* detector = find_detector(type);
    if (detector == nullptr) return "****";
    return masked_preview(*detector, raw);
}

std::string masked_preview(const Detector& detector, std::string_view raw) {
    switch (detector.mask) {
        case MaskStyle::keep_last4_digits: return mask_digits_keep_last(raw, 4);
        case MaskStyle::keep_last3_digits: return mask_digits_keep_last(raw, 3);
        case MaskStyle::card: {
            std::string digits;
            for (char c : raw) {
                if (is_digit(c)) digits.push_back(c);
            }
            if (digits.size() < 12) return std::string(digits.size(), '*');
            return digits.substr(0, 4) + std::string(digits.size() - 8, '*') + digits.substr(digits.size() - 4);
        }
        case MaskStyle::iban: {
            const std::string compact = compact_upper_alnum(raw);
            if (compact.size() < 12) return std::string(compact.size(), '*');
            return compact.substr(0, 2) + std::string(compact.size() - 6, '*') + compact.substr(compact.size() - 4);
        }
        case MaskStyle::email: {
            const std::size_t at = raw.rfind('@');
            const std::size_t dot = raw.rfind('.');
            if (at == std::string_view::npos || at == 0 || dot == std::string_view::npos || dot < at) return "***@***";
            return std::string(1, raw.front()) + "***@***" + std::string(raw.substr(dot));
        }
        case MaskStyle::ipv4: {
            const std::size_t dot = raw.find('.');
            return std::string(raw.substr(0, dot == std::string_view::npos ? 0 : dot)) + ".*.*.*";
        }
        case MaskStyle::ipv6: {
            const std::size_t colon = raw.find(':');
            return std::string(raw.substr(0, colon == std::string_view::npos ? 0 : std::min<std::size_t>(colon, 4))) +
                   ":****";
        }
        case MaskStyle::date: {
            std::string out(raw);
            for (char& c : out) {
                if (is_alnum(c)) c = '*';
            }
            return out;
        }
        case MaskStyle::identifier: {
            std::string out(raw);
            const auto total = static_cast<std::size_t>(std::count_if(out.begin(), out.end(), [](char c) { return is_alnum(c); }));
            std::size_t seen = 0;
            for (char& c : out) {
                if (!is_alnum(c)) continue;
                if (seen + 2 < total || total < 6) c = '*';
                ++seen;
            }
            return out;
        }
        case MaskStyle::secret: {
            const std::size_t visible = raw.size() >= 16 ? 4 : (raw.size() >= 8 ? 2 : 0);
            return std::string(raw.substr(0, visible)) + "****";
        }
        case MaskStyle::hidden: return "****";
        case MaskStyle::key_block: return key_block_label(raw);
    }
    return "****";
}

std::string redact(std::string_view content, std::span<const Finding> findings) {
    std::vector<const Finding*> ordered;
    ordered.reserve(findings.size());
    for (const Finding& f : findings) ordered.push_back(&f);
    std::stable_sort(ordered.begin(), ordered.end(),
                     [](const Finding* a, const Finding* b) { return a->offset < b->offset; });
    std::string out;
    out.reserve(content.size());
    std::size_t cursor = 0;
    for (const Finding* f : ordered) {
        if (f->offset < cursor || f->offset > content.size() || f->length > content.size() - f->offset) continue;
        const auto offset = static_cast<std::size_t>(f->offset);
        out.append(content.substr(cursor, offset - cursor));
        const std::string_view raw = content.substr(offset, f->length);
        const Detector* detector = find_detector(f->type);
        const MaskStyle style = detector ? detector->mask : MaskStyle::hidden;
        switch (style) {
            case MaskStyle::keep_last4_digits:
            case MaskStyle::card: out.append(mask_digits_keep_last(raw, 4)); break;
            case MaskStyle::keep_last3_digits: out.append(mask_digits_keep_last(raw, 3)); break;
            default:
                out.append("[REDACTED:");
                out.append(f->type.empty() ? std::string_view("unknown") : f->type);
                out.append("]");
        }
        cursor = offset + f->length;
    }
    out.append(content.substr(cursor));
    return out;
}

}  // namespace airlock::inspect
