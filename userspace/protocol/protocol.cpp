#include "protocol/protocol.hpp"

#include <array>
#include <initializer_list>
#include <limits>
#include <set>
#include <type_traits>
#include <utility>

namespace airlock::protocol {
namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// Strings reaching an encoder may hold arbitrary bytes (paths, argv); the
// default strict dump would throw on invalid UTF-8, so substitute U+FFFD.
template <class Json>
std::string dump(const Json& j) {
    return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

ProtocolError make_error(std::string_view code, std::string message,
                         std::optional<std::int64_t> id = std::nullopt) {
    return ProtocolError{std::string(code), std::move(message), id};
}

// Echoes client-supplied text in messages JSON-escaped and truncated, so a
// hostile value can neither inflate the error nor inject control bytes.
std::string quote(std::string_view s) {
    constexpr std::size_t k_max_echo = 64;
    if (s.size() > k_max_echo) return dump(json(std::string(s.substr(0, k_max_echo)))) + "...";
    return dump(json(std::string(s)));
}

std::string type_name(const json& v) {
    switch (v.type()) {
        case json::value_t::null: return "null";
        case json::value_t::boolean: return "boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "integer";
        case json::value_t::number_float: return "number";
        case json::value_t::string: return "string";
        case json::value_t::array: return "array";
        case json::value_t::object: return "object";
        case json::value_t::binary: return "binary";
        case json::value_t::discarded: break;
    }
    return "invalid";
}

// nlohmann's DOM parser silently keeps the last of duplicate keys, so
// {"request":1,"request":2} could mean one thing to a log reader or proxy and
// another to us. A first SAX pass rejects duplicates, bounds nesting and
// reports syntax errors with their byte position, all without exceptions.
class StructureCheck final : public json::json_sax_t {
public:
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(json::number_integer_t) override { return true; }
    bool number_unsigned(json::number_unsigned_t) override { return true; }
    bool number_float(json::number_float_t, const json::string_t&) override { return true; }
    bool string(json::string_t&) override { return true; }
    bool binary(json::binary_t&) override { return true; }
    bool start_object(std::size_t) override { return push(); }
    bool key(json::string_t& k) override {
        if (!frames_.back().insert(k).second) {
            error_ = "duplicate key " + quote(k);
            return false;
        }
        return true;
    }
    bool end_object() override {
        frames_.pop_back();
        return true;
    }
    bool start_array(std::size_t) override { return push(); }
    bool end_array() override {
        frames_.pop_back();
        return true;
    }
    bool parse_error(std::size_t position, const std::string&, const json::exception& ex) override {
        // what() is "[json.exception.parse_error.101] parse error at line 1,
        // column 7: <reason>"; keep only the reason next to our byte offset.
        std::string_view what = ex.what();
        if (auto column = what.find("column "); column != std::string_view::npos) {
            if (auto colon = what.find(": ", column); colon != std::string_view::npos) {
                what.remove_prefix(colon + 2);
            }
        }
        // The reason quotes the last token, which can be most of the line.
        constexpr std::size_t k_max_reason = 160;
        std::string reason(what.substr(0, k_max_reason));
        if (what.size() > k_max_reason) reason += "...";
        error_ = "invalid JSON at byte " + std::to_string(position) + ": " + reason;
        return false;
    }

    [[nodiscard]] const std::string& error() const { return error_; }

private:
    bool push() {
        if (frames_.size() >= k_max_json_depth) {
            error_ = "JSON nested deeper than " + std::to_string(k_max_json_depth) + " levels";
            return false;
        }
        frames_.emplace_back();
        return true;
    }

    // One key set per open container; arrays get an unused empty set so the
    // stack depth is the nesting depth.
    std::vector<std::set<std::string, std::less<>>> frames_;
    std::string error_;
};

std::expected<json, std::string> parse_json(std::string_view line) {
    try {
        StructureCheck check;
        if (!json::sax_parse(line, &check)) {
            return std::unexpected(check.error().empty() ? std::string("invalid JSON") : check.error());
        }
        json j = json::parse(line, nullptr, false);
        if (j.is_discarded()) return std::unexpected(std::string("invalid JSON"));
        return j;
    } catch (const json::exception& e) {
        // Not expected after the SAX pass accepted the line; kept so no
        // library exception can cross this module's boundary.
        return std::unexpected(std::string("invalid JSON: ") + e.what());
    }
}

std::string field_ref(std::string_view field) { return "field " + quote(field); }

std::unexpected<ProtocolError> bad(std::optional<std::int64_t> id, std::string message) {
    return std::unexpected(make_error(error_code::bad_request, std::move(message), id));
}

std::unexpected<ProtocolError> wrong_type(std::optional<std::int64_t> id, std::string_view field,
                                          std::string_view expected, const json& got) {
    return bad(id, field_ref(field) + ": expected " + std::string(expected) + ", got " + type_name(got));
}

std::expected<std::int64_t, ProtocolError> read_int64(const json& v, std::string_view field,
                                                      std::optional<std::int64_t> id,
                                                      std::string_view expected = "integer") {
    if (v.is_number_unsigned()) {
        const auto u = v.get<json::number_unsigned_t>();
        if (u > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return bad(id, field_ref(field) + ": integer " + std::to_string(u) + " is out of range");
        }
        return static_cast<std::int64_t>(u);
    }
    if (v.is_number_integer()) return v.get<json::number_integer_t>();
    return wrong_type(id, field, expected, v);
}

std::expected<std::int64_t, ProtocolError> read_positive(const json& v, std::string_view field,
                                                         std::optional<std::int64_t> id) {
    auto n = read_int64(v, field, id, "positive integer");
    if (!n) return n;
    if (*n <= 0) {
        return bad(id, field_ref(field) + ": expected positive integer, got " + std::to_string(*n));
    }
    return n;
}

std::expected<std::string, ProtocolError> read_string(const json& v, std::string_view field,
                                                      std::size_t max_bytes, std::optional<std::int64_t> id) {
    if (!v.is_string()) return wrong_type(id, field, "string", v);
    const auto& s = v.get_ref<const std::string&>();
    if (s.size() > max_bytes) {
        return bad(id, field_ref(field) + ": too long (" + std::to_string(s.size()) + " bytes, max " +
                           std::to_string(max_bytes) + ")");
    }
    // Every string ends up in a C API (execve, getpwnam, paths) or the audit
    // log, where an embedded NUL would silently truncate it.
    if (s.find('\0') != std::string::npos) return bad(id, field_ref(field) + ": contains a NUL byte");
    return s;
}

bool is_name(std::string_view s, std::size_t max_bytes) {
    if (s.empty() || s.size() > max_bytes) return false;
    for (const char c : s) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                        c == '_' || c == '.' || c == '-';
        if (!ok) return false;
    }
    return true;
}

const json* find(const json& obj, std::string_view key) {
    auto it = obj.find(key);
    return it == obj.end() ? nullptr : &*it;
}

// Strictness is the point: a typo such as "scop" must fail loudly instead of
// quietly approving with the default scope.
std::expected<void, ProtocolError> check_fields(const json& obj, std::string_view op,
                                                std::initializer_list<std::string_view> allowed,
                                                std::optional<std::int64_t> id) {
    for (auto it = obj.begin(); it != obj.end(); ++it) {
        const std::string& k = it.key();
        if (k == "v" || k == "op" || k == "id") continue;
        bool known = false;
        for (const auto a : allowed) known = known || a == k;
        if (!known) return bad(id, "unknown field " + quote(k) + " for op " + quote(op));
    }
    return {};
}

std::expected<PolicyChoice, ProtocolError> parse_policy(const json& v, std::optional<std::int64_t> id) {
    if (!v.is_object()) return wrong_type(id, "policy", "object", v);
    for (auto it = v.begin(); it != v.end(); ++it) {
        if (it.key() != "name" && it.key() != "file" && it.key() != "text") {
            return bad(id, "unknown field " + quote("policy." + it.key()));
        }
    }
    PolicyChoice p;
    if (const json* f = find(v, "name")) {
        auto s = read_string(*f, "policy.name", k_max_policy_name_bytes, id);
        if (!s) return std::unexpected(s.error());
        // The daemon maps the name to a built-in or installed file, so keep it
        // a plain identifier that cannot spell a path.
        if (!is_name(*s, k_max_policy_name_bytes)) {
            return bad(id, field_ref("policy.name") + ": " + quote(*s) + " must match [A-Za-z0-9_.-]{1,64}");
        }
        p.name = std::move(*s);
    }
    if (const json* f = find(v, "file")) {
        auto s = read_string(*f, "policy.file", k_max_policy_file_bytes, id);
        if (!s) return std::unexpected(s.error());
        p.file = std::move(*s);
    }
    if (const json* f = find(v, "text")) {
        auto s = read_string(*f, "policy.text", k_max_policy_text_bytes, id);
        if (!s) return std::unexpected(s.error());
        p.text = std::move(*s);
    }
    if (p.name && p.text) {
        return bad(id, field_ref("policy") + ": \"name\" and \"text\" are mutually exclusive");
    }
    if (!p.name && !p.text) return bad(id, field_ref("policy") + ": one of \"name\" or \"text\" is required");
    if (p.file && !p.text) return bad(id, field_ref("policy.file") + ": only allowed together with \"text\"");
    return p;
}

std::expected<RequestBody, ProtocolError> parse_session_create(const json& obj,
                                                               std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, "session.create", {"argv", "policy", "user", "labels"}, id); !ok) {
        return std::unexpected(ok.error());
    }
    SessionCreateRequest r;
    const json* argv = find(obj, "argv");
    if (argv == nullptr) return bad(id, "missing field \"argv\"");
    if (!argv->is_array()) return wrong_type(id, "argv", "array of strings", *argv);
    if (argv->empty()) return bad(id, field_ref("argv") + ": must not be empty");
    if (argv->size() > k_max_argv_entries) {
        return bad(id, field_ref("argv") + ": too many entries (" + std::to_string(argv->size()) + ", max " +
                           std::to_string(k_max_argv_entries) + ")");
    }
    r.argv.reserve(argv->size());
    for (std::size_t i = 0; i < argv->size(); ++i) {
        const std::string name = "argv[" + std::to_string(i) + "]";
        auto s = read_string((*argv)[i], name, k_max_arg_bytes, id);
        if (!s) return std::unexpected(s.error());
        // Later arguments may legitimately be empty (sh -c ''), the program may not.
        if (i == 0 && s->empty()) return bad(id, field_ref(name) + ": must not be empty");
        r.argv.push_back(std::move(*s));
    }
    if (const json* p = find(obj, "policy")) {
        auto policy = parse_policy(*p, id);
        if (!policy) return std::unexpected(policy.error());
        r.policy = std::move(*policy);
    }
    if (const json* u = find(obj, "user")) {
        auto s = read_string(*u, "user", k_max_user_bytes, id);
        if (!s) return std::unexpected(s.error());
        if (s->empty()) return bad(id, field_ref("user") + ": must not be empty");
        r.user = std::move(*s);
    }
    if (const json* l = find(obj, "labels")) {
        if (!l->is_object()) return wrong_type(id, "labels", "object of strings", *l);
        if (l->size() > k_max_labels) {
            return bad(id, field_ref("labels") + ": too many labels (" + std::to_string(l->size()) +
                               ", max " + std::to_string(k_max_labels) + ")");
        }
        for (auto it = l->begin(); it != l->end(); ++it) {
            if (!is_name(it.key(), k_max_label_key_bytes)) {
                return bad(id, field_ref("labels") + ": key " + quote(it.key()) +
                                   " must match [A-Za-z0-9_.-]{1,64}");
            }
            auto s = read_string(it.value(), "labels." + it.key(), k_max_label_value_bytes, id);
            if (!s) return std::unexpected(s.error());
            r.labels.emplace(it.key(), std::move(*s));
        }
    }
    return r;
}

