// Links and renames: deciding a call that gives an object a new name.
//
// The policy language has no link or rename rules. A hard link or a rename
// lets the agent reach an object under a name policy may treat differently
// (`ln ~/.ssh/id_rsa /tmp/x`, `mv ~/.ssh ~/x`), so the call is decided as
// the strictest (deny > ask > allow) of what the names involved would get
// from open rules:
//   - the source, as an open for read, for write and for read|write: the
//     object becomes readable and writable under the new name, and a rename
//     takes its old name away. A unix socket also as a connect to its path;
//   - the destination, as an open for create, for write and for create|write:
//     a name is created or replaced there;
//   - a directory that is renamed moves every path below it: rules that may
//     match below the source count as for the source, rules that may match
//     below the destination as for the destination (Policy::strictest_below);
//   - RENAME_EXCHANGE moves both objects: each name counts both ways.
// Each access is asked separately because a rule listing access bits matches
// only requests that want no others: `access: read` with `verdict: deny`
// would never see a read|write request.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "policy/policy.hpp"

namespace airlock::policy {

enum class LinkKind { link, rename, exchange };

struct LinkQuery {
    LinkKind kind = LinkKind::link;
    std::string source;       // absolute, normalized: the object's name now
    std::string destination;  // absolute, normalized: the name it gets
    // File types (S_IFMT bits of st_mode; 0 when there is no object). A
    // directory source makes a rename cover everything below it; for an
    // exchange, so does a directory destination.
    mode_t source_type = 0;
    mode_t destination_type = 0;
};

// The stricter of two decisions (deny > ask > allow); `a` on a tie.
[[nodiscard]] const Decision& stricter(const Decision& a, const Decision& b);

[[nodiscard]] Decision decide_link(const Policy& policy, const LinkQuery& query, std::string_view home);

[[nodiscard]] std::string_view to_string(LinkKind kind);

}  // namespace airlock::policy
