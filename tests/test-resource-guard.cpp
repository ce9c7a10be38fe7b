// The resource guard: readings parsed from a fake /proc and /sys root, the ok / throttled /
// critical state machine with hysteresis, size parsing and the fits-check.
#include "byte-size.h"
#include "resource-guard.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fs = std::filesystem;
using namespace hearth;

namespace {

constexpr uint64_t KiB = 1024, MiB = 1024 * KiB, GiB = 1024 * MiB;

// Copied from this machine (Debian 12, 24 GiB), trimmed.
const char* const real_meminfo =
    "MemTotal:       24683620 kB\n"
    "MemFree:        20763556 kB\n"
    "MemAvailable:   23242192 kB\n"
    "Buffers:            5152 kB\n"
    "Cached:          2546884 kB\n"
    "SwapCached:            0 kB\n"
    "Active:          1013012 kB\n"
    "Inactive:        2534348 kB\n"
    "SwapTotal:             0 kB\n"
    "SwapFree:              0 kB\n"
    "Dirty:              7000 kB\n"
    "HugePages_Total:       0\n"
    "Hugepagesize:       2048 kB\n";
const char* const real_psi_idle =
    "some avg10=0.00 avg60=0.00 avg300=0.00 total=0\n"
    "full avg10=0.00 avg60=0.00 avg300=0.00 total=0\n";
const char* const psi_pressured =
    "some avg10=31.52 avg60=12.07 avg300=3.10 total=81726354\n"
    "full avg10=12.25 avg60=4.00 avg300=1.02 total=2736451\n";
// This machine: cgroup v1 memory controller, plus the empty v2 hierarchy of a hybrid host.
const char* const real_cgroup_v1 =
    "9:name=systemd:/\n"
    "8:pids:/\n"
    "7:blkio:/\n"
    "6:freezer:/\n"
    "5:devices:/\n"
    "4:memory:/process_api/d820e09e77c13467c12b46fdbbc28255\n"
    "3:cpuset:/\n"
    "2:cpuacct:/\n"
    "1:cpu:/\n"
    "0::/\n";
const char* const v1_dir = "sys/fs/cgroup/memory/process_api/d820e09e77c13467c12b46fdbbc28255";
const char* const cgroup_v2 = "0::/user.slice/user-1000.slice/session-3.scope\n";
const char* const v2_dir = "sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope";
const char* const real_status =
    "Name:\thearth-worker\n"
    "Umask:\t0022\n"
    "State:\tR (running)\n"
    "Pid:\t5325\n"
    "VmPeak:\t  123456 kB\n"
    "VmSize:\t  120000 kB\n"
    "VmHWM:\t    4096 kB\n"
    "VmRSS:\t    2192 kB\n"
    "RssAnon:\t     256 kB\n"
    "Threads:\t1\n";

class fake_root : public ::testing::Test {
protected:
    void SetUp() override {
        std::string tmpl = (fs::temp_directory_path() / "hearth-guard-XXXXXX").string();
        ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
        root_ = tmpl;
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(root_, ec);
    }
    void write(const std::string& rel, const std::string& text) {
        fs::path p = fs::path(root_) / rel;
        fs::create_directories(p.parent_path());
        std::ofstream(p, std::ios::binary) << text;
    }
    void write_all_real() {
        write("proc/meminfo", real_meminfo);
        write("proc/pressure/memory", real_psi_idle);
        write("proc/self/cgroup", real_cgroup_v1);
        write(std::string(v1_dir) + "/memory.usage_in_bytes", "2699264\n");
        write(std::string(v1_dir) + "/memory.limit_in_bytes", "9223372036854771712\n");
        write("proc/self/status", real_status);
    }
    guard_readings sample(uint64_t budget = 0) {
        guard_options o;
        o.root = root_;
        o.memory_budget = budget;
        guard_readings r;
        EXPECT_NO_THROW(r = guard_sample(o));
        return r;
    }
    std::string root_;  // the temp directory standing in for "/"
};

// Readings with only the system memory fraction known.
guard_readings with_fraction(double f) {
    guard_readings r;
    r.mem_total = 1'000'000'000;
    r.mem_available = static_cast<uint64_t>(f * 1e9);
    return r;
}

}  // namespace

