#include "inspect/scanner.hpp"

// The one-shot SHA256_* functions (KeyedHasher) without deprecation warnings.
#define OPENSSL_SUPPRESS_DEPRECATED 1

#include <fcntl.h>
#include <hs/hs.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "common/unique_fd.hpp"
#include "inspect/detectors.hpp"
#include "inspect/fastpath.hpp"
#include "inspect/sha256x2.hpp"
#include "inspect/text.hpp"
#include "inspect/validators.hpp"

namespace airlock::inspect {
namespace {

using common::fail;
using common::fail_errno;

struct DatabaseDeleter {
    void operator()(hs_database_t* db) const noexcept { hs_free_database(db); }
};
struct ScratchDeleter {
    void operator()(hs_scratch_t* scratch) const noexcept { hs_free_scratch(scratch); }
};
using DatabasePtr = std::unique_ptr<hs_database_t, DatabaseDeleter>;
using ScratchPtr = std::unique_ptr<hs_scratch_t, ScratchDeleter>;

// Chunks larger than this are fed to vectorscan in pieces, so a stream's
// window never holds more than one piece plus its tail.
constexpr std::size_t max_piece = std::size_t{1} << 20;
// Block mode takes an unsigned int length; larger buffers go through a stream.
constexpr std::size_t max_block = std::size_t{1} << 30;
// Bytes a stream keeps before its earliest open position, whatever the
// detectors ask for (fast-path regions read 64 back plus a 48-byte context).
constexpr std::size_t fast_path_keep_behind = 256;
constexpr std::size_t max_cache_file = std::size_t{64} << 20;
constexpr std::string_view cache_magic = "ALINSPv1";

std::string hs_error_text(hs_error_t rc) {
    switch (rc) {
        case HS_INVALID: return "invalid parameter";
        case HS_NOMEM: return "out of memory";
        case HS_SCAN_TERMINATED: return "scan terminated";
        case HS_COMPILER_ERROR: return "compile error";
        case HS_DB_VERSION_ERROR: return "database built by another vectorscan version";
        case HS_DB_PLATFORM_ERROR: return "database built for another platform";
        case HS_DB_MODE_ERROR: return "database mode mismatch";
        case HS_BAD_ALIGN: return "bad alignment";
        case HS_BAD_ALLOC: return "allocator returned misaligned memory";
        case HS_SCRATCH_IN_USE: return "scratch space in use";
        case HS_ARCH_ERROR: return "CPU lacks instructions vectorscan needs";
        case HS_INSUFFICIENT_SPACE: return "insufficient space";
        default: return "vectorscan error " + std::to_string(rc);
    }
}

std::string to_hex(const unsigned char* bytes, std::size_t n) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out(n * 2, '0');
    for (std::size_t i = 0; i < n; ++i) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 0xF];
    }
    return out;
}

// "/srv/**/secrets/*.env" as a vectorscan regex: '**' crosses '/', '*' and
// '?' do not, everything else is literal.
std::string glob_to_regex(std::string_view glob) {
    std::string out;
    for (std::size_t i = 0; i < glob.size(); ++i) {
        const char c = glob[i];
        if (c == '*') {
            if (i + 1 < glob.size() && glob[i + 1] == '*') {
                ++i;
                if (i + 1 < glob.size() && glob[i + 1] == '/') {
                    ++i;
                    out += "(?:.*/)?";  // "a/**/b" also matches "a/b"
                } else {
                    out += ".*";
                }
            } else {
                out += "[^/]*";
            }
        } else if (c == '?') {
            out += "[^/]";
        } else if (is_alnum(c) || c == '/' || c == '_' || c == '-') {
            out.push_back(c);
        } else {
            static constexpr char hex[] = "0123456789abcdef";
            const auto byte = static_cast<unsigned char>(c);
            out += "\\x";
            out.push_back(hex[byte >> 4]);
            out.push_back(hex[byte & 0xF]);
        }
    }
    return out;
}

struct CompileInput {
    std::vector<std::string> expressions;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
};

common::Result<DatabasePtr> compile(const CompileInput& input, unsigned mode, std::string_view what) {
    std::vector<const char*> expressions;
    expressions.reserve(input.expressions.size());
    for (const std::string& e : input.expressions) expressions.push_back(e.c_str());
    hs_database_t* db = nullptr;
    hs_compile_error_t* error = nullptr;
    const hs_error_t rc = hs_compile_multi(expressions.data(), input.flags.data(), input.ids.data(),
                                           static_cast<unsigned>(expressions.size()), mode, nullptr, &db, &error);
    if (rc != HS_SUCCESS) {
        std::string message = "compiling " + std::string(what) + ": ";
        if (error != nullptr) {
            message += error->message != nullptr ? error->message : "unknown error";
            if (error->expression >= 0 && static_cast<std::size_t>(error->expression) < input.expressions.size()) {
                message += " in expression '" + input.expressions[static_cast<std::size_t>(error->expression)] + "'";
            }
            hs_free_compile_error(error);
        } else {
            message += hs_error_text(rc);
        }
        return fail(message);
    }
    return DatabasePtr(db);
}

common::Status grow_scratch(ScratchPtr& scratch, const hs_database_t* db) {
    if (db == nullptr) return {};
    hs_scratch_t* raw = scratch.release();
    const hs_error_t rc = hs_alloc_scratch(db, &raw);
    scratch.reset(raw);
    if (rc != HS_SUCCESS) return fail("allocating vectorscan scratch: " + hs_error_text(rc));
    return {};
}

common::Result<ScratchPtr> clone_scratch(const ScratchPtr& prototype) {
    if (!prototype) return ScratchPtr{};
    hs_scratch_t* clone = nullptr;
    const hs_error_t rc = hs_clone_scratch(prototype.get(), &clone);
    if (rc != HS_SUCCESS) return fail("cloning vectorscan scratch: " + hs_error_text(rc));
    return ScratchPtr(clone);
}

