#include <openssl/evp.h>

#include <array>
#include <charconv>
#include <exception>
#include <nlohmann/json.hpp>

#include "audit/audit_log.hpp"
#include "audit/chain.hpp"
#include "audit/format.hpp"

namespace airlock::audit {

std::string_view to_string(EventKind k) {
    switch (k) {
        case EventKind::daemon_start:
            return "daemon_start";
        case EventKind::session_start:
            return "session_start";
        case EventKind::session_end:
            return "session_end";
        case EventKind::decision:
            return "decision";
        case EventKind::request_created:
            return "request_created";
        case EventKind::request_resolved:
            return "request_resolved";
        case EventKind::policy_reload:
            return "policy_reload";
        case EventKind::kernel:
            return "kernel";
    }
    return "unknown";
}

std::optional<EventKind> parse_kind(std::string_view s) {
    for (EventKind k :
         {EventKind::daemon_start, EventKind::session_start, EventKind::session_end, EventKind::decision,
          EventKind::request_created, EventKind::request_resolved, EventKind::policy_reload,
          EventKind::kernel}) {
        if (to_string(k) == s) return k;
    }
    return std::nullopt;
}

namespace detail {
RowView row_view(const Event& e) {
    return RowView{
        .seq = e.seq,
        .time_us = e.time_us,
        .kind = to_string(e.kind),
        .session = e.session,
        .pid = e.pid,
        .action = e.action,
        .object = e.object,
        .verdict = e.verdict,
        .rule = e.rule,
        .request_id = e.request_id,
        .actor = e.actor,
        .scope = e.scope,
        .reason = e.reason,
        .latency_us = e.latency_us,
        .detail_json = e.detail_json,
    };
}
}  // namespace detail

std::string canonical_form(const Event& e) { return detail::canonical_form(detail::row_view(e)); }

namespace detail {

namespace {

// Integers are plain decimal ([-0-9]+) and always followed by '|', strings are
// "len:bytes": with the fixed field order this makes the encoding injective.
void put_int(std::string& out, std::string_view name, std::int64_t v) {
    out += name;
    out += '=';
    std::array<char, 24> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v);
    (void)ec;  // 24 bytes always hold an int64
    out.append(buf.data(), end);
    out += '|';
}

void put_str(std::string& out, std::string_view name, std::string_view v, bool last = false) {
    out += name;
    out += '=';
    std::array<char, 24> buf{};
    auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), v.size());
    (void)ec;  // 24 bytes always hold a size_t
    out.append(buf.data(), end);
    out += ':';
    out += v;
    if (!last) out += '|';
}

}  // namespace

std::string canonical_form(const RowView& r) {
    std::string out;
    append_canonical_form(out, r);
    return out;
}

void append_canonical_form(std::string& out, const RowView& r) {
    out.reserve(out.size() + 256 + r.object.size() + r.reason.size() + r.detail_json.size());
    out += "airlock-audit-v1|";
    put_int(out, "seq", r.seq);
    put_int(out, "time_us", r.time_us);
    put_str(out, "kind", r.kind);
    put_int(out, "session", r.session);
    put_int(out, "pid", r.pid);
    put_str(out, "action", r.action);
    put_str(out, "object", r.object);
    put_str(out, "verdict", r.verdict);
    put_str(out, "rule", r.rule);
    put_int(out, "request_id", r.request_id);
    put_str(out, "actor", r.actor);
    put_str(out, "scope", r.scope);
    put_str(out, "reason", r.reason);
    put_int(out, "latency_us", r.latency_us);
    put_str(out, "detail_json", r.detail_json, /*last=*/true);
}

