// The detector catalogue: every kind of personal data or secret the inspector
// names, with a stable id (policy rules and audit rows refer to it), a
// severity, how candidates are found and how they are confirmed.
//
// Two engines find candidates:
//   vectorscan  A short "head" (a literal prefix such as `ghp_`, or a keyword
//               such as `password`) is compiled with every other head into
//               one database. Heads never ask for start-of-match tracking
//               and carry no trailing context, which keeps the database at
//               literal-scan speed. `locate` then finds the exact value
//               around the head's end (the token body, the value after the
//               keyword's `=`, the whole PEM block) and checks it.
//   simd        Numbers (cards, SSNs, phones, IPs, IBANs, ...) have no
//               literal to anchor on and would drag the database down to a
//               fraction of its speed, and '@' (email) is a one-byte
//               literal that costs a quarter of it; a SIMD pass
//               (fastpath.cpp) flags digit runs, dotted quads, capitals
//               before digits, hex groups before ':' and '@', and
//               hand-written shape checks + validators confirm them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "inspect/finding.hpp"

namespace airlock::inspect {

enum class Engine : std::uint8_t { vectorscan, simd };

// How a finding's value is normalized before validation, hashing and
// allowlist lookup, so that "4111 1111 1111 1111" and "4111-1111-1111-1111"
// are one value.
enum class Normalize : std::uint8_t { raw, digits, upper_alnum };

// How a value is shown (preview) and replaced (redact).
enum class MaskStyle : std::uint8_t {
    keep_last4_digits,  // ***-**-6789, (***) ***-2671: every digit but the last four masked
    keep_last3_digits,  // *** **4 286 (SIN)
    card,               // preview 4111********1111; redaction keeps the last four and separators
    iban,               // DE******************3000
    email,              // j***@***.com
    ipv4,               // 10.*.*.*
    ipv6,               // 2001:****
    date,               // **/**/****
    identifier,         // ******C47: all but the last two characters masked (passport, NINO)
    secret,             // ghp_****: at most four leading characters kept
    hidden,             // ****: nothing of the value (passwords)
    key_block,          // [RSA PRIVATE KEY block]
};

// The bytes around a head match handed to `locate`.
struct HeadMatch {
    std::size_t end = 0;  // just past the head match, relative to the data given
    // end - width for heads of fixed width (vectorscan reports only match
    // ends), npos when the head's width varies.
    std::size_t fixed_start = std::string_view::npos;
};

// The value a head points at, relative to the data given.
struct Located {
    std::size_t start = 0;
    std::size_t end = 0;
    float confidence = 0;  // 0 keeps the detector's base confidence
    // A sample the locator recognizes by its surroundings (credentials in a
    // URL to example.com); the value alone is checked by is_known_test_value.
    bool test_value = false;
};

// Finds and structurally checks the value a head (or, for email, the SIMD
// pass's '@') points at. `data`
// holds at least `lookbehind` bytes before and `lookahead` bytes after the
// head end, or the input ends inside that range.
using LocateFn = std::optional<Located> (*)(std::string_view data, HeadMatch head);
// Checksum/range check on the normalized value; nullptr when none exists.
using ValidateFn = bool (*)(std::string_view normalized);

struct Detector {
    std::string_view id;
    Category category = Category::pii;
    Severity severity = Severity::medium;
    Engine engine = Engine::vectorscan;
    std::span<const std::string_view> heads;  // vectorscan expressions (vectorscan engine only)
    // A literal every head match contains (case-insensitively): what
    // vectorscan's literal prefilter keys on. Documented and unit-tested.
    std::string_view literal;
    // Words looked for (case-insensitive, whole words) in `context_window`
    // bytes before the value. Vectorscan engine: required when
    // `context_required`, else they raise confidence. SIMD engine: always
    // required for bare digit runs (a 9-digit number is an SSN only near
    // "SSN"), confidence boost for formatted ones.
    std::span<const std::string_view> context_words;
    std::uint16_t context_window = 48;
    bool context_required = false;
    float confidence = 0.8F;  // base confidence when validated
    // Wins when two findings overlap (specific secrets over generic
    // assignments, an IBAN over the digits inside it).
    std::uint8_t priority = 50;
    std::uint32_t lookbehind = 0;  // bytes before a head end `locate` may read
    std::uint32_t lookahead = 1;   // bytes after a head end `locate` may read
    LocateFn locate = nullptr;
    ValidateFn validate = nullptr;
    Normalize normalize = Normalize::raw;
    MaskStyle mask = MaskStyle::secret;
};

// Every detector, in a stable order (the order is part of the compiled
// database's cache key, not of any external format).
[[nodiscard]] std::span<const Detector> all_detectors() noexcept;
[[nodiscard]] const Detector* find_detector(std::string_view id) noexcept;
[[nodiscard]] std::size_t detector_index(const Detector& detector) noexcept;

// The normalized form used for validation, hashing and allowlists.
[[nodiscard]] std::string normalize_value(const Detector& detector, std::string_view raw);
// The same into `out` (cleared first), reusing its capacity: once per finding.
void normalize_into(const Detector& detector, std::string_view raw, std::string& out);

// masked_preview() for a detector already at hand (no lookup by id).
[[nodiscard]] std::string masked_preview(const Detector& detector, std::string_view raw);
// The same written into a finding's preview (in place, no allocation for
// the usual short previews).
void masked_preview_into(const Detector& detector, std::string_view raw, Preview& out);

// Phone validator on digits: NANP (10 digits, or 11 starting with 1) or E.164.
[[nodiscard]] bool phone_digits_valid(std::string_view digits) noexcept;

}  // namespace airlock::inspect
