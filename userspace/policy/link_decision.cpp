#include "policy/link_decision.hpp"

#include <sys/stat.h>

#include <cerrno>

namespace airlock::policy {
namespace {

int severity(Verdict v) {
    switch (v) {
        case Verdict::allow:
        case Verdict::mask: return 0;
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

// The strictest decision over every name involved; `moves_inspected_data`
// tells whether an object that leaves a name (or a tree below one) is read
// there only after inspection.
Decision decide_names(const Policy& policy, const LinkQuery& query, std::string_view home,
                      bool& moves_inspected_data) {
    Decision from = as_source(policy, query.source, query.source_type, home);
    if (query.kind != LinkKind::link && S_ISDIR(query.source_type))
        from = stricter(from, policy.strictest_below(query.source, access_read | access_write, home));
    Decision d = stricter(from, as_destination(policy, query.destination, home));
    moves_inspected_data = from.inspect != nullptr;
    if (query.kind == LinkKind::link) return d;
    if (S_ISDIR(query.source_type))
        d = stricter(d, policy.strictest_below(query.destination, access_create | access_write, home));
    if (query.kind == LinkKind::exchange) {
        Decision back = as_source(policy, query.destination, query.destination_type, home);
        if (S_ISDIR(query.destination_type))
            back = stricter(back, policy.strictest_below(query.destination, access_read | access_write, home));
        moves_inspected_data = moves_inspected_data || back.inspect != nullptr;
        d = stricter(d, back);
        d = stricter(d, as_destination(policy, query.source, home));
        if (S_ISDIR(query.destination_type))
            d = stricter(d, policy.strictest_below(query.source, access_create | access_write, home));
    }
    return d;
}

}  // namespace

const Decision& stricter(const Decision& a, const Decision& b) {
    if (severity(b.verdict) != severity(a.verdict)) return severity(b.verdict) > severity(a.verdict) ? b : a;
    // An allow that inspects the data is stricter than one that does not.
    return !a.inspect && b.inspect ? b : a;
}

Decision decide_link(const Policy& policy, const LinkQuery& query, std::string_view home) {
    bool moves_inspected_data = false;
    Decision d = decide_names(policy, query, home, moves_inspected_data);
    if (d.verdict != Verdict::allow || !moves_inspected_data) {
        d.inspect = nullptr;
        return d;
    }
    // Some name involved is read only after inspection. Reading the object
    // under its new name must be too, or the link is a way around it
    // (`ln /srv/customers.csv /tmp/x`): a file whose new name is read
    // through an inspecting (or stricter) rule keeps its protection; anything
    // else, and any directory moved, goes to a person.
    const bool directory = S_ISDIR(query.source_type) || S_ISDIR(query.destination_type);
    bool still_inspected = !directory;
    if (still_inspected) {
        const Decision read_there = decide_open(policy, query.destination, access_read, home);
        still_inspected = read_there.verdict != Verdict::allow || read_there.inspect;
        if (query.kind == LinkKind::exchange) {
            const Decision read_here = decide_open(policy, query.source, access_read, home);
            still_inspected = still_inspected && (read_here.verdict != Verdict::allow || read_here.inspect);
        }
    }
    if (!still_inspected) {
        d.verdict = Verdict::ask;
        d.error_number = EACCES;
        d.data_reason = "data read only after inspection would get a name that is read without it";
    }
    d.inspect = nullptr;
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