std::expected<std::int64_t, ProtocolError> required_positive(const json& obj, std::string_view field,
                                                             std::optional<std::int64_t> id) {
    const json* v = find(obj, field);
    if (v == nullptr) return bad(id, "missing field " + quote(field));
    return read_positive(*v, field, id);
}

std::expected<std::string, ProtocolError> optional_reason(const json& obj, std::optional<std::int64_t> id) {
    const json* v = find(obj, "reason");
    if (v == nullptr) return std::string();
    return read_string(*v, "reason", k_max_reason_bytes, id);
}

std::expected<RequestBody, ProtocolError> parse_approve(const json& obj, std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, "approve", {"request", "scope", "reason"}, id); !ok) {
        return std::unexpected(ok.error());
    }
    ApproveRequest r;
    auto request = required_positive(obj, "request", id);
    if (!request) return std::unexpected(request.error());
    r.request = *request;
    if (const json* s = find(obj, "scope")) {
        if (!s->is_string()) return wrong_type(id, "scope", "string \"once\" or \"session\"", *s);
        const auto& scope = s->get_ref<const std::string&>();
        if (scope != "once" && scope != "session") {
            return bad(id, field_ref("scope") + ": expected \"once\" or \"session\", got " + quote(scope));
        }
        r.scope = scope;
    }
    auto reason = optional_reason(obj, id);
    if (!reason) return std::unexpected(reason.error());
    r.reason = std::move(*reason);
    return r;
}