TEST_F(fake_root, real_formats_parse) {
    write_all_real();
    guard_readings r = sample(512 * MiB);
    EXPECT_EQ(r.problems, "");
    ASSERT_TRUE(r.mem_total && r.mem_available);
    EXPECT_EQ(*r.mem_total, 24683620 * KiB);
    EXPECT_EQ(*r.mem_available, 23242192 * KiB);
    EXPECT_NEAR(*r.system_fraction(), 23242192.0 / 24683620.0, 1e-12);
    ASSERT_TRUE(r.psi_some_avg10 && r.psi_full_avg10);
    EXPECT_EQ(*r.psi_some_avg10, 0.0);
    EXPECT_EQ(*r.psi_full_avg10, 0.0);
    EXPECT_EQ(r.cgroup_version, 1);
    EXPECT_EQ(r.cgroup_dir, root_ + "/" + v1_dir);
    EXPECT_EQ(r.cgroup_current, std::optional<uint64_t>(2699264));
    EXPECT_EQ(r.cgroup_limit, std::optional<uint64_t>(guard_unlimited));
    EXPECT_FALSE(r.cgroup_fraction());
    EXPECT_EQ(r.rss, std::optional<uint64_t>(2192 * KiB));
    EXPECT_EQ(r.memory_budget, 512 * MiB);
    std::string d = guard_readings_describe(r);
    EXPECT_NE(d.find("cgroup v1"), std::string::npos) << d;
    EXPECT_NE(d.find("limit none"), std::string::npos) << d;
    EXPECT_NE(d.find("budget 512 MiB"), std::string::npos) << d;
}

TEST_F(fake_root, psi_values_and_trailing_slash_root) {
    write("proc/pressure/memory", psi_pressured);
    guard_options o;
    o.root = root_ + "/";
    guard_readings r = guard_sample(o);
    EXPECT_DOUBLE_EQ(r.psi_some_avg10.value_or(-1), 31.52);
    EXPECT_DOUBLE_EQ(r.psi_full_avg10.value_or(-1), 12.25);
}

TEST_F(fake_root, cgroup_v1_with_limit) {
    write_all_real();
    write(std::string(v1_dir) + "/memory.limit_in_bytes", "2147483648\n");
    write(std::string(v1_dir) + "/memory.usage_in_bytes", "1610612736\n");
    guard_readings r = sample();
    EXPECT_EQ(r.cgroup_limit, std::optional<uint64_t>(2 * GiB));
    EXPECT_EQ(r.cgroup_current, std::optional<uint64_t>(1536 * MiB));
    EXPECT_DOUBLE_EQ(r.cgroup_fraction().value_or(-1), 0.25);
}

TEST_F(fake_root, cgroup_v1_memory_among_other_controllers) {
    write("proc/self/cgroup", "3:cpu,memory,pids:/job\n");
    write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", "100\n");
    write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", "400\n");
    guard_readings r = sample();
    EXPECT_EQ(r.cgroup_version, 1);
    EXPECT_DOUBLE_EQ(r.cgroup_fraction().value_or(-1), 0.75);
}

TEST_F(fake_root, cgroup_v2_max_and_value) {
    write("proc/self/cgroup", cgroup_v2);
    write(std::string(v2_dir) + "/memory.current", "734003200\n");
    write(std::string(v2_dir) + "/memory.max", "max\n");
    guard_readings r = sample();
    EXPECT_EQ(r.cgroup_version, 2);
    EXPECT_EQ(r.cgroup_dir, root_ + "/" + v2_dir);
    EXPECT_EQ(r.cgroup_current, std::optional<uint64_t>(700 * MiB));
    EXPECT_EQ(r.cgroup_limit, std::optional<uint64_t>(guard_unlimited));
    EXPECT_FALSE(r.cgroup_fraction());

    write(std::string(v2_dir) + "/memory.max", "1073741824\n");
    r = sample();
    EXPECT_EQ(r.cgroup_limit, std::optional<uint64_t>(GiB));
    EXPECT_NEAR(r.cgroup_fraction().value_or(-1), 324.0 / 1024.0, 1e-12);
}

TEST_F(fake_root, cgroup_v2_root_and_container_fallback) {
    // "0::/" reads the mount root itself (a container with its own cgroup namespace).
    write("proc/self/cgroup", "0::/\n");
    write("sys/fs/cgroup/memory.current", "5\n");
    write("sys/fs/cgroup/memory.max", "10\n");
    guard_readings r = sample();
    EXPECT_EQ(r.cgroup_dir, root_ + "/sys/fs/cgroup");
    EXPECT_EQ(r.cgroup_current, std::optional<uint64_t>(5));
    // A host path that does not exist under the mount: the container sees its cgroup at the root.
    write("proc/self/cgroup", "0::/docker/abc123\n");
    r = sample();
    EXPECT_EQ(r.cgroup_dir, root_ + "/sys/fs/cgroup");
    EXPECT_EQ(r.cgroup_limit, std::optional<uint64_t>(10));
}

