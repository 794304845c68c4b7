#include "protocol/protocol.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace airlock::protocol {
// Field-wise equality for the round-trip tests; the structs themselves stay
// aggregates without comparison operators.
bool operator==(const PolicyChoice& a, const PolicyChoice& b) {
    return a.name == b.name && a.file == b.file && a.text == b.text;
}
bool operator==(const HelloRequest&, const HelloRequest&) { return true; }
bool operator==(const StatusRequest&, const StatusRequest&) { return true; }
bool operator==(const SessionsListRequest&, const SessionsListRequest&) { return true; }
bool operator==(const PendingListRequest&, const PendingListRequest&) { return true; }
bool operator==(const WatchRequest&, const WatchRequest&) { return true; }
bool operator==(const SessionCreateRequest& a, const SessionCreateRequest& b) {
    return a.argv == b.argv && a.policy == b.policy && a.user == b.user && a.labels == b.labels;
}
bool operator==(const SessionAttachRequest& a, const SessionAttachRequest& b) {
    return a.session == b.session;
}
bool operator==(const ApproveRequest& a, const ApproveRequest& b) {
    return a.request == b.request && a.scope == b.scope && a.reason == b.reason;
}
bool operator==(const DenyRequest& a, const DenyRequest& b) {
    return a.request == b.request && a.reason == b.reason;
}
}  // namespace airlock::protocol

namespace {

using namespace airlock::protocol;
using nlohmann::json;

Request parse_ok(const std::string& line) {
    auto r = parse_request(line);
    EXPECT_TRUE(r.has_value()) << line << " -> " << (r ? "" : r.error().code + ": " + r.error().message);
    return r ? *r : Request{};
}

ProtocolError parse_err(const std::string& line) {
    auto r = parse_request(line);
    EXPECT_FALSE(r.has_value()) << "accepted: " << line;
    return r ? ProtocolError{} : r.error();
}

// Asserts the code and that the message mentions every given fragment (the
// field name, what was expected).
void expect_error(const std::string& line, std::string_view code, std::vector<std::string> fragments,
                  std::optional<std::int64_t> id = std::nullopt) {
    SCOPED_TRACE(line.substr(0, 200));
    const ProtocolError e = parse_err(line);
    EXPECT_EQ(e.code, code) << e.message;
    for (const auto& f : fragments)
        EXPECT_NE(e.message.find(f), std::string::npos) << "message: " << e.message << "\nmissing: " << f;
    EXPECT_EQ(e.id, id);
}

std::string req(const std::string& op, const std::string& fields = "", const std::string& id = "7") {
    std::string s = R"({"v":1,"op":")" + op + "\"";
    if (!id.empty()) s += ",\"id\":" + id;
    if (!fields.empty()) s += "," + fields;
    return s + "}";
}

// ---------------------------------------------------------------- parsing ops

TEST(ParseRequest, EmptyBodyOps) {
    EXPECT_TRUE(std::holds_alternative<HelloRequest>(parse_ok(req("hello")).body));
    EXPECT_TRUE(std::holds_alternative<StatusRequest>(parse_ok(req("status")).body));
    EXPECT_TRUE(std::holds_alternative<SessionsListRequest>(parse_ok(req("sessions.list")).body));
    EXPECT_TRUE(std::holds_alternative<PendingListRequest>(parse_ok(req("pending.list")).body));
    EXPECT_TRUE(std::holds_alternative<WatchRequest>(parse_ok(req("watch")).body));
}

TEST(ParseRequest, SessionsListTakesAnOptionalTreeSession) {
    auto all = parse_ok(req("sessions.list"));
    EXPECT_FALSE(std::get<SessionsListRequest>(all.body).tree);
    auto one = parse_ok(req("sessions.list", R"("tree":3)"));
    EXPECT_EQ(std::get<SessionsListRequest>(one.body).tree, 3);
    expect_error(req("sessions.list", R"("tree":0)"), error_code::bad_request, {"\"tree\""}, 7);
    expect_error(req("sessions.list", R"("tree":"3")"), error_code::bad_request, {"\"tree\""}, 7);
    expect_error(req("sessions.list", R"("trees":3)"), error_code::bad_request, {"trees"}, 7);
    Request r{5, SessionsListRequest{4}};
    auto back = parse_ok(encode_request(r));
    EXPECT_EQ(std::get<SessionsListRequest>(back.body).tree, 4);
}

TEST(ParseRequest, IdIsOptionalAndEchoed) {
    EXPECT_EQ(parse_ok(req("hello", "", "")).id, std::nullopt);
    EXPECT_EQ(parse_ok(req("hello", "", "42")).id, 42);
    EXPECT_EQ(parse_ok(req("hello", "", "-3")).id, -3);
    EXPECT_EQ(parse_ok(req("hello", "", "0")).id, 0);
    EXPECT_EQ(parse_ok(req("hello", "", "9223372036854775807")).id, INT64_MAX);
    EXPECT_EQ(parse_ok(req("hello", "", "-9223372036854775808")).id, INT64_MIN);
}

