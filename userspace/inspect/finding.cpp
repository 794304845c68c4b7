#include "inspect/finding.hpp"

#include <algorithm>
#include <cstring>
#include <vector>

#include "inspect/detectors.hpp"
#include "inspect/text.hpp"

namespace airlock::inspect {
namespace {

// The preview writers below write into a buffer of preview_bound() bytes,
// so that a finding's preview is built in place (Preview's inline bytes)
// and masked_preview() shares the one implementation.
std::size_t preview_bound(MaskStyle style, std::size_t raw_size) noexcept {
    switch (style) {
        case MaskStyle::secret:
        case MaskStyle::hidden: return 8;
        case MaskStyle::ipv6: return 9;
        case MaskStyle::key_block: return 48;
        default: return raw_size + 8;  // email: 1 + "***@***" + the tail from its last dot
    }
}

std::size_t put(char* out, std::size_t at, std::string_view text) noexcept {
    std::memcpy(out + at, text.data(), text.size());
    return at + text.size();
}

std::size_t put_stars(char* out, std::size_t at, std::size_t n) noexcept {
    std::memset(out + at, '*', n);
    return at + n;
}

// Every digit but the last `keep` replaced by '*'; separators stay so the
// shape is still recognizable.
std::size_t mask_digits_keep_last(std::string_view raw, std::size_t keep, char* out) noexcept {
    const auto total = static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), [](char c) { return is_digit(c); }));
    std::size_t seen = 0;
    for (std::size_t i = 0; i < raw.size(); ++i) {
        char c = raw[i];
        if (is_digit(c)) {
            if (total < keep * 2 || seen < total - keep) c = '*';  // short numbers keep nothing
            ++seen;
        }
        out[i] = c;
    }
    return raw.size();
}

// The first `head` and last `tail` of the `count` selected bytes of `raw`
// (digits, or letters and digits upper-cased), the rest as '*'; all of them
// masked when fewer than `minimum`.
template <class Select>
std::size_t keep_ends(std::string_view raw, std::size_t head, std::size_t tail, std::size_t minimum, Select select,
                      char* out) noexcept {
    std::size_t count = 0;
    for (char c : raw) count += select(c) ? 1 : 0;
    if (count < minimum) return put_stars(out, 0, count);
    std::size_t seen = 0;
    std::size_t n = 0;
    for (char c : raw) {
        if (!select(c)) continue;
        out[n++] = seen < head || seen >= count - tail ? (is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c) : '*';
        ++seen;
    }
    return n;
}

std::size_t key_block_label(std::string_view raw, char* out) noexcept {
    constexpr std::string_view begin = "-----BEGIN ";
    if (raw.starts_with(begin)) {
        const std::size_t end = raw.find("-----", begin.size());
        if (end != std::string_view::npos && end - begin.size() <= 40) {
            std::size_t n = put(out, 0, "[");
            n = put(out, n, raw.substr(begin.size(), end - begin.size()));
            return put(out, n, " block]");
        }
    }
    return put(out, 0, "[PRIVATE KEY block]");
}