TEST_F(fake_root, missing_everything_is_unknown_with_reasons) {
    guard_readings r = sample();
    EXPECT_FALSE(r.mem_total || r.mem_available || r.psi_some_avg10 || r.psi_full_avg10 || r.cgroup_current ||
                 r.cgroup_limit || r.rss);
    EXPECT_EQ(r.cgroup_version, 0);
    EXPECT_NE(r.problems.find("cannot open " + root_ + "/proc/meminfo"), std::string::npos) << r.problems;
    EXPECT_NE(r.problems.find("/proc/pressure/memory"), std::string::npos) << r.problems;
    EXPECT_NE(r.problems.find("/proc/self/cgroup"), std::string::npos) << r.problems;
    EXPECT_NE(r.problems.find("/proc/self/status"), std::string::npos) << r.problems;
    std::string d = guard_readings_describe(r);
    EXPECT_NE(d.find("MemAvailable unknown"), std::string::npos) << d;
}

TEST_F(fake_root, directory_instead_of_file) {
    fs::create_directories(fs::path(root_) / "proc/meminfo");
    guard_readings r = sample();
    EXPECT_FALSE(r.mem_total);
    EXPECT_NE(r.problems.find("cannot read " + root_ + "/proc/meminfo"), std::string::npos) << r.problems;
}

TEST_F(fake_root, cgroup_files_missing_but_listed) {
    write("proc/self/cgroup", real_cgroup_v1);
    guard_readings r = sample();
    EXPECT_EQ(r.cgroup_version, 1);
    EXPECT_FALSE(r.cgroup_current || r.cgroup_limit);
    EXPECT_NE(r.problems.find("memory.usage_in_bytes"), std::string::npos) << r.problems;
}

struct bad_file_case {
    const char* file;     // relative to the root
    std::string text;     // its contents
    const char* problem;  // expected in problems
};

TEST_F(fake_root, malformed_files_give_unknown_not_throw) {
    const std::vector<bad_file_case> cases = {
        {"proc/meminfo", "", "MemTotal missing"},
        {"proc/meminfo", "MemTotal:       abc kB\nMemAvailable: 1 kB\n", "MemTotal in"},
        {"proc/meminfo", "MemTotal:", "no kB value"},
        {"proc/meminfo", "MemTotal:       24683620", "no kB value"},
        {"proc/meminfo", "MemTotal:       -5 kB\n", "is not a number"},
        {"proc/meminfo", "MemTotal:       99999999999999999999999 kB\n", "is not a number"},
        {"proc/meminfo", "MemTotal:       18446744073709551 kB\n", "overflows"},
        {"proc/meminfo", "MemTotal:       0 kB\nMemAvailable: 0 kB\n", "MemTotal is 0"},
        {"proc/meminfo", std::string("\0\xff\x01garbage\n\n::::\n", 16), "MemTotal missing"},
        {"proc/meminfo", std::string(100000, 'x'), "MemTotal missing"},
    };
    for (const auto& c : cases) {
        write(c.file, c.text);
        guard_readings r = sample();
        EXPECT_FALSE(r.mem_total) << c.text;
        EXPECT_FALSE(r.system_fraction()) << c.text;
        EXPECT_NE(r.problems.find(c.problem), std::string::npos) << c.text << " -> " << r.problems;
    }
    write("proc/meminfo", "MemTotal: 100 kB\nMemAvailable: 200 kB\n");
    guard_readings r = sample();
    EXPECT_FALSE(r.mem_available);
    EXPECT_NE(r.problems.find("exceeds"), std::string::npos) << r.problems;
}