common::Result<std::vector<const Detector*>> select_detectors(const std::vector<std::string>& types) {
    const auto all = all_detectors();
    std::vector<bool> chosen(all.size(), types.empty());
    for (const std::string& type : types) {
        bool matched = false;
        const bool prefix = !type.empty() && type.back() == '*';
        const std::string_view wanted = prefix ? std::string_view(type).substr(0, type.size() - 1) : type;
        for (std::size_t i = 0; i < all.size(); ++i) {
            if (prefix ? all[i].id.starts_with(wanted) : all[i].id == wanted) {
                chosen[i] = true;
                matched = true;
            }
        }
        if (!matched) return fail("unknown detector type '" + type + "'");
    }
    std::vector<const Detector*> enabled;
    for (std::size_t i = 0; i < all.size(); ++i) {
        if (chosen[i]) enabled.push_back(&all[i]);
    }
    return enabled;
}

// Read-only file with sane ownership: a cache file is code for vectorscan's
// interpreter, so one planted by someone else must not be loaded.
common::Result<std::string> read_trusted_file(const std::string& path) {
    common::UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) return fail_errno("open " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return fail_errno("fstat " + path);
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
        return fail(path + ": not a regular file owned by this user and writable only by it");
    }
    if (static_cast<std::size_t>(st.st_size) > max_cache_file) return fail(path + ": too large");
    std::string bytes(static_cast<std::size_t>(st.st_size), '\0');
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::read(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return fail_errno("read " + path);
        if (n == 0) return fail(path + ": shrank while reading");
        done += static_cast<std::size_t>(n);
    }
    return bytes;
}

// Written to a temporary name and renamed, so a reader never sees half a file.
common::Status write_file_atomically(const std::string& dir, const std::string& name, std::string_view bytes) {
    if (::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST) return fail_errno("mkdir " + dir);
    static std::atomic<unsigned> counter{0};
    const std::string final_path = dir + "/" + name;
    const std::string temp_path =
        final_path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(counter.fetch_add(1));
    common::UniqueFd fd(::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
    if (!fd) return fail_errno("create " + temp_path);
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) {
            const int saved = errno;
            ::unlink(temp_path.c_str());
            return common::fail(saved, "write " + temp_path);
        }
        done += static_cast<std::size_t>(n);
    }
    fd.reset();
    if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
        const int saved = errno;
        ::unlink(temp_path.c_str());
        return common::fail(saved, "rename " + temp_path);
    }
    return {};
}

void append_u64(std::string& out, std::uint64_t v) {
    for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}

bool read_u64(std::string_view& in, std::uint64_t& v) {
    if (in.size() < 8) return false;
    v = 0;
    for (int i = 0; i < 8; ++i) v |= std::uint64_t{static_cast<unsigned char>(in[static_cast<std::size_t>(i)])} << (8 * i);
    in.remove_prefix(8);
    return true;
}

// HMAC-SHA256 (RFC 2104) with the key's inner and outer pad blocks hashed
// once. Each value then costs two plain-struct copies and two one-block
// digests through OpenSSL's SHA256_* functions: on dense data (a finding
// every 20 bytes) the EVP interface's context copies, provider lookups and
// cleanup cost as much again as the hashing itself. Those functions are
// deprecated in OpenSSL 3 only in favour of EVP; they are the same code.
class KeyedHasher {
public:
    [[nodiscard]] common::Status init(std::string_view key) {
        if (key.empty()) return {};
        constexpr std::size_t block_size = 64;
        unsigned char block[block_size] = {};
        if (key.size() > block_size) {
            SHA256(reinterpret_cast<const unsigned char*>(key.data()), key.size(), block);
        } else {
            std::memcpy(block, key.data(), key.size());
        }
        unsigned char inner_pad[block_size];
        unsigned char outer_pad[block_size];
        for (std::size_t i = 0; i < block_size; ++i) {
            inner_pad[i] = static_cast<unsigned char>(block[i] ^ 0x36);
            outer_pad[i] = static_cast<unsigned char>(block[i] ^ 0x5c);
        }
        const bool ok = SHA256_Init(&inner_) == 1 && SHA256_Update(&inner_, inner_pad, block_size) == 1 &&
                        SHA256_Init(&outer_) == 1 && SHA256_Update(&outer_, outer_pad, block_size) == 1;
        if (!ok) return fail("setting up HMAC-SHA256 failed");
        enabled_ = true;
        return {};
    }

    [[nodiscard]] bool enabled() const noexcept { return enabled_; }

    [[nodiscard]] KeyedHash hash(std::string_view value) const {
        if (!enabled_) return {};
        unsigned char inner_digest[SHA256_DIGEST_LENGTH];
        KeyedHash::Bytes mac{};
        SHA256_CTX work = inner_;
        bool ok = SHA256_Update(&work, value.data(), value.size()) == 1 && SHA256_Final(inner_digest, &work) == 1;
        work = outer_;
        ok = ok && SHA256_Update(&work, inner_digest, sizeof inner_digest) == 1 && SHA256_Final(mac.data(), &work) == 1;
        return ok ? KeyedHash(mac) : KeyedHash();
    }

    // Values up to this size fit one padded block: hash2() takes them.
    static constexpr std::size_t pair_max = 55;

    // Whether hash2() is there (the CPU has the SHA extensions).
    [[nodiscard]] bool pairs() const noexcept { return enabled_ && sha256_x2_available(); }

