#include "inspect/validators.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "inspect/text.hpp"

namespace airlock::inspect {
namespace {

bool all_digits(std::string_view s) noexcept {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c); });
}

// Parses up to 9 ASCII digits (callers pass short, already checked slices).
unsigned digits_value(std::string_view s) noexcept {
    unsigned v = 0;
    for (char c : s) v = v * 10 + static_cast<unsigned>(c - '0');
    return v;
}

bool starts_with_range(std::string_view digits, unsigned low, unsigned high, std::size_t width) noexcept {
    if (digits.size() < width) return false;
    const unsigned prefix = digits_value(digits.substr(0, width));
    return prefix >= low && prefix <= high;
}

}  // namespace

// --- Checksums -------------------------------------------------------------

bool luhn_valid(std::string_view digits) noexcept {
    if (digits.size() < 2 || !all_digits(digits)) return false;
    unsigned sum = 0;
    bool double_it = false;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it) {
        unsigned d = static_cast<unsigned>(*it - '0');
        if (double_it) {
            d *= 2;
            if (d > 9) d -= 9;
        }
        sum += d;
        double_it = !double_it;
    }
    return sum % 10 == 0;
}

bool verhoeff_valid(std::string_view digits) noexcept {
    static constexpr std::uint8_t multiplication[10][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 2, 3, 4, 0, 6, 7, 8, 9, 5}, {2, 3, 4, 0, 1, 7, 8, 9, 5, 6},
        {3, 4, 0, 1, 2, 8, 9, 5, 6, 7}, {4, 0, 1, 2, 3, 9, 5, 6, 7, 8}, {5, 9, 8, 7, 6, 0, 4, 3, 2, 1},
        {6, 5, 9, 8, 7, 1, 0, 4, 3, 2}, {7, 6, 5, 9, 8, 2, 1, 0, 4, 3}, {8, 7, 6, 5, 9, 3, 2, 1, 0, 4},
        {9, 8, 7, 6, 5, 4, 3, 2, 1, 0}};
    static constexpr std::uint8_t permutation[8][10] = {
        {0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 5, 7, 6, 2, 8, 3, 0, 9, 4}, {5, 8, 0, 3, 7, 9, 6, 1, 4, 2},
        {8, 9, 1, 6, 0, 4, 3, 5, 2, 7}, {9, 4, 5, 3, 1, 2, 6, 8, 7, 0}, {4, 2, 8, 6, 5, 7, 3, 9, 0, 1},
        {2, 7, 9, 3, 8, 0, 6, 4, 1, 5}, {7, 0, 4, 6, 9, 1, 3, 2, 5, 8}};
    if (digits.size() < 2 || !all_digits(digits)) return false;
    unsigned check = 0;
    std::size_t position = 0;
    for (auto it = digits.rbegin(); it != digits.rend(); ++it, ++position) {
        check = multiplication[check][permutation[position % 8][*it - '0']];
    }
    return check == 0;
}

bool iban_checksum_valid(std::string_view compact) noexcept {
    if (compact.size() < 5) return false;
    // Rearranged: BBAN then country code and check digits; letters expand to
    // 10..35. Computed digit by digit so no big integers are needed.
    unsigned remainder = 0;
    auto feed = [&](char c) -> bool {
        if (is_digit(c)) {
            remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
        } else if (c >= 'A' && c <= 'Z') {
            const unsigned v = static_cast<unsigned>(c - 'A') + 10;
            remainder = (remainder * 100 + v) % 97;
        } else {
            return false;
        }
        return true;
    };
    for (char c : compact.substr(4)) {
        if (!feed(c)) return false;
    }
    for (char c : compact.substr(0, 4)) {
        if (!feed(c)) return false;
    }
    return remainder == 1;
}

// --- Payment cards -------------------------------------------------------------

