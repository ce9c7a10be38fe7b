// The broker's input filter and whitelist reload, with real processes: deny patterns, service
// permissions and the size limit answer `filtered` with the rule and leave a usage row saying so;
// SIGHUP reloads the whitelist without dropping a request in flight, and a bad file on reload
// keeps the old whitelist in force.
#include "bus-harness.h"
#include "test-util.h"
#include "usage-db.h"

#include <gtest/gtest.h>

#include <signal.h>

#include <fstream>
#include <thread>

using hearth::test::bus_fixture;
using hearth::test::raw_client;
using hearth::test::request_make;
namespace wire = hearth::wire;

namespace {

// A small whitelist: the kitchen light, `complete` for everyone, `command` only for "local".
std::string whitelist_text(const std::string& extra_deny, bool kitchen_allowed = true) {
    std::string s = "version = 1\n[input]\nmax_prompt_bytes = 200\ndeny = [\n"
                    "  { name = \"secrets\", pattern = 'password|api[ _-]?key' },\n";
    s.append(extra_deny);
    s.append("]\n[[devices]]\nid = \"light.kitchen\"\nname = \"Kitchen light\"\nroom = \"kitchen\"\n");
    s.append(kitchen_allowed ? "actions = [\"turn_on\", \"turn_off\"]\n" : "actions = [\"turn_off\"]\ndeny = [\"turn_on\"]\n");
    s.append("[[clients]]\nid = \"*\"\nservices = [\"complete\", \"command\"]\n");
    return s;
}

std::string file_write(const std::string& path, const std::string& text) {
    std::ofstream(path) << text;
    return path;
}

// A fresh file name for a whitelist the test writes (and removes).
std::string whitelist_path_make() {
    std::string tmpl = (std::filesystem::temp_directory_path() / "hearth-wl-XXXXXX.toml").string();
    const int fd = mkstemps(tmpl.data(), 5);
    if (fd < 0) throw std::runtime_error("mkstemps failed");
    ::close(fd);
    return tmpl;
}

std::map<std::string, hearth::usage_row> rows_by_id(const std::string& db_path) {
    hearth::usage_db db(db_path, false);
    std::map<std::string, hearth::usage_row> out;
    for (auto& r : db.rows(0, INT64_MAX)) out[r.request_id] = r;
    return out;
}

wire::request command_make(const std::string& id, const std::string& text) {
    wire::request r = request_make(id, text, 64);
    r.service = "command";
    r.stream = false;
    return r;
}

}  // namespace

TEST(input_filter, refusals_answer_filtered_with_the_rule_and_are_logged) {
    const std::string model = hearth::test::model_path("stories260K-f32.gguf");
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    const std::string tmpl = whitelist_path_make();
    const std::string wl = file_write(tmpl, whitelist_text(""));
    bus_fixture bus("whitelist = \"" + wl + "\"\n");
    bus.broker_start();
    bus.worker_start("w1", model);
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    raw_client c(bus.client_endpoint());

    auto ok = c.call(request_make("fine", "Once upon a time", 4));
    EXPECT_TRUE(ok.final) << (ok.error ? ok.error->message : "");
    auto secret = c.call(request_make("secret", "here is my API key: abc", 4));
    ASSERT_TRUE(secret.error);
    EXPECT_EQ(secret.error->code, wire::error_code::filtered);
    EXPECT_NE(secret.error->message.find("deny:secrets"), std::string::npos) << secret.error->message;
    auto big = c.call(request_make("big", std::string(300, 'a'), 4));
    ASSERT_TRUE(big.error);
    EXPECT_EQ(big.error->code, wire::error_code::filtered);
    wire::request chat = request_make("chat", "", 4);
    chat.service = "chat";
    chat.messages = {{"user", "hello"}};
    auto no_chat = c.call(chat);
    ASSERT_TRUE(no_chat.error);
    EXPECT_EQ(no_chat.error->code, wire::error_code::filtered) << no_chat.error->message;
    EXPECT_NE(no_chat.error->message.find("chat"), std::string::npos) << no_chat.error->message;
    // A chat message is filtered like a prompt (the deny patterns see every turn).
    auto cmd = c.call(command_make("cmd", "turn on the kitchen light"));
    ASSERT_TRUE(cmd.final) << (cmd.error ? cmd.error->message : "");
    EXPECT_EQ(cmd.final->text, R"({"device":"light.kitchen","action":"turn_on"})");

    bus.broker().stop();
    auto rows = rows_by_id(bus.dir() + "/state/usage.db");
    ASSERT_EQ(rows.count("secret"), 1u);
    EXPECT_EQ(rows["secret"].status, "filtered");
    EXPECT_EQ(rows["secret"].filter_verdict, "filtered");
    EXPECT_EQ(rows["secret"].filter_rule, "deny:secrets");
    EXPECT_EQ(rows["big"].filter_verdict, "filtered");
    EXPECT_FALSE(rows["big"].filter_rule.empty());
    EXPECT_EQ(rows["chat"].filter_verdict, "filtered");
    EXPECT_EQ(rows["fine"].status, "ok");
    EXPECT_EQ(rows["fine"].filter_verdict, "");
    EXPECT_EQ(rows["cmd"].filter_verdict, "allowed");
    std::filesystem::remove(wl);
}

