#include "corpus/corpus_generator.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstdio>
#include <random>
#include <utility>

#include "support/test_values.hpp"

// The generator computes its own checksums (Luhn, Verhoeff, mod 97) instead
// of calling the inspector's validators: a validator bug must not make the
// corpus agree with it.
//
// Credential-shaped values are assembled from pieces at run time, so that no
// complete token sits in this source for a repository secret scanner.

namespace airlock::corpus {
namespace {

using namespace airlock::test_values;

constexpr std::string_view upper_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
constexpr std::string_view lower_chars = "abcdefghijklmnopqrstuvwxyz";
constexpr std::string_view digit_chars = "0123456789";
constexpr std::string_view alnum_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
constexpr std::string_view letter_chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
constexpr std::string_view hex_lower = "0123456789abcdef";
constexpr std::string_view base32_upper = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// Deterministic across standard libraries: only the engine's raw output is
// used (the distributions' algorithms are implementation-defined).
class Random {
public:
    explicit Random(std::uint64_t seed) : engine_(seed) {}
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(engine_() % n); }
    int between(int low, int high) { return low + static_cast<int>(below(static_cast<std::size_t>(high - low + 1))); }
    bool chance(unsigned percent) { return below(100) < percent; }
    template <class List>
    const auto& pick(const List& list) {
        return list[below(std::size(list))];
    }
    std::string text(std::size_t n, std::string_view alphabet) {
        std::string out;
        out.reserve(n);
        for (std::size_t i = 0; i < n; ++i) out.push_back(alphabet[below(alphabet.size())]);
        return out;
    }
    std::string digits(std::size_t n) { return text(n, digit_chars); }
    std::string bytes(std::size_t n) {
        std::string out;
        for (std::size_t i = 0; i < n; ++i) out.push_back(static_cast<char>(engine_() & 0xFF));
        return out;
    }
    template <class List>
    void shuffle(List& list) {
        for (std::size_t i = list.size(); i > 1; --i) std::swap(list[i - 1], list[below(i)]);
    }

private:
    std::mt19937_64 engine_;
};

// --- Checksums --------------------------------------------------------------------------

std::string verhoeff_break(const std::string& number) {
    std::string out = number;
    do {
        out.back() = out.back() == '9' ? '0' : static_cast<char>(out.back() + 1);
    } while (verhoeff_ok(out));
    return out;
}

unsigned mod97(std::string_view rearranged) {
    unsigned r = 0;
    for (char c : rearranged) {
        if (c >= '0' && c <= '9') {
            r = (r * 10 + static_cast<unsigned>(c - '0')) % 97;
        } else {
            r = (r * 100 + static_cast<unsigned>(c - 'A' + 10)) % 97;
        }
    }
    return r;
}

std::string iban_with_check(std::string_view country, std::string_view bban) {
    const unsigned check = 98 - mod97(cat({bban, country, "00"}));
    const std::string digits = {static_cast<char>('0' + check / 10), static_cast<char>('0' + check % 10)};
    return cat({country, digits, bban});
}


std::string in_fours(std::string_view compact) {
    std::string out;
    for (std::size_t i = 0; i < compact.size(); i += 4) {
        if (i > 0) out += ' ';
        out += compact.substr(i, 4);
    }
    return out;
}

// --- Names and filler -------------------------------------------------------------------------

constexpr std::string_view first_names[] = {"Alice", "Bruno",  "Chen",  "Dana",   "Emeka",  "Fatima", "Gustav",
                                            "Hana",  "Ivan",   "Jia",   "Kofi",   "Lena",   "Mateo",  "Nadia",
                                            "Omar",  "Priya",  "Quinn", "Rosa",   "Sven",   "Tomoko", "Umar",
                                            "Vera",  "Wanjiru", "Xavier", "Yusuf", "Zoe"};
constexpr std::string_view last_names[] = {"Okafor", "Schmidt", "Nakamura", "Garcia",  "Dubois", "Kowalski",
                                           "Haddad", "Lindqvist", "Moreau", "Oliveira", "Petrov", "Rahman",
                                           "Sato",   "Thompson", "Varga",  "Wright",  "Yilmaz", "Zhang"};
constexpr std::string_view domain_words[] = {"northwind", "contoso", "acmecorp", "globex",  "initech", "umbrella",
                                             "hooli",     "vandelay", "stark",   "wayne",   "tyrell",  "cyberdyne",
                                             "piedpiper", "aperture", "blueth",  "wonka",   "dunder",  "soylent"};
constexpr std::string_view tlds[] = {"com", "org", "net", "io", "co.uk", "de", "fr", "dev", "app", "com.au",
                                     "nl", "ca", "travel", "info", "co.jp", "es"};
constexpr std::string_view plain_words[] = {"orders", "billing", "report", "cluster", "staging", "archive",
                                            "metrics", "ledger", "invoice", "export", "backup", "queue"};

// Lines that carry nothing sensitive and no word that gives a bare number a
// meaning (no "ssn", "phone", "tel", "call", "tin", "uid", ...).
constexpr std::string_view filler_lines[] = {
    "# generated by the nightly export job",
    "retries: 3",
    "timeout_ms = 2500",
    "log_level=debug",
    "import os",
    "from datetime import datetime",
    "def handler(event, context):",
    "    return {\"statusCode\": 200}",
    "for (std::size_t i = 0; i < items.size(); ++i) {",
    "}",
    "const express = require('express');",
    "app.listen(8080);",
    "2024-03-05T10:22:13Z INFO worker started pid=4312",
    "2024-03-05 10:22:14,551 WARN cache miss ratio 0.42 over 300s",
    "[2024-03-05 10:22:15] GET /healthz 200 3ms",
    "The quarterly numbers are attached; the summary is on page 2.",
    "Let me know if Thursday works for the review.",
    "Thanks again for the quick turnaround on this.",
    "Best regards,",
    "---",
    "",
    "id,name,city,amount",
    "17,Widget,Lyon,19.99",
    "  replicas: 2",
    "  image: registry.internal/app:4.2.1",
    "SELECT count(*) FROM events WHERE created_at > now() - interval '1 day';",
    "<div class=\"row\">",
    "</div>",
    "## Deployment notes",
    "- bump the chart to 3.14.0 before Friday",
    "Build finished in 41.7s (142 targets, 0 failed).",
    "total 48K drwxr-xr-x 5 root root 4.0K Mar  5 10:22 .",
    "Subject: Re: weekly sync",
    "    raise ValueError(\"unexpected input\")",
    "  \"enabled\": true,",
    "mtime=1709634133 size=20481",
    "checksum ok after 12 attempts",
};

// Words that give a nearby bare number a meaning; the generator keeps them
// out of the 128 bytes before a lookalike that is meant to stand alone.
constexpr std::string_view identifying_words[] = {
    "ssn", "social", "soc sec", "ss#", "ssa", "itin", "taxpayer", "tin", "sin", "insurance", "nas", "aadhaar",
    "aadhar", "adhaar", "uidai", "uid", "phone", "tel", "mobile", "cell", "fax", "call", "contact", "sms",
    "whatsapp", "ph", "twilio", "passport", "passeport", "reisepass", "pasaporte", "dob", "birth", "born"};

// --- Pieces: a value and what it is ------------------------------------------------------------

struct Piece {
    std::string text;
    std::string label;  // detector id, or empty for text that is nothing
};
using Pieces = std::vector<Piece>;

Pieces one(std::string_view type, std::string value) { return {Piece{std::move(value), std::string(type)}}; }

// --- PII values -------------------------------------------------------------------------------

std::string card_number(Random& r) {
    switch (r.below(10)) {
        case 0:
        case 1: return luhn_complete("4" + r.digits(14));
        case 2: return luhn_complete(std::to_string(r.between(51, 55)) + r.digits(13));
        case 3: return luhn_complete(std::to_string(r.between(2221, 2720)) + r.digits(11));
        case 4: return luhn_complete(std::string(r.chance(50) ? "34" : "37") + r.digits(12));
        case 5: return luhn_complete(std::string(r.chance(50) ? "6011" : "65" + r.digits(2)) + r.digits(11));
        case 6: return luhn_complete(std::to_string(r.between(3528, 3589)) + r.digits(11));
        case 7: return luhn_complete("36" + r.digits(11));  // Diners, 14 digits
        case 8: return luhn_complete("4" + r.digits(11));   // Visa, 13 digits
        default: return luhn_complete("62" + r.digits(13));  // UnionPay
    }
}

std::string format_card(Random& r, const std::string& n) {
    const std::string_view sep = r.chance(60) ? " " : "-";
    if (r.chance(30)) return n;
    if (n.size() == 16) return grouped(n, {4, 4, 4, 4}, sep);
    if (n.size() == 15) return grouped(n, {4, 6, 5}, sep);
    if (n.size() == 14) return grouped(n, {4, 6, 4}, sep);
    return n;
}

Pieces credit_card(Random& r, bool) { return one("pii.credit_card", format_card(r, card_number(r))); }

std::string ssn_digits(Random& r) {
    for (;;) {
        const int area = r.between(1, 899);
        if (area == 666) continue;
        const int group = r.between(1, 99);
        const int serial = r.between(1, 9999);
        char buffer[16];
        std::snprintf(buffer, sizeof buffer, "%03d%02d%04d", area, group, serial);
        const std::string d = buffer;
        if (d == "078051120" || d == "219099999" || d == "123456789" || d == "457555462") continue;
        return d;
    }
}

std::string format_324(Random& r, const std::string& d, bool bare_ok) {
    const unsigned roll = static_cast<unsigned>(r.below(10));
    if (bare_ok && roll < 3) return d;
    return grouped(d, {3, 2, 4}, roll < 7 ? "-" : " ");
}

Pieces us_ssn(Random& r, bool bare_ok) { return one("pii.us_ssn", format_324(r, ssn_digits(r), bare_ok)); }

std::string itin_digits(Random& r) {
    static constexpr int groups[] = {50, 51, 55, 58, 60, 63, 65, 70, 72, 75, 78, 80, 83, 85, 88, 90, 91, 92, 94, 96, 99};
    char buffer[16];
    std::snprintf(buffer, sizeof buffer, "9%02d%02d%04d", r.between(0, 99), r.pick(groups), r.between(1, 9999));
    return buffer;
}

Pieces us_itin(Random& r, bool bare_ok) { return one("pii.us_itin", format_324(r, itin_digits(r), bare_ok)); }

std::string sin_digits(Random& r) {
    static constexpr char firsts[] = {'1', '2', '3', '4', '5', '6', '7', '9'};
    return luhn_complete(std::string(1, r.pick(firsts)) + r.digits(7));
}

Pieces ca_sin(Random& r, bool bare_ok) {
    const std::string d = sin_digits(r);
    if (bare_ok && r.chance(30)) return one("pii.ca_sin", d);
    return one("pii.ca_sin", grouped(d, {3, 3, 3}, r.chance(60) ? " " : "-"));
}

std::string aadhaar_digits(Random& r) { return verhoeff_complete(std::to_string(r.between(2, 9)) + r.digits(10)); }

Pieces in_aadhaar(Random& r, bool bare_ok) {
    const std::string d = aadhaar_digits(r);
    if (bare_ok && r.chance(30)) return one("pii.in_aadhaar", d);
    return one("pii.in_aadhaar", grouped(d, {4, 4, 4}, r.chance(75) ? " " : "-"));
}

std::string nanp_number(Random& r) {
    for (;;) {
        std::string d = std::to_string(r.between(2, 9)) + std::to_string(r.between(0, 8)) + r.digits(1) +
                        std::to_string(r.between(2, 9)) + r.digits(2) + r.digits(4);
        if (d[1] == '1' && d[2] == '1') continue;  // N11 area codes are service codes
        if (d[4] == '1' && d[5] == '1') continue;
        if (d.substr(3, 3) == "555" && d[6] == '0' && d[7] == '1') continue;  // fiction range
        return d;
    }
}

std::string international_phone(Random& r) {
    switch (r.below(18)) {
        case 14: return cat({"+44 (0)20 ", r.digits(4), " ", r.digits(4)});
        case 15: return cat({"+49 (0)30 ", r.digits(7)});
        case 16: return cat({"+33 (0)1 ", r.digits(2), " ", r.digits(2), " ", r.digits(2), " ", r.digits(2)});
        case 17: return cat({"+353 1 ", r.digits(3), " ", r.digits(4)});
        case 0: return cat({"+44 20 ", r.digits(4), " ", r.digits(4)});
        case 1: return cat({"+44 7", std::to_string(r.between(4, 9)), r.digits(2), " ", r.digits(6)});
        case 2: return cat({"+49 30 ", r.digits(8)});
        case 3: return cat({"+49 15", std::to_string(r.between(1, 7)), " ", r.digits(7)});
        case 4: return cat({"+33 6 ", r.digits(2), " ", r.digits(2), " ", r.digits(2), " ", r.digits(2)});
        case 5: return cat({"+91 ", std::to_string(r.between(6, 9)), r.digits(4), " ", r.digits(5)});
        case 6: return cat({"+81 3-", r.digits(4), "-", r.digits(4)});
        case 7: return cat({"+61 4", r.digits(2), " ", r.digits(3), " ", r.digits(3)});
        case 8: return cat({"+55 11 9", r.digits(4), "-", r.digits(4)});
        case 9: return cat({"+34 6", r.digits(2), " ", r.digits(3), " ", r.digits(3)});
        case 10: return cat({"+31 6 ", r.digits(8)});
        case 11: return cat({"+86 13", r.digits(1), " ", r.digits(4), " ", r.digits(4)});
        case 12: return cat({"+447", std::to_string(r.between(4, 9)), r.digits(8)});
        default: return cat({"+49-89-", r.digits(7)});
    }
}

std::string format_nanp(Random& r, const std::string& d, bool bare_ok) {
    const std::string npa = d.substr(0, 3), nxx = d.substr(3, 3), line = d.substr(6);
    switch (r.below(bare_ok ? 10 : 9)) {
        case 0: return cat({"(", npa, ") ", nxx, "-", line});
        case 1: return cat({npa, "-", nxx, "-", line});
        case 2: return cat({npa, ".", nxx, ".", line});
        case 3: return cat({npa, " ", nxx, " ", line});
        case 4: return cat({"1-", npa, "-", nxx, "-", line});
        case 5: return cat({"+1 ", npa, " ", nxx, " ", line});
        case 6: return cat({"+1-", npa, "-", nxx, "-", line});
        case 7: return cat({"+1 (", npa, ") ", nxx, "-", line});
        case 8: return cat({"+1", d});
        default: return d;
    }
}

Pieces phone(Random& r, bool bare_ok) {
    if (r.chance(40)) return one("pii.phone", international_phone(r));
    return one("pii.phone", format_nanp(r, nanp_number(r), bare_ok));
}

std::string iban_compact(Random& r) {
    struct Country {
        std::string_view code;
        std::string_view bban;  // 'A' a capital, '9' a digit
    };
    static constexpr Country countries[] = {
        {"DE", "999999999999999999"},    {"GB", "AAAA99999999999999"},      {"FR", "99999999999999999999999"},
        {"ES", "99999999999999999999"},  {"IT", "A9999999999999999999999"}, {"NL", "AAAA9999999999"},
        {"BE", "999999999999"},          {"AT", "9999999999999999"},        {"CH", "99999999999999999"},
        {"PL", "999999999999999999999999"}, {"SE", "99999999999999999999"}, {"IE", "AAAA99999999999999"},
        {"PT", "999999999999999999999"}, {"DK", "99999999999999"},          {"NO", "99999999999"},
        {"FI", "99999999999999"},        {"LU", "9999999999999999"}};
    const Country& c = r.pick(countries);
    std::string bban;
    for (char kind : c.bban) bban += kind == 'A' ? r.text(1, upper_chars) : r.digits(1);
    return iban_with_check(c.code, bban);
}

Pieces iban(Random& r, bool) {
    const std::string compact = iban_compact(r);
    return one("pii.iban", r.chance(50) ? in_fours(compact) : compact);
}

std::string nino_compact(Random& r) {
    static constexpr std::string_view first = "ABCEGHJKLMNOPRSTWXYZ";
    static constexpr std::string_view second = "ABCEGHJKLMNPRSTWXYZ";
    for (;;) {
        std::string prefix = r.text(1, first) + r.text(1, second);
        if (prefix == "BG" || prefix == "GB" || prefix == "KN" || prefix == "NK" || prefix == "NT" || prefix == "TN" ||
            prefix == "ZZ" || prefix == "AB") {
            continue;
        }
        return prefix + r.digits(6) + r.text(1, "ABCD");
    }
}

Pieces uk_nino(Random& r, bool) {
    const std::string n = nino_compact(r);
    if (r.chance(40)) return one("pii.uk_nino", cat({n.substr(0, 2), " ", n.substr(2, 2), " ", n.substr(4, 2), " ",
                                                     n.substr(6, 2), " ", n.substr(8)}));
    return one("pii.uk_nino", n);
}

std::string ipv4_address(Random& r) {
    for (;;) {
        const int a = r.between(1, 223);
        if (a == 127 || a == 0) continue;
        const std::string ip = cat({std::to_string(a), ".", std::to_string(r.between(0, 255)), ".",
                                    std::to_string(r.between(0, 255)), ".", std::to_string(r.between(1, 254))});
        return ip;
    }
}

Pieces ipv4(Random& r, bool) { return one("pii.ipv4", ipv4_address(r)); }

std::string hex_group(Random& r, bool pad) {
    std::string g = r.text(static_cast<std::size_t>(r.between(1, 4)), hex_lower);
    if (pad) g = std::string(4 - g.size(), '0') + g;
    return g;
}

std::string ipv6_address(Random& r) {
    std::string out;
    if (r.chance(8)) return "::ffff:" + ipv4_address(r);
    switch (r.below(6)) {
        case 0:
        case 1: {  // full form
            const bool pad = r.chance(50);
            out = r.pick(std::array<std::string_view, 4>{"2001", "2a00", "2600", "2a02"});
            for (int i = 0; i < 7; ++i) out += ":" + hex_group(r, pad);
            break;
        }
        case 2: {  // compressed in the middle
            out = cat({r.pick(std::array<std::string_view, 4>{"2001", "2a03", "2607", "2c0f"}), ":", hex_group(r, false),
                       ":", hex_group(r, false), "::", hex_group(r, false), ":", hex_group(r, false)});
            break;
        }
        case 3:  // link-local
            out = cat({"fe80::", hex_group(r, false), ":", r.text(2, hex_lower), "ff:fe", r.text(2, hex_lower), ":",
                       hex_group(r, false)});
            break;
        case 4:  // unique local, compressed tail
            out = cat({"fd", r.text(2, hex_lower), ":", hex_group(r, false), ":", hex_group(r, false), "::",
                       std::to_string(r.between(1, 99))});
            break;
        default:  // all-decimal groups, zero-padded full form
            out = cat({"2001:4860:", r.digits(4), ":0000:0000:0000:0000:", r.digits(4)});
            break;
    }
    if (r.chance(20)) {
        for (char& c : out) c = (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
    }
    return out;
}

Pieces ipv6(Random& r, bool) { return one("pii.ipv6", ipv6_address(r)); }

std::string upper(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = (c >= 'a' && c <= 'z') ? static_cast<char>(c - 'a' + 'A') : c;
    return out;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return out;
}

std::string email_address(Random& r) {
    const std::string first = lowered(r.pick(first_names));
    const std::string last = lowered(r.pick(last_names));
    std::string local;
    switch (r.below(6)) {
        case 0: local = first + "." + last; break;
        case 1: local = first.substr(0, 1) + last; break;
        case 2: local = first + "_" + last + std::to_string(r.between(1, 99)); break;
        case 3: local = cat({first, "+", r.pick(plain_words)}); break;
        case 4: local = first; break;
        default: local = cat({r.pick(first_names), ".", r.pick(last_names)}); break;
    }
    std::string domain = std::string(r.pick(domain_words)) + "." + std::string(r.pick(tlds));
    if (r.chance(20)) domain = std::string(r.pick(std::array<std::string_view, 3>{"mail.", "eu.", "corp."})) + domain;
    if (r.chance(10)) return upper(local + "@" + domain);
    return local + "@" + domain;
}

Pieces email(Random& r, bool) { return one("pii.email", email_address(r)); }

constexpr std::string_view month_names[] = {"January", "February", "March",     "April",   "May",      "June",
                                            "July",    "August",   "September", "October", "November", "December"};

std::string birth_date(Random& r) {
    const int year = r.between(1935, 2008);
    const int month = r.between(1, 12);
    const int day = r.between(1, 28);
    char buffer[48];
    const std::string_view name = month_names[month - 1];
    switch (r.below(9)) {
        case 0: std::snprintf(buffer, sizeof buffer, "%02d/%02d/%d", month, day, year); break;
        case 1: std::snprintf(buffer, sizeof buffer, "%d-%02d-%02d", year, month, day); break;
        case 2: std::snprintf(buffer, sizeof buffer, "%02d.%02d.%d", day, month, year); break;
        case 3: std::snprintf(buffer, sizeof buffer, "%d %.*s %d", day, static_cast<int>(name.size()), name.data(), year); break;
        case 4: std::snprintf(buffer, sizeof buffer, "%.*s %d, %d", static_cast<int>(name.size()), name.data(), day, year); break;
        case 5: std::snprintf(buffer, sizeof buffer, "%d/%d/%d", day, month, year); break;
        case 6: std::snprintf(buffer, sizeof buffer, "%.3s %d, %d", name.data(), day, year); break;
        case 7: std::snprintf(buffer, sizeof buffer, "%02d-%.3s-%d", day, name.data(), year); break;
        default: std::snprintf(buffer, sizeof buffer, "%d/%02d/%02d", year, month, day); break;
    }
    return buffer;
}

Pieces date_of_birth(Random& r, bool) { return one("pii.date_of_birth", birth_date(r)); }

std::string passport_number(Random& r) {
    switch (r.below(6)) {
        case 0: return std::to_string(r.between(1, 9)) + r.digits(8);              // US, UK
        case 1: return r.text(1, "ACEFGHJKLMN") + r.digits(8);                      // US next generation
        case 2: return "C" + r.text(8, "CFGHJKLMNPRTVWXYZ0123456789");              // DE
        case 3: return r.digits(2) + r.text(2, upper_chars) + r.digits(5);          // FR
        case 4: return r.text(1, "JKLMNPRSTUVWZ") + r.digits(7);                    // IN
        default: return r.text(2, upper_chars) + r.digits(6);                       // CA
    }
}

Pieces passport(Random& r, bool) { return one("pii.passport", passport_number(r)); }

// --- Secret values ---------------------------------------------------------------------------

Pieces aws_access_key(Random& r, bool) {
    return one("secret.aws_access_key", cat({r.chance(70) ? "AK" : "AS", "IA", r.text(16, base32_upper)}));
}

Pieces aws_secret_key(Random& r, bool) { return one("secret.aws_secret_key", r.text(40, base64_chars)); }

Pieces github_token(Random& r, bool) {
    if (r.chance(25)) {
        return one("secret.github_token", cat({"github", "_pat_", r.text(22, alnum_chars), "_", r.text(59, alnum_chars)}));
    }
    static constexpr std::string_view kinds[] = {"p", "o", "u", "s", "r"};
    return one("secret.github_token", cat({"gh", r.pick(kinds), "_", r.text(36, alnum_chars)}));
}

Pieces gitlab_token(Random& r, bool) {
    static constexpr std::string_view kinds[] = {"pat", "pat", "pat", "dt", "rt", "ptt", "cbt"};
    return one("secret.gitlab_token", cat({"gl", r.pick(kinds), "-", r.text(20, base64url_chars.substr(0, 62))}));
}

Pieces slack_token(Random& r, bool) {
    switch (r.below(3)) {
        case 0:
            return one("secret.slack_token",
                       cat({"xo", "xb-", r.digits(12), "-", r.digits(13), "-", r.text(24, alnum_chars)}));
        case 1:
            return one("secret.slack_token", cat({"xo", "xp-", r.digits(12), "-", r.digits(12), "-", r.digits(13), "-",
                                                  r.text(32, hex_lower)}));
        default:
            return one("secret.slack_token", cat({"xa", "pp-1-A", r.text(10, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789"), "-",
                                                  r.digits(13), "-", r.text(64, hex_lower)}));
    }
}

Pieces slack_webhook(Random& r, bool) {
    const std::string team = "T" + r.text(10, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789");
    const std::string bot = "B" + r.text(10, "ABCDEFGHJKLMNPQRSTUVWXYZ0123456789");
    return one("secret.slack_webhook",
               cat({"https://hooks.slack.com/", "services/", team, "/", bot, "/", r.text(24, alnum_chars)}));
}

Pieces stripe_key(Random& r, bool) {
    static constexpr std::string_view prefixes[] = {"sk_live_", "sk_live_", "rk_live_", "sk_test_"};
    const std::string_view prefix = r.pick(prefixes);
    return one("secret.stripe_key", cat({prefix.substr(0, 2), prefix.substr(2), r.text(r.chance(50) ? 24 : 99, alnum_chars)}));
}

Pieces google_api_key(Random& r, bool) {
    return one("secret.google_api_key", cat({"AI", "za", r.text(35, base64url_chars)}));
}

std::string pem_body(std::string_view bytes, std::string_view eol, std::size_t width = 64) {
    const std::string b = base64(bytes);
    std::string out;
    for (std::size_t i = 0; i < b.size(); i += width) out += b.substr(i, width) + std::string(eol);
    return out;
}

std::string pem(std::string_view label, std::string_view bytes, std::string_view eol, std::size_t width = 64) {
    return cat({"-----BEGIN ", label, "-----", eol, pem_body(bytes, eol, width), "-----END ", label, "-----"});
}

Pieces gcp_service_account(Random& r, bool) {
    const std::string project = cat({r.pick(plain_words), "-", r.digits(6)});
    const std::string account = cat({r.pick(plain_words), "-sa@", project, ".iam.gserviceaccount.com"});
    const std::string key = pem("PRIVATE KEY", r.bytes(static_cast<std::size_t>(r.between(600, 1200))), "\\n") + "\\n";
    const bool pretty = r.chance(60);
    const std::string nl = pretty ? "\n" : "";
    const std::string in = pretty ? "  " : " ";
    Pieces p;
    p.push_back({cat({"{", nl, in, "\"type\": \"service_account\",", nl, in, "\"project_id\": \"", project, "\",", nl, in,
                      "\"private_key_id\": \"", r.text(40, hex_lower), "\",", nl, in, "\"private_key\": \""}),
                 ""});
    p.push_back({key, "secret.gcp_service_account"});
    p.push_back({cat({"\",", nl, in, "\"client_email\": \""}), ""});
    p.push_back({account, "pii.email"});
    p.push_back({cat({"\",", nl, in, "\"client_id\": \"1", r.digits(20), "\",", nl, in,
                      "\"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",", nl, in,
                      "\"token_uri\": \"https://oauth2.googleapis.com/token\"", nl, "}"}),
                 ""});
    return p;
}

Pieces openai_key(Random& r, bool) {
    switch (r.below(3)) {
        case 0:
            return one("secret.openai_key", cat({"sk-", "proj-", r.text(74, base64url_chars), "T3Blbk", "FJ",
                                                 r.text(74, base64url_chars)}));
        case 1: return one("secret.openai_key", cat({"sk-", r.text(20, alnum_chars), "T3Blbk", "FJ", r.text(20, alnum_chars)}));
        default: return one("secret.openai_key", cat({"sk-", "svcacct-", r.text(64, base64url_chars)}));
    }
}

Pieces anthropic_key(Random& r, bool) {
    return one("secret.anthropic_key",
               cat({"sk-", "ant-", r.chance(80) ? "api03-" : "admin01-", r.text(93, base64url_chars), "AA"}));
}

Pieces npm_token(Random& r, bool) { return one("secret.npm_token", cat({"np", "m_", r.text(36, alnum_chars)})); }

Pieces pypi_token(Random& r, bool) {
    return one("secret.pypi_token",
               cat({"py", "pi-", "AgEIcHlwaS5vcmc", r.text(static_cast<std::size_t>(r.between(120, 180)), base64url_chars)}));
}

Pieces twilio_key(Random& r, bool) { return one("secret.twilio_key", cat({"S", "K", r.text(32, hex_lower)})); }

Pieces sendgrid_key(Random& r, bool) {
    return one("secret.sendgrid_key", cat({"S", "G.", r.text(22, base64url_chars), ".", r.text(43, base64url_chars)}));
}

std::string private_key_block(Random& r, std::string_view eol, bool truncated) {
    std::string block;
    switch (r.below(6)) {
        case 0: block = pem("RSA PRIVATE KEY", r.bytes(static_cast<std::size_t>(r.between(600, 1200))), eol); break;
        case 1: block = pem("PRIVATE KEY", r.bytes(static_cast<std::size_t>(r.between(120, 1200))), eol); break;
        case 2: block = pem("EC PRIVATE KEY", r.bytes(121), eol); break;
        case 3: block = pem("ENCRYPTED PRIVATE KEY", r.bytes(static_cast<std::size_t>(r.between(200, 1300))), eol); break;
        case 4:
            block = pem("OPENSSH PRIVATE KEY", std::string("openssh-key-v1\0", 15) + r.bytes(380), eol, 70);
            break;
        default:
            block = cat({"-----BEGIN PGP PRIVATE KEY BLOCK-----", eol, "Comment: exported", eol, eol,
                         pem_body(r.bytes(600), eol), "=", r.text(4, base64_chars), eol,
                         "-----END PGP PRIVATE KEY BLOCK-----"});
            break;
    }
    if (truncated) {
        // Cut after a few body lines, as a paste or a log line limit does.
        std::size_t cut = block.find(eol);
        const int lines = r.between(3, 6);
        for (int i = 0; i < lines && block.find(eol, cut + eol.size()) != std::string::npos; ++i) {
            const std::size_t next = block.find(eol, cut + eol.size());
            if (block.compare(cut + eol.size(), 5, "-----") == 0 || block.compare(cut + eol.size(), 1, "=") == 0) break;
            cut = next;
        }
        block.resize(cut);
    }
    return block;
}

Pieces private_key(Random& r, bool) {
    return one("secret.private_key", private_key_block(r, r.chance(25) ? "\r\n" : "\n", r.chance(15)));
}

std::string jwt_token(Random& r) {
    static constexpr std::string_view algs[] = {"HS256", "RS256", "ES256", "PS512"};
    const std::string header = cat({"{\"alg\":\"", r.pick(algs), "\",\"typ\":\"JWT\"}"});
    const std::string payload = cat({"{\"sub\":\"", r.digits(8), "\",\"iat\":17", r.digits(8), ",\"exp\":17", r.digits(8),
                                     ",\"scope\":\"", r.pick(plain_words), ":read\"}"});
    return base64url(header) + "." + base64url(payload) + "." + base64url(r.bytes(r.chance(50) ? 32 : 256));
}

Pieces jwt(Random& r, bool) { return one("secret.jwt", jwt_token(r)); }

std::string strong_password(Random& r, std::size_t min_length = 10) {
    static constexpr std::string_view symbols = "!#%^*-_+=.~?";
    for (;;) {
        const std::size_t n = static_cast<std::size_t>(r.between(static_cast<int>(min_length), 24));
        std::string p = r.text(1, letter_chars);
        while (p.size() < n) {
            switch (r.below(5)) {
                case 0: p += r.text(1, upper_chars); break;
                case 1: p += r.text(1, digit_chars); break;
                case 2: p += r.text(1, symbols); break;
                default: p += r.text(1, lower_chars); break;
            }
        }
        const bool digit = p.find_first_of(digit_chars) != std::string::npos;
        const bool upper = p.find_first_of(upper_chars) != std::string::npos;
        if (digit && upper) return p;
    }
}

Pieces db_url(Random& r, bool) {
    static constexpr std::string_view schemes[] = {"postgres", "postgresql", "mysql", "mongodb+srv", "mongodb",
                                                   "redis",    "rediss",     "amqp",  "mssql"};
    static constexpr std::string_view users[] = {"app", "admin", "svc_orders", "readonly", "root", "deploy"};
    const std::string_view scheme = r.pick(schemes);
    std::string password = strong_password(r);
    for (char& c : password) {
        if (c == '#' || c == '?' || c == '%' || c == '^') c = 'x';  // URL-reserved in userinfo
    }
    const std::string host = cat({r.pick(plain_words), "-db.", r.pick(domain_words), ".internal"});
    Pieces p;
    p.push_back({cat({scheme, "://", r.pick(users), ":"}), ""});
    p.push_back({password, "secret.db_url_password"});
    p.push_back({cat({"@", host, scheme.starts_with("mongodb+srv") ? "" : ":5432", "/", r.pick(plain_words),
                      r.chance(40) ? "?sslmode=require" : ""}),
                 ""});
    return p;
}

constexpr std::string_view passphrase_words[] = {"correct", "horse",  "battery", "staple", "orbit",  "velvet",
                                                 "marble",  "cactus", "lantern", "quartz", "ripple", "tundra",
                                                 "falcon",  "meadow", "copper",  "zephyr", "walnut", "harbor"};

Pieces huggingface_token(Random& r, bool) { return one("secret.huggingface_token", cat({"h", "f_", r.text(34, letter_chars)})); }

Pieces digitalocean_token(Random& r, bool) {
    static constexpr std::string_view kinds[] = {"dop", "doo", "dor"};
    return one("secret.digitalocean_token", cat({r.pick(kinds), "_v1_", r.text(64, hex_lower)}));
}

Pieces azure_storage_key(Random& r, bool) {
    Pieces p;
    const std::string account = cat({r.pick(plain_words), r.digits(3)});
    p.push_back({cat({"DefaultEndpointsProtocol=https;AccountName=", account, ";AccountKey="}), ""});
    p.push_back({base64(r.bytes(64)), "secret.azure_storage_key"});
    p.push_back({";EndpointSuffix=core.windows.net", ""});
    return p;
}

// --- Templates --------------------------------------------------------------------------------
//
// "{}" is the value. {first}, {last}, {word}, {n} are harmless fillers;
// {KEY}, {key}, {keyCamel}, {key-dash} spell one of the type's key names.
// '\n' becomes the document's line ending.

struct Template {
    std::string_view text;
    // Words in the template give a bare value its meaning ("SSN: 536228451"),
    // so the value may be written without the separators that identify it
    // alone.
    bool context = false;
};

using Make = Pieces (*)(Random&, bool bare_ok);

struct TypeSpec {
    std::string_view id;
    Make make;
    std::vector<Template> templates;
    std::vector<std::string_view> keys = {};  // snake_case key names for {KEY}/{key}/...
};

// Self-identifying tokens: any place a credential is pasted.
const std::vector<Template>& token_templates() {
    static const std::vector<Template> t = {
        {"{KEY}={}\n"},
        {"export {KEY}=\"{}\"\n"},
        {"{key}: {}\n"},
        {"{key}: '{}'\n"},
        {"  \"{keyCamel}\": \"{}\",\n"},
        {"{key} = \"{}\"\n"},
        {"const {keyCamel} = '{}';\n"},
        {"docker run --rm -e {KEY}={} registry.internal/worker:2.3\n"},
        {"curl -s -H \"Authorization: Bearer {}\" https://api.internal.dev/v1/me\n"},
        {"{}\n"},
        {"{}"},
        {"Here is the key you asked for: {}\nPlease rotate it after the demo.\n"},
        {"<{keyCamel}>{}</{keyCamel}>\n"},
        {"| {KEY} | `{}` |\n"},
        {"./deploy.sh --{key-dash}={} --region eu-west-1\n"},
        {"[default]\n{key} = {}\n"},
        {"2024-04-02 09:14:55 DEBUG client configured with {key}={} (expires in 3600s)\n"},
        {"    {keyCamel}: \"{}\",\n"},
        {"os.environ[\"{KEY}\"] = \"{}\"\n"},
        {"{KEY}='{}'\n"},
    };
    return t;
}

// Values named only by the keyword that holds them.
const std::vector<Template>& assignment_templates() {
    static const std::vector<Template> t = {
        {"{KEY}={}\n"},
        {"export {KEY}=\"{}\"\n"},
        {"{key}: {}\n"},
        {"{key}: \"{}\"\n"},
        {"  \"{keyCamel}\": \"{}\",\n"},
        {"  \"{key}\": \"{}\"\n"},
        {"{key} = '{}'\n"},
        {"{keyCamel} := \"{}\"\n"},
        {"  {keyCamel}: '{}',\n"},
        {"[credentials]\n{key} = {}\n"},
        {"$config['{key}'] = '{}';\n"},
        {"{KEY}: {}\n"},
        {"./run --{key-dash}={}\n"},
        {"{key} => \"{}\",\n"},
    };
    return t;
}

const std::vector<TypeSpec>& type_specs() {
    static const std::vector<TypeSpec> specs = {
        {"pii.credit_card",
         credit_card,
         {{"Card number: {}\n", true},
          {"card={}\n", true},
          {"  \"card_number\": \"{}\",\n", true},
          {"{}\n"},
          {"{}"},
          {"{first} {last},{},09/28\n"},
          {"Please charge {} for the renewal.\n"},
          {"INFO payment authorized pan={} amount=129.99 currency=EUR\n", true},
          {"<CardNumber>{}</CardNumber>\n", true},
          {"| {first} {last} | {} | 09/28 |\n"},
          {"INSERT INTO payments (holder, pan) VALUES ('{first} {last}', '{}');\n", true},
          {"Visa/MC on file: {}. Expires 11/26.\n", true}}},
        {"pii.us_ssn",
         us_ssn,
         {{"SSN: {}\n", true},
          {"ssn={}\n", true},
          {"  \"ssn\": \"{}\",\n", true},
          {"Social Security Number {}\n", true},
          {"employee_ssn: {}\n", true},
          {"{}\n"},
          {"{}"},
          {"{first} {last},{},1984\n"},
          {"Applicant {first} {last} ({}) was approved.\n"},
          {"<td>{}</td>\n"}}},
        {"pii.us_itin",
         us_itin,
         {{"ITIN: {}\n", true},
          {"itin={}\n", true},
          {"Individual Taxpayer Identification Number {}\n", true},
          {"  \"itin\": \"{}\"\n", true},
          {"{}\n"},
          {"{first} {last} - {}\n"},
          {"{}"}}},
        {"pii.ca_sin",
         ca_sin,
         {{"SIN: {}\n", true},
          {"Social Insurance Number: {}\n", true},
          {"sin={}\n", true},
          {"NAS : {}\n", true},
          {"{}\n"},
          {"{first} {last}, {}, Toronto\n"},
          {"{}"}}},
        {"pii.in_aadhaar",
         in_aadhaar,
         {{"Aadhaar: {}\n", true},
          {"aadhaar_no={}\n", true},
          {"UID {}\n", true},
          {"Aadhaar number {} linked\n", true},
          {"{}\n"},
          {"{first} {last} | {}\n"},
          {"{}"}}},
        {"pii.phone",
         phone,
         {{"Phone: {}\n", true},
          {"tel={}\n", true},
          {"  \"phone\": \"{}\",\n", true},
          {"Mobile {}\n", true},
          {"Call me at {}.\n", true},
          {"fax: {}\n", true},
          {"{}\n"},
          {"{}"},
          {"{first} {last},{}\n"},
          {"Reach {first} on {} after 5pm.\n"},
          {"<td>{}</td>\n"}}},
        {"pii.iban",
         iban,
         {{"IBAN: {}\n", true},
          {"iban={}\n", true},
          {"  \"iban\": \"{}\",\n", true},
          {"{}\n"},
          {"{}"},
          {"Please transfer the deposit to {} by Friday.\n"},
          {"{first} {last};{};EUR\n"}}},
        {"pii.uk_nino",
         uk_nino,
         {{"NI number: {}\n", true},
          {"National Insurance No {}\n", true},
          {"nino={}\n", true},
          {"{}\n"},
          {"{first} {last}, {}\n"},
          {"{}"}}},
        {"pii.ipv4",
         ipv4,
         {{"Accepted publickey for deploy from {} port 52144 ssh2\n", true},
          {"client_ip={}\n", true},
          {"  \"remote_addr\": \"{}\",\n", true},
          {"server {}:8443;\n"},
          {"{} - - [12/Mar/2024:10:01:22 +0000] \"GET /index.html HTTP/1.1\" 200 512\n"},
          {"nameserver {}\n"},
          {"iptables -A INPUT -s {}/32 -j DROP\n"},
          {"{}"},
          {"{},{first},{last}\n"},
          {"ping {} timed out\n"}}},
        {"pii.ipv6",
         ipv6,
         {{"addr {}\n", true},
          {"inet6 {}/64 scope global\n"},
          {"listen [{}]:443;\n"},
          {"  \"ip\": \"{}\",\n", true},
          {"curl http://[{}]:8080/healthz\n"},
          {"{}\n"},
          {"{}"},
          {"client {} connected\n", true}}},
        {"pii.email",
         email,
         {{"From: {first} {last} <{}>\n"},
          {"email={}\n"},
          {"  \"email\": \"{}\",\n"},
          {"{};{first};{last}\n"},
          {"mailto:{}\n"},
          {"Reply-To: {}\n"},
          {"<a href=\"mailto:{}\">{first}</a>\n"},
          {"user {} signed in from web\n"},
          {"{}"},
          {"Please write to {}.\n"}}},
        {"pii.date_of_birth",
         date_of_birth,
         {{"DOB: {}\n", true},
          {"Date of birth: {}\n", true},
          {"date_of_birth={}\n", true},
          {"  \"dob\": \"{}\",\n", true},
          {"born on {}\n", true},
          {"Birthdate: {}\n", true},
          {"birth_date: {}\n", true},
          {"Geburtsdatum: {}\n", true},
          {"{first} {last} (born {})\n", true},
          {"Fecha de nacimiento: {}\n", true}}},
        {"pii.passport",
         passport,
         {{"Passport No: {}\n", true},
          {"passport_number={}\n", true},
          {"  \"passport\": \"{}\",\n", true},
          {"Passport number {} expires 2031\n", true},
          {"Reisepass-Nr.: {}\n", true},
          {"Pasaporte: {}\n", true},
          {"{first} {last}, passport {}\n", true}}},
        {"secret.aws_access_key",
         aws_access_key,
         token_templates(),
         {"aws_access_key_id", "access_key_id"}},
        {"secret.aws_secret_key",
         aws_secret_key,
         assignment_templates(),
         {"aws_secret_access_key", "aws_secret_key", "secret_access_key"}},
        {"secret.github_token", github_token, token_templates(), {"github_token", "gh_token", "github_pat"}},
        {"secret.gitlab_token", gitlab_token, token_templates(), {"gitlab_token", "private_token", "ci_token"}},
        {"secret.slack_token", slack_token, token_templates(), {"slack_bot_token", "slack_token"}},
        {"secret.slack_webhook", slack_webhook, token_templates(), {"slack_webhook_url", "webhook"}},
        {"secret.stripe_key", stripe_key, token_templates(), {"stripe_secret_key", "stripe_api_key"}},
        {"secret.google_api_key", google_api_key, token_templates(), {"google_maps_api_key", "firebase_api_key"}},
        {"secret.gcp_service_account",
         gcp_service_account,
         {{"{}\n"}, {"{}"}, {"credentials = {}\n"}, {"cat > key.json <<'EOF'\n{}\nEOF\n"}}},
        {"secret.openai_key", openai_key, token_templates(), {"openai_api_key", "openai_key"}},
        {"secret.anthropic_key", anthropic_key, token_templates(), {"anthropic_api_key", "claude_key"}},
        {"secret.npm_token",
         npm_token,
         [] {
             auto t = token_templates();
             t.push_back({"//registry.npmjs.org/:_authToken={}\n"});
             return t;
         }(),
         {"npm_token", "npm_auth_token"}},
        {"secret.pypi_token", pypi_token, token_templates(), {"pypi_token", "twine_password"}},
        {"secret.twilio_key", twilio_key, token_templates(), {"twilio_api_key", "twilio_key_sid"}},
        {"secret.sendgrid_key", sendgrid_key, token_templates(), {"sendgrid_api_key", "sendgrid_key"}},
        {"secret.private_key",
         private_key,
         {{"{}\n"},
          {"{}"},
          {"key:\n{}\n"},
          {"Here's the deploy key:\n\n{}\n\nThanks!\n"},
          {"cat > ~/.ssh/id_deploy <<EOF\n{}\nEOF\n"}}},
        {"secret.jwt", jwt, token_templates(), {"access_token", "id_token", "jwt"}},
        {"secret.db_url_password",
         db_url,
         {{"DATABASE_URL={}\n"},
          {"  url: \"{}\"\n"},
          {"  \"connectionString\": \"{}\",\n"},
          {"engine = create_engine('{}')\n"},
          {"{}\n"},
          {"{}"},
          {"2024-04-02 09:14:55 INFO connecting to {}\n"}}},
        {"secret.generic_password",
         nullptr,  // written by generic_password_record()
         {},
         {}},
        {"secret.huggingface_token", huggingface_token, token_templates(), {"hf_token", "huggingface_hub_token"}},
        {"secret.digitalocean_token", digitalocean_token, token_templates(), {"digitalocean_token", "do_token"}},
        {"secret.azure_storage_key",
         azure_storage_key,
         {{"AZURE_STORAGE_CONNECTION_STRING={}\n"},
          {"  \"AzureWebJobsStorage\": \"{}\",\n"},
          {"connection_string = \"{}\"\n"},
          {"{}\n"},
          {"{}"}}},
    };
    return specs;
}

// --- Hard negatives -----------------------------------------------------------------------------

struct NegativeSpec {
    std::string_view kind;
    std::string (*make)(Random&);
    std::vector<std::string_view> templates;
    // Carries no identifying word: written where none is near, so a bare
    // number stays a bare number.
    bool stands_alone = false;
};

std::string neg_card_luhn(Random& r) { return format_card(r, luhn_break(card_number(r))); }

std::string neg_card_no_issuer(Random& r) {
    return format_card(r, luhn_complete(std::string(1, r.pick(std::array<char, 4>{'1', '7', '8', '9'})) + r.digits(14)));
}

std::string neg_ssn_rules(Random& r) {
    std::string d = ssn_digits(r);
    switch (r.below(5)) {
        case 0: d.replace(0, 3, "000"); break;
        case 1: d.replace(0, 3, "666"); break;
        case 2: d.replace(0, 3, "9" + r.digits(2)); d.replace(3, 2, std::to_string(r.between(10, 49))); break;
        case 3: d.replace(3, 2, "00"); break;
        default: d.replace(5, 4, "0000"); break;
    }
    return grouped(d, {3, 2, 4}, r.chance(70) ? "-" : " ");
}

std::string neg_bare_nine(Random& r) { return ssn_digits(r); }

std::string neg_sin_rules(Random& r) {
    const std::string d = r.chance(50) ? luhn_break(sin_digits(r)) : luhn_complete(std::string(1, '8') + r.digits(7));
    return grouped(d, {3, 3, 3}, r.chance(60) ? " " : "-");
}

std::string neg_aadhaar_verhoeff(Random& r) {
    const std::string d = r.chance(70) ? verhoeff_break(aadhaar_digits(r)) : verhoeff_complete("1" + r.digits(10));
    return grouped(d, {4, 4, 4}, r.chance(75) ? " " : "-");
}

std::string neg_bare_twelve(Random& r) { return aadhaar_digits(r); }

std::string neg_iban_mod97(Random& r) {
    std::string compact = iban_compact(r);
    char& c = compact[compact.size() - 2];
    c = c == '9' ? '0' : static_cast<char>(c + 1);
    return r.chance(50) ? in_fours(compact) : compact;
}

std::string neg_nino_rules(Random& r) {
    static constexpr std::string_view prefixes[] = {"DA", "FE", "IR", "QX", "UK", "VB", "AO", "GB", "NK", "TN", "BG"};
    if (r.chance(30)) return nino_compact(r).substr(0, 8) + r.text(1, "EFGHJKXYZ");
    return cat({r.pick(prefixes), r.digits(6), r.text(1, "ABCD")});
}

std::string neg_phone_invalid(Random& r) {
    // Area codes and exchanges no NANP number has (0xx, 1xx).
    const std::string d = cat({std::to_string(r.between(0, 1)), r.digits(2), std::to_string(r.between(2, 9)), r.digits(6)});
    return cat({d.substr(0, 3), "-", d.substr(3, 3), "-", d.substr(6)});
}

std::string neg_bare_ten(Random& r) { return nanp_number(r); }

std::string neg_timestamp(Random& r) {
    char buffer[64];
    const int y = r.between(1999, 2030), mo = r.between(1, 12), d = r.between(1, 28);
    const int h = r.between(0, 23), mi = r.between(0, 59), s = r.between(0, 59);
    switch (r.below(8)) {
        case 0: std::snprintf(buffer, sizeof buffer, "%d-%02d-%02dT%02d:%02d:%02dZ", y, mo, d, h, mi, s); break;
        case 1: std::snprintf(buffer, sizeof buffer, "%d-%02d-%02d %02d:%02d:%02d.%03d", y, mo, d, h, mi, s, r.between(0, 999)); break;
        case 2: std::snprintf(buffer, sizeof buffer, "%02d/%02d/%d %02d:%02d", d, mo, y, h, mi); break;
        case 3: std::snprintf(buffer, sizeof buffer, "%d%02d%02d%02d%02d%02d", y, mo, d, h, mi, s); break;
        case 4: std::snprintf(buffer, sizeof buffer, "17%08d", r.between(0, 99999999)); break;
        case 5: std::snprintf(buffer, sizeof buffer, "17%08d%03d", r.between(0, 99999999), r.between(0, 999)); break;
        case 6: std::snprintf(buffer, sizeof buffer, "%d.%02d.%02d %02d:%02d", y, mo, d, h, mi); break;
        default: std::snprintf(buffer, sizeof buffer, "%d-%02d-%02dT%02d:%02d:%02d.%06d+02:00", y, mo, d, h, mi, s, r.between(0, 999999)); break;
    }
    return buffer;
}

std::string neg_order_number(Random& r) {
    switch (r.below(6)) {
        case 0: return cat({"ORD-", std::to_string(r.between(2019, 2025)), "-", r.digits(6)});
        case 1: return cat({"#", std::to_string(r.between(100000, 999999))});
        case 2: return cat({"INV-", r.digits(8)});
        case 3: return cat({"1Z", r.text(6, "0123456789ABCDEFGHJKLMNPRSTUVWXYZ"), r.digits(10)});
        case 4: return cat({"PO", r.digits(10)});
        default: return cat({"A", r.digits(3), "-", r.digits(4), "-", r.digits(3)});
    }
}

std::string neg_uuid(Random& r) {
    return cat({r.text(8, hex_lower), "-", r.text(4, hex_lower), "-4", r.text(3, hex_lower), "-a", r.text(3, hex_lower), "-",
                r.text(12, hex_lower)});
}

std::string neg_git_sha(Random& r) { return r.text(40, hex_lower); }
std::string neg_sha256(Random& r) { return r.text(64, hex_lower); }
std::string neg_base64_blob(Random& r) { return base64(r.bytes(static_cast<std::size_t>(r.between(48, 300)))); }

std::string neg_version(Random& r) {
    return cat({std::to_string(r.between(1, 30)), ".", std::to_string(r.between(0, 20)), ".",
                std::to_string(r.between(0, 255)), ".", std::to_string(r.between(0, 255))});
}

std::string neg_oid(Random& r) {
    static constexpr std::string_view oids[] = {"2.5.4.3", "2.5.4.10", "2.5.29.17", "2.5.29.19", "2.5.29.15",
                                                "1.3.6.1", "2.5.4.6",  "2.5.29.37", "2.5.29.14", "2.5.4.11"};
    if (r.chance(50)) return std::string(r.pick(oids));
    return cat({"1.3.6.1.4.1.", std::to_string(r.between(100, 60000)), ".", std::to_string(r.between(1, 30))});
}

std::string neg_section(Random& r) {
    return cat({std::to_string(r.between(11, 33)), ".", std::to_string(r.between(1, 12)), ".",
                std::to_string(r.between(1, 9)), ".", std::to_string(r.between(1, 9))});
}

std::string neg_ipv6_lookalike(Random& r) {
    switch (r.below(5)) {
        case 0: return cat({"std::", r.pick(std::array<std::string_view, 3>{"vector", "string", "map"})});
        case 1: return cat({r.digits(2), ":", r.digits(2), ":", r.digits(2)});
        case 2: {
            std::string mac = r.text(2, hex_lower);
            for (int i = 0; i < 5; ++i) mac += ":" + r.text(2, hex_lower);
            return mac;
        }
        case 3: return "crate::io::Result";
        default: return cat({"Foo::Bar::", r.pick(plain_words)});
    }
}

std::string neg_email_lookalike(Random& r) {
    switch (r.below(7)) {
        case 0: return cat({"icon@", std::to_string(r.between(2, 3)), "x.png"});
        case 1: return cat({"git@github.com:", r.pick(domain_words), "/", r.pick(plain_words), ".git"});
        case 2: return cat({"@babel/core@7.", std::to_string(r.between(10, 24)), ".", std::to_string(r.between(0, 9))});
        case 3: return cat({r.pick(plain_words), "@localhost"});
        case 4: return cat({"nginx@sha256:", r.text(64, hex_lower)});
        case 5: return cat({"lodash@4.17.", std::to_string(r.between(10, 21))});
        default: return cat({"postgresql@", std::to_string(r.between(12, 16)), "-main.service"});
    }
}

std::string neg_not_birth_date(Random& r) { return birth_date(r); }

std::string neg_passport_lookalike(Random& r) {
    static constexpr std::string_view values[] = {"required", "REQUIRED", "pending", "12345", "AAAAAAAAA", "111111111",
                                                  "photo"};
    return std::string(r.pick(values));
}

std::string neg_github_lookalike(Random& r) {
    switch (r.below(4)) {
        case 0: return cat({"gh", "p", r.text(36, alnum_chars)});        // no underscore
        case 1: return cat({"gh", "p_", r.text(30, alnum_chars)});       // too short
        case 2: return cat({"gh", "p_", std::string(36, 'x')});          // placeholder
        default: return cat({"gh", "x_", r.text(36, alnum_chars)});      // no such kind
    }
}

std::string neg_aws_lookalike(Random& r) {
    switch (r.below(3)) {
        case 0: return cat({"AK", "IA", r.text(static_cast<std::size_t>(r.between(8, 14)), base32_upper)});
        case 1: return cat({"AK", "IA", r.text(16, "abcdefghijklmnop")});
        default: return cat({"AK", "IAEXAMPLE", r.text(11, "abcdefghij")});
    }
}

std::string neg_slack_lookalike(Random& r) {
    switch (r.below(3)) {
        case 0: return cat({"xo", "xz-", r.digits(12), "-", r.digits(13), "-", r.text(24, alnum_chars)});
        case 1: return cat({"xo", "xb-", r.digits(6), "-short"});
        default: return cat({"xo", "xb-", r.digits(12), "-", r.digits(13), "-", std::string(24, 'x')});
    }
}

std::string neg_token_lookalike(Random& r) {
    switch (r.below(7)) {
        case 0: return cat({"sk", "_live_", r.text(12, alnum_chars)});
        case 1: return cat({"pk", "_live_", r.text(24, alnum_chars)});
        case 2: return cat({"AI", "za", r.text(20, alnum_chars)});
        case 3: return cat({"np", "m_", "install_dependencies_from_the_lockfile"});
        case 4: return cat({"S", "G.", "example"});
        case 5: return cat({"gl", "pat-", r.text(12, alnum_chars)});
        default: return cat({"h", "f_", std::string(34, 'a')});
    }
}

std::string neg_jwt_lookalike(Random& r) {
    if (r.chance(50)) return "eyJ" + r.text(60, alnum_chars);
    const std::string header = R"({"typ":"JWT","kid":"k1"})";
    return base64url(header) + "." + base64url(R"({"sub":"42"})") + "." + base64url(r.bytes(32));
}

std::string neg_key_block(Random& r) {
    switch (r.below(4)) {
        case 0: return pem("PUBLIC KEY", r.bytes(294), "\n");
        case 1: return pem("CERTIFICATE", r.bytes(700), "\n");
        case 2: return "-----BEGIN RSA PRIVATE KEY-----\n...\n-----END RSA PRIVATE KEY-----";
        default: return "-----BEGIN OPENSSH PRIVATE KEY-----\n<paste your key here>\n-----END OPENSSH PRIVATE KEY-----";
    }
}

std::string neg_weak_password(Random& r) {
    static constexpr std::string_view values[] = {
        "changeme", "${DB_PASSWORD}", "get_password()", "os.environ['DB_PASSWORD']", "<your-password>",
        "********", "None", "null", "{{ .Values.db.password }}", "config.db.password", "%(password)s",
        "password", "hunter2", "admin", "string", "process.env.API_TOKEN", "''", "\"\"", "secret_value_here",
        "$PASSWORD", "12345678", "true", "xxxxxxxxxxxx", "REPLACE_ME"};
    return std::string(r.pick(values));
}

std::string neg_db_url(Random& r) {
    static constexpr std::string_view hosts[] = {"db.internal", "localhost", "orders-db.svc"};
    switch (r.below(4)) {
        case 0: return cat({"postgres://app@", r.pick(hosts), ":5432/orders"});
        case 1: return cat({"postgres://app:${DB_PASSWORD}@", r.pick(hosts), "/orders"});
        case 2: return cat({"mysql://root:<password>@", r.pick(hosts), "/shop"});
        default: return cat({"redis://", r.pick(hosts), ":6379/0"});
    }
}

std::string neg_password_reference(Random& r) {
    static constexpr std::string_view values[] = {"secretKeyRef", "${DB_PASSWORD}", "{{ db_password }}", "",
                                                  "$(cat /run/secrets/db)", "%DB_PASSWORD%", "********"};
    return std::string(r.pick(values));
}

std::string neg_isbn_price(Random& r) {
    switch (r.below(3)) {
        case 0: return cat({"978-", r.digits(1), "-", r.digits(3), "-", r.digits(5), "-", r.digits(1)});
        case 1: return cat({"$", std::to_string(r.between(1, 99)), ",", r.digits(3), ".", r.digits(2)});
        default: return cat({"978 ", r.digits(1), " ", r.digits(3), " ", r.digits(5), " ", r.digits(1)});
    }
}

const std::vector<NegativeSpec>& negative_specs() {
    static const std::vector<NegativeSpec> specs = {
        {"neg.card_luhn", neg_card_luhn, {"Card number: {}\n", "pan={}\n", "{first} {last},{},09/28\n", "{}\n"}},
        {"neg.card_no_issuer", neg_card_no_issuer, {"card: {}\n", "ref {}\n", "{}\n"}},
        {"neg.ssn_rules", neg_ssn_rules, {"SSN: {}\n", "ssn={}\n", "{first} {last},{}\n", "{}\n"}},
        {"neg.bare_nine_digits", neg_bare_nine,
         {"order_id={}\n", "Ticket {} closed\n", "  \"account_number\": {},\n", "{},{first},{last}\n"}, true},
        {"neg.sin_rules", neg_sin_rules, {"SIN: {}\n", "Social Insurance Number {}\n", "{}\n"}},
        {"neg.aadhaar_verhoeff", neg_aadhaar_verhoeff, {"Aadhaar: {}\n", "UID {}\n", "{}\n"}},
        {"neg.bare_twelve_digits", neg_bare_twelve, {"invoice {}\n", "  \"trace\": {},\n", "{}\n"}, true},
        {"neg.iban_mod97", neg_iban_mod97, {"IBAN: {}\n", "iban={}\n", "{}\n"}},
        {"neg.nino_rules", neg_nino_rules, {"NI number: {}\n", "nino={}\n", "{}\n"}},
        {"neg.phone_invalid", neg_phone_invalid, {"Phone: {}\n", "tel={}\n", "{}\n"}},
        {"neg.bare_ten_digits", neg_bare_ten, {"order {}\n", "  \"build\": {},\n", "ref={}\n"}, true},
        {"neg.timestamp", neg_timestamp,
         {"created_at={}\n", "[{}] job finished\n", "  \"ts\": \"{}\",\n", "Last modified: {}\n", "{}\n"}, true},
        {"neg.order_number", neg_order_number, {"Order {} shipped\n", "order_id: {}\n", "{}\n"}, true},
        {"neg.uuid", neg_uuid, {"  \"id\": \"{}\",\n", "request_id={}\n", "{}\n"}, true},
        {"neg.git_sha", neg_git_sha, {"commit {}\n", "  rev: {}\n", "{}\n"}, true},
        {"neg.sha256", neg_sha256, {"sha256:{}\n", "  \"checksum\": \"{}\"\n", "{}  release.tar.gz\n"}, true},
        {"neg.base64_blob", neg_base64_blob, {"  \"data\": \"{}\"\n", "payload={}\n", "{}\n"}, true},
        {"neg.version", neg_version,
         {"version {}\n", "Version: {}\n", "  \"version\": \"{}\",\n", "[assembly: AssemblyVersion(\"{}\")]\n",
          "FileVersion {}\n", "pip install pkg=={}\n", "\"appVersion\": \"{}\"\n", "ProductVersion={}\n"},
         true},
        {"neg.oid", neg_oid, {"OID {}\n", "oid={}\n", "Object Identifier: {}\n", "    OBJECT            :{}\n"}, true},
        {"neg.section_number", neg_section, {"see section {}\n", "[{}] Template argument deduction\n", "§{}\n"}, true},
        {"neg.ipv6_lookalike", neg_ipv6_lookalike, {"{}\n", "at {} the job ran\n", "mac {}\n"}, true},
        {"neg.email_lookalike", neg_email_lookalike, {"{}\n", "see {}\n", "  \"{}\": true\n"}, true},
        {"neg.date_without_birth", neg_not_birth_date,
         {"created: {}\n", "Adobe Reader {} update\n", "Invoice date: {}\n", "expires {}\n"}, true},
        {"neg.passport_lookalike", neg_passport_lookalike, {"passport: {}\n", "Passport photo {}\n"}},
        {"neg.github_lookalike", neg_github_lookalike, {"value {}\n", "{}\n", "  - {}\n"}},
        {"neg.aws_lookalike", neg_aws_lookalike, {"aws_access_key_id = {}\n", "{}\n"}},
        {"neg.slack_lookalike", neg_slack_lookalike, {"channel {}\n", "{}\n"}},
        {"neg.token_lookalike", neg_token_lookalike, {"key: {}\n", "{}\n"}},
        {"neg.jwt_lookalike", neg_jwt_lookalike, {"Authorization: Bearer {}\n", "{}\n"}},
        {"neg.key_block", neg_key_block, {"{}\n", "key: |\n{}\n"}},
        {"neg.weak_password", neg_weak_password,
         {"password={}\n", "  password: {}\n", "DB_PASSWORD={}\n", "api_key = {}\n", "token: {}\n", "secret = {}\n",
          "PASSWORD_MIN_LENGTH = 12 # {}\n"}},
        {"neg.db_url", neg_db_url, {"DATABASE_URL={}\n", "  url: {}\n", "{}\n"}},
        {"neg.password_reference", neg_password_reference,
         {"        - name: DB_PASSWORD\n          valueFrom: {}\n", "<password>{}</password>\n",
          "    <add key=\"DbPassword\" value=\"{}\" />\n", "mysql --user=admin --password {} shop\n",
          "Password={};\n"}},
        {"neg.isbn_price", neg_isbn_price, {"ISBN {}\n", "total: {}\n", "{}\n"}, true},
    };
    return specs;
}

// --- Documents ----------------------------------------------------------------------------------

class DocumentBuilder {
public:
    DocumentBuilder(std::string name, std::string eol) : eol_(std::move(eol)) { doc_.name = std::move(name); }

    void text(std::string_view t) {
        for (char c : t) {
            if (c == '\n') {
                doc_.text += eol_;
            } else {
                doc_.text.push_back(c);
            }
        }
    }
    void positive(std::string_view type, std::string_view value) {
        doc_.positives.push_back(Label{std::string(type), doc_.text.size(), value.size()});
        doc_.text += value;
    }
    void negative(std::string_view kind, std::string_view value) {
        doc_.negatives.push_back(Label{std::string(kind), doc_.text.size(), value.size()});
        doc_.text += value;
    }
    [[nodiscard]] std::string_view tail(std::size_t n) const {
        const std::string_view t = doc_.text;
        return t.substr(t.size() > n ? t.size() - n : 0);
    }
    [[nodiscard]] bool empty() const { return doc_.text.empty(); }
    [[nodiscard]] bool ends_line() const { return doc_.text.empty() || doc_.text.back() == '\n'; }
    void end_line() {
        if (!ends_line()) doc_.text += eol_;
    }
    Document finish() { return std::move(doc_); }

private:
    std::string eol_;
    Document doc_;
};

std::string camel(std::string_view snake) {
    std::string out;
    bool up = false;
    for (char c : snake) {
        if (c == '_') {
            up = true;
            continue;
        }
        out.push_back(up && c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c);
        up = false;
    }
    return out;
}

// Writes `tmpl` with `pieces` at "{}". Positive pieces are labelled with
// their type; with `negative_kind` set, the value is a planted lookalike.
void write_template(DocumentBuilder& b, Random& r, std::string_view tmpl, const Pieces& pieces, std::string_view key,
                    std::string_view negative_kind = {}) {
    std::size_t pos = 0;
    while (pos < tmpl.size()) {
        const std::size_t open = tmpl.find('{', pos);
        if (open == std::string_view::npos) {
            b.text(tmpl.substr(pos));
            break;
        }
        b.text(tmpl.substr(pos, open - pos));
        const std::size_t close = tmpl.find('}', open);
        const std::string_view name = close == std::string_view::npos ? "" : tmpl.substr(open + 1, close - open - 1);
        if (name.empty() && close == open + 1) {
            for (const Piece& p : pieces) {
                if (!negative_kind.empty()) {
                    b.negative(negative_kind, p.text);
                } else if (p.label.empty()) {
                    b.text(p.text);
                } else {
                    b.positive(p.label, p.text);
                }
            }
        } else if (name == "first") {
            b.text(r.pick(first_names));
        } else if (name == "last") {
            b.text(r.pick(last_names));
        } else if (name == "word") {
            b.text(r.pick(plain_words));
        } else if (name == "n") {
            b.text(std::to_string(r.between(1, 999)));
        } else if (name == "KEY") {
            b.text(upper(key));
        } else if (name == "key") {
            b.text(key);
        } else if (name == "keyCamel") {
            b.text(camel(key));
        } else if (name == "key-dash") {
            std::string dashed(key);
            std::replace(dashed.begin(), dashed.end(), '_', '-');
            b.text(dashed);
        } else {
            b.text("{");
            pos = open + 1;
            continue;
        }
        pos = close + 1;
    }
}

// Generic password-like assignments: the keyword names the value.
void generic_password_record(DocumentBuilder& b, Random& r) {
    static constexpr std::string_view password_keys[] = {"password", "db_password", "passwd", "admin_password",
                                                         "passphrase", "smtp_password", "pwd", "mysql_root_password"};
    static constexpr std::string_view token_keys[] = {"api_key", "apikey", "access_token", "auth_token", "secret",
                                                      "client_secret", "secret_key", "app_secret", "token"};
    const bool password = r.chance(60);
    const std::string_view key = password ? r.pick(password_keys) : r.pick(token_keys);
    std::string value;
    bool spaces = false;
    if (password && r.chance(12)) {
        // A passphrase: only quoted forms can hold its spaces.
        for (int i = 0, n = r.between(4, 5); i < n; ++i) value += std::string(i ? " " : "") + std::string(r.pick(passphrase_words));
        if (r.chance(50)) value += " " + std::to_string(r.between(10, 99));
        spaces = true;
    } else if (password) {
        value = strong_password(r);
    } else if (r.chance(50)) {
        value = r.text(static_cast<std::size_t>(r.pick(std::array<int, 3>{32, 40, 64})), hex_lower);
    } else {
        value = r.text(static_cast<std::size_t>(r.between(20, 48)), alnum_chars);
    }
    static const std::vector<Template> more = {
        {"<{keyCamel}>{}</{keyCamel}>\n"},
        {"    <add key=\"{keyCamel}\" value=\"{}\" />\n"},
        {"        - name: {KEY}\n          value: \"{}\"\n"},
        {"Server=db01.internal;Database=shop;User Id=sa;{keyCamel}={};\n"},
        {"mysql --user=admin --{key-dash} {} shop < dump.sql\n"},
        {"spring.datasource.{key}={}\n"},
        {"    {keyCamel}: \"{}\",\n"},
    };
    std::string_view tmpl;
    do {
        tmpl = r.chance(30) ? r.pick(more).text : r.pick(assignment_templates()).text;
    } while (spaces && tmpl.find("\"{}\"") == std::string_view::npos && tmpl.find("'{}'") == std::string_view::npos);
    write_template(b, r, tmpl, one("secret.generic_password", value), key);
}

void write_filler(DocumentBuilder& b, Random& r, std::size_t lines) {
    if (lines > 0) b.end_line();
    for (std::size_t i = 0; i < lines; ++i) {
        b.text(r.pick(filler_lines));
        b.text("\n");
    }
}

bool identifying_word_near(std::string_view tail) {
    const std::string low = lowered(tail);
    for (std::string_view w : identifying_words) {
        for (std::size_t pos = low.find(w); pos != std::string::npos; pos = low.find(w, pos + 1)) {
            const bool left = pos == 0 || !std::isalnum(static_cast<unsigned char>(low[pos - 1]));
            const std::size_t end = pos + w.size();
            const bool right = end >= low.size() || !std::isalnum(static_cast<unsigned char>(low[end]));
            if (left && right) return true;
        }
    }
    return false;
}

std::string document_name(std::string_view kind, std::size_t index) {
    return cat({kind, "-", std::to_string(index), ".txt"});
}

}  // namespace

std::vector<std::string> corpus_types() {
    std::vector<std::string> out;
    for (const TypeSpec& spec : type_specs()) out.emplace_back(spec.id);
    return out;
}

Corpus generate_corpus(const CorpusOptions& options) {
    Random r(options.seed);
    Corpus corpus;

    // Positive records, one per value, shuffled across documents.
    struct Record {
        const TypeSpec* spec;
        std::size_t template_index;
    };
    std::vector<Record> records;
    for (const TypeSpec& spec : type_specs()) {
        const std::size_t templates = spec.make == nullptr ? 1 : spec.templates.size();
        for (std::size_t i = 0; i < options.positives_per_type; ++i) records.push_back({&spec, i % templates});
    }
    r.shuffle(records);

    auto write_record = [&](DocumentBuilder& b, const Record& rec) {
        if (rec.spec->make == nullptr) {
            generic_password_record(b, r);
            return;
        }
        // Values that name themselves also turn up in any delimited or
        // quoted field.
        static const std::vector<Template> wrappers = {
            {"{first}\t{last}\t{}\t{n}\n"}, {"{n}|{}|{word}\n"}, {"'{}'\n"}, {"({})\n"}, {"[{}]\n"},
            {"<input name=\"{word}\" value=\"{}\">\n"}, {"https://app.internal.dev/find?q={}&page=2\n"},
            {"`{}`\n"}, {"{word}: \"{}\"\n"}};
        static constexpr std::string_view keyword_named[] = {"pii.date_of_birth", "pii.passport", "secret.aws_secret_key",
                                                             "secret.gcp_service_account", "secret.private_key",
                                                             "secret.db_url_password", "secret.azure_storage_key"};
        const bool names_itself = std::find(std::begin(keyword_named), std::end(keyword_named), rec.spec->id) ==
                                  std::end(keyword_named);
        const Template& t = names_itself && r.chance(15) ? r.pick(wrappers) : rec.spec->templates[rec.template_index];
        // A bare number takes its meaning from its own label, not from the
        // record before it.
        if (t.context) {
            while (identifying_word_near(b.tail(160))) write_filler(b, r, 1);
        }
        const std::string_view key = rec.spec->keys.empty() ? std::string_view() : r.pick(rec.spec->keys);
        write_template(b, r, t.text, rec.spec->make(r, t.context), key);
    };

    std::size_t next = 0;
    for (std::size_t doc_index = 0; next < records.size(); ++doc_index) {
        DocumentBuilder b(document_name("mixed", doc_index), r.chance(75) ? "\n" : "\r\n");
        const std::size_t count = static_cast<std::size_t>(r.between(4, 24));
        if (r.chance(60)) write_filler(b, r, static_cast<std::size_t>(r.between(1, 3)));  // else a value opens the file
        for (std::size_t i = 0; i < count && next < records.size(); ++i) {
            b.end_line();
            write_record(b, records[next++]);
            if (i + 1 < count) write_filler(b, r, r.below(3));
        }
        if (r.chance(30)) write_filler(b, r, 1);  // else the last value may end the file
        corpus.documents.push_back(b.finish());
    }

    // Hard negatives. Lookalikes that must stand alone go in documents of
    // their own, kept clear of identifying words; the rest (an invalid SSN
    // after "SSN:") are written with their context.
    for (bool alone : {true, false}) {
        std::vector<std::pair<const NegativeSpec*, std::size_t>> planted;
        for (const NegativeSpec& spec : negative_specs()) {
            if (spec.stands_alone != alone) continue;
            for (std::size_t i = 0; i < options.negatives_per_kind; ++i) planted.emplace_back(&spec, i % spec.templates.size());
        }
        r.shuffle(planted);
        std::size_t k = 0;
        for (std::size_t doc_index = 0; k < planted.size(); ++doc_index) {
            DocumentBuilder b(document_name(alone ? "lookalike" : "invalid", doc_index), r.chance(75) ? "\n" : "\r\n");
            const std::size_t count = static_cast<std::size_t>(r.between(6, 30));
            for (std::size_t i = 0; i < count && k < planted.size(); ++i, ++k) {
                b.end_line();
                if (alone) {
                    while (identifying_word_near(b.tail(160))) write_filler(b, r, 1);
                }
                const NegativeSpec& spec = *planted[k].first;
                const std::string value = spec.make(r);
                write_template(b, r, spec.templates[planted[k].second], {Piece{value, ""}}, "", spec.kind);
                if (r.chance(50)) write_filler(b, r, 1);
            }
            corpus.documents.push_back(b.finish());
        }
    }
    return corpus;
}

}  // namespace airlock::corpus