TEST_F(fake_root, malformed_psi) {
    const std::vector<std::pair<std::string, const char*>> cases = {
        {"", "some line missing"},
        {"some avg10=", "some avg10 in"},
        {"some avg10=-1.00 avg60=0.00\nfull avg10=0.00\n", "some avg10 in"},
        {"some avg10=nan avg60=0.00\nfull avg10=0.00\n", "some avg10 in"},
        {"some avg10=250.0 avg60=0.00\nfull avg10=0.00\n", "some avg10 in"},
        {"some avg60=1.00\nfull avg10=0.00\n", "some avg10 in"},
        {"something avg10=5\nfull avg10=0.00\n", "some line missing"},
        {"\x01\x02 garbage", "some line missing"},
    };
    for (const auto& [text, problem] : cases) {
        write("proc/pressure/memory", text);
        guard_readings r = sample();
        EXPECT_FALSE(r.psi_some_avg10) << text;
        EXPECT_NE(r.problems.find(problem), std::string::npos) << text << " -> " << r.problems;
    }
    write("proc/pressure/memory", "some avg10=1.50 avg60=0.00 avg300=0.00 total=0\n");
    guard_readings r = sample();
    EXPECT_DOUBLE_EQ(r.psi_some_avg10.value_or(-1), 1.5);
    EXPECT_FALSE(r.psi_full_avg10);  // older kernels had no "full" line for memory
    EXPECT_NE(r.problems.find("full line missing"), std::string::npos) << r.problems;
}

TEST_F(fake_root, malformed_cgroup) {
    const std::vector<std::pair<std::string, const char*>> cases = {
        {"", "no memory cgroup"},
        {"hello world\n", "no memory cgroup"},
        {"4:memory\n", "no memory cgroup"},
        {"4:memory:relative/path\n", "unusable cgroup path"},
        {"4:memory:/../../../etc\n", "unusable cgroup path"},
        {"0::/a/../../b\n", "unusable cgroup path"},
    };
    for (const auto& [text, problem] : cases) {
        write("proc/self/cgroup", text);
        guard_readings r = sample();
        EXPECT_FALSE(r.cgroup_current || r.cgroup_limit) << text;
        EXPECT_NE(r.problems.find(problem), std::string::npos) << text << " -> " << r.problems;
    }
    write("proc/self/cgroup", "4:memory:/job\n");
    const std::vector<std::pair<std::string, std::string>> values = {
        {"-1\n", "max\n"},  // v1 has no "max"
        {"", "12abc"},
        {"99999999999999999999999", " "},
    };
    for (const auto& [usage, limit] : values) {
        write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", usage);
        write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", limit);
        guard_readings r = sample();
        EXPECT_FALSE(r.cgroup_current) << usage;
        EXPECT_FALSE(r.cgroup_limit) << limit;
        EXPECT_NE(r.problems.find("not a number"), std::string::npos) << r.problems;
    }
    write("sys/fs/cgroup/memory/job/memory.usage_in_bytes", "1");
    write("sys/fs/cgroup/memory/job/memory.limit_in_bytes", "0");
    guard_readings r = sample();
    EXPECT_FALSE(r.cgroup_limit);
    EXPECT_NE(r.problems.find("cgroup limit is 0"), std::string::npos) << r.problems;
}

TEST_F(fake_root, malformed_status) {
    write("proc/self/status", "Name:\tx\nVmRSS:\n");
    EXPECT_FALSE(sample().rss);
    write("proc/self/status", "Name:\tx\n");
    guard_readings r = sample();
    EXPECT_FALSE(r.rss);
    EXPECT_NE(r.problems.find("VmRSS missing"), std::string::npos) << r.problems;
}

TEST(resource_guard, real_machine_sample) {
    guard_readings r;
    ASSERT_NO_THROW(r = guard_sample(guard_options{}));
    ASSERT_TRUE(r.mem_total) << r.problems;
    EXPECT_GT(*r.mem_total, 0u);
    ASSERT_TRUE(r.rss) << r.problems;
    EXPECT_GT(*r.rss, 0u);
    resource_guard g;
    EXPECT_NO_THROW(g.poll());
    EXPECT_TRUE(g.last().mem_total);
}

TEST(resource_guard, state_names) {
    EXPECT_EQ(guard_state_name(guard_state::ok), "ok");
    EXPECT_EQ(guard_state_name(guard_state::throttled), "throttled");
    EXPECT_EQ(guard_state_name(guard_state::critical), "critical");
}

TEST(resource_guard, options_are_checked) {
    guard_options o;
    o.critical_fraction = 0.3;
    EXPECT_THROW(resource_guard{o}, std::invalid_argument);
    o = {};
    o.recover_samples = 0;
    EXPECT_THROW(resource_guard{o}, std::invalid_argument);
    o = {};
    o.budget_throttle = 1.2;
    EXPECT_THROW(resource_guard{o}, std::invalid_argument);
    EXPECT_NO_THROW(resource_guard{guard_options{}});
}

