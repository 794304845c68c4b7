// Unit tests for the policy language: parsing, diagnostics, glob/CIDR/port
// matching, precedence and the shipped policies.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/builtin.hpp"
#include "policy/glob.hpp"
#include "policy/link_decision.hpp"
#include "policy/network.hpp"
#include "policy/policy.hpp"

namespace airlock::policy {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view home = "/home/alice";

std::string dump(const std::vector<Diagnostic>& diagnostics) {
    std::string out;
    for (const auto& d : diagnostics) out += d.to_string() + "\n";
    return out;
}

// Throws (gtest reports it as a failure with the text) rather than returning
// an empty Policy, which does not exist.
Policy must_parse(std::string_view yaml) {
    auto policy = Policy::parse(yaml, "test.yaml");
    if (!policy) throw std::runtime_error("unexpected parse failure:\n" + dump(policy.error()));
    return std::move(*policy);
}

std::vector<Diagnostic> errors_of(std::string_view yaml) {
    auto policy = Policy::parse(yaml, "test.yaml");
    if (policy) throw std::runtime_error("policy parsed but errors were expected:\n" + std::string(yaml));
    return policy.error();
}

// True when some diagnostic is at line:column and its message contains `text`.
::testing::AssertionResult has_error(const std::vector<Diagnostic>& diagnostics, int line, int column,
                                     std::string_view text) {
    for (const auto& d : diagnostics) {
        if (d.line == line && d.column == column && d.message.find(text) != std::string::npos) {
            return ::testing::AssertionSuccess();
        }
    }
    return ::testing::AssertionFailure() << "no error at " << line << ":" << column << " containing '" << text
                                         << "'; got:\n"
                                         << dump(diagnostics);
}

// A single-error policy: exactly one diagnostic, at line:column, containing `text`.
::testing::AssertionResult single_error(std::string_view yaml, int line, int column, std::string_view text) {
    const auto errors = errors_of(yaml);
    if (errors.size() != 1) return ::testing::AssertionFailure() << "expected one error, got:\n" << dump(errors);
    return has_error(errors, line, column, text);
}

Query open_query(std::string path, unsigned access) {
    Query q;
    q.action = Action::open;
    q.path = std::move(path);
    q.access = access;
    return q;
}

Query exec_query(std::string path) {
    Query q;
    q.action = Action::exec;
    q.path = std::move(path);
    return q;
}

Query connect_ip(std::string_view address, std::uint16_t port) {
    Query q;
    q.action = Action::connect;
    q.address = IpAddress::parse(address);
    if (!q.address) throw std::runtime_error("bad address in test: " + std::string(address));
    q.port = port;
    return q;
}

Query connect_unix(std::string path) {
    Query q;
    q.action = Action::connect;
    q.path = std::move(path);
    return q;
}

constexpr unsigned rw = access_read | access_write;

std::string rules_header() { return "version: 1\ndefault: ask\nrules:\n"; }

// The example from the user-facing contract, verbatim.
constexpr std::string_view contract_example = R"(version: 1
default: ask                 # verdict when no rule matches: allow | deny | ask
ask: { timeout: 5m, on_timeout: deny }
approvers: { users: [alice], groups: [airlock-approvers], allow_session_owner: true }
rules:
  - name: system-read
    match: { action: open, access: read, path: ["/usr/**", "/lib/**", "/etc/**"] }
    verdict: allow
  - name: ssh-keys
    match: { action: open, path: ["~/.ssh/**"] }
    verdict: deny
    errno: EACCES
  - name: customer-data
    match: { action: open, path: ["/srv/data/**"] }
    verdict: ask
  - name: egress
    match: { action: connect, dest: ["0.0.0.0/0", "::/0"], port: [80, 443] }
    verdict: ask
  - name: shells
    match: { action: exec, path: ["/usr/bin/bash", "/bin/sh"] }
    verdict: allow
)";

// ---------------------------------------------------------------- parsing

TEST(PolicyParse, ContractExampleLoadsWithEverySection) {
    const Policy policy = must_parse(contract_example);
    EXPECT_EQ(policy.default_verdict(), Verdict::ask);
    EXPECT_EQ(policy.ask_settings().timeout, 5min);
    EXPECT_EQ(policy.ask_settings().on_timeout, Verdict::deny);
    EXPECT_EQ(policy.approvers().users, std::vector<std::string>{"alice"});
    EXPECT_EQ(policy.approvers().groups, std::vector<std::string>{"airlock-approvers"});
    EXPECT_TRUE(policy.approvers().allow_session_owner);
    EXPECT_EQ(policy.source_name(), "test.yaml");
}

TEST(PolicyParse, ContractExampleDecides) {
    const Policy policy = must_parse(contract_example);
    auto decide = [&](const Query& q) { return policy.decide(q, home); };

    const Decision usr = decide(open_query("/usr/lib/libc.so.6", access_read));
    EXPECT_EQ(usr.verdict, Verdict::allow);
    EXPECT_EQ(usr.rule, "system-read");
    EXPECT_EQ(usr.error_number, 0);

    const Decision key = decide(open_query("/home/alice/.ssh/id_rsa", access_read));
    EXPECT_EQ(key.verdict, Verdict::deny);
    EXPECT_EQ(key.rule, "ssh-keys");
    EXPECT_EQ(key.error_number, EACCES);

    EXPECT_EQ(decide(open_query("/srv/data/customers.csv", access_read)).rule, "customer-data");
    EXPECT_EQ(decide(open_query("/usr/lib/x", rw)).rule, "default");  // system-read is read only

    const Decision web = decide(connect_ip("93.184.216.34", 443));
    EXPECT_EQ(web.verdict, Verdict::ask);
    EXPECT_EQ(web.rule, "egress");
    EXPECT_EQ(decide(connect_ip("2001:db8::1", 80)).rule, "egress");
    EXPECT_EQ(decide(connect_ip("93.184.216.34", 22)).rule, "default");

    EXPECT_EQ(decide(exec_query("/usr/bin/bash")).verdict, Verdict::allow);
    EXPECT_EQ(decide(exec_query("/usr/bin/python3")).rule, "default");
    // An exec rule says nothing about opening the same path.
    EXPECT_EQ(decide(open_query("/bin/sh", access_read)).rule, "default");
}

TEST(PolicyParse, MinimalPolicyUsesDefaults) {
    const Policy policy = must_parse("version: 1\ndefault: deny\n");
    EXPECT_EQ(policy.ask_settings().timeout, 5min);
    EXPECT_EQ(policy.ask_settings().on_timeout, Verdict::deny);
    EXPECT_TRUE(policy.approvers().users.empty());
    EXPECT_FALSE(policy.approvers().allow_session_owner);
    EXPECT_EQ(policy.decide(open_query("/x", access_read), home).verdict, Verdict::deny);
}

TEST(PolicyParse, RulesKeyWithEveryRuleCommentedOutIsEmpty) {
    const Policy policy = must_parse("version: 1\ndefault: allow\nrules:\n#  - name: x\n");
    EXPECT_EQ(policy.decide(exec_query("/bin/true"), home).rule, "default");
}

TEST(PolicyParse, SingleStringsAreAcceptedWhereListsAre) {
    const Policy policy = must_parse(R"(version: 1
default: deny
approvers: { users: bob, groups: wheel }
rules:
  - name: r
    match: { action: connect, dest: 10.0.0.0/8, port: "8000-8100" }
    verdict: allow
)");
    EXPECT_EQ(policy.approvers().users, std::vector<std::string>{"bob"});
    EXPECT_EQ(policy.decide(connect_ip("10.9.9.9", 8050), home).verdict, Verdict::allow);
}

TEST(PolicyParse, ActionListAppliesPathToEachAction) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: tools
    match: { action: [open, exec], path: "/opt/tools/**" }
    verdict: allow
)");
    EXPECT_EQ(policy.decide(open_query("/opt/tools/x", rw), home).verdict, Verdict::allow);
    EXPECT_EQ(policy.decide(exec_query("/opt/tools/bin/x"), home).verdict, Verdict::allow);
    EXPECT_EQ(policy.decide(connect_unix("/opt/tools/sock"), home).verdict, Verdict::deny);
}

TEST(PolicyParse, DigestIsSha256OfTheText) {
    const Policy policy = must_parse("version: 1\ndefault: allow\n");
    EXPECT_EQ(policy.digest(), "2887b03bc6dc9776c3d4c2abf0379db18bd24e737d91f250fba19dc7f8f451b9");
    const Policy other = must_parse("version: 1\ndefault: allow\n# changed\n");
    EXPECT_NE(other.digest(), policy.digest());
}

TEST(PolicyParse, PolicyIsMovable) {
    Policy a = must_parse("version: 1\ndefault: allow\n");
    Policy b = must_parse("version: 1\ndefault: deny\n");
    b = std::move(a);
    EXPECT_EQ(b.default_verdict(), Verdict::allow);
    Policy c(std::move(b));
    EXPECT_EQ(c.default_verdict(), Verdict::allow);
}

// ------------------------------------------------------------ diagnostics

TEST(PolicyErrors, DiagnosticToStringFormats) {
    EXPECT_EQ((Diagnostic{"p.yaml", 3, 7, "bad"}.to_string()), "p.yaml:3:7: bad");
    EXPECT_EQ((Diagnostic{"p.yaml", 3, 0, "bad"}.to_string()), "p.yaml:3: bad");
    EXPECT_EQ((Diagnostic{"p.yaml", 0, 0, "bad"}.to_string()), "p.yaml: bad");
}

TEST(PolicyErrors, EmptyFileIsAnError) {
    for (std::string_view text : {"", "\n", "# only a comment\n", "---\n"}) {
        const auto errors = errors_of(text);
        ASSERT_EQ(errors.size(), 1u) << dump(errors);
        EXPECT_EQ(errors[0].line, 0);
        EXPECT_NE(errors[0].message.find("empty"), std::string::npos);
        EXPECT_EQ(errors[0].file, "test.yaml");
    }
}

TEST(PolicyErrors, YamlSyntaxErrorIsOneDiagnosticWithPosition) {
    EXPECT_TRUE(single_error("version: 1\ndefault: [ask\n", 3, 1, "YAML syntax error"));
    EXPECT_TRUE(single_error("version: 1\ndefault: a: b\n", 2, 11, "YAML syntax error"));
}

// yaml-cpp 0.7's LoadAll loops forever (allocating) on these; the parser must
// report them instead.
TEST(PolicyErrors, StrayCommaIsASyntaxErrorNotAHang) {
    EXPECT_TRUE(single_error(",", 1, 1, "YAML syntax error: unexpected ','"));
    EXPECT_TRUE(single_error("# comment\n, run\nversion: 1\n", 2, 1, "YAML syntax error: unexpected ','"));
    EXPECT_TRUE(single_error("version: 1\ndefault: ask\n---\n,\n", 4, 1, "YAML syntax error: unexpected ','"));
    EXPECT_TRUE(single_error("- a\n,\n", 2, 1, "YAML syntax error: unexpected ','"));
}

