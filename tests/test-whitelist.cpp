// The whitelist format: the demo home loads, every kind of mistake is an error with file, line,
// column and key, and the input filter's verdicts name the rule that fired.
#include "whitelist.h"

#include "test-util.h"

#include <gtest/gtest.h>

#include <filesystem>

#include <string>

using hearth::whitelist;
using hearth::whitelist_error;
using hearth::whitelist_parse;

namespace {

// The demo file lives in the source tree beside this test's own directory.
std::string demo_path() {
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "schema" / "demo-home.whitelist.toml").string();
}

// The whole error message of parsing text, or "" when it parsed.
std::string error_of(const std::string& text) {
    try {
        whitelist_parse(text, "w.toml");
    } catch (const whitelist_error& e) {
        return e.what();
    }
    return "";
}

const char* kBase = R"(version = 1
[[devices]]
id = "light.kitchen"
actions = ["turn_on", "set_brightness"]
args.set_brightness.brightness = { type = "integer", min = 0, max = 100 }
)";

}  // namespace

TEST(Whitelist, DemoLoads) {
    const whitelist w = hearth::whitelist_load(demo_path());
    EXPECT_EQ(w.devices.size(), 11u);
    const auto* lock = w.device_find("lock.front_door");
    ASSERT_NE(lock, nullptr);
    EXPECT_NE(lock->action_find("lock"), nullptr);
    EXPECT_EQ(lock->action_find("unlock"), nullptr);
    const auto* t = w.device_find("climate.thermostat");
    ASSERT_NE(t, nullptr);
    const auto* st = t->action_find("set_temperature");
    ASSERT_NE(st, nullptr);
    ASSERT_EQ(st->args.size(), 1u);
    EXPECT_EQ(st->args[0].name, "temperature");
    EXPECT_FALSE(st->args[0].integer);
    EXPECT_EQ(st->args[0].min, 10);
    EXPECT_EQ(st->args[0].max, 30);
    EXPECT_EQ(st->args[0].step, 0.5);
    EXPECT_TRUE(w.service_allowed("local", "command"));
    EXPECT_TRUE(w.service_allowed("anyone", "chat"));
    EXPECT_FALSE(w.service_allowed("local", "embed"));
    EXPECT_EQ(w.action_refusal("local", "lock.front_door", "unlock"), "device lock.front_door: action unlock not allowed");
    EXPECT_EQ(w.action_refusal("local", "lock.front_door", "lock"), "");
}

// The demo file allows exactly what hearth-cmd was trained on, except unlocking the front door.
TEST(Whitelist, DemoMatchesTrainingDevices) {
    const std::string p = hearth::test::model_path("hearth-cmd-devices.json");
    if (!hearth::test::require_file(p)) GTEST_SKIP() << p;
    const nlohmann::json j = hearth::test::read_json(p);
    const whitelist w = hearth::whitelist_load(demo_path());
    ASSERT_EQ(j["devices"].size(), w.devices.size());
    for (const auto& jd : j["devices"]) {
        const auto* d = w.device_find(jd["id"].get<std::string>());
        ASSERT_NE(d, nullptr) << jd["id"];
        size_t allowed = 0;
        for (const auto& ja : jd["actions"]) {
            const std::string a = ja.get<std::string>();
            const auto* act = d->action_find(a);
            if (d->id == "lock.front_door" && a == "unlock") {
                EXPECT_EQ(act, nullptr);
                continue;
            }
            ASSERT_NE(act, nullptr) << d->id << " " << a;
            ++allowed;
            const auto& spec = j["action_args"];
            if (!spec.contains(a)) {
                EXPECT_TRUE(act->args.empty()) << a;
                continue;
            }
            ASSERT_EQ(act->args.size(), spec[a].size()) << a;
            for (const auto& arg : act->args) {
                ASSERT_TRUE(spec[a].contains(arg.name)) << a << " " << arg.name;
                const auto& js = spec[a][arg.name];
                EXPECT_EQ(arg.integer, js["type"] == "integer");
                EXPECT_EQ(arg.min, js["min"].get<double>());
                EXPECT_EQ(arg.max, js["max"].get<double>());
                EXPECT_EQ(arg.step, js.value("step", 0.0));
            }
        }
        EXPECT_EQ(allowed, d->actions.size()) << d->id;
    }
}

TEST(Whitelist, MinimalParses) {
    const whitelist w = whitelist_parse(kBase, "w.toml");
    ASSERT_EQ(w.devices.size(), 1u);
    EXPECT_EQ(w.max_prompt_bytes, 8192u);
    EXPECT_TRUE(w.clients.empty());
    EXPECT_FALSE(w.service_allowed("local", "command"));  // no clients: nobody may do anything
}

