// The command output filter (hostile model outputs), the grammar schema, and the fast path on the
// 500 visible utterances of hearth-cmd (zero wrong answers allowed).
#include "command-match.h"
#include "command.h"
#include "test-util.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>

using hearth::command_check;
using hearth::command_status;
using hearth::whitelist;

namespace {

std::string demo_path() {
    return (std::filesystem::path(__FILE__).parent_path().parent_path() / "schema" / "demo-home.whitelist.toml").string();
}

const whitelist& demo() {
    static const whitelist w = hearth::whitelist_load(demo_path());
    return w;
}

// A whitelist with a restricted client, for per-client refusals.
const whitelist& restricted() {
    static const whitelist w = [] {
        std::ifstream in(demo_path());
        std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        text.append(R"(
[[clients]]
id = "kitchen-pi"
services = ["command"]
devices = ["light.kitchen", "switch.coffee_maker"]
actions = ["turn_on", "turn_off", "set_brightness"]
[[clients]]
id = "chat-only"
services = ["chat"]
)");
        return hearth::whitelist_parse(text, "restricted.toml");
    }();
    return w;
}

}  // namespace

TEST(CommandCheck, Valid) {
    struct ok_case {
        std::string in, out;  // model output, canonical form
    };
    const std::vector<ok_case> cases = {
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30}})",
         R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30}})"},
        {R"(  {"action":"turn_on", "device":"light.porch"} )" "\n", R"({"device":"light.porch","action":"turn_on"})"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})",
         R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":30.0}})",
         R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":30}})"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":2.15e1}})",
         R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":10}})",
         R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":10}})"},
        {R"({"args":{"volume":0},"action":"set_volume","device":"media_player.living_room"})",
         R"({"device":"media_player.living_room","action":"set_volume","args":{"volume":0}})"},
        {R"({"device":"media_player.living_room","action":"set_volume","args":{"volume":-0}})",
         R"({"device":"media_player.living_room","action":"set_volume","args":{"volume":0}})"},
        {R"({"device":"lock.front_door","action":"lock"})", R"({"device":"lock.front_door","action":"lock"})"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":100}})",
         R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":100}})"},
    };
    for (const auto& c : cases) {
        const auto v = command_check(demo(), "local", c.in);
        EXPECT_EQ(v.status, command_status::allowed) << c.in << " -> " << v.rule;
        EXPECT_EQ(v.json, c.out) << c.in;
        EXPECT_EQ(v.rule, "");
    }
    const auto u = command_check(demo(), "local", R"( {"error":"unsupported"} )");
    EXPECT_EQ(u.status, command_status::unsupported);
    EXPECT_EQ(u.json, R"({"error":"unsupported"})");
}

