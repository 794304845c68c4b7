// Byte classification and small text helpers shared by the inspector's
// translation units. ASCII only on purpose: detectors work on bytes, and a
// locale must never change what counts as a digit in the open() path.
#pragma once

#include <cstddef>
#include <string_view>

namespace airlock::inspect {

constexpr bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }
constexpr bool is_upper(char c) noexcept { return c >= 'A' && c <= 'Z'; }
constexpr bool is_lower(char c) noexcept { return c >= 'a' && c <= 'z'; }
constexpr bool is_alpha(char c) noexcept { return is_upper(c) || is_lower(c); }
constexpr bool is_alnum(char c) noexcept { return is_digit(c) || is_alpha(c); }
// Identifier byte: a value touching one of these is part of a longer token.
constexpr bool is_word(char c) noexcept { return is_alnum(c) || c == '_'; }
constexpr bool is_hex(char c) noexcept { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }
constexpr bool is_space(char c) noexcept { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
constexpr bool is_base64(char c) noexcept { return is_alnum(c) || c == '+' || c == '/'; }
constexpr bool is_base64url(char c) noexcept { return is_alnum(c) || c == '-' || c == '_'; }
constexpr char to_lower(char c) noexcept { return is_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// Case-insensitive ASCII comparison of equal-length views.
constexpr bool iequals(std::string_view a, std::string_view b) noexcept {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        if (to_lower(a[i]) != to_lower(b[i])) return false;
    }
    return true;
}

// Whether one of `words` (lower-case ASCII) occurs in `window`
// case-insensitively as a whole word: the bytes around it are not letters or
// digits. For context words before a candidate: the window is lower-cased
// once, then searched with find(). Windows longer than 128 bytes are cut to
// their last 128.
template <class Words>
bool contains_any_word(std::string_view window, const Words& words) noexcept {
    constexpr std::size_t limit = 128;
    if (window.size() > limit) window.remove_prefix(window.size() - limit);
    char buffer[limit];
    bool any_alpha = false;
    for (std::size_t i = 0; i < window.size(); ++i) {
        buffer[i] = to_lower(window[i]);
        any_alpha = any_alpha || is_alpha(window[i]);
    }
    if (!any_alpha) return false;  // every context word has a letter
    const std::string_view lowered(buffer, window.size());
    for (std::string_view word : words) {
        for (std::size_t pos = lowered.find(word); pos != std::string_view::npos; pos = lowered.find(word, pos + 1)) {
            const bool left_ok = pos == 0 || !is_alnum(lowered[pos - 1]) || !is_alnum(word.front());
            const std::size_t after = pos + word.size();
            const bool right_ok = after == lowered.size() || !is_alnum(lowered[after]) || !is_alnum(word.back());
            if (left_ok && right_ok) return true;
        }
    }
    return false;
}

}  // namespace airlock::inspect