TEST(Whitelist, Errors) {
    struct bad_case {
        std::string text;    // appended to kBase (or whole text when it starts with '!')
        std::string expect;  // substring of the message, position included
    };
    const std::vector<bad_case> cases = {
        {"!version = 1\ncolour = 1\n", "w.toml:2:1: colour: unknown key"},
        {"!version = 1\ndevice = []\n", "w.toml:2:1: device: unknown key (did you mean 'devices'?)"},
        {"colr = 1\n", "w.toml:6:1: devices[0].colr: unknown key"},
        {"[input]\nmax_promt_bytes = 10\n", "w.toml:7:1: input.max_promt_bytes: unknown key (did you mean 'max_prompt_bytes'?)"},
        {"[input]\nmax_prompt_bytes = \"big\"\n", "w.toml:7:20: input.max_prompt_bytes: expected an integer, got string"},
        {"[input]\nmax_prompt_bytes = 0\n", "w.toml:7:20: input.max_prompt_bytes: 0 is out of range"},
        {"[[devices]]\nid = \"light.kitchen\"\nactions = [\"turn_on\"]\n",
         "w.toml:7:6: devices[1].id: 'light.kitchen' is already defined on line 2"},
        {"[[devices]]\nid = \"Light.Kitchen\"\nactions = []\n", "w.toml:7:6: devices[1].id: 'Light.Kitchen' is not a device id"},
        {"[[devices]]\nid = \"kitchen\"\nactions = []\n", "devices[1].id: 'kitchen' is not a device id"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"on\"]\nargs.off.speed = { type = \"integer\", min = 0, max = 3 }\n",
         "w.toml:9:6: devices[1].args.off: 'off' is not in this device's actions"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"integer\", min = 5, max = 3 }\n",
         "w.toml:9:53: devices[1].args.set.speed.min: must not exceed max"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"float\", min = 0, max = 3 }\n",
         "devices[1].args.set.speed.type: 'float' is not 'integer' or 'number'"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"integer\", min = 0, max = 3, stepp = 1 }\n",
         "devices[1].args.set.speed.stepp: unknown key (did you mean 'step'?)"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"integer\", min = 0, max = 3, step = 0 }\n",
         "devices[1].args.set.speed.step: must be greater than 0"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"integer\", min = 0.5, max = 3 }\n",
         "devices[1].args.set.speed: an integer argument needs whole min, max and step"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"set\"]\nargs.set.speed = { type = \"integer\", max = 3 }\n",
         "devices[1].args.set.speed: needs a 'min'"},
        {"[[devices]]\nid = \"fan.x\"\nactions = \"on\"\n", "w.toml:8:11: devices[1].actions: expected an array of strings, got string"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"on\", \"on\"]\n", "devices[1].actions[1]: 'on' is listed twice"},
        {"[[devices]]\nid = \"fan.x\"\nactions = [\"on\"]\ndeny = [\"on\"]\n", "devices[1].deny: 'on' is also in actions"},
        {"[[devices]]\nid = \"fan.x\"\n", "w.toml:6:1: devices[1]: needs 'actions'"},
        {"[[devices]]\nid = \"fan.x\"\nactions = []\naliass = []\n", "devices[1].aliass: unknown key (did you mean 'aliases'?)"},
        {"[input]\ndeny = [{ name = \"x\", pattern = \"(unclosed\" }]\n",
         "w.toml:7:33: input.deny[0].pattern: bad regular expression"},
        {"[input]\ndeny = [{ name = \"x\" }]\n", "input.deny[0]: needs a 'pattern'"},
        {"[input]\ndeny = [{ name = \"Bad Name\", pattern = \"a\" }]\n", "input.deny[0].name: 'Bad Name' is not a rule name"},
        {"[[clients]]\nid = \"*\"\nservices = [\"command\"]\ndevices = [\"light.nowhere\"]\n",
         "w.toml:9:11: clients[0].devices: 'light.nowhere' is not a device defined above"},
        {"[[clients]]\nid = \"*\"\nservices = [\"Command\"]\n", "clients[0].services[0]: 'Command' is not a service name"},
        {"[[clients]]\nid = \"*\"\nservices = []\n[[clients]]\nid = \"*\"\nservices = []\n", "clients[1].id: '*' is listed twice"},
        {"[[clients]]\nid = \"two words\"\nservices = []\n", "clients[0].id: 'two words' is not a client identity"},
        {"[rooms]\nliving_room = \"lounge\"\n", "rooms.living_room: expected an array of strings"},
        {"!version = 1\ndevices = 3\n[[devices]]\nid = \"a.b\"\nactions = []\n", "w.toml:3:"},  // TOML itself refuses
        {"!version = 2\n", "w.toml:1:11: version: 2 is not a supported version (1)"},
        {"![[devices]]\nid = \"a.b\"\nactions = []\n", "w.toml:1:1: version: missing"},
        {"!version = 1\nversion = 1\n", "w.toml:2:"},
    };
    for (const auto& c : cases) {
        const std::string text = c.text[0] == '!' ? c.text.substr(1) : std::string(kBase).append(c.text);
        const std::string err = error_of(text);
        EXPECT_NE(err.find(c.expect), std::string::npos) << "input:\n" << text << "\nerror: " << err << "\nexpected: " << c.expect;
    }
}