// Feeds `r` n times and expects `s` after each.
#define FEED(g, r, n, s)                                                             \
    for (int i_ = 0; i_ < (n); ++i_)                                                 \
        ASSERT_EQ((g).update(r), (s)) << "sample " << i_ << ": " << (g).reason()

TEST(resource_guard, transitions_by_memory_fraction) {
    resource_guard g;
    FEED(g, with_fraction(0.50), 2, guard_state::ok);
    EXPECT_EQ(g.reason(), "");
    FEED(g, with_fraction(0.10), 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "MemAvailable 10% < 15%");
    FEED(g, with_fraction(0.04), 1, guard_state::critical);
    EXPECT_EQ(g.reason(), "MemAvailable 4% < 5%");
    // Above the critical threshold but not by the margin: stays.
    FEED(g, with_fraction(0.08), 5, guard_state::critical);
    EXPECT_EQ(g.reason(), "MemAvailable 8% not yet above 10%");
    // Cleared: needs three samples.
    FEED(g, with_fraction(0.12), 2, guard_state::critical);
    EXPECT_NE(g.reason().find("clear for 2 of 3"), std::string::npos) << g.reason();
    FEED(g, with_fraction(0.12), 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "MemAvailable 12% < 15%");
    FEED(g, with_fraction(0.18), 5, guard_state::throttled);
    FEED(g, with_fraction(0.25), 2, guard_state::throttled);
    FEED(g, with_fraction(0.25), 1, guard_state::ok);
    EXPECT_EQ(g.reason(), "");
}

TEST(resource_guard, recovery_steps_down_one_state_at_a_time) {
    resource_guard g;
    FEED(g, with_fraction(0.01), 1, guard_state::critical);
    FEED(g, with_fraction(0.90), 2, guard_state::critical);
    FEED(g, with_fraction(0.90), 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "recovering from critical");
    FEED(g, with_fraction(0.90), 2, guard_state::throttled);
    FEED(g, with_fraction(0.90), 1, guard_state::ok);
}

TEST(resource_guard, hysteresis_does_not_flap) {
    resource_guard g;
    // Around the entry threshold, from ok: 16% never throttles, the first 14% does, and then
    // oscillating never clears the margin.
    FEED(g, with_fraction(0.16), 3, guard_state::ok);
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(g.update(with_fraction(i % 2 ? 0.16 : 0.14)), guard_state::throttled) << i;
    }
    // Around the exit threshold (20%): a dip below it restarts the count.
    for (int i = 0; i < 21; ++i) {
        ASSERT_EQ(g.update(with_fraction(i % 3 == 2 ? 0.19 : 0.21)), guard_state::throttled) << i;
    }
    FEED(g, with_fraction(0.21), 2, guard_state::throttled);
    FEED(g, with_fraction(0.21), 1, guard_state::ok);
    // The same around the critical threshold.
    for (int i = 0; i < 20; ++i) {
        ASSERT_EQ(g.update(with_fraction(i % 2 ? 0.051 : 0.049)), guard_state::critical) << i;
    }
}

TEST(resource_guard, transitions_by_psi) {
    resource_guard g;
    guard_readings r;
    r.psi_some_avg10 = 19.9;
    r.psi_full_avg10 = 0;
    FEED(g, r, 2, guard_state::ok);
    r.psi_some_avg10 = 25;
    FEED(g, r, 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "PSI some avg10 25 > 20");
    r.psi_full_avg10 = 12.5;
    FEED(g, r, 1, guard_state::critical);
    EXPECT_EQ(g.reason(), "PSI full avg10 12.5 > 10");
    r.psi_full_avg10 = 7;  // below 10 but not below 5
    FEED(g, r, 5, guard_state::critical);
    r.psi_full_avg10 = 4;
    FEED(g, r, 2, guard_state::critical);
    FEED(g, r, 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "PSI some avg10 25 > 20");
    r.psi_some_avg10 = 17;  // below 20 but not below 15
    FEED(g, r, 5, guard_state::throttled);
    r.psi_some_avg10 = 14;
    FEED(g, r, 2, guard_state::throttled);
    FEED(g, r, 1, guard_state::ok);
    // Oscillating around the threshold once throttled stays throttled.
    r.psi_some_avg10 = 21;
    FEED(g, r, 1, guard_state::throttled);
    for (int i = 0; i < 12; ++i) {
        r.psi_some_avg10 = i % 2 ? 19 : 21;
        ASSERT_EQ(g.update(r), guard_state::throttled) << i;
    }
}

