// airlock: the command-line front end (run agents, approve, audit, policy tools).
#include <fcntl.h>
#include <poll.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>
#include <set>
#include <functional>
#include <string>
#include <vector>

#include "audit/audit_log.hpp"
#include "audit/format.hpp"
#include "client/control_client.hpp"
#include "inspect/detectors.hpp"
#include "inspect/scanner.hpp"
#include "launcher/launcher.hpp"
#include "policy/builtin.hpp"
#include "policy/network.hpp"
#include "policy/policy.hpp"
#include "supervisor/local_address.hpp"

namespace po = boost::program_options;
using nlohmann::json;

namespace airlock::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;

constexpr const char* k_default_state_dir = "/var/lib/airlock";

const char* k_usage = R"(usage: airlock [--socket PATH] COMMAND [ARGS]

Agents:
  run [--policy NAME|FILE] [--user USER] [--label k=v]... -- CMD [ARGS...]
                       run CMD under airlockd; exits with CMD's status
  sessions [--json] [--tree ID]
                       list live sessions; --tree: one session's process tree
Approvals:
  pending [--json]     requests waiting for a decision
  approve ID [--scope once|session] [--reason TEXT]
  deny ID [--reason TEXT]
  watch [--json]       live stream of requests; on a terminal, type
                       "a ID", "s ID" (approve for the session) or "d ID [reason]"
  status [--json]      daemon status
Audit:
  audit [--session ID] [--json] [--limit N] [--state-dir DIR]
  audit verify [--state-dir DIR]
Policy:
  policy check FILE...
  policy explain --policy NAME|FILE [--user USER] [--session-read CLASS[=N]]...
                 open PATH [--access read|write|create]...
  policy explain --policy NAME|FILE connect ADDR:PORT | unix:PATH
  policy explain --policy NAME|FILE exec PATH
Inspection:
  scan [--json|--sarif] [--types LIST] [--max-size BYTES] [--max-findings N]
       [PATH...|-]
  scan --list-types
                       find PII and secrets in files, directories (recursive)
                       or standard input; exits 1 if something was found,
                       0 if clean, 2 on error

Global: --socket PATH (default /run/airlock/airlock.sock)
)";

struct Usage {
    std::string message;
};

int usage_error(const std::string& message) {
    std::cerr << "airlock: " << message << "\n(see 'airlock --help')\n";
    return k_exit_usage;
}

po::variables_map parse(const std::vector<std::string>& args, const po::options_description& opts,
                        const po::positional_options_description& positional) {
    po::variables_map vm;
    po::store(po::command_line_parser(args).options(opts).positional(positional).run(), vm);
    po::notify(vm);
    return vm;
}

// ---- talking to the daemon ----------------------------------------------------
struct Connection {
    std::string socket_path;
    client::ControlClient* client = nullptr;
};

common::Result<protocol::Reply> call(const std::string& socket_path, protocol::RequestBody body) {
    auto c = client::ControlClient::connect(socket_path);
    if (!c) return std::unexpected(c.error());
    return c->call({std::nullopt, std::move(body)});
}

int report(const common::Result<protocol::Reply>& reply) {
    if (!reply) {
        std::cerr << "airlock: " << reply.error().to_string() << "\n";
        return k_exit_failed;
    }
    if (!reply->ok) {
        std::cerr << "airlock: " << reply->error_message << " (" << reply->error_code << ")\n";
        return k_exit_failed;
    }
    return k_exit_ok;
}

std::string str(const json& j, const char* key) {
    if (!j.contains(key)) return "";
    const auto& v = j.at(key);
    return v.is_string() ? v.get<std::string>() : v.dump();
}

void print_request(const json& r) {
    std::cout << "#" << str(r, "id") << "  session " << str(r, "session") << "  pid " << str(r, "pid") << "  "
              << str(r, "action");
    if (r.contains("access")) std::cout << " (" << str(r, "access") << ")";
    std::cout << "  " << str(r, "object") << "\n      rule " << str(r, "rule") << ", waiting since "
              << str(r, "created_at") << ", " << str(r, "on_timeout") << " at " << str(r, "expires_at") << "\n";
    if (r.contains("data_reason")) std::cout << "      why: " << str(r, "data_reason") << "\n";
    // What inspection found, as the daemon sends it: masked previews only.
    if (r.contains("data") && r["data"].is_object()) {
        const json& data = r["data"];
        std::cout << "      found: " << str(data, "findings") << " in " << str(data, "bytes") << " bytes";
        if (data.contains("by_type") && data["by_type"].is_object())
            for (const auto& [type, count] : data["by_type"].items()) std::cout << ", " << count.dump() << " " << type;
        if (data.value("truncated", false)) std::cout << " (or more: stopped counting)";
        std::cout << "\n";
        if (data.contains("shown") && data["shown"].is_array())
            for (const auto& f : data["shown"])
                std::cout << "        line " << str(f, "line") << ": " << str(f, "type") << " " << str(f, "preview")
                          << "\n";
    }
}