std::string_view to_string(CardBrand brand) noexcept {
    switch (brand) {
        case CardBrand::visa: return "visa";
        case CardBrand::mastercard: return "mastercard";
        case CardBrand::amex: return "amex";
        case CardBrand::discover: return "discover";
        case CardBrand::diners: return "diners";
        case CardBrand::jcb: return "jcb";
        case CardBrand::unionpay: return "unionpay";
        case CardBrand::maestro: return "maestro";
        case CardBrand::mir: return "mir";
    }
    return "unknown";
}

std::optional<CardBrand> card_brand(std::string_view d) noexcept {
    if (!all_digits(d) || d.size() < 13 || d.size() > 19) return std::nullopt;
    const std::size_t n = d.size();
    const bool long_range = n >= 16 && n <= 19;
    if (d[0] == '4' && (n == 13 || n == 16 || n == 19)) return CardBrand::visa;
    if (n == 16 && (starts_with_range(d, 51, 55, 2) || starts_with_range(d, 2221, 2720, 4))) {
        return CardBrand::mastercard;
    }
    if (n == 15 && (starts_with_range(d, 34, 34, 2) || starts_with_range(d, 37, 37, 2))) return CardBrand::amex;
    if (long_range && (starts_with_range(d, 6011, 6011, 4) || starts_with_range(d, 644, 649, 3) ||
                       starts_with_range(d, 65, 65, 2) || starts_with_range(d, 622126, 622925, 6))) {
        return CardBrand::discover;
    }
    if (n >= 14 && (starts_with_range(d, 300, 305, 3) || starts_with_range(d, 3095, 3095, 4) ||
                    starts_with_range(d, 36, 36, 2) || starts_with_range(d, 38, 39, 2))) {
        return CardBrand::diners;
    }
    if (long_range && starts_with_range(d, 3528, 3589, 4)) return CardBrand::jcb;
    if (long_range && starts_with_range(d, 2200, 2204, 4)) return CardBrand::mir;
    if (long_range && starts_with_range(d, 62, 62, 2)) return CardBrand::unionpay;
    for (unsigned prefix : {5018u, 5020u, 5038u, 5893u, 6304u, 6759u, 6761u, 6762u, 6763u}) {
        if (starts_with_range(d, prefix, prefix, 4)) return CardBrand::maestro;
    }
    return std::nullopt;
}

bool card_number_valid(std::string_view digits) noexcept {
    return card_brand(digits).has_value() && luhn_valid(digits);
}

// --- Bank accounts ---------------------------------------------------------------

std::optional<std::size_t> iban_length(std::string_view country) noexcept {
    struct Entry {
        char code[3];
        std::uint8_t length;
    };
    // ISO 13616 registry (SWIFT IBAN registry), the countries in use.
    static constexpr Entry table[] = {
        {"AD", 24}, {"AE", 23}, {"AL", 28}, {"AT", 20}, {"AZ", 28}, {"BA", 20}, {"BE", 16}, {"BG", 22}, {"BH", 22},
        {"BR", 29}, {"BY", 28}, {"CH", 21}, {"CR", 22}, {"CY", 28}, {"CZ", 24}, {"DE", 22}, {"DK", 18}, {"DO", 28},
        {"EE", 20}, {"EG", 29}, {"ES", 24}, {"FI", 18}, {"FO", 18}, {"FR", 27}, {"GB", 22}, {"GE", 22}, {"GI", 23},
        {"GL", 18}, {"GR", 27}, {"GT", 28}, {"HR", 21}, {"HU", 28}, {"IE", 22}, {"IL", 23}, {"IQ", 23}, {"IS", 26},
        {"IT", 27}, {"JO", 30}, {"KW", 30}, {"KZ", 20}, {"LB", 28}, {"LC", 32}, {"LI", 21}, {"LT", 20}, {"LU", 20},
        {"LV", 21}, {"LY", 25}, {"MC", 27}, {"MD", 24}, {"ME", 22}, {"MK", 19}, {"MR", 27}, {"MT", 31}, {"MU", 30},
        {"NL", 18}, {"NO", 15}, {"PK", 24}, {"PL", 28}, {"PS", 29}, {"PT", 25}, {"QA", 29}, {"RO", 24}, {"RS", 22},
        {"SA", 24}, {"SC", 31}, {"SD", 18}, {"SE", 24}, {"SI", 19}, {"SK", 24}, {"SM", 27}, {"ST", 25}, {"SV", 28},
        {"TL", 23}, {"TN", 24}, {"TR", 26}, {"UA", 29}, {"VA", 22}, {"VG", 24}, {"XK", 20},
    };
    if (country.size() != 2) return std::nullopt;
    for (const Entry& e : table) {
        if (country[0] == e.code[0] && country[1] == e.code[1]) return e.length;
    }
    return std::nullopt;
}

