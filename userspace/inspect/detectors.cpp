#include "inspect/detectors.hpp"

#include <algorithm>
#include <array>
#include <vector>

#include "inspect/text.hpp"
#include "inspect/validators.hpp"

namespace airlock::inspect {
namespace {

constexpr std::size_t npos = std::string_view::npos;

// --- Small scanning helpers ---------------------------------------------------

template <class Pred>
std::size_t extend_while(std::string_view d, std::size_t pos, std::size_t limit, Pred pred) {
    limit = std::min(limit, d.size());
    while (pos < limit && pred(d[pos])) ++pos;
    return pos;
}

template <class Pred>
std::size_t retreat_while(std::string_view d, std::size_t pos, std::size_t floor, Pred pred) {
    while (pos > floor && pred(d[pos - 1])) --pos;
    return pos;
}

std::size_t back_by(std::size_t pos, std::size_t n) { return pos > n ? pos - n : 0; }

bool is_token_char(char c) { return is_base64url(c); }  // [A-Za-z0-9_-]
bool is_horizontal_space(char c) { return c == ' ' || c == '\t'; }
bool is_quote(char c) { return c == '"' || c == '\'' || c == '`'; }

// The random part of a token must look random: keeps placeholders such as
// ghp_xxxxxxxx... and sk_live_0000... out.
bool random_enough(std::string_view body, double min_bits) { return shannon_entropy(body) >= min_bits; }

// A token whose fixed-width head starts it, optionally continuing over `body`
// bytes for up to `max_extra` more; the bytes on either side must not be ones
// that could continue it (else it is part of a longer string).
std::optional<Located> fixed_token(std::string_view d, HeadMatch h, bool (*body)(char), std::size_t max_extra,
                                   bool (*joins)(char)) {
    if (h.fixed_start == npos) return std::nullopt;
    const std::size_t start = h.fixed_start;
    if (start > 0 && joins(d[start - 1])) return std::nullopt;
    const std::size_t end = extend_while(d, h.end, h.end + max_extra, body);
    if (end < d.size() && joins(d[end])) return std::nullopt;
    return Located{start, end, 0};
}

// The maximal run of token bytes around the head's last byte.
std::pair<std::size_t, std::size_t> token_run(std::string_view d, std::size_t head_end, std::size_t max_back,
                                              std::size_t max_forward) {
    const std::size_t start = retreat_while(d, head_end, back_by(head_end, max_back), is_token_char);
    const std::size_t end = extend_while(d, head_end, head_end + max_forward, is_token_char);
    return {start, end};
}

// After a keyword head ("password =", "secret:"): skips blanks, the rest of a
// two-byte operator (":=" and "=>" also end a head at their first byte) and
// one opening quote; returns the position of the value and the quote (0
// when none).
std::pair<std::size_t, char> skip_to_value(std::string_view d, std::size_t pos, std::size_t max_skip) {
    const std::size_t limit = pos + max_skip;
    pos = extend_while(d, pos, limit, [](char c) { return is_horizontal_space(c) || c == '=' || c == '>'; });
    char quote = 0;
    if (pos < d.size() && is_quote(d[pos])) {
        quote = d[pos];
        ++pos;
    }
    return {pos, quote};
}

// After a keyword head (`password`, `aws_secret`): the rest of the
// identifier (`_hash`, `_access_key`), a closing quote, blanks and an
// assignment operator (`=`, `:`, `:=`, `=>`). Returns the position after the
// operator, or npos when the keyword is not being assigned. Also the other
// ways configuration names a value: an XML element (<password>v</...>), a
// command-line option (--password v), and a name followed by its value
// (key="Password" value="v" in .NET settings; "- name: DB_PASSWORD" then
// "value: v" in a Kubernetes env list). Reads up to 48 bytes before `pos`.
std::size_t after_assignment(std::string_view d, std::size_t pos, std::size_t max_suffix) {
    auto name_char = [](char c) { return is_word(c) || c == '-'; };
    const std::size_t name_start = retreat_while(d, pos, back_by(pos, 48), name_char);
    pos = extend_while(d, pos, pos + max_suffix, name_char);
    bool quoted = false;
    if (pos < d.size() && (d[pos] == '"' || d[pos] == '\'')) {
        ++pos;
        quoted = true;
        if (pos < d.size() && d[pos] == ']') ++pos;  // an index key: $config['password'] = ..., ENV["TOKEN"] = ...
    }
    if (pos + 1 >= d.size()) return npos;
    if (!quoted && name_start > 0 && d[name_start - 1] == '<' && d[pos] == '>') return pos + 1;
    const bool option = d.substr(name_start).starts_with("--") && (name_start == 0 || is_space(d[name_start - 1]));
    if (!quoted && option && d[pos] == ' ' && !is_space(d[pos + 1]) && d[pos + 1] != '-') return pos + 1;
    pos = extend_while(d, pos, pos + 3, is_horizontal_space);
    if (pos + 1 >= d.size()) return npos;
    // Not a comparison (token == x) nor a C++ scope (AsmToken::Kind).
    if (d[pos] == '=' && d[pos + 1] != '=') return pos + 1;  // skip_to_value() takes the '>' of "=>"
    if (d[pos] == ':' && d[pos + 1] != ':') return pos + 1;  // and the '=' of ":="
    std::size_t next = pos;
    if (d.substr(next).starts_with("\r\n")) {
        next += 2;
    } else if (d[next] == '\n') {
        ++next;
    }
    if (next != pos) next = extend_while(d, next, next + 32, is_horizontal_space);
    if ((next != pos || quoted) && next + 5 < d.size() && iequals(d.substr(next, 5), "value")) {
        next = extend_while(d, next + 5, next + 8, is_horizontal_space);
        if (next < d.size() && (d[next] == '=' || d[next] == ':')) return next + 1;
    }
    return npos;
}

// --- Locators, one per vectorscan detector (and email) -----------------------------

bool is_email_local(char c) { return is_alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-'; }
bool is_domain_char(char c) { return is_alnum(c) || c == '.' || c == '-'; }

std::optional<Located> locate_email(std::string_view d, HeadMatch h) {
    // The fast path reports '@' as a head "x@y": one local-part byte, '@',
    // one domain byte.
    if (h.end < 2 || h.end > d.size()) return std::nullopt;
    const std::size_t at = h.end - 2;
    if (d[at] != '@') return std::nullopt;
    const std::size_t start = retreat_while(d, at, back_by(at, 64), is_email_local);
    if (start > 0 && is_email_local(d[start - 1])) return std::nullopt;  // local part over 64 bytes
    const std::string_view local = d.substr(start, at - start);
    if (local.empty() || local.front() == '.' || local.back() == '.' || local.find("..") != npos) return std::nullopt;
    // scheme://user@host and scheme://user:password@host: the userinfo of a
    // URL (a database login, a git remote), not a mailbox.
    std::size_t userinfo_start = start;
    if (userinfo_start > 0 && d[userinfo_start - 1] == ':') {
        userinfo_start = retreat_while(d, userinfo_start - 1, back_by(userinfo_start - 1, 64), is_email_local);
    }
    if (userinfo_start >= 3 && d.substr(userinfo_start - 3, 3) == "://") return std::nullopt;
    const std::size_t scan_end = extend_while(d, at + 1, at + 1 + 253, is_domain_char);
    if (scan_end < d.size() && is_domain_char(d[scan_end])) return std::nullopt;  // domain over 253 bytes
    std::size_t end = scan_end;
    while (end > at + 1 && (d[end - 1] == '.' || d[end - 1] == '-')) --end;
    const std::string_view domain = d.substr(at + 1, end - at - 1);
    std::size_t labels = 0;
    std::string_view tld;
    for (std::size_t pos = 0; pos <= domain.size();) {
        std::size_t dot = domain.find('.', pos);
        if (dot == npos) dot = domain.size();
        const std::string_view label = domain.substr(pos, dot - pos);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') return std::nullopt;
        ++labels;
        tld = label;
        pos = dot + 1;
    }
    if (labels < 2 || tld.size() < 2 || tld.size() > 24) return std::nullopt;
    if (!std::all_of(tld.begin(), tld.end(), [](char c) { return is_alpha(c); })) return std::nullopt;
    // name@2x.png, logo@dark.svg: asset names, not addresses.
    // pg_dump@main.service: systemd template units.
    // (A static table: an initializer list of literals ran strlen on all
    // forty for every address.)
    static constexpr std::string_view file_extensions[] = {
        "png", "jpg",  "jpeg", "gif", "svg", "webp", "ico",  "bmp",     "css",    "js",    "mjs",    "ts",    "map",  "json",
        "html", "htm", "txt",  "md",  "py",  "rb",   "go",   "rs",      "java",   "pdf",   "zip",    "gz",    "tar",  "so",
        "lock", "service", "socket", "timer", "target", "mount", "automount", "slice", "scope", "swap", "path", "device"};
    for (std::string_view ext : file_extensions) {
        if (iequals(tld, ext)) return std::nullopt;
    }
    // git@github.com:org/repo.git is an scp-style remote, not an address.
    if (end < d.size() && d[end] == ':' && end + 1 < d.size() && !is_space(d[end + 1]) && !is_digit(d[end + 1])) {
        return std::nullopt;
    }
    return Located{start, end, 0};
}

bool starts_month(std::string_view d, std::size_t pos) {
    if (pos + 3 > d.size()) return false;
    char m[3] = {to_lower(d[pos]), to_lower(d[pos + 1]), to_lower(d[pos + 2])};
    static constexpr std::string_view months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                  "jul", "aug", "sep", "oct", "nov", "dec"};
    const std::string_view word(m, 3);
    return std::find(std::begin(months), std::end(months), word) != std::end(months);
}

// End of a date written the way people write dates of birth, starting at
// `pos`, or npos. birth_date_valid() then checks the calendar.
std::size_t date_end(std::string_view d, std::size_t pos) {
    auto digits = [&](std::size_t p, std::size_t min, std::size_t max) -> std::size_t {
        const std::size_t e = extend_while(d, p, p + max + 1, [](char c) { return is_digit(c); });
        return (e - p >= min && e - p <= max) ? e : npos;
    };
    auto month_word = [&](std::size_t p) -> std::size_t {
        if (!starts_month(d, p)) return npos;
        std::size_t e = extend_while(d, p, p + 9, [](char c) { return is_alpha(c); });
        if (e < d.size() && d[e] == '.') ++e;
        return e;
    };
    auto ordinal = [&](std::size_t p) -> std::size_t {
        if (p + 2 <= d.size()) {
            const std::string_view s = d.substr(p, 2);
            if (iequals(s, "st") || iequals(s, "nd") || iequals(s, "rd") || iequals(s, "th")) return p + 2;
        }
        return p;
    };
    auto blanks = [&](std::size_t p, bool comma) -> std::size_t {
        if (comma && p < d.size() && d[p] == ',') ++p;
        return extend_while(d, p, p + 2, [](char c) { return c == ' ' || c == '-'; });
    };
    if (pos >= d.size()) return npos;
    if (is_digit(d[pos])) {
        const std::size_t first = digits(pos, 1, 4);
        if (first == npos || first >= d.size()) return npos;
        const char sep = d[first];
        if ((sep == '/' || sep == '.' || sep == '-') && first + 1 < d.size() && is_alpha(d[first + 1])) {
            // "12-May-1980", "05/Apr/1996": the month spelled between the numbers.
            const std::size_t month = month_word(first + 1);
            if (month == npos || month >= d.size() || d[month] != sep) return npos;
            return digits(month + 1, 4, 4);
        }
        if (sep == '/' || sep == '.' || sep == '-') {
            const std::size_t second = digits(first + 1, 1, 2);
            if (second == npos || second >= d.size() || d[second] != sep) return npos;
            return digits(second + 1, 2, 4);
        }
        // "12 March 1980", "12th of March 1980"
        std::size_t p = blanks(ordinal(first), false);
        if (p + 3 <= d.size() && iequals(d.substr(p, 3), "of ")) p += 3;
        const std::size_t month = month_word(p);
        if (month == npos) return npos;
        return digits(blanks(month, true), 4, 4);
    }
    const std::size_t month = month_word(pos);
    if (month == npos) return npos;
    const std::size_t day = digits(blanks(month, false), 1, 2);
    if (day == npos) return npos;
    return digits(blanks(ordinal(day), true), 4, 4);
}

// Skips the little words people put between a label and its value
// ("DOB is", "passport number:", "born on the").
std::size_t skip_label_filler(std::string_view d, std::size_t pos, std::size_t max_skip,
                              std::initializer_list<std::string_view> words) {
    const std::size_t limit = std::min(d.size(), pos + max_skip);
    while (pos < limit) {
        if (is_space(d[pos]) || d[pos] == ':' || d[pos] == '=' || d[pos] == '-' || d[pos] == '#' || d[pos] == '.' ||
            d[pos] == '_' || is_quote(d[pos]) || d[pos] == '(' || d[pos] == ')') {
            ++pos;
            continue;
        }
        const std::size_t word_end = extend_while(d, pos, limit, [](char c) { return is_alpha(c); });
        if (word_end == pos || (word_end < d.size() && is_digit(d[word_end]))) break;
        const std::string_view word = d.substr(pos, word_end - pos);
        if (std::none_of(words.begin(), words.end(), [&](std::string_view w) { return iequals(word, w); })) break;
        pos = word_end;
    }
    return pos;
}

std::optional<Located> locate_date_of_birth(std::string_view d, HeadMatch h) {
    // The head is the keyword alone; whole-word checks happen here, where
    // they cost nothing (as \b in the database they slowed every byte).
    auto ends_with_keyword = [&](std::string_view keyword) {
        return h.end >= keyword.size() && iequals(d.substr(h.end - keyword.size(), keyword.size()), keyword);
    };
    for (std::string_view keyword : {"dob", "born"}) {
        if (ends_with_keyword(keyword)) {
            const std::size_t kw = h.end - keyword.size();
            if (kw > 0 && is_alpha(d[kw - 1])) return std::nullopt;  // adobe, stubborn
        }
    }
    std::size_t pos = h.end;
    for (std::string_view suffix : {"day", "date", "_date", "-date", " date", "datum"}) {
        if (pos + suffix.size() <= d.size() && iequals(d.substr(pos, suffix.size()), suffix)) {
            pos += suffix.size();
            break;
        }
    }
    if (pos < d.size() && is_alpha(d[pos])) return std::nullopt;  // dobby, birthplace
    const std::size_t start = skip_label_filler(d, pos, 16, {"is", "was", "on", "the", "of"});
    const std::size_t end = date_end(d, start);
    if (end == npos || (end < d.size() && is_alnum(d[end]))) return std::nullopt;
    if (!birth_date_valid(d.substr(start, end - start))) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_passport(std::string_view d, HeadMatch h) {
    // Keywords: passport, passeport, reisepass, pasaporte, passaporto (8-10 bytes).
    const std::size_t word_start = retreat_while(d, h.end, back_by(h.end, 10), [](char c) { return is_alpha(c); });
    if (h.end - word_start > 10) return std::nullopt;  // inside a longer word
    if (h.end < d.size() && is_lower(d[h.end]) && d[h.end] != 's') return std::nullopt;  // "passporting"
    const std::size_t start = skip_label_filler(
        d, h.end, 24, {"s", "no", "nr", "num", "number", "nummer", "numero", "id", "is", "details", "card"});
    const std::size_t end = extend_while(d, start, start + 10, [](char c) { return is_upper(c) || is_digit(c); });
    const std::size_t length = end - start;
    if (length < 6 || length > 9 || (end < d.size() && is_alnum(d[end]))) return std::nullopt;
    const std::string_view value = d.substr(start, length);
    // A digit tells a number from a word ("PENDING", "REQUIRED"). German
    // serials (C01X00T47) mix digits with consonants and may hold no digit
    // at all; their alphabet has no vowel, and every word has one.
    const bool has_digit = std::any_of(value.begin(), value.end(), [](char c) { return is_digit(c); });
    const bool has_vowel = value.find_first_of("AEIOU") != npos;
    if (!has_digit && has_vowel) return std::nullopt;
    if (std::all_of(value.begin(), value.end(), [&](char c) { return c == value.front(); })) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_aws_access_key(std::string_view d, HeadMatch h) {
    return fixed_token(d, h, is_alnum, 0, is_alnum);
}

std::optional<Located> locate_aws_secret_key(std::string_view d, HeadMatch h) {
    const std::size_t assigned = after_assignment(d, h.end, 24);
    if (assigned == npos) return std::nullopt;
    const auto [start, quote] = skip_to_value(d, assigned, 8);
    const std::size_t end = extend_while(d, start, start + 41, is_base64);
    if (end - start != 40 || (end < d.size() && (is_base64(d[end]) || d[end] == '='))) return std::nullopt;
    (void)quote;
    if (!random_enough(d.substr(start, 40), 3.5)) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_github_token(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_alnum, 0, is_word);
    if (!token) return std::nullopt;
    const std::size_t prefix = d.substr(token->start).starts_with("github_pat_") ? 11 : 4;
    if (!random_enough(d.substr(token->start + prefix, token->end - token->start - prefix), 3.0)) return std::nullopt;
    return token;
}

std::optional<Located> locate_gitlab_token(std::string_view d, HeadMatch h) {
    // Head: gl<kind>- and 20 token bytes.
    if (h.end < 21 || d[h.end - 21] != '-') return std::nullopt;
    const std::size_t dash = h.end - 21;
    std::size_t start = npos;
    for (std::string_view kind : {"glpat", "gldt", "glrt", "glptt", "glft", "glcbt", "glimt", "glsoat", "gloas",
                                  "glagent"}) {
        if (dash >= kind.size() && d.substr(dash - kind.size(), kind.size()) == kind) start = dash - kind.size();
    }
    if (start == npos || (start > 0 && is_word(d[start - 1]))) return std::nullopt;
    std::size_t end = extend_while(d, h.end, start + 120, [](char c) { return is_token_char(c) || c == '.'; });
    while (end > h.end && d[end - 1] == '.') --end;  // sentence punctuation
    if (end < d.size() && is_alnum(d[end])) return std::nullopt;
    if (!random_enough(d.substr(dash + 1, end - dash - 1), 3.0)) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_slack_token(std::string_view d, HeadMatch h) {
    const std::size_t start =
        retreat_while(d, h.end, back_by(h.end, 40), [](char c) { return is_alnum(c) || c == '-' || c == '.'; });
    const std::string_view from_start = d.substr(start);
    if (!from_start.starts_with("xox") && !from_start.starts_with("xapp-")) return std::nullopt;
    const std::size_t end = extend_while(d, h.end, start + 255, [](char c) { return is_alnum(c) || c == '-'; });
    if (end < d.size() && is_word(d[end])) return std::nullopt;
    const std::string_view token = d.substr(start, end - start);
    const std::size_t last_dash = token.rfind('-');
    const std::string_view secret_part = token.substr(last_dash + 1);
    if (secret_part.size() < 16 || !random_enough(secret_part, 3.0)) return std::nullopt;
    if (std::count(token.begin(), token.end(), '-') < 2) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_slack_webhook(std::string_view d, HeadMatch h) {
    const std::size_t scheme = d.substr(0, h.end).rfind("https://");
    if (scheme == npos || h.end - scheme > 48) return std::nullopt;
    if (scheme > 0 && is_word(d[scheme - 1])) return std::nullopt;
    std::size_t end = extend_while(d, h.end, h.end + 200, [](char c) { return is_token_char(c) || c == '/'; });
    while (end > h.end && d[end - 1] == '/') --end;
    const std::string_view path = d.substr(h.end, end - h.end);  // T.../B.../secret
    if (std::count(path.begin(), path.end(), '/') < 2) return std::nullopt;
    const std::string_view secret = path.substr(path.rfind('/') + 1);
    if (secret.size() < 20 || !std::all_of(secret.begin(), secret.end(), [](char c) { return is_alnum(c); })) {
        return std::nullopt;
    }
    return Located{scheme, end, 0};
}

std::optional<Located> locate_stripe_key(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_alnum, 227, is_word);
    if (!token || !random_enough(d.substr(token->start + 8, token->end - token->start - 8), 3.0)) return std::nullopt;
    return token;
}

std::optional<Located> locate_google_api_key(std::string_view d, HeadMatch h) {
    return fixed_token(d, h, is_token_char, 0, is_token_char);
}

// End of a JSON string whose content starts at `pos` (the closing quote's
// position), or npos.
std::size_t json_string_end(std::string_view d, std::size_t pos, std::size_t limit) {
    limit = std::min(limit, d.size());
    for (std::size_t i = pos; i < limit; ++i) {
        if (d[i] == '\\') {
            ++i;
        } else if (d[i] == '"') {
            return i;
        } else if (d[i] == '\n') {
            return npos;
        }
    }
    return npos;
}

std::optional<Located> locate_gcp_service_account(std::string_view d, HeadMatch h) {
    // The head is `"service_account"`, which must be the value of "type";
    // the secret is the "private_key" member of the same object, usually
    // after it.
    constexpr std::string_view head = "\"service_account\"";
    if (h.end < head.size()) return std::nullopt;
    std::size_t before = h.end - head.size();
    before = retreat_while(d, before, back_by(before, 4), [](char c) { return is_space(c); });
    if (before == 0 || d[before - 1] != ':') return std::nullopt;
    before = retreat_while(d, before - 1, back_by(before - 1, 4), [](char c) { return is_space(c); });
    if (before < 6 || d.substr(before - 6, 6) != "\"type\"") return std::nullopt;
    constexpr std::string_view member = "\"private_key\"";
    // The search stays inside this object: it stops at the neighbouring
    // "service_account" heads, which also keeps a file of repeated heads
    // linear to scan.
    const std::size_t head_start = h.end - head.size();
    std::size_t window_start = back_by(head_start, 8192);
    const std::size_t previous_head = d.substr(window_start, head_start - window_start).rfind(head);
    if (previous_head != npos) window_start += previous_head + head.size();
    std::size_t window_end = std::min(d.size(), h.end + 8192);
    const std::size_t next_head = d.substr(h.end, window_end - h.end).find(head);
    if (next_head != npos) window_end = h.end + next_head;
    // A service-account file is one flat object: its braces bound it, so the
    // members of a neighbouring account's object (after its own "type") are
    // not taken for this one's. No brace appears inside its string values.
    const std::size_t open = d.substr(window_start, head_start - window_start).rfind('{');
    if (open != npos) window_start += open;
    const std::size_t close = d.substr(h.end, window_end - h.end).find('}');
    if (close != npos) window_end = h.end + close;
    const std::string_view window = d.substr(window_start, window_end - window_start);
    for (std::size_t pos = window.find(member); pos != npos; pos = window.find(member, pos + 1)) {
        std::size_t p = window_start + pos + member.size();
        p = extend_while(d, p, p + 8, [](char c) { return is_space(c); });
        if (p >= d.size() || d[p] != ':') continue;
        p = extend_while(d, p + 1, p + 9, [](char c) { return is_space(c); });
        if (p >= d.size() || d[p] != '"') continue;
        const std::size_t value_start = p + 1;
        const std::size_t value_end = json_string_end(d, value_start, value_start + 8192);
        if (value_end == npos) continue;
        const std::string_view value = d.substr(value_start, value_end - value_start);
        if (value.starts_with("-----BEGIN") && value.find("PRIVATE KEY") != npos) {
            return Located{value_start, value_end, 0};
        }
    }
    return std::nullopt;
}

std::optional<Located> locate_openai_key(std::string_view d, HeadMatch h) {
    const auto [start, end] = token_run(d, h.end, 256, 256);
    const std::string_view token = d.substr(start, end - start);
    if (!token.starts_with("sk-") || token.starts_with("sk-ant-") || token.size() < 40) return std::nullopt;
    const bool marked = token.find("T3BlbkFJ") != npos;  // base64 of "OpenAI", in every issued key so far
    const bool project = token.starts_with("sk-proj-") || token.starts_with("sk-svcacct-") ||
                         token.starts_with("sk-admin-");
    if (!marked && !project) return std::nullopt;
    if (!random_enough(token.substr(3), 3.5)) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_anthropic_key(std::string_view d, HeadMatch h) {
    const auto [start, end] = token_run(d, h.end, 64, 256);
    const std::string_view token = d.substr(start, end - start);
    if (!token.starts_with("sk-ant-") || token.size() < 50) return std::nullopt;
    if (!random_enough(token.substr(14), 3.5)) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_npm_token(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_alnum, 0, is_word);
    if (!token || !random_enough(d.substr(token->start + 4, 36), 3.0)) return std::nullopt;
    return token;
}

std::optional<Located> locate_pypi_token(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_token_char, 300, is_token_char);
    if (!token || token->end - token->start < 70) return std::nullopt;
    return token;
}

std::optional<Located> locate_twilio_key(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_alnum, 0, is_alnum);
    if (!token || !random_enough(d.substr(token->start + 2, 32), 3.0)) return std::nullopt;
    return token;
}

std::optional<Located> locate_sendgrid_key(std::string_view d, HeadMatch h) {
    return fixed_token(d, h, is_token_char, 0, is_token_char);
}

// Length of the line break at `pos`: a real one (LF, CRLF) or one escaped
// in a JSON or .env string ("\\n", "\\r\\n"); 0 when there is none.
std::size_t line_break_at(std::string_view d, std::size_t pos) {
    const std::string_view rest = d.substr(pos);
    if (rest.starts_with("\n")) return 1;
    if (rest.starts_with("\r\n")) return 2;
    if (rest.starts_with("\\n")) return 2;
    if (rest.starts_with("\\r\\n")) return 4;
    return 0;
}

// A key block that stops before its END line: after the BEGIN line (whose
// dashes end at `body`), optional armor headers, then lines of base64 until
// a line that is something else or the input ends. Returns the end of the
// last base64 line, or npos when the block ends in an armor line (the
// complete-block check had the last word on it) or holds no base64 line.
std::size_t truncated_key_end(std::string_view d, std::size_t body, std::size_t limit) {
    std::size_t pos = body;
    const std::size_t first_break = line_break_at(d, pos);
    if (first_break == 0) return npos;  // text after the header: a BEGIN line quoted in code
    pos += first_break;
    std::size_t last = npos;
    while (pos < limit) {
        std::size_t line_end = pos;
        while (line_end < limit && line_break_at(d, line_end) == 0) ++line_end;
        std::string_view line = d.substr(pos, line_end - pos);
        while (!line.empty() && is_horizontal_space(line.front())) line.remove_prefix(1);
        while (!line.empty() && (is_horizontal_space(line.back()) || line.back() == '\r')) line.remove_suffix(1);
        if (line.starts_with("-----")) return npos;
        const std::size_t run = static_cast<std::size_t>(
            std::find_if(line.begin(), line.end(), [](char c) { return !is_base64(c) && c != '='; }) - line.begin());
        const std::size_t line_start = static_cast<std::size_t>(line.data() - d.data());
        if (run > 0 && run == line.size()) {
            last = line_start + run;
            if (line.back() == '=') break;  // padding: the base64 is complete
        } else if (run > 0 && (is_space(line[run]) || is_quote(line[run]) || line[run] == ',')) {
            // The cut, then other text on the same line; a short run is the
            // first word of a line of prose after the block.
            if (run >= (last == npos ? 64 : 16)) last = line_start + run;
            break;
        } else if (last != npos || !(line.empty() || line.find(':') != npos)) {
            break;  // the body is over (headers and blank lines only come before it)
        }
        if (line_end >= limit) break;
        pos = line_end + line_break_at(d, line_end);
    }
    return last;
}

std::optional<Located> locate_private_key(std::string_view d, HeadMatch h) {
    constexpr std::string_view begin = "-----BEGIN ";
    const std::size_t start = d.substr(0, h.end).rfind(begin);
    if (start == npos || h.end - start > 80) return std::nullopt;
    const std::string_view label = d.substr(start + begin.size(), h.end - 5 - start - begin.size());
    const std::string end_marker = "-----END " + std::string(label) + "-----";
    // The next armor line after the header must be the matching END: a PEM
    // body holds no dashes, and stopping at the next "-----" keeps a file of
    // repeated BEGIN lines linear to scan.
    const std::size_t search_limit = std::min(d.size(), h.end + 32768);
    const std::size_t end = d.substr(0, search_limit).find("-----", h.end);
    if (end != npos && d.substr(end, end_marker.size()) == end_marker) {
        const std::size_t block_end = end + end_marker.size();
        if (!private_key_block_valid(d.substr(start, block_end - start))) return std::nullopt;
        return Located{start, block_end, 0};
    }
    const std::size_t cut = truncated_key_end(d, h.end, search_limit);
    if (cut == npos || !truncated_private_key_block_valid(d.substr(start, cut - start))) return std::nullopt;
    return Located{start, cut, 0};
}

std::optional<Located> locate_jwt(std::string_view d, HeadMatch h) {
    // Head: eyJ<header>.eyJ (payload's first bytes).
    if (h.end < 4 || d[h.end - 4] != '.') return std::nullopt;
    const std::size_t dot = h.end - 4;
    const std::size_t start = retreat_while(d, dot, back_by(dot, 2048), is_base64url);
    if (!d.substr(start).starts_with("eyJ") || (start > 0 && is_base64url(d[start - 1]))) return std::nullopt;
    const std::size_t payload_end = extend_while(d, dot + 1, dot + 1 + 16384, is_base64url);
    if (payload_end >= d.size() || d[payload_end] != '.') return std::nullopt;
    const std::size_t end = extend_while(d, payload_end + 1, payload_end + 1 + 2048, is_base64url);
    if (end < d.size() && (is_base64url(d[end]) || d[end] == '.')) return std::nullopt;
    if (!jwt_valid(d.substr(start, end - start))) return std::nullopt;
    return Located{start, end, 0};
}

// Values that are references to a secret, not the secret: ${DB_PASSWORD},
// {{ .Values.password }}, <password>, %(password)s, $PASSWORD.
bool looks_like_template(std::string_view v) {
    if (v.empty()) return true;
    const char first = v.front();
    if (first == '$' || first == '<' || first == '%' || first == '{' || first == '&' || first == '@') return true;
    return v.find("${") != npos || v.find("{{") != npos || v.find("%(") != npos ||
           std::all_of(v.begin(), v.end(), [](char c) { return c == '*' || c == 'x' || c == 'X' || c == '.'; });
}

std::optional<Located> locate_db_url_password(std::string_view d, HeadMatch h) {
    // Head: "://". The scheme before it must be one that carries credentials
    // to a database, broker, directory or file/mail server (or http(s)).
    if (h.end < 3) return std::nullopt;
    // Most URLs carry no userinfo: look for its '@' before anything else.
    const std::size_t at = extend_while(d, h.end, h.end + 200, [](char c) {
        return !is_space(c) && c != '/' && c != '@' && !is_quote(c) && c != '<' && c != '>';
    });
    if (at >= d.size() || d[at] != '@') return std::nullopt;
    const std::size_t scheme_end = h.end - 3;
    const std::size_t scheme_start =
        retreat_while(d, scheme_end, back_by(scheme_end, 16), [](char c) { return is_alnum(c) || c == '+'; });
    const std::string_view scheme = d.substr(scheme_start, scheme_end - scheme_start);
    static constexpr std::string_view schemes[] = {
        "postgres", "postgresql", "mysql", "mariadb", "mongodb", "mongodb+srv", "redis", "rediss", "amqp", "amqps",
        "mssql", "sqlserver", "oracle", "clickhouse", "cockroachdb", "couchdb", "neo4j", "ldap", "ldaps", "ftp",
        "sftp", "smtp", "smtps", "http", "https"};
    if (std::none_of(std::begin(schemes), std::end(schemes), [&](std::string_view s) { return iequals(scheme, s); })) {
        return std::nullopt;
    }
    // userinfo is user:password@host.
    auto userinfo_char = [](char c) {
        return !is_space(c) && c != ':' && c != '/' && c != '@' && !is_quote(c) && c != '<' && c != '>';
    };
    const std::size_t user_end = extend_while(d, h.end, h.end + 64, userinfo_char);
    if (user_end >= d.size() || d[user_end] != ':') return std::nullopt;
    const std::size_t start = user_end + 1;
    const std::size_t end = extend_while(d, start, start + 129, [&](char c) { return userinfo_char(c) || c == ':'; });
    if (end == start || end - start > 128 || end >= d.size() || d[end] != '@') return std::nullopt;
    const std::size_t host_end =
        extend_while(d, end + 1, end + 256, [](char c) { return is_alnum(c) || c == '.' || c == '-' || c == '_' || c == '['; });
    if (host_end == end + 1) return std::nullopt;
    // One- and two-byte "passwords" (https://a:b@host) are illustrations.
    if (end - start < 3 || looks_like_template(d.substr(start, end - start))) return std::nullopt;
    std::string host;
    for (char c : d.substr(end + 1, host_end - end - 1)) host.push_back(to_lower(c));
    const std::string_view h_view = host;
    const bool example_host = h_view == "host" || h_view == "hostname" || h_view.starts_with("example.") ||
                              h_view.find(".example.") != npos || h_view.ends_with(".example") ||
                              h_view.ends_with(".test") || h_view.ends_with(".invalid");
    return Located{start, end, 0, example_host};
}

bool is_dotted_identifier(std::string_view v) {
    bool expect_start = true;
    for (char c : v) {
        if (c == '.') {
            if (expect_start) return false;
            expect_start = true;
        } else if (expect_start ? (is_alpha(c) || c == '_') : is_word(c)) {
            expect_start = false;
        } else {
            return false;
        }
    }
    return !expect_start;
}

// Whether the keyword head ending at `head_end` names a password (as
// opposed to a token or key, which never hold spaces).
bool names_a_password(std::string_view d, std::size_t head_end) {
    for (std::string_view keyword : {"password", "passwd", "passphrase", "pwd"}) {
        if (head_end >= keyword.size() && iequals(d.substr(head_end - keyword.size(), keyword.size()), keyword)) return true;
    }
    return false;
}

// "correct horse battery staple": three or more words separated by single
// spaces, none of them the little words every sentence has ("Password used
// to generate key", "Enter your password") and no sentence punctuation at
// the end. A generated passphrase is random words; a description is prose.
bool passphrase_shaped(std::string_view value) {
    static constexpr std::string_view prose_words[] = {
        "a",    "an",   "the",  "to",   "of",   "for",    "in",     "on",       "at",         "by",    "with",
        "from", "is",   "are",  "was",  "be",   "this",   "that",   "it",       "your",       "you",   "our",
        "we",   "and",  "or",   "not",  "no",   "will",   "must",   "should",   "can",        "please", "enter",
        "used", "use",  "if",   "when", "which", "here",  "new",    "password", "passphrase", "secret", "key"};
    if (value.front() == ' ' || value.back() == ' ' || value.find("  ") != npos) return false;
    if (value.back() == '.' || value.back() == ':' || value.back() == '?') return false;
    std::size_t words = 0;
    for (std::size_t pos = 0; pos <= value.size();) {
        std::size_t space = value.find(' ', pos);
        if (space == npos) space = value.size();
        const std::string_view word = value.substr(pos, space - pos);
        if (std::any_of(std::begin(prose_words), std::end(prose_words),
                        [&](std::string_view w) { return iequals(word, w); })) {
            return false;
        }
        ++words;
        pos = space + 1;
    }
    return words >= 3;
}

std::optional<Located> locate_generic_password(std::string_view d, HeadMatch h) {
    const std::size_t assigned = after_assignment(d, h.end, 16);
    if (assigned == npos) return std::nullopt;
    const auto [start, quote] = skip_to_value(d, assigned, 4);
    std::size_t end = 0;
    if (quote != 0) {
        end = extend_while(d, start, start + 129, [q = quote](char c) { return c != q && c != '\n'; });
        if (end >= d.size() || d[end] != quote) return std::nullopt;
    } else {
        end = extend_while(d, start, start + 129, [](char c) {
            return !is_space(c) && !is_quote(c) && c != ',' && c != ';' && c != '(' && c != ')' && c != '[' &&
                   c != ']' && c != '{' && c != '}' && c != '<' && c != '>';
        });
        if (end < d.size() && (d[end] == '(' || d[end] == '[')) return std::nullopt;  // a call or an index
    }
    const std::string_view value = d.substr(start, end - start);
    if (value.size() < 8 || value.size() > 128) return std::nullopt;
    if (looks_like_template(value) || value.find("://") != npos || value.front() == '/' || value.starts_with("./") ||
        value.find("::") != npos) {
        return std::nullopt;
    }
    // Prose ('Password used to generate key') rather than a password, unless
    // a password keyword holds a quoted passphrase.
    if (std::any_of(value.begin(), value.end(), [](char c) { return is_space(c); }) &&
        (quote == 0 || !names_a_password(d, h.end) || !passphrase_shaped(value))) {
        return std::nullopt;
    }
    if (is_dotted_identifier(value)) {
        // Plain words and code references (config.password, get_secret,
        // API_TOKEN): a value with no digit and one letter case is a name.
        const bool has_digit = std::any_of(value.begin(), value.end(), [](char c) { return is_digit(c); });
        const bool has_upper = std::any_of(value.begin(), value.end(), [](char c) { return is_upper(c); });
        const bool has_lower = std::any_of(value.begin(), value.end(), [](char c) { return is_lower(c); });
        if (value.find('.') != npos || (!has_digit && !(has_upper && has_lower))) return std::nullopt;
    }
    if (std::all_of(value.begin(), value.end(), [](char c) { return is_digit(c) || c == '.' || c == '-'; })) {
        return std::nullopt;  // numbers, versions, dates
    }
    const double entropy = shannon_entropy(value);
    int classes = 0;
    classes += std::any_of(value.begin(), value.end(), [](char c) { return is_lower(c); });
    classes += std::any_of(value.begin(), value.end(), [](char c) { return is_upper(c); });
    classes += std::any_of(value.begin(), value.end(), [](char c) { return is_digit(c); });
    classes += std::any_of(value.begin(), value.end(), [](char c) { return !is_alnum(c); });
    const bool has_digit = std::any_of(value.begin(), value.end(), [](char c) { return is_digit(c); });
    const bool strong = value.size() >= 12 ? entropy >= 3.0 : (entropy >= 2.75 && classes >= 3 && has_digit);
    if (!strong) return std::nullopt;
    return Located{start, end, 0};
}

std::optional<Located> locate_huggingface_token(std::string_view d, HeadMatch h) {
    auto token = fixed_token(d, h, is_alnum, 0, is_word);
    if (!token || !random_enough(d.substr(token->start + 3, 34), 3.5)) return std::nullopt;
    return token;
}

std::optional<Located> locate_digitalocean_token(std::string_view d, HeadMatch h) {
    return fixed_token(d, h, is_alnum, 0, is_word);
}

std::optional<Located> locate_azure_storage_key(std::string_view d, HeadMatch h) {
    const std::size_t start = h.end;
    const std::size_t end = extend_while(d, start, start + 89, [](char c) { return is_base64(c) || c == '='; });
    if (end - start != 88 || d.substr(start, end - start).find('=') != 86) return std::nullopt;
    const auto decoded = base64_decode(d.substr(start, 88), Base64Alphabet::standard);
    if (!decoded || decoded->size() != 64) return std::nullopt;
    return Located{start, end, 0};
}

// --- Validators on normalized values (thin adapters) ------------------------------------
// Published sample values pass so that they are reported with test_value set
// instead of vanishing (046 454 286, Canada's own SIN example, starts with
// a digit never issued to anyone).

bool validate_ipv4(std::string_view v) { return ipv4_valid(v); }
bool validate_ipv6(std::string_view v) { return ipv6_valid(v); }
bool validate_card(std::string_view v) { return card_number_valid(v); }
bool validate_ssn(std::string_view v) { return us_ssn_valid(v); }
bool validate_itin(std::string_view v) { return us_itin_valid(v); }
bool validate_sin(std::string_view v) { return ca_sin_valid(v) || is_known_test_value("pii.ca_sin", v); }
bool validate_aadhaar(std::string_view v) { return aadhaar_valid(v); }
bool validate_iban(std::string_view v) { return iban_valid(v); }
bool validate_nino(std::string_view v) { return uk_nino_valid(v); }
bool validate_phone(std::string_view v) { return phone_digits_valid(v); }
bool validate_dob(std::string_view v) { return birth_date_valid(v); }
bool validate_jwt(std::string_view v) { return jwt_valid(v); }
bool validate_private_key(std::string_view v) {
    return private_key_block_valid(v).has_value() || truncated_private_key_block_valid(v).has_value();
}

// --- The catalogue ---------------------------------------------------------------------

using Words = std::span<const std::string_view>;
using Heads = std::span<const std::string_view>;

// Keyword heads are bare keywords: assignment operators, word boundaries and
// suffixes are checked in `locate`, because as regex context they cost the
// whole database most of its speed.
constexpr std::string_view dob_heads[] = {
    R"((?i)(?:dob|d\.o\.b|birth|born|geburtsdatum|naissance|nacimiento|nascita))"};
constexpr std::string_view passport_heads[] = {R"((?i)(?:passport|passeport|reisepass|pasaporte|passaporto))"};
constexpr std::string_view aws_access_heads[] = {R"((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})"};
constexpr std::string_view aws_secret_heads[] = {R"((?i)(?:aws[_\-]?secret|secret[_\-]?access[_\-]?key))"};
constexpr std::string_view github_heads[] = {R"((?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36})",
                                             R"(github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})"};
constexpr std::string_view gitlab_heads[] = {R"(gl(?:pat|dt|rt|ptt|ft|cbt|imt|soat|oas|agent)-[A-Za-z0-9_\-]{20})"};
constexpr std::string_view slack_token_heads[] = {R"(xox[abposr]-[0-9]{6})", R"(xoxe(?:\.xox[bp])?-1-[A-Za-z0-9]{16})",
                                                  R"(xapp-[0-9]-[A-Z0-9]{9})"};
constexpr std::string_view slack_webhook_heads[] = {R"(https://hooks\.slack\.com/(?:services|workflows|triggers)/)"};
constexpr std::string_view stripe_heads[] = {R"((?:sk|rk)_(?:live|test)_[0-9A-Za-z]{20})"};
constexpr std::string_view google_heads[] = {R"(AIza[0-9A-Za-z_\-]{35})"};
constexpr std::string_view gcp_heads[] = {R"("service_account")"};
constexpr std::string_view openai_heads[] = {R"(T3BlbkFJ)", R"(sk-(?:proj|svcacct|admin)-[A-Za-z0-9_\-]{40})"};
constexpr std::string_view anthropic_heads[] = {R"(sk-ant-(?:api|admin|oat|sid)[0-9]{2}-[A-Za-z0-9_\-]{20})"};
constexpr std::string_view npm_heads[] = {R"(npm_[A-Za-z0-9]{36})"};
constexpr std::string_view pypi_heads[] = {R"(pypi-AgEIcHlwaS5vcmc)", R"(pypi-AgENdGVzdC5weXBpLm9yZw)"};
constexpr std::string_view twilio_heads[] = {R"(SK[0-9a-f]{32})"};
constexpr std::string_view sendgrid_heads[] = {R"(SG\.[A-Za-z0-9_\-]{22}\.[A-Za-z0-9_\-]{43})"};
constexpr std::string_view private_key_heads[] = {R"(-----BEGIN [A-Z0-9 ]{0,30}PRIVATE KEY(?: BLOCK)?-----)"};
constexpr std::string_view jwt_heads[] = {R"(eyJ[A-Za-z0-9_\-]{10,400}\.eyJ)"};
constexpr std::string_view db_url_heads[] = {R"(://)"};
constexpr std::string_view generic_password_heads[] = {
    R"((?i)(?:password|passwd|passphrase|pwd|secret|api[_\-]?key|apikey|access[_\-]?token|auth[_\-]?token|token))"};
constexpr std::string_view huggingface_heads[] = {R"(hf_[A-Za-z]{34})"};
constexpr std::string_view digitalocean_heads[] = {R"(do[opr]_v1_[a-f0-9]{64})"};
constexpr std::string_view azure_storage_heads[] = {R"((?i)AccountKey=)"};

constexpr std::string_view ssn_words[] = {"ssn", "social security", "soc sec", "ss#", "ss #", "ssnum", "ssa"};
constexpr std::string_view itin_words[] = {"itin", "taxpayer", "tin"};
constexpr std::string_view sin_words[] = {"sin", "social insurance", "nas", "assurance sociale"};
constexpr std::string_view aadhaar_words[] = {"aadhaar", "aadhar", "adhaar", "uidai", "uid"};
constexpr std::string_view phone_words[] = {"phone", "tel", "telephone", "mobile", "cell", "fax", "call",
                                            "contact", "sms", "whatsapp", "ph"};
constexpr std::string_view card_words[] = {"card", "credit", "visa", "mastercard", "amex", "cc", "pan", "payment"};
constexpr std::string_view ip_words[] = {"ip", "addr", "address", "host", "server", "client", "remote", "src", "dst"};
constexpr std::string_view iban_words[] = {"iban", "account", "bank", "sepa"};
constexpr std::string_view nino_words[] = {"nino", "national insurance", "ni number", "ni no"};
constexpr std::string_view twilio_words[] = {"twilio"};

Detector vectorscan(std::string_view id, Category category, Severity severity, Heads heads, std::string_view literal,
                 LocateFn locate, std::uint8_t priority, float confidence, std::uint32_t lookbehind,
                 std::uint32_t lookahead, MaskStyle mask, ValidateFn validate = nullptr) {
    Detector d;
    d.id = id;
    d.category = category;
    d.severity = severity;
    d.engine = heads.empty() ? Engine::simd : Engine::vectorscan;
    d.heads = heads;
    d.literal = literal;
    d.locate = locate;
    d.priority = priority;
    d.confidence = confidence;
    d.lookbehind = lookbehind;
    d.lookahead = lookahead;
    d.mask = mask;
    d.validate = validate;
    return d;
}

Detector simd(std::string_view id, Severity severity, Words context, std::uint8_t priority, float confidence,
                 ValidateFn validate, Normalize normalize, MaskStyle mask) {
    Detector d;
    d.id = id;
    d.category = Category::pii;
    d.severity = severity;
    d.engine = Engine::simd;
    d.context_words = context;
    d.priority = priority;
    d.confidence = confidence;
    d.validate = validate;
    d.normalize = normalize;
    d.mask = mask;
    return d;
}

const std::vector<Detector>& catalogue() {
    using enum Severity;
    constexpr auto pii = Category::pii;
    constexpr auto secret = Category::secret;
    static const std::vector<Detector> detectors = [] {
        std::vector<Detector> v;
        // PII found by the SIMD fast path.
        v.push_back(simd("pii.credit_card", high, card_words, 78, 0.9F, validate_card, Normalize::digits, MaskStyle::card));
        v.push_back(simd("pii.us_ssn", high, ssn_words, 76, 0.85F, validate_ssn, Normalize::digits, MaskStyle::keep_last4_digits));
        v.push_back(simd("pii.us_itin", high, itin_words, 76, 0.85F, validate_itin, Normalize::digits, MaskStyle::keep_last4_digits));
        v.push_back(simd("pii.ca_sin", high, sin_words, 72, 0.8F, validate_sin, Normalize::digits, MaskStyle::keep_last3_digits));
        v.push_back(simd("pii.in_aadhaar", high, aadhaar_words, 70, 0.85F, validate_aadhaar, Normalize::digits, MaskStyle::keep_last4_digits));
        v.push_back(simd("pii.phone", medium, phone_words, 65, 0.8F, validate_phone, Normalize::digits, MaskStyle::keep_last4_digits));
        v.push_back(simd("pii.iban", high, iban_words, 80, 0.95F, validate_iban, Normalize::upper_alnum, MaskStyle::iban));
        v.push_back(simd("pii.uk_nino", high, nino_words, 74, 0.85F, validate_nino, Normalize::upper_alnum, MaskStyle::identifier));
        v.push_back(simd("pii.ipv4", low, ip_words, 60, 0.8F, validate_ipv4, Normalize::raw, MaskStyle::ipv4));
        v.push_back(simd("pii.ipv6", low, ip_words, 62, 0.8F, validate_ipv6, Normalize::raw, MaskStyle::ipv6));
        v.push_back(vectorscan("pii.email", pii, medium, {}, "@", locate_email, 64, 0.9F, 66, 260, MaskStyle::email));
        // PII found by vectorscan heads.
        v.push_back(vectorscan("pii.date_of_birth", pii, medium, dob_heads, "", locate_date_of_birth, 58, 0.85F, 0, 80,
                            MaskStyle::date, validate_dob));
        v.push_back(vectorscan("pii.passport", pii, high, passport_heads, "pas", locate_passport, 58, 0.8F, 0, 64,
                            MaskStyle::identifier));
        // Secrets.
        v.push_back(vectorscan("secret.aws_access_key", secret, high, aws_access_heads, "A", locate_aws_access_key, 100,
                            0.95F, 0, 1, MaskStyle::secret));
        v.push_back(vectorscan("secret.aws_secret_key", secret, critical, aws_secret_heads, "secret", locate_aws_secret_key,
                            110, 0.9F, 48, 96, MaskStyle::secret));
        v.push_back(vectorscan("secret.github_token", secret, high, github_heads, "_", locate_github_token, 100, 0.97F, 0, 1,
                            MaskStyle::secret));
        v.push_back(vectorscan("secret.gitlab_token", secret, high, gitlab_heads, "gl", locate_gitlab_token, 100, 0.95F, 0,
                            128, MaskStyle::secret));
        v.push_back(vectorscan("secret.slack_token", secret, high, slack_token_heads, "x", locate_slack_token, 100, 0.95F, 40,
                            256, MaskStyle::secret));
        v.push_back(vectorscan("secret.slack_webhook", secret, high, slack_webhook_heads, "hooks.slack.com/",
                            locate_slack_webhook, 100, 0.97F, 16, 208, MaskStyle::secret));
        v.push_back(vectorscan("secret.stripe_key", secret, high, stripe_heads, "k_", locate_stripe_key, 100, 0.97F, 0, 232,
                            MaskStyle::secret));
        v.push_back(vectorscan("secret.google_api_key", secret, medium, google_heads, "AIza", locate_google_api_key, 100,
                            0.9F, 0, 1, MaskStyle::secret));
        v.push_back(vectorscan("secret.gcp_service_account", secret, critical, gcp_heads, "service_account",
                            locate_gcp_service_account, 130, 0.99F, 8192, 16384 + 64, MaskStyle::key_block));
        v.push_back(vectorscan("secret.openai_key", secret, high, openai_heads, "", locate_openai_key, 100, 0.95F, 260, 260,
                            MaskStyle::secret));
        v.push_back(vectorscan("secret.anthropic_key", secret, high, anthropic_heads, "sk-ant-", locate_anthropic_key, 100,
                            0.97F, 64, 260, MaskStyle::secret));
        v.push_back(vectorscan("secret.npm_token", secret, high, npm_heads, "npm_", locate_npm_token, 100, 0.95F, 0, 1,
                            MaskStyle::secret));
        v.push_back(vectorscan("secret.pypi_token", secret, high, pypi_heads, "pypi-AgE", locate_pypi_token, 100, 0.99F, 0,
                            304, MaskStyle::secret));
        v.push_back(vectorscan("secret.twilio_key", secret, high, twilio_heads, "SK", locate_twilio_key, 100, 0.8F, 0, 1,
                            MaskStyle::secret));
        v.back().context_words = twilio_words;
        v.push_back(vectorscan("secret.sendgrid_key", secret, high, sendgrid_heads, "SG.", locate_sendgrid_key, 100, 0.99F,
                            0, 1, MaskStyle::secret));
        v.push_back(vectorscan("secret.private_key", secret, critical, private_key_heads, "PRIVATE KEY", locate_private_key,
                            120, 0.99F, 80, 32768 + 64, MaskStyle::key_block, validate_private_key));
        v.push_back(vectorscan("secret.jwt", secret, medium, jwt_heads, "eyJ", locate_jwt, 95, 0.95F, 2100, 16384 + 2048 + 8,
                            MaskStyle::secret, validate_jwt));
        v.push_back(vectorscan("secret.db_url_password", secret, high, db_url_heads, "://", locate_db_url_password, 90, 0.9F,
                            16, 512, MaskStyle::hidden));
        v.push_back(vectorscan("secret.generic_password", secret, medium, generic_password_heads, "", locate_generic_password,
                            40, 0.6F, 48, 176, MaskStyle::hidden));
        v.push_back(vectorscan("secret.huggingface_token", secret, high, huggingface_heads, "hf_", locate_huggingface_token,
                            100, 0.9F, 0, 1, MaskStyle::secret));
        v.push_back(vectorscan("secret.digitalocean_token", secret, high, digitalocean_heads, "_v1_",
                            locate_digitalocean_token, 100, 0.99F, 0, 1, MaskStyle::secret));
        v.push_back(vectorscan("secret.azure_storage_key", secret, critical, azure_storage_heads, "accountkey=",
                            locate_azure_storage_key, 110, 0.95F, 0, 96, MaskStyle::secret));
        return v;
    }();
    return detectors;
}

}  // namespace

std::span<const Detector> all_detectors() noexcept { return catalogue(); }

const Detector* find_detector(std::string_view id) noexcept {
    for (const Detector& d : catalogue()) {
        if (d.id == id) return &d;
    }
    return nullptr;
}

std::size_t detector_index(const Detector& detector) noexcept {
    return static_cast<std::size_t>(&detector - catalogue().data());
}

std::string normalize_value(const Detector& detector, std::string_view raw) {
    std::string out;
    normalize_into(detector, raw, out);
    return out;
}

void normalize_into(const Detector& detector, std::string_view raw, std::string& out) {
    out.clear();
    switch (detector.normalize) {
        case Normalize::raw: out.assign(raw); break;
        case Normalize::digits:
            for (char c : raw) {
                if (is_digit(c)) out.push_back(c);
            }
            break;
        case Normalize::upper_alnum:
            for (char c : raw) {
                if (is_alnum(c)) out.push_back(is_lower(c) ? static_cast<char>(c - 'a' + 'A') : c);
            }
            break;
    }
}

bool phone_digits_valid(std::string_view digits) noexcept {
    if (digits.size() == 10) return nanp_valid(digits);
    if (digits.size() == 11 && digits[0] == '1' && nanp_valid(digits.substr(1))) return true;
    return e164_valid(digits);
}

}  // namespace airlock::inspect