TEST(PolicyErrors, DeepNestingIsReported) {
    const auto errors = errors_of("version: 1\ndefault: ask\nrules: " + std::string(100'000, '['));
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_NE(errors[0].message.find("too deep"), std::string::npos) << dump(errors);
}

TEST(PolicyParse, AnchorsAndAliasesCanShareLists) {
    const Policy policy = must_parse(R"(version: 1
default: ask
rules:
  - name: deny-secrets
    match: { action: open, path: &secrets ["~/.ssh/**", "~/.aws/**"] }
    verdict: deny
  - name: no-exec-secrets
    match: { action: exec, path: *secrets }
    verdict: deny
)");
    EXPECT_EQ(policy.decide(exec_query("/home/alice/.aws/tool"), home).rule, "no-exec-secrets");
}

// A small file can name one long list from every rule through an alias; the
// total is bounded so that compiling it cannot exhaust memory.
TEST(PolicyErrors, AliasAmplificationIsBounded) {
    std::string yaml = rules_header() + "  - name: r0\n    match:\n      action: open\n      path: &big\n";
    for (int i = 0; i < 1000; ++i) yaml += "        - /p" + std::to_string(i) + "\n";
    yaml += "    verdict: allow\n";
    for (int i = 1; i < 300; ++i) {
        yaml += "  - {name: r" + std::to_string(i) + ", match: {action: open, path: *big}, verdict: allow}\n";
    }
    const auto errors = errors_of(yaml);
    ASSERT_EQ(errors.size(), 1u) << dump(errors);
    EXPECT_NE(errors[0].message.find("more than 200000 entries"), std::string::npos) << dump(errors);
}

TEST(PolicyErrors, TopLevelMustBeAMapping) {
    EXPECT_TRUE(single_error("- a\n- b\n", 1, 1, "a policy must be a mapping"));
}

TEST(PolicyErrors, SecondDocumentIsAnError) {
    EXPECT_TRUE(single_error("version: 1\ndefault: ask\n---\nversion: 1\n", 4, 1, "exactly one YAML document"));
}

TEST(PolicyErrors, UnknownTopLevelKey) {
    EXPECT_TRUE(
        single_error("version: 1\ndefault: ask\nrulez: []\n", 3, 1,
                     "unknown key 'rulez' at top level; expected one of: version, default, ask, inspection, approvers, require, rules"));
}

TEST(PolicyErrors, VersionAndDefaultAreRequiredAndChecked) {
    EXPECT_TRUE(single_error("default: ask\n", 1, 1, "missing required key 'version'"));
    EXPECT_TRUE(single_error("version: 1\n", 1, 1, "missing required key 'default'"));
    EXPECT_TRUE(single_error("version: 2\ndefault: ask\n", 1, 10, "unsupported policy version '2'"));
    EXPECT_TRUE(
        single_error("version: 1\ndefault: maybe\n", 2, 10, "unknown default 'maybe'; expected allow, deny or ask"));
    EXPECT_TRUE(single_error("version: 1\ndefault:\n", 2, 1, "got nothing"));
}

TEST(PolicyErrors, UnknownRuleKeyNamesTheRuleAndTheChoices) {
    constexpr std::string_view yaml = R"(version: 1
default: ask
rules:
  - name: x
    mach: { action: open }
    verdict: allow
)";
    const auto errors = errors_of(yaml);
    EXPECT_TRUE(
        has_error(errors, 5, 5, "unknown key 'mach' in rule 'x'; expected one of: name, match, verdict, errno, ask"));
    // The typo also leaves the rule without a match, reported at the rule.
    EXPECT_TRUE(has_error(errors, 4, 5, "rule 'x': missing required key 'match'"));
    EXPECT_EQ(errors.size(), 2u) << dump(errors);
}

TEST(PolicyErrors, UnknownKeysInNestedSections) {
    EXPECT_TRUE(single_error("version: 1\ndefault: ask\nask: { timout: 5m }\n", 3, 8,
                             "unknown key 'timout' in ask; expected one of: timeout, on_timeout"));
    EXPECT_TRUE(single_error("version: 1\ndefault: ask\napprovers:\n  user: [a]\n", 4, 3,
                             "unknown key 'user' in approvers; expected one of: users, groups, allow_session_owner"));
    EXPECT_TRUE(single_error(
        R"(version: 1
default: ask
rules:
  - name: r
    match: { action: open, pth: "/x" }
    verdict: allow
)",
        5, 28, "unknown key 'pth' in match of rule 'r'; expected one of: action, access, path, dest, port"));
}

TEST(PolicyErrors, DuplicateKeysAreErrors) {
    EXPECT_TRUE(
        single_error("version: 1\ndefault: ask\ndefault: deny\n", 3, 1, "duplicate key 'default' at top level"));
}

TEST(PolicyErrors, RuleNameRules) {
    constexpr std::string_view yaml = R"(version: 1
default: ask
rules:
  - name: a
    match: { action: exec }
    verdict: allow
  - name: a
    match: { action: exec }
    verdict: deny
  - name: "has space"
    match: { action: exec }
    verdict: deny
  - name: default
    match: { action: exec }
    verdict: deny
  - match: { action: exec }
    verdict: deny
)";
    const auto errors = errors_of(yaml);
    EXPECT_TRUE(has_error(errors, 7, 5, "duplicate rule name 'a'; first used at line 4"));
    EXPECT_TRUE(has_error(errors, 10, 11, "rule #3: rule name 'has space' must be"));
    EXPECT_TRUE(has_error(errors, 13, 11, "'default' is reserved"));
    EXPECT_TRUE(has_error(errors, 16, 5, "rule #5: missing required key 'name'"));
    EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(PolicyErrors, RuleShapeErrors) {
    const auto errors = errors_of(R"(version: 1
default: ask
rules:
  - just-a-string
  - name: no-verdict
    match: { action: exec }
  - name: bad-verdict
    match: { action: exec }
    verdict: permit
  - name: bad-action
    match: { action: [open, read] }
    verdict: allow
  - name: no-action
    match: { path: /x }
    verdict: allow
  - name: match-list
    match: [open]
    verdict: allow
)");
    EXPECT_TRUE(has_error(errors, 4, 5, "rule #1 must be a mapping with name, match and verdict; got 'just-a-string'"));
    EXPECT_TRUE(has_error(errors, 5, 5, "rule 'no-verdict': missing required key 'verdict'"));
    EXPECT_TRUE(has_error(errors, 9, 14, "rule 'bad-verdict': unknown verdict 'permit'"));
    EXPECT_TRUE(has_error(errors, 11, 29, "rule 'bad-action': unknown action 'read'; expected open, connect or exec"));
    EXPECT_TRUE(has_error(errors, 14, 12, "rule 'no-action': match is missing required key 'action'"));
    EXPECT_TRUE(has_error(errors, 17, 12, "rule 'match-list': match must be a mapping"));
    EXPECT_EQ(errors.size(), 6u) << dump(errors);
}

TEST(PolicyErrors, FieldsThatDoNotFitTheAction) {
    const auto errors = errors_of(R"(version: 1
default: ask
rules:
  - name: a
    match: { action: connect, access: read }
    verdict: allow
  - name: b
    match: { action: open, dest: 10.0.0.0/8 }
    verdict: allow
  - name: c
    match: { action: [open, connect], port: 80 }
    verdict: allow
  - name: d
    match: { action: connect, path: /run/x.sock, dest: 10.0.0.0/8 }
    verdict: allow
  - name: e
    match: { action: open, access: [read, append] }
    verdict: allow
)");
    EXPECT_TRUE(has_error(errors, 5, 31, "rule 'a': access applies only to action open"));
    EXPECT_TRUE(has_error(errors, 8, 28, "rule 'b': dest applies only to action connect"));
    EXPECT_TRUE(has_error(errors, 11, 39, "rule 'c': port applies only to action connect"));
    EXPECT_TRUE(has_error(errors, 14, 12, "rule 'd': a connect rule matches either a unix socket"));
    EXPECT_TRUE(has_error(errors, 17, 43, "rule 'e': unknown access 'append'"));
    EXPECT_EQ(errors.size(), 5u) << dump(errors);
}

TEST(PolicyErrors, BadPatternsDestinationsAndPorts) {
    const auto errors = errors_of(R"(version: 1
default: ask
rules:
  - name: globs
    match:
      action: open
      path:
        - relative/path
        - "/usr/lib**"
        - /tmp/
        - "/a/[bc"
    verdict: allow
  - name: net
    match:
      action: connect
      dest: [10.1.2.3/8, 300.1.1.1, "::1/129"]
      port: [0, 65536, "90-80", http]
    verdict: allow
)");
    EXPECT_TRUE(has_error(errors, 8, 11, "bad path 'relative/path': pattern must be absolute"));
    EXPECT_TRUE(has_error(errors, 9, 11, "'**' must be a whole path component"));
    EXPECT_TRUE(has_error(errors, 10, 11, "write '/tmp' for the directory itself or '/tmp/**'"));
    EXPECT_TRUE(has_error(errors, 11, 11, "unterminated '['"));
    EXPECT_TRUE(has_error(errors, 16, 14,
                          "bad dest '10.1.2.3/8': host bits are set below the /8 prefix; did you mean 10.0.0.0/8?"));
    EXPECT_TRUE(has_error(errors, 16, 26, "bad dest '300.1.1.1'"));
    EXPECT_TRUE(has_error(errors, 16, 37, "bad dest '::1/129': prefix length must be 0-128"));
    EXPECT_TRUE(has_error(errors, 17, 14, "bad port '0': ports are 1-65535"));
    EXPECT_TRUE(has_error(errors, 17, 17, "bad port '65536'"));
    EXPECT_TRUE(has_error(errors, 17, 24, "bad port '90-80': the range is reversed"));
    EXPECT_TRUE(has_error(errors, 17, 33, "bad port 'http'"));
    EXPECT_EQ(errors.size(), 11u) << dump(errors);
}

TEST(PolicyErrors, EmptyListsAndNullsAreErrors) {
    EXPECT_TRUE(single_error(R"(version: 1
default: ask
rules:
  - name: r
    match: { action: open, path: [] }
    verdict: allow
)",
                             5, 34, "path is an empty list, which matches nothing"));
    // A bare ~ is YAML null: say how to write the home directory.
    EXPECT_TRUE(single_error(R"(version: 1
default: ask
rules:
  - name: r
    match: { action: open, path: ~ }
    verdict: allow
)",
                             5, 28, "write \"~\" for the home directory"));
}

TEST(PolicyErrors, ErrnoAndAskErrors) {
    const auto errors = errors_of(R"(version: 1
default: ask
ask: { timeout: 5 minutes, on_timeout: ask }
rules:
  - name: a
    match: { action: exec }
    verdict: deny
    errno: EACESS
  - name: b
    match: { action: exec }
    verdict: allow
    errno: EPERM
  - name: c
    match: { action: exec }
    verdict: deny
    ask: { timeout: 1m }
  - name: d
    match: { action: exec }
    verdict: ask
    ask: { timeout: 0s, on_timeout: maybe }
)");
    EXPECT_TRUE(has_error(errors, 3, 17, "timeout '5 minutes' is not a duration"));
    EXPECT_TRUE(has_error(errors, 3, 40, "on_timeout must be allow or deny"));
    EXPECT_TRUE(has_error(errors, 8, 12, "rule 'a': unknown errno name 'EACESS'"));
    EXPECT_TRUE(has_error(errors, 12, 5, "rule 'b': errno has no effect on an allow rule"));
    EXPECT_TRUE(has_error(errors, 16, 5, "rule 'c': ask settings apply only to rules that can ask"));
    EXPECT_TRUE(has_error(errors, 20, 21, "rule 'd': timeout must be longer than 0"));
    EXPECT_TRUE(has_error(errors, 20, 37, "rule 'd': unknown on_timeout 'maybe'"));
    EXPECT_EQ(errors.size(), 7u) << dump(errors);
}