std::expected<RequestBody, ProtocolError> parse_deny(const json& obj, std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, "deny", {"request", "reason"}, id); !ok)
        return std::unexpected(ok.error());
    DenyRequest r;
    auto request = required_positive(obj, "request", id);
    if (!request) return std::unexpected(request.error());
    r.request = *request;
    auto reason = optional_reason(obj, id);
    if (!reason) return std::unexpected(reason.error());
    r.reason = std::move(*reason);
    return r;
}

std::expected<RequestBody, ProtocolError> parse_sessions_list(const json& obj, std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, "sessions.list", {"tree"}, id); !ok) return std::unexpected(ok.error());
    SessionsListRequest r;
    if (find(obj, "tree") != nullptr) {
        auto tree = required_positive(obj, "tree", id);
        if (!tree) return std::unexpected(tree.error());
        r.tree = *tree;
    }
    return r;
}

std::expected<RequestBody, ProtocolError> parse_session_attach(const json& obj,
                                                               std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, "session.attach", {"session"}, id); !ok)
        return std::unexpected(ok.error());
    auto session = required_positive(obj, "session", id);
    if (!session) return std::unexpected(session.error());
    return SessionAttachRequest{*session};
}

template <class Body>
std::expected<RequestBody, ProtocolError> parse_empty(const json& obj, std::string_view op,
                                                      std::optional<std::int64_t> id) {
    if (auto ok = check_fields(obj, op, {}, id); !ok) return std::unexpected(ok.error());
    return Body{};
}