TEST(CommandCheck, Hostile) {
    struct bad_case {
        std::string in;    // model output
        std::string rule;  // expected rule (prefix)
    };
    const std::string big(5000, ' ');
    std::string nul = R"({"device":"light.kitchen","action":"turn_on"})";
    nul.push_back('\0');
    nul.append(R"({"device":"lock.front_door","action":"unlock"})");
    const std::vector<bad_case> cases = {
        {nul, "output: contains a NUL byte"},
        {"", "output: not valid JSON"},
        {"turn on the light", "output: not valid JSON"},
        {R"({"device":"light.kitchen","action":"turn_on"} trailing)", "output: not valid JSON"},
        {R"({"device":"light.kitchen","action":"turn_on"}{"device":"lock.front_door","action":"unlock"})", "output: not valid JSON"},
        {R"({"device":"light.kitchen","action":"turn_on")", "output: not valid JSON"},
        {R"({"device":"light.kitchen","action":"turn_on",})", "output: not valid JSON"},
        {R"({'device':'light.kitchen','action':'turn_on'})", "output: not valid JSON"},
        {R"({"device":"light.kitchen","action":"turn_on"} // comment)", "output: not valid JSON"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":NaN}})", "output: not valid JSON"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":Infinity}})", "output: not valid JSON"},
        {"[1,2,3]", "output: expected an object, got an array"},
        {"\"light.kitchen\"", "output: expected an object, got a string"},
        {"42", "output: expected an object, got an integer"},
        {"null", "output: expected an object, got null"},
        {big + "{}", "output: longer than 4096 bytes"},
        {std::string(3000, '[') + std::string(3000, ']'), "output: longer than"},
        {std::string(2000, '[') + std::string(2000, ']'), "output: expected an object, got an array"},
        {R"({"device":"light.kitchen","device":"lock.front_door","action":"lock"})", "output: key 'device' appears twice"},
        {R"({"device":"lock.front_door","action":"lock","action":"unlock"})", "output: key 'action' appears twice"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30,"brightness":300}})",
         "output: key 'brightness' appears twice"},
        {R"({"error":"unsupported","device":"lock.front_door","action":"unlock"})", "output: an error must be exactly"},
        {R"({"error":"something else"})", "output: an error must be exactly"},
        {R"({"error":null})", "output: an error must be exactly"},
        {R"({"error":"unsupported","error":"unsupported"})", "output: key 'error' appears twice"},
        {"{}", "device: missing"},
        {R"({"device":"light.kitchen"})", "action: missing"},
        {R"({"action":"turn_on"})", "device: missing"},
        {R"({"device":"light.kitchen","action":"turn_on","extra":1})", "output: unexpected key 'extra'"},
        {R"({"device":"light.kitchen","action":"turn_on","Device":"x"})", "output: unexpected key 'Device'"},
        {R"({"device":["light.kitchen"],"action":"turn_on"})", "device: expected a string, got an array"},
        {R"({"device":"light.kitchen","action":1})", "action: expected a string, got an integer"},
        {R"({"device":"light.kitchen","action":null})", "action: expected a string, got null"},
        {R"({"device":"light.garage","action":"turn_on"})", "device: unknown device 'light.garage'"},
        {R"({"device":"LIGHT.KITCHEN","action":"turn_on"})", "device: unknown device 'LIGHT.KITCHEN'"},
        {R"({"device":"light.kitchen ","action":"turn_on"})", "device: unknown device 'light.kitchen '"},
        {R"({"device":"light.kitchen\u0000","action":"turn_on"})", "device: unknown device 'light.kitchen?'"},
        {R"({"device":"lock.front_door","action":"unlock"})", "device lock.front_door: action unlock not allowed"},
        {R"({"device":"light.kitchen","action":"unlock"})", "device light.kitchen: action unlock not allowed"},
        {R"({"device":"light.kitchen","action":"set_volume","args":{"volume":3}})", "device light.kitchen: action set_volume not allowed"},
        {R"({"device":"light.kitchen","action":"turn_on","args":{}})", "args: action turn_on takes no arguments"},
        {R"({"device":"light.kitchen","action":"turn_on","args":null})", "args: action turn_on takes no arguments"},
        {R"({"device":"light.kitchen","action":"set_brightness"})", "args: missing"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":30})", "args: expected an object, got an integer"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{}})", "args.brightness: missing"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30,"colour":"red"}})", "args: unexpected argument 'colour'"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"level":30}})", "args: unexpected argument 'level'"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":"30"}})", "args.brightness: expected a number, got a string"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":true}})", "args.brightness: expected a number, got a boolean"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":null}})", "args.brightness: expected a number, got null"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":[30]}})", "args.brightness: expected a number, got an array"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30.5}})", "args.brightness: expected an integer, got a float"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30.0}})", "args.brightness: expected an integer, got a float"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":101}})", "args.brightness: 101 above max 100"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":-1}})", "args.brightness: -1 below min 0"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":99999999999999999999}})", "args.brightness: expected an integer, got a float"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":18446744073709551615}})", "args.brightness: number too large"},
        {R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":-9223372036854775808}})", "args.brightness: number too large"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.3}})", "args.temperature: 21.3 is not a multiple of 0.5"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":9.5}})", "args.temperature: 9.5 below min 10"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":30.5}})", "args.temperature: 30.5 above max 30"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":1e308}})", "args.temperature: 1e+308 above max 30"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":1e400}})", "output: not valid JSON"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":-1e-400}})", "args.temperature: 0 below min 10"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":"21.5"}})", "args.temperature: expected a number, got a string"},
        {R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5,"humidity":40}})", "args: unexpected argument 'humidity'"},
        {"\xef\xbb\xbf{\"device\":\"light.kitchen\",\"action\":\"turn_on\"}", ""},  // BOM: either refused or accepted as is
    };
    for (const auto& c : cases) {
        const auto v = command_check(demo(), "local", c.in);
        if (c.rule.empty()) {
            if (v.status == command_status::allowed) {
                EXPECT_EQ(v.json, R"({"device":"light.kitchen","action":"turn_on"})");
            }
            continue;
        }
        EXPECT_EQ(v.status, command_status::filtered) << c.in.substr(0, 200);
        EXPECT_EQ(v.json, "") << c.in.substr(0, 200);
        EXPECT_EQ(v.rule.rfind(c.rule, 0), 0u) << c.in.substr(0, 200) << "\n rule: " << v.rule << "\n want: " << c.rule;
    }
}

