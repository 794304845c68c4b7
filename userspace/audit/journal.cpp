#include "audit/journal.hpp"

#include <unistd.h>

#include <array>
#include <bit>
#include <charconv>
#include <cstring>

namespace airlock::audit::detail {

namespace {

// Slice-by-8 tables: table[0] is the classic byte table, table[k] advances a
// byte through k more zero bytes. Eight bytes per step keep the checksum of a
// ~500-byte row well under a microsecond on the commit path.
using CrcTables = std::array<std::array<std::uint32_t, 256>, 8>;
constexpr CrcTables make_crc_tables() {
    CrcTables t{};
    for (std::uint32_t i = 0; i < 256; ++i) {
        std::uint32_t c = i;
        for (int k = 0; k < 8; ++k) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        t[0][i] = c;
    }
    for (std::size_t k = 1; k < 8; ++k) {
        for (std::size_t i = 0; i < 256; ++i) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xff];
    }
    return t;
}
constexpr CrcTables crc_tables = make_crc_tables();

void put_u32(std::string& out, std::uint32_t v) {
    for (int i = 0; i < 4; ++i) out += static_cast<char>((v >> (8 * i)) & 0xff);
}

std::uint32_t get_u32(std::string_view s, std::size_t at) {
    std::uint32_t v = 0;
    std::memcpy(&v, s.data() + at, sizeof v);
    if constexpr (std::endian::native == std::endian::big) v = std::byteswap(v);
    return v;
}

constexpr std::size_t hash_hex_bytes = 64;
constexpr std::string_view canonical_prefix = "airlock-audit-v1|";
// prev_hash '\n' hash '\n'
constexpr std::size_t body_hash_bytes = 2 * (hash_hex_bytes + 1);
constexpr std::size_t min_body_bytes = body_hash_bytes + canonical_prefix.size();

bool is_hash_hex(std::string_view h) {
    return h.size() == hash_hex_bytes && h.find_first_not_of("0123456789abcdef") == std::string_view::npos;
}

// Sequential reader of a canonical form; any mismatch clears ok for good.
class FormReader {
public:
    explicit FormReader(std::string_view s) : s_(s) {}
    [[nodiscard]] bool ok() const { return ok_; }
    [[nodiscard]] bool at_end() const { return pos_ == s_.size(); }

    void literal(std::string_view lit) {
        if (!ok_ || s_.substr(pos_, lit.size()) != lit) {
            ok_ = false;
            return;
        }
        pos_ += lit.size();
    }
    std::int64_t integer(std::string_view name) {
        field(name);
        if (!ok_) return 0;
        const std::size_t bar = s_.find('|', pos_);
        if (bar == std::string_view::npos) {
            ok_ = false;
            return 0;
        }
        std::int64_t v = 0;
        const char* first = s_.data() + pos_;
        const char* last = s_.data() + bar;
        auto [end, ec] = std::from_chars(first, last, v);
        if (ec != std::errc() || end != last) ok_ = false;
        pos_ = bar + 1;
        return v;
    }
    std::string_view string(std::string_view name, bool last = false) {
        field(name);
        if (!ok_) return {};
        const std::size_t colon = s_.find(':', pos_);
        if (colon == std::string_view::npos) {
            ok_ = false;
            return {};
        }
        std::size_t len = 0;
        const char* first = s_.data() + pos_;
        const char* stop = s_.data() + colon;
        auto [end, ec] = std::from_chars(first, stop, len);
        if (ec != std::errc() || end != stop || len > s_.size() - colon - 1) {
            ok_ = false;
            return {};
        }
        const std::string_view v = s_.substr(colon + 1, len);
        pos_ = colon + 1 + len;
        if (!last) literal("|");
        return v;
    }

private:
    void field(std::string_view name) {
        literal(name);
        literal("=");
    }
    std::string_view s_;
    std::size_t pos_ = 0;
    bool ok_ = true;
};

// A record that starts at `at` and is complete with a matching checksum.
bool complete_record_at(std::string_view bytes, std::size_t at) {
    if (bytes.size() - at < journal_header_bytes) return false;
    if (get_u32(bytes, at) != journal_magic) return false;
    const std::uint32_t len = get_u32(bytes, at + 4);
    if (len < min_body_bytes || len > journal_max_body_bytes) return false;
    if (bytes.size() - at < journal_header_bytes + len + journal_trailer_bytes) return false;
    const std::size_t crc_at = at + journal_header_bytes + len;
    return crc32(bytes.substr(at, crc_at - at)) == get_u32(bytes, crc_at);
}

// A torn write only ever damages the end of the file. If a complete record
// still follows the damage, the damage is in the middle: corruption or an
// edit, which must not be discarded as torn. (An agent cannot plant a
// "complete record" inside a path or argv to fake this: a record's length
// field always holds a NUL byte, which those strings cannot contain.)
std::optional<std::size_t> next_complete_record(std::string_view bytes, std::size_t after) {
    std::string magic;
    put_u32(magic, journal_magic);
    for (std::size_t at = bytes.find(magic, after + 1); at != std::string_view::npos;
         at = bytes.find(magic, at + 1)) {
        if (complete_record_at(bytes, at)) return at;
    }
    return std::nullopt;
}

std::string short_hex(std::string_view h) {
    std::string out;
    for (char c : h.substr(0, 16)) out += (c >= 0x20 && c < 0x7f) ? c : '?';
    return out;
}

}  // namespace

