// The inspector's scanning engine.
//
//   Scanner  immutable, shareable across threads: the compiled vectorscan
//            databases (block and streaming mode) holding every enabled
//            pattern detector's head, the numeric fast path, the allowlists.
//            Compiling takes around a second, so create() keeps serialized
//            databases in Options::cache_dir, keyed by a hash of the pattern
//            set and the vectorscan version, and loads them when they fit.
//   Session  one per thread: vectorscan scratch space. scan() inspects one
//            buffer in block mode (an exec's argv and environment belong in
//            one buffer: each call has a fixed cost).
//   Stream   a large input fed chunk by chunk in vectorscan streaming mode; a
//            value split across chunks is found once, exactly as in one
//            buffer. Memory stays bounded: a tail window of at most a few
//            tens of KiB plus one chunk (chunks over 1 MiB are split).
//
// Results hold no raw values (finding.hpp). Errors are returned, never
// thrown; nothing here throws across the vectorscan boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.hpp"
#include "inspect/finding.hpp"

namespace airlock::inspect {

struct Options {
    // Detector ids to run: exact ids ("pii.us_ssn") or prefixes ending in
    // '*' ("secret.*", "*"). Empty runs every detector. An id that names no
    // detector is an error (a typo must not silently disable detection).
    std::vector<std::string> types;
    // Per-daemon secret for Finding::keyed_hash and allow_value_hashes.
    // Empty disables both: an unkeyed hash of a 9-digit SSN is reversed by
    // trying all of them.
    std::string hash_key;
    // Allowlists. A finding whose keyed hash is listed, or whose value (raw
    // or normalized) wholly matches one of the regexes (vectorscan syntax),
    // is dropped; a scan whose path matches one of the globs ('*' within a
    // component, '**' across components, '?') is skipped.
    std::vector<std::string> allow_value_hashes;
    std::vector<std::string> allow_value_regexes;
    std::vector<std::string> allow_path_globs;
    // Cap on findings kept per scan or stream; past it the scan stops and
    // ScanResult::truncated is set.
    std::size_t max_findings = 10000;
    // Well-known sample values are reported with test_value set; false
    // drops them instead.
    bool report_test_values = true;
    // Directory for serialized databases; empty disables the cache. Must be
    // writable only by the daemon: a cache file is loaded only when it is
    // owned by this process's user and not writable by group or others.
    std::string cache_dir;
};

struct ScanResult {
    std::vector<Finding> findings;  // ordered by offset, non-overlapping
    bool truncated = false;         // max_findings reached; more may exist
    bool skipped = false;           // the path matched allow_path_globs; nothing was scanned
    std::uint64_t bytes_scanned = 0;
};

class Session;
class Stream;

class Scanner {
public:
    // Loads the databases from the cache when a fitting one is there,
    // otherwise compiles them (and stores them when cache_dir is set).
    [[nodiscard]] static common::Result<Scanner> create(Options options);
    // From bytes produced by serialize() with the same detector selection
    // (Options::types); fails when they do not fit this build.
    [[nodiscard]] static common::Result<Scanner> deserialize(std::string_view bytes, Options options);
    [[nodiscard]] common::Result<std::string> serialize() const;
    // Hex SHA-256 of the selected pattern set, the vectorscan version and the
    // serialization format: the cache file's name and check.
    [[nodiscard]] static common::Result<std::string> cache_key(const Options& options);

    // Scratch space for one thread.
    [[nodiscard]] common::Result<Session> new_session() const;

    [[nodiscard]] bool loaded_from_cache() const noexcept;
    [[nodiscard]] const Options& options() const noexcept;
    // Ids of the enabled detectors, in catalogue order.
    [[nodiscard]] std::vector<std::string_view> detector_ids() const;

    struct Impl;

private:
    explicit Scanner(std::shared_ptr<const Impl> impl) : impl_(std::move(impl)) {}
    std::shared_ptr<const Impl> impl_;
};

class Session {
public:
    Session(Session&&) noexcept;
    Session& operator=(Session&&) noexcept;
    ~Session();

    // Block-mode scan of one buffer. `path` (may be empty) is only matched
    // against allow_path_globs.
    [[nodiscard]] common::Result<ScanResult> scan(std::string_view data, std::string_view path = {});
    // A streaming scan; independent of this session afterwards (it owns its
    // own scratch), so it may outlive it.
    [[nodiscard]] common::Result<Stream> open_stream(std::string_view path = {}) const;

private:
    friend class Scanner;
    struct State;
    explicit Session(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

class Stream {
public:
    Stream(Stream&&) noexcept;
    Stream& operator=(Stream&&) noexcept;
    ~Stream();

    // Feeds the next bytes of the input. After an error the stream is
    // unusable (finish() reports the error again).
    [[nodiscard]] common::Status feed(std::string_view chunk);
    // Ends the input and returns every finding not taken yet. Call once.
    [[nodiscard]] common::Result<ScanResult> finish();
    // Appends to `out` the findings that are final already (no later byte
    // can change them), in offset order, and forgets them: a caller that
    // takes them after each feed() keeps the stream's memory bounded
    // however many findings the input holds. finish() returns the rest;
    // together they are exactly what finish() alone would have returned.
    void take_findings(std::vector<Finding>& out);

    // Bytes held back for values that may continue in the next chunk: the
    // tail the largest detector needs (tens of KiB at most) plus, during a
    // feed() call, one piece of at most 1 MiB. (Findings not taken with
    // take_findings() are held too, up to Options::max_findings.)
    [[nodiscard]] std::size_t buffered_bytes() const noexcept;

private:
    friend class Session;
    struct State;
    explicit Stream(std::unique_ptr<State> state);
    std::unique_ptr<State> state_;
};

}  // namespace airlock::inspect