TEST(resource_guard, transitions_by_cgroup_headroom) {
    resource_guard g;
    guard_readings r = with_fraction(0.9);  // the machine has plenty; the cgroup is tighter
    r.cgroup_limit = 1000 * MiB;
    r.cgroup_current = 500 * MiB;
    FEED(g, r, 2, guard_state::ok);
    r.cgroup_current = 900 * MiB;  // 10% headroom
    FEED(g, r, 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "cgroup headroom 10% < 15%");
    r.cgroup_current = 970 * MiB;
    FEED(g, r, 1, guard_state::critical);
    r.cgroup_current = 1100 * MiB;  // over the limit: headroom 0, still critical
    FEED(g, r, 1, guard_state::critical);
    EXPECT_EQ(g.reason(), "cgroup headroom 0% < 5%");
    r.cgroup_current = 880 * MiB;  // 12%: clears critical by the margin
    FEED(g, r, 2, guard_state::critical);
    FEED(g, r, 1, guard_state::throttled);
    r.cgroup_current = 700 * MiB;
    FEED(g, r, 2, guard_state::throttled);
    FEED(g, r, 1, guard_state::ok);
    // An unlimited cgroup never throttles.
    r.cgroup_limit = guard_unlimited;
    r.cgroup_current = 100 * GiB;
    FEED(g, r, 3, guard_state::ok);
}

TEST(resource_guard, transitions_by_rss_against_budget) {
    guard_options o;
    o.memory_budget = 1000 * MiB;
    resource_guard g(o);
    guard_readings r;
    r.rss = 899 * MiB;
    FEED(g, r, 2, guard_state::ok);
    r.rss = 950 * MiB;
    FEED(g, r, 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "RSS 950 MiB > 90% of budget 1000 MiB");
    r.rss = 1010 * MiB;
    FEED(g, r, 1, guard_state::critical);
    r.rss = 950 * MiB;  // below the budget, not below 90% of it
    FEED(g, r, 5, guard_state::critical);
    r.rss = 850 * MiB;
    FEED(g, r, 2, guard_state::critical);
    FEED(g, r, 1, guard_state::throttled);
    FEED(g, r, 4, guard_state::throttled);  // 85% is not below 80%
    r.rss = 700 * MiB;
    FEED(g, r, 2, guard_state::throttled);
    FEED(g, r, 1, guard_state::ok);
    // Without a budget RSS is no signal.
    resource_guard free_guard;
    r.rss = 100 * GiB;
    FEED(free_guard, r, 3, guard_state::ok);
}

TEST(resource_guard, worst_signal_wins_and_all_must_clear) {
    guard_options o;
    o.memory_budget = 1000 * MiB;
    resource_guard g(o);
    guard_readings r = with_fraction(0.10);
    r.psi_full_avg10 = 20;
    r.rss = 100 * MiB;
    FEED(g, r, 1, guard_state::critical);
    EXPECT_EQ(g.reason(), "PSI full avg10 20 > 10");
    r.psi_full_avg10 = 0;  // memory fraction still holds throttled
    FEED(g, r, 2, guard_state::critical);
    FEED(g, r, 1, guard_state::throttled);
    EXPECT_EQ(g.reason(), "MemAvailable 10% < 15%");
    FEED(g, r, 10, guard_state::throttled);
}

TEST(resource_guard, unknown_readings_are_no_evidence) {
    resource_guard g;
    FEED(g, with_fraction(0.04), 1, guard_state::critical);
    guard_readings none;
    none.problems = "cannot open /proc/meminfo";
    FEED(g, none, 20, guard_state::critical);  // the file vanished: no reason to relax
    EXPECT_NE(g.reason().find("(last known)"), std::string::npos) << g.reason();
    EXPECT_EQ(g.last().problems, "cannot open /proc/meminfo");
    // Unknown samples neither count toward recovery nor reset it.
    FEED(g, with_fraction(0.5), 2, guard_state::critical);
    FEED(g, none, 1, guard_state::critical);
    FEED(g, with_fraction(0.5), 1, guard_state::throttled);
    // A fresh PSI reading does not count while MemAvailable is only last known.
    guard_readings psi_only;
    psi_only.psi_some_avg10 = 0;
    FEED(g, psi_only, 10, guard_state::throttled);
    // A reading never seen is ignored.
    resource_guard g2;
    FEED(g2, none, 5, guard_state::ok);
    guard_readings p;
    p.psi_some_avg10 = 30;
    FEED(g2, p, 1, guard_state::throttled);
    p.psi_some_avg10 = 0;
    FEED(g2, p, 2, guard_state::throttled);
    FEED(g2, p, 1, guard_state::ok);
}

