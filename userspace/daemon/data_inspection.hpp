// Content inspection for held calls whose rule says `inspect: true`: the
// bridge between the supervisor (what the agent gets), the inspector (what is
// in it) and the policy (what that means).
//
// DESIGN-NOTES invariant 2: the bytes scanned are the bytes handed over. A
// read-only open is scanned through the very fd that will be injected (pread,
// so its offset stays at 0); a masked open hands over a sealed memfd holding
// the redacted copy of exactly the bytes scanned. A file opened for writing is
// scanned through a read-only fd of its own, opened first, because its own
// open may truncate it; what it will read back later is its own writing. The
// same holds for a read-only fd whose file another process writes to after
// the scan: an fd is a view of a changing file, which only a copy (mask)
// freezes.
//
// Everything here may block (reading a file, compiling the detector database
// the first time) and runs on a worker thread, never on the event loop.
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <vector>

#include "common/result.hpp"
#include "inspect/scanner.hpp"
#include "policy/policy.hpp"
#include "supervisor/held_call.hpp"

namespace airlock::daemon {

// What inspection found in data handed over. Never holds a raw value.
struct DataSummary {
    policy::DataCounts counts;             // findings by detector id
    std::vector<inspect::Finding> shown;   // the first few (masked previews, keyed hashes)
    std::uint64_t bytes = 0;               // bytes scanned
    bool truncated = false;                // the findings cap was reached; counts are a lower bound
    bool from_cache = false;               // an unchanged file's earlier result
    [[nodiscard]] std::uint64_t total() const;
};

struct InspectionOutcome {
    policy::Decision decision;  // final: on_data, too_large, or the rule's own
    std::shared_ptr<const DataSummary> data;  // null when nothing was scanned
    bool masked = false;        // call.prepared holds the redacted copy
    // exec only: argv with every finding redacted, for audit rows and prompts
    // (the raw argv holds the values).
    std::optional<std::vector<std::string>> redacted_argv;
    // Set when the inspector failed (not the data): the call is denied.
    std::string error;
};

class DataInspection {
public:
    // `state_dir` holds the keyed-hash secret (inspect.key, 0600) and the
    // compiled detector databases (inspect-cache/).
    explicit DataInspection(std::string state_dir);

    // Scans what the open or exec `call` hands over, decides with the rule's
    // on_data, and prepares the fd to inject (call.prepared) when the verdict
    // lets it through. `rule_decision` is the deciding rule's, with inspect set.
    [[nodiscard]] InspectionOutcome inspect(supervisor::HeldCall& call, const supervisor::AgentContext& agent,
                                            const policy::Decision& rule_decision);

    // Findings kept per summary for display; counts are always complete.
    static constexpr std::size_t k_shown_findings = 20;
    // Unchanged files remembered (dev, inode, size, mtime, ctime).
    static constexpr std::size_t k_cache_entries = 4096;

private:
    struct FileKey {
        dev_t dev;
        ino_t ino;
        off_t size;
        std::int64_t mtime_ns;
        std::int64_t ctime_ns;
        bool operator==(const FileKey&) const = default;
    };
    struct FileKeyHash {
        std::size_t operator()(const FileKey& k) const noexcept;
    };

    [[nodiscard]] common::Result<inspect::Session> take_session();
    void give_back(inspect::Session session);
    [[nodiscard]] common::Result<DataSummary> scan(std::string_view content);
    [[nodiscard]] std::shared_ptr<const DataSummary> cached(const FileKey& key);
    void remember(const FileKey& key, std::shared_ptr<const DataSummary> summary);

    InspectionOutcome inspect_open(supervisor::HeldCall& call, const supervisor::AgentContext& agent,
                                   const policy::Decision& rule_decision);
    InspectionOutcome inspect_exec(supervisor::HeldCall& call, const policy::Decision& rule_decision);

    std::string state_dir_;
    std::mutex scanner_mutex_;
    std::optional<inspect::Scanner> scanner_;  // built on first use: compiling takes ~1 s
    std::vector<inspect::Session> idle_sessions_;

    std::mutex cache_mutex_;
    std::list<FileKey> cache_order_;  // most recent first
    std::unordered_map<FileKey, std::pair<std::shared_ptr<const DataSummary>, std::list<FileKey>::iterator>,
                       FileKeyHash>
        cache_;
};

// "3 findings: 2 pii.us_ssn, 1 pii.email" for logs and prompts.
[[nodiscard]] std::string describe_counts(const policy::DataCounts& counts);

}  // namespace airlock::daemon