TEST(CommandCheck, PerClient) {
    const whitelist& w = restricted();
    const std::string kitchen_on = R"({"device":"light.kitchen","action":"turn_on"})";
    EXPECT_EQ(command_check(w, "kitchen-pi", kitchen_on).status, command_status::allowed);
    auto v = command_check(w, "kitchen-pi", R"({"device":"lock.front_door","action":"lock"})");
    EXPECT_EQ(v.status, command_status::filtered);
    EXPECT_EQ(v.rule, "client kitchen-pi: device lock.front_door not allowed");
    v = command_check(w, "kitchen-pi", R"({"device":"light.kitchen","action":"toggle"})");
    EXPECT_EQ(v.rule, "client kitchen-pi: action toggle not allowed");
    v = command_check(w, "chat-only", kitchen_on);
    EXPECT_EQ(v.rule, "service:command not allowed for client chat-only");
    EXPECT_EQ(command_check(w, "someone", kitchen_on).status, command_status::allowed);  // falls back to "*"
    // Without a "*" entry an unknown client may do nothing.
    const whitelist bare = hearth::whitelist_parse("version = 1\n[[devices]]\nid = \"a.b\"\nactions = [\"on\"]\n", "b.toml");
    v = command_check(bare, "local", R"({"device":"a.b","action":"on"})");
    EXPECT_EQ(v.rule, "client local: not listed");
}

TEST(CommandCheck, Numbers) {
    EXPECT_EQ(hearth::command_number(21.5), "21.5");
    EXPECT_EQ(hearth::command_number(30.0), "30");
    EXPECT_EQ(hearth::command_number(-0.0), "0");
    EXPECT_EQ(hearth::command_number(0.1), "0.1");
    EXPECT_EQ(hearth::command_number(1e21), "1e+21");
}

TEST(CommandSchema, Demo) {
    const std::string s = hearth::command_schema(demo(), "local");
    const auto j = nlohmann::ordered_json::parse(s);
    ASSERT_TRUE(j.contains("oneOf"));
    const auto& alts = j["oneOf"];
    size_t expected = 0;
    for (const auto& d : demo().devices) expected += d.actions.size();
    ASSERT_EQ(alts.size(), expected + 1);
    EXPECT_EQ(expected, 35u);  // 36 trained (device, action) pairs less unlock
    EXPECT_EQ(alts.back().dump(), R"({"type":"object","properties":{"error":{"const":"unsupported"}},"required":["error"]})");
    EXPECT_EQ(alts[0].dump(),
              R"({"type":"object","properties":{"device":{"const":"light.kitchen"},"action":{"const":"turn_on"}},"required":["device","action"]})");
    bool saw_temperature = false, saw_brightness = false;
    for (const auto& a : alts) {
        ASSERT_EQ(a["type"], "object");
        if (!a["properties"].contains("device")) continue;
        const std::string dev = a["properties"]["device"]["const"];
        const std::string act = a["properties"]["action"]["const"];
        EXPECT_FALSE(act == "unlock") << dev;
        EXPECT_NE(demo().device_find(dev), nullptr);
        if (dev == "climate.thermostat" && act == "set_temperature") {
            saw_temperature = true;
            EXPECT_EQ(a.dump(),
                      R"({"type":"object","properties":{"device":{"const":"climate.thermostat"},"action":{"const":"set_temperature"},)"
                      R"("args":{"type":"object","properties":{"temperature":{"type":"number","minimum":10,"maximum":30,"multipleOf":0.5}},)"
                      R"("required":["temperature"]}},"required":["device","action","args"]})");
        }
        if (dev == "light.porch" && act == "set_brightness") {
            saw_brightness = true;
            EXPECT_EQ(a["properties"]["args"]["properties"]["brightness"].dump(), R"({"type":"integer","minimum":0,"maximum":100})");
        }
    }
    EXPECT_TRUE(saw_temperature);
    EXPECT_TRUE(saw_brightness);
    // A restricted client sees only its own alternatives; one without `command` only "unsupported".
    const auto r = nlohmann::json::parse(hearth::command_schema(restricted(), "kitchen-pi"));
    EXPECT_EQ(r["oneOf"].size(), 6u);  // light: on, off, brightness; coffee: on, off; + unsupported
    const auto none = nlohmann::json::parse(hearth::command_schema(restricted(), "chat-only"));
    EXPECT_EQ(none["oneOf"].size(), 1u);
}

