// Building blocks for test values: encodings and check digits computed here,
// independently of the inspector's own validators, so that a test value is
// valid (or broken) by the book and not by the code under test. Shared by the
// unit tests and the labelled corpus generator (tests/corpus).
#pragma once

#include <cstddef>
#include <initializer_list>
#include <string>
#include <string_view>

namespace airlock::test_values {

inline constexpr std::string_view base64_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
inline constexpr std::string_view base64url_chars =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

inline std::string cat(std::initializer_list<std::string_view> parts) {
    std::string out;
    for (std::string_view p : parts) out += p;
    return out;
}

inline std::string base64(std::string_view bytes, std::string_view alphabet = base64_chars, bool pad = true) {
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const unsigned v = (static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16) |
                           (static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                           static_cast<unsigned char>(bytes[i + 2]);
        for (int k = 3; k >= 0; --k) out.push_back(alphabet[(v >> (6 * k)) & 63]);
    }
    const std::size_t rest = bytes.size() - i;
    if (rest > 0) {
        unsigned v = static_cast<unsigned>(static_cast<unsigned char>(bytes[i])) << 16;
        if (rest == 2) v |= static_cast<unsigned>(static_cast<unsigned char>(bytes[i + 1])) << 8;
        out.push_back(alphabet[(v >> 18) & 63]);
        out.push_back(alphabet[(v >> 12) & 63]);
        if (rest == 2) out.push_back(alphabet[(v >> 6) & 63]);
        if (pad) out.append(rest == 1 ? "==" : "=");
    }
    return out;
}

// Unpadded base64url, as JWTs use it.
inline std::string base64url(std::string_view bytes) { return base64(bytes, base64url_chars, false); }

inline bool luhn_ok(std::string_view digits) {
    unsigned sum = 0;
    bool twice = false;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        unsigned d = static_cast<unsigned>(*it - '0');
        if (twice) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
        sum += d;
        twice = !twice;
    }
    return sum % 10 == 0;
}

// `prefix` with the one check digit that makes it pass Luhn.
inline std::string luhn_complete(const std::string& prefix) {
    for (char d = '0'; d <= '9'; ++d)
        if (luhn_ok(prefix + d)) return prefix + d;
    return prefix + '0';
}

// Changes the check digit: the number keeps its shape and fails Luhn.
inline std::string luhn_break(std::string number) {
    char& last = number.back();
    last = last == '9' ? '0' : static_cast<char>(last + 1);
    return number;
}

inline bool verhoeff_ok(std::string_view digits) {
    static constexpr int d[10][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5},
                                      {2, 3, 4, 0, 1, 7, 8, 9, 5, 6}, {3, 4, 0, 1, 2, 8, 9, 5, 6, 7},
                                      {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
                                      {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3},
                                      {8, 7, 6, 5, 9, 3, 2, 1, 0, 4}, {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
    static constexpr int p[8][10] = {{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4},
                                     {5, 8, 0, 3, 7, 9, 6, 1, 4, 2}, {8, 9, 1, 6, 0, 4, 3, 5, 2, 7},
                                     {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
                                     {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
    int c = 0;
    std::size_t i = 0;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it, ++i) c = d[c][p[i % 8][*it - '0']];
    return c == 0;
}

inline std::string verhoeff_complete(const std::string& prefix) {
    for (char d = '0'; d <= '9'; ++d)
        if (verhoeff_ok(prefix + d)) return prefix + d;
    return prefix + '0';
}

// "4111111111111111", {4,4,4,4}, " " -> "4111 1111 1111 1111".
inline std::string grouped(std::string_view digits, std::initializer_list<std::size_t> sizes,
                           std::string_view separator) {
    std::string out;
    std::size_t pos = 0;
    for (std::size_t size : sizes) {
        if (pos > 0) out += separator;
        out += digits.substr(pos, size);
        pos += size;
    }
    return out;
}

}  // namespace airlock::test_values