TEST(ParseRequest, FieldOrderDoesNotMatter) {
    const Request r = parse_ok(R"({"request":5,"op":"deny","id":1,"v":1})");
    ASSERT_TRUE(std::holds_alternative<DenyRequest>(r.body));
    EXPECT_EQ(std::get<DenyRequest>(r.body).request, 5);
}

TEST(ParseRequest, SessionCreateAllFields) {
    const Request r =
        parse_ok(req("session.create", R"("argv":["claude","--print",""],)"
                                       R"("policy":{"text":"version: 1\n","file":"/home/a/p.yaml"},)"
                                       R"("user":"agent","labels":{"team":"infra","ticket.id":"OPS-1"})"));
    ASSERT_TRUE(std::holds_alternative<SessionCreateRequest>(r.body));
    const auto& b = std::get<SessionCreateRequest>(r.body);
    EXPECT_EQ(b.argv, (std::vector<std::string>{"claude", "--print", ""}));
    ASSERT_TRUE(b.policy.has_value());
    EXPECT_EQ(b.policy->text, "version: 1\n");
    EXPECT_EQ(b.policy->file, "/home/a/p.yaml");
    EXPECT_EQ(b.policy->name, std::nullopt);
    EXPECT_EQ(b.user, "agent");
    EXPECT_EQ(b.labels, (std::map<std::string, std::string>{{"team", "infra"}, {"ticket.id", "OPS-1"}}));
    EXPECT_EQ(r.id, 7);
}

TEST(ParseRequest, SessionCreateMinimalAndNamedPolicy) {
    Request r = parse_ok(req("session.create", R"("argv":["bash"])"));
    auto b = std::get<SessionCreateRequest>(r.body);
    EXPECT_EQ(b.argv, std::vector<std::string>{"bash"});
    EXPECT_FALSE(b.policy);
    EXPECT_FALSE(b.user);
    EXPECT_TRUE(b.labels.empty());

    r = parse_ok(req("session.create", R"("argv":["bash"],"policy":{"name":"strict"},"labels":{})"));
    b = std::get<SessionCreateRequest>(r.body);
    ASSERT_TRUE(b.policy);
    EXPECT_EQ(b.policy->name, "strict");
    EXPECT_FALSE(b.policy->text);
}

TEST(ParseRequest, SessionAttach) {
    const Request r = parse_ok(req("session.attach", R"("session":12)"));
    ASSERT_TRUE(std::holds_alternative<SessionAttachRequest>(r.body));
    EXPECT_EQ(std::get<SessionAttachRequest>(r.body).session, 12);
}

TEST(ParseRequest, ApproveDefaultsToOnce) {
    const Request r = parse_ok(req("approve", R"("request":42)"));
    ASSERT_TRUE(std::holds_alternative<ApproveRequest>(r.body));
    const auto& b = std::get<ApproveRequest>(r.body);
    EXPECT_EQ(b.request, 42);
    EXPECT_EQ(b.scope, "once");
    EXPECT_EQ(b.reason, "");
}

TEST(ParseRequest, ApproveWithScopeAndReason) {
    const Request r =
        parse_ok(req("approve", R"("request":42,"scope":"session","reason":"needed for build")"));
    const auto& b = std::get<ApproveRequest>(r.body);
    EXPECT_EQ(b.scope, "session");
    EXPECT_EQ(b.reason, "needed for build");
    EXPECT_EQ(std::get<ApproveRequest>(parse_ok(req("approve", R"("request":1,"scope":"once")")).body).scope,
              "once");
}

TEST(ParseRequest, Deny) {
    const Request r = parse_ok(req("deny", R"("request":9,"reason":"no \"secrets\"")"));
    ASSERT_TRUE(std::holds_alternative<DenyRequest>(r.body));
    EXPECT_EQ(std::get<DenyRequest>(r.body).request, 9);
    EXPECT_EQ(std::get<DenyRequest>(r.body).reason, "no \"secrets\"");
}

TEST(ParseRequest, LimitsAreInclusive) {
    const std::string reason(k_max_reason_bytes, 'r');
    EXPECT_EQ(
        std::get<DenyRequest>(parse_ok(req("deny", R"("request":1,"reason":")" + reason + "\"")).body).reason,
        reason);

    json argv = json::array();
    for (std::size_t i = 0; i < k_max_argv_entries; ++i) argv.push_back("a");
    EXPECT_EQ(std::get<SessionCreateRequest>(parse_ok(req("session.create", "\"argv\":" + argv.dump())).body)
                  .argv.size(),
              k_max_argv_entries);

    const std::string arg(k_max_arg_bytes, 'x');
    EXPECT_TRUE(parse_request(req("session.create", R"("argv":[")" + arg + "\"]")));

    json labels = json::object();
    for (std::size_t i = 0; i < k_max_labels; ++i)
        labels["k" + std::to_string(i)] = std::string(k_max_label_value_bytes, 'v');
    labels[std::string(k_max_label_key_bytes, 'K')] = "x";
    labels.erase("k0");
    EXPECT_TRUE(parse_request(req("session.create", R"("argv":["a"],"labels":)" + labels.dump())));
}