bool iban_valid(std::string_view compact) noexcept {
    const auto expected = iban_length(compact.substr(0, std::min<std::size_t>(2, compact.size())));
    if (!expected || compact.size() != *expected) return false;
    if (!is_digit(compact[2]) || !is_digit(compact[3])) return false;
    const unsigned check = digits_value(compact.substr(2, 2));
    if (check < 2 || check > 98) return false;
    if (!std::all_of(compact.begin() + 4, compact.end(), [](char c) { return is_digit(c) || is_upper(c); })) {
        return false;
    }
    return iban_checksum_valid(compact);
}

// --- National identifiers ---------------------------------------------------------

bool us_ssn_valid(std::string_view d) noexcept {
    if (d.size() != 9 || !all_digits(d)) return false;
    const unsigned area = digits_value(d.substr(0, 3));
    const unsigned group = digits_value(d.substr(3, 2));
    const unsigned serial = digits_value(d.substr(5, 4));
    return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

bool us_itin_valid(std::string_view d) noexcept {
    if (d.size() != 9 || !all_digits(d) || d[0] != '9') return false;
    const unsigned group = digits_value(d.substr(3, 2));
    const bool group_ok = (group >= 50 && group <= 65) || (group >= 70 && group <= 88) ||
                          (group >= 90 && group <= 92) || (group >= 94 && group <= 99);
    return group_ok && digits_value(d.substr(5, 4)) != 0;
}

bool uk_nino_valid(std::string_view s) noexcept {
    if (s.size() != 9) return false;
    constexpr std::string_view bad_first = "DFIQUV";
    constexpr std::string_view bad_second = "DFIOQUV";
    if (!is_upper(s[0]) || !is_upper(s[1])) return false;
    if (bad_first.find(s[0]) != std::string_view::npos || bad_second.find(s[1]) != std::string_view::npos) {
        return false;
    }
    const std::string_view prefix = s.substr(0, 2);
    for (std::string_view banned : {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}) {
        if (prefix == banned) return false;
    }
    if (!all_digits(s.substr(2, 6))) return false;
    return s[8] >= 'A' && s[8] <= 'D';
}

bool ca_sin_valid(std::string_view d) noexcept {
    if (d.size() != 9 || !all_digits(d)) return false;
    if (d[0] == '0' || d[0] == '8') return false;
    return luhn_valid(d);
}

bool aadhaar_valid(std::string_view d) noexcept {
    if (d.size() != 12 || !all_digits(d) || d[0] < '2') return false;
    return verhoeff_valid(d);
}

// --- Network addresses ---------------------------------------------------------------

bool ipv4_valid(std::string_view text) noexcept {
    int octets = 0;
    std::size_t i = 0;
    while (true) {
        const std::size_t start = i;
        while (i < text.size() && is_digit(text[i]) && i - start < 4) ++i;
        const std::size_t len = i - start;
        if (len == 0 || len > 3) return false;
        if (len > 1 && text[start] == '0') return false;
        if (digits_value(text.substr(start, len)) > 255) return false;
        ++octets;
        if (octets == 4) return i == text.size();
        if (i >= text.size() || text[i] != '.') return false;
        ++i;
    }
}

bool ipv6_valid(std::string_view text) noexcept {
    if (text.size() < 2 || text.size() > 45) return false;
    int groups = 0;  // 16-bit groups written out (a dotted quad counts two)
    bool compressed = false;
    std::size_t i = 0;
    if (text.starts_with("::")) {
        compressed = true;
        i = 2;
        if (i == text.size()) return true;
    } else if (text[0] == ':') {
        return false;
    }
    while (i < text.size()) {
        const std::size_t start = i;
        while (i < text.size() && is_hex(text[i])) ++i;
        const std::size_t len = i - start;
        if (i < text.size() && text[i] == '.') {
            // Trailing dotted quad: must be the last thing and fit in two groups.
            if (!ipv4_valid(text.substr(start))) return false;
            groups += 2;
            i = text.size();
            break;
        }
        if (len == 0 || len > 4) return false;
        ++groups;
        if (i == text.size()) break;
        if (text[i] != ':') return false;
        ++i;
        if (i < text.size() && text[i] == ':') {
            if (compressed) return false;
            compressed = true;
            ++i;
            if (i == text.size()) break;
        } else if (i == text.size()) {
            return false;  // a single trailing ':'
        }
    }
    return compressed ? groups <= 7 : groups == 8;
}

// --- Telephone numbers ---------------------------------------------------------------

bool nanp_valid(std::string_view d) noexcept {
    if (d.size() != 10 || !all_digits(d)) return false;
    auto n11 = [](std::string_view code) { return code[1] == '1' && code[2] == '1'; };
    const std::string_view npa = d.substr(0, 3);
    const std::string_view nxx = d.substr(3, 3);
    if (npa[0] < '2' || npa[1] == '9' || n11(npa)) return false;
    if (nxx[0] < '2' || n11(nxx)) return false;
    return true;
}

bool e164_valid(std::string_view d) noexcept {
    if (d.size() < 8 || d.size() > 15 || !all_digits(d) || d[0] == '0') return false;
    if (d[0] == '1') return d.size() == 11 && nanp_valid(d.substr(1));
    if (d[0] == '7') return d.size() == 11;  // Russia / Kazakhstan: 10-digit national numbers
    // Two-digit country codes in use; every other assigned code has three
    // digits and falls in one of the three-digit zones below.
    static constexpr std::uint8_t two_digit[] = {20, 27, 30, 31, 32, 33, 34, 36, 39, 40, 41, 43, 44, 45, 46,
                                                 47, 48, 49, 51, 52, 53, 54, 55, 56, 57, 58, 60, 61, 62, 63,
                                                 64, 65, 66, 81, 82, 84, 86, 90, 91, 92, 93, 94, 95, 98};
    static constexpr std::uint8_t three_digit_zones[] = {21, 22, 23, 24, 25, 26, 29, 35, 37, 38, 42, 50,
                                                         59, 67, 68, 69, 80, 85, 87, 88, 96, 97, 99};
    const auto prefix = static_cast<std::uint8_t>(digits_value(d.substr(0, 2)));
    if (std::find(std::begin(two_digit), std::end(two_digit), prefix) != std::end(two_digit)) return true;
    return std::find(std::begin(three_digit_zones), std::end(three_digit_zones), prefix) !=
           std::end(three_digit_zones);
}

// --- Dates ------------------------------------------------------------------------------

bool calendar_date_valid(int year, int month, int day) noexcept {
    if (month < 1 || month > 12 || day < 1) return false;
    static constexpr int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    const int limit = (month == 2 && leap) ? 29 : days[month - 1];
    return day <= limit;
}

namespace {

// 1..12 for a month name or its three-letter abbreviation (any case), else 0.
int month_from_name(std::string_view word) noexcept {
    static constexpr std::string_view names[] = {"january", "february", "march",     "april",   "may",      "june",
                                                 "july",    "august",   "september", "october", "november", "december"};
    if (word.size() < 3) return 0;
    std::string lowered;
    for (char c : word) lowered.push_back(to_lower(c));
    if (!lowered.empty() && lowered.back() == '.') lowered.pop_back();
    for (int m = 0; m < 12; ++m) {
        const std::string_view full = names[m];
        if (lowered.size() >= 3 && lowered.size() <= full.size() && full.starts_with(lowered)) return m + 1;
        if (m == 8 && lowered == "sept") return 9;
    }
    return 0;
}

int expand_year(int year, std::size_t digits) noexcept {
    if (digits == 2) return year + (year < 30 ? 2000 : 1900);
    return year;
}

bool year_plausible(int year) noexcept { return year >= 1900 && year <= 2099; }

}  // namespace

bool birth_date_valid(std::string_view text) noexcept {
    // Split into numeric and alphabetic fields; separators are ignored except
    // that the numeric forms must use one kind between their three numbers.
    struct Field {
        std::string_view text;
        bool numeric;
    };
    Field fields[4];
    std::size_t count = 0;
    char numeric_separator = 0;
    bool mixed_separators = false;
    std::size_t i = 0;
    while (i < text.size()) {
        const char c = text[i];
        if (is_digit(c) || is_alpha(c)) {
            const bool numeric = is_digit(c);
            const std::size_t start = i;
            while (i < text.size() && (numeric ? is_digit(text[i]) : is_alpha(text[i]))) ++i;
            const std::string_view word = text.substr(start, i - start);
            const bool ordinal_suffix = !numeric && count > 0 && fields[count - 1].numeric &&
                                        (word == "st" || word == "nd" || word == "rd" || word == "th");
            if (ordinal_suffix) continue;  // "12th"
            if (count == 4) return false;
            fields[count++] = Field{word, numeric};
            continue;
        }
        if (c == '/' || c == '-' || c == '.') {
            if (numeric_separator != 0 && numeric_separator != c) mixed_separators = true;
            numeric_separator = c;
        }
        ++i;
    }
    if (count != 3) return false;
    const bool all_numeric = fields[0].numeric && fields[1].numeric && fields[2].numeric;
    if (all_numeric) {
        if (mixed_separators) return false;
        const int a = static_cast<int>(digits_value(fields[0].text.substr(0, 4)));
        const int b = static_cast<int>(digits_value(fields[1].text.substr(0, 4)));
        const int c = static_cast<int>(digits_value(fields[2].text.substr(0, 4)));
        if (fields[0].text.size() == 4) {  // y-m-d
            return fields[1].text.size() <= 2 && fields[2].text.size() <= 2 && year_plausible(a) &&
                   calendar_date_valid(a, b, c);
        }
        if (fields[0].text.size() > 2 || fields[1].text.size() > 2) return false;
        if (fields[2].text.size() != 2 && fields[2].text.size() != 4) return false;
        const int year = expand_year(c, fields[2].text.size());
        if (!year_plausible(year)) return false;
        return calendar_date_valid(year, b, a) || calendar_date_valid(year, a, b);  // d/m/y or m/d/y
    }
    // "12 March 1980" or "March 12 1980".
    int day = 0;
    int month = 0;
    if (fields[0].numeric && !fields[1].numeric && fields[2].numeric) {
        day = static_cast<int>(digits_value(fields[0].text.substr(0, 3)));
        month = month_from_name(fields[1].text);
    } else if (!fields[0].numeric && fields[1].numeric && fields[2].numeric) {
        month = month_from_name(fields[0].text);
        day = static_cast<int>(digits_value(fields[1].text.substr(0, 3)));
    } else {
        return false;
    }
    if (fields[2].text.size() != 4) return false;
    const int year = static_cast<int>(digits_value(fields[2].text));
    return month != 0 && year_plausible(year) && calendar_date_valid(year, month, day);
}

// --- Secrets -------------------------------------------------------------------------------

double shannon_entropy(std::string_view text) noexcept {
    if (text.empty()) return 0.0;
    std::array<std::uint32_t, 256> counts{};
    for (unsigned char c : text) ++counts[c];
    const double n = static_cast<double>(text.size());
    double entropy = 0.0;
    for (std::uint32_t count : counts) {
        if (count == 0) continue;
        const double p = static_cast<double>(count) / n;
        entropy -= p * std::log2(p);
    }
    return entropy;
}

std::optional<std::string> base64_decode(std::string_view text, Base64Alphabet alphabet) {
    while (!text.empty() && text.back() == '=') text.remove_suffix(1);
    if (text.size() % 4 == 1) return std::nullopt;
    const char plus = alphabet == Base64Alphabet::url ? '-' : '+';
    const char slash = alphabet == Base64Alphabet::url ? '_' : '/';
    auto value = [&](char c) -> int {
        if (c >= 'A' && c <= 'Z') return c - 'A';
        if (c >= 'a' && c <= 'z') return c - 'a' + 26;
        if (c >= '0' && c <= '9') return c - '0' + 52;
        if (c == plus) return 62;
        if (c == slash) return 63;
        return -1;
    };
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        const int v = value(c);
        if (v < 0) return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xFF));
        }
    }
    return out;
}