// ---- commands -------------------------------------------------------------------
int cmd_run(const std::string& socket_path, const std::vector<std::string>& args) {
    po::options_description opts("run");
    opts.add_options()("policy", po::value<std::string>())("user", po::value<std::string>())(
        "label", po::value<std::vector<std::string>>()->composing())(
        "cmd", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("cmd", -1);
    auto vm = parse(args, opts, pos);
    launcher::RunOptions o;
    o.socket_path = socket_path;
    if (vm.count("policy")) o.policy = vm["policy"].as<std::string>();
    if (vm.count("user")) o.user = vm["user"].as<std::string>();
    if (vm.count("label"))
        for (const auto& kv : vm["label"].as<std::vector<std::string>>()) {
            auto eq = kv.find('=');
            if (eq == std::string::npos || eq == 0) return usage_error("--label wants KEY=VALUE, got '" + kv + "'");
            o.labels[kv.substr(0, eq)] = kv.substr(eq + 1);
        }
    if (vm.count("cmd")) o.command = vm["cmd"].as<std::vector<std::string>>();
    if (o.command.empty()) return usage_error("run: no command given (airlock run -- CMD [ARGS...])");
    return launcher::run(o);
}

// `airlock sessions --tree ID`: each process under its parent, the launcher first.
void print_tree(const json& session) {
    std::map<std::int64_t, std::vector<const json*>> children;
    std::set<std::int64_t> pids;
    for (const auto& p : session.at("processes")) pids.insert(p.at("pid").get<std::int64_t>());
    std::vector<const json*> roots;
    for (const auto& p : session.at("processes")) {
        auto ppid = p.at("ppid").get<std::int64_t>();
        if (pids.count(ppid)) children[ppid].push_back(&p);
        else roots.push_back(&p);
    }
    std::cout << "session " << str(session, "id") << "  owner " << str(session, "owner") << "  as "
              << str(session, "user") << "\n";
    std::function<void(const json&, int)> show = [&](const json& p, int depth) {
        std::cout << std::string(2 + 2 * static_cast<std::size_t>(depth), ' ') << str(p, "pid") << "  "
                  << str(p, "argv").substr(0, 200) << "  (" << str(p, "exe") << ", since " << str(p, "started_at");
        if (p.contains("exited_at")) std::cout << ", exited " << str(p, "exited_at");
        std::cout << ")\n";
        if (depth < 64)
            for (const json* c : children[p.at("pid").get<std::int64_t>()]) show(*c, depth + 1);
    };
    for (const json* r : roots) show(*r, 0);
    if (session.value("processes_dropped", 0) > 0)
        std::cout << "  (" << session.at("processes_dropped") << " more processes not kept: the tree is full)\n";
    if (!session.value("tree_complete", false))
        std::cout << "  (forks and exits are not tracked: the daemon runs without its kernel layer)\n";
}

int cmd_list(const std::string& socket_path, const std::vector<std::string>& args, bool sessions) {
    po::options_description opts;
    opts.add_options()("json", po::bool_switch());
    if (sessions) opts.add_options()("tree", po::value<std::int64_t>());
    auto vm = parse(args, opts, {});
    protocol::SessionsListRequest list_sessions;
    if (sessions && vm.count("tree")) {
        if (vm["tree"].as<std::int64_t>() <= 0) return usage_error("sessions --tree wants a session id (1 or more)");
        list_sessions.tree = vm["tree"].as<std::int64_t>();
    }
    auto reply = sessions ? call(socket_path, list_sessions) : call(socket_path, protocol::PendingListRequest{});
    if (int rc = report(reply); rc != 0) return rc;
    const json& items = reply->result.at(sessions ? "sessions" : "requests");
    if (vm["json"].as<bool>()) {
        std::cout << items.dump(2) << "\n";
        return k_exit_ok;
    }
    if (list_sessions.tree) {
        for (const auto& item : items) print_tree(item);
        return k_exit_ok;
    }
    if (items.empty()) std::cout << (sessions ? "no sessions\n" : "no pending requests\n");
    for (const auto& item : items) {
        if (!sessions) {
            print_request(item);
            continue;
        }
        std::string argv;
        for (const auto& a : item.at("argv")) argv += (argv.empty() ? "" : " ") + a.get<std::string>();
        std::cout << "session " << str(item, "id") << "  owner " << str(item, "owner") << "  as " << str(item, "user")
                  << "  policy " << str(item, "policy") << "  pids " << item.at("pids").size() << "  pending "
                  << str(item, "pending") << "  since " << str(item, "started_at") << "\n      " << argv << "\n";
    }
    return k_exit_ok;
}

int cmd_decide(const std::string& socket_path, const std::vector<std::string>& args, bool approve) {
    po::options_description opts;
    opts.add_options()("id", po::value<std::int64_t>())("reason", po::value<std::string>()->default_value(""));
    if (approve) opts.add_options()("scope", po::value<std::string>()->default_value("once"));
    po::positional_options_description pos;
    pos.add("id", 1);
    auto vm = parse(args, opts, pos);
    if (!vm.count("id")) return usage_error(std::string(approve ? "approve" : "deny") + ": which request? (ID)");
    protocol::RequestBody body;
    if (approve) {
        protocol::ApproveRequest r;
        r.request = vm["id"].as<std::int64_t>();
        r.scope = vm["scope"].as<std::string>();
        r.reason = vm["reason"].as<std::string>();
        if (r.scope != "once" && r.scope != "session") return usage_error("--scope is once or session");
        body = r;
    } else {
        protocol::DenyRequest r;
        r.request = vm["id"].as<std::int64_t>();
        r.reason = vm["reason"].as<std::string>();
        body = r;
    }
    auto reply = call(socket_path, body);
    if (int rc = report(reply); rc != 0) return rc;
    std::cout << "request " << str(reply->result, "request") << " " << str(reply->result, "decision") << "\n";
    return k_exit_ok;
}

int cmd_status(const std::string& socket_path, const std::vector<std::string>& args) {
    po::options_description opts;
    opts.add_options()("json", po::bool_switch());
    auto vm = parse(args, opts, {});
    auto reply = call(socket_path, protocol::StatusRequest{});
    if (int rc = report(reply); rc != 0) return rc;
    if (vm["json"].as<bool>()) {
        std::cout << reply->result.dump(2) << "\n";
        return k_exit_ok;
    }
    const json& r = reply->result;
    std::cout << "airlockd " << str(r, "version") << " (pid " << str(r, "pid") << "), up " << str(r, "uptime_s")
              << "s\n  enforcement: " << str(r, "enforcement") << "\n  sessions: " << str(r, "sessions")
              << "\n  pending: " << str(r, "pending") << "\n  default policy: " << str(r.at("policy"), "source")
              << " (" << str(r.at("policy"), "digest").substr(0, 12) << ")\n  state: " << str(r, "state_dir")
              << "\n  socket: " << str(r, "socket") << "\n";
    return k_exit_ok;
}

int cmd_watch(const std::string& socket_path, const std::vector<std::string>& args) {
    po::options_description opts;
    opts.add_options()("json", po::bool_switch());
    auto vm = parse(args, opts, {});
    const bool as_json = vm["json"].as<bool>();
    auto stream = client::ControlClient::connect(socket_path);
    if (!stream) return report(std::unexpected(stream.error()));
    auto started = stream->call({std::nullopt, protocol::WatchRequest{}});
    if (int rc = report(started); rc != 0) return rc;
    const bool interactive = ::isatty(STDIN_FILENO) && !as_json;
    if (interactive)
        std::cout << "watching; type 'a ID' to approve once, 's ID' for the whole session, 'd ID [reason]' to deny\n";
    std::string input;
    for (;;) {
        pollfd fds[2] = {{stream->fd(), POLLIN, 0}, {STDIN_FILENO, POLLIN, 0}};
        if (::poll(fds, interactive ? 2 : 1, -1) < 0) {
            if (errno == EINTR) continue;
            return k_exit_failed;
        }
        if (fds[0].revents) {
            auto ev = stream->next();
            if (!ev) return report(std::unexpected(ev.error()));
            if (as_json) {
                std::cout << json{{"event", ev->event}, {"data", ev->result}}.dump() << std::endl;
                continue;
            }
            if (ev->event == "request.created") {
                std::cout << "? ";
                print_request(ev->result);
            } else if (ev->event == "request.resolved") {
                std::cout << "= #" << str(ev->result, "id") << " " << str(ev->result, "decision") << " by "
                          << str(ev->result, "by") << "\n";
            } else if (ev->event == "session.started") {
                std::cout << "+ session " << str(ev->result, "id") << " started\n";
            } else if (ev->event == "session.ended") {
                std::cout << "- session " << str(ev->result, "id") << " ended\n";
            }
            std::cout.flush();
        }
        if (interactive && fds[1].revents) {
            std::string line;
            if (!std::getline(std::cin, line)) return k_exit_ok;
            std::istringstream words(line);
            std::string verb, reason;
            std::int64_t id = 0;
            words >> verb >> id;
            std::getline(words, reason);
            if (!reason.empty() && reason.front() == ' ') reason.erase(0, 1);
            if (id <= 0 || (verb != "a" && verb != "s" && verb != "d")) {
                std::cout << "type 'a ID', 's ID' or 'd ID [reason]'\n";
                continue;
            }
            protocol::RequestBody body;
            if (verb == "d") body = protocol::DenyRequest{id, reason};
            else body = protocol::ApproveRequest{id, verb == "s" ? "session" : "once", reason};
            auto reply = call(socket_path, body);
            if (report(reply) == 0)
                std::cout << "request " << id << " " << str(reply->result, "decision") << "\n";
        }
    }
}

int cmd_audit(const std::vector<std::string>& args) {
    po::options_description opts;
    opts.add_options()("what", po::value<std::string>())("state-dir", po::value<std::string>()->default_value(k_default_state_dir))(
        "session", po::value<std::int64_t>())("json", po::bool_switch())("limit", po::value<std::int64_t>()->default_value(0));
    po::positional_options_description pos;
    pos.add("what", 1);
    auto vm = parse(args, opts, pos);
    const std::string db = vm["state-dir"].as<std::string>() + "/audit.db";
    if (vm.count("what")) {
        if (vm["what"].as<std::string>() != "verify") return usage_error("audit: unknown subcommand '" + vm["what"].as<std::string>() + "'");
        if (::access(db.c_str(), R_OK) != 0) {
            std::cerr << "airlock: cannot read " << db << ": " << std::strerror(errno) << "\n";
            return k_exit_failed;
        }
        auto report_v = audit::AuditLog::verify(db);
        if (!report_v) {
            std::cerr << "airlock: " << report_v.error().to_string() << "\n";
            return k_exit_failed;
        }
        if (report_v->ok) {
            std::cout << "audit log OK: " << report_v->rows_checked << " rows, chain intact\n";
            return k_exit_ok;
        }
        std::cout << "audit log TAMPERED: first bad row seq " << report_v->first_bad_seq << ": " << report_v->problem
                  << " (" << report_v->rows_checked << " rows checked)\n";
        return k_exit_failed;
    }
    if (::access(db.c_str(), R_OK) != 0) {
        std::cerr << "airlock: cannot read " << db << ": " << std::strerror(errno) << "\n";
        return k_exit_failed;
    }
    auto log = audit::AuditLog::open_read_only(db);
    if (!log) {
        std::cerr << "airlock: " << log.error().to_string() << "\n";
        return k_exit_failed;
    }
    audit::Filter f;
    if (vm.count("session")) f.session = vm["session"].as<std::int64_t>();
    f.limit = vm["limit"].as<std::int64_t>();
    auto rows = log->query(f);
    if (!rows) {
        std::cerr << "airlock: " << rows.error().to_string() << "\n";
        return k_exit_failed;
    }
    if (vm["json"].as<bool>()) {
        json out = json::array();
        for (const auto& e : *rows) out.push_back(audit::to_json(e));
        std::cout << out.dump(2) << "\n";
    } else {
        for (const auto& e : *rows) std::cout << audit::format_text(e) << "\n";
    }
    return k_exit_ok;
}

common::Result<policy::Policy> load_named_or_file(const std::string& spec, bool print_errors) {
    auto result = spec.find('/') != std::string::npos || spec.ends_with(".yaml") || spec.ends_with(".yml")
                      ? policy::Policy::load_file(spec)
                      : policy::load_builtin_policy(spec);
    if (!result) {
        if (print_errors)
            for (const auto& d : result.error()) std::cerr << d.to_string() << "\n";
        return common::fail(EINVAL, "invalid policy " + spec);
    }
    return std::move(*result);
}

int cmd_policy(const std::vector<std::string>& args) {
    if (args.empty()) return usage_error("policy: check or explain?");
    std::vector<std::string> rest(args.begin() + 1, args.end());
    if (args[0] == "check") {
        if (rest.empty()) return usage_error("policy check: which file?");
        int rc = k_exit_ok;
        for (const auto& file : rest) {
            auto p = policy::Policy::load_file(file);
            if (p) {
                std::cout << file << ": OK\n";
                continue;
            }
            for (const auto& d : p.error()) std::cout << d.to_string() << "\n";
            rc = k_exit_failed;
        }
        return rc;
    }
    if (args[0] != "explain") return usage_error("policy: unknown subcommand '" + args[0] + "'");
    po::options_description opts;
    opts.add_options()("policy", po::value<std::string>()->default_value("default"))("user", po::value<std::string>())(
        "access", po::value<std::vector<std::string>>()->composing())(
        "session-read", po::value<std::vector<std::string>>()->composing())(
        "words", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("words", -1);
    auto vm = parse(rest, opts, pos);
    // --session-read pii.us_ssn=120: as if the session had read that much (session_read rules).
    policy::DataCounts session_read;
    for (const auto& item : vm.count("session-read") ? vm["session-read"].as<std::vector<std::string>>()
                                                     : std::vector<std::string>{}) {
        const auto eq = item.find('=');
        const std::string type = item.substr(0, eq);
        std::uint64_t count = 1;
        if (eq != std::string::npos) {
            const std::string number = item.substr(eq + 1);
            const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), count);
            if (ec != std::errc() || end != number.data() + number.size() || count == 0)
                return usage_error("--session-read wants CLASS[=COUNT], e.g. pii.us_ssn=120; got '" + item + "'");
        }
        if (!inspect::find_detector(type))
            return usage_error("--session-read: unknown data class '" + type + "' (airlock scan --list-types)");
        session_read[type] += count;
    }
    auto words = vm.count("words") ? vm["words"].as<std::vector<std::string>>() : std::vector<std::string>{};
    if (words.size() != 2) return usage_error("policy explain: want ACTION OBJECT, e.g. 'open /etc/passwd'");
    auto p = load_named_or_file(vm["policy"].as<std::string>(), true);
    if (!p) return k_exit_failed;
    std::string home = ::getenv("HOME") ? ::getenv("HOME") : "/root";
    if (vm.count("user")) {
        passwd* pw = ::getpwnam(vm["user"].as<std::string>().c_str());
        if (!pw) return usage_error("no such user '" + vm["user"].as<std::string>() + "'");
        home = pw->pw_dir;
    }
    policy::Query q;
    auto action = policy::parse_action(words[0]);
    if (!action) return usage_error("unknown action '" + words[0] + "' (open, connect or exec)");
    q.action = *action;
    const std::string& object = words[1];
    if (q.action == policy::Action::connect) {
        if (object.starts_with("unix:")) {
            q.path = object.substr(5);
        } else {
            auto colon = object.rfind(':');
            if (colon == std::string::npos) return usage_error("connect wants ADDR:PORT or unix:PATH");
            std::string host = object.substr(0, colon);
            if (host.size() > 1 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
            auto ip = policy::IpAddress::parse(host);
            if (!ip) return usage_error("not an IP address: '" + host + "'");
            q.address = *ip;
            int port = std::atoi(object.c_str() + colon + 1);
            if (port <= 0 || port > 65535) return usage_error("bad port in '" + object + "'");
            q.port = static_cast<std::uint16_t>(port);
            // As the daemon decides it: this host's own addresses (it classifies
            // in the session's network namespace, this in the caller's) count as
            // loopback too, and not knowing counts as local.
            auto addresses = supervisor::LocalAddresses::open();
            auto local =
                addresses ? addresses->is_local(*ip) : common::Result<bool>(std::unexpected(addresses.error()));
            if (!local)
                std::cerr << "airlock: cannot tell whether " << host << " is this host's own address ("
                          << local.error().to_string() << "); deciding it as loopback too, as airlockd would\n";
            q.destination_is_local = !local || *local;
        }
    } else {
        if (object.empty() || object.front() != '/') return usage_error("the path must be absolute");
        q.path = object;
    }
    if (q.action == policy::Action::open) {
        q.access = 0;
        auto list = vm.count("access") ? vm["access"].as<std::vector<std::string>>() : std::vector<std::string>{"read"};
        for (const auto& a : list) {
            if (a == "read") q.access |= policy::access_read;
            else if (a == "write") q.access |= policy::access_write;
            else if (a == "create") q.access |= policy::access_create;
            else return usage_error("--access is read, write or create");
        }
    }
    q.session_read = &session_read;
    auto d = p->decide(q, home);
    std::cout << policy::to_string(d.verdict) << " by rule '" << d.rule << "'";
    if (d.verdict == policy::Verdict::deny) std::cout << " (errno " << policy::errno_name(d.error_number ? d.error_number : EACCES) << ")";
    if (d.verdict == policy::Verdict::ask)
        std::cout << " (timeout " << d.ask.timeout.count() / 1000 << "s, then " << policy::to_string(d.ask.on_timeout)
                  << ")";
    std::cout << "\n";
    if (d.by_session_read) std::cout << "  (matched on what the session has read: --session-read)\n";
    if (d.inspect) {
        // The verdict above is what an open with nothing in it gets.
        std::cout << "  inspects the data first (up to " << policy::size_to_string(d.inspect->limits.max_size)
                  << "; larger or unscannable: " << policy::to_string(d.inspect->limits.too_large) << "):\n";
        std::size_t index = 0;
        for (const auto& c : d.inspect->on_data) {
            std::cout << "    on_data #" << ++index << ": ";
            for (std::size_t i = 0; i < c.classes.size(); ++i) std::cout << (i ? ", " : "") << c.classes[i];
            std::cout << " (at least " << c.min_count << ") -> " << policy::to_string(c.verdict) << "\n";
        }
        std::cout << "    nothing of those -> " << policy::to_string(d.verdict) << "\n";
    }
    if (q.address && q.destination_is_local) {
        const auto address = policy::unmap_ipv4(*q.address);
        const auto loopback = policy::loopback_address(address.family);
        if (address != loopback)
            std::cout << "  " << address.to_string() << " is this host: decided both as it and as "
                      << loopback.to_string() << " port " << q.port << ", the stricter verdict wins\n";
    }
    return k_exit_ok;
}

// ---- scan -------------------------------------------------------------------------
// Runs the inspector over files, directory trees or standard input, like a
// secret scanner in CI: exit 1 when something was found, 0 when clean, 2 on
// error. Only masked previews are printed, never the values themselves.

constexpr std::size_t k_scan_chunk = std::size_t{1} << 20;             // bytes per read/feed
constexpr std::uint64_t k_scan_default_max = std::uint64_t{100} << 20;  // --max-size default

// "100", "64K", "10M", "1G" (binary multiples; an optional trailing B or iB).
std::optional<std::uint64_t> parse_size(std::string_view text) {
    std::size_t i = 0;
    std::uint64_t value = 0;
    for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i) {
        if (value > (UINT64_MAX - 9) / 10) return std::nullopt;
        value = value * 10 + static_cast<std::uint64_t>(text[i] - '0');
    }
    if (i == 0) return std::nullopt;
    std::string suffix(text.substr(i));
    std::transform(suffix.begin(), suffix.end(), suffix.begin(), [](unsigned char c) { return std::toupper(c); });
    if (suffix.ends_with("IB")) suffix.resize(suffix.size() - 2);
    else if (suffix.size() > 1 && suffix.ends_with("B")) suffix.resize(suffix.size() - 1);
    unsigned shift = 0;
    if (suffix.empty() || suffix == "B") shift = 0;
    else if (suffix == "K") shift = 10;
    else if (suffix == "M") shift = 20;
    else if (suffix == "G") shift = 30;
    else if (suffix == "T") shift = 40;
    else return std::nullopt;
    if (shift != 0 && value > (UINT64_MAX >> shift)) return std::nullopt;
    return value << shift;
}