// ------------------------------------------------------------ request errors

TEST(ParseRequestErrors, MissingField) {
    expect_error(req("approve"), error_code::bad_request, {"missing", "\"request\""}, 7);
    expect_error(req("deny", R"("reason":"x")"), error_code::bad_request, {"missing", "\"request\""}, 7);
    expect_error(req("session.attach"), error_code::bad_request, {"missing", "\"session\""}, 7);
    expect_error(req("session.create", R"("user":"a")"), error_code::bad_request, {"missing", "\"argv\""}, 7);
    expect_error(R"({"v":1,"id":3})", error_code::bad_request, {"missing", "\"op\""}, 3);
}

TEST(ParseRequestErrors, WrongTypeNamesFieldAndExpectedType) {
    expect_error(req("approve", R"("request":"42")"), error_code::bad_request,
                 {"\"request\"", "positive integer", "got string"}, 7);
    expect_error(req("approve", R"("request":4.5)"), error_code::bad_request, {"\"request\"", "got number"},
                 7);
    expect_error(req("approve", R"("request":true)"), error_code::bad_request, {"\"request\"", "got boolean"},
                 7);
    expect_error(req("approve", R"("request":1,"scope":1)"), error_code::bad_request,
                 {"\"scope\"", "string", "integer"}, 7);
    expect_error(req("deny", R"("request":1,"reason":null)"), error_code::bad_request,
                 {"\"reason\"", "string", "null"}, 7);
    expect_error(req("session.create", R"("argv":"ls -l")"), error_code::bad_request,
                 {"\"argv\"", "array", "got string"}, 7);
    expect_error(req("session.create", R"("argv":["ls",3])"), error_code::bad_request,
                 {"\"argv[1]\"", "string", "integer"}, 7);
    expect_error(req("session.create", R"("argv":["ls"],"user":1000)"), error_code::bad_request,
                 {"\"user\"", "string"}, 7);
    expect_error(req("session.create", R"("argv":["ls"],"policy":"strict")"), error_code::bad_request,
                 {"\"policy\"", "object"}, 7);
    expect_error(req("session.create", R"("argv":["ls"],"policy":{"name":1})"), error_code::bad_request,
                 {"\"policy.name\"", "string"}, 7);
    expect_error(req("session.create", R"("argv":["ls"],"labels":[])"), error_code::bad_request,
                 {"\"labels\"", "object"}, 7);
    expect_error(req("session.create", R"("argv":["ls"],"labels":{"a":1})"), error_code::bad_request,
                 {"\"labels.a\"", "string"}, 7);
    expect_error(req("session.attach", R"("session":"1")"), error_code::bad_request,
                 {"\"session\"", "positive integer"}, 7);
    expect_error(R"({"v":1,"op":5})", error_code::bad_request, {"\"op\"", "string", "integer"});
}

TEST(ParseRequestErrors, UnknownFieldIsRejected) {
    expect_error(req("approve", R"("request":1,"scop":"session")"), error_code::bad_request,
                 {"unknown field", "\"scop\"", "\"approve\""}, 7);
    expect_error(req("hello", R"("verbose":true)"), error_code::bad_request, {"\"verbose\""}, 7);
    expect_error(req("watch", R"("filter":{})"), error_code::bad_request, {"\"filter\""}, 7);
    expect_error(req("deny", R"("request":1,"scope":"once")"), error_code::bad_request, {"\"scope\""}, 7);
    expect_error(req("session.attach", R"("session":1,"fd":3)"), error_code::bad_request, {"\"fd\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"env":{})"), error_code::bad_request, {"\"env\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"name":"x","path":"/p"})"),
                 error_code::bad_request, {"\"policy.path\""}, 7);
}

TEST(ParseRequestErrors, BadScope) {
    expect_error(req("approve", R"("request":1,"scope":"forever")"), error_code::bad_request,
                 {"\"scope\"", "\"once\"", "\"session\"", "\"forever\""}, 7);
    expect_error(req("approve", R"("request":1,"scope":"Once")"), error_code::bad_request, {"\"scope\""}, 7);
}

TEST(ParseRequestErrors, RequestIdMustBePositive) {
    expect_error(req("approve", R"("request":0)"), error_code::bad_request, {"\"request\"", "positive", "0"},
                 7);
    expect_error(req("approve", R"("request":-5)"), error_code::bad_request,
                 {"\"request\"", "positive", "-5"}, 7);
    expect_error(req("deny", R"("request":-1)"), error_code::bad_request, {"\"request\"", "positive"}, 7);
    expect_error(req("session.attach", R"("session":0)"), error_code::bad_request,
                 {"\"session\"", "positive"}, 7);
    expect_error(req("approve", R"("request":18446744073709551615)"), error_code::bad_request,
                 {"\"request\"", "out of range"}, 7);
}

