#include "policy/link_decision.hpp"

#include <sys/stat.h>

namespace airlock::policy {
namespace {

int severity(Verdict v) {
    switch (v) {
        case Verdict::allow: return 0;
        case Verdict::ask: return 1;
        case Verdict::deny: return 2;
    }
    return 2;
}

Decision decide_open(const Policy& policy, const std::string& path, unsigned access, std::string_view home) {
    Query q;
    q.action = Action::open;
    q.path = path;
    q.access = access;
    return policy.decide(q, home);
}

// Every request the object's new name would let through, read and write alike.
Decision as_source(const Policy& policy, const std::string& path, mode_t type, std::string_view home) {
    Decision d = decide_open(policy, path, access_read, home);
    d = stricter(d, decide_open(policy, path, access_write, home));
    d = stricter(d, decide_open(policy, path, access_read | access_write, home));
    if (S_ISSOCK(type)) {
        // A second name for a socket is a second way to connect to it.
        Query q;
        q.action = Action::connect;
        q.path = path;
        d = stricter(d, policy.decide(q, home));
    }
    return d;
}

Decision as_destination(const Policy& policy, const std::string& path, std::string_view home) {
    Decision d = decide_open(policy, path, access_create, home);
    d = stricter(d, decide_open(policy, path, access_write, home));
    return stricter(d, decide_open(policy, path, access_create | access_write, home));
}

// A directory moving from `from` to `to`: everything below it moves too.
Decision subtree(const Policy& policy, const std::string& from, const std::string& to, std::string_view home) {
    Decision d = policy.strictest_below(from, access_read | access_write, home);
    return stricter(d, policy.strictest_below(to, access_create | access_write, home));
}

}  // namespace

const Decision& stricter(const Decision& a, const Decision& b) {
    return severity(b.verdict) > severity(a.verdict) ? b : a;
}

Decision decide_link(const Policy& policy, const LinkQuery& query, std::string_view home) {
    Decision d = as_source(policy, query.source, query.source_type, home);
    d = stricter(d, as_destination(policy, query.destination, home));
    if (query.kind == LinkKind::link) return d;
    if (S_ISDIR(query.source_type)) d = stricter(d, subtree(policy, query.source, query.destination, home));
    if (query.kind == LinkKind::exchange) {
        d = stricter(d, as_source(policy, query.destination, query.destination_type, home));
        d = stricter(d, as_destination(policy, query.source, home));
        if (S_ISDIR(query.destination_type))
            d = stricter(d, subtree(policy, query.destination, query.source, home));
    }
    return d;
}

std::string_view to_string(LinkKind kind) {
    switch (kind) {
        case LinkKind::link: return "link";
        case LinkKind::rename: return "rename";
        case LinkKind::exchange: return "rename";
    }
    return "?";
}

}  // namespace airlock::policy