TEST(PolicyErrors, ApproverErrors) {
    const auto errors = errors_of(R"(version: 1
default: ask
approvers:
  users: [alice, "1000", "bad name"]
  groups: {wheel: 1}
  allow_session_owner: sometimes
)");
    EXPECT_TRUE(has_error(errors, 4, 18, "approvers: users entry '1000' is a numeric id"));
    EXPECT_TRUE(has_error(errors, 4, 26, "'bad name' is not a valid name"));
    EXPECT_TRUE(has_error(errors, 5, 11, "groups must be a string or a list of strings; got a mapping"));
    EXPECT_TRUE(has_error(errors, 6, 24, "allow_session_owner must be true or false; got 'sometimes'"));
    EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

TEST(PolicyErrors, ErrorsInDifferentSectionsAreAllReported) {
    const auto errors = errors_of(R"(version: 3
default: sometimes
rules:
  - name: ok
    match: { action: exec }
    verdict: allow
  - name: broken
    match: { action: teleport }
    verdict: allow
extra: 1
)");
    EXPECT_TRUE(has_error(errors, 1, 10, "unsupported policy version"));
    EXPECT_TRUE(has_error(errors, 2, 10, "unknown default"));
    EXPECT_TRUE(has_error(errors, 8, 22, "unknown action 'teleport'"));
    EXPECT_TRUE(has_error(errors, 10, 1, "unknown key 'extra'"));
    EXPECT_EQ(errors.size(), 4u) << dump(errors);
    for (const auto& d : errors) EXPECT_EQ(d.file, "test.yaml");
}

TEST(PolicyErrors, TooManyRules) {
    std::string yaml = rules_header();
    for (int i = 0; i < 10'001; ++i)
        yaml += "  - {name: r" + std::to_string(i) + ", match: {action: exec}, verdict: allow}\n";
    EXPECT_TRUE(single_error(yaml, 4, 3, "too many rules (10001); at most 10000"));

    yaml = rules_header();
    for (int i = 0; i < 10'000; ++i)
        yaml += "  - {name: r" + std::to_string(i) + ", match: {action: exec}, verdict: allow}\n";
    EXPECT_TRUE(Policy::parse(yaml, "big.yaml").has_value());
}

TEST(PolicyErrors, TooManyPatternsAndTooLongGlob) {
    std::string yaml = rules_header() + "  - name: r\n    match:\n      action: open\n      path:\n";
    for (int i = 0; i < 1001; ++i) yaml += "        - /p" + std::to_string(i) + "\n";
    yaml += "    verdict: allow\n";
    EXPECT_TRUE(single_error(yaml, 8, 9, "path has 1001 entries; at most 1000"));

    const std::string long_glob = "/" + std::string(4096, 'a');
    yaml = rules_header() + "  - name: r\n    match: {action: open, path: " + long_glob + "}\n    verdict: allow\n";
    EXPECT_TRUE(single_error(yaml, 5, 33, "longer than 4096 bytes"));
    // The message quotes only the start of such a pattern.
    EXPECT_LT(errors_of(yaml).at(0).message.size(), 200u);
    const std::string max_glob = "/" + std::string(4095, 'a');
    yaml = rules_header() + "  - name: r\n    match: {action: open, path: " + max_glob + "}\n    verdict: allow\n";
    EXPECT_TRUE(Policy::parse(yaml, "t").has_value());
}

TEST(PolicyErrors, DiagnosticFloodIsCapped) {
    std::string yaml = rules_header();
    for (int i = 0; i < 150; ++i)
        yaml += "  - {name: r" + std::to_string(i) + ", match: {action: exec}, verdict: nope}\n";
    const auto errors = errors_of(yaml);
    ASSERT_EQ(errors.size(), 101u);
    EXPECT_EQ(errors.back().message, "50 more errors not shown");
}

TEST(PolicyErrors, LoadFileReportsUnreadableFiles) {
    const auto result = Policy::load_file("/nonexistent/airlock/policy.yaml");
    ASSERT_FALSE(result.has_value());
    ASSERT_EQ(result.error().size(), 1u);
    EXPECT_EQ(result.error()[0].file, "/nonexistent/airlock/policy.yaml");
    EXPECT_NE(result.error()[0].message.find("No such file"), std::string::npos);

    const auto directory = Policy::load_file("/");
    ASSERT_FALSE(directory.has_value());
}

TEST(PolicyErrors, LoadFileUsesThePathInDiagnostics) {
    const std::string path = ::testing::TempDir() + "airlock_policy_test_bad.yaml";
    {
        std::ofstream out(path);
        out << "version: 1\ndefault: ask\nbogus: 1\n";
    }
    const auto result = Policy::load_file(path);
    std::remove(path.c_str());
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().at(0).to_string(), path +
                                                    ":3:1: unknown key 'bogus' at top level; expected one of: "
                                                    "version, default, ask, inspection, approvers, require, rules");
}

// ------------------------------------------------------------------ globs

struct GlobCase {
    std::string_view pattern;
    std::string_view path;
    bool matches;
};

TEST(Glob, MatchTable) {
    const GlobCase cases[] = {
        // ** at the end: the directory itself and everything below.
        {"/usr/**", "/usr", true},
        {"/usr/**", "/usr/bin", true},
        {"/usr/**", "/usr/lib/x/y", true},
        {"/usr/**", "/usrx", false},
        {"/usr/**", "/usr2/bin", false},
        {"/usr/**", "/", false},
        // ** in the middle: zero or more components.
        {"/a/**/b", "/a/b", true},
        {"/a/**/b", "/a/x/b", true},
        {"/a/**/b", "/a/x/y/b", true},
        {"/a/**/b", "/a/b/c", false},
        {"/a/**/b", "/a/xb", false},
        {"/a/**/b", "/a", false},
        {"/a/**/b/c", "/a/b/x/b/c", true},  // needs backtracking past the first "b"
        {"/a/**/b/**/c", "/a/x/b/y/b/z/c", true},
        {"/a/**/b/**/c", "/a/b/c", true},
        {"/a/**/b/**/c", "/a/b/x", false},
        {"/a/**/**/b", "/a/b", true},
        // ** at the start.
        {"/**", "/", true},
        {"/**", "/any/thing/deep", true},
        {"/**/*.so", "/x.so", true},
        {"/**/*.so", "/usr/lib/libc.so", true},
        {"/**/*.so", "/usr/lib/libc.so.6", false},
        {"/**/.git/**", "/src/proj/.git/config", true},
        {"/**/.git/**", "/src/proj/.github/x", false},
        // * and ? never cross '/'.
        {"/tmp/*", "/tmp/a", true},
        {"/tmp/*", "/tmp/a/b", false},
        {"/tmp/*", "/tmp", false},
        {"/tmp/*.txt", "/tmp/a.txt", true},
        {"/tmp/*.txt", "/tmp/.txt", true},
        {"/tmp/*.txt", "/tmp/a/b.txt", false},
        {"/tmp/a*b*c", "/tmp/abc", true},
        {"/tmp/a*b*c", "/tmp/aXbYc", true},
        {"/tmp/a*b*c", "/tmp/abcbc", true},
        {"/tmp/a*b*c", "/tmp/aXbYcZ", false},
        {"/tmp/a*b*c", "/tmp/a/b/c", false},
        {"/usr/*/bin", "/usr/local/bin", true},
        {"/usr/*/bin", "/usr/bin", false},
        {"/usr/*/bin", "/usr/a/b/bin", false},
        {"/tmp/?", "/tmp/a", true},
        {"/tmp/?", "/tmp/ab", false},
        {"/tmp/??", "/tmp/a", false},
        {"/a?b", "/a/b", false},
        // Leading dots get no special treatment.
        {"/home/*", "/home/.hidden", true},
        // Character classes.
        {"/dev/tty[0-9]", "/dev/tty1", true},
        {"/dev/tty[0-9]", "/dev/ttyS", false},
        {"/dev/tty[0-9]", "/dev/tty10", false},
        {"/x/[abc]", "/x/b", true},
        {"/x/[abc]", "/x/d", false},
        {"/x/[!abc]", "/x/d", true},
        {"/x/[!abc]", "/x/a", false},
        {"/x/[^a]", "/x/b", true},
        {"/x/[]]", "/x/]", true},
        {"/x/[a-]", "/x/-", true},
        {"/x/[a-]", "/x/a", true},
        {"/x/[a-]", "/x/b", false},
        {"/x/[a-cx-z]*", "/x/yes", true},
        {"/x/[a-cx-z]*", "/x/no", false},
        // Escapes.
        {"/x/\\*", "/x/*", true},
        {"/x/\\*", "/x/a", false},
        {"/x/a\\[1]", "/x/a[1]", true},
        // Literals.
        {"/", "/", true},
        {"/", "/a", false},
        {"/etc/passwd", "/etc/passwd", true},
        {"/etc/passwd", "/etc/passwd2", false},
        {"/etc/passwd", "/etc", false},
        {"/etc/passwd", "/ETC/passwd", false},
        // Home.
        {"~/.ssh/**", "/home/alice/.ssh/id_rsa", true},
        {"~/.ssh/**", "/home/alice/.ssh", true},
        {"~/.ssh/**", "/home/alice2/.ssh/id_rsa", false},
        {"~/.ssh/**", "/home/bob/.ssh/id_rsa", false},
        {"~/**", "/home/alice/.bashrc", true},
        {"~/**", "/home/alice", true},
        {"~/**", "/home/alicex/a", false},
        {"~/**", "/home", false},
        {"~", "/home/alice", true},
        {"~", "/home/alice/x", false},
        {"~/", "/home/alice", true},
        {"~/*.txt", "/home/alice/notes.txt", true},
        {"~/*.txt", "/home/alice/d/notes.txt", false},
        // Query paths with a trailing slash (not normally sent) still match by component.
        {"/usr/*", "/usr/bin/", true},
        // Relative or empty query paths never match.
        {"/**", "", false},
        {"/**", "relative", false},
        {"~/**", "relative", false},
    };
    for (const auto& c : cases) {
        const auto glob = PathGlob::compile(c.pattern);
        ASSERT_TRUE(glob.has_value()) << c.pattern << ": " << glob.error();
        EXPECT_EQ(glob->matches(c.path, home), c.matches) << "pattern " << c.pattern << " path " << c.path;
    }
}

TEST(Glob, HomeVariants) {
    const auto glob = PathGlob::compile("~/.ssh/**");
    ASSERT_TRUE(glob);
    EXPECT_TRUE(glob->relative_to_home());
    EXPECT_TRUE(glob->matches("/home/alice/.ssh/k", "/home/alice/"));  // trailing slash in home
    EXPECT_TRUE(glob->matches("/.ssh/k", "/"));                        // a user whose home is /
    EXPECT_FALSE(glob->matches("/home/alice/.ssh/k", ""));             // unknown home
    EXPECT_FALSE(glob->matches("/home/alice/.ssh/k", "home/alice"));   // relative home
    // The home directory is compared literally, never as a pattern.
    EXPECT_TRUE(glob->matches("/home/a*b/.ssh/k", "/home/a*b"));
    EXPECT_FALSE(glob->matches("/home/axb/.ssh/k", "/home/a*b"));
    EXPECT_FALSE(PathGlob::compile("/usr/**")->relative_to_home());
}

TEST(Glob, CompileErrors) {
    const std::pair<std::string_view, std::string_view> cases[] = {
        {"", "empty pattern"},
        {"relative/x", "must be absolute"},
        {"*.txt", "must be absolute"},
        {"~bob/x", "'~user' is not supported"},
        {"/a/", "trailing '/'"},
        {"~/a/", "trailing '/'"},
        {"/a//b", "empty path component"},
        {"/a/../b", "'.' and '..'"},
        {"/a/./b", "'.' and '..'"},
        {"/usr/lib**", "'**' must be a whole path component"},
        {"/**x", "'**' must be a whole path component"},
        {"/a[bc", "unterminated '['"},
        {"/a[]", "unterminated '['"},
        {"/x/[z-a]", "reversed"},
        {"/x\\", "trailing '\\'"},
    };
    for (const auto& [pattern, reason] : cases) {
        const auto glob = PathGlob::compile(pattern);
        ASSERT_FALSE(glob.has_value()) << pattern;
        EXPECT_NE(glob.error().find(reason), std::string::npos) << pattern << ": " << glob.error();
    }
    EXPECT_FALSE(PathGlob::compile("/" + std::string(4096, 'a')));
    EXPECT_TRUE(PathGlob::compile("/" + std::string(4095, 'a')));
}

// ------------------------------------------------------------- precedence

TEST(Precedence, FirstMatchingRuleWins) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: first
    match: { action: open, path: "/srv/**" }
    verdict: ask
  - name: second
    match: { action: open, path: "/srv/data/**" }
    verdict: allow
)");
    // "second" is shadowed: "first" already covers everything it names.
    const Decision d = policy.decide(open_query("/srv/data/x", access_read), home);
    EXPECT_EQ(d.rule, "first");
    EXPECT_EQ(d.verdict, Verdict::ask);
}

TEST(Precedence, ExceptionBeforeBroaderRule) {
    constexpr std::string_view exception_first = R"(version: 1
default: ask
rules:
  - name: public-data
    match: { action: open, path: "/srv/data/public/**" }
    verdict: allow
  - name: data
    match: { action: open, path: "/srv/data/**" }
    verdict: deny
)";
    const Policy policy = must_parse(exception_first);
    EXPECT_EQ(policy.decide(open_query("/srv/data/public/readme", access_read), home).verdict, Verdict::allow);
    EXPECT_EQ(policy.decide(open_query("/srv/data/private/ledger", access_read), home).verdict, Verdict::deny);
    EXPECT_EQ(policy.decide(open_query("/srv/other", access_read), home).rule, "default");
}

