// Unit tests for the parts of the supervisor that need no agent and no root:
// telling this host's own addresses from others (supervisor/local_address.hpp).
#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <netinet/in.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "policy/network.hpp"
#include "supervisor/exec_image.hpp"
#include "supervisor/local_address.hpp"

namespace airlock::supervisor {
namespace {

policy::IpAddress ip(const char* text) {
    auto address = policy::IpAddress::parse(text);
    if (!address) throw std::runtime_error(std::string("bad address in test: ") + text);
    return *address;
}

// Every address on this host's interfaces, as getifaddrs lists them.
std::vector<sockaddr_storage> interface_addresses() {
    std::vector<sockaddr_storage> out;
    ifaddrs* list = nullptr;
    if (::getifaddrs(&list) != 0) return out;
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || (i->ifa_addr->sa_family != AF_INET && i->ifa_addr->sa_family != AF_INET6)) continue;
        sockaddr_storage ss{};
        std::memcpy(&ss, i->ifa_addr,
                    i->ifa_addr->sa_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
        out.push_back(ss);
    }
    ::freeifaddrs(list);
    return out;
}

std::string text_of(const sockaddr_storage& ss) {
    char buffer[INET6_ADDRSTRLEN] = {};
    const void* raw = ss.ss_family == AF_INET
                          ? static_cast<const void*>(&reinterpret_cast<const sockaddr_in*>(&ss)->sin_addr)
                          : static_cast<const void*>(&reinterpret_cast<const sockaddr_in6*>(&ss)->sin6_addr);
    ::inet_ntop(ss.ss_family, raw, buffer, sizeof buffer);
    return buffer;
}

TEST(LocalAddresses, LoopbackIsLocal) {
    auto addresses = LocalAddresses::open();
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    for (const char* loopback : {"127.0.0.1", "127.0.0.2", "127.255.255.254", "::1", "::ffff:127.0.0.1"}) {
        auto local = addresses->is_local(ip(loopback));
        ASSERT_TRUE(local) << loopback << ": " << local.error().to_string();
        EXPECT_TRUE(*local) << loopback;
    }
    // The kernel routes an unspecified destination to this host.
    auto any = addresses->is_local(ip("0.0.0.0"));
    ASSERT_TRUE(any) << any.error().to_string();
    EXPECT_TRUE(*any);
}

TEST(LocalAddresses, EveryInterfaceAddressIsLocal) {
    auto addresses = LocalAddresses::open();
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    std::size_t non_loopback = 0;
    for (const auto& ss : interface_addresses()) {
        const socklen_t length = ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6);
        auto local = addresses->is_local(ss, length);
        ASSERT_TRUE(local) << text_of(ss) << ": " << local.error().to_string();
        EXPECT_TRUE(*local) << text_of(ss);
        const auto address = ip(text_of(ss).c_str());
        if (!policy::is_loopback(address)) ++non_loopback;
        if (ss.ss_family == AF_INET) {
            // Through a dual-stack socket it is the same destination.
            auto mapped = addresses->is_local(ip(("::ffff:" + text_of(ss)).c_str()));
            ASSERT_TRUE(mapped) << mapped.error().to_string();
            EXPECT_TRUE(*mapped) << "::ffff:" << text_of(ss);
        }
    }
    if (non_loopback == 0) GTEST_SKIP() << "no address on this host besides loopback";
}

// Documentation ranges (RFC 5737, RFC 3849) are nobody's, unless this host
// has one of them.
TEST(LocalAddresses, OtherHostsAreNotLocal) {
    auto addresses = LocalAddresses::open();
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    std::vector<std::string> own;
    for (const auto& ss : interface_addresses()) own.push_back(text_of(ss));
    for (const char* other : {"198.51.100.7", "203.0.113.9", "2001:db8::7", "::ffff:198.51.100.7"}) {
        if (std::find(own.begin(), own.end(), other) != own.end()) continue;
        auto local = addresses->is_local(ip(other));
        ASSERT_TRUE(local) << other << ": " << local.error().to_string();
        EXPECT_FALSE(*local) << other;
    }
}

TEST(LocalAddresses, OtherFamiliesAreNotLocal) {
    auto addresses = LocalAddresses::open();
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    sockaddr_storage unix_address{};
    unix_address.ss_family = AF_UNIX;
    auto local = addresses->is_local(unix_address, sizeof unix_address);
    ASSERT_TRUE(local);
    EXPECT_FALSE(*local);
    // A sockaddr too short for its family carries no address.
    sockaddr_storage short_v4{};
    short_v4.ss_family = AF_INET;
    auto truncated = addresses->is_local(short_v4, sizeof(sa_family_t));
    ASSERT_TRUE(truncated);
    EXPECT_FALSE(*truncated);
}