TEST(Whitelist, AllProblemsReportedSorted) {
    const std::string err = error_of("version = 1\n[input]\nmax_prompt_bytes = -1\n[[devices]]\nzzz = 1\n");
    const size_t a = err.find("w.toml:3:20: input.max_prompt_bytes");
    const size_t b = err.find("w.toml:5:1: devices[0].zzz: unknown key");
    const size_t c = err.find("w.toml:4:1: devices[0]: needs an 'id'");
    ASSERT_NE(c, std::string::npos) << err;
    EXPECT_LT(a, c);
    EXPECT_LT(c, b);
    ASSERT_NE(a, std::string::npos) << err;
    ASSERT_NE(b, std::string::npos) << err;
    EXPECT_LT(a, b);
}

TEST(Whitelist, MissingFile) {
    EXPECT_THROW(hearth::whitelist_load("/nonexistent/whitelist.toml"), whitelist_error);
}

TEST(Whitelist, InputCheck) {
    const std::string text = std::string(kBase) + R"(
[input]
max_prompt_bytes = 64
deny = [
  { name = "unlock-words", pattern = '\bunlock', services = ["command"] },
  { name = "secrets", pattern = 'pass(word)?' },
]
[[clients]]
id = "*"
services = ["chat", "command"]
[[clients]]
id = "kitchen-pi"
services = ["chat"]
)";
    const whitelist w = whitelist_parse(text, "w.toml");
    auto v = w.input_check("local", "command", "turn on the kitchen light");
    EXPECT_TRUE(v.allowed) << v.rule;
    EXPECT_EQ(v.rule, "");
    v = w.input_check("local", "command", "UNLOCK the door");
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.rule, "deny:unlock-words");
    v = w.input_check("local", "chat", "how do I unlock my phone");  // that rule is for command only
    EXPECT_TRUE(v.allowed) << v.rule;
    v = w.input_check("local", "chat", "tell me the PassWord");
    EXPECT_EQ(v.rule, "deny:secrets");
    v = w.input_check("kitchen-pi", "command", "turn on the light");
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.rule, "service:command not allowed for client kitchen-pi");
    v = w.input_check("local", "complete", "hi");
    EXPECT_EQ(v.rule, "service:complete not allowed for client local");
    v = w.input_check("local", "chat", std::string(65, 'x'));
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.rule, "size: 65 bytes over max_prompt_bytes 64");
    EXPECT_TRUE(w.input_check("local", "chat", std::string(64, 'x')).allowed);
    // Invalid UTF-8 is searched, not an error that slips through.
    v = w.input_check("local", "command", std::string("\xff\xfe unlock"));
    EXPECT_EQ(v.rule, "deny:unlock-words");
    EXPECT_TRUE(w.input_check("local", "chat", std::string("\xff\xfe hello")).allowed);
    // Client names from the wire are sanitised before they reach a rule (and a log line).
    const whitelist none = whitelist_parse(kBase, "w.toml");
    v = none.input_check("evil\nname", "chat", "hi");
    EXPECT_FALSE(v.allowed);
    EXPECT_EQ(v.rule, "client evil?name: not listed");
}

TEST(Whitelist, ClientRestrictions) {
    const std::string text = std::string(kBase) + R"(
[[devices]]
id = "lock.front_door"
actions = ["lock"]
deny = ["unlock"]
[[clients]]
id = "*"
services = ["command"]
[[clients]]
id = "kitchen-pi"
services = ["command"]
devices = ["light.kitchen"]
actions = ["turn_on"]
)";
    const whitelist w = whitelist_parse(text, "w.toml");
    EXPECT_EQ(w.action_refusal("kitchen-pi", "light.kitchen", "turn_on"), "");
    EXPECT_EQ(w.action_refusal("kitchen-pi", "lock.front_door", "lock"), "client kitchen-pi: device lock.front_door not allowed");
    EXPECT_EQ(w.action_refusal("kitchen-pi", "light.kitchen", "set_brightness"), "client kitchen-pi: action set_brightness not allowed");
    EXPECT_EQ(w.action_refusal("other", "lock.front_door", "lock"), "");
    EXPECT_EQ(w.action_refusal("other", "lock.front_door", "unlock"), "device lock.front_door: action unlock not allowed");
    EXPECT_EQ(w.action_refusal("other", "lock.back_door", "lock"), "device lock.back_door: unknown device");
}

TEST(Whitelist, RoomNames) {
    const whitelist w = hearth::whitelist_load(demo_path());
    EXPECT_EQ(w.room_names("living_room").size(), 3u);
    EXPECT_EQ(w.room_names("guest_room"), std::vector<std::string>{"guest room"});
}