namespace {

std::string_view trim_spaces(std::string_view s) noexcept {
    while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
    return s;
}

// Enough JSON to tell a JOSE header from base64 that merely decodes to
// something: an object whose text holds the member `"<name>"` followed by ':'.
bool json_object_with_member(std::string_view json, std::string_view name) {
    json = trim_spaces(json);
    if (json.size() < 2 || json.front() != '{' || json.back() != '}') return false;
    const std::string quoted = "\"" + std::string(name) + "\"";
    std::size_t pos = 0;
    while ((pos = json.find(quoted, pos)) != std::string_view::npos) {
        std::size_t after = pos + quoted.size();
        while (after < json.size() && is_space(json[after])) ++after;
        if (after < json.size() && json[after] == ':') return true;
        pos += quoted.size();
    }
    return false;
}

}  // namespace

bool jwt_valid(std::string_view token) {
    const std::size_t first_dot = token.find('.');
    if (first_dot == std::string_view::npos) return false;
    const std::size_t second_dot = token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos) return false;
    if (token.find('.', second_dot + 1) != std::string_view::npos) return false;
    const auto header = base64_decode(token.substr(0, first_dot), Base64Alphabet::url);
    const auto payload = base64_decode(token.substr(first_dot + 1, second_dot - first_dot - 1), Base64Alphabet::url);
    if (!header || !payload) return false;
    for (char c : token.substr(second_dot + 1)) {
        if (!is_base64url(c)) return false;
    }
    const std::string_view trimmed_payload = trim_spaces(*payload);
    return json_object_with_member(*header, "alg") && !trimmed_payload.empty() && trimmed_payload.front() == '{';
}

