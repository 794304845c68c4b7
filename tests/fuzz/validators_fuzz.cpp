// Every validator, normalizer, masked_preview and redact on arbitrary bytes.
// Where an independent answer exists it is compared: glibc's inet_pton for
// IP addresses, std::chrono for calendar dates, a plain mod-97 for IBANs, the
// rules the header states for national identifiers, a round trip for
// base64. Checksums are checked for the errors they exist to catch (every
// single-digit error; every adjacent transposition for Verhoeff).
//
// Random bytes seldom look like a number, so each check also runs on the
// input's digits and on its upper-cased letters and digits.
#include <arpa/inet.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "inspect/detectors.hpp"
#include "inspect/finding.hpp"
#include "inspect/text.hpp"
#include "inspect/validators.hpp"
#include "redaction_check.hpp"

namespace {

using namespace airlock::inspect;

bool all_digits(std::string_view s) { return !s.empty() && std::all_of(s.begin(), s.end(), is_digit); }

unsigned number(std::string_view digits) {
    unsigned v = 0;
    for (char c : digits) v = v * 10 + static_cast<unsigned>(c - '0');
    return v;
}

// --- Independent answers ---------------------------------------------------------

bool luhn_reference(std::string_view digits) {
    unsigned sum = 0;
    for (std::size_t i = 0; i < digits.size(); ++i) {
        const unsigned d = static_cast<unsigned>(digits[digits.size() - 1 - i] - '0');
        sum += i % 2 == 0 ? d : (2 * d) / 10 + (2 * d) % 10;
    }
    return sum % 10 == 0;
}

// Rearranged, letters as 10..35, the whole decimal string taken mod 97.
bool iban_mod97_reference(std::string_view compact) {
    std::string expanded;
    const std::string rearranged = std::string(compact.substr(4)) + std::string(compact.substr(0, 4));
    for (char c : rearranged) {
        if (is_digit(c)) expanded.push_back(c);
        else expanded += std::to_string(c - 'A' + 10);
    }
    unsigned remainder = 0;
    for (char c : expanded) remainder = (remainder * 10 + static_cast<unsigned>(c - '0')) % 97;
    return remainder == 1;
}

bool ssn_reference(std::string_view d) {
    if (d.size() != 9 || !all_digits(d)) return false;
    const unsigned area = number(d.substr(0, 3));
    return area >= 1 && area <= 899 && area != 666 && number(d.substr(3, 2)) >= 1 && number(d.substr(5, 4)) >= 1;
}

bool itin_reference(std::string_view d) {
    if (d.size() != 9 || !all_digits(d) || d[0] != '9') return false;
    const unsigned group = number(d.substr(3, 2));
    const bool group_ok = (group >= 50 && group <= 65) || (group >= 70 && group <= 88) || (group >= 90 && group <= 92) ||
                          group >= 94;
    return group_ok && number(d.substr(5, 4)) != 0;
}

bool nino_reference(std::string_view s) {
    if (s.size() != 9 || !is_upper(s[0]) || !is_upper(s[1])) return false;
    if (std::string_view("DFIQUV").find(s[0]) != std::string_view::npos) return false;
    if (std::string_view("DFIOQUV").find(s[1]) != std::string_view::npos) return false;
    for (std::string_view banned : {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}) {
        if (s.substr(0, 2) == banned) return false;
    }
    return all_digits(s.substr(2, 6)) && s[8] >= 'A' && s[8] <= 'D';
}

// glibc's parser, on the text as a C string (an embedded NUL would end it early).
bool inet_pton_accepts(int family, std::string_view text) {
    if (text.find('\0') != std::string_view::npos) return false;
    const std::string c_string(text);
    unsigned char address[16];
    return inet_pton(family, c_string.c_str(), address) == 1;
}

// Only for years chrono can hold (-32767..32767).
bool chrono_date_valid(int year, int month, int day) {
    if (month < 1 || month > 12 || day < 1 || day > 31) return false;  // chrono would wrap these
    using namespace std::chrono;
    return year_month_day{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                          std::chrono::day{static_cast<unsigned>(day)}}
        .ok();
}

std::string base64_encode(std::string_view bytes, Base64Alphabet alphabet, bool pad) {
    const std::string_view table = alphabet == Base64Alphabet::url
                                       ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                                       : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    std::string out;
    std::uint32_t buffer = 0;
    int bits = 0;
    for (unsigned char c : bytes) {
        buffer = (buffer << 8) | c;
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(table[(buffer >> bits) & 63]);
        }
    }
    if (bits > 0) out.push_back(table[(buffer << (6 - bits)) & 63]);
    while (pad && out.size() % 4 != 0) out.push_back('=');
    return out;
}

// --- Checks --------------------------------------------------------------------------