TEST(Precedence, AllMatchFieldsMustMatch) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: read-etc
    match: { action: open, access: read, path: "/etc/**" }
    verdict: allow
  - name: web
    match: { action: connect, dest: 10.0.0.0/8, port: 443 }
    verdict: allow
)");
    EXPECT_EQ(policy.decide(open_query("/etc/hosts", access_read), home).rule, "read-etc");
    EXPECT_EQ(policy.decide(open_query("/etc/hosts", access_write), home).rule, "default");  // access differs
    EXPECT_EQ(policy.decide(open_query("/var/hosts", access_read), home).rule, "default");   // path differs
    EXPECT_EQ(policy.decide(exec_query("/etc/hosts"), home).rule, "default");                // action differs
    EXPECT_EQ(policy.decide(connect_ip("10.1.1.1", 443), home).rule, "web");
    EXPECT_EQ(policy.decide(connect_ip("10.1.1.1", 80), home).rule, "default");
    EXPECT_EQ(policy.decide(connect_ip("11.1.1.1", 443), home).rule, "default");
}

// ----------------------------------------------------------------- access

TEST(Access, RequestBitsMustAllBeListed) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: read-only
    match: { action: open, access: read, path: "/r/**" }
    verdict: allow
  - name: read-write
    match: { action: open, access: [read, write], path: "/rw/**" }
    verdict: allow
  - name: create-only
    match: { action: open, access: create, path: "/c/**" }
    verdict: allow
  - name: any-access
    match: { action: open, path: "/any/**" }
    verdict: allow
)");
    struct Case {
        std::string_view path;
        unsigned access;
        Verdict expected;
    };
    const Case cases[] = {
        {"/r/x", access_read, Verdict::allow},
        {"/r/x", access_write, Verdict::deny},
        {"/r/x", rw, Verdict::deny},
        {"/r/x", access_read | access_create, Verdict::deny},
        {"/rw/x", access_read, Verdict::allow},
        {"/rw/x", access_write, Verdict::allow},
        {"/rw/x", rw, Verdict::allow},
        {"/rw/x", rw | access_create, Verdict::deny},
        {"/c/x", access_create, Verdict::allow},
        {"/c/x", access_write | access_create, Verdict::deny},
        {"/any/x", rw | access_create, Verdict::allow},
        {"/any/x", access_read, Verdict::allow},
    };
    for (const auto& c : cases) {
        EXPECT_EQ(policy.decide(open_query(std::string(c.path), c.access), home).verdict, c.expected)
            << c.path << " " << access_to_string(c.access);
    }
}

// ---------------------------------------------------------------- network

TEST(Network, IpAddressParseAndFormat) {
    const auto v4 = IpAddress::parse("192.0.2.7");
    ASSERT_TRUE(v4);
    EXPECT_EQ(v4->family, AF_INET);
    EXPECT_EQ(v4->bytes[0], 192);
    EXPECT_EQ(v4->bytes[3], 7);
    EXPECT_EQ(v4->to_string(), "192.0.2.7");
    const auto v6 = IpAddress::parse("2001:DB8::1");
    ASSERT_TRUE(v6);
    EXPECT_EQ(v6->family, AF_INET6);
    EXPECT_EQ(v6->to_string(), "2001:db8::1");
    for (std::string_view bad : {"", "1.2.3", "1.2.3.256", "example.com", "::g", "1.2.3.4/8", "fe80::1%eth0"}) {
        EXPECT_FALSE(IpAddress::parse(bad)) << bad;
    }
    EXPECT_FALSE(IpAddress::parse(std::string(100, '1')));
}

TEST(Network, Ipv4MappedAddressesUnmap) {
    const auto mapped = IpAddress::parse("::ffff:10.1.2.3");
    ASSERT_TRUE(mapped);
    const IpAddress v4 = unmap_ipv4(*mapped);
    EXPECT_EQ(v4.family, AF_INET);
    EXPECT_EQ(v4.to_string(), "10.1.2.3");
    const IpAddress plain = unmap_ipv4(*IpAddress::parse("::1"));
    EXPECT_EQ(plain.family, AF_INET6);
}

TEST(Network, CidrContains) {
    struct Case {
        std::string_view cidr;
        std::string_view address;
        bool contains;
    };
    const Case cases[] = {
        {"10.0.0.0/8", "10.255.1.2", true},
        {"10.0.0.0/8", "11.0.0.1", false},
        {"0.0.0.0/0", "203.0.113.9", true},
        {"192.168.1.128/25", "192.168.1.200", true},
        {"192.168.1.128/25", "192.168.1.127", false},
        {"192.0.2.7", "192.0.2.7", true},
        {"192.0.2.7", "192.0.2.8", false},
        {"2001:db8::/32", "2001:db8:1::5", true},
        {"2001:db8::/32", "2001:db9::5", false},
        {"::1", "::1", true},
        {"::/0", "2606:4700::1", true},
        {"fe80::/10", "febf::1", true},
        {"fe80::/10", "fec0::1", false},
        // Families never cross: IPv4 queries are judged by IPv4 blocks only.
        {"::/0", "203.0.113.9", false},
        {"0.0.0.0/0", "2606:4700::1", false},
        // A mapped block is an IPv4 block.
        {"::ffff:10.0.0.0/104", "10.2.3.4", true},
        {"::ffff:10.0.0.0/104", "11.2.3.4", false},
    };
    for (const auto& c : cases) {
        const auto block = CidrBlock::parse(c.cidr);
        ASSERT_TRUE(block) << c.cidr << ": " << block.error();
        EXPECT_EQ(block->contains(*IpAddress::parse(c.address)), c.contains) << c.cidr << " " << c.address;
    }
    EXPECT_EQ(CidrBlock::parse("::ffff:10.0.0.0/104")->to_string(), "10.0.0.0/8");
    EXPECT_EQ(CidrBlock::parse("10.0.0.1")->to_string(), "10.0.0.1/32");
}

TEST(Network, CidrParseErrors) {
    for (std::string_view bad : {"10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "10.0.0.1/8", "::1/129", "nope/8",
                                 "2001:db8::1/32", "10.0.0.0/-1"}) {
        EXPECT_FALSE(CidrBlock::parse(bad)) << bad;
    }
}

TEST(Network, MappedQueryMatchesIpv4Rules) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: lan
    match: { action: connect, dest: 10.0.0.0/8 }
    verdict: allow
  - name: v6
    match: { action: connect, dest: "::/0" }
    verdict: ask
)");
    EXPECT_EQ(policy.decide(connect_ip("::ffff:10.1.2.3", 22), home).rule, "lan");
    EXPECT_EQ(policy.decide(connect_ip("::ffff:8.8.8.8", 53), home).rule, "default");
    EXPECT_EQ(policy.decide(connect_ip("2001:db8::1", 22), home).rule, "v6");
}

TEST(Network, PortRanges) {
    const auto range = PortRange::parse("8000-8100");
    ASSERT_TRUE(range);
    EXPECT_FALSE(range->contains(7999));
    EXPECT_TRUE(range->contains(8000));
    EXPECT_TRUE(range->contains(8100));
    EXPECT_FALSE(range->contains(8101));
    EXPECT_TRUE(PortRange::parse("1")->contains(1));
    EXPECT_TRUE(PortRange::parse("65535")->contains(65535));
    EXPECT_TRUE(PortRange::parse("1-65535")->contains(40000));
    for (std::string_view bad : {"0", "65536", "90-80", "", "-", "80-", "-80", "http", "8o", "80 - 90", "+80"}) {
        EXPECT_FALSE(PortRange::parse(bad)) << bad;
    }

    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: web
    match: { action: connect, port: [80, 443, "8000-8100"] }
    verdict: allow
)");
    for (const std::uint16_t port : std::initializer_list<std::uint16_t>{80, 443, 8000, 8050, 8100}) {
        EXPECT_EQ(policy.decide(connect_ip("203.0.113.1", port), home).verdict, Verdict::allow) << port;
    }
    for (const std::uint16_t port : std::initializer_list<std::uint16_t>{0, 22, 444, 7999, 8101}) {
        EXPECT_EQ(policy.decide(connect_ip("203.0.113.1", port), home).verdict, Verdict::deny) << port;
    }
}

TEST(Network, UnixAndIpRulesAreSeparate) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: sockets
    match: { action: connect, path: "/run/**" }
    verdict: allow
  - name: lan
    match: { action: connect, dest: 10.0.0.0/8 }
    verdict: allow
  - name: port-only
    match: { action: connect, port: 22 }
    verdict: ask
  - name: any-connect
    match: { action: connect }
    verdict: ask
)");
    EXPECT_EQ(policy.decide(connect_unix("/run/dbus/system_bus_socket"), home).rule, "sockets");
    EXPECT_EQ(policy.decide(connect_unix("/var/lib/x.sock"), home).rule, "any-connect");
    EXPECT_EQ(policy.decide(connect_unix(""), home).rule, "any-connect");  // abstract / unnamed
    EXPECT_EQ(policy.decide(connect_ip("10.0.0.1", 80), home).rule, "lan");
    EXPECT_EQ(policy.decide(connect_ip("192.0.2.1", 22), home).rule, "port-only");
    EXPECT_EQ(policy.decide(connect_ip("192.0.2.1", 80), home).rule, "any-connect");
    // An IP query carrying a path is still an IP query.
    Query q = connect_ip("192.0.2.1", 80);
    q.path = "/run/x";
    EXPECT_EQ(policy.decide(q, home).rule, "any-connect");
}

// ------------------------------------------------------ local destinations

Query connect_local(std::string_view address, std::uint16_t port) {
    Query q = connect_ip(address, port);
    q.destination_is_local = true;
    return q;
}

TEST(LocalDestination, TheHostsOwnAddressIsAlsoDecidedAsLoopback) {
    const Policy policy = must_parse(R"(version: 1
default: allow
rules:
  - name: no-local-db
    match: { action: connect, dest: ["127.0.0.0/8", "::1"], port: 5432 }
    verdict: deny
    errno: ECONNREFUSED
  - name: lan
    match: { action: connect, dest: ["10.0.0.0/8", "fd00::/8"] }
    verdict: ask
)");
    // Another host's 10.x address is only itself.
    EXPECT_EQ(policy.decide(connect_ip("10.1.2.3", 5432), home).rule, "lan");
    // This host's 10.x address reaches the database on 127.0.0.1 too.
    const Decision own = policy.decide(connect_local("10.1.2.3", 5432), home);
    EXPECT_EQ(own.verdict, Verdict::deny);
    EXPECT_EQ(own.rule, "no-local-db");
    EXPECT_EQ(own.error_number, ECONNREFUSED);
    EXPECT_EQ(policy.decide(connect_local("fd00::2", 5432), home).rule, "no-local-db");
    EXPECT_EQ(policy.decide(connect_local("::ffff:10.1.2.3", 5432), home).rule, "no-local-db");
    EXPECT_EQ(policy.decide(connect_local("192.0.2.2", 5432), home).rule, "no-local-db");
    // Same port only: elsewhere loopback is allowed and the address's own rule stands.
    EXPECT_EQ(policy.decide(connect_local("10.1.2.3", 80), home).rule, "lan");
    EXPECT_EQ(policy.decide(connect_local("192.0.2.2", 80), home).verdict, Verdict::allow);
    // A unix socket has no address to be local.
    Query unix_socket = connect_unix("/run/x.sock");
    unix_socket.destination_is_local = true;
    EXPECT_EQ(policy.decide(unix_socket, home).verdict, Verdict::allow);
}

TEST(LocalDestination, EveryLoopbackAddressIsLocalWithoutBeingTold) {
    const Policy policy = must_parse(R"(version: 1
default: allow
rules:
  - name: no-admin
    match: { action: connect, dest: ["127.0.0.1", "::1"], port: 2375 }
    verdict: deny
)");
    // 127.0.0.2 reaches what listens on all addresses, as 127.0.0.1 does.
    EXPECT_EQ(policy.decide(connect_ip("127.0.0.2", 2375), home).rule, "no-admin");
    EXPECT_EQ(policy.decide(connect_ip("::ffff:127.9.9.9", 2375), home).rule, "no-admin");
    EXPECT_EQ(policy.decide(connect_ip("127.0.0.2", 2376), home).verdict, Verdict::allow);
}