namespace {

// The label of a "-----BEGIN <label>-----" line naming a private key, and
// where the body after it starts; nullopt for anything else.
std::optional<std::pair<std::string_view, std::size_t>> private_key_header(std::string_view block) {
    constexpr std::string_view begin_marker = "-----BEGIN ";
    constexpr std::string_view dashes = "-----";
    if (!block.starts_with(begin_marker)) return std::nullopt;
    const std::size_t label_end = block.find(dashes, begin_marker.size());
    if (label_end == std::string_view::npos) return std::nullopt;
    const std::string_view label = block.substr(begin_marker.size(), label_end - begin_marker.size());
    if (label.find("PRIVATE KEY") == std::string_view::npos) return std::nullopt;
    return std::pair{label, label_end + dashes.size()};
}

// Checks a key body (everything between the BEGIN line's dashes and the END
// line, or the end of a truncated block). A truncated body may stop in the
// middle of a base64 quantum; its decodable prefix is checked.
std::optional<KeyBlockKind> key_body_valid(std::string_view label, std::string_view body, bool truncated) {
    // Split into lines on real newlines or JSON-escaped "\n" (keys pasted
    // into JSON or .env files keep their structure that way).
    // The rest of the BEGIN line is empty; armor headers may follow it.
    if (body.starts_with("\r\n")) {
        body.remove_prefix(2);
    } else if (body.starts_with("\n")) {
        body.remove_prefix(1);
    } else if (body.starts_with("\\n")) {
        body.remove_prefix(2);
    } else if (truncated) {
        return std::nullopt;  // a BEGIN line quoted in code or prose, not a key
    }
    std::string base64;
    bool in_headers = true;
    bool pgp_checksum_seen = false;
    std::size_t pos = 0;
    while (pos <= body.size()) {
        std::size_t next = body.size();
        std::size_t skip = 0;
        for (std::size_t i = pos; i < body.size(); ++i) {
            if (body[i] == '\n') {
                next = i;
                skip = 1;
                break;
            }
            if (body[i] == '\\' && i + 1 < body.size() && body[i + 1] == 'n') {
                next = i;
                skip = 2;
                break;
            }
        }
        std::string_view line = trim_spaces(body.substr(pos, next - pos));
        if (!line.empty() && line.back() == '\\') line.remove_suffix(1);  // "\r\n" escaped as "\\r\\n"
        if (line.ends_with("\\r")) line.remove_suffix(2);
        pos = next + (skip == 0 ? 1 : skip);
        if (line.empty()) {
            in_headers = false;
            continue;
        }
        if (in_headers && line.find(':') != std::string_view::npos) continue;  // Proc-Type:, DEK-Info:, Version:
        in_headers = false;
        if (pgp_checksum_seen) return std::nullopt;  // nothing may follow the armor checksum
        if (line.front() == '=' && line.size() == 5) {
            pgp_checksum_seen = true;  // OpenPGP "=XXXX" CRC-24 line
            continue;
        }
        for (char c : line) {
            if (!is_base64(c) && c != '=') return std::nullopt;
        }
        base64.append(line);
    }
    if (base64.size() < 64) return std::nullopt;
    if (truncated) base64.resize(base64.size() / 4 * 4);
    if (label.find("OPENSSH") != std::string_view::npos) {
        const auto decoded = base64_decode(base64, Base64Alphabet::standard);
        if (!decoded || !std::string_view(*decoded).starts_with(std::string_view("openssh-key-v1\0", 15))) {
            return std::nullopt;
        }
        return KeyBlockKind::openssh;
    }
    if (label.find("PGP") != std::string_view::npos) return KeyBlockKind::pgp;
    if (!base64_decode(base64, Base64Alphabet::standard)) return std::nullopt;
    return KeyBlockKind::pem;
}

}  // namespace