std::string journal_path_for(std::string_view db_path) {
    return std::string(db_path) + ".journal";
}

std::uint32_t crc32(std::string_view data, std::uint32_t crc) {
    const auto& t = crc_tables;
    crc = ~crc;
    std::size_t i = 0;
    for (; i + 8 <= data.size(); i += 8) {
        const std::uint32_t a = crc ^ get_u32(data, i);
        const std::uint32_t b = get_u32(data, i + 4);
        crc = t[7][a & 0xff] ^ t[6][(a >> 8) & 0xff] ^ t[5][(a >> 16) & 0xff] ^ t[4][a >> 24] ^
              t[3][b & 0xff] ^ t[2][(b >> 8) & 0xff] ^ t[1][(b >> 16) & 0xff] ^ t[0][b >> 24];
    }
    for (; i < data.size(); ++i) crc = t[0][(crc ^ static_cast<unsigned char>(data[i])) & 0xff] ^ (crc >> 8);
    return ~crc;
}

common::Result<std::string> append_record(std::string& out, std::string_view prev_hash, const RowView& row) {
    const std::size_t start = out.size();
    put_u32(out, journal_magic);
    put_u32(out, 0);  // body length, known once the canonical form is in place
    out += prev_hash;
    out += '\n';
    const std::size_t hash_at = out.size();
    out.append(hash_hex_bytes, '0');
    out += '\n';
    const std::size_t canonical_at = out.size();
    append_canonical_form(out, row);
    auto hash = chain_hash(prev_hash, std::string_view(out).substr(canonical_at));
    const std::size_t body = out.size() - start - journal_header_bytes;
    if (!hash || hash->size() != hash_hex_bytes || body > journal_max_body_bytes) {
        out.resize(start);
        if (!hash) return std::unexpected(hash.error());
        return common::fail("audit: row too large for a journal record (" + std::to_string(body) + " bytes)");
    }
    out.replace(hash_at, hash_hex_bytes, *hash);
    for (int i = 0; i < 4; ++i) {
        out[start + 4 + static_cast<std::size_t>(i)] = static_cast<char>((body >> (8 * i)) & 0xff);
    }
    put_u32(out, crc32(std::string_view(out).substr(start)));
    return hash;
}

namespace {

bool parse_fields(std::string_view s, RowView& row) {
    FormReader r(s);
    r.literal(canonical_prefix);
    row.seq = r.integer("seq");
    row.time_us = r.integer("time_us");
    row.kind = r.string("kind");
    row.session = r.integer("session");
    row.pid = r.integer("pid");
    row.action = r.string("action");
    row.object = r.string("object");
    row.verdict = r.string("verdict");
    row.rule = r.string("rule");
    row.request_id = r.integer("request_id");
    row.actor = r.string("actor");
    row.scope = r.string("scope");
    row.reason = r.string("reason");
    row.latency_us = r.integer("latency_us");
    row.detail_json = r.string("detail_json", /*last=*/true);
    return r.ok() && r.at_end();
}

// Splits a body into its hash fields and canonical form (no checks).
RecordView split_body(std::string_view body) {
    RecordView v;
    v.prev_hash = body.substr(0, hash_hex_bytes);
    v.hash = body.substr(hash_hex_bytes + 1, hash_hex_bytes);
    v.canonical = body.substr(body_hash_bytes);
    return v;
}

}  // namespace

RecordView own_record_at(std::string_view bytes, std::size_t at, std::size_t& size) {
    const std::uint32_t len = get_u32(bytes, at + 4);
    size = journal_header_bytes + len + journal_trailer_bytes;
    RecordView v = split_body(bytes.substr(at + journal_header_bytes, len));
    // Written by append_record in this process, so it parses.
    (void)parse_fields(v.canonical, v.row);
    return v;
}