TEST(LocalDestination, TheStricterOfTheTwoDecisionsWins) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: blocked
    match: { action: connect, dest: 10.9.0.0/16 }
    verdict: deny
    errno: EPERM
  - name: lan
    match: { action: connect, dest: 10.0.0.0/8, port: 443 }
    verdict: ask
    ask: { timeout: 30s }
  - name: lan-web
    match: { action: connect, dest: 10.0.0.0/8, port: 80 }
    verdict: allow
  - name: lan-other
    match: { action: connect, dest: 10.0.0.0/8 }
    verdict: allow
  - name: loopback-web
    match: { action: connect, dest: 127.0.0.0/8, port: 80 }
    verdict: allow
  - name: loopback
    match: { action: connect, dest: 127.0.0.0/8 }
    verdict: ask
    ask: { timeout: 1m }
)");
    // deny (real) over allow (loopback): the real address's rule and errno.
    const Decision blocked = policy.decide(connect_local("10.9.1.1", 80), home);
    EXPECT_EQ(blocked.rule, "blocked");
    EXPECT_EQ(blocked.error_number, EPERM);
    // ask (loopback) over allow (real).
    const Decision asked = policy.decide(connect_local("10.1.1.1", 22), home);
    EXPECT_EQ(asked.verdict, Verdict::ask);
    EXPECT_EQ(asked.rule, "loopback");
    EXPECT_EQ(asked.ask.timeout, 1min);
    // ask and ask: a tie keeps the real address's rule and its ask settings.
    const Decision tie = policy.decide(connect_local("10.1.1.1", 443), home);
    EXPECT_EQ(tie.rule, "lan");
    EXPECT_EQ(tie.ask.timeout, 30s);
    // allow and allow: the real address's rule.
    EXPECT_EQ(policy.decide(connect_local("10.1.1.1", 80), home).rule, "lan-web");
    // deny (default, for the real address) over allow (loopback).
    const Decision remote = policy.decide(connect_local("192.0.2.2", 80), home);
    EXPECT_EQ(remote.verdict, Verdict::deny);
    EXPECT_EQ(remote.rule, "default");
}

TEST(LocalDestination, LocalClassMatchesLoopbackAndTheHostsOwnAddresses) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: local-dev
    match: { action: connect, dest: [local], port: "3000-3999" }
    verdict: allow
  - name: local-other
    match: { action: connect, dest: local }
    verdict: ask
  - name: lan-or-local
    match: { action: connect, dest: [10.0.0.0/8, local, "2001:db8::/32"], port: 22 }
    verdict: allow
  - name: any-connect
    match: { action: connect, path: "/run/**" }
    verdict: allow
)");
    auto rule = [&](const Query& q) { return policy.decide(q, home).rule; };
    EXPECT_EQ(rule(connect_ip("127.0.0.1", 3000)), "local-dev");
    EXPECT_EQ(rule(connect_ip("127.1.2.3", 3999)), "local-dev");
    EXPECT_EQ(rule(connect_ip("::1", 3000)), "local-dev");
    EXPECT_EQ(rule(connect_ip("::ffff:127.0.0.1", 3000)), "local-dev");
    EXPECT_EQ(rule(connect_local("192.0.2.2", 3000)), "local-dev");
    EXPECT_EQ(rule(connect_local("fd00::2", 3000)), "local-dev");
    EXPECT_EQ(rule(connect_local("192.0.2.2", 80)), "local-other");
    // Not this host: `local` does not match, other destinations in the list do.
    EXPECT_EQ(rule(connect_ip("192.0.2.2", 3000)), "default");
    EXPECT_EQ(rule(connect_ip("::2", 3000)), "default");
    EXPECT_EQ(rule(connect_ip("10.1.2.3", 22)), "lan-or-local");
    EXPECT_EQ(rule(connect_ip("2001:db8::1", 22)), "lan-or-local");
    // Local on port 22: local-other (ask) comes first for both decisions.
    EXPECT_EQ(rule(connect_local("10.1.2.3", 22)), "local-other");
    // `local` is about IP peers, never unix sockets.
    EXPECT_EQ(rule(connect_unix("/var/x.sock")), "default");
}

TEST(LocalDestination, LocalParsesAsAScalarOrAListEntry) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: scalar
    match: { action: connect, dest: local, port: 1 }
    verdict: allow
  - name: mixed
    match:
      action: connect
      dest:
        - 10.0.0.0/8
        - local
        - local
    verdict: allow
)");
    EXPECT_EQ(policy.decide(connect_ip("127.0.0.1", 1), home).rule, "scalar");
    EXPECT_EQ(policy.decide(connect_ip("127.0.0.1", 2), home).rule, "mixed");
    EXPECT_EQ(policy.decide(connect_ip("10.0.0.1", 2), home).rule, "mixed");
}

TEST(PolicyErrors, LocalDestinationErrors) {
    const auto errors = errors_of(R"(version: 1
default: ask
rules:
  - name: net
    match: { action: connect, dest: [Local, localhost, "local/8", 10.0.0.0/8, local] }
    verdict: allow
  - name: files
    match: { action: open, dest: local }
    verdict: allow
)");
    EXPECT_TRUE(has_error(errors, 5, 38,
                          "rule 'net': bad dest 'Local': not an IPv4 or IPv6 address, a CIDR block or 'local'"));
    EXPECT_TRUE(has_error(errors, 5, 45, "bad dest 'localhost': not an IPv4 or IPv6 address, a CIDR block or 'local'"));
    EXPECT_TRUE(has_error(errors, 5, 56, "bad dest 'local/8'"));
    EXPECT_TRUE(has_error(errors, 8, 28, "rule 'files': dest applies only to action connect"));
    EXPECT_EQ(errors.size(), 4u) << dump(errors);
}

// ---------------------------------------------------------- default & ask

TEST(Defaults, NoMatchUsesDefaultVerdict) {
    for (const auto& [text, verdict] :
         {std::pair{"allow", Verdict::allow}, std::pair{"deny", Verdict::deny}, std::pair{"ask", Verdict::ask}}) {
        const Policy policy = must_parse(std::string("version: 1\ndefault: ") + text + "\n");
        EXPECT_EQ(policy.default_verdict(), verdict);
        const Decision d = policy.decide(exec_query("/bin/true"), home);
        EXPECT_EQ(d.verdict, verdict);
        EXPECT_EQ(d.rule, "default");
        EXPECT_EQ(d.error_number, verdict == Verdict::allow ? 0 : EACCES);
        EXPECT_EQ(d.ask.timeout, 5min);
    }
}

TEST(Defaults, ErrnoDefaultsToEaccesForEveryAction) {
    const Policy policy = must_parse(R"(version: 1
default: allow
rules:
  - name: no
    match: { action: [open, exec, connect] }
    verdict: deny
  )");
    EXPECT_EQ(policy.decide(open_query("/x", access_read), home).error_number, EACCES);
    EXPECT_EQ(policy.decide(exec_query("/x"), home).error_number, EACCES);
    EXPECT_EQ(policy.decide(connect_ip("1.2.3.4", 1), home).error_number, EACCES);
}

TEST(Ask, RuleOverridesPolicyWideFieldByField) {
    const Policy policy = must_parse(R"(version: 1
default: ask
ask: { timeout: 2m, on_timeout: deny }
rules:
  - name: quick
    match: { action: exec, path: /usr/bin/quick }
    verdict: ask
    ask: { timeout: 30s }
  - name: lenient
    match: { action: exec, path: /usr/bin/lenient }
    verdict: ask
    errno: EPERM
    ask: { on_timeout: allow }
  - name: plain
    match: { action: exec, path: /usr/bin/plain }
    verdict: ask
)");
    const Decision quick = policy.decide(exec_query("/usr/bin/quick"), home);
    EXPECT_EQ(quick.ask.timeout, 30s);
    EXPECT_EQ(quick.ask.on_timeout, Verdict::deny);
    EXPECT_EQ(quick.error_number, EACCES);

    const Decision lenient = policy.decide(exec_query("/usr/bin/lenient"), home);
    EXPECT_EQ(lenient.ask.timeout, 2min);
    EXPECT_EQ(lenient.ask.on_timeout, Verdict::allow);
    EXPECT_EQ(lenient.error_number, EPERM);  // still used if an approver says no

    EXPECT_EQ(policy.decide(exec_query("/usr/bin/plain"), home).ask.timeout, 2min);
    EXPECT_EQ(policy.decide(exec_query("/usr/bin/other"), home).ask.timeout, 2min);
    EXPECT_EQ(policy.ask_settings().timeout, 2min);
}

TEST(Ask, PolicyWideAskFieldsAreIndividuallyOptional) {
    const Policy policy = must_parse("version: 1\ndefault: ask\nask: { on_timeout: allow }\n");
    EXPECT_EQ(policy.ask_settings().timeout, 5min);
    EXPECT_EQ(policy.ask_settings().on_timeout, Verdict::allow);
}

// --------------------------------------------------------------- vocabulary

