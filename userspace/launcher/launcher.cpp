#include "launcher/launcher.hpp"

#include <grp.h>
#include <pwd.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <fstream>
#include <future>
#include <iostream>
#include <sstream>
#include <thread>

#include "client/control_client.hpp"
#include "supervisor/seccomp_filter.hpp"

namespace airlock::launcher {
namespace {

bool looks_like_file(const std::string& p) {
    return p.find('/') != std::string::npos || p.ends_with(".yaml") || p.ends_with(".yml");
}

int complain(const std::string& what) {
    std::cerr << "airlock run: " << what << "\n";
    return k_exit_launch_failed;
}

int drop_to_user(const std::string& name) {
    passwd* pw = ::getpwnam(name.c_str());
    if (!pw) return complain("no such user '" + name + "'");
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0 || ::setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) != 0 ||
        ::setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) != 0)
        return complain("cannot switch to user '" + name + "': " + std::strerror(errno));
    ::setenv("HOME", pw->pw_dir, 1);
    ::setenv("USER", pw->pw_name, 1);
    ::setenv("LOGNAME", pw->pw_name, 1);
    return 0;
}

// An agent holds no capability, even when it runs as root: with them a root
// agent could send raw packets past the decided address, mknod devices under
// allowed names or load modules. Bounding set, ambient, inheritable,
// permitted and effective are all emptied; no_new_privs keeps exec from
// granting any back.
int drop_all_capabilities() {
    for (int cap = 0; cap <= 63; ++cap) {
        if (::prctl(PR_CAPBSET_READ, cap, 0, 0, 0) < 0) break;  // past the kernel's last capability
        // EPERM: no CAP_SETPCAP, i.e. an unprivileged launcher with nothing to drop.
        if (::prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 && errno != EINVAL && errno != EPERM)
            return complain(std::string("dropping capability bounding set: ") + std::strerror(errno));
    }
    ::prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    if (::syscall(SYS_capset, &header, data) != 0)
        return complain(std::string("dropping capabilities: ") + std::strerror(errno));
    return 0;
}

}  // namespace

int run(const RunOptions& options) {
    if (options.command.empty()) return complain("no command given (airlock run -- CMD [ARGS...])");
    auto client = client::ControlClient::connect(options.socket_path);
    if (!client) return complain(client.error().to_string());

    protocol::SessionCreateRequest create;
    create.argv = options.command;
    create.labels = options.labels;
    create.user = options.user;
    if (options.policy) {
        protocol::PolicyChoice choice;
        if (looks_like_file(*options.policy)) {
            std::ifstream in(*options.policy);
            if (!in) return complain("cannot read policy file " + *options.policy + ": " + std::strerror(errno));
            std::stringstream text;
            text << in.rdbuf();
            choice.text = text.str();
            char resolved[PATH_MAX];
            choice.file = ::realpath(options.policy->c_str(), resolved) ? resolved : *options.policy;
        } else {
            choice.name = *options.policy;
        }
        create.policy = choice;
    }
    auto created = client->call({std::nullopt, create});
    if (!created) return complain(created.error().to_string());
    if (!created->ok) return complain(created->error_message);
    const std::int64_t session = created->result.value("session", std::int64_t{0});

    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return complain("prctl(NO_NEW_PRIVS) failed");
    if (options.user)
        if (int rc = drop_to_user(*options.user); rc != 0) return rc;
    if (int rc = drop_all_capabilities(); rc != 0) return rc;

    auto program = supervisor::build_session_filter();
    if (!program) return complain("building seccomp filter: " + program.error().to_string());

    std::promise<int> listener_ready;
    std::promise<std::string> attach_result;
    std::thread sender([&] {
        int listener = listener_ready.get_future().get();
        if (listener < 0) {
            attach_result.set_value("filter not installed");
            return;
        }
        auto attached = client->call({std::nullopt, protocol::SessionAttachRequest{session}}, listener);
        if (!attached) attach_result.set_value(attached.error().to_string());
        else if (!attached->ok) attach_result.set_value(attached->error_message);
        else attach_result.set_value("");
    });
    auto listener = supervisor::install_filter(*program);
    listener_ready.set_value(listener ? listener->get() : -1);
    std::string attach_error = attach_result.get_future().get();
    sender.join();
    if (!listener) return complain("installing seccomp filter: " + listener.error().to_string());
    listener->reset();
    if (!attach_error.empty()) return complain("daemon refused the session: " + attach_error);
    client->close();  // the agent must not inherit a line to the daemon

    std::vector<char*> argv;
    for (const auto& a : options.command) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execvp(argv[0], argv.data());
    int err = errno;
    std::cerr << "airlock run: " << options.command[0] << ": " << std::strerror(err) << "\n";
    return err == ENOENT ? k_exit_not_found : k_exit_cannot_exec;
}

}  // namespace airlock::launcher