TEST(ParseRequestErrors, OversizedStrings) {
    const std::string reason(k_max_reason_bytes + 1, 'r');
    expect_error(req("approve", R"("request":1,"reason":")" + reason + "\""), error_code::bad_request,
                 {"\"reason\"", "too long", "1025", "1024"}, 7);
    expect_error(req("deny", R"("request":1,"reason":")" + reason + "\""), error_code::bad_request,
                 {"\"reason\"", "too long"}, 7);
    expect_error(req("session.create", R"("argv":[")" + std::string(k_max_arg_bytes + 1, 'a') + "\"]"),
                 error_code::bad_request, {"\"argv[0]\"", "too long"}, 7);
    expect_error(req("session.create", R"("argv":["a"],"labels":{"k":")" +
                                           std::string(k_max_label_value_bytes + 1, 'v') + "\"}"),
                 error_code::bad_request, {"\"labels.k\"", "too long"}, 7);
    expect_error(
        req("session.create", R"("argv":["a"],"user":")" + std::string(k_max_user_bytes + 1, 'u') + "\""),
        error_code::bad_request, {"\"user\"", "too long"}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"text":")" +
                                           std::string(k_max_policy_text_bytes + 1, 't') + "\"}"),
                 error_code::bad_request, {"\"policy.text\"", "too long"}, 7);
}

TEST(ParseRequestErrors, LabelKeys) {
    expect_error(req("session.create", R"("argv":["a"],"labels":{"bad key":"v"})"), error_code::bad_request,
                 {"\"labels\"", "\"bad key\"", "[A-Za-z0-9_.-]"}, 7);
    expect_error(req("session.create", R"("argv":["a"],"labels":{"":"v"})"), error_code::bad_request,
                 {"\"labels\"", "key"}, 7);
    expect_error(req("session.create", R"("argv":["a"],"labels":{"caf\u00e9":"v"})"), error_code::bad_request,
                 {"\"labels\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"labels":{"a/b":"v"})"), error_code::bad_request,
                 {"\"labels\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"labels":{")" +
                                           std::string(k_max_label_key_bytes + 1, 'k') + R"(":"v"})"),
                 error_code::bad_request, {"\"labels\"", "key"}, 7);
    json labels = json::object();
    for (std::size_t i = 0; i <= k_max_labels; ++i) labels["k" + std::to_string(i)] = "v";
    expect_error(req("session.create", R"("argv":["a"],"labels":)" + labels.dump()), error_code::bad_request,
                 {"\"labels\"", "too many", "33", "32"}, 7);
}

TEST(ParseRequestErrors, Argv) {
    json argv = json::array();
    for (std::size_t i = 0; i <= k_max_argv_entries; ++i) argv.push_back("a");
    expect_error(req("session.create", "\"argv\":" + argv.dump()), error_code::bad_request,
                 {"\"argv\"", "too many", "1025"}, 7);
    expect_error(req("session.create", R"("argv":[])"), error_code::bad_request, {"\"argv\"", "empty"}, 7);
    expect_error(req("session.create", R"("argv":["","x"])"), error_code::bad_request,
                 {"\"argv[0]\"", "empty"}, 7);
    expect_error(req("session.create", R"("argv":["ls","a\u0000b"])"), error_code::bad_request,
                 {"\"argv[1]\"", "NUL"}, 7);
}

TEST(ParseRequestErrors, PolicyChoice) {
    expect_error(req("session.create", R"("argv":["a"],"policy":{})"), error_code::bad_request,
                 {"\"policy\"", "\"name\"", "\"text\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"name":"x","text":"y"})"),
                 error_code::bad_request, {"\"policy\"", "mutually exclusive"}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"name":"x","file":"/p"})"),
                 error_code::bad_request, {"\"policy.file\"", "\"text\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"file":"/p"})"), error_code::bad_request,
                 {"\"policy\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"name":"../etc/shadow"})"),
                 error_code::bad_request, {"\"policy.name\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"policy":{"name":""})"), error_code::bad_request,
                 {"\"policy.name\""}, 7);
    expect_error(req("session.create", R"("argv":["a"],"user":"")"), error_code::bad_request,
                 {"\"user\"", "empty"}, 7);
}

TEST(ParseRequestErrors, Version) {
    expect_error(R"({"op":"hello","id":4})", error_code::unsupported_version, {"\"v\""}, 4);
    expect_error(R"({"v":2,"op":"hello","id":4})", error_code::unsupported_version, {"version 2"}, 4);
    expect_error(R"({"v":0,"op":"hello"})", error_code::unsupported_version, {"version 0"});
    // A v2 request may carry fields v1 does not know: the version must win.
    expect_error(R"({"v":2,"op":"approve","request":1,"future":true})", error_code::unsupported_version,
                 {"version 2"});
    expect_error(R"({"v":"1","op":"hello"})", error_code::bad_request, {"\"v\"", "integer", "string"});
    expect_error(R"({"v":1.0,"op":"hello"})", error_code::bad_request, {"\"v\"", "integer"});
}

TEST(ParseRequestErrors, UnknownOp) {
    expect_error(req("approve.all"), error_code::unknown_op, {"\"approve.all\""}, 7);
    expect_error(req("HELLO"), error_code::unknown_op, {"\"HELLO\""}, 7);
    expect_error(req(""), error_code::unknown_op, {"\"\""}, 7);
}