TEST(Vocabulary, ParseDuration) {
    const std::pair<std::string_view, std::chrono::milliseconds> good[] = {
        {"5m", 5min}, {"30s", 30s}, {"250ms", 250ms}, {"1h", 1h}, {"1h30m", 90min}, {"1m30s500ms", 90'500ms},
        {"24h", 24h}, {"0s", 0ms},  {"90s", 90s},
    };
    for (const auto& [text, expected] : good) {
        const auto parsed = parse_duration(text);
        ASSERT_TRUE(parsed) << text;
        EXPECT_EQ(*parsed, expected) << text;
    }
    for (std::string_view bad : {"", "5", "m", "5x", "5 m", "30m1h", "1h1h", "-5s", "1.5h", "25h", "24h1ms", "1440m1s",
                                 "99999999999999999999h", "5M", "1d"}) {
        EXPECT_FALSE(parse_duration(bad)) << bad;
    }
}

TEST(Vocabulary, ErrnoNames) {
    EXPECT_EQ(parse_errno_name("EACCES"), EACCES);
    EXPECT_EQ(parse_errno_name("EPERM"), EPERM);
    EXPECT_EQ(parse_errno_name("ENOENT"), ENOENT);
    EXPECT_EQ(parse_errno_name("ECONNREFUSED"), ECONNREFUSED);
    EXPECT_EQ(parse_errno_name("ENETUNREACH"), ENETUNREACH);
    EXPECT_EQ(parse_errno_name("EWOULDBLOCK"), EAGAIN);
    EXPECT_FALSE(parse_errno_name("eacces"));
    EXPECT_FALSE(parse_errno_name("EFOO"));
    EXPECT_FALSE(parse_errno_name(""));
    EXPECT_EQ(errno_name(EACCES), "EACCES");
    EXPECT_EQ(errno_name(EAGAIN), "EAGAIN");
    EXPECT_EQ(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
    EXPECT_EQ(errno_name(99999), "99999");
    // The common names all round-trip.
    const std::string_view common[] = {
        "EPERM",        "ENOENT",       "ESRCH",         "EINTR",     "EIO",         "ENXIO",        "E2BIG",
        "ENOEXEC",      "EBADF",        "EAGAIN",        "ENOMEM",    "EACCES",      "EFAULT",       "EBUSY",
        "EEXIST",       "EXDEV",        "ENODEV",        "ENOTDIR",   "EISDIR",      "EINVAL",       "ENFILE",
        "EMFILE",       "ETXTBSY",      "EFBIG",         "ENOSPC",    "ESPIPE",      "EROFS",        "EMLINK",
        "EPIPE",        "ENAMETOOLONG", "ENOSYS",        "ENOTEMPTY", "ELOOP",       "ENOTSOCK",     "EOPNOTSUPP",
        "EAFNOSUPPORT", "EADDRINUSE",   "EADDRNOTAVAIL", "ENETDOWN",  "ENETUNREACH", "ECONNABORTED", "ECONNRESET",
        "ETIMEDOUT",    "ECONNREFUSED", "EHOSTUNREACH",  "EDQUOT",    "EPROTO",
    };
    for (const auto name : common) {
        const auto value = parse_errno_name(name);
        ASSERT_TRUE(value) << name;
        EXPECT_EQ(errno_name(*value), name);
    }
}

TEST(Vocabulary, VerdictActionAndAccessStrings) {
    for (const auto v : {Verdict::allow, Verdict::deny, Verdict::ask}) EXPECT_EQ(parse_verdict(to_string(v)), v);
    for (const auto a : {Action::open, Action::connect, Action::exec}) EXPECT_EQ(parse_action(to_string(a)), a);
    EXPECT_FALSE(parse_verdict("Allow"));
    EXPECT_FALSE(parse_action("read"));
    EXPECT_EQ(access_to_string(access_read), "read");
    EXPECT_EQ(access_to_string(rw | access_create), "read|write|create");
    EXPECT_EQ(access_to_string(access_write | access_create), "write|create");
    EXPECT_EQ(access_to_string(0), "none");
}

// -------------------------------------------------------- shipped policies

TEST(Builtin, NamesAndTexts) {
    EXPECT_EQ(builtin_policy_names(), (std::vector<std::string_view>{"default", "strict"}));
    for (const auto name : builtin_policy_names()) {
        const auto text = builtin_policy_text(name);
        ASSERT_TRUE(text) << name;
        EXPECT_TRUE(text->starts_with("# airlock")) << name;
    }
    EXPECT_FALSE(builtin_policy_text("lenient"));
    const auto unknown = load_builtin_policy("lenient");
    ASSERT_FALSE(unknown);
    EXPECT_EQ(unknown.error().at(0).to_string(),
              "<embedded:lenient>: no built-in policy named 'lenient'; built-in policies: default, strict");
}

TEST(Builtin, EmbeddedTextMatchesTheSourceFiles) {
    for (const auto name : builtin_policy_names()) {
        const std::string path = std::string(AIRLOCK_SOURCE_DIR) + "/policies/" + std::string(name) + ".yaml";
        const auto from_file = Policy::load_file(path);
        ASSERT_TRUE(from_file) << dump(from_file.error());
        const auto embedded = load_builtin_policy(name);
        ASSERT_TRUE(embedded) << dump(embedded.error());
        EXPECT_EQ(embedded->digest(), from_file->digest()) << name;
        EXPECT_EQ(embedded->source_name(), "<embedded:" + std::string(name) + ">");
    }
}

Policy builtin(std::string_view name) {
    auto policy = load_builtin_policy(name);
    if (!policy) throw std::runtime_error(dump(policy.error()));
    return std::move(*policy);
}

TEST(Builtin, DefaultPolicyDecisions) {
    const Policy policy = builtin("default");
    EXPECT_EQ(policy.default_verdict(), Verdict::ask);
    EXPECT_EQ(policy.ask_settings().timeout, 5min);
    EXPECT_EQ(policy.ask_settings().on_timeout, Verdict::deny);
    EXPECT_TRUE(policy.approvers().allow_session_owner);
    EXPECT_EQ(policy.approvers().users, std::vector<std::string>{"root"});
    EXPECT_EQ(policy.approvers().groups, std::vector<std::string>{"airlock-approvers"});

    auto verdict = [&](const Query& q) { return policy.decide(q, home).verdict; };
    auto rule = [&](const Query& q) { return policy.decide(q, home).rule; };

    const Decision key = policy.decide(open_query("/home/alice/.ssh/id_rsa", access_read), home);
    EXPECT_EQ(key.verdict, Verdict::deny);
    EXPECT_EQ(key.error_number, EACCES);
    EXPECT_EQ(rule(open_query("/home/alice/.aws/credentials", access_read)), "secrets");
    EXPECT_EQ(rule(open_query("/home/alice/.docker/config.json", access_read)), "secrets");
    EXPECT_EQ(rule(open_query("/etc/shadow", access_read)), "secrets");
    EXPECT_EQ(rule(open_query("/etc/sudoers.d/90-cloud", access_read)), "secrets");
    EXPECT_EQ(verdict(open_query("/proc/1234/environ", access_read)), Verdict::ask);

    EXPECT_EQ(verdict(open_query("/usr/lib/x", access_read)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/etc/passwd", access_read)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/dev/null", rw)), Verdict::allow);
    EXPECT_NE(verdict(open_query("/usr/lib/x", access_write)), Verdict::allow);
    EXPECT_NE(verdict(open_query("/usr/bin/new", access_write | access_create)), Verdict::allow);
    EXPECT_NE(verdict(open_query("/etc/passwd", rw)), Verdict::allow);

    EXPECT_EQ(verdict(open_query("/tmp/build/out.o", rw | access_create)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/home/alice/src/main.c", access_read)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/home/alice/.bashrc", access_read)), Verdict::allow);
    EXPECT_EQ(rule(open_query("/home/alice/src/main.c", rw)), "home-write");
    EXPECT_EQ(verdict(open_query("/home/alice/src/new.c", access_write | access_create)), Verdict::ask);
    EXPECT_EQ(verdict(open_query("/srv/other", access_read)), Verdict::ask);

    EXPECT_EQ(verdict(connect_ip("127.0.0.1", 8080)), Verdict::allow);
    EXPECT_EQ(verdict(connect_ip("::1", 5432)), Verdict::allow);
    EXPECT_EQ(verdict(connect_ip("::ffff:127.0.0.1", 8080)), Verdict::allow);
    EXPECT_EQ(verdict(connect_ip("1.2.3.4", 443)), Verdict::ask);
    EXPECT_EQ(rule(connect_ip("1.2.3.4", 443)), "egress");
    EXPECT_EQ(rule(connect_ip("2606:4700::1111", 443)), "egress");
    EXPECT_EQ(verdict(connect_ip("8.8.8.8", 53)), Verdict::allow);
    // Only name resolution is allowed outright: other local servers may act
    // for the agent outside the session (tmux, user D-Bus, X11), so they ask.
    EXPECT_EQ(verdict(connect_unix("/run/systemd/resolve/io.systemd.Resolve")), Verdict::allow);
    EXPECT_EQ(verdict(connect_unix("/run/dbus/system_bus_socket")), Verdict::ask);
    EXPECT_EQ(verdict(connect_unix("/tmp/.X11-unix/X0")), Verdict::ask);
    EXPECT_EQ(verdict(connect_unix("/tmp/tmux-1000/default")), Verdict::ask);
    EXPECT_EQ(verdict(connect_unix("/var/run/docker.sock")), Verdict::ask);
    EXPECT_EQ(verdict(connect_unix("/home/alice/agent.sock")), Verdict::ask);

    EXPECT_EQ(verdict(exec_query("/usr/bin/git")), Verdict::allow);
    EXPECT_EQ(verdict(exec_query("/bin/sh")), Verdict::allow);
    EXPECT_EQ(verdict(exec_query("/home/alice/bin/tool")), Verdict::ask);
    EXPECT_EQ(verdict(exec_query("/tmp/payload")), Verdict::ask);
}

TEST(Builtin, StrictPolicyDecisions) {
    const Policy policy = builtin("strict");
    EXPECT_EQ(policy.default_verdict(), Verdict::deny);
    EXPECT_FALSE(policy.approvers().allow_session_owner);

    auto verdict = [&](const Query& q) { return policy.decide(q, home).verdict; };
    EXPECT_EQ(verdict(open_query("/home/alice/.ssh/id_rsa", access_read)), Verdict::deny);
    EXPECT_EQ(verdict(open_query("/usr/lib/x", access_read)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/usr/lib/x", access_write)), Verdict::deny);
    EXPECT_EQ(verdict(open_query("/tmp/x", rw | access_create)), Verdict::allow);
    EXPECT_EQ(verdict(open_query("/home/alice/src/a.c", access_read)), Verdict::ask);
    EXPECT_EQ(verdict(open_query("/srv/data", access_read)), Verdict::deny);
    EXPECT_EQ(verdict(connect_ip("127.0.0.1", 8080)), Verdict::ask);
    EXPECT_EQ(verdict(connect_ip("1.2.3.4", 443)), Verdict::ask);
    EXPECT_EQ(verdict(connect_unix("/run/dbus/system_bus_socket")), Verdict::ask);
    EXPECT_EQ(verdict(exec_query("/usr/bin/git")), Verdict::allow);
    EXPECT_EQ(verdict(exec_query("/tmp/payload")), Verdict::deny);
    EXPECT_EQ(policy.decide(exec_query("/tmp/payload"), home).error_number, EACCES);
}


// ------------------------------------------------- links, renames, subtrees

struct BelowCase {
    std::string_view pattern;
    std::string_view dir;
    bool may_match;
    bool matches_all;
};

TEST(Glob, BelowADirectory) {
    const BelowCase cases[] = {
        // The pattern's own tree: below its base, at its base, above it.
        {"/srv/data/**", "/srv/data/x", true, true},
        {"/srv/data/**", "/srv/data", true, true},
        {"/srv/data/**", "/srv", true, false},
        {"/srv/data/**", "/", true, false},
        {"/srv/data/**", "/srv/other", false, false},
        {"/srv/data/**", "/srv/database", false, false},
        // A single file: something below its ancestors, nothing below itself.
        {"/etc/shadow", "/etc", true, false},
        {"/etc/shadow", "/", true, false},
        {"/etc/shadow", "/etc/shadow", false, false},
        {"/etc/shadow", "/usr", false, false},
        {"/", "/", false, false},
        // Wildcards within a component and across depths.
        {"/tmp/*", "/tmp", true, false},
        {"/tmp/*", "/tmp/a", false, false},
        {"/tmp/*/key", "/tmp/a", true, false},
        {"/tmp/*/key", "/tmp/a/b", false, false},
        {"/tmp/*/**", "/tmp/a", true, true},
        {"/tmp/*/**", "/tmp", true, false},
        {"/**/id_rsa", "/anything/at/all", true, false},
        {"/**/id_rsa", "/", true, false},
        {"/**", "/x", true, true},
        {"/**", "/", true, true},
        {"/a/**/b", "/a/x/y", true, false},
        {"/a/**/b/**", "/a/x/b", true, true},
        {"/a/**/b/**", "/a/x/c", true, false},  // "/a/x/c/b/..." is below it
        {"/a/[xy]/**", "/a/y", true, true},
        {"/a/[xy]/**", "/a/z", false, false},
    };
    for (const auto& c : cases) {
        const auto glob = PathGlob::compile(c.pattern);
        ASSERT_TRUE(glob.has_value()) << c.pattern << ": " << glob.error();
        EXPECT_EQ(glob->may_match_below(c.dir, home), c.may_match) << "pattern " << c.pattern << " dir " << c.dir;
        EXPECT_EQ(glob->matches_all_below(c.dir, home), c.matches_all) << "pattern " << c.pattern << " dir " << c.dir;
        // Whatever is matched all below is matched some below.
        if (c.matches_all) {
            EXPECT_TRUE(c.may_match) << c.pattern;
        }
    }
}

TEST(Glob, BelowADirectoryWithHomePatterns) {
    const auto ssh = PathGlob::compile("~/.ssh/**");
    ASSERT_TRUE(ssh);
    EXPECT_TRUE(ssh->may_match_below("/home/alice", "/home/alice"));
    EXPECT_TRUE(ssh->may_match_below("/home/alice/.ssh", "/home/alice/"));
    EXPECT_TRUE(ssh->matches_all_below("/home/alice/.ssh", "/home/alice"));
    EXPECT_FALSE(ssh->may_match_below("/home/alice/src", "/home/alice"));
    // Home itself is below these: so is everything a "~" pattern names.
    EXPECT_TRUE(ssh->may_match_below("/home", "/home/alice"));
    EXPECT_TRUE(ssh->may_match_below("/", "/home/alice"));
    EXPECT_FALSE(ssh->matches_all_below("/home", "/home/alice"));
    // "/home/al" is not an ancestor of "/home/alice", nor "/home/alice2" inside it.
    EXPECT_FALSE(ssh->may_match_below("/home/al", "/home/alice"));
    EXPECT_FALSE(ssh->may_match_below("/home/alice2", "/home/alice"));
    EXPECT_FALSE(ssh->may_match_below("/home/alice", ""));  // unknown home
    EXPECT_TRUE(ssh->may_match_below("/", "/"));             // a user whose home is /
    EXPECT_FALSE(ssh->may_match_below("/x", "/"));
    EXPECT_TRUE(ssh->matches_all_below("/.ssh", "/"));
    const auto home_itself = PathGlob::compile("~");
    ASSERT_TRUE(home_itself);
    EXPECT_TRUE(home_itself->may_match_below("/home", "/home/alice"));
    EXPECT_FALSE(home_itself->may_match_below("/home/alice", "/home/alice"));
}

TEST(Below, StrictestRuleThatMayMatchBelowADirectory) {
    const Policy policy = must_parse(R"(version: 1
default: ask
rules:
  - name: secrets
    match: { action: open, path: ["~/.ssh/**", "/srv/**/private/**"] }
    verdict: deny
    errno: EPERM
  - name: logs-read
    match: { action: open, access: read, path: "/srv/logs/**" }
    verdict: allow
  - name: scratch
    match: { action: open, access: [read, write, create], path: "/tmp/**" }
    verdict: allow
  - name: after-scratch
    match: { action: open, path: "/tmp/x/**" }
    verdict: deny
  - name: exec-anything
    match: { action: exec }
    verdict: deny
)");
    // Covered by one allow rule: later rules and the default never decide there.
    Decision d = policy.strictest_below("/tmp/build", rw, home);
    EXPECT_EQ(d.verdict, Verdict::allow);
    EXPECT_EQ(d.rule, "scratch");
    EXPECT_EQ(policy.strictest_below("/tmp/x", rw, home).rule, "scratch");
    // A deny that may match somewhere below wins, with its errno.
    d = policy.strictest_below("/home/alice", rw, home);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "secrets");
    EXPECT_EQ(d.error_number, EPERM);
    EXPECT_EQ(policy.strictest_below("/srv/a", rw, home).rule, "secrets");
    EXPECT_EQ(policy.strictest_below("/", rw, home).verdict, Verdict::deny);
    // Nothing denies below /srv/logs; the read rule does not cover writes, so the default counts.
    d = policy.strictest_below("/srv/logs", rw, home);
    EXPECT_EQ(d.verdict, Verdict::deny);  // "/srv/logs/private/x" is below it
    d = policy.strictest_below("/var/lib", rw, home);
    EXPECT_EQ(d.verdict, Verdict::ask);
    EXPECT_EQ(d.rule, "default");
    // Exec rules are not about what a rename moves.
    EXPECT_NE(policy.strictest_below("/var/lib", rw, home).rule, "exec-anything");
    // Access: a create-only question never meets the read rule.
    const Policy read_only = must_parse(R"(version: 1
default: allow
rules:
  - name: no-read
    match: { action: open, access: read, path: "/data/**" }
    verdict: deny
)");
    EXPECT_EQ(read_only.strictest_below("/data", rw, home).verdict, Verdict::deny);
    EXPECT_EQ(read_only.strictest_below("/data", access_create | access_write, home).verdict, Verdict::allow);
}

LinkQuery link_query(LinkKind kind, std::string source, std::string destination, mode_t source_type = S_IFREG,
                     mode_t destination_type = 0) {
    LinkQuery q;
    q.kind = kind;
    q.source = std::move(source);
    q.destination = std::move(destination);
    q.source_type = source_type;
    q.destination_type = destination_type;
    return q;
}

constexpr std::string_view link_policy = R"(version: 1
default: deny
rules:
  - name: secrets
    match: { action: open, path: ["/work/secret/**"] }
    verdict: deny
    errno: EPERM
  - name: readonly
    match: { action: open, access: read, path: "/ro/**" }
    verdict: allow
  - name: held
    match: { action: open, path: "/work/held/**" }
    verdict: ask
  - name: read-denied-only
    match: { action: open, access: read, path: "/work/noread/**" }
    verdict: deny
    errno: EROFS
  - name: work
    match: { action: open, path: "/work/**" }
    verdict: allow
  - name: sockets
    match: { action: connect, path: "/work/sock/private.sock" }
    verdict: deny
    errno: ECONNREFUSED
)";