std::optional<KeyBlockKind> private_key_block_valid(std::string_view block) {
    const auto header = private_key_header(block);
    if (!header) return std::nullopt;
    const auto [label, body_start] = *header;
    const std::string end_marker = "-----END " + std::string(label) + "-----";
    if (!block.ends_with(end_marker)) return std::nullopt;
    if (body_start > block.size() - end_marker.size()) return std::nullopt;
    return key_body_valid(label, block.substr(body_start, block.size() - end_marker.size() - body_start), false);
}

std::optional<KeyBlockKind> truncated_private_key_block_valid(std::string_view block) {
    const auto header = private_key_header(block);
    if (!header) return std::nullopt;
    const auto [label, body_start] = *header;
    if (block.find("-----", body_start) != std::string_view::npos) return std::nullopt;  // armor: not truncated
    return key_body_valid(label, block.substr(body_start), true);
}

// --- Well-known test values ----------------------------------------------------------------

bool is_known_test_value(std::string_view id, std::string_view v) noexcept {
    // Ids compared as string_view literals: their lengths are known at
    // compile time, so a mismatch costs a compare, not a strlen.
    using namespace std::string_view_literals;
    auto one_of = [v](std::initializer_list<std::string_view> list) {
        return std::find(list.begin(), list.end(), v) != list.end();
    };
    if (id == "pii.credit_card"sv) {
        // Card networks' and processors' published test numbers.
        return one_of({"4111111111111111", "4242424242424242", "4012888888881881", "4222222222222",
                       "4000056655665556", "5555555555554444", "5105105105105100", "5200828282828210",
                       "2223003122003222", "378282246310005",  "371449635398431",  "378734493671000",
                       "6011111111111117", "6011000990139424", "3530111333300000", "3566002020360505",
                       "30569309025904",   "38520000023237",   "6200000000000005", "36227206271667"});
    }
    if (id == "pii.us_ssn"sv) {
        // Woolworth's wallet card, the SSA pamphlet sample, the textbook one.
        return one_of({"078051120", "219099999", "123456789", "457555462"});
    }
    if (id == "pii.iban"sv) {
        return one_of({"GB82WEST12345698765432", "DE89370400440532013000", "GB33BUKB20201555555555",
                       "FR1420041010050500013M02606", "NL91ABNA0417164300", "CH9300762011623852957"});
    }
    if (id == "pii.ca_sin"sv) return one_of({"046454286"});
    if (id == "pii.uk_nino"sv) return one_of({"AB123456C", "QQ123456C"});
    if (id == "pii.phone"sv) {
        // NANP 555-0100..0199 is reserved for fiction; Ofcom's drama ranges.
        const std::string_view national = v.size() == 11 && v[0] == '1' ? v.substr(1) : v;
        if (national.size() == 10 && national.substr(3, 4) == "5550" && national[7] == '1') return true;
        return v.starts_with("4420794600") || v.starts_with("447700900");
    }
    if (id == "pii.email"sv) {
        const std::size_t at = v.rfind('@');
        if (at == std::string_view::npos) return false;
        // Compared case-insensitively in place: a heap string per e-mail
        // address showed in dense profiles.
        const std::string_view d = v.substr(at + 1);
        const auto ends_with = [d](std::string_view suffix) {
            return d.size() >= suffix.size() && iequals(d.substr(d.size() - suffix.size()), suffix);
        };
        for (std::string_view reserved : {"example.com", "example.org", "example.net"}) {
            if (iequals(d, reserved) ||
                (d.size() > reserved.size() && ends_with(reserved) && d[d.size() - reserved.size() - 1] == '.')) {
                return true;
            }
        }
        return ends_with(".example") || ends_with(".test") || ends_with(".invalid") || ends_with(".localhost");
    }
    if (id == "pii.ipv4"sv) {
        // RFC 5737 documentation ranges.
        return v.starts_with("192.0.2.") || v.starts_with("198.51.100.") || v.starts_with("203.0.113.");
    }
    if (id == "pii.ipv6"sv) {
        std::string lowered;
        for (char c : v) lowered.push_back(to_lower(c));
        return std::string_view(lowered).starts_with("2001:db8:") || std::string_view(lowered).starts_with("2001:0db8:");
    }
    if (id == "secret.aws_access_key"sv || id == "secret.aws_secret_key"sv) {
        return v.find("EXAMPLE") != std::string_view::npos;
    }
    if (id == "secret.jwt"sv) {
        // The token jwt.io shows on its front page.
        return v == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    }
    if (id == "secret.stripe_key"sv) {
        return one_of({"sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_BQokikJOvBiI2HlWgH4olfQ2"});
    }
    if (id == "secret.db_url_password"sv || id == "secret.generic_password"sv) {
        std::string lowered;
        for (char c : v) lowered.push_back(to_lower(c));
        for (std::string_view placeholder : {"password", "passwd", "pass", "secret", "changeme", "example", "xxxxxxxx",
                                             "your_password", "yourpassword", "your_api_key", "your-api-key",
                                             "your_token", "your-token", "your_secret", "placeholder", "redacted",
                                             "password123", "hunter2", "p@ssw0rd", "letmein", "dummy", "test1234"}) {
            if (lowered == placeholder) return true;
        }
        return std::string_view(lowered).find("example") != std::string_view::npos ||
               std::string_view(lowered).starts_with("your_") || std::string_view(lowered).starts_with("my_") ||
               std::all_of(lowered.begin(), lowered.end(), [](char c) { return c == 'x' || c == '*'; });
    }
    return false;
}

}  // namespace airlock::inspect