TEST(ParseRequestErrors, NotAnObject) {
    for (const char* line : {"[1,2]", "\"hello\"", "42", "null", "true"}) {
        expect_error(line, error_code::bad_request, {"JSON object"});
    }
}

TEST(ParseRequestErrors, InvalidJsonReportsBytePosition) {
    expect_error(R"({"v":1,"op":"hel)", error_code::bad_request, {"invalid JSON", "byte 17"});
    expect_error(R"({"v":1,)", error_code::bad_request, {"invalid JSON", "byte 8"});
    expect_error(R"({"v":1,x})", error_code::bad_request, {"invalid JSON", "byte 8"});
    expect_error("", error_code::bad_request, {"invalid JSON", "byte 1"});
    expect_error(R"({"v":1,"op":"hello"} {})", error_code::bad_request, {"invalid JSON"});
    expect_error("{\"v\":1,\"op\":\"\xff\"}", error_code::bad_request, {"invalid JSON", "UTF-8"});
}

TEST(ParseRequestErrors, InvalidJsonMessageIsBounded) {
    const std::string line = R"({"v":1,"op":"hello","x":")" + std::string(60000, 'a') + "\xff\"}";
    const ProtocolError e = parse_err(line);
    EXPECT_EQ(e.code, error_code::bad_request);
    EXPECT_LT(e.message.size(), 400u);
}

TEST(ParseRequestErrors, DuplicateKeysRejected) {
    expect_error(R"({"v":1,"op":"approve","request":1,"request":2})", error_code::bad_request,
                 {"duplicate", "\"request\""});
    expect_error(R"({"v":1,"op":"session.create","argv":["a"],"labels":{"k":"1","k":"2"}})",
                 error_code::bad_request, {"duplicate", "\"k\""});
    // The same key in different objects is not a duplicate.
    EXPECT_TRUE(parse_request(R"({"v":1,"op":"session.create","argv":["a"],"labels":{"v":"1","op":"2"}})"));
}

TEST(ParseRequestErrors, DeepNestingRejected) {
    const std::string deep = std::string(k_max_json_depth + 1, '[') + std::string(k_max_json_depth + 1, ']');
    expect_error(R"({"v":1,"op":"hello","x":)" + deep + "}", error_code::bad_request, {"nested"});
    // Even at the top level, not only inside an object.
    expect_error(std::string(30000, '[') + std::string(30000, ']'), error_code::bad_request, {"nested"});
}

TEST(ParseRequestErrors, IdEchoedWhenReadable) {
    EXPECT_EQ(parse_err(req("nope", "", "99")).id, 99);
    EXPECT_EQ(parse_err(req("approve", R"("request":0)", "-4")).id, -4);
    EXPECT_EQ(parse_err(R"({"v":3,"op":"hello","id":5})").id, 5);
    // Unreadable id: still an error naming it, but nothing to echo.
    expect_error(R"({"v":1,"op":"hello","id":"5"})", error_code::bad_request,
                 {"\"id\"", "integer", "string"});
    expect_error(R"({"v":1,"op":"hello","id":1.5})", error_code::bad_request, {"\"id\""});
    expect_error(R"({"v":1,"op":"hello","id":9223372036854775808})", error_code::bad_request,
                 {"\"id\"", "out of range"});
    EXPECT_EQ(parse_err(R"({"v":1,"op":"hello","id":5)").id, std::nullopt);
}

TEST(ParseRequestErrors, MessagesQuoteHostileValues) {
    const ProtocolError e =
        parse_err(req("approve", R"("request":1,"scope":"a\nb)" + std::string(500, 'x') + "\""));
    EXPECT_EQ(e.message.find('\n'), std::string::npos);
    EXPECT_LT(e.message.size(), 200u);
}

// ------------------------------------------------------------- round trips

std::vector<Request> sample_requests() {
    std::vector<Request> v;
    v.push_back({1, HelloRequest{}});
    v.push_back({std::nullopt, StatusRequest{}});
    v.push_back({3, SessionsListRequest{}});
    v.push_back({4, PendingListRequest{}});
    v.push_back({-5, WatchRequest{}});
    v.push_back({6, SessionCreateRequest{{"bash"}, std::nullopt, std::nullopt, {}}});
    v.push_back({7, SessionCreateRequest{{"claude", "--model", "x y", "", "quote\"back\\slash\nnl\ttab"},
                                         PolicyChoice{std::nullopt, "/etc/p.yaml", "version: 1\nrules: []\n"},
                                         "agent",
                                         {{"team", "infra"}, {"a.b-c_d", "caf\xc3\xa9"}}}});
    v.push_back({8, SessionCreateRequest{
                        {"ls"}, PolicyChoice{"strict", std::nullopt, std::nullopt}, std::nullopt, {}}});
    v.push_back({9, SessionAttachRequest{77}});
    v.push_back({10, ApproveRequest{42, "once", ""}});
    v.push_back({11, ApproveRequest{43, "session", "ok for the build \xe2\x9c\x93"}});
    v.push_back({std::nullopt, DenyRequest{44, ""}});
    v.push_back({INT64_MAX, DenyRequest{INT64_MAX, "nope"}});
    return v;
}