// Order matches the alternatives of RequestBody, so index() names the op.
constexpr std::array<std::string_view, 9> k_op_names{
    "hello",        "status",  "session.create", "session.attach", "sessions.list",
    "pending.list", "approve", "deny",           "watch",
};
static_assert(std::variant_size_v<RequestBody> == k_op_names.size());

std::expected<RequestBody, ProtocolError> parse_body(const json& obj, std::string_view op,
                                                     std::optional<std::int64_t> id) {
    if (op == "hello") return parse_empty<HelloRequest>(obj, op, id);
    if (op == "status") return parse_empty<StatusRequest>(obj, op, id);
    if (op == "session.create") return parse_session_create(obj, id);
    if (op == "session.attach") return parse_session_attach(obj, id);
    if (op == "sessions.list") return parse_sessions_list(obj, id);
    if (op == "pending.list") return parse_empty<PendingListRequest>(obj, op, id);
    if (op == "approve") return parse_approve(obj, id);
    if (op == "deny") return parse_deny(obj, id);
    if (op == "watch") return parse_empty<WatchRequest>(obj, op, id);
    return std::unexpected(make_error(error_code::unknown_op, "unknown op " + quote(op), id));
}

// Shared by requests and replies: "v" decides whether the rest can be read at
// all, so it is checked before any op-specific field.
std::expected<void, ProtocolError> check_version(const json& obj, std::optional<std::int64_t> id) {
    const json* v = find(obj, "v");
    if (v == nullptr) {
        return std::unexpected(make_error(
            error_code::unsupported_version,
            "missing field \"v\" (protocol version, supported: " + std::to_string(k_version) + ")", id));
    }
    if (!v->is_number_integer()) return wrong_type(id, "v", "integer", *v);
    if (*v != k_version) {
        return std::unexpected(make_error(
            error_code::unsupported_version,
            "unsupported protocol version " + dump(*v) + " (supported: " + std::to_string(k_version) + ")",
            id));
    }
    return {};
}

std::expected<std::optional<std::int64_t>, ProtocolError> read_id(const json& obj) {
    const json* v = find(obj, "id");
    if (v == nullptr) return std::nullopt;
    auto id = read_int64(*v, "id", std::nullopt);
    if (!id) return std::unexpected(id.error());
    return *id;
}

}  // namespace