TEST(CommandMatch, Phrasings) {
    const hearth::command_matcher m(demo());
    struct case_t {
        const char* text;
        const char* want;  // nullptr: must not match
    };
    const case_t cases[] = {
        {"dim the kitchen lights to 30%", R"({"device":"light.kitchen","action":"set_brightness","args":{"brightness":30}})"},
        {"could you dim the lounge lights to thirty percent?", R"({"device":"light.living_room","action":"set_brightness","args":{"brightness":30}})"},
        {"set the thermostat to 21.5", R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})"},
        {"set the thermostat to twenty one and a half", R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":21.5}})"},
        {"Hey assistant, turn ON the porch light please", R"({"device":"light.porch","action":"turn_on"})"},
        {"open the garage", R"({"device":"cover.garage_door","action":"open"})"},
        {"lock the front door", R"({"device":"lock.front_door","action":"lock"})"},
        {"unlock the front door", nullptr},                 // not allowed by the whitelist
        {"turn on the lights", nullptr},                    // which lights?
        {"turn off the bathroom light", nullptr},           // no such room
        {"set the thermostat to 21.3", nullptr},            // off the step grid
        {"set the thermostat to 45", nullptr},              // out of range
        {"set the kitchen lights to 150%", nullptr},
        {"set the kitchen lights to 30 and 40", nullptr},   // two numbers
        {"turn the kitchen lights on and off", nullptr},
        {"set a timer for 5 minutes", nullptr},
        {"what's the weather", nullptr},
        {"", nullptr},
        {"please", nullptr},
        {"turn on the kitchen", nullptr},                   // light or coffee maker?
        {"is the kitchen light on?", nullptr},              // a question
        {"hey, are the porch lights off", nullptr},
        {"set the volume to -3", nullptr},                  // never read as 3
        {"set the tv volume to 30.5", nullptr},             // integer argument
        {"set the living room to 20", nullptr},             // light or media player?
        {"turn on the kitchen light for 5 minutes", nullptr},
        {"set the volume to 1,000", nullptr},
        {"make sure the kitchen light is on", R"({"device":"light.kitchen","action":"turn_on"})"},
        {"play something on the tv", R"({"device":"media_player.living_room","action":"play"})"},
        {"PUT THE HEAT ON 25 AND A HALF", R"({"device":"climate.thermostat","action":"set_temperature","args":{"temperature":25.5}})"},
    };
    for (const auto& c : cases) {
        const auto got = m.match("local", c.text);
        if (c.want) {
            ASSERT_TRUE(got.has_value()) << c.text;
            EXPECT_EQ(*got, c.want) << c.text;
        } else {
            EXPECT_FALSE(got.has_value()) << c.text << " -> " << got.value_or("");
        }
    }
    // Never past the whitelist for this client.
    const hearth::command_matcher r(restricted());
    EXPECT_TRUE(r.match("kitchen-pi", "turn on the kitchen lights").has_value());
    EXPECT_FALSE(r.match("kitchen-pi", "lock the front door").has_value());
    EXPECT_FALSE(r.match("kitchen-pi", "toggle the kitchen lights").has_value());
    EXPECT_FALSE(r.match("chat-only", "turn on the kitchen lights").has_value());
    EXPECT_TRUE(r.match("someone", "lock the front door").has_value());
}