TEST(RoundTrip, EncodeRequestThenParse) {
    const auto samples = sample_requests();
    std::set<std::size_t> covered;
    for (const Request& r : samples) {
        const std::string line = encode_request(r);
        SCOPED_TRACE(line);
        EXPECT_EQ(line.find('\n'), std::string::npos);
        EXPECT_EQ(line.rfind(R"({"v":1,"op":")", 0), 0u);
        const Request back = parse_ok(line);
        EXPECT_EQ(back.id, r.id);
        EXPECT_EQ(back.body.index(), r.body.index());
        EXPECT_TRUE(back.body == r.body);
        covered.insert(r.body.index());
    }
    EXPECT_EQ(covered.size(), std::variant_size_v<RequestBody>) << "every op is round-tripped";
}

TEST(RoundTrip, OpNames) {
    EXPECT_EQ(op_name(HelloRequest{}), "hello");
    EXPECT_EQ(op_name(StatusRequest{}), "status");
    EXPECT_EQ(op_name(SessionCreateRequest{}), "session.create");
    EXPECT_EQ(op_name(SessionAttachRequest{}), "session.attach");
    EXPECT_EQ(op_name(SessionsListRequest{}), "sessions.list");
    EXPECT_EQ(op_name(PendingListRequest{}), "pending.list");
    EXPECT_EQ(op_name(ApproveRequest{}), "approve");
    EXPECT_EQ(op_name(DenyRequest{}), "deny");
    EXPECT_EQ(op_name(WatchRequest{}), "watch");
    for (const Request& r : sample_requests()) {
        EXPECT_EQ(json::parse(encode_request(r))["op"], op_name(r.body));
    }
}

TEST(RoundTrip, EncodeRequestWithInvalidUtf8DoesNotThrow) {
    const Request r{1, SessionCreateRequest{{"cat", "caf\xe9"}, std::nullopt, std::nullopt, {}}};
    std::string line;
    EXPECT_NO_THROW(line = encode_request(r));
    const Request back = parse_ok(line);
    EXPECT_EQ(std::get<SessionCreateRequest>(back.body).argv[1], "caf\xef\xbf\xbd");
}

TEST(RoundTrip, EncodeOk) {
    const json result = {{"session", 3}, {"cgroup", "/sys/fs/cgroup/airlock/session-3"}, {"note", "a\nb"}};
    const std::string line = encode_ok(12, result);
    EXPECT_EQ(line.find('\n'), std::string::npos);
    EXPECT_EQ(line.rfind(R"({"v":1,"id":12,"ok":true,"result":{)", 0), 0u) << line;
    auto r = parse_reply(line);
    ASSERT_TRUE(r) << r.error().message;
    EXPECT_FALSE(r->is_event);
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->id, 12);
    EXPECT_EQ(r->result, result);

    auto no_id = parse_reply(encode_ok(std::nullopt, json::object()));
    ASSERT_TRUE(no_id);
    EXPECT_EQ(no_id->id, std::nullopt);
    EXPECT_EQ(no_id->result, json::object());
    EXPECT_EQ(json::parse(encode_ok(std::nullopt, json::object())).contains("id"), false);
}

TEST(RoundTrip, EncodeError) {
    const ProtocolError e{std::string(error_code::already_decided),
                          "request 42 was already denied by user:bob(1001)", 5};
    const std::string line = encode_error(e);
    EXPECT_EQ(
        line,
        R"j({"v":1,"id":5,"ok":false,"error":{"code":"already_decided","message":"request 42 was already denied by user:bob(1001)"}})j");
    auto r = parse_reply(line);
    ASSERT_TRUE(r);
    EXPECT_FALSE(r->ok);
    EXPECT_FALSE(r->is_event);
    EXPECT_EQ(r->id, 5);
    EXPECT_EQ(r->error_code, "already_decided");
    EXPECT_EQ(r->error_message, e.message);

    const ProtocolError anon{std::string(error_code::bad_request), "bad \"x\"\nline", std::nullopt};
    const std::string anon_line = encode_error(anon);
    EXPECT_EQ(anon_line.find('\n'), std::string::npos);
    EXPECT_FALSE(json::parse(anon_line).contains("id"));
    auto ra = parse_reply(anon_line);
    ASSERT_TRUE(ra);
    EXPECT_EQ(ra->id, std::nullopt);
    EXPECT_EQ(ra->error_message, anon.message);
}

TEST(RoundTrip, ParseErrorsEncodeToValidReplies) {
    // What the daemon does with a bad line: the error must survive the trip,
    // including raw bytes the parser quoted from the client.
    for (const auto& line : {std::string("{\"v\":1,\"op\":\"\xff\"}"), std::string("{\"v\":2,\"id\":8}"),
                             req("approve", R"("request":0)")}) {
        const ProtocolError e = parse_err(line);
        auto r = parse_reply(encode_error(e));
        ASSERT_TRUE(r) << encode_error(e);
        EXPECT_EQ(r->error_code, e.code);
        EXPECT_EQ(r->id, e.id);
    }
}