// Writes the preview of `raw` into `out` (preview_bound() bytes); returns its size.
std::size_t write_preview(MaskStyle style, std::string_view raw, char* out) noexcept {
    switch (style) {
        case MaskStyle::keep_last4_digits: return mask_digits_keep_last(raw, 4, out);
        case MaskStyle::keep_last3_digits: return mask_digits_keep_last(raw, 3, out);
        case MaskStyle::card: return keep_ends(raw, 4, 4, 12, [](char c) { return is_digit(c); }, out);
        case MaskStyle::iban: return keep_ends(raw, 2, 4, 12, [](char c) { return is_alnum(c); }, out);
        case MaskStyle::email: {
            const std::size_t at = raw.rfind('@');
            const std::size_t dot = raw.rfind('.');
            if (at == std::string_view::npos || at == 0 || dot == std::string_view::npos || dot < at) {
                return put(out, 0, "***@***");
            }
            std::size_t n = put(out, 0, raw.substr(0, 1));
            n = put(out, n, "***@***");
            return put(out, n, raw.substr(dot));
        }
        case MaskStyle::ipv4: {
            const std::size_t dot = raw.find('.');
            const std::size_t n = put(out, 0, raw.substr(0, dot == std::string_view::npos ? 0 : dot));
            return put(out, n, ".*.*.*");
        }
        case MaskStyle::ipv6: {
            const std::size_t colon = raw.find(':');
            const std::size_t n =
                put(out, 0, raw.substr(0, colon == std::string_view::npos ? 0 : std::min<std::size_t>(colon, 4)));
            return put(out, n, ":****");
        }
        case MaskStyle::date:
            for (std::size_t i = 0; i < raw.size(); ++i) out[i] = is_alnum(raw[i]) ? '*' : raw[i];
            return raw.size();
        case MaskStyle::identifier: {
            const auto total =
                static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), [](char c) { return is_alnum(c); }));
            std::size_t seen = 0;
            for (std::size_t i = 0; i < raw.size(); ++i) {
                char c = raw[i];
                if (is_alnum(c)) {
                    if (seen + 2 < total || total < 6) c = '*';
                    ++seen;
                }
                out[i] = c;
            }
            return raw.size();
        }
        case MaskStyle::secret: {
            const std::size_t visible = raw.size() >= 16 ? 4 : (raw.size() >= 8 ? 2 : 0);
            return put(out, put(out, 0, raw.substr(0, visible)), "****");
        }
        case MaskStyle::hidden: break;
        case MaskStyle::key_block: return key_block_label(raw, out);
    }
    return put(out, 0, "****");
}

// The redacted form of a number, as in redact(): its digits but the last
// `keep` masked.
std::string masked_digits(std::string_view raw, std::size_t keep) {
    std::string out(raw.size(), '\0');
    out.resize(mask_digits_keep_last(raw, keep, out.data()));
    return out;
}

}  // namespace

void Preview::assign(std::string_view text) {
    char* out = prepare(text.size());
    std::memcpy(out, text.data(), text.size());
    resize_written(text.size());
}

char* Preview::prepare(std::size_t size) {
    if (size <= inline_capacity) {
        overflow_.clear();
        size_ = 0;
        return bytes_.data();
    }
    size_ = spilled;
    overflow_.resize(size);
    return overflow_.data();
}

void Preview::resize_written(std::size_t size) noexcept {
    if (size_ == spilled) {
        overflow_.resize(size);  // never grows: at most what prepare() made room for
    } else {
        size_ = static_cast<std::uint8_t>(size);
    }
}

std::string KeyedHash::hex() const {
    if (!set_) return {};
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(2 * size, '0');
    for (std::size_t i = 0; i < size; ++i) {
        out[2 * i] = digits[bytes_[i] >> 4];
        out[2 * i + 1] = digits[bytes_[i] & 0xF];
    }
    return out;
}

KeyedHash KeyedHash::from_hex(std::string_view hex) noexcept {
    if (hex.size() != 2 * size) return {};
    auto nibble = [](char c) -> int {
        if (is_digit(c)) return c - '0';
        if (c >= 'a' && c <= 'f') return c - 'a' + 10;
        if (c >= 'A' && c <= 'F') return c - 'A' + 10;
        return -1;
    };
    Bytes bytes{};
    for (std::size_t i = 0; i < size; ++i) {
        const int high = nibble(hex[2 * i]);
        const int low = nibble(hex[2 * i + 1]);
        if (high < 0 || low < 0) return {};
        bytes[i] = static_cast<unsigned char>(high << 4 | low);
    }
    return KeyedHash(bytes);
}

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
    std::string out(preview_bound(detector.mask, raw.size()), '\0');
    out.resize(write_preview(detector.mask, raw, out.data()));
    return out;
}

void masked_preview_into(const Detector& detector, std::string_view raw, Preview& out) {
    char* bytes = out.prepare(preview_bound(detector.mask, raw.size()));
    out.resize_written(write_preview(detector.mask, raw, bytes));
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
            case MaskStyle::card: out.append(masked_digits(raw, 4)); break;
            case MaskStyle::keep_last3_digits: out.append(masked_digits(raw, 3)); break;
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