    // The HMACs of two values of at most pair_max bytes, their compressions
    // interleaved (sha256x2.hpp): the same bytes hash() returns.
    void hash2(std::string_view a, std::string_view b, KeyedHash& mac_a, KeyedHash& mac_b) const noexcept {
        constexpr std::size_t block_size = 64;
        unsigned char block_a[block_size];
        unsigned char block_b[block_size];
        std::uint32_t state_a[8];
        std::uint32_t state_b[8];
        // Inner: H(K ^ ipad || value), the pad block already in inner_.
        pad(block_a, a);
        pad(block_b, b);
        std::memcpy(state_a, inner_.h, sizeof state_a);
        std::memcpy(state_b, inner_.h, sizeof state_b);
        sha256_compress_x2(state_a, block_a, state_b, block_b);
        // Outer: H(K ^ opad || inner digest).
        unsigned char digest[SHA256_DIGEST_LENGTH];
        big_endian(state_a, digest);
        pad(block_a, std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
        big_endian(state_b, digest);
        pad(block_b, std::string_view(reinterpret_cast<const char*>(digest), sizeof digest));
        std::memcpy(state_a, outer_.h, sizeof state_a);
        std::memcpy(state_b, outer_.h, sizeof state_b);
        sha256_compress_x2(state_a, block_a, state_b, block_b);
        KeyedHash::Bytes bytes;
        big_endian(state_a, bytes.data());
        mac_a = KeyedHash(bytes);
        big_endian(state_b, bytes.data());
        mac_b = KeyedHash(bytes);
    }

private:
    // The last block of a message of one pad block plus `tail` (at most 55 bytes).
    static void pad(unsigned char block[64], std::string_view tail) noexcept {
        std::memset(block, 0, 64);
        std::memcpy(block, tail.data(), tail.size());
        block[tail.size()] = 0x80;
        const std::uint64_t bits = (64 + tail.size()) * 8;
        for (int i = 0; i < 8; ++i) block[63 - i] = static_cast<unsigned char>(bits >> (8 * i));
    }
    static void big_endian(const std::uint32_t state[8], unsigned char out[32]) noexcept {
        for (int i = 0; i < 8; ++i) {
            for (int k = 0; k < 4; ++k) out[4 * i + k] = static_cast<unsigned char>(state[i] >> (24 - 8 * k));
        }
    }

    SHA256_CTX inner_{};
    SHA256_CTX outer_{};
    bool enabled_ = false;
};

}  // namespace

// --- Scanner::Impl ---------------------------------------------------------------------

struct HeadInfo {
    const Detector* detector = nullptr;
    std::size_t fixed_width = 0;  // 0 when the head's width varies
    std::size_t max_width = 0;
};

struct Scanner::Impl {
    explicit Impl(Options opts, std::vector<const Detector*> selected)
        : options(std::move(opts)), enabled(std::move(selected)), fast_path(enabled) {}

    Options options;
    std::vector<const Detector*> enabled;
    FastPath fast_path;
    std::vector<HeadInfo> heads;  // indexed by vectorscan expression id
    DatabasePtr block_db;
    DatabasePtr stream_db;
    // Allowlist regexes: ids [0, path_pattern_count) are path globs, the rest value regexes.
    DatabasePtr allow_db;
    std::size_t path_pattern_count = 0;
    std::size_t value_pattern_count = 0;
    std::vector<KeyedHash::Bytes> allow_hashes;  // sorted
    KeyedHasher hasher;
    ScratchPtr main_prototype;
    ScratchPtr aux_prototype;
    mutable std::mutex clone_mutex;  // hs_clone_scratch reads the prototype
    std::size_t keep_behind = fast_path_keep_behind;
    bool from_cache = false;
    std::string key;

    [[nodiscard]] common::Status finish_setup();
    [[nodiscard]] bool path_allowlisted(std::string_view path, hs_scratch_t* aux) const;
    [[nodiscard]] bool value_allowlisted(std::string_view value, hs_scratch_t* aux) const;
};

namespace {

CompileInput head_input(const std::vector<const Detector*>& enabled) {
    CompileInput input;
    for (const Detector* d : enabled) {
        if (d->engine != Engine::vectorscan) continue;
        for (std::string_view head : d->heads) {
            input.ids.push_back(static_cast<unsigned>(input.expressions.size()));
            input.expressions.emplace_back(head);
            input.flags.push_back(0);  // all match ends, no start-of-match tracking
        }
    }
    return input;
}

common::Result<std::string> compute_cache_key(const std::vector<const Detector*>& enabled) {
    std::string material = "airlock-inspect-databases/1";
    material.push_back('\0');
    material += hs_version();
    material.push_back('\0');
    for (const Detector* d : enabled) {
        if (d->engine != Engine::vectorscan) continue;
        material += d->id;
        material.push_back('\0');
        for (std::string_view head : d->heads) {
            material += head;
            material.push_back('\0');
        }
    }
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (EVP_Digest(material.data(), material.size(), digest, &length, EVP_sha256(), nullptr) != 1) {
        return fail("hashing the pattern set failed");
    }
    return to_hex(digest, length);
}

common::Result<std::unique_ptr<Scanner::Impl>> new_impl(Options options) {
    if (options.max_findings == 0) return fail("max_findings must be at least 1");
    auto selected = select_detectors(options.types);
    if (!selected) return std::unexpected(selected.error());
    auto impl = std::make_unique<Scanner::Impl>(std::move(options), std::move(*selected));
    auto key = compute_cache_key(impl->enabled);
    if (!key) return std::unexpected(key.error());
    impl->key = std::move(*key);
    return impl;
}

common::Status compile_heads(Scanner::Impl& impl) {
    const CompileInput input = head_input(impl.enabled);
    impl.heads.clear();
    for (std::size_t i = 0; i < input.expressions.size(); ++i) {
        hs_expr_info_t* info = nullptr;
        hs_compile_error_t* error = nullptr;
        if (hs_expression_info(input.expressions[i].c_str(), 0, &info, &error) != HS_SUCCESS) {
            std::string message = error != nullptr && error->message != nullptr ? error->message : "invalid";
            hs_free_compile_error(error);
            return fail("detector head '" + input.expressions[i] + "': " + message);
        }
        HeadInfo head;
        head.max_width = info->max_width;
        head.fixed_width = info->min_width == info->max_width ? info->min_width : 0;
        std::free(info);
        if (head.max_width == UINT_MAX || head.max_width > 4096) {
            return fail("detector head '" + input.expressions[i] + "' has no small maximum width");
        }
        impl.heads.push_back(head);
    }
    if (input.expressions.empty()) return {};
    auto block = compile(input, HS_MODE_BLOCK, "detector heads (block mode)");
    if (!block) return std::unexpected(block.error());
    auto stream = compile(input, HS_MODE_STREAM, "detector heads (streaming mode)");
    if (!stream) return std::unexpected(stream.error());
    impl.block_db = std::move(*block);
    impl.stream_db = std::move(*stream);
    return {};
}

// Attaches detectors to the head table (compiled or deserialized) in id order.
common::Status bind_heads(Scanner::Impl& impl) {
    std::size_t id = 0;
    for (const Detector* d : impl.enabled) {
        if (d->engine != Engine::vectorscan) continue;
        for (std::size_t k = 0; k < d->heads.size(); ++k, ++id) {
            if (id >= impl.heads.size()) return fail("head table does not match the detector set");
            impl.heads[id].detector = d;
        }
    }
    if (id != impl.heads.size()) return fail("head table does not match the detector set");
    return {};
}

common::Result<std::string> serialize_database(const hs_database_t* db) {
    char* bytes = nullptr;
    std::size_t length = 0;
    const hs_error_t rc = hs_serialize_database(db, &bytes, &length);
    if (rc != HS_SUCCESS) return fail("serializing database: " + hs_error_text(rc));
    std::string out(bytes, length);
    std::free(bytes);
    return out;
}

common::Result<DatabasePtr> deserialize_database(std::string_view bytes) {
    hs_database_t* db = nullptr;
    const hs_error_t rc = hs_deserialize_database(bytes.data(), bytes.size(), &db);
    if (rc != HS_SUCCESS) return fail("deserializing database: " + hs_error_text(rc));
    return DatabasePtr(db);
}

common::Result<std::string> serialize_impl(const Scanner::Impl& impl) {
    std::string out(cache_magic);
    out += impl.key;
    append_u64(out, impl.heads.size());
    for (const HeadInfo& head : impl.heads) {
        append_u64(out, head.fixed_width);
        append_u64(out, head.max_width);
    }
    for (const hs_database_t* db : {impl.block_db.get(), impl.stream_db.get()}) {
        if (db == nullptr) {
            append_u64(out, 0);
            continue;
        }
        auto bytes = serialize_database(db);
        if (!bytes) return std::unexpected(bytes.error());
        append_u64(out, bytes->size());
        out += *bytes;
    }
    return out;
}

common::Status load_serialized(Scanner::Impl& impl, std::string_view in) {
    if (!in.starts_with(cache_magic)) return fail("not a serialized inspector database");
    in.remove_prefix(cache_magic.size());
    if (in.size() < impl.key.size() || in.substr(0, impl.key.size()) != impl.key) {
        return fail("serialized database was built for another pattern set or vectorscan version");
    }
    in.remove_prefix(impl.key.size());
    std::uint64_t count = 0;
    if (!read_u64(in, count) || count > 4096) return fail("serialized database is truncated");
    impl.heads.assign(static_cast<std::size_t>(count), HeadInfo{});
    for (HeadInfo& head : impl.heads) {
        std::uint64_t fixed = 0;
        std::uint64_t max = 0;
        if (!read_u64(in, fixed) || !read_u64(in, max) || max > 4096) return fail("serialized database is truncated");
        head.fixed_width = static_cast<std::size_t>(fixed);
        head.max_width = static_cast<std::size_t>(max);
    }
    DatabasePtr* targets[] = {&impl.block_db, &impl.stream_db};
    for (DatabasePtr* target : targets) {
        std::uint64_t length = 0;
        if (!read_u64(in, length) || length > in.size()) return fail("serialized database is truncated");
        if (length > 0) {
            auto db = deserialize_database(in.substr(0, static_cast<std::size_t>(length)));
            if (!db) return std::unexpected(db.error());
            *target = std::move(*db);
        }
        in.remove_prefix(static_cast<std::size_t>(length));
    }
    if (!in.empty()) return fail("serialized database has trailing bytes");
    if (count > 0 && (!impl.block_db || !impl.stream_db)) return fail("serialized database lacks a database");
    return {};
}

}  // namespace

