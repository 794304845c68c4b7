// The append-only journal beside the database (<db_path>.journal), internal to
// airlock_audit. commit() writes a batch here with one write() and returns;
// the ingester thread moves the rows into SQLite later. See docs/audit.md,
// "Journal".
//
// Record (integers little-endian):
//   u32 magic "ALJ1" | u32 body length n | body (n bytes) | u32 CRC-32 of magic, length and body
//   body = prev_hash (64 hex) '\n' hash (64 hex) '\n' canonical_form(row)
// The body holds the canonical form itself: the bytes hashed are the bytes
// stored, so replay cannot disagree with the hash about what a field held.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "audit/chain.hpp"
#include "common/result.hpp"

namespace airlock::audit::detail {

inline constexpr std::uint32_t journal_magic = 0x314a4c41;  // bytes "ALJ1"
inline constexpr std::size_t journal_header_bytes = 8;
inline constexpr std::size_t journal_trailer_bytes = 4;
// A capped row is under 24 KiB; a length near this bound is damage, not a row.
inline constexpr std::uint32_t journal_max_body_bytes = 1u << 20;

[[nodiscard]] std::string journal_path_for(std::string_view db_path);

// CRC-32 (IEEE 802.3, the one zlib and gzip use) of data, continuing from crc.
[[nodiscard]] std::uint32_t crc32(std::string_view data, std::uint32_t crc = 0);

// A record's parts, as views into the buffer it was read from.
struct RecordView {
    std::string_view prev_hash;
    std::string_view hash;
    std::string_view canonical;
    RowView row;  // the fields of canonical
};

// Chains row onto prev_hash and appends its record to out, without a
// temporary copy of the canonical form. Returns the row's hash; on failure
// out is left as it was.
[[nodiscard]] common::Result<std::string> append_record(std::string& out, std::string_view prev_hash,
                                                        const RowView& row);

// Reads back the record at `at` of a buffer append_record() filled in this
// process (trusted: no checksum or hash check). size receives its length.
[[nodiscard]] RecordView own_record_at(std::string_view bytes, std::size_t at, std::size_t& size);

// Parses a canonical form back into a row; nullopt unless s is exactly the
// canonical form of that row (re-encoding gives s back byte for byte) and its
// kind is one this build writes.
[[nodiscard]] std::optional<RowView> parse_canonical(std::string_view s);

struct JournalRow {
    std::uint64_t offset = 0;
    RecordView record;
};

struct JournalProblem {
    std::uint64_t offset = 0;  // where the bad record starts
    std::int64_t seq = 0;      // the seq at fault; 0 when unknown and no good record precedes it
    std::string reason;
};

struct JournalScan {
    // Good records in file order: checksum, canonical form and hash verified,
    // each chained to the one before it (seq + 1, prev_hash == previous hash).
    // Views into the bytes given to parse_journal.
    std::vector<JournalRow> rows;
    // The first bad record, when one was found; rows holds those before it.
    std::optional<JournalProblem> problem;
    // Trailing bytes ignored as a torn write (an incomplete or checksum-failing
    // record with no complete record after it); 0 when none.
    std::uint64_t torn_offset = 0;
    std::uint64_t torn_bytes = 0;
    std::string torn_reason;
};

// Parses and checks a whole journal image; the result points into bytes.
[[nodiscard]] JournalScan parse_journal(std::string_view bytes);

// Reads fd from offset 0 to end of file.
[[nodiscard]] common::Result<std::string> read_whole_file(int fd, const std::string& path);

}  // namespace airlock::audit::detail