namespace {

// OpenSSL 3 looks the algorithm up in its provider table on every
// EVP_DigestInit_ex(EVP_sha256()) and a fresh context costs an allocation;
// together that is most of the cost of hashing one row. Both are kept per
// thread (verify and tests may run on other threads than the daemon loop).
class Sha256 {
public:
    Sha256() : md_(EVP_MD_fetch(nullptr, "SHA256", nullptr)), ctx_(EVP_MD_CTX_new()) {}
    Sha256(const Sha256&) = delete;
    Sha256& operator=(const Sha256&) = delete;
    ~Sha256() {
        EVP_MD_CTX_free(ctx_);
        EVP_MD_free(md_);
    }
    [[nodiscard]] EVP_MD_CTX* ctx() const { return ctx_; }
    [[nodiscard]] const EVP_MD* md() const { return md_; }

private:
    EVP_MD* md_;
    EVP_MD_CTX* ctx_;
};

}  // namespace

common::Result<std::string> chain_hash(std::string_view prev_hash_hex, std::string_view canonical) {
    thread_local Sha256 sha;
    EVP_MD_CTX* ctx = sha.ctx();
    if (ctx == nullptr || sha.md() == nullptr)
        return common::fail("audit: SHA-256 is not available from OpenSSL");
    std::array<unsigned char, EVP_MAX_MD_SIZE> md{};
    unsigned int md_len = 0;
    const bool ok = EVP_DigestInit_ex2(ctx, sha.md(), nullptr) == 1 &&
                    EVP_DigestUpdate(ctx, prev_hash_hex.data(), prev_hash_hex.size()) == 1 &&
                    EVP_DigestUpdate(ctx, "\n", 1) == 1 &&
                    EVP_DigestUpdate(ctx, canonical.data(), canonical.size()) == 1 &&
                    EVP_DigestFinal_ex(ctx, md.data(), &md_len) == 1;
    if (!ok || md_len != 32) return common::fail("audit: SHA-256 computation failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(64);
    for (unsigned i = 0; i < md_len; ++i) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 0xf];
    }
    return out;
}

namespace {

// Largest cut <= n that does not land inside a UTF-8 multi-byte sequence.
std::size_t utf8_boundary(std::string_view s, std::size_t n) {
    if (n >= s.size()) return s.size();
    std::size_t cut = n;
    // Back up over at most 3 continuation bytes; further back means the input
    // was not UTF-8 to begin with and any cut is as good as another.
    for (int i = 0; i < 3 && cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80; ++i) {
        --cut;
    }
    if ((static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) return n;
    return cut;
}

}  // namespace

std::string truncate_with_marker(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    const std::string marker = "...[truncated, original " + std::to_string(s.size()) + " bytes]";
    if (marker.size() >= max) {
        s.resize(utf8_boundary(s, max));
        return s;
    }
    s.resize(utf8_boundary(s, max - marker.size()));
    s += marker;
    return s;
}

std::string truncate_detail_json(std::string s, std::size_t max) {
    if (s.size() <= max) return s;
    const std::size_t original = s.size();
    try {
        // Escaping can expand the prefix (up to 6x for control bytes), so shrink
        // it until the whole object fits.
        for (std::size_t keep = max; keep >= 64; keep /= 2) {
            nlohmann::json j = nlohmann::json::object();
            j["truncated"] = true;
            j["original_bytes"] = original;
            j["prefix"] = sanitize_utf8(std::string_view(s).substr(0, utf8_boundary(s, keep)));
            std::string out = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
            if (out.size() <= max) return out;
        }
    } catch (const std::exception&) {
        // Fall through to the prefix-less form below.
    }
    return R"({"truncated":true,"original_bytes":)" + std::to_string(original) + "}";
}

void apply_limits(Event& e) {
    e.object = truncate_with_marker(std::move(e.object), max_object_bytes);
    e.reason = truncate_with_marker(std::move(e.reason), max_reason_bytes);
    e.detail_json = truncate_detail_json(std::move(e.detail_json), max_detail_json_bytes);
    e.action = truncate_with_marker(std::move(e.action), max_short_field_bytes);
    e.verdict = truncate_with_marker(std::move(e.verdict), max_short_field_bytes);
    e.rule = truncate_with_marker(std::move(e.rule), max_short_field_bytes);
    e.actor = truncate_with_marker(std::move(e.actor), max_short_field_bytes);
    e.scope = truncate_with_marker(std::move(e.scope), max_short_field_bytes);
}

}  // namespace detail
}  // namespace airlock::audit
