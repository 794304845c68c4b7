#pragma once

#include <string>

namespace airlock::test {

// A policy for tests: `work` is a directory the test owns; everything the
// probe and the dynamic loader need to start is allowed.
inline std::string test_policy(const std::string& work, const std::string& extra_rules = "",
                               bool allow_owner = true, const std::string& default_verdict = "deny") {
    return "version: 1\n"
           "default: " + default_verdict + "\n"
           "ask: { timeout: 5m, on_timeout: deny }\n"
           "approvers: { users: [], groups: [], allow_session_owner: " + (allow_owner ? "true" : "false") + " }\n"
           "rules:\n" + extra_rules +
           "  - name: secret\n"
           "    match: { action: open, path: [\"" + work + "/secret/**\"] }\n"
           "    verdict: deny\n"
           "    errno: EPERM\n"
           "  - name: held\n"
           "    match: { action: open, path: [\"" + work + "/held/**\"] }\n"
           "    verdict: ask\n"
           "  - name: timeout-allow\n"
           "    match: { action: open, path: [\"" + work + "/timeout-allow/**\"] }\n"
           "    verdict: ask\n"
           "    ask: { timeout: 1s, on_timeout: allow }\n"
           "  - name: timeout-deny\n"
           "    match: { action: open, path: [\"" + work + "/timeout-deny/**\"] }\n"
           "    verdict: ask\n"
           "    errno: EROFS\n"
           "    ask: { timeout: 1s, on_timeout: deny }\n"
           "  - name: work\n"
           "    match: { action: open, path: [\"" + work + "/**\"] }\n"
           "    verdict: allow\n"
           "  - name: no-false\n"
           "    match: { action: exec, path: [\"/usr/bin/false\", \"/bin/false\"] }\n"
           "    verdict: deny\n"
           "  - name: exec-all\n"
           "    match: { action: exec, path: [\"/**\"] }\n"
           "    verdict: allow\n"
           "  - name: system\n"
           "    match: { action: open, access: read, path: [\"/usr/**\", \"/lib/**\", \"/lib64/**\", \"/etc/**\","
           " \"/proc/**\", \"/sys/**\", \"/dev/**\", \"/work/**\", \"/root/**\", \"/tmp/**\"] }\n"
           "    verdict: allow\n"
           "  - name: devnull\n"
           "    match: { action: open, path: [\"/dev/null\", \"/dev/tty\"] }\n"
           "    verdict: allow\n"
           "  - name: local-allowed\n"
           "    match: { action: connect, dest: [\"127.0.0.1\"], port: [\"20000-29999\"] }\n"
           "    verdict: allow\n"
           "  - name: local-held\n"
           "    match: { action: connect, dest: [\"127.0.0.1\"], port: [\"30000-39999\"] }\n"
           "    verdict: ask\n"
           "  - name: unix-sockets\n"
           "    match: { action: connect, path: [\"/tmp/airlock-test-*/**\"] }\n"
           "    verdict: allow\n"
           "  - name: no-egress\n"
           "    match: { action: connect, dest: [\"0.0.0.0/0\", \"::/0\"] }\n"
           "    verdict: deny\n"
           "    errno: ENETUNREACH\n";
}

}  // namespace airlock::test