TEST(RoundTrip, EncodeEvent) {
    const json data = {
        {"id", 42}, {"decision", "approved"}, {"by", "user:alice(1000)"}, {"scope", "once"}, {"reason", ""}};
    const std::string line = encode_event(event_name::request_resolved, data);
    EXPECT_EQ(line.rfind(R"({"v":1,"event":"request.resolved","data":{)", 0), 0u) << line;
    auto r = parse_reply(line);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->is_event);
    EXPECT_TRUE(r->ok);
    EXPECT_EQ(r->event, "request.resolved");
    EXPECT_EQ(r->id, std::nullopt);
    EXPECT_EQ(r->result, data);
}

TEST(RoundTrip, EncodersReplaceInvalidUtf8) {
    const json data = {{"object", "/tmp/\xff\xfe"}};
    std::string line;
    EXPECT_NO_THROW(line = encode_event(event_name::request_created, data));
    auto r = parse_reply(line);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result["object"], "/tmp/\xef\xbf\xbd\xef\xbf\xbd");
    EXPECT_NO_THROW(line = encode_ok(1, data));
    EXPECT_TRUE(parse_reply(line));
    EXPECT_NO_THROW(line = encode_error({"internal", "bad \xc3", 1}));
    EXPECT_TRUE(parse_reply(line));
}

TEST(ParseReply, IgnoresUnknownFields) {
    auto r = parse_reply(R"({"v":1,"id":1,"ok":true,"result":{"x":1},"ts":"2024-01-01T00:00:00Z"})");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->result["x"], 1);
}

TEST(ParseReply, Errors) {
    auto code_of = [](const std::string& line) {
        auto r = parse_reply(line);
        EXPECT_FALSE(r) << line;
        return r ? std::string() : r.error().code + " " + r.error().message;
    };
    EXPECT_EQ(code_of(R"({"v":2,"ok":true,"result":{}})").rfind("unsupported_version", 0), 0u);
    EXPECT_EQ(code_of(R"({"ok":true,"result":{}})").rfind("unsupported_version", 0), 0u);
    EXPECT_NE(code_of(R"({"v":1,"result":{}})").find("\"ok\""), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":"yes","result":{}})").find("\"ok\""), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":true})").find("\"result\""), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":false})").find("\"error\""), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":false,"error":{"message":"m"}})").find("\"error.code\""),
              std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":false,"error":{"code":"x","message":3}})").find("\"error.message\""),
              std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"event":"x"})").find("\"data\""), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"event":1,"data":{}})").find("\"event\""), std::string::npos);
    EXPECT_NE(code_of(R"([])").find("JSON object"), std::string::npos);
    EXPECT_NE(code_of(R"({"v":1,"ok":tru)").find("invalid JSON at byte"), std::string::npos);
}

// --------------------------------------------------------------- LineBuffer

// Drains every line/error currently available; errors become "!<message>".
std::vector<std::string> drain(LineBuffer& lb) {
    std::vector<std::string> out;
    while (auto item = lb.next()) {
        if (*item) {
            out.push_back(**item);
        } else {
            EXPECT_EQ(item->error().code, error_code::bad_request);
            out.push_back("!" + item->error().message);
        }
    }
    return out;
}

TEST(LineBuffer, WholeLines) {
    LineBuffer lb;
    lb.append("{\"a\":1}\n{\"b\":2}\n");
    EXPECT_EQ(drain(lb), (std::vector<std::string>{"{\"a\":1}", "{\"b\":2}"}));
    EXPECT_EQ(lb.buffered(), 0u);
}

TEST(LineBuffer, PartialLineWaitsForNewline) {
    LineBuffer lb;
    lb.append("{\"a\":");
    EXPECT_FALSE(lb.next().has_value());
    EXPECT_EQ(lb.buffered(), 5u);
    lb.append("1}");
    EXPECT_FALSE(lb.next().has_value());
    lb.append("\n");
    EXPECT_EQ(drain(lb), std::vector<std::string>{"{\"a\":1}"});
}

TEST(LineBuffer, ByteByByte) {
    const std::string stream = "hello\r\nworld\n\n\r\nx\nlast-without-newline";
    LineBuffer lb;
    std::vector<std::string> got;
    for (const char c : stream) {
        lb.append(std::string_view(&c, 1));
        for (auto& l : drain(lb)) got.push_back(l);
    }
    EXPECT_EQ(got, (std::vector<std::string>{"hello", "world", "x"}));
    EXPECT_EQ(lb.buffered(), std::string("last-without-newline").size());
}

TEST(LineBuffer, CrlfAndEmptyLines) {
    LineBuffer lb;
    lb.append("a\r\n\r\n\n\nb\r\nc\r\r\n");
    // Only one "\r" is a terminator; a stray one before it is content.
    EXPECT_EQ(drain(lb), (std::vector<std::string>{"a", "b", "c\r"}));
}