TEST(LocalAddresses, OpensInANamedNetworkNamespace) {
    // Its own namespace, entered from another thread: the same answers.
    const int netns = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(netns, 0);
    auto addresses = LocalAddresses::open_in(netns);
    ::close(netns);
    if (!addresses && addresses.error().code == EPERM) GTEST_SKIP() << "setns needs CAP_SYS_ADMIN";
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    auto local = addresses->is_local(ip("127.0.0.1"));
    ASSERT_TRUE(local);
    EXPECT_TRUE(*local);
    auto other = addresses->is_local(ip("198.51.100.7"));
    ASSERT_TRUE(other) << other.error().to_string();
    EXPECT_FALSE(*other);
    // Not an fd of a namespace: an error, never an answer.
    EXPECT_FALSE(LocalAddresses::open_in(-1));
}

TEST(LocalAddresses, ManyLookupsOnOneSocketStayInStep) {
    auto addresses = LocalAddresses::open();
    ASSERT_TRUE(addresses) << addresses.error().to_string();
    const auto own = interface_addresses();
    for (int i = 0; i < 2000; ++i) {
        auto other = addresses->is_local(ip("198.51.100.7"));
        ASSERT_TRUE(other) << i << ": " << other.error().to_string();
        ASSERT_FALSE(*other) << i;
        for (const auto& ss : own) {
            auto local = addresses->is_local(ss, ss.ss_family == AF_INET ? sizeof(sockaddr_in) : sizeof(sockaddr_in6));
            ASSERT_TRUE(local && *local) << i << " " << text_of(ss);
        }
    }
}

}  // namespace
}  // namespace airlock::supervisor

// ---- what an exec will load (supervisor/exec_image.hpp), as binfmt_script reads "#!" ----

namespace airlock::supervisor {
namespace {

TEST(Shebang, InterpreterAndOneArgumentAsTheKernelSplitsThem) {
    auto s = parse_shebang("#!/bin/sh -e -x\necho hi\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interpreter, "/bin/sh");
    ASSERT_TRUE(s->argument);
    EXPECT_EQ(*s->argument, "-e -x");  // one argument, inner spaces kept
    s = parse_shebang("#! \t/usr/bin/env   python3  \t\r\n");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interpreter, "/usr/bin/env");
    EXPECT_EQ(*s->argument, "python3  \t\r");  // only spaces and tabs are trimmed
    s = parse_shebang("#!/bin/true");
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interpreter, "/bin/true");
    EXPECT_FALSE(s->argument);
    s = parse_shebang(std::string("#!/bin/x \0tail\n", 15));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interpreter, "/bin/x");
    ASSERT_TRUE(s->argument);
    EXPECT_EQ(*s->argument, "") << "the argument starts at the NUL: the kernel passes an empty one";
}

TEST(Shebang, WhatTheKernelRefusesIsNotAScript) {
    EXPECT_FALSE(parse_shebang("\x7f" "ELF\x02\x01"));
    EXPECT_FALSE(parse_shebang("#/bin/sh\n"));
    EXPECT_FALSE(parse_shebang("#!\n"));
    EXPECT_FALSE(parse_shebang("#!   \t \n"));
    EXPECT_FALSE(parse_shebang(""));
    // No newline in 256 bytes and no space after the name: the name may be cut off.
    EXPECT_FALSE(parse_shebang("#!" + std::string(300, 'a')));
    // ...but with a space after it the line is just long: the argument is cut at 255 bytes.
    auto s = parse_shebang("#!/bin/sh " + std::string(300, 'a'));
    ASSERT_TRUE(s);
    EXPECT_EQ(s->interpreter, "/bin/sh");
    EXPECT_EQ(s->argument->size(), k_shebang_bytes - 1 - std::string("#!/bin/sh ").size());
}

TEST(Shebang, ArgvIsRewrittenAsBinfmtScriptDoes) {
    Shebang s{"/bin/sh", std::string("-e")};
    EXPECT_EQ(script_argv(s, "./run.sh", {"run.sh", "a", "b"}),
              (std::vector<std::string>{"/bin/sh", "-e", "./run.sh", "a", "b"}));
    Shebang bare{"/usr/bin/env", std::nullopt};
    EXPECT_EQ(script_argv(bare, "/dev/fd/3", {}), (std::vector<std::string>{"/usr/bin/env", "/dev/fd/3"}));
    EXPECT_EQ(kernel_exec_filename("x.sh", AT_FDCWD), "x.sh");
    EXPECT_EQ(kernel_exec_filename("/abs/x.sh", 5), "/abs/x.sh");
    EXPECT_EQ(kernel_exec_filename("rel/x.sh", 5), "/dev/fd/5/rel/x.sh");
    EXPECT_EQ(kernel_exec_filename("", 7), "/dev/fd/7");
    EXPECT_EQ(argv_bytes({"a", "bc"}), std::string("a\0bc\0", 5));
    EXPECT_EQ(argv_bytes({}), std::string(1, '\0')) << "Linux 5.18+ gives an empty argv one empty string";
}

}  // namespace
}  // namespace airlock::supervisor