common::Status Scanner::Impl::finish_setup() {
    if (auto bound = bind_heads(*this); !bound) return bound;
    for (const HeadInfo& head : heads) {
        const Detector& d = *head.detector;
        keep_behind = std::max<std::size_t>(keep_behind, head.max_width + d.lookbehind + d.context_window + 64);
    }
    // Allowlists.
    CompileInput allow;
    for (const std::string& glob : options.allow_path_globs) {
        allow.ids.push_back(static_cast<unsigned>(allow.expressions.size()));
        allow.expressions.push_back("^(?:" + glob_to_regex(glob) + ")");
        allow.flags.push_back(HS_FLAG_DOTALL);
    }
    path_pattern_count = allow.expressions.size();
    for (const std::string& regex : options.allow_value_regexes) {
        allow.ids.push_back(static_cast<unsigned>(allow.expressions.size()));
        allow.expressions.push_back("^(?:" + regex + ")");
        allow.flags.push_back(HS_FLAG_DOTALL);
    }
    value_pattern_count = allow.expressions.size() - path_pattern_count;
    if (!allow.expressions.empty()) {
        auto db = compile(allow, HS_MODE_BLOCK, "allowlist patterns");
        if (!db) return std::unexpected(db.error());
        allow_db = std::move(*db);
    }
    // An entry that is not 64 hex digits can never equal a keyed hash.
    for (const std::string& hash : options.allow_value_hashes) {
        const KeyedHash parsed = KeyedHash::from_hex(hash);
        if (!parsed.empty()) allow_hashes.push_back(parsed.bytes());
    }
    std::sort(allow_hashes.begin(), allow_hashes.end());
    if (auto keyed = hasher.init(options.hash_key); !keyed) return keyed;

    if (auto grown = grow_scratch(main_prototype, block_db.get()); !grown) return grown;
    if (auto grown = grow_scratch(main_prototype, stream_db.get()); !grown) return grown;
    if (auto grown = grow_scratch(aux_prototype, allow_db.get()); !grown) return grown;
    return {};
}

namespace {

struct AllowQuery {
    std::size_t first_id;
    std::size_t end_id;
    unsigned long long length;
    bool matched;
};

int on_allow_match(unsigned id, unsigned long long, unsigned long long to, unsigned, void* context) {
    auto* query = static_cast<AllowQuery*>(context);
    if (id >= query->first_id && id < query->end_id && to == query->length) {
        query->matched = true;
        return 1;  // one whole match decides
    }
    return 0;
}

bool allow_scan(const hs_database_t* db, hs_scratch_t* scratch, std::string_view text, std::size_t first,
                std::size_t end) {
    if (db == nullptr || scratch == nullptr || first == end || text.size() > max_block) return false;
    AllowQuery query{first, end, text.size(), false};
    hs_scan(db, text.data(), static_cast<unsigned>(text.size()), 0, scratch, on_allow_match, &query);
    return query.matched;
}

}  // namespace

