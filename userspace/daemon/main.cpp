// airlockd: the supervising daemon. Runs with no configuration at all on its
// embedded defaults; every default can be overridden for isolated instances.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/program_options.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/sinks/syslog_sink.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <iostream>
#include <string>

#include "daemon/daemon.hpp"

namespace po = boost::program_options;

namespace {

constexpr int k_exit_usage = 2;

// Classic double fork, with a pipe so the parent exits only once the daemon is
// serving (or with its startup error), as daemon(7) asks.
int daemonize_and_run(airlock::daemon::DaemonConfig config) {
    int ready[2];
    if (::pipe2(ready, O_CLOEXEC) != 0) return 1;
    pid_t pid = ::fork();
    if (pid < 0) return 1;
    if (pid > 0) {
        ::close(ready[1]);
        char buf[4096];
        std::string message;
        ssize_t n;
        while ((n = ::read(ready[0], buf, sizeof buf)) > 0) message.append(buf, static_cast<std::size_t>(n));
        if (message == "ok") return 0;
        std::cerr << "airlockd: " << (message.empty() ? "failed to start" : message) << "\n";
        return 1;
    }
    ::close(ready[0]);
    ::setsid();
    if (::fork() > 0) ::_exit(0);
    spdlog::set_default_logger(spdlog::syslog_logger_mt("airlockd", "airlockd", LOG_PID, LOG_DAEMON));
    auto daemon = airlock::daemon::Daemon::create(std::move(config));
    if (!daemon) {
        std::string message = daemon.error().to_string();
        (void)!::write(ready[1], message.data(), message.size());
        ::_exit(1);
    }
    int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
    ::dup2(null, 0);
    ::dup2(null, 1);
    ::dup2(null, 2);
    (void)!::write(ready[1], "ok", 2);
    ::close(ready[1]);
    auto result = (*daemon)->run();
    if (!result) spdlog::critical("event loop failed: {}", result.error().to_string());
    return result ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    airlock::daemon::DaemonConfig config;
    po::options_description opts("airlockd options");
    opts.add_options()("help,h", "show this help")("version", "print the version")(
        "foreground", po::bool_switch(), "stay in the foreground and log to stderr")(
        "policy", po::value(&config.policy_file), "default policy file (default: the embedded policy)")(
        "policy-dir", po::value(&config.policy_dir)->default_value(config.policy_dir),
        "directory of named policies NAME.yaml")(
        "state-dir", po::value(&config.state_dir)->default_value(config.state_dir), "audit log and state")(
        "socket", po::value(&config.socket_path)->default_value(config.socket_path), "control socket path")(
        "cgroup-base", po::value(&config.cgroup_base),
        "cgroup (below the cgroup2 mount) for session cgroups (default: <own cgroup>/airlock)")(
        "allow-user-policies", po::bool_switch(&config.allow_user_policies),
        "let non-root users start sessions with their own policy file")(
        "kernel-layer", po::value<std::string>()->default_value("auto"),
        "auto: load the eBPF programs this kernel accepts (airlock status shows what runs); off: none")(
        "log-level", po::value<std::string>()->default_value("info"), "trace|debug|info|warn|error|critical|off");
    po::variables_map vm;
    try {
        po::store(po::parse_command_line(argc, argv, opts), vm);
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << "airlockd: " << e.what() << "\n" << opts;
        return k_exit_usage;
    }
    if (vm.count("help")) {
        std::cout << opts;
        return 0;
    }
    if (vm.count("version")) {
        std::cout << "airlockd " AIRLOCK_VERSION "\n";
        return 0;
    }
    auto level = spdlog::level::from_str(vm["log-level"].as<std::string>());
    if (level == spdlog::level::off && vm["log-level"].as<std::string>() != "off") {
        std::cerr << "airlockd: --log-level: unknown level '" << vm["log-level"].as<std::string>() << "'\n";
        return k_exit_usage;
    }
    if (const auto& layer = vm["kernel-layer"].as<std::string>(); layer == "off") {
        config.kernel_layer = airlock::daemon::DaemonConfig::KernelLayer::off;
    } else if (layer != "auto") {
        std::cerr << "airlockd: --kernel-layer: unknown value '" << layer << "' (auto or off)\n";
        return k_exit_usage;
    }
    if (::geteuid() != 0) {
        std::cerr << "airlockd: must run as root (it creates cgroups and acts on other processes)\n";
        return 1;
    }
    spdlog::set_level(level);
    if (!vm["foreground"].as<bool>()) return daemonize_and_run(std::move(config));

    spdlog::set_default_logger(spdlog::stderr_color_mt("airlockd"));
    spdlog::set_level(level);
    auto daemon = airlock::daemon::Daemon::create(std::move(config));
    if (!daemon) {
        spdlog::critical("cannot start: {}", daemon.error().to_string());
        return 1;
    }
    spdlog::info("airlockd {} ready", AIRLOCK_VERSION);
    auto result = (*daemon)->run();
    if (!result) {
        spdlog::critical("event loop failed: {}", result.error().to_string());
        return 1;
    }
    spdlog::info("airlockd stopped");
    return 0;
}
