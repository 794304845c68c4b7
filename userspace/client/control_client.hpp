// Blocking client for the daemon's control socket (CLI and launcher).
#pragma once

#include <optional>
#include <string>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "protocol/protocol.hpp"

namespace airlock::client {

inline constexpr const char* k_default_socket = "/run/airlock/airlock.sock";

class ControlClient {
public:
    [[nodiscard]] static common::Result<ControlClient> connect(const std::string& socket_path);

    // Sends one request (optionally with one fd in SCM_RIGHTS) and returns its
    // response, skipping event lines.
    [[nodiscard]] common::Result<protocol::Reply> call(const protocol::Request& request, int pass_fd = -1);
    // Next line from the daemon (response or event); blocks.
    [[nodiscard]] common::Result<protocol::Reply> next();
    [[nodiscard]] int fd() const { return fd_.get(); }
    void close() { fd_.reset(); }

private:
    common::UniqueFd fd_;
    protocol::LineBuffer in_{protocol::k_max_reply_line_bytes};
    std::int64_t next_id_ = 1;
};

}  // namespace airlock::client