bool Scanner::Impl::path_allowlisted(std::string_view path, hs_scratch_t* aux) const {
    return !path.empty() && allow_scan(allow_db.get(), aux, path, 0, path_pattern_count);
}

bool Scanner::Impl::value_allowlisted(std::string_view value, hs_scratch_t* aux) const {
    return allow_scan(allow_db.get(), aux, value, path_pattern_count, path_pattern_count + value_pattern_count);
}


// --- ScanState: one scan's bookkeeping, shared by block scans and streams -----------------

namespace {

class ScanState final : public FastPathSink {
public:
    ScanState(const Scanner::Impl& impl, hs_scratch_t* aux)
        : impl_(impl), aux_(aux), last_end_(all_detectors().size(), 0) {}
    ScanState(const ScanState&) = delete;
    ScanState& operator=(const ScanState&) = delete;
    ~ScanState() override = default;

    // The bytes [base, base + window.size()) of the input are in `window`;
    // `complete` says the input ends there.
    void set_window(std::string_view window, std::uint64_t base, bool complete) {
        window_ = window;
        base_ = base;
        complete_ = complete;
    }
    [[nodiscard]] std::uint64_t window_end() const { return base_ + window_.size(); }
    [[nodiscard]] bool stopped() const { return stopped_; }

    // A head matched, ending at absolute offset `end`.
    int on_head(unsigned id, std::uint64_t end) {
        if (stopped_ || id >= impl_.heads.size()) return stopped_ ? 1 : 0;
        const HeadInfo& head = impl_.heads[id];
        if (complete_ || end + head.detector->lookahead <= window_end()) {
            resolve(head, end);
        } else {
            pending_.push_back(Pending{id, end});
        }
        return stopped_ ? 1 : 0;
    }

    // Resolves queued heads whose lookahead bytes have arrived (all of them
    // once the input is complete). Per detector they stay in order.
    void resolve_ready() {
        std::size_t kept = 0;
        for (const Pending& p : pending_) {
            const HeadInfo& head = impl_.heads[p.id];
            if (!stopped_ && (complete_ || p.end + head.detector->lookahead <= window_end())) {
                resolve(head, p.end);
            } else if (!stopped_) {
                pending_[kept++] = p;
            }
        }
        pending_.resize(kept);
    }

    void scan_fast_path() {
        if (stopped_ || !impl_.fast_path.active()) return;
        const std::size_t from = fast_resume_ > base_ ? static_cast<std::size_t>(fast_resume_ - base_) : 0;
        std::size_t min_start =
            fast_min_start_ > base_ ? static_cast<std::size_t>(fast_min_start_ - base_) : 0;
        const std::size_t resume = impl_.fast_path.scan(window_, from, complete_, min_start, *this);
        fast_resume_ = base_ + resume;
        fast_min_start_ = std::max(fast_min_start_, base_ + min_start);
    }

    bool on_fast_match(const FastMatch& match) override {
        accept(*match.detector, base_ + match.start, base_ + match.end, match.confidence);
        return !stopped_;
    }

    // The earliest absolute offset a later step may still read.
    [[nodiscard]] std::uint64_t keep_from() const {
        std::uint64_t keep = window_end();
        if (impl_.fast_path.active() && !stopped_) keep = std::min(keep, fast_resume_);
        for (const Pending& p : pending_) keep = std::min(keep, p.end);
        keep = keep > impl_.keep_behind ? keep - impl_.keep_behind : 0;
        return std::max(keep, base_);
    }

    // The window is about to start at `new_base`: findings still without a
    // line number get one now, and the line cursor leaves the dropped bytes.
    void forget_before(std::uint64_t new_base) {
        assign_lines();
        if (line_cursor_ < new_base) line_at(new_base);
    }

    ScanResult finish(std::uint64_t bytes_scanned) {
        assign_lines();
        ScanResult result;
        result.bytes_scanned = bytes_scanned;
        result.truncated = truncated_;
        settle(UINT64_MAX, result.findings);
        return result;
    }

    // Moves to `out`, in offset order, the findings no later one can
    // overlap: every finding starting before `bound` has been found (no
    // later step reads before it, keep_from()), so the overlap sweep can
    // run up to there and what it keeps ending by `bound` is final. A
    // stream delivers its findings this way as it goes, and a dense input
    // needs no memory for the findings already handed over.
    //
    // Overlaps: the higher priority wins (a GitHub token over the generic
    // "token = ..." around it, an IBAN over digits inside it), then the
    // longer, then the earlier. One sweep in offset order: a finding
    // replaces the kept ones it overlaps only if it beats all of them.
    // Every finding must have its line (assign_lines()) first.
    void settle(std::uint64_t bound, std::vector<Finding>& out) {
        flush_hashes();
        std::size_t ready = 0;
        for (const Finding& f : findings_) ready += f.offset < bound ? 1 : 0;
        if (ready > 0) {
            const std::vector<std::size_t> order = offset_order(0, findings_.size());
            for (std::size_t i : order) {
                Finding& f = findings_[i];
                if (f.offset >= bound) break;  // in offset order: the rest wait too
                const std::uint8_t priority = priorities_[i];
                auto beats = [&](std::size_t k) {
                    if (priority != kept_priorities_[k]) return priority > kept_priorities_[k];
                    if (f.length != kept_[k].length) return f.length > kept_[k].length;
                    return f.offset < kept_[k].offset;
                };
                std::size_t overlapping = 0;
                bool wins = true;
                while (overlapping < kept_.size() - kept_begin_) {
                    const std::size_t k = kept_.size() - 1 - overlapping;
                    if (kept_[k].offset + kept_[k].length <= f.offset) break;
                    wins = wins && beats(k);
                    ++overlapping;
                }
                if (!wins) continue;
                kept_.resize(kept_.size() - overlapping);
                kept_priorities_.resize(kept_.size());
                kept_.push_back(std::move(f));
                kept_priorities_.push_back(priority);
            }
            // The findings not swept yet start at `bound` or later.
            std::size_t next = 0;
            for (std::size_t i = 0; i < findings_.size(); ++i) {
                if (findings_[i].offset < bound) continue;
                if (next != i) {
                    findings_[next] = std::move(findings_[i]);
                    priorities_[next] = priorities_[i];
                }
                ++next;
            }
            findings_.resize(next);
            priorities_.resize(next);
            lines_done_ = next;  // assign_lines() ran before
        }
        while (kept_begin_ < kept_.size() && kept_[kept_begin_].offset + kept_[kept_begin_].length <= bound) {
            out.push_back(std::move(kept_[kept_begin_++]));
        }
        if (kept_begin_ == kept_.size() || kept_begin_ > 4096) {
            kept_.erase(kept_.begin(), kept_.begin() + static_cast<std::ptrdiff_t>(kept_begin_));
            kept_priorities_.erase(kept_priorities_.begin(),
                                   kept_priorities_.begin() + static_cast<std::ptrdiff_t>(kept_begin_));
            kept_begin_ = 0;
        }
    }

private:
    struct Pending {
        unsigned id;
        std::uint64_t end;
    };

