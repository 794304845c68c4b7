// What the inspector reports about a piece of data it found.
//
// The raw value never leaves the library: a Finding holds where the value is
// (offset, length, line), what it is, a masked preview and a keyed hash, and
// no member or function returns the matched bytes. Audit rows, logs,
// approval prompts and webhooks are built from these fields only.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace airlock::inspect {

enum class Category : std::uint8_t { pii, secret };
enum class Severity : std::uint8_t { low, medium, high, critical };

[[nodiscard]] std::string_view to_string(Category category) noexcept;
[[nodiscard]] std::string_view to_string(Severity severity) noexcept;

// A finding's masked preview. Up to `inline_capacity` bytes live in the
// object itself: a dense file yields a finding every ~20 bytes, and a heap
// allocation for each preview cost more than finding the value. A longer
// preview (a long date or identifier) is kept in `overflow`.
class Preview {
public:
    static constexpr std::size_t inline_capacity = 46;

    Preview() = default;
    explicit Preview(std::string_view text) { assign(text); }

    void assign(std::string_view text);
    // Room for `size` bytes to be written (then fixed with resize_written);
    // the caller writes at most `size` bytes.
    [[nodiscard]] char* prepare(std::size_t size);
    void resize_written(std::size_t size) noexcept;

    [[nodiscard]] std::string_view view() const noexcept {
        return size_ == spilled ? std::string_view(overflow_) : std::string_view(bytes_.data(), size_);
    }
    [[nodiscard]] std::string str() const { return std::string(view()); }
    [[nodiscard]] std::size_t size() const noexcept { return view().size(); }
    [[nodiscard]] bool empty() const noexcept { return view().empty(); }
    operator std::string_view() const noexcept { return view(); }  // NOLINT: reads like the string it was
    friend bool operator==(const Preview& a, const Preview& b) noexcept { return a.view() == b.view(); }
    friend bool operator==(const Preview& a, std::string_view b) noexcept { return a.view() == b; }

private:
    static constexpr std::uint8_t spilled = 0xFF;
    std::array<char, inline_capacity> bytes_{};
    std::uint8_t size_ = 0;
    std::string overflow_;
};

// HMAC-SHA256 of a finding's normalized value: the 32 raw bytes, turned
// into hex only for output (a 64-character string per finding was a heap
// allocation each). Empty when no key was given.
class KeyedHash {
public:
    static constexpr std::size_t size = 32;
    using Bytes = std::array<unsigned char, size>;

    KeyedHash() = default;
    explicit KeyedHash(const Bytes& bytes) noexcept : bytes_(bytes), set_(true) {}

    [[nodiscard]] bool empty() const noexcept { return !set_; }
    [[nodiscard]] const Bytes& bytes() const noexcept { return bytes_; }
    // Lower-case hex, 64 characters; "" when empty.
    [[nodiscard]] std::string hex() const;
    // Parses 64 hex digits (either case); nullopt-like empty hash otherwise.
    [[nodiscard]] static KeyedHash from_hex(std::string_view hex) noexcept;
    friend bool operator==(const KeyedHash& a, const KeyedHash& b) noexcept {
        return a.set_ == b.set_ && a.bytes_ == b.bytes_;
    }

private:
    Bytes bytes_{};
    bool set_ = false;
};

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
    Preview preview;  // masked: ***-**-6789, 4111********1111, ghp_****
    // HMAC-SHA256 of the normalized value under the per-daemon key from
    // Options::hash_key (hex() for output); empty when no key was given.
    // Lets audit rows and allowlists recognize a value without storing it.
    KeyedHash keyed_hash;
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