std::optional<RowView> parse_canonical(std::string_view s) {
    RowView row;
    if (!parse_fields(s, row)) return std::nullopt;
    // Rejects "+5", "007", "-0" and other spellings that parse but are not
    // what canonical_form writes.
    if (canonical_form(row) != s) return std::nullopt;
    if (!parse_kind(row.kind)) return std::nullopt;
    return row;
}

JournalScan parse_journal(std::string_view bytes) {
    JournalScan scan;
    std::size_t pos = 0;
    auto fail = [&](std::int64_t seq, std::string reason) {
        scan.problem = JournalProblem{.offset = pos, .seq = seq, .reason = std::move(reason)};
    };
    // Seq the next record must have, 0 before the first record.
    auto next_seq = [&]() -> std::int64_t {
        return scan.rows.empty() ? 0 : scan.rows.back().record.row.seq + 1;
    };
    // Damage at pos: torn when nothing complete follows, else a problem.
    auto damaged = [&](std::string what) {
        if (auto later = next_complete_record(bytes, pos)) {
            fail(next_seq(), what + ", and a complete record follows at offset " + std::to_string(*later) +
                                 " (damaged in the middle, not a torn write)");
            return;
        }
        scan.torn_offset = pos;
        scan.torn_bytes = bytes.size() - pos;
        scan.torn_reason = std::move(what);
    };

    while (pos < bytes.size()) {
        const std::size_t rem = bytes.size() - pos;
        if (rem < journal_header_bytes) {
            damaged("incomplete record header");
            break;
        }
        if (get_u32(bytes, pos) != journal_magic) {
            damaged("no record magic");
            break;
        }
        const std::uint32_t len = get_u32(bytes, pos + 4);
        if (len < min_body_bytes || len > journal_max_body_bytes) {
            damaged("implausible record length " + std::to_string(len));
            break;
        }
        const std::size_t total = journal_header_bytes + len + journal_trailer_bytes;
        if (rem < total) {
            damaged("incomplete record (" + std::to_string(rem) + " of " + std::to_string(total) + " bytes)");
            break;
        }
        const std::size_t crc_at = pos + journal_header_bytes + len;
        if (crc32(bytes.substr(pos, crc_at - pos)) != get_u32(bytes, crc_at)) {
            damaged("record checksum mismatch");
            break;
        }

        // The checksum matched: from here on a defect is an edit, never a torn write.
        const std::string_view body = bytes.substr(pos + journal_header_bytes, len);
        RecordView rec = split_body(body);
        if (body[hash_hex_bytes] != '\n' || body[body_hash_bytes - 1] != '\n' ||
            !is_hash_hex(rec.prev_hash) || !is_hash_hex(rec.hash)) {
            fail(next_seq(), "malformed record body (hash fields)");
            break;
        }
        auto row = parse_canonical(rec.canonical);
        if (!row) {
            fail(next_seq(), "record body is not the canonical form of a row of a known kind");
            break;
        }
        rec.row = *row;
        auto computed = chain_hash(rec.prev_hash, rec.canonical);
        if (!computed) {
            fail(row->seq, computed.error().message);
            break;
        }
        if (*computed != rec.hash) {
            fail(row->seq, "hash mismatch: stored " + short_hex(rec.hash) + ", computed " +
                               short_hex(*computed) + " (record edited)");
            break;
        }
        if (!scan.rows.empty()) {
            const RecordView& prev = scan.rows.back().record;
            if (row->seq != prev.row.seq + 1) {
                fail(prev.row.seq + 1, "journal seq " + std::to_string(row->seq) + " follows seq " +
                                           std::to_string(prev.row.seq) +
                                           " (record removed, inserted or reordered)");
                break;
            }
            if (rec.prev_hash != prev.hash) {
                fail(row->seq, "prev_hash mismatch: record links to " + short_hex(rec.prev_hash) +
                                   " but the previous record's hash is " + short_hex(prev.hash));
                break;
            }
        }
        scan.rows.push_back(JournalRow{.offset = pos, .record = rec});
        pos += total;
    }
    return scan;
}

common::Result<std::string> read_whole_file(int fd, const std::string& path) {
    std::string out;
    std::array<char, 65536> buf{};
    for (;;) {
        const ssize_t n = ::pread(fd, buf.data(), buf.size(), static_cast<off_t>(out.size()));
        if (n < 0) {
            if (errno == EINTR) continue;
            return common::fail_errno("read " + path);
        }
        if (n == 0) return out;
        out.append(buf.data(), static_cast<std::size_t>(n));
    }
}

}  // namespace airlock::audit::detail