    void resolve(const HeadInfo& head, std::uint64_t end) {
        const Detector& d = *head.detector;
        HeadMatch match;
        match.end = static_cast<std::size_t>(end - base_);
        if (head.fixed_width != 0 && match.end >= head.fixed_width) match.fixed_start = match.end - head.fixed_width;
        const auto located = d.locate(window_, match);
        if (!located || located->end <= located->start) return;
        const std::uint64_t start_abs = base_ + located->start;
        const std::uint64_t end_abs = base_ + located->end;
        const std::size_t index = detector_index(d);
        if (start_abs < last_end_[index]) return;  // the same value seen from another head end
        last_end_[index] = end_abs;
        float confidence = located->confidence > 0 ? located->confidence : d.confidence;
        if (!d.context_words.empty()) {
            const std::size_t from = located->start > d.context_window ? located->start - d.context_window : 0;
            const std::string_view before = window_.substr(from, located->start - from);
            const bool seen = contains_any_word(before, d.context_words);
            if (!seen && d.context_required) return;
            if (seen) confidence = std::min(0.99F, confidence + 0.1F);
        }
        accept(d, start_abs, end_abs, confidence, located->test_value);
    }

    void accept(const Detector& d, std::uint64_t start, std::uint64_t end, float confidence,
                bool known_sample = false) {
        if (stopped_) return;
        const std::string_view raw = window_.substr(static_cast<std::size_t>(start - base_),
                                                    static_cast<std::size_t>(end - start));
        normalize_into(d, raw, normalized_);
        const std::string_view normalized = normalized_;
        if (d.validate != nullptr && !d.validate(normalized)) return;
        const bool test_value = known_sample || is_known_test_value(d.id, normalized);
        if (test_value && !impl_.options.report_test_values) return;
        if (impl_.value_pattern_count > 0 &&
            (impl_.value_allowlisted(raw, aux_) || impl_.value_allowlisted(normalized, aux_))) {
            return;
        }
        // Without hash allowlists nothing waits for the hash: it is computed
        // with the next finding's (two interleaved, see sha256x2.hpp).
        const bool pair = impl_.hasher.pairs() && impl_.allow_hashes.empty() &&
                          normalized.size() <= KeyedHasher::pair_max;
        const KeyedHash hash = pair ? KeyedHash() : impl_.hasher.hash(normalized);
        if (!hash.empty() && !impl_.allow_hashes.empty() &&
            std::binary_search(impl_.allow_hashes.begin(), impl_.allow_hashes.end(), hash.bytes())) {
            return;
        }
        if (accepted_ >= impl_.options.max_findings) {
            truncated_ = true;
            stopped_ = true;
            return;
        }
        // Built in place: a Finding is ~170 bytes, and it is moved twice
        // more on its way out (settle()).
        Finding& f = findings_.emplace_back();
        f.type = d.id;
        f.offset = start;
        f.length = static_cast<std::uint32_t>(end - start);
        f.confidence = confidence;
        f.severity = d.severity;
        f.test_value = test_value;
        masked_preview_into(d, raw, f.preview);
        f.keyed_hash = hash;
        priorities_.push_back(d.priority);
        ++accepted_;
        if (pair) hash_later(findings_.size() - 1, normalized);
    }

    // Queues the keyed hash of findings_[index]; two queued are hashed together.
    void hash_later(std::size_t index, std::string_view normalized) {
        if (hash_waiting_ == npos) {
            hash_waiting_ = index;
            waiting_value_.assign(normalized);
            return;
        }
        impl_.hasher.hash2(waiting_value_, normalized, findings_[hash_waiting_].keyed_hash, findings_[index].keyed_hash);
        hash_waiting_ = npos;
    }

    // Hashes a finding still waiting for its pair (before findings leave).
    void flush_hashes() {
        if (hash_waiting_ == npos) return;
        findings_[hash_waiting_].keyed_hash = impl_.hasher.hash(waiting_value_);
        hash_waiting_ = npos;
    }

    // Line numbers for the findings added since the last call, in offset
    // order so the cursor mostly moves forward: one pass over the bytes.
    void assign_lines() {
        if (lines_done_ == findings_.size()) return;
        for (std::size_t i : offset_order(lines_done_, findings_.size())) findings_[i].line = line_at(findings_[i].offset);
        lines_done_ = findings_.size();
    }

    // Indices [from, to) of findings_ by offset; at one offset the finding
    // that wins an overlap comes first. Findings arrive as two mostly
    // ordered runs (heads, fast path), so the keys are small and often
    // already sorted.
    [[nodiscard]] std::vector<std::size_t> offset_order(std::size_t from, std::size_t to) const {
        struct Key {
            std::uint64_t offset;
            std::uint64_t rank;  // priority high first, then length long first, then arrival
            std::size_t index;
        };
        std::vector<Key> keys;
        keys.reserve(to - from);
        for (std::size_t i = from; i < to; ++i) {
            const std::uint64_t rank = (static_cast<std::uint64_t>(255 - priorities_[i]) << 56) |
                                       (std::uint64_t{0xFFFFFFFFU - findings_[i].length} << 24) | (i & 0xFFFFFF);
            keys.push_back(Key{findings_[i].offset, rank, i});
        }
        auto less = [](const Key& a, const Key& b) { return a.offset != b.offset ? a.offset < b.offset : a.rank < b.rank; };
        // Merge the ascending runs when there are few of them (the usual
        // case: heads, then fast path); sort otherwise.
        std::vector<std::size_t> run_starts{0};
        for (std::size_t i = 1; i < keys.size() && run_starts.size() <= 8; ++i) {
            if (less(keys[i], keys[i - 1])) run_starts.push_back(i);
        }
        if (run_starts.size() > 8) {
            std::sort(keys.begin(), keys.end(), less);
        } else {
            for (std::size_t r = 1; r < run_starts.size(); ++r) {
                const std::size_t run_end = r + 1 < run_starts.size() ? run_starts[r + 1] : keys.size();
                std::inplace_merge(keys.begin(), keys.begin() + static_cast<std::ptrdiff_t>(run_starts[r]),
                                   keys.begin() + static_cast<std::ptrdiff_t>(run_end), less);
            }
        }
        std::vector<std::size_t> order;
        order.reserve(keys.size());
        for (const Key& k : keys) order.push_back(k.index);
        return order;
    }