TEST(LinkDecision, TheSourceIsDecidedAsReadAndWrite) {
    const Policy policy = must_parse(link_policy);
    // The classic: a second name for a denied file.
    Decision d = decide_link(policy, link_query(LinkKind::link, "/work/secret/key", "/work/tmp/x"), home);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "secrets");
    EXPECT_EQ(d.error_number, EPERM);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/work/secret/key", "/work/tmp/x"), home).verdict,
              Verdict::deny);
    // Readable but not writable: the new name would be writable.
    d = decide_link(policy, link_query(LinkKind::link, "/ro/f", "/work/tmp/x"), home);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "default");
    // A deny that lists only `read` still sees the read half.
    d = decide_link(policy, link_query(LinkKind::link, "/work/noread/f", "/work/tmp/x"), home);
    EXPECT_EQ(d.rule, "read-denied-only");
    EXPECT_EQ(d.error_number, EROFS);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::link, "/work/a", "/work/b"), home).verdict, Verdict::allow);
}

TEST(LinkDecision, TheDestinationIsDecidedAsCreateAndWrite) {
    const Policy policy = must_parse(link_policy);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::link, "/work/a", "/work/secret/x"), home).rule, "secrets");
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/work/a", "/etc/passwd"), home).verdict,
              Verdict::deny);
    // ask < deny, allow < ask: the stricter one decides, whichever side it is on.
    Decision d = decide_link(policy, link_query(LinkKind::rename, "/work/a", "/work/held/b"), home);
    EXPECT_EQ(d.verdict, Verdict::ask);
    EXPECT_EQ(d.rule, "held");
    d = decide_link(policy, link_query(LinkKind::rename, "/work/held/b", "/work/secret/c"), home);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "secrets");
}

TEST(LinkDecision, ARenamedDirectoryCarriesEverythingBelowIt) {
    const Policy policy = must_parse(link_policy);
    // /work itself is allowed, but /work/secret/** is below it.
    Decision d = decide_link(policy, link_query(LinkKind::rename, "/work", "/work/renamed", S_IFDIR), home);
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.rule, "secrets");
    EXPECT_EQ(d.error_number, EPERM);
    d = decide_link(policy, link_query(LinkKind::rename, "/work/secret", "/work/public", S_IFDIR), home);
    EXPECT_EQ(d.rule, "secrets");
    // A directory with nothing protected below it moves freely.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/work/a", "/work/b", S_IFDIR), home).verdict,
              Verdict::allow);
    // Moved to where names below it are protected: the destination's subtree counts.
    d = decide_link(policy, link_query(LinkKind::rename, "/work/a", "/work/held", S_IFDIR), home);
    EXPECT_EQ(d.verdict, Verdict::ask);
    // A file named like a directory is just a file.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/work/a", "/work/b", S_IFREG), home).verdict,
              Verdict::allow);
}

TEST(LinkDecision, ExchangeCountsBothNamesBothWays) {
    const Policy policy = must_parse(link_policy);
    // Plain rename of an allowed file onto the secret's name: destination denied.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::exchange, "/work/a", "/work/secret/key", S_IFREG, S_IFREG),
                          home)
                  .rule,
              "secrets");
    // The secret moves to the first name: decided as a source too.
    const Policy lenient_destination = must_parse(R"(version: 1
default: allow
rules:
  - name: no-read
    match: { action: open, access: read, path: "/data/secret" }
    verdict: deny
)");
    EXPECT_EQ(decide_link(lenient_destination, link_query(LinkKind::rename, "/data/a", "/data/secret"), home).verdict,
              Verdict::allow);
    EXPECT_EQ(decide_link(lenient_destination,
                          link_query(LinkKind::exchange, "/data/a", "/data/secret", S_IFREG, S_IFREG), home)
                  .verdict,
              Verdict::deny);
    // A directory on the destination side brings its subtree along.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::exchange, "/work/a", "/work/secret", S_IFREG, S_IFDIR), home)
                  .rule,
              "secrets");
}

TEST(LinkDecision, ASocketsSecondNameIsDecidedAsAConnect) {
    const Policy policy = must_parse(link_policy);
    Decision d = decide_link(policy, link_query(LinkKind::link, "/work/sock/private.sock", "/work/x.sock", S_IFSOCK),
                             home);
    EXPECT_EQ(d.rule, "sockets");
    EXPECT_EQ(d.error_number, ECONNREFUSED);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::link, "/work/sock/private.sock", "/work/x", S_IFREG), home)
                  .verdict,
              Verdict::allow);
}

TEST(LinkDecision, DefaultPolicy) {
    const Policy policy = builtin("default");
    auto verdict = [&](const LinkQuery& q) { return decide_link(policy, q, home).verdict; };
    EXPECT_EQ(verdict(link_query(LinkKind::link, "/home/alice/.ssh/id_rsa", "/tmp/x")), Verdict::deny);
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/home/alice/.ssh", "/home/alice/x", S_IFDIR)), Verdict::deny);
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/home/alice", "/home/bob", S_IFDIR)), Verdict::deny);
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/tmp/a", "/tmp/b")), Verdict::allow);
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/tmp/build", "/tmp/build.old", S_IFDIR)), Verdict::allow);
    // Writing in home is asked about; so is renaming there.
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/home/alice/a.c", "/home/alice/b.c")), Verdict::ask);
    EXPECT_EQ(verdict(link_query(LinkKind::rename, "/home/alice/src", "/home/alice/src2", S_IFDIR)), Verdict::ask);
    // /etc is readable, not writable: no second name for it in /tmp.
    EXPECT_EQ(verdict(link_query(LinkKind::link, "/etc/passwd", "/tmp/p")), Verdict::ask);
}

// --- Data inspection -------------------------------------------------------------

constexpr std::string_view inspect_policy = R"(version: 1
default: deny
inspection:
  max_size: 4MiB
  too_large: deny
rules:
  - name: customer-data
    match: { action: open, path: ["/srv/**"] }
    inspect: true
    on_data:
      - { classes: ["secret.*"], verdict: deny, errno: EPERM }
      - { classes: ["pii.us_ssn", "pii.credit_card"], min_count: 2, verdict: ask }
      - { classes: ["pii.*"], verdict: mask }
    verdict: allow
    errno: ENOENT
  - name: big-ok
    match: { action: open, path: ["/big/**"] }
    inspect: true
    too_large: allow
    verdict: ask
  - name: tools
    match: { action: exec, path: ["/usr/bin/**"] }
    inspect: true
    on_data:
      - { classes: ["secret.*"], verdict: ask }
    verdict: allow
  - name: exfiltration
    match: { action: connect, session_read: { classes: ["pii.*"], min_count: 10 } }
    verdict: ask
  - name: net
    match: { action: connect }
    verdict: allow
)";

TEST(PolicyInspection, ParsesConditionsAndLimits) {
    const Policy policy = must_parse(inspect_policy);
    EXPECT_TRUE(policy.uses_inspection());
    EXPECT_EQ(policy.inspection_limits().max_size, std::uint64_t{4} << 20);
    EXPECT_EQ(policy.inspection_limits().too_large, Verdict::deny);
    const Decision d = policy.decide(open_query("/srv/a.csv", access_read), home);
    EXPECT_EQ(d.verdict, Verdict::allow);
    ASSERT_TRUE(d.inspect);
    ASSERT_EQ(d.inspect->on_data.size(), 3u);
    EXPECT_EQ(d.inspect->on_data[0].error_number, EPERM);
    EXPECT_EQ(d.inspect->on_data[1].min_count, 2u);
    EXPECT_EQ(d.inspect->on_data[2].verdict, Verdict::mask);
    EXPECT_EQ(d.inspect->limits.max_size, std::uint64_t{4} << 20);
    EXPECT_EQ(d.inspect->limits.too_large, Verdict::deny);
    // A rule can loosen the policy-wide too_large.
    EXPECT_EQ(policy.decide(open_query("/big/x", access_read), home).inspect->limits.too_large, Verdict::allow);
    EXPECT_FALSE(policy.decide(open_query("/etc/x", access_read), home).inspect);
    EXPECT_FALSE(must_parse("version: 1\ndefault: allow\n").uses_inspection());
}

TEST(PolicyInspection, FirstConditionMetDecides) {
    const Policy policy = must_parse(inspect_policy);
    const Decision rule = policy.decide(open_query("/srv/a.csv", access_read), home);
    // Nothing found: the rule's verdict.
    Decision d = decide_on_data(rule, {});
    EXPECT_EQ(d.verdict, Verdict::allow);
    EXPECT_EQ(d.data_reason, "inspected: nothing found");
    // Order matters: a secret denies even with PII next to it.
    d = decide_on_data(rule, {{"secret.github_token", 1}, {"pii.us_ssn", 5}});
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.error_number, EPERM);
    EXPECT_EQ(d.data_reason, "on_data #1: 1 finding of secret.*");
    // min_count counts the listed classes together.
    d = decide_on_data(rule, {{"pii.us_ssn", 1}, {"pii.credit_card", 1}});
    EXPECT_EQ(d.verdict, Verdict::ask);
    EXPECT_EQ(d.error_number, ENOENT);  // the rule's errno for a later denial
    EXPECT_EQ(d.data_reason, "on_data #2: 2 findings of pii.us_ssn, pii.credit_card");
    // Below min_count, the next condition is tried.
    d = decide_on_data(rule, {{"pii.us_ssn", 1}});
    EXPECT_EQ(d.verdict, Verdict::mask);
    EXPECT_EQ(d.error_number, 0);
    d = decide_on_data(rule, {{"pii.email", 3}});
    EXPECT_EQ(d.verdict, Verdict::mask);
    EXPECT_EQ(d.rule, "customer-data");
    // A class no condition lists leaves the rule's verdict.
    const Policy only_secrets = must_parse(R"(version: 1
default: deny
rules:
  - name: r
    match: { action: open }
    inspect: true
    on_data: [{ classes: ["secret.*"], verdict: deny }]
    verdict: allow
)");
    d = decide_on_data(only_secrets.decide(open_query("/x", access_read), home), {{"pii.email", 4}});
    EXPECT_EQ(d.verdict, Verdict::allow);
    EXPECT_EQ(d.data_reason, "inspected: 4 findings, no on_data condition met");
    d = decide_on_data(only_secrets.decide(open_query("/x", access_read), home), {{"secret.jwt", 1}});
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.error_number, EACCES);
}