struct ScanHit {
    std::string path;
    inspect::Finding finding;
};

struct ScanRun {
    enum class Format { human, json, sarif } format = Format::human;
    std::uint64_t max_size = k_scan_default_max;
    inspect::Session* session = nullptr;
    std::string buffer;  // one chunk, reused
    std::vector<ScanHit> hits;  // kept for --json and --sarif only
    std::uint64_t files = 0, bytes = 0, findings = 0, skipped = 0, errors = 0;

    void note(const std::string& path, const std::string& what) {
        std::cerr << "airlock: skipping " << path << ": " << what << "\n";
        ++skipped;
    }
    void error(const std::string& path, const std::string& what) {
        std::cerr << "airlock: cannot read " << path << ": " << what << "\n";
        ++errors;
    }

    // Streams `fd` through the inspector in fixed chunks.
    void scan_fd(int fd, const std::string& path) {
        auto stream = session->open_stream(path);
        if (!stream) {
            error(path, stream.error().to_string());
            return;
        }
        bool failed = false;
        for (;;) {
            ssize_t n = ::read(fd, buffer.data(), buffer.size());
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) {
                error(path, std::strerror(errno));
                failed = true;
                break;
            }
            if (n == 0) break;
            if (auto fed = stream->feed(std::string_view(buffer.data(), static_cast<std::size_t>(n))); !fed) {
                error(path, fed.error().to_string());
                failed = true;
                break;
            }
        }
        auto result = stream->finish();
        if (!result) {
            if (!failed) error(path, result.error().to_string());
            return;
        }
        if (!failed) ++files;
        bytes += result->bytes_scanned;
        if (result->truncated)
            std::cerr << "airlock: " << path << ": stopped after " << result->findings.size()
                      << " findings; more may exist\n";
        for (auto& f : result->findings) {
            ++findings;
            if (format == Format::human) {
                std::cout << path << ":" << f.line << ": " << f.type << " " << f.preview.view() << " (" << std::fixed
                          << std::setprecision(2) << f.confidence << (f.test_value ? ", test value" : "") << ")\n";
            } else {
                hits.push_back({path, std::move(f)});
            }
        }
    }

    static const char* special_kind(mode_t mode) {
        return S_ISFIFO(mode)   ? "a FIFO"
               : S_ISSOCK(mode) ? "a socket"
               : S_ISCHR(mode)  ? "a character device"
               : S_ISBLK(mode)  ? "a block device"
                                : "not a regular file";
    }

    // A path named on the command line (symlinks followed) or met in a walk.
    void scan_file(const std::string& path) {
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            error(path, std::strerror(errno));
            return;
        }
        if (S_ISDIR(st.st_mode)) {
            walk(path);
            return;
        }
        if (!S_ISREG(st.st_mode)) {  // never opened: a FIFO would block, a device may have side effects
            note(path, special_kind(st.st_mode));
            return;
        }
        // O_NONBLOCK: if the file was swapped for a FIFO since stat(), open must not hang.
        int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
            error(path, std::strerror(errno));
            return;
        }
        if (::fstat(fd, &st) != 0) {
            error(path, std::strerror(errno));
            ::close(fd);
            return;
        }
        if (!S_ISREG(st.st_mode)) {
            note(path, special_kind(st.st_mode));
            ::close(fd);
            return;
        }
        if (static_cast<std::uint64_t>(st.st_size) > max_size) {
            note(path, "larger than --max-size (" + std::to_string(st.st_size) + " bytes)");
            ::close(fd);
            return;
        }
        ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK);
        scan_fd(fd, path);
        ::close(fd);
    }

    // Recursive, in name order; symlinks to directories are not followed,
    // symlinks to files are scanned.
    void walk(const std::string& dir) {
        namespace fs = std::filesystem;
        std::error_code ec;
        fs::directory_iterator it(dir, ec);
        if (ec) {
            error(dir, ec.message());
            return;
        }
        std::vector<fs::directory_entry> entries;
        for (const fs::directory_iterator end; it != end; it.increment(ec)) {
            if (ec) break;
            entries.push_back(*it);
        }
        if (ec) error(dir, ec.message());
        std::sort(entries.begin(), entries.end(),
                  [](const auto& a, const auto& b) { return a.path().filename() < b.path().filename(); });
        for (const auto& entry : entries) {
            const std::string path = entry.path().string();
            auto type = entry.symlink_status(ec).type();
            if (ec) {
                error(path, ec.message());
                continue;
            }
            if (type == fs::file_type::directory) {
                walk(path);
                continue;
            }
            if (type == fs::file_type::symlink) {
                auto target = entry.status(ec).type();
                if (ec || target == fs::file_type::not_found) {
                    error(path, ec ? ec.message() : "dangling symbolic link");
                    continue;
                }
                if (target == fs::file_type::directory) continue;  // not followed
                type = target;
            }
            if (type == fs::file_type::regular) scan_file(path);
            else
                note(path, type == fs::file_type::fifo       ? "a FIFO"
                           : type == fs::file_type::socket    ? "a socket"
                           : type == fs::file_type::character ? "a character device"
                           : type == fs::file_type::block     ? "a block device"
                                                              : "not a regular file");
        }
    }
};