    // 1-based line of an absolute offset inside the window, by moving a
    // cursor from the last position asked. The cursor never points before
    // the window (forget_before moves it).
    std::uint64_t line_at(std::uint64_t offset) {
        const auto at = [&](std::uint64_t abs) { return window_.data() + (abs - base_); };
        if (offset >= line_cursor_) {
            const std::uint64_t from = std::max(line_cursor_, base_);
            line_number_ += count_byte(at(from), static_cast<std::size_t>(offset - from), '\n');
        } else {
            line_number_ -= count_byte(at(offset), static_cast<std::size_t>(line_cursor_ - offset), '\n');
        }
        line_cursor_ = offset;
        return line_number_;
    }

    const Scanner::Impl& impl_;
    hs_scratch_t* aux_;
    std::string_view window_;
    std::uint64_t base_ = 0;
    bool complete_ = false;
    std::vector<Pending> pending_;
    std::vector<std::uint64_t> last_end_;  // per catalogue index
    std::uint64_t fast_resume_ = 0;
    std::uint64_t fast_min_start_ = 0;
    std::uint64_t line_cursor_ = 0;
    std::uint64_t line_number_ = 1;
    std::vector<Finding> findings_;  // not swept by settle() yet
    std::vector<std::uint8_t> priorities_;
    std::size_t lines_done_ = 0;  // findings_[0, lines_done_) have their line
    std::size_t accepted_ = 0;    // findings found, before overlaps are resolved (the cap counts these)
    // settle()'s sweep: kept_[kept_begin_, end) are kept so far, in offset
    // order and disjoint, but may still lose to a later finding.
    std::vector<Finding> kept_;
    std::vector<std::uint8_t> kept_priorities_;
    std::size_t kept_begin_ = 0;
    std::string normalized_;      // the current candidate's normalized value, capacity reused
    static constexpr std::size_t npos = SIZE_MAX;
    std::size_t hash_waiting_ = npos;  // index in findings_ of a finding whose hash waits for a pair
    std::string waiting_value_;        // its normalized value
    bool truncated_ = false;
    bool stopped_ = false;
};

int on_head_match(unsigned id, unsigned long long, unsigned long long to, unsigned, void* context) {
    return static_cast<ScanState*>(context)->on_head(id, to);
}

}  // namespace

// --- Scanner ----------------------------------------------------------------------------

common::Result<Scanner> Scanner::create(Options options) {
    auto impl = new_impl(std::move(options));
    if (!impl) return std::unexpected(impl.error());
    Impl& s = **impl;
    const std::string& dir = s.options.cache_dir;
    const std::string file_name = "inspect-" + s.key + ".hsdb";
    bool loaded = false;
    if (!dir.empty()) {
        // A missing, foreign or stale cache file is not an error: compile.
        if (auto bytes = read_trusted_file(dir + "/" + file_name)) loaded = load_serialized(s, *bytes).has_value();
    }
    if (!loaded) {
        if (auto compiled = compile_heads(s); !compiled) return std::unexpected(compiled.error());
    }
    s.from_cache = loaded;
    if (auto setup = s.finish_setup(); !setup) return std::unexpected(setup.error());
    if (!dir.empty() && !loaded) {
        // Best effort: a read-only cache directory costs compile time, nothing else.
        if (auto bytes = serialize_impl(s)) (void)write_file_atomically(dir, file_name, *bytes);
    }
    return Scanner(std::shared_ptr<const Impl>(std::move(*impl)));
}

common::Result<Scanner> Scanner::deserialize(std::string_view bytes, Options options) {
    auto impl = new_impl(std::move(options));
    if (!impl) return std::unexpected(impl.error());
    if (auto loaded = load_serialized(**impl, bytes); !loaded) return std::unexpected(loaded.error());
    (*impl)->from_cache = true;
    if (auto setup = (*impl)->finish_setup(); !setup) return std::unexpected(setup.error());
    return Scanner(std::shared_ptr<const Impl>(std::move(*impl)));
}

common::Result<std::string> Scanner::serialize() const { return serialize_impl(*impl_); }

common::Result<std::string> Scanner::cache_key(const Options& options) {
    auto selected = select_detectors(options.types);
    if (!selected) return std::unexpected(selected.error());
    return compute_cache_key(*selected);
}

bool Scanner::loaded_from_cache() const noexcept { return impl_->from_cache; }
const Options& Scanner::options() const noexcept { return impl_->options; }

std::vector<std::string_view> Scanner::detector_ids() const {
    std::vector<std::string_view> ids;
    for (const Detector* d : impl_->enabled) ids.push_back(d->id);
    return ids;
}

// --- Session -------------------------------------------------------------------------------

struct Session::State {
    std::shared_ptr<const Scanner::Impl> impl;
    ScratchPtr main;
    ScratchPtr aux;
};

struct Stream::State {
    std::shared_ptr<const Scanner::Impl> impl;
    ScratchPtr main;
    ScratchPtr aux;
    hs_stream_t* stream = nullptr;
    std::string window;
    std::uint64_t base = 0;
    std::uint64_t bytes_seen = 0;
    bool skipped = false;
    bool finished = false;
    std::optional<common::Error> error;
    std::unique_ptr<ScanState> scan;
    std::vector<Finding> settled;  // final findings not taken yet (take_findings)

    ~State() {
        if (stream != nullptr) hs_close_stream(stream, nullptr, nullptr, nullptr);
    }
};