TEST(whitelist_reload, sighup_applies_a_new_file_keeps_requests_and_survives_a_bad_one) {
    const std::string model = hearth::test::model_path("synth-llama-spm-f32.gguf");
    if (!hearth::test::require_file(model)) GTEST_SKIP() << model;
    const std::string tmpl = whitelist_path_make();
    const std::string wl = file_write(tmpl, whitelist_text(""));
    bus_fixture bus("whitelist = \"" + wl + "\"\n");
    bus.broker_start();
    bus.worker_start("w1", model);
    ASSERT_TRUE(bus.wait_workers(1)) << bus.logs();
    raw_client c(bus.client_endpoint());

    auto before = c.call(command_make("before", "turn on the kitchen light"));
    ASSERT_TRUE(before.final) << (before.error ? before.error->message : "");

    // A long generation in flight across the reload.
    wire::request longr = request_make("long", "Once upon a time", 300);
    c.send(wire::command::request, wire::encode(longr));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    file_write(wl, whitelist_text("  { name = \"dragons\", pattern = 'dragon' },\n", false));
    ASSERT_EQ(::kill(bus.broker().pid(), SIGHUP), 0);
    bool reloaded = false;
    for (int i = 0; i < 100 && !reloaded; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        reloaded = bus.logs().find("deny patterns") != bus.logs().rfind("deny patterns");  // logged twice now
    }
    ASSERT_TRUE(reloaded) << bus.logs();
    auto done = c.wait("long", 60000);
    ASSERT_TRUE(done.final) << (done.error ? done.error->message : "no reply") << bus.logs();

    auto dragon = c.call(request_make("dragon", "a dragon story", 4));
    ASSERT_TRUE(dragon.error);
    EXPECT_EQ(dragon.error->code, wire::error_code::filtered);
    EXPECT_NE(dragon.error->message.find("deny:dragons"), std::string::npos);
    auto denied = c.call(command_make("denied", "turn on the kitchen light"));
    EXPECT_FALSE(denied.final) << denied.final->text;

    // A broken file: logged, and the last good whitelist stays in force.
    file_write(wl, "version = 1\n[[devices]]\nid = \"not an id\"\n");
    ASSERT_EQ(::kill(bus.broker().pid(), SIGHUP), 0);
    bool complained = false;
    for (int i = 0; i < 100 && !complained; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        complained = bus.logs().find("whitelist not reloaded") != std::string::npos;
    }
    EXPECT_TRUE(complained) << bus.logs();
    auto still = c.call(request_make("dragon2", "a dragon story", 4));
    ASSERT_TRUE(still.error);
    EXPECT_EQ(still.error->code, wire::error_code::filtered);
    EXPECT_TRUE(c.call(request_make("fine", "Once upon a time", 4)).final);
    std::filesystem::remove(wl);
}

TEST(whitelist_reload, a_bad_file_at_start_stops_the_broker_with_its_line) {
    const std::string tmpl = whitelist_path_make();
    const std::string wl = file_write(tmpl, "version = 1\n[[devices]]\nid = \"light.kitchen\"\nactions = [\"turn_on\"]\nbogus = 3\n");
    bus_fixture bus;
    auto r = hearth::test::command_run({hearth::test::binary_dir() + "/broker/hearth-broker", "--config", bus.config_path(), "--whitelist", wl});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(":5"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("bogus"), std::string::npos) << r.err;
    std::filesystem::remove(wl);
}