std::expected<Request, ProtocolError> parse_request(std::string_view line) {
    auto parsed = parse_json(line);
    if (!parsed) return bad(std::nullopt, std::move(parsed.error()));
    const json& obj = *parsed;
    if (!obj.is_object()) return bad(std::nullopt, "expected a JSON object, got " + type_name(obj));

    Request request;
    auto id = read_id(obj);
    if (!id) return std::unexpected(id.error());
    request.id = *id;

    if (auto ok = check_version(obj, request.id); !ok) return std::unexpected(ok.error());

    const json* op = find(obj, "op");
    if (op == nullptr) return bad(request.id, "missing field \"op\"");
    if (!op->is_string()) return wrong_type(request.id, "op", "string", *op);

    auto body = parse_body(obj, op->get_ref<const std::string&>(), request.id);
    if (!body) return std::unexpected(body.error());
    request.body = std::move(*body);
    return request;
}

std::string_view op_name(const RequestBody& body) {
    const std::size_t i = body.index();
    return i < k_op_names.size() ? k_op_names[i] : std::string_view();
}

std::string encode_request(const Request& request) {
    // ordered_json keeps "v" and "op" first, which is what people read in
    // logs and socat sessions.
    ordered_json j;
    j["v"] = k_version;
    j["op"] = op_name(request.body);
    if (request.id) j["id"] = *request.id;
    std::visit(
        [&j](const auto& body) {
            using T = std::decay_t<decltype(body)>;
            if constexpr (std::is_same_v<T, SessionCreateRequest>) {
                j["argv"] = body.argv;
                if (body.policy) {
                    ordered_json p = ordered_json::object();
                    if (body.policy->name) p["name"] = *body.policy->name;
                    if (body.policy->file) p["file"] = *body.policy->file;
                    if (body.policy->text) p["text"] = *body.policy->text;
                    j["policy"] = std::move(p);
                }
                if (body.user) j["user"] = *body.user;
                if (!body.labels.empty()) j["labels"] = body.labels;
            } else if constexpr (std::is_same_v<T, SessionAttachRequest>) {
                j["session"] = body.session;
            } else if constexpr (std::is_same_v<T, SessionsListRequest>) {
                if (body.tree) j["tree"] = *body.tree;
            } else if constexpr (std::is_same_v<T, ApproveRequest>) {
                j["request"] = body.request;
                j["scope"] = body.scope;
                if (!body.reason.empty()) j["reason"] = body.reason;
            } else if constexpr (std::is_same_v<T, DenyRequest>) {
                j["request"] = body.request;
                if (!body.reason.empty()) j["reason"] = body.reason;
            }
        },
        request.body);
    return dump(j);
}

// Envelopes are assembled by hand so "v" leads and the (possibly large)
// result is serialized once, without copying it into a wrapper object.
std::string encode_ok(std::optional<std::int64_t> id, const nlohmann::json& result) {
    std::string out = "{\"v\":" + std::to_string(k_version);
    if (id) out += ",\"id\":" + std::to_string(*id);
    out += ",\"ok\":true,\"result\":";
    out += result.is_discarded() ? std::string("null") : dump(result);
    out += '}';
    return out;
}

std::string encode_error(const ProtocolError& error) {
    std::string out = "{\"v\":" + std::to_string(k_version);
    if (error.id) out += ",\"id\":" + std::to_string(*error.id);
    out += ",\"ok\":false,\"error\":{\"code\":" + dump(json(error.code)) +
           ",\"message\":" + dump(json(error.message)) + "}}";
    return out;
}

std::string encode_event(std::string_view event, const nlohmann::json& data) {
    std::string out = "{\"v\":" + std::to_string(k_version) + ",\"event\":" + dump(json(std::string(event)));
    out += ",\"data\":";
    out += data.is_discarded() ? std::string("null") : dump(data);
    out += '}';
    return out;
}