common::Result<Session> Scanner::new_session() const {
    auto state = std::make_unique<Session::State>();
    state->impl = impl_;
    {
        std::lock_guard lock(impl_->clone_mutex);
        auto main = clone_scratch(impl_->main_prototype);
        if (!main) return std::unexpected(main.error());
        auto aux = clone_scratch(impl_->aux_prototype);
        if (!aux) return std::unexpected(aux.error());
        state->main = std::move(*main);
        state->aux = std::move(*aux);
    }
    return Session(std::move(state));
}

Session::Session(std::unique_ptr<State> state) : state_(std::move(state)) {}
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;
Session::~Session() = default;

common::Result<ScanResult> Session::scan(std::string_view data, std::string_view path) {
    const Scanner::Impl& impl = *state_->impl;
    if (impl.path_allowlisted(path, state_->aux.get())) {
        ScanResult skipped;
        skipped.skipped = true;
        return skipped;
    }
    if (data.size() > max_block) {
        // Beyond what one block scan takes: stream it, memory stays bounded.
        auto stream = open_stream();
        if (!stream) return std::unexpected(stream.error());
        if (auto fed = stream->feed(data); !fed) return std::unexpected(fed.error());
        return stream->finish();
    }
    ScanState state(impl, state_->aux.get());
    state.set_window(data, 0, true);
    if (impl.block_db) {
        const hs_error_t rc = hs_scan(impl.block_db.get(), data.data(), static_cast<unsigned>(data.size()), 0,
                                      state_->main.get(), on_head_match, &state);
        if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return fail("scanning: " + hs_error_text(rc));
    }
    state.scan_fast_path();
    return state.finish(data.size());
}

common::Result<Stream> Session::open_stream(std::string_view path) const {
    const auto& impl = state_->impl;
    auto state = std::make_unique<Stream::State>();
    state->impl = impl;
    {
        std::lock_guard lock(impl->clone_mutex);
        auto main = clone_scratch(impl->main_prototype);
        if (!main) return std::unexpected(main.error());
        auto aux = clone_scratch(impl->aux_prototype);
        if (!aux) return std::unexpected(aux.error());
        state->main = std::move(*main);
        state->aux = std::move(*aux);
    }
    state->skipped = impl->path_allowlisted(path, state->aux.get());
    if (!state->skipped && impl->stream_db) {
        const hs_error_t rc = hs_open_stream(impl->stream_db.get(), 0, &state->stream);
        if (rc != HS_SUCCESS) return fail("opening a vectorscan stream: " + hs_error_text(rc));
    }
    state->scan = std::make_unique<ScanState>(*impl, state->aux.get());
    return Stream(std::move(state));
}

// --- Stream --------------------------------------------------------------------------------

Stream::Stream(std::unique_ptr<State> state) : state_(std::move(state)) {}
Stream::Stream(Stream&&) noexcept = default;
Stream& Stream::operator=(Stream&&) noexcept = default;
Stream::~Stream() = default;

common::Status Stream::feed(std::string_view chunk) {
    State& s = *state_;
    if (s.error) return std::unexpected(*s.error);
    if (s.finished) return fail("feed after finish");
    if (s.skipped || s.scan->stopped()) {
        s.bytes_seen += chunk.size();
        return {};
    }
    ScanState& scan = *s.scan;
    while (!chunk.empty() && !scan.stopped()) {
        const std::string_view piece = chunk.substr(0, max_piece);
        chunk.remove_prefix(piece.size());
        s.window.append(piece);
        s.bytes_seen += piece.size();
        scan.set_window(s.window, s.base, false);
        // Heads queued earlier whose bytes have now arrived go first, so that
        // each detector's heads resolve in order.
        scan.resolve_ready();
        if (s.stream != nullptr) {
            const hs_error_t rc = hs_scan_stream(s.stream, piece.data(), static_cast<unsigned>(piece.size()), 0,
                                                 s.main.get(), on_head_match, &scan);
            if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) {
                s.error = common::Error{0, "scanning stream: " + hs_error_text(rc)};
                return std::unexpected(*s.error);
            }
        }
        scan.resolve_ready();
        scan.scan_fast_path();
        const std::uint64_t new_base = scan.keep_from();
        scan.forget_before(new_base);
        scan.settle(new_base, s.settled);
        s.window.erase(0, static_cast<std::size_t>(new_base - s.base));
        s.base = new_base;
    }
    if (scan.stopped()) {
        s.window.clear();  // nothing more will be looked at
        s.window.shrink_to_fit();
    }
    s.bytes_seen += chunk.size();  // bytes after the findings cap stopped the scan
    return {};
}

std::size_t Stream::buffered_bytes() const noexcept { return state_->window.size(); }

common::Result<ScanResult> Stream::finish() {
    State& s = *state_;
    if (s.error) return std::unexpected(*s.error);
    if (s.finished) return fail("finish called twice");
    s.finished = true;
    if (s.skipped) {
        ScanResult skipped;
        skipped.skipped = true;
        skipped.bytes_scanned = 0;
        return skipped;
    }
    ScanState& scan = *s.scan;
    scan.set_window(s.window, s.base, true);
    if (s.stream != nullptr) {
        // Heads that end exactly at the end of the input are reported now.
        const hs_error_t rc = hs_close_stream(s.stream, s.main.get(), on_head_match, &scan);
        s.stream = nullptr;
        if (rc != HS_SUCCESS && rc != HS_SCAN_TERMINATED) return fail("closing stream: " + hs_error_text(rc));
    }
    scan.resolve_ready();
    scan.scan_fast_path();
    ScanResult result = scan.finish(s.bytes_seen);
    if (!s.settled.empty()) {
        s.settled.insert(s.settled.end(), std::make_move_iterator(result.findings.begin()),
                         std::make_move_iterator(result.findings.end()));
        result.findings = std::move(s.settled);
    }
    return result;
}

void Stream::take_findings(std::vector<Finding>& out) {
    State& s = *state_;
    if (out.empty()) {
        out.swap(s.settled);
    } else {
        out.insert(out.end(), std::make_move_iterator(s.settled.begin()), std::make_move_iterator(s.settled.end()));
    }
    s.settled.clear();
}

}  // namespace airlock::inspect
