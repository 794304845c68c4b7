#include "audit/format.hpp"

#include <ctime>
#include <exception>
#include <optional>

namespace airlock::audit {

namespace {

struct Decoded {
    char32_t cp;
    std::size_t len;
};

// Strict UTF-8 decoding: rejects overlong forms, surrogates and > U+10FFFF.
std::optional<Decoded> decode_utf8(std::string_view s, std::size_t i) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    if (b0 < 0x80) return Decoded{b0, 1};
    std::size_t len = 0;
    char32_t cp = 0;
    char32_t min = 0;
    if ((b0 & 0xE0) == 0xC0) {
        len = 2;
        cp = b0 & 0x1F;
        min = 0x80;
    } else if ((b0 & 0xF0) == 0xE0) {
        len = 3;
        cp = b0 & 0x0F;
        min = 0x800;
    } else if ((b0 & 0xF8) == 0xF0) {
        len = 4;
        cp = b0 & 0x07;
        min = 0x10000;
    } else {
        return std::nullopt;
    }
    if (i + len > s.size()) return std::nullopt;
    for (std::size_t k = 1; k < len; ++k) {
        const auto b = static_cast<unsigned char>(s[i + k]);
        if ((b & 0xC0) != 0x80) return std::nullopt;
        cp = (cp << 6) | (b & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
    return Decoded{cp, len};
}

// Code points that reorder or hide text on a terminal: C1 controls and the
// bidi embedding/override/isolate marks ("Trojan Source").
bool dangerous_code_point(char32_t cp) {
    return (cp >= 0x80 && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
           (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

constexpr char hex_digits[] = "0123456789abcdef";

void put_hex_byte(std::string& out, unsigned char b) {
    out += "\\x";
    out += hex_digits[b >> 4];
    out += hex_digits[b & 0xf];
}

// Escapes s for format_text; sets needs_quotes when the value would otherwise
// be ambiguous in a space-separated key=value line.
std::string escape_value(std::string_view s, bool& needs_quotes) {
    std::string out;
    out.reserve(s.size());
    needs_quotes = false;
    for (std::size_t i = 0; i < s.size();) {
        const auto b = static_cast<unsigned char>(s[i]);
        if (b < 0x80) {
            switch (b) {
                case '\n':
                    out += "\\n";
                    break;
                case '\r':
                    out += "\\r";
                    break;
                case '\t':
                    out += "\\t";
                    break;
                case '\\':
                    out += "\\\\";
                    break;
                case '"':
                    out += "\\\"";
                    needs_quotes = true;
                    break;
                case ' ':
                case '=':
                    out += static_cast<char>(b);
                    needs_quotes = true;
                    break;
                default:
                    if (b < 0x20 || b == 0x7F) {
                        put_hex_byte(out, b);
                    } else {
                        out += static_cast<char>(b);
                    }
            }
            ++i;
            continue;
        }
        const auto d = decode_utf8(s, i);
        if (!d) {
            put_hex_byte(out, b);
            ++i;
            continue;
        }
        if (dangerous_code_point(d->cp)) {
            out += "\\u";
            for (int shift = 12; shift >= 0; shift -= 4) out += hex_digits[(d->cp >> shift) & 0xf];
        } else {
            out.append(s.substr(i, d->len));
        }
        i += d->len;
    }
    return out;
}

void put_field(std::string& out, std::string_view key, std::string_view value) {
    if (value.empty()) return;
    bool quote = false;
    std::string escaped = escape_value(value, quote);
    out += ' ';
    out += key;
    out += '=';
    if (quote) out += '"';
    out += escaped;
    if (quote) out += '"';
}

void put_field(std::string& out, std::string_view key, std::int64_t value) {
    if (value == 0) return;
    out += ' ';
    out += key;
    out += '=';
    out += std::to_string(value);
}

}  // namespace

std::string sanitize_utf8(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size();) {
        if (const auto d = decode_utf8(s, i)) {
            out.append(s.substr(i, d->len));
            i += d->len;
        } else {
            out += "\xEF\xBF\xBD";
            ++i;
        }
    }
    return out;
}

std::string format_time_us(std::int64_t time_us) {
    // Floor division so times before the epoch still print a valid clock.
    std::int64_t secs = time_us / 1'000'000;
    std::int64_t micros = time_us % 1'000'000;
    if (micros < 0) {
        micros += 1'000'000;
        secs -= 1;
    }
    const auto t = static_cast<std::time_t>(secs);
    std::tm tm{};
    char buf[64];
    if (gmtime_r(&t, &tm) == nullptr || std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
        return "@" + std::to_string(time_us) + "us";
    }
    std::string out = buf;
    std::string frac = std::to_string(micros);
    out += '.';
    out.append(6 - frac.size(), '0');
    out += frac;
    out += 'Z';
    return out;
}

nlohmann::json to_json(const Event& e) {
    try {
        nlohmann::json j = nlohmann::json::object();
        j["seq"] = e.seq;
        j["time_us"] = e.time_us;
        j["time"] = format_time_us(e.time_us);
        j["kind"] = std::string(to_string(e.kind));
        j["session"] = e.session;
        j["pid"] = e.pid;
        j["action"] = sanitize_utf8(e.action);
        j["object"] = sanitize_utf8(e.object);
        j["verdict"] = sanitize_utf8(e.verdict);
        j["rule"] = sanitize_utf8(e.rule);
        j["request_id"] = e.request_id;
        j["actor"] = sanitize_utf8(e.actor);
        j["scope"] = sanitize_utf8(e.scope);
        j["reason"] = sanitize_utf8(e.reason);
        j["latency_us"] = e.latency_us;
        if (e.detail_json.empty()) {
            j["detail"] = nullptr;
        } else {
            // The parser only accepts valid UTF-8, so a parsed detail is safe to dump.
            nlohmann::json detail = nlohmann::json::parse(e.detail_json, nullptr, /*allow_exceptions=*/false);
            if (detail.is_discarded()) {
                j["detail"] = sanitize_utf8(e.detail_json);
            } else {
                j["detail"] = std::move(detail);
            }
        }
        j["prev_hash"] = sanitize_utf8(e.prev_hash);
        j["hash"] = sanitize_utf8(e.hash);
        return j;
    } catch (const std::exception&) {
        // Only allocation failure can land here; null tells the caller nothing rendered.
        return nullptr;
    }
}

std::string format_text(const Event& e) {
    try {
        std::string out;
        if (e.seq != 0) {
            out += '#';
            out += std::to_string(e.seq);
            out += ' ';
        }
        out += format_time_us(e.time_us);
        out += ' ';
        out += to_string(e.kind);
        put_field(out, "session", e.session);
        put_field(out, "pid", e.pid);
        put_field(out, "action", e.action);
        put_field(out, "object", e.object);
        put_field(out, "verdict", e.verdict);
        put_field(out, "rule", e.rule);
        put_field(out, "request", e.request_id);
        put_field(out, "scope", e.scope);
        put_field(out, "actor", e.actor);
        put_field(out, "reason", e.reason);
        return out;
    } catch (const std::exception&) {
        return {};
    }
}

}  // namespace airlock::audit