TEST(PolicyInspection, UninspectableDataGetsTooLarge) {
    const Policy policy = must_parse(inspect_policy);
    Decision d = decide_uninspectable(policy.decide(open_query("/srv/a.csv", access_read), home), "larger than 4 MiB");
    EXPECT_EQ(d.verdict, Verdict::deny);
    EXPECT_EQ(d.error_number, ENOENT);
    EXPECT_EQ(d.data_reason, "not inspected (larger than 4 MiB): too_large: deny");
    d = decide_uninspectable(policy.decide(open_query("/big/a", access_read), home), "a pipe");
    EXPECT_EQ(d.verdict, Verdict::allow);
    EXPECT_EQ(d.error_number, 0);
    // The default too_large is ask.
    const Policy defaults = must_parse(
        "version: 1\ndefault: deny\nrules:\n  - name: r\n    match: { action: open }\n    inspect: true\n"
        "    verdict: allow\n");
    EXPECT_EQ(defaults.inspection_limits().max_size, std::uint64_t{16} << 20);
    d = decide_uninspectable(defaults.decide(open_query("/a", access_read), home), "a pipe");
    EXPECT_EQ(d.verdict, Verdict::ask);
    // A decision that does not inspect is left alone.
    const Decision plain = defaults.decide(exec_query("/bin/true"), home);
    EXPECT_EQ(decide_uninspectable(plain, "x").verdict, plain.verdict);
    EXPECT_EQ(decide_on_data(plain, {{"pii.email", 1}}).verdict, plain.verdict);
}

TEST(PolicyInspection, SessionReadMatchesOnceEnoughWasRead) {
    const Policy policy = must_parse(inspect_policy);
    Query q;
    q.action = Action::connect;
    q.address = IpAddress::parse("93.184.216.34");
    q.port = 443;
    EXPECT_EQ(policy.decide(q, home).rule, "net");
    DataCounts read = {{"pii.us_ssn", 4}, {"secret.jwt", 50}};
    q.session_read = &read;
    EXPECT_EQ(policy.decide(q, home).rule, "net");  // 4 < 10 pii findings
    read["pii.email"] = 6;
    const Decision d = policy.decide(q, home);
    EXPECT_EQ(d.rule, "exfiltration");
    EXPECT_EQ(d.verdict, Verdict::ask);
    // The list form means min_count 1.
    const Policy any = must_parse(
        "version: 1\ndefault: allow\nrules:\n  - name: r\n    match: { action: exec, session_read: [\"secret.*\"] }\n"
        "    verdict: deny\n");
    Query e = exec_query("/usr/bin/curl");
    EXPECT_EQ(any.decide(e, home).verdict, Verdict::allow);
    e.session_read = &read;
    EXPECT_EQ(any.decide(e, home).verdict, Verdict::deny);
}

TEST(PolicyInspection, DataClassPatterns) {
    EXPECT_TRUE(data_class_matches("pii.*", "pii.us_ssn"));
    EXPECT_TRUE(data_class_matches("*", "secret.jwt"));
    EXPECT_TRUE(data_class_matches("pii.us_ssn", "pii.us_ssn"));
    EXPECT_FALSE(data_class_matches("pii.us_ssn", "pii.us_ssn2"));
    EXPECT_FALSE(data_class_matches("pii.*", "secret.jwt"));
    EXPECT_FALSE(data_class_matches("pii", "pii.email"));
}

TEST(PolicyInspection, SizesParse) {
    EXPECT_EQ(parse_size("16MiB"), std::uint64_t{16} << 20);
    EXPECT_EQ(parse_size("512KiB"), std::uint64_t{512} << 10);
    EXPECT_EQ(parse_size("1GiB"), std::uint64_t{1} << 30);
    EXPECT_EQ(parse_size("4096"), 4096u);
    EXPECT_FALSE(parse_size("2GiB"));
    EXPECT_FALSE(parse_size("16MB"));
    EXPECT_FALSE(parse_size("-1"));
    EXPECT_FALSE(parse_size("MiB"));
    EXPECT_FALSE(parse_size("99999999999999999999"));
    EXPECT_EQ(size_to_string(std::uint64_t{16} << 20), "16 MiB");
    EXPECT_EQ(size_to_string(1000), "1000 bytes");
}

TEST(PolicyInspection, MistakesAreReportedWhereTheyAre) {
    const auto rule = [](std::string body) {
        return "version: 1\ndefault: deny\nrules:\n  - name: r\n    match: { action: open }\n" + body;
    };
    EXPECT_TRUE(single_error(rule("    on_data: [{ classes: [\"pii.*\"], verdict: deny }]\n    verdict: allow\n"), 6, 5,
                             "rule 'r': on_data needs inspect: true"));
    EXPECT_TRUE(single_error(rule("    inspect: yes please\n    verdict: allow\n"), 6, 14,
                             "rule 'r': inspect must be true or false"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    verdict: deny\n"), 6, 5,
                             "inspect has no effect on a deny rule"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: [{ classes: [\"pii.ssn\"], verdict: deny }]\n"
                                  "    verdict: allow\n"),
                             7, 27, "rule 'r', on_data #1: classes 'pii.ssn' names no detector"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: [{ classes: [\"pii.*\"], verdict: maybe }]\n"
                                  "    verdict: allow\n"),
                             7, 46, "unknown verdict 'maybe'; expected allow, deny, ask or mask"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: [{ classes: [\"pii.*\"], min_count: 0, verdict: ask }]\n"
                                  "    verdict: allow\n"),
                             7, 48, "min_count must be a whole number of at least 1; got '0'"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: [{ classes: [\"pii.*\"], verdict: mask, errno: EPERM }]\n"
                                  "    verdict: allow\n"),
                             7, 52, "errno has no effect with verdict mask"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: [{ verdict: deny }]\n    verdict: allow\n"), 7, 15,
                             "on_data #1: missing required key 'classes'"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    on_data: { classes: [\"pii.*\"] }\n    verdict: allow\n"), 7,
                             14, "on_data must be a list"));
    EXPECT_TRUE(single_error(rule("    verdict: mask\n"), 6, 14, "verdict cannot be mask"));
    EXPECT_TRUE(single_error("version: 1\ndefault: mask\n", 2, 10, "default cannot be mask"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    too_large: mask\n    verdict: allow\n"), 7, 16,
                             "too_large cannot be mask"));
    // mask hands over a redacted file: there is no such thing for exec.
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: { action: exec }\n"
                             "    inspect: true\n    on_data: [{ classes: [\"pii.*\"], verdict: mask }]\n"
                             "    verdict: allow\n",
                             7, 46, "mask applies only to rules whose action is open"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrules:\n  - name: r\n    match: { action: connect }\n"
                             "    inspect: true\n    verdict: allow\n",
                             6, 5, "inspect applies to open"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\ninspection: { max_size: 2GiB }\n", 3, 25,
                             "inspection: max_size '2GiB' is not a size"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\ninspection: { too_large: later }\n", 3, 26,
                             "unknown too_large 'later'"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\ninspection: { maxsize: 1 }\n", 3, 15,
                             "unknown key 'maxsize' in inspection"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrules:\n  - name: r\n"
                             "    match: { action: connect, session_read: { classes: [\"pi.*\"] } }\n"
                             "    verdict: ask\n",
                             5, 57, "classes 'pi.*' names no detector"));
    // An allow rule that inspects may name the errno its on_data denials use,
    // and ask settings when a condition asks.
    must_parse(rule("    inspect: true\n    on_data: [{ classes: [\"pii.*\"], verdict: ask }]\n    verdict: allow\n"
                    "    errno: EPERM\n    ask: { timeout: 1m }\n"));
    // (too_large asks unless told otherwise)
    must_parse(rule("    inspect: true\n    verdict: allow\n    ask: { timeout: 1m }\n"));
    EXPECT_TRUE(single_error(rule("    inspect: true\n    too_large: deny\n    verdict: allow\n    ask: { timeout: 1m }\n"),
                             9, 5, "ask settings apply only to rules that can ask"));
}

TEST(LinkDecision, DataUnderInspectionKeepsItOrGoesToAPerson) {
    const Policy policy = must_parse(R"(version: 1
default: deny
rules:
  - name: customer-data
    match: { action: open, path: ["/srv/**"] }
    inspect: true
    on_data: [{ classes: ["pii.*"], verdict: deny }]
    verdict: allow
  - name: scratch
    match: { action: open, path: ["/tmp/**", "/srv2/**"] }
    verdict: allow
)");
    // A new name where reads are not inspected would read the data around it.
    Decision d = decide_link(policy, link_query(LinkKind::link, "/srv/customers.csv", "/tmp/x"), home);
    EXPECT_EQ(d.verdict, Verdict::ask);
    EXPECT_EQ(d.data_reason, "data read only after inspection would get a name that is read without it");
    EXPECT_FALSE(d.inspect);  // a link hands no data over: nothing to scan
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/srv/a.csv", "/srv2/a.csv"), home).verdict,
              Verdict::ask);
    // Within the inspected tree the data stays inspected.
    d = decide_link(policy, link_query(LinkKind::rename, "/srv/a.tmp", "/srv/a.csv"), home);
    EXPECT_EQ(d.verdict, Verdict::allow);
    EXPECT_FALSE(d.inspect);
    // Moving plain data in is fine; moving a directory out of (or within) it is asked.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/tmp/a", "/srv/a"), home).verdict, Verdict::allow);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/srv/d", "/srv/e", S_IFDIR), home).verdict,
              Verdict::ask);
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::rename, "/tmp/d", "/tmp/e", S_IFDIR), home).verdict,
              Verdict::allow);
    // An exchange moves both ways.
    EXPECT_EQ(decide_link(policy, link_query(LinkKind::exchange, "/tmp/a", "/srv/a"), home).verdict, Verdict::ask);
}

TEST(LinkDecision, KindNames) {
    EXPECT_EQ(to_string(LinkKind::link), "link");
    EXPECT_EQ(to_string(LinkKind::rename), "rename");
    EXPECT_EQ(to_string(LinkKind::exchange), "rename");
}

}  // namespace
}  // namespace airlock::policy

namespace airlock::policy {
namespace {

TEST(PolicyRequire, KernelLevelIsReadAndDefaultsToTheSupervisorAlone) {
    auto none = Policy::parse("version: 1\ndefault: deny\n", "t.yaml");
    ASSERT_TRUE(none);
    EXPECT_EQ(none->kernel_requirement(), KernelRequirement::seccomp);
    for (auto [text, level] : {std::pair{"seccomp", KernelRequirement::seccomp},
                               std::pair{"exec-guard", KernelRequirement::exec_guard},
                               std::pair{"fallback", KernelRequirement::fallback},
                               std::pair{"lsm", KernelRequirement::lsm}}) {
        auto p = Policy::parse(std::string("version: 1\ndefault: deny\nrequire: { kernel: ") + text + " }\n", "t.yaml");
        ASSERT_TRUE(p) << text;
        EXPECT_EQ(p->kernel_requirement(), level) << text;
        EXPECT_EQ(to_string(level), text);
    }
}

TEST(PolicyRequire, BadRequirementsAreErrorsAtTheirPlace) {
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrequire: { kernel: selinux }\n", 3, 20,
                             "is not an enforcement level"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrequire: lsm\n", 3, 10, "require must be a mapping"));
    EXPECT_TRUE(single_error("version: 1\ndefault: deny\nrequire: { kernal: lsm }\n", 3, 12, "kernal"));
}

}  // namespace
}  // namespace airlock::policy