// SARIF wants URIs: relative paths stay relative (percent-encoded), absolute
// ones become file:// URIs.
std::string path_uri(const std::string& path) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out = path.starts_with("/") ? "file://" : "";
    for (unsigned char c : path) {
        if (std::isalnum(c) || std::strchr("-._~/", c) != nullptr) {
            out.push_back(static_cast<char>(c));
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 15]);
        }
    }
    return out;
}

json sarif_report(const ScanRun& run, const inspect::Scanner& scanner) {
    json rules = json::array();
    std::map<std::string, std::size_t, std::less<>> rule_index;
    for (std::string_view id : scanner.detector_ids()) {
        const inspect::Detector* d = inspect::find_detector(id);
        rule_index.emplace(std::string(id), rules.size());
        json rule = {{"id", id},
                     {"shortDescription", {{"text", std::string(id)}}},
                     {"properties", {{"category", d ? inspect::to_string(d->category) : "unknown"}}}};
        if (d != nullptr) rule["properties"]["severity"] = inspect::to_string(d->severity);
        rules.push_back(std::move(rule));
    }
    json results = json::array();
    for (const auto& hit : run.hits) {
        const auto& f = hit.finding;
        const char* level = f.severity >= inspect::Severity::high     ? "error"
                            : f.severity == inspect::Severity::medium ? "warning"
                                                                      : "note";
        json result = {
            {"ruleId", f.type},
            {"level", level},
            {"message", {{"text", std::string(f.type) + " found: " + f.preview.str()}}},
            {"locations",
             json::array({{{"physicalLocation",
                            {{"artifactLocation", {{"uri", path_uri(hit.path)}}},
                             {"region", {{"startLine", f.line}, {"byteOffset", f.offset}, {"byteLength", f.length}}}}}}})},
            {"properties", {{"confidence", f.confidence}, {"test_value", f.test_value}}}};
        if (auto it = rule_index.find(f.type); it != rule_index.end()) result["ruleIndex"] = it->second;
        results.push_back(std::move(result));
    }
    return {{"$schema", "https://json.schemastore.org/sarif-2.1.0.json"},
            {"version", "2.1.0"},
            {"runs", json::array({{{"tool", {{"driver", {{"name", "airlock"}, {"rules", std::move(rules)}}}}},
                                   {"results", std::move(results)}}})}};
}