TEST(LineBuffer, LineAtCapIsAccepted) {
    LineBuffer lb(8);
    lb.append("12345678\n123456789\nok\n");
    EXPECT_EQ(drain(lb), (std::vector<std::string>{"12345678", "!line exceeds 8 bytes", "ok"}));
}

TEST(LineBuffer, DefaultCapMessage) {
    LineBuffer lb;
    lb.append(std::string(k_max_line_bytes + 1, 'x'));
    auto item = lb.next();
    ASSERT_TRUE(item.has_value());
    ASSERT_FALSE(item->has_value());
    EXPECT_EQ(item->error().code, error_code::bad_request);
    EXPECT_EQ(item->error().message, "line exceeds 65536 bytes");
    EXPECT_EQ(item->error().id, std::nullopt);
}

TEST(LineBuffer, OversizedLineReportedOnceAndNextLineParses) {
    LineBuffer lb;
    const std::string chunk(4096, 'A');
    std::vector<std::string> got;
    lb.append("{\"v\":1,\"op\":\"status\"}\n");
    for (int i = 0; i < 100; ++i) {  // ~400 KiB of one line, in read-sized chunks
        lb.append(chunk);
        for (auto& l : drain(lb)) got.push_back(l);
        EXPECT_LE(lb.buffered(), k_max_line_bytes + chunk.size());
    }
    lb.append("AAAA\n{\"v\":1,\"op\":\"hello\",\"id\":2}\n");
    for (auto& l : drain(lb)) got.push_back(l);
    ASSERT_EQ(got.size(), 3u);
    EXPECT_EQ(got[0], "{\"v\":1,\"op\":\"status\"}");
    EXPECT_EQ(got[1], "!line exceeds 65536 bytes");
    auto r = parse_request(got[2]);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->id, 2);
    EXPECT_TRUE(std::holds_alternative<HelloRequest>(r->body));
    EXPECT_EQ(lb.buffered(), 0u);
}

TEST(LineBuffer, OversizedTailDroppedEvenWithoutDraining) {
    // A caller that appends several chunks before draining still gets lines
    // and the error in stream order, and the oversized bytes are never kept.
    LineBuffer lb(10);
    lb.append("one\ntwo\n0123456789");
    lb.append("ABC");
    EXPECT_EQ(lb.buffered(), 8u);
    lb.append("DEF\nthree\n");
    lb.append("xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
    lb.append("\nfour\n");
    EXPECT_EQ(drain(lb), (std::vector<std::string>{"one", "two", "!line exceeds 10 bytes", "three",
                                                   "!line exceeds 10 bytes", "four"}));
    EXPECT_EQ(lb.buffered(), 0u);
}

TEST(LineBuffer, OversizedCompleteLineInOneChunk) {
    LineBuffer lb(4);
    lb.append("abcdefgh\nok\nabcde\r\nlast\n");
    EXPECT_EQ(drain(lb),
              (std::vector<std::string>{"!line exceeds 4 bytes", "ok", "!line exceeds 4 bytes", "last"}));
}

// Reference splitter: what next() must yield for a whole stream.
std::vector<std::string> reference_split(const std::string& stream, std::size_t cap) {
    std::vector<std::string> out;
    std::size_t pos = 0;
    for (;;) {
        const auto nl = stream.find('\n', pos);
        std::string line = stream.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (nl == std::string::npos) {
            if (line.size() > cap) out.push_back("!line exceeds " + std::to_string(cap) + " bytes");
            return out;
        }
        pos = nl + 1;
        if (line.size() > cap) {
            out.push_back("!line exceeds " + std::to_string(cap) + " bytes");
            continue;
        }
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!line.empty()) out.push_back(line);
    }
}

TEST(LineBuffer, RandomChunkingMatchesReferenceAndStaysBounded) {
    std::mt19937 rng(1234);
    constexpr std::size_t cap = 32;
    for (int round = 0; round < 300; ++round) {
        std::string stream;
        const int lines = std::uniform_int_distribution<int>(0, 30)(rng);
        for (int i = 0; i < lines; ++i) {
            const std::size_t len = std::uniform_int_distribution<std::size_t>(0, 3 * cap)(rng);
            for (std::size_t j = 0; j < len; ++j)
                stream += static_cast<char>('a' + static_cast<int>(rng() % 26));
            if (rng() % 4 == 0) stream += '\r';
            stream += '\n';
        }
        const std::size_t max_chunk = std::uniform_int_distribution<std::size_t>(1, 2 * cap)(rng);
        LineBuffer lb(cap);
        std::vector<std::string> got;
        for (std::size_t pos = 0; pos < stream.size();) {
            const std::size_t n =
                std::min(stream.size() - pos, std::uniform_int_distribution<std::size_t>(1, max_chunk)(rng));
            lb.append(std::string_view(stream).substr(pos, n));
            pos += n;
            ASSERT_LE(lb.buffered(), cap + n);
            for (auto& l : drain(lb)) got.push_back(l);
            ASSERT_LE(lb.buffered(), cap);
        }
        ASSERT_EQ(got, reference_split(stream, cap)) << "round " << round;
    }
}

}  // namespace