// On every visible utterance: never a wrong command, every answer passes the output filter, and
// well under a millisecond each.
TEST(CommandMatch, VisibleSet) {
    const std::string p = hearth::test::model_path("hearth-cmd-visible.jsonl");
    if (!hearth::test::require_file(p)) GTEST_SKIP() << p;
    std::ifstream in(p);
    std::vector<std::pair<std::string, std::string>> rows;  // text, expected canonical JSON
    for (std::string line; std::getline(in, line);) {
        if (line.empty()) continue;
        const auto j = nlohmann::json::parse(line);
        const auto v = command_check(demo(), "local", j["command"].dump());
        // Expected commands the whitelist refuses (unlock) are "unsupported" for our purposes.
        rows.emplace_back(j["text"].get<std::string>(), v.status == command_status::allowed ? v.json : std::string());
    }
    ASSERT_EQ(rows.size(), 500u);
    const hearth::command_matcher m(demo());
    size_t matched = 0, correct = 0, wrong = 0, commands = 0;
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::optional<std::string>> got;
    got.reserve(rows.size());
    for (const auto& r : rows) got.push_back(m.match("local", r.first));
    const double us = std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / rows.size();
    for (size_t i = 0; i < rows.size(); ++i) {
        if (!rows[i].second.empty()) ++commands;
        if (!got[i]) continue;
        ++matched;
        const auto v = command_check(demo(), "local", *got[i]);
        EXPECT_EQ(v.status, command_status::allowed) << *got[i];
        EXPECT_EQ(v.json, *got[i]);
        if (*got[i] == rows[i].second) {
            ++correct;
        } else {
            ++wrong;
            ADD_FAILURE() << "wrong: \"" << rows[i].first << "\" -> " << *got[i] << " want " << rows[i].second;
        }
    }
    std::printf("fast path: %zu/500 matched (%zu of the %zu allowed commands, %.1f%%), %zu correct, %zu wrong, %.2f us/utterance\n",
                matched, correct, commands, 100.0 * correct / commands, correct, wrong, us);
    EXPECT_EQ(wrong, 0u);
    EXPECT_GT(matched, 150u);  // coverage guard: a regression that matches almost nothing fails
    EXPECT_LT(us, 1000.0);
}

// Random word salad from the matcher's own vocabulary and random bytes: no crash, and anything it
// answers still passes the output filter.
TEST(CommandMatch, RandomInputs) {
    const hearth::command_matcher m(demo());
    const std::vector<std::string> words = {
        "turn", "on", "off", "the", "kitchen", "lights", "lamp", "set", "to", "50", "%", "twenty", "one", "and", "a", "half",
        "point", "5", "thermostat", "degrees", "\xc2\xb0", "lock", "unlock", "front", "door", "tv", "volume", "max", "open",
        "garage", "blinds", "toggle", "play", "pause", "hundred", "please", "in", "bedroom", "fan", "21.5", "999", "-3", "\xff"};
    uint64_t state = 12345;
    auto next = [&] {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return static_cast<uint32_t>(state >> 33);
    };
    size_t answered = 0;
    for (int i = 0; i < 3000; ++i) {
        std::string text;
        const uint32_t n = 1 + next() % 8;
        for (uint32_t k = 0; k < n; ++k) {
            if (next() % 10 == 0) text.push_back(static_cast<char>(next() % 256));
            else text.append(words[next() % words.size()]);
            text.push_back(' ');
        }
        const auto got = m.match("local", text);
        const auto v = command_check(demo(), "local", text);  // the filter must survive any text too
        EXPECT_NE(v.status, command_status::allowed);
        if (!got) continue;
        ++answered;
        EXPECT_EQ(command_check(demo(), "local", *got).status, command_status::allowed) << text;
        EXPECT_EQ(got->find("unlock"), std::string::npos) << text;
    }
    EXPECT_LT(answered, 3000u);
}
