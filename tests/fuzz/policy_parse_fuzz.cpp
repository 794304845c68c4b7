// The policy parser on arbitrary text. Policies arrive from clients
// (session.create carries the YAML) and are parsed by the root daemon, so
// any text must end in a policy or in diagnostics: no crash, no exception
// out of parse(), no unbounded recursion. A policy that parses must then
// answer queries.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_check.hpp"
#include "policy/policy.hpp"

using namespace airlock::policy;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text = airlock::fuzz::as_text(data, size);
    auto policy = Policy::parse(text, "fuzz.yaml");
    if (!policy) {
        FUZZ_CHECK(!policy.error().empty());  // a refusal always says why
        for (const Diagnostic& d : policy.error()) FUZZ_CHECK(!d.to_string().empty());
        return 0;
    }
    FUZZ_CHECK(policy->digest().size() == 64);
    const std::string_view home = "/home/agent";
    Query open;
    open.action = Action::open;
    open.path = "/home/agent/.ssh/id_rsa";
    open.access = access_read | access_write;
    Query connect;
    connect.action = Action::connect;
    connect.address = IpAddress::parse("10.1.2.3");
    connect.port = 443;
    connect.destination_is_local = true;
    Query exec;
    exec.action = Action::exec;
    exec.path = "/usr/bin/curl";
    for (const Query& query : {open, connect, exec}) {
        const Decision decision = policy->decide(query, home);
        FUZZ_CHECK(!decision.rule.empty());
        FUZZ_CHECK(decision.verdict != Verdict::allow || decision.error_number == 0);
    }
    (void)policy->strictest_below("/home/agent", access_read | access_write | access_create, home);
    (void)policy->strictest_below("/", access_read, home);
    return 0;
}
