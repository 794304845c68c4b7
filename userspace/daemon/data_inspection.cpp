#include "daemon/data_inspection.hpp"

#include <fcntl.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "inspect/finding.hpp"

namespace airlock::daemon {
namespace {

using common::fail;
using common::Result;
using common::UniqueFd;

// Racy-git rule: a file changed within this long of being scanned may change
// again without its mtime/ctime moving (timestamps are coarse: a jiffy on
// many filesystems), so its result is not remembered.
constexpr std::int64_t k_racy_window_ns = 2'000'000'000;

std::int64_t ns_of(const timespec& t) { return static_cast<std::int64_t>(t.tv_sec) * 1'000'000'000 + t.tv_nsec; }

std::int64_t now_realtime_ns() {
    timespec t{};
    ::clock_gettime(CLOCK_REALTIME, &t);
    return ns_of(t);
}

std::string hex(std::string_view bytes) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string out;
    for (unsigned char c : bytes) {
        out += digits[c >> 4];
        out += digits[c & 0xf];
    }
    return out;
}

// The per-daemon secret behind keyed hashes: a keyed hash of a 9-digit SSN
// cannot be reversed by trying every SSN without it. Created once, 0600.
Result<std::string> load_or_create_key(const std::string& path) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd && errno == ENOENT) {
        char bytes[32];
        if (::getrandom(bytes, sizeof bytes, 0) != static_cast<ssize_t>(sizeof bytes))
            return common::fail_errno("getrandom");
        const std::string key = hex(std::string_view(bytes, sizeof bytes));
        UniqueFd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600));
        if (out) {
            if (::write(out.get(), key.data(), key.size()) != static_cast<ssize_t>(key.size()) ||
                ::fsync(out.get()) != 0)
                return common::fail_errno("writing " + path);
            return key;
        }
        if (errno != EEXIST) return common::fail_errno("creating " + path);
        fd.reset(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
    }
    if (!fd) return common::fail_errno("opening " + path);
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) return common::fail_errno("stat " + path);
    if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid() || (st.st_mode & 077) != 0)
        return fail(EPERM, path + " must be a regular file owned by the daemon's user, mode 0600");
    char buffer[129];
    ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
    if (n < 32 || n > 128) return fail(EINVAL, path + " does not hold a key (32 to 128 characters)");
    return std::string(buffer, static_cast<std::size_t>(n));
}

// Reads the whole of `fd` from offset 0 without moving its offset. Stops
// past `limit` bytes (the caller then knows the content is too large).
Result<std::string> read_all(int fd, std::uint64_t limit, std::uint64_t size_hint) {
    std::string content;
    content.resize(static_cast<std::size_t>(std::min<std::uint64_t>(size_hint, limit) + 1));
    std::uint64_t have = 0;
    while (true) {
        if (have == content.size()) {
            if (have > limit) break;
            content.resize(static_cast<std::size_t>(std::min<std::uint64_t>(have * 2 + 65536, limit + 1)));
        }
        ssize_t n = ::pread(fd, content.data() + have, content.size() - have, static_cast<off_t>(have));
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) return common::fail_errno("reading the content");
        if (n == 0) break;
        have += static_cast<std::uint64_t>(n);
    }
    content.resize(static_cast<std::size_t>(have));
    return content;
}

std::string_view kind_of(mode_t mode) {
    switch (mode & S_IFMT) {
        case S_IFIFO: return "a pipe";
        case S_IFCHR: return "a character device";
        case S_IFBLK: return "a block device";
        case S_IFSOCK: return "a socket";
        default: return "not a regular file";
    }
}

// Argv items each redacted on their own: a finding within one item is
// replaced in it; one that spans items (a value split across arguments)
// blanks every item it touches.
std::vector<std::string> redact_items(const std::vector<std::string>& items, std::span<const inspect::Finding> all) {
    std::vector<std::string> out;
    std::uint64_t start = 0;
    for (const auto& item : items) {
        const std::uint64_t end = start + item.size();
        std::vector<inspect::Finding> inside;
        bool spans = false;
        for (const auto& f : all) {
            const std::uint64_t f_end = f.offset + f.length;
            if (f_end <= start || f.offset >= end) continue;
            if (f.offset < start || f_end > end) {
                spans = true;
                break;
            }
            inspect::Finding shifted = f;
            shifted.offset -= start;
            inside.push_back(std::move(shifted));
        }
        out.push_back(spans ? std::string("[REDACTED]") : inspect::redact(item, inside));
        start = end + 1;  // the '\n' between items
    }
    return out;
}