int cmd_scan(const std::vector<std::string>& args) {
    const auto started = std::chrono::steady_clock::now();
    po::options_description opts;
    opts.add_options()("json", po::bool_switch())("sarif", po::bool_switch())("types", po::value<std::string>())(
        "max-size", po::value<std::string>())("max-findings", po::value<std::string>())(
        "list-types", po::bool_switch())(
        "paths", po::value<std::vector<std::string>>());
    po::positional_options_description pos;
    pos.add("paths", -1);
    auto vm = parse(args, opts, pos);
    if (vm["list-types"].as<bool>()) {
        // The ids policies (on_data, session_read) and --types name.
        for (const auto& d : inspect::all_detectors())
            std::cout << d.id << "\t" << inspect::to_string(d.category) << "\t" << inspect::to_string(d.severity)
                      << "\n";
        return 0;
    }
    ScanRun run;
    if (vm["json"].as<bool>() && vm["sarif"].as<bool>()) return usage_error("scan: --json or --sarif, not both");
    if (vm["json"].as<bool>()) run.format = ScanRun::Format::json;
    if (vm["sarif"].as<bool>()) run.format = ScanRun::Format::sarif;
    if (vm.count("max-size")) {
        auto size = parse_size(vm["max-size"].as<std::string>());
        if (!size) return usage_error("scan: --max-size wants BYTES with an optional K, M or G suffix, got '" +
                                      vm["max-size"].as<std::string>() + "'");
        run.max_size = *size;
    }
    inspect::Options options;  // no cache_dir: the CLI compiles its databases
    if (vm.count("max-findings")) {
        // Findings are kept per file until it is printed: the cap bounds memory.
        const std::string text = vm["max-findings"].as<std::string>();
        std::uint64_t cap = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), cap);
        if (ec != std::errc() || end != text.data() + text.size() || cap == 0 || cap > 100'000'000)
            return usage_error("scan: --max-findings wants a number from 1 to 100000000, got '" + text + "'");
        options.max_findings = static_cast<std::size_t>(cap);
    }
    if (vm.count("types")) {
        std::string list = vm["types"].as<std::string>();
        std::size_t start = 0;
        while (start <= list.size()) {
            std::size_t comma = std::min(list.find(',', start), list.size());
            std::string type = list.substr(start, comma - start);
            type.erase(0, type.find_first_not_of(" \t"));
            type.erase(type.find_last_not_of(" \t") + 1);
            if (!type.empty()) options.types.push_back(type);
            start = comma + 1;
        }
        if (options.types.empty()) return usage_error("scan: --types is empty");
        for (const auto& type : options.types) {
            const bool prefix = type.back() == '*';
            const std::string_view wanted = std::string_view(type).substr(0, type.size() - (prefix ? 1 : 0));
            const bool known = std::ranges::any_of(inspect::all_detectors(), [&](const inspect::Detector& d) {
                return prefix ? d.id.starts_with(wanted) : d.id == wanted;
            });
            if (!known)
                return usage_error("scan: unknown detector type '" + type + "' (airlock scan --list-types lists them)");
        }
    }
    auto scanner = inspect::Scanner::create(std::move(options));
    if (!scanner) {
        std::cerr << "airlock: " << scanner.error().to_string() << "\n";
        return k_exit_usage;
    }
    auto session = scanner->new_session();
    if (!session) {
        std::cerr << "airlock: " << session.error().to_string() << "\n";
        return k_exit_usage;
    }
    run.session = &*session;
    run.buffer.resize(k_scan_chunk);
    auto paths = vm.count("paths") ? vm["paths"].as<std::vector<std::string>>() : std::vector<std::string>{"-"};
    for (const auto& path : paths) {
        if (path == "-") run.scan_fd(STDIN_FILENO, "-");
        else run.scan_file(path);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    const auto dump = [](const json& j) { return j.dump(2, ' ', false, json::error_handler_t::replace); };
    if (run.format == ScanRun::Format::json) {
        json findings = json::array();
        for (const auto& hit : run.hits) {
            const auto& f = hit.finding;
            findings.push_back({{"type", f.type},
                                {"path", hit.path},
                                {"offset", f.offset},
                                {"length", f.length},
                                {"line", f.line},
                                {"preview", f.preview.str()},
                                {"confidence", f.confidence},
                                {"test_value", f.test_value}});
        }
        json out = {{"findings", std::move(findings)},
                    {"stats",
                     {{"files", run.files},
                      {"bytes", run.bytes},
                      {"findings", run.findings},
                      {"skipped", run.skipped},
                      {"errors", run.errors},
                      {"seconds", seconds}}}};
        std::cout << dump(out) << "\n";
    } else if (run.format == ScanRun::Format::sarif) {
        std::cout << dump(sarif_report(run, *scanner)) << "\n";
    } else {
        std::cout << run.findings << (run.findings == 1 ? " finding" : " findings") << " in " << run.files
                  << (run.files == 1 ? " file" : " files") << " (" << run.bytes << " bytes, " << run.skipped
                  << " skipped, " << run.errors << (run.errors == 1 ? " error" : " errors") << ") in " << std::fixed
                  << std::setprecision(2) << seconds << "s\n";
    }
    std::cout.flush();
    if (run.errors > 0) return k_exit_usage;
    return run.findings > 0 ? k_exit_failed : k_exit_ok;
}

}  // namespace

