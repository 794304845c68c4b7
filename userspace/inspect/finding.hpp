// What the inspector reports about a piece of data it found.
//
// The raw value never leaves the library: a Finding holds where the value is
// (offset, length, line), what it is, a masked preview and a keyed hash, and
// no member or function returns the matched bytes. Audit rows, logs,
// approval prompts and webhooks are built from these fields only.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace airlock::inspect {

enum class Category : std::uint8_t { pii, secret };
enum class Severity : std::uint8_t { low, medium, high, critical };

[[nodiscard]] std::string_view to_string(Category category) noexcept;
[[nodiscard]] std::string_view to_string(Severity severity) noexcept;

struct Finding {
    // Detector id ("pii.us_ssn"); points into the static catalogue, valid for
    // the life of the program.
    std::string_view type;
    std::uint64_t offset = 0;  // byte offset of the value in the scanned input
    std::uint32_t length = 0;  // bytes of the value
    std::uint64_t line = 0;    // 1-based line holding `offset`
    float confidence = 0;      // 0..1
    Severity severity = Severity::medium;
    // A well-known sample value (4111 1111 1111 1111, 078-05-1120, the AWS
    // documentation key, example.com addresses, ...): reported, flagged.
    bool test_value = false;
    std::string preview;  // masked: ***-**-6789, 4111********1111, ghp_****
    // Hex HMAC-SHA256 of the normalized value under the per-daemon key from
    // Options::hash_key; empty when no key was given. Lets audit rows and
    // allowlists recognize a value without storing it.
    std::string keyed_hash;
};

// The masked preview shown for a value of detector `type` (exposed so that
// callers can preview values they already hold, and for tests). Unknown
// types get a fully masked preview.
[[nodiscard]] std::string masked_preview(std::string_view type, std::string_view raw);

// `content` with every finding's bytes replaced: format-preserving for
// numbers people recognize by shape (SSN ***-**-6789, card ****-****-****-1111,
// phone (***) ***-2671), "[REDACTED:<type>]" otherwise. Findings must come
// from scanning exactly `content` (offsets are into it); overlapping or
// out-of-range findings are skipped past, never partially applied.
[[nodiscard]] std::string redact(std::string_view content, std::span<const Finding> findings);

}  // namespace airlock::inspect