int denial_errno(const policy::Decision& rule_decision) {
    if (rule_decision.error_number) return rule_decision.error_number;
    if (rule_decision.inspect && rule_decision.inspect->error_number) return rule_decision.inspect->error_number;
    return EACCES;
}

// The inspector itself failed (its databases, its key, a scan error): not a
// property of the data, so never too_large's verdict, which may be allow.
InspectionOutcome inspection_failed(const policy::Decision& rule_decision, const common::Error& error) {
    InspectionOutcome out;
    out.decision = rule_decision;
    out.decision.verdict = policy::Verdict::deny;
    out.decision.error_number = denial_errno(rule_decision);
    out.decision.data_reason = "inspection failed: " + error.to_string();
    out.error = error.to_string();
    return out;
}

}  // namespace

std::uint64_t DataSummary::total() const {
    std::uint64_t sum = 0;
    for (const auto& [type, count] : counts) sum += count;
    return sum;
}

std::string describe_counts(const policy::DataCounts& counts) {
    std::vector<std::pair<std::uint64_t, std::string_view>> by_count;
    std::uint64_t total = 0;
    for (const auto& [type, count] : counts) {
        by_count.emplace_back(count, type);
        total += count;
    }
    if (total == 0) return "nothing found";
    std::sort(by_count.begin(), by_count.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    std::string out = std::to_string(total) + (total == 1 ? " finding: " : " findings: ");
    std::size_t listed = 0;
    for (const auto& [count, type] : by_count) {
        if (listed++ == 5) {
            out += ", ...";
            break;
        }
        out += (listed > 1 ? ", " : "") + std::to_string(count) + " " + std::string(type);
    }
    return out;
}

std::size_t DataInspection::FileKeyHash::operator()(const FileKey& k) const noexcept {
    std::size_t h = std::hash<std::uint64_t>{}(k.ino);
    for (std::uint64_t v : {static_cast<std::uint64_t>(k.dev), static_cast<std::uint64_t>(k.size),
                            static_cast<std::uint64_t>(k.mtime_ns), static_cast<std::uint64_t>(k.ctime_ns)})
        h = h * 1000003u ^ std::hash<std::uint64_t>{}(v);
    return h;
}

DataInspection::DataInspection(std::string state_dir) : state_dir_(std::move(state_dir)) {}

Result<inspect::Session> DataInspection::take_session() {
    std::lock_guard lock(scanner_mutex_);
    if (!scanner_) {
        inspect::Options options;
        auto key = load_or_create_key(state_dir_ + "/inspect.key");
        if (!key) return std::unexpected(key.error().wrap("inspection key"));
        options.hash_key = std::move(*key);
        const std::string cache = state_dir_ + "/inspect-cache";
        if (::mkdir(cache.c_str(), 0700) == 0 || errno == EEXIST) options.cache_dir = cache;
        auto built = inspect::Scanner::create(std::move(options));
        if (!built) return std::unexpected(built.error().wrap("building the detectors"));
        scanner_.emplace(std::move(*built));
    }
    if (!idle_sessions_.empty()) {
        inspect::Session session = std::move(idle_sessions_.back());
        idle_sessions_.pop_back();
        return session;
    }
    return scanner_->new_session();
}

void DataInspection::give_back(inspect::Session session) {
    std::lock_guard lock(scanner_mutex_);
    idle_sessions_.push_back(std::move(session));
}

Result<DataSummary> DataInspection::scan(std::string_view content) {
    auto session = take_session();
    if (!session) return std::unexpected(session.error());
    auto result = session->scan(content);
    give_back(std::move(*session));
    if (!result) return std::unexpected(result.error());
    DataSummary summary;
    summary.bytes = result->bytes_scanned;
    summary.truncated = result->truncated;
    for (auto& f : result->findings) {
        ++summary.counts[std::string(f.type)];
        if (summary.shown.size() < k_shown_findings) summary.shown.push_back(std::move(f));
    }
    return summary;
}

std::shared_ptr<const DataSummary> DataInspection::cached(const FileKey& key) {
    std::lock_guard lock(cache_mutex_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return nullptr;
    cache_order_.splice(cache_order_.begin(), cache_order_, it->second.second);
    return it->second.first;
}

void DataInspection::remember(const FileKey& key, std::shared_ptr<const DataSummary> summary) {
    std::lock_guard lock(cache_mutex_);
    if (auto it = cache_.find(key); it != cache_.end()) return;
    cache_order_.push_front(key);
    cache_.emplace(key, std::make_pair(std::move(summary), cache_order_.begin()));
    while (cache_.size() > k_cache_entries) {
        cache_.erase(cache_order_.back());
        cache_order_.pop_back();
    }
}

InspectionOutcome DataInspection::inspect(supervisor::HeldCall& call, const supervisor::AgentContext& agent,
                                          const policy::Decision& rule_decision) {
    if (call.kind == supervisor::CallKind::exec) return inspect_exec(call, rule_decision);
    return inspect_open(call, agent, rule_decision);
}

InspectionOutcome DataInspection::inspect_exec(supervisor::HeldCall& call, const policy::Decision& rule_decision) {
    InspectionOutcome out;
    // One buffer for the arguments and the environment: each scan call has a
    // fixed cost, and a value split across them is still one value.
    std::string buffer;
    for (const auto& item : call.argv) buffer.append(item).push_back('\n');
    const std::size_t argv_bytes = buffer.size();
    for (const auto& item : call.envp) buffer.append(item).push_back('\n');
    if (call.argv_truncated || call.envp_truncated) {
        out.decision = policy::decide_uninspectable(rule_decision, "arguments or environment too large to read whole");
        return out;
    }
    auto summary = scan(buffer);
    if (!summary) {
        return inspection_failed(rule_decision, summary.error());
    }
    out.decision = policy::decide_on_data(rule_decision, summary->counts);
    if (summary->total() != 0) {
        // Findings in argv must not reach audit rows or prompts as they are.
        auto session = take_session();
        if (session) {
            auto all = session->scan(std::string_view(buffer).substr(0, argv_bytes));
            give_back(std::move(*session));
            // A capped scan may have missed values: then nothing is shown.
            if (all && !all->truncated) out.redacted_argv = redact_items(call.argv, all->findings);
        }
        if (!out.redacted_argv) out.redacted_argv = std::vector<std::string>(call.argv.size(), "[REDACTED]");
    }
    out.data = std::make_shared<const DataSummary>(std::move(*summary));
    return out;
}

InspectionOutcome DataInspection::inspect_open(supervisor::HeldCall& call, const supervisor::AgentContext& agent,
                                               const policy::Decision& rule_decision) {
    InspectionOutcome out;
    const auto nothing = [&](std::string_view why) {
        out.decision = policy::decide_on_data(rule_decision, {});
        out.decision.data_reason = std::string(why);
    };
    if (!call.target.exists) {
        nothing("inspected: a new file holds nothing yet");
        return out;
    }
    const mode_t type = call.target.st.st_mode & S_IFMT;
    if (type == S_IFDIR) {
        // A directory hands over names, not content.
        nothing("inspected: a directory");
        return out;
    }
    if (type != S_IFREG) {
        out.decision = policy::decide_uninspectable(rule_decision, kind_of(call.target.st.st_mode));
        return out;
    }
    const int accmode = call.open_flags & O_ACCMODE;
    const bool read_only = accmode == O_RDONLY && !(call.open_flags & O_TRUNC);
    // A read-only open is scanned through the fd it will get; any other
    // through a read-only fd of its own, before its own open can truncate.
    auto opened = supervisor::reopen_as_agent(call, agent, read_only ? call.open_flags : O_RDONLY);
    if (!opened) {
        if (read_only) {
            // The agent's own open would have failed this way: its answer.
            out.decision = rule_decision;
            out.decision.verdict = policy::Verdict::deny;
            out.decision.error_number = opened.error().code ? opened.error().code : EACCES;
            out.decision.data_reason = "the agent cannot open it: " + opened.error().to_string();
            out.decision.inspect = nullptr;
        } else {
            out.decision = policy::decide_uninspectable(rule_decision, "not readable by the agent");
        }
        return out;
    }
    struct stat st {};
    if (::fstat(opened->get(), &st) != 0) {
        out.decision = policy::decide_uninspectable(rule_decision, "fstat failed");
        return out;
    }
    const std::uint64_t limit = rule_decision.inspect->limits.max_size;
    if (static_cast<std::uint64_t>(st.st_size) > limit) {
        out.decision = policy::decide_uninspectable(rule_decision, "larger than " + policy::size_to_string(limit));
        return out;
    }
    const FileKey key{st.st_dev, st.st_ino, st.st_size, ns_of(st.st_mtim), ns_of(st.st_ctim)};
    if (auto hit = cached(key)) {
        out.decision = policy::decide_on_data(rule_decision, hit->counts);
        if (out.decision.verdict != policy::Verdict::mask) {
            if (read_only) call.prepared = std::move(*opened);
            auto shown = std::make_shared<DataSummary>(*hit);
            shown->from_cache = true;
            out.data = std::move(shown);
            return out;
        }
        // A mask needs the bytes themselves: scanned again below.
    }
    const std::int64_t started_ns = now_realtime_ns();
    auto content = read_all(opened->get(), limit, static_cast<std::uint64_t>(st.st_size));
    if (!content) {
        out.decision = policy::decide_uninspectable(rule_decision, content.error().to_string());
        return out;
    }
    if (content->size() > limit) {
        // /proc and sysfs files report size 0 and are only measured by reading.
        out.decision = policy::decide_uninspectable(rule_decision, "larger than " + policy::size_to_string(limit));
        return out;
    }
    auto summary = scan(*content);
    if (!summary) {
        return inspection_failed(rule_decision, summary.error());
    }
    out.decision = policy::decide_on_data(rule_decision, summary->counts);
    if (out.decision.verdict == policy::Verdict::mask) {
        if (!read_only) {
            // The agent would read and write the real bytes through it.
            out.decision.verdict = policy::Verdict::deny;
            out.decision.error_number = denial_errno(rule_decision);
            out.decision.data_reason += "; refused: a writable open of a file that would be masked";
        } else {
            // The redaction needs every finding, not the few a summary keeps.
            auto session = take_session();
            Result<inspect::ScanResult> all = session ? session->scan(*content)
                                                      : Result<inspect::ScanResult>(std::unexpected(session.error()));
            if (session) give_back(std::move(*session));
            Result<UniqueFd> memfd = all ? (all->truncated ? fail(EFBIG, "too many findings to mask them all")
                                                           : supervisor::sealed_memfd("airlock-masked",
                                                                                      inspect::redact(*content,
                                                                                                      all->findings)))
                                         : Result<UniqueFd>(std::unexpected(all.error()));
            if (!memfd) {
                // Never the unmasked bytes instead.
                out.decision.verdict = policy::Verdict::deny;
                out.decision.error_number = denial_errno(rule_decision);
                out.decision.data_reason += "; refused: cannot mask (" + memfd.error().to_string() + ")";
                out.data = std::make_shared<const DataSummary>(std::move(*summary));
                return out;
            }
            call.prepared = std::move(*memfd);
            out.masked = true;
        }
    } else if (read_only) {
        call.prepared = std::move(*opened);
    }
    auto shared = std::make_shared<const DataSummary>(std::move(*summary));
    if (key.ctime_ns < started_ns - k_racy_window_ns && key.mtime_ns < started_ns - k_racy_window_ns)
        remember(key, shared);
    out.data = std::move(shared);
    return out;
}

}  // namespace airlock::daemon