int main(int argc, char** argv) {
    std::string socket_path = client::k_default_socket;
    if (const char* env = ::getenv("AIRLOCK_SOCKET")) socket_path = env;
    std::vector<std::string> args(argv + 1, argv + argc);
    std::size_t i = 0;
    while (i < args.size() && args[i].starts_with("-")) {
        if (args[i] == "--help" || args[i] == "-h") {
            std::cout << k_usage;
            return k_exit_ok;
        }
        if (args[i] == "--socket" && i + 1 < args.size()) {
            socket_path = args[i + 1];
            i += 2;
        } else if (args[i].starts_with("--socket=")) {
            socket_path = args[i].substr(9);
            ++i;
        } else {
            return usage_error("unknown option '" + args[i] + "'");
        }
    }
    if (i >= args.size()) {
        std::cerr << k_usage;
        return k_exit_usage;
    }
    const std::string command = args[i];
    std::vector<std::string> rest(args.begin() + static_cast<long>(i) + 1, args.end());
    try {
        if (command == "run") return cmd_run(socket_path, rest);
        if (command == "sessions") return cmd_list(socket_path, rest, true);
        if (command == "pending") return cmd_list(socket_path, rest, false);
        if (command == "approve") return cmd_decide(socket_path, rest, true);
        if (command == "deny") return cmd_decide(socket_path, rest, false);
        if (command == "watch") return cmd_watch(socket_path, rest);
        if (command == "status") return cmd_status(socket_path, rest);
        if (command == "audit") return cmd_audit(rest);
        if (command == "policy") return cmd_policy(rest);
        if (command == "scan") return cmd_scan(rest);
        if (command == "help") {
            std::cout << k_usage;
            return k_exit_ok;
        }
    } catch (const po::error& e) {
        return usage_error(command + ": " + e.what());
    }
    return usage_error("unknown command '" + command + "'");
}

}  // namespace airlock::cli

int main(int argc, char** argv) { return airlock::cli::main(argc, argv); }