// Replies are read leniently: unknown fields are ignored so the daemon can
// add fields within version 1 without breaking older clients.
std::expected<Reply, ProtocolError> parse_reply(std::string_view line) {
    auto parsed = parse_json(line);
    if (!parsed) return bad(std::nullopt, std::move(parsed.error()));
    json& obj = *parsed;
    if (!obj.is_object()) return bad(std::nullopt, "expected a JSON object, got " + type_name(obj));

    Reply reply;
    auto id = read_id(obj);
    if (!id) return std::unexpected(id.error());
    reply.id = *id;
    if (auto ok = check_version(obj, reply.id); !ok) return std::unexpected(ok.error());

    if (auto event = obj.find("event"); event != obj.end()) {
        if (!event->is_string()) return wrong_type(reply.id, "event", "string", *event);
        auto data = obj.find("data");
        if (data == obj.end()) return bad(reply.id, "missing field \"data\"");
        reply.is_event = true;
        reply.ok = true;
        reply.event = event->get<std::string>();
        reply.result = std::move(*data);
        return reply;
    }

    auto ok = obj.find("ok");
    if (ok == obj.end()) return bad(reply.id, "missing field \"ok\"");
    if (!ok->is_boolean()) return wrong_type(reply.id, "ok", "boolean", *ok);
    reply.ok = ok->get<bool>();
    if (reply.ok) {
        auto result = obj.find("result");
        if (result == obj.end()) return bad(reply.id, "missing field \"result\"");
        reply.result = std::move(*result);
        return reply;
    }
    auto error = obj.find("error");
    if (error == obj.end()) return bad(reply.id, "missing field \"error\"");
    if (!error->is_object()) return wrong_type(reply.id, "error", "object", *error);
    auto code = error->find("code");
    if (code == error->end()) return bad(reply.id, "missing field \"error.code\"");
    if (!code->is_string()) return wrong_type(reply.id, "error.code", "string", *code);
    auto message = error->find("message");
    if (message == error->end()) return bad(reply.id, "missing field \"error.message\"");
    if (!message->is_string()) return wrong_type(reply.id, "error.message", "string", *message);
    reply.error_code = code->get<std::string>();
    reply.error_message = message->get<std::string>();
    return reply;
}

void LineBuffer::append(std::string_view bytes) {
    if (discarding_) {
        const auto nl = bytes.find('\n');
        if (nl == std::string_view::npos) return;
        bytes.remove_prefix(nl + 1);
        discarding_ = false;
    }
    if (bytes.empty()) return;

    const auto last_nl = bytes.rfind('\n');
    const std::size_t old_partial = partial_len_;
    partial_len_ =
        last_nl == std::string_view::npos ? partial_len_ + bytes.size() : bytes.size() - last_nl - 1;
    if (partial_len_ <= max_line_) {
        buffer_.append(bytes);
        return;
    }
    // The unterminated tail is already over the cap, so it can only become an
    // error: cut it now instead of buffering it, whether or not the caller
    // has drained the complete lines ahead of it.
    if (last_nl == std::string_view::npos) {
        buffer_.resize(buffer_.size() - old_partial);
    } else {
        buffer_.append(bytes.substr(0, last_nl + 1));
    }
    partial_len_ = 0;
    discarding_ = true;
    oversized_at_.push_back(erased_ + buffer_.size());
}

std::optional<std::expected<std::string, ProtocolError>> LineBuffer::next() {
    const auto oversized = [this] {
        return std::unexpected(
            make_error(error_code::bad_request, "line exceeds " + std::to_string(max_line_) + " bytes"));
    };
    for (;;) {
        if (!oversized_at_.empty() && oversized_at_.front() == erased_ + read_pos_) {
            oversized_at_.pop_front();
            return oversized();
        }
        const auto nl = buffer_.find('\n', read_pos_);
        if (nl == std::string::npos) {
            buffer_.erase(0, read_pos_);
            erased_ += read_pos_;
            read_pos_ = 0;
            return std::nullopt;
        }
        const std::size_t start = read_pos_;
        std::size_t len = nl - start;
        read_pos_ = nl + 1;
        // Erasing the consumed prefix once it is half the buffer keeps draining
        // many small lines linear instead of quadratic.
        const auto compact = [this] {
            if (read_pos_ * 2 < buffer_.size()) return;
            buffer_.erase(0, read_pos_);
            erased_ += read_pos_;
            read_pos_ = 0;
        };
        if (len > max_line_) {
            compact();
            return oversized();
        }
        if (len > 0 && buffer_[start + len - 1] == '\r') --len;
        if (len == 0) continue;
        std::string line = buffer_.substr(start, len);
        compact();
        return line;
    }
}

}  // namespace airlock::protocol
