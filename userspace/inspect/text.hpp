// Byte classification and small text helpers shared by the inspector's
// translation units. ASCII only on purpose: detectors work on bytes, and a
// locale must never change what counts as a digit in the open() path.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

namespace text_detail {

constexpr std::size_t context_limit = 128;

// Whether `word` (lower-case) is at `pos` of `window`, ending a token.
inline bool word_at(std::string_view window, std::size_t pos, std::string_view word) noexcept {
    if (word.size() > window.size() - pos) return false;
    for (std::size_t k = 0; k < word.size(); ++k) {
        if (to_lower(window[pos + k]) != word[k]) return false;
    }
    const std::size_t after = pos + word.size();
    return after == window.size() || !is_alnum(window[after]) || !is_alnum(word.back());
}

// The words starting with (lower-case) `c` that match at `pos`, a token start when `token_start`.
template <class Words>
bool any_word_at(std::string_view window, std::size_t pos, char c, bool token_start, const Words& words) noexcept {
    for (std::string_view word : words) {
        if (word.empty() || word.front() != c) continue;
        // A word starting with a letter or digit needs a token start here.
        if (is_alnum(word.front()) && !token_start) continue;
        if (word_at(window, pos, word)) return true;
    }
    return false;
}

// One pass over the window: at each token start (and, when some word does
// not start with a letter or digit, at every byte) the words with that
// first byte are compared.
template <class Words>
bool contains_any_word_scalar(std::string_view window, const Words& words) noexcept {
    std::uint64_t first[4] = {0, 0, 0, 0};
    bool anywhere = false;
    for (std::string_view word : words) {
        if (word.empty()) continue;
        const auto c = static_cast<unsigned char>(word.front());
        first[c >> 6] |= std::uint64_t{1} << (c & 63);
        anywhere = anywhere || !is_alnum(word.front());
    }
    bool previous_alnum = false;
    for (std::size_t i = 0; i < window.size(); ++i) {
        const char c = to_lower(window[i]);
        const bool alnum = is_alnum(c);
        const bool token_start = alnum && !previous_alnum;
        previous_alnum = alnum;
        const auto byte = static_cast<unsigned char>(c);
        if (!(token_start || anywhere) || (first[byte >> 6] & (std::uint64_t{1} << (byte & 63))) == 0) continue;
        if (any_word_at(window, i, c, token_start, words)) return true;
    }
    return false;
}

}  // namespace text_detail

// Whether one of `words` (lower-case ASCII) occurs in `window`
// case-insensitively as a whole word: the bytes around it are not letters or
// digits. For context words before a candidate: several calls per value on
// dense data, where the old way (lower-case the window, then find() each
// word) was a quarter of the instructions outside hashing. A word starting
// with a letter can only match at a token start (the window's first byte,
// or one after a non-alphanumeric byte): SSE2 marks the token starts whose
// byte is one of the words' first letters, 16 bytes at a time, and only
// those are compared. Word lists with other first bytes (or more than 8
// distinct first letters) take the scalar pass. Windows longer than 128
// bytes are cut to their last 128 (their first byte counts as a token start).
template <class Words>
bool contains_any_word(std::string_view window, const Words& words) noexcept {
    constexpr std::size_t limit = text_detail::context_limit;
    if (window.size() > limit) window.remove_prefix(window.size() - limit);
    const std::size_t n = window.size();
    if (n == 0) return false;
#ifdef __SSE2__
    char firsts[8];
    std::size_t first_count = 0;
    bool simd = true;
    for (std::string_view word : words) {
        if (word.empty()) continue;
        const char c = word.front();
        if (!is_lower(c)) {
            simd = false;
            break;
        }
        bool seen = false;
        for (std::size_t k = 0; k < first_count; ++k) seen = seen || firsts[k] == c;
        if (seen) continue;
        if (first_count == sizeof firsts) {
            simd = false;
            break;
        }
        firsts[first_count++] = c;
    }
    if (simd) {
        if (first_count == 0) return false;
        alignas(16) char bytes[limit];
        const std::size_t chunks = (n + 15) / 16;
        std::memcpy(bytes, window.data(), n);
        std::memset(bytes + n, 0, chunks * 16 - n);  // NUL: not alphanumeric, no first letter
        std::uint64_t alnum[2] = {0, 0};
        std::uint64_t first[2] = {0, 0};
        const __m128i case_bit = _mm_set1_epi8(0x20);
        const __m128i a = _mm_set1_epi8('a');
        const __m128i letters = _mm_set1_epi8(25);
        const __m128i zero = _mm_set1_epi8('0');
        const __m128i digits = _mm_set1_epi8(9);
        for (std::size_t j = 0; j < chunks; ++j) {
            const __m128i v = _mm_load_si128(reinterpret_cast<const __m128i*>(bytes + 16 * j));
            const __m128i lower = _mm_or_si128(v, case_bit);
            const __m128i letter_offset = _mm_sub_epi8(lower, a);
            const __m128i is_letter = _mm_cmpeq_epi8(_mm_min_epu8(letter_offset, letters), letter_offset);
            const __m128i digit_offset = _mm_sub_epi8(v, zero);
            const __m128i is_digit_byte = _mm_cmpeq_epi8(_mm_min_epu8(digit_offset, digits), digit_offset);
            __m128i is_first = _mm_setzero_si128();
            for (std::size_t k = 0; k < first_count; ++k) {
                is_first = _mm_or_si128(is_first, _mm_cmpeq_epi8(lower, _mm_set1_epi8(firsts[k])));
            }
            const auto shift = static_cast<unsigned>(16 * (j % 4));
            alnum[j / 4] |= std::uint64_t{static_cast<std::uint16_t>(
                                _mm_movemask_epi8(_mm_or_si128(is_letter, is_digit_byte)))}
                            << shift;
            // v | 0x20 equals a letter only for that letter in either case.
            first[j / 4] |= std::uint64_t{static_cast<std::uint16_t>(_mm_movemask_epi8(is_first))} << shift;
        }
        const std::uint64_t starts[2] = {alnum[0] & ~(alnum[0] << 1),
                                         alnum[1] & ~((alnum[1] << 1) | (alnum[0] >> 63))};
        for (std::size_t half = 0; half < 2; ++half) {
            for (std::uint64_t candidates = starts[half] & first[half]; candidates != 0; candidates &= candidates - 1) {
                const std::size_t pos = 64 * half + static_cast<std::size_t>(__builtin_ctzll(candidates));
                if (text_detail::any_word_at(window, pos, to_lower(window[pos]), true, words)) return true;
            }
        }
        return false;
    }
#endif
    return text_detail::contains_any_word_scalar(window, words);
}

}  // namespace airlock::inspect
