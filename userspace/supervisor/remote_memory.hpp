// Reads from a held process's memory. Every read is bounded: the agent decides
// what its pointers point at, so lengths come from the daemon, never the agent.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

#include "common/result.hpp"

namespace airlock::supervisor {

// Reads a NUL-terminated string of at most max_len bytes (excluding the NUL).
// ENAMETOOLONG when no NUL is found within max_len; EFAULT on a bad pointer.
[[nodiscard]] common::Result<std::string> read_remote_string(pid_t pid, std::uint64_t addr,
                                                             std::size_t max_len);
// Reads exactly len bytes.
[[nodiscard]] common::Status read_remote(pid_t pid, std::uint64_t addr, void* out, std::size_t len);

// Reads a NULL-terminated array of string pointers (argv/envp) with bounds on
// count and total bytes; `truncated` is set when a bound cut it short.
struct RemoteStringArray {
    std::vector<std::string> items;
    bool truncated = false;
};
[[nodiscard]] common::Result<RemoteStringArray> read_remote_string_array(
    pid_t pid, std::uint64_t addr, std::size_t max_items, std::size_t max_total_bytes);

}  // namespace airlock::supervisor