// A valid number stops being valid when any one digit changes.
template <class Valid>
void check_catches_single_digit_errors(std::string_view digits, Valid valid) {
    if (!valid(digits) || digits.size() > 32) return;
    std::string changed(digits);
    for (char& c : changed) {
        const char original = c;
        for (char d = '0'; d <= '9'; ++d) {
            if (d == original) continue;
            c = d;
            FUZZ_CHECK(!valid(changed));
        }
        c = original;
    }
}

void check_checksums(std::string_view s) {
    const bool luhn = luhn_valid(s);
    FUZZ_CHECK(luhn == (s.size() >= 2 && all_digits(s) && luhn_reference(s)));
    check_catches_single_digit_errors(s, luhn_valid);

    const bool verhoeff = verhoeff_valid(s);
    if (verhoeff) FUZZ_CHECK(s.size() >= 2 && all_digits(s));
    check_catches_single_digit_errors(s, verhoeff_valid);
    if (verhoeff && s.size() <= 32) {  // Verhoeff also catches every adjacent transposition
        std::string swapped(s);
        for (std::size_t i = 0; i + 1 < swapped.size(); ++i) {
            if (swapped[i] == swapped[i + 1]) continue;
            std::swap(swapped[i], swapped[i + 1]);
            FUZZ_CHECK(!verhoeff_valid(swapped));
            std::swap(swapped[i], swapped[i + 1]);
        }
    }

    const bool mod97 = iban_checksum_valid(s);
    const bool compact = s.size() >= 5 && std::all_of(s.begin(), s.end(), [](char c) { return is_digit(c) || is_upper(c); });
    FUZZ_CHECK(mod97 == (compact && iban_mod97_reference(s)));
}

void check_identifiers(std::string_view s) {
    if (const auto brand = card_brand(s)) {
        FUZZ_CHECK(all_digits(s) && s.size() >= 13 && s.size() <= 19);
        FUZZ_CHECK(!to_string(*brand).empty());
    }
    FUZZ_CHECK(card_number_valid(s) == (card_brand(s).has_value() && luhn_valid(s)));

    if (iban_valid(s)) {
        FUZZ_CHECK(iban_checksum_valid(s));
        FUZZ_CHECK(iban_length(s.substr(0, 2)) == s.size());
        const unsigned check = number(s.substr(2, 2));
        FUZZ_CHECK(check >= 2 && check <= 98);
    }
    if (const auto length = iban_length(s)) FUZZ_CHECK(*length >= 15 && *length <= 34 && s.size() == 2);

    FUZZ_CHECK(us_ssn_valid(s) == ssn_reference(s));
    FUZZ_CHECK(us_itin_valid(s) == itin_reference(s));
    FUZZ_CHECK(!(us_ssn_valid(s) && us_itin_valid(s)));
    FUZZ_CHECK(uk_nino_valid(s) == nino_reference(s));
    FUZZ_CHECK(ca_sin_valid(s) == (s.size() == 9 && all_digits(s) && s[0] != '0' && s[0] != '8' && luhn_valid(s)));
    FUZZ_CHECK(aadhaar_valid(s) == (s.size() == 12 && all_digits(s) && s[0] >= '2' && verhoeff_valid(s)));

    if (nanp_valid(s)) FUZZ_CHECK(s.size() == 10 && all_digits(s) && s[0] >= '2' && s[3] >= '2');
    if (e164_valid(s)) FUZZ_CHECK(s.size() >= 8 && s.size() <= 15 && all_digits(s) && s[0] != '0');
    if (phone_digits_valid(s)) {
        FUZZ_CHECK(nanp_valid(s) || e164_valid(s) || (s.size() == 11 && s[0] == '1' && nanp_valid(s.substr(1))));
    }
}

void check_addresses(std::string_view s) {
    FUZZ_CHECK(ipv4_valid(s) == inet_pton_accepts(AF_INET, s));
    FUZZ_CHECK(ipv6_valid(s) == inet_pton_accepts(AF_INET6, s));
}

void check_dates(std::string_view s) {
    (void)birth_date_valid(s);
    if (s.size() >= 6) {
        // Small fields, so that real dates come up often; negative years too.
        const int year = static_cast<std::int16_t>(static_cast<std::uint16_t>(static_cast<unsigned char>(s[0]) << 8 |
                                                                              static_cast<unsigned char>(s[1])));
        const int month = static_cast<signed char>(s[2]) % 16;
        const int day = static_cast<signed char>(s[3]) % 40;
        if (year >= -32767) FUZZ_CHECK(calendar_date_valid(year, month, day) == chrono_date_valid(year, month, day));
    }
}