TEST(resource_guard, readings_unknown_too_long_are_forgotten) {
    guard_options o;
    o.stale_limit = 5;
    resource_guard g(o);
    FEED(g, with_fraction(0.04), 1, guard_state::critical);
    guard_readings none;
    FEED(g, none, 4, guard_state::critical);
    // Forgotten on the fifth: from then on nothing holds the state, so it recovers normally.
    FEED(g, none, 2, guard_state::critical);
    FEED(g, none, 1, guard_state::throttled);
    FEED(g, none, 2, guard_state::throttled);
    FEED(g, none, 1, guard_state::ok);
}

TEST_F(fake_root, poll_drives_the_state_from_files) {
    write_all_real();
    write("proc/self/cgroup", cgroup_v2);
    write(std::string(v2_dir) + "/memory.max", "1073741824\n");
    write(std::string(v2_dir) + "/memory.current", "1048576000\n");  // 2.3% headroom
    guard_options o;
    o.root = root_;
    resource_guard g(o);
    EXPECT_EQ(g.poll(), guard_state::critical);
    EXPECT_EQ(g.reason(), "cgroup headroom 2.3% < 5%");
    write(std::string(v2_dir) + "/memory.current", "536870912\n");
    for (int i = 0; i < 3; ++i) g.poll();
    EXPECT_EQ(g.state(), guard_state::throttled);
    for (int i = 0; i < 3; ++i) g.poll();
    EXPECT_EQ(g.state(), guard_state::ok);
    EXPECT_EQ(g.last().cgroup_current, std::optional<uint64_t>(512 * MiB));
}

TEST(resource_guard, size_parse) {
    EXPECT_EQ(byte_size_parse("512M"), 512 * MiB);
    EXPECT_EQ(byte_size_parse("512m"), 512 * MiB);
    EXPECT_EQ(byte_size_parse("512MiB"), 512 * MiB);
    EXPECT_EQ(byte_size_parse("512mib"), 512 * MiB);
    EXPECT_EQ(byte_size_parse("4096"), 4096u);
    EXPECT_EQ(byte_size_parse("4096B"), 4096u);
    EXPECT_EQ(byte_size_parse("0"), 0u);
    EXPECT_EQ(byte_size_parse("1k"), 1024u);
    EXPECT_EQ(byte_size_parse("1KiB"), 1024u);
    EXPECT_EQ(byte_size_parse("2G"), 2 * GiB);
    EXPECT_EQ(byte_size_parse("2GIB"), 2 * GiB);
    EXPECT_EQ(byte_size_parse("1T"), 1024 * GiB);
    EXPECT_EQ(byte_size_parse("1.5G"), 1536 * MiB);
    EXPECT_EQ(byte_size_parse(" 64 MiB "), 64 * MiB);
    EXPECT_EQ(byte_size_parse("16777215T"), uint64_t{16777215} << 40);
    EXPECT_EQ(byte_size_parse("18446744073709551615"), UINT64_MAX);
    for (const char* bad : {"", " ", "M", "12X", "-1G", "+1G", "1.5", "1.G", ".5G", "16777216T",
                            "18446744073709551616", "1e9", "1 2M", "1MB", "0x10", "12M!"}) {
        try {
            byte_size_parse(bad);
            ADD_FAILURE() << "accepted '" << bad << "'";
        } catch (const std::invalid_argument& e) {
            std::string quoted = std::string("'") + bad + "'";
            EXPECT_NE(std::string(e.what()).find(quoted), std::string::npos) << e.what();
            EXPECT_NE(std::string(e.what()).find("512M"), std::string::npos) << e.what();
        }
    }
}

TEST(resource_guard, size_format) {
    EXPECT_EQ(byte_size_format(0), "0 B");
    EXPECT_EQ(byte_size_format(1023), "1023 B");
    EXPECT_EQ(byte_size_format(1024), "1 KiB");
    EXPECT_EQ(byte_size_format(900 * MiB), "900 MiB");
    EXPECT_EQ(byte_size_format(1200 * MiB), "1.2 GiB");
    EXPECT_EQ(byte_size_format(GiB - 1), "1 GiB");
}

