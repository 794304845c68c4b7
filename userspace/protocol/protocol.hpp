// Control-socket protocol, version 1: newline-delimited JSON over a unix stream
// socket (docs/protocol.md is the reference). Every client line is a request
// object {"v":1,"op":...,"id":N?,...}; the daemon answers each with one
// response line carrying the same "id"; after "watch" it also sends event lines.
//
// This module only encodes and validates; it does no I/O except LineBuffer's
// byte accounting. Every validation error names the field and what was wrong.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.hpp"

namespace airlock::protocol {

inline constexpr int k_version = 1;
inline constexpr std::size_t k_max_line_bytes = 64 * 1024;

// Field limits enforced by parse_request (docs/protocol.md, "Limits").
inline constexpr std::size_t k_max_argv_entries = 1024;
inline constexpr std::size_t k_max_arg_bytes = 4096;
inline constexpr std::size_t k_max_policy_name_bytes = 64;    // [A-Za-z0-9_.-]
inline constexpr std::size_t k_max_policy_file_bytes = 4096;
// Larger than a request line may be, so in practice the line cap (after JSON
// escaping) is what bounds policy.text; kept separate so a bigger line cap
// for session.create does not silently lift it.
inline constexpr std::size_t k_max_policy_text_bytes = 1024 * 1024;
inline constexpr std::size_t k_max_user_bytes = 256;
inline constexpr std::size_t k_max_labels = 32;
inline constexpr std::size_t k_max_label_key_bytes = 64;      // [A-Za-z0-9_.-]
inline constexpr std::size_t k_max_label_value_bytes = 256;
inline constexpr std::size_t k_max_reason_bytes = 1024;
// Deepest array/object nesting accepted in any line; v1 requests need 2,
// replies 5. Guards recursive consumers (dump, printers) of parsed replies.
inline constexpr std::size_t k_max_json_depth = 64;
// Daemon-to-client lines (lists, events) are not bound by k_max_line_bytes;
// clients give their LineBuffer this cap instead. Matches the daemon's
// per-client output budget, past which it drops the connection anyway.
inline constexpr std::size_t k_max_reply_line_bytes = 4 * 1024 * 1024;

// Event names carried in {"event":..,"data":..} lines after "watch".
namespace event_name {
inline constexpr std::string_view request_created = "request.created";
inline constexpr std::string_view request_resolved = "request.resolved";
inline constexpr std::string_view session_started = "session.started";
inline constexpr std::string_view session_ended = "session.ended";
}  // namespace event_name

// Error codes carried in {"ok":false,"error":{"code":..,"message":..}}.
namespace error_code {
inline constexpr std::string_view bad_request = "bad_request";        // malformed JSON / fields
inline constexpr std::string_view unsupported_version = "unsupported_version";
inline constexpr std::string_view unknown_op = "unknown_op";
inline constexpr std::string_view unauthorized = "unauthorized";      // peer may not do this
inline constexpr std::string_view not_found = "not_found";            // no such request/session
inline constexpr std::string_view already_decided = "already_decided";
inline constexpr std::string_view policy_error = "policy_error";
inline constexpr std::string_view limit = "limit";                    // a resource limit was hit
inline constexpr std::string_view internal = "internal";
}  // namespace error_code

struct PolicyChoice {
    std::optional<std::string> name;  // a named policy the daemon knows ("default", "strict")
    std::optional<std::string> file;  // path, for messages and audit only
    std::optional<std::string> text;  // YAML content, read by the client (never by the daemon)
};

struct HelloRequest {};
struct StatusRequest {};
struct SessionCreateRequest {
    std::vector<std::string> argv;                // non-empty
    std::optional<PolicyChoice> policy;
    std::optional<std::string> user;              // run the agent as this user
    std::map<std::string, std::string> labels;    // k=v; keys [A-Za-z0-9_.-]{1,64}, values <= 256 bytes
};
// Sent with exactly one fd (the seccomp listener) in SCM_RIGHTS.
struct SessionAttachRequest {
    std::int64_t session = 0;
};
struct SessionsListRequest {
    // Just this session, with its process tree ("processes").
    std::optional<std::int64_t> tree;
};
struct PendingListRequest {};
struct ApproveRequest {
    std::int64_t request = 0;
    std::string scope = "once";  // once | session
    std::string reason;          // <= 1024 bytes
};
struct DenyRequest {
    std::int64_t request = 0;
    std::string reason;
};
struct WatchRequest {};

using RequestBody = std::variant<HelloRequest, StatusRequest, SessionCreateRequest,
                                 SessionAttachRequest, SessionsListRequest, PendingListRequest,
                                 ApproveRequest, DenyRequest, WatchRequest>;

struct Request {
    std::optional<std::int64_t> id;  // echoed in the response
    RequestBody body;
};

struct ProtocolError {
    std::string code;     // one of error_code
    std::string message;  // human readable, names the offending field
    std::optional<std::int64_t> id;  // request id if it could be read
};

// Parses one line (without the trailing newline).
[[nodiscard]] std::expected<Request, ProtocolError> parse_request(std::string_view line);
// The op name of a body ("approve", ...).
[[nodiscard]] std::string_view op_name(const RequestBody& body);
// Encodes a request as one line (no trailing newline). Used by the CLI.
[[nodiscard]] std::string encode_request(const Request& request);

// Responses and events are built as JSON by the daemon and parsed by the CLI.
[[nodiscard]] std::string encode_ok(std::optional<std::int64_t> id, const nlohmann::json& result);
[[nodiscard]] std::string encode_error(const ProtocolError& error);
[[nodiscard]] std::string encode_event(std::string_view event, const nlohmann::json& data);

// A response or event line as the client sees it.
struct Reply {
    bool is_event = false;
    std::string event;               // event name when is_event
    std::optional<std::int64_t> id;
    bool ok = false;                 // also true for events, so "!ok" means an error reply
    nlohmann::json result;           // result (ok) or event data
    std::string error_code;          // when !ok
    std::string error_message;
};
[[nodiscard]] std::expected<Reply, ProtocolError> parse_reply(std::string_view line);

// Splits a byte stream into lines with a hard cap: a line longer than
// k_max_line_bytes is reported once as an error and skipped up to its newline,
// so one bad client line never costs unbounded memory or desyncs the stream.
// An unterminated tail over the cap is dropped inside append(), so a caller
// that drains next() after every append holds at most max_line + one chunk.
class LineBuffer {
public:
    explicit LineBuffer(std::size_t max_line = k_max_line_bytes) : max_line_(max_line) {}
    void append(std::string_view bytes);
    // Next complete line, an error for an oversized one, or nullopt when more
    // bytes are needed.
    [[nodiscard]] std::optional<std::expected<std::string, ProtocolError>> next();
    [[nodiscard]] std::size_t buffered() const { return buffer_.size(); }

private:
    std::size_t max_line_;
    std::string buffer_;
    bool discarding_ = false;
    std::size_t read_pos_ = 0;      // bytes of buffer_ already returned by next()
    std::size_t partial_len_ = 0;   // unterminated bytes at the end of buffer_
    std::uint64_t erased_ = 0;      // bytes dropped from the front of buffer_ so far
    // Stream offsets (erased_ + index) where an oversized line was cut out;
    // next() reports each one in order with the lines around it.
    std::deque<std::uint64_t> oversized_at_;
};

}  // namespace airlock::protocol