void check_secrets(std::string_view s) {
    const double entropy = shannon_entropy(s);
    const double most = s.empty() ? 0 : std::log2(static_cast<double>(std::min<std::size_t>(s.size(), 256)));
    FUZZ_CHECK(entropy >= 0 && entropy <= most + 1e-9);

    for (Base64Alphabet alphabet : {Base64Alphabet::standard, Base64Alphabet::url}) {
        for (bool pad : {true, false}) {
            const auto decoded = base64_decode(base64_encode(s, alphabet, pad), alphabet);
            FUZZ_CHECK(decoded && *decoded == s);
        }
        if (const auto decoded = base64_decode(s, alphabet)) {
            std::string_view text = s;
            while (!text.empty() && text.back() == '=') text.remove_suffix(1);
            FUZZ_CHECK(decoded->size() == text.size() * 6 / 8);
        }
    }
    if (jwt_valid(s)) FUZZ_CHECK(std::count(s.begin(), s.end(), '.') == 2);
    if (private_key_block_valid(s)) FUZZ_CHECK(s.starts_with("-----BEGIN ") && s.find("PRIVATE KEY") != std::string_view::npos);
}

// What each mask style may show of a value, at most.
void check_preview(const Detector& detector, std::string_view raw) {
    const std::string preview = masked_preview(detector, raw);
    FUZZ_CHECK(preview == masked_preview(detector.id, raw));
    auto count = [](std::string_view s, auto predicate) {
        return static_cast<std::size_t>(std::count_if(s.begin(), s.end(), predicate));
    };
    const std::size_t shown_digits = count(preview, is_digit);
    const std::size_t shown_alnum = count(preview, is_alnum);
    switch (detector.mask) {
        case MaskStyle::keep_last4_digits: FUZZ_CHECK(shown_digits <= 4 && preview.size() == raw.size()); break;
        case MaskStyle::keep_last3_digits: FUZZ_CHECK(shown_digits <= 3 && preview.size() == raw.size()); break;
        case MaskStyle::card: FUZZ_CHECK(shown_digits <= 8 && preview.size() <= raw.size()); break;
        case MaskStyle::iban: FUZZ_CHECK(shown_alnum <= 6 && preview.size() <= raw.size()); break;
        case MaskStyle::date: FUZZ_CHECK(shown_alnum == 0 && preview.size() == raw.size()); break;
        case MaskStyle::identifier: FUZZ_CHECK(shown_alnum <= 2 && preview.size() == raw.size()); break;
        case MaskStyle::secret: FUZZ_CHECK(preview.size() <= 8 && preview.ends_with("****")); break;
        case MaskStyle::hidden: FUZZ_CHECK(preview == "****"); break;
        case MaskStyle::key_block: FUZZ_CHECK(preview.size() <= 48); break;
        case MaskStyle::email:
        case MaskStyle::ipv4:
        case MaskStyle::ipv6: FUZZ_CHECK(preview.size() <= raw.size() + 16); break;
    }
}

void check_normalizers(const Detector& detector, std::string_view raw) {
    const std::string normalized = normalize_value(detector, raw);
    switch (detector.normalize) {
        case Normalize::raw: FUZZ_CHECK(normalized == raw); break;
        case Normalize::digits:
            FUZZ_CHECK(std::all_of(normalized.begin(), normalized.end(), is_digit));
            FUZZ_CHECK(normalized.size() == static_cast<std::size_t>(std::count_if(raw.begin(), raw.end(), is_digit)));
            break;
        case Normalize::upper_alnum:
            FUZZ_CHECK(std::all_of(normalized.begin(), normalized.end(), [](char c) { return is_digit(c) || is_upper(c); }));
            break;
    }
    (void)is_known_test_value(detector.id, normalized);
    if (detector.validate != nullptr) (void)detector.validate(normalized);
}

// Findings spelled by the input itself: type, offset and length from its
// bytes, so overlapping, unsorted and out-of-range ones all come up.
std::vector<Finding> findings_from(std::string_view s) {
    const auto detectors = all_detectors();
    std::vector<Finding> findings;
    for (std::size_t i = 0; i + 3 <= s.size() && findings.size() < 16; i += 3) {
        Finding f;
        const auto pick = static_cast<unsigned char>(s[i]);
        f.type = pick < detectors.size() ? detectors[pick].id : (pick % 2 == 0 ? std::string_view{} : "no.such.type");
        f.offset = static_cast<unsigned char>(s[i + 1]) % (s.size() + 2);
        f.length = static_cast<unsigned char>(s[i + 2]) % 64;
        findings.push_back(f);
    }
    return findings;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view input = airlock::fuzz::as_text(data, size);
    std::string digits;
    std::string upper_alnum;
    for (char c : input) {
        if (is_digit(c)) digits.push_back(c);
        if (is_alnum(c)) upper_alnum.push_back(is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c);
    }
    for (std::string_view s : {input, std::string_view(digits), std::string_view(upper_alnum)}) {
        check_checksums(s);
        check_identifiers(s);
    }
    check_addresses(input);
    check_dates(input);
    check_secrets(input);
    for (const Detector& detector : all_detectors()) {
        check_preview(detector, input);
        check_normalizers(detector, input);
    }
    FUZZ_CHECK(masked_preview("no.such.type", input) == "****");
    airlock::fuzz::check_redaction(input, findings_from(input));
    return 0;
}