TEST(resource_guard, fit_check_messages) {
    guard_readings r;
    r.mem_total = 24 * GiB;
    r.mem_available = 20 * GiB;
    r.cgroup_limit = GiB;
    r.cgroup_current = 224 * MiB;
    guard_fit f = guard_fit_check(r, 900 * MiB, 300 * MiB);
    EXPECT_FALSE(f.fits);
    EXPECT_EQ(f.available, std::optional<uint64_t>(800 * MiB));
    EXPECT_EQ(f.message, "model needs 1.2 GiB (weights 900 MiB + KV cache and buffers 300 MiB) but only 800 MiB is available "
                         "(cgroup limit 1 GiB, 224 MiB used)");
    f = guard_fit_check(r, 500 * MiB, 300 * MiB);
    EXPECT_TRUE(f.fits);
    EXPECT_EQ(f.message, "model needs 800 MiB (weights 500 MiB + KV cache and buffers 300 MiB); 800 MiB is available "
                         "(cgroup limit 1 GiB, 224 MiB used)");

    // The budget minus the worker's RSS is tighter still.
    r.memory_budget = 512 * MiB;
    r.rss = 112 * MiB;
    f = guard_fit_check(r, 500 * MiB, 0);
    EXPECT_FALSE(f.fits);
    EXPECT_EQ(f.message, "model needs 500 MiB (weights 500 MiB + KV cache and buffers 0 B) but only 400 MiB is available "
                         "(memory budget 512 MiB, worker RSS 112 MiB)");

    // Only MemAvailable known.
    guard_readings m;
    m.mem_total = 24 * GiB;
    m.mem_available = GiB;
    f = guard_fit_check(m, 2 * GiB, GiB);
    EXPECT_FALSE(f.fits);
    EXPECT_EQ(f.message, "model needs 3 GiB (weights 2 GiB + KV cache and buffers 1 GiB) but only 1 GiB is available "
                         "(MemAvailable, of 24 GiB total)");

    // Over the cgroup limit already: nothing is available.
    guard_readings over;
    over.cgroup_limit = GiB;
    over.cgroup_current = 2 * GiB;
    f = guard_fit_check(over, 1, 0);
    EXPECT_FALSE(f.fits);
    EXPECT_EQ(f.available, std::optional<uint64_t>(0));

    // Nothing known: no evidence against loading.
    f = guard_fit_check(guard_readings{}, 100 * GiB, 0);
    EXPECT_TRUE(f.fits);
    EXPECT_FALSE(f.available);
    EXPECT_NE(f.message.find("unknown"), std::string::npos) << f.message;

    // Sizes that overflow when added saturate instead of wrapping into a fit.
    f = guard_fit_check(m, UINT64_MAX, UINT64_MAX);
    EXPECT_FALSE(f.fits);
}

TEST(resource_guard, headroom_is_the_tightest_known_limit_to_its_critical_line) {
    guard_options o;
    guard_readings r;
    EXPECT_FALSE(guard_headroom(r, o)) << "no limit known: no evidence";
    r.memory_budget = 512 * MiB;
    r.rss = 400 * MiB;
    EXPECT_EQ(guard_headroom(r, o), 112 * MiB);
    r.rss = 600 * MiB;
    EXPECT_EQ(guard_headroom(r, o), 0u) << "past the line leaves nothing";
    r.rss = 100 * MiB;
    r.mem_total = 16 * GiB;
    r.mem_available = 1 * GiB;  // the system line is 5% of 16 GiB = 819.2 MiB: 204.8 MiB left
    EXPECT_NEAR(static_cast<double>(*guard_headroom(r, o)), 204.8 * MiB, 1.0);
    r.cgroup_limit = 1 * GiB;
    r.cgroup_current = 1000 * MiB;  // the cgroup line is 95% of 1 GiB = 972.8 MiB: past it
    EXPECT_EQ(guard_headroom(r, o), 0u);
    r.cgroup_limit = guard_unlimited;
    EXPECT_NEAR(static_cast<double>(*guard_headroom(r, o)), 204.8 * MiB, 1.0) << "an unlimited cgroup is no limit";
    o.budget_critical = 1.5;  // the budget line moves with its threshold
    r.mem_available.reset();
    EXPECT_EQ(guard_headroom(r, o), 668 * MiB);
}
