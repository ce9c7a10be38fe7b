// Checking untrusted command output against the whitelist, and the grammar schema derived from it.
// Every refusal names its rule so the broker's log says exactly why an output never reached a client.
#include "command.h"

#include <nlohmann/json.hpp>

#include <charconv>
#include <cmath>
#include <set>
#include <vector>

namespace hearth {
namespace {

using json = nlohmann::json;

command_verdict refuse(std::string rule) { return {command_status::filtered, std::move(rule), ""}; }

const char* json_type_name(const json& j) {
    switch (j.type()) {
        case json::value_t::null: return "null";
        case json::value_t::object: return "an object";
        case json::value_t::array: return "an array";
        case json::value_t::string: return "a string";
        case json::value_t::boolean: return "a boolean";
        case json::value_t::number_integer:
        case json::value_t::number_unsigned: return "an integer";
        case json::value_t::number_float: return "a float";
        default: return "something else";
    }
}

// Parses strictly: one JSON value and nothing after it; a key twice in one object is an error
// (nlohmann would silently keep the last one, which would let "device" say two things).
bool parse_strict(std::string_view text, json& out, std::string& why) {
    std::vector<std::set<std::string>> open;  // keys seen, one set per object being parsed
    std::string duplicate;
    json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) {
        if (ev == json::parse_event_t::object_start) open.emplace_back();
        else if (ev == json::parse_event_t::object_end) {
            if (!open.empty()) open.pop_back();
        } else if (ev == json::parse_event_t::key && !open.empty() && parsed.is_string()) {
            const auto& k = parsed.get_ref<const std::string&>();
            if (!open.back().insert(k).second && duplicate.empty()) duplicate = k;
        }
        return true;
    };
    out = json::parse(text.begin(), text.end(), cb, /*allow_exceptions=*/false);
    if (out.is_discarded()) {
        why = "output: not valid JSON (or text after it)";
        return false;
    }
    if (!duplicate.empty()) {
        why = std::string("output: key '").append(whitelist_sanitize(duplicate)).append("' appears twice");
        return false;
    }
    return true;
}

bool is_number(const json& j) { return j.is_number_integer() || j.is_number_unsigned() || j.is_number_float(); }

// Checks one argument value; returns "" or why not, and the canonical text in out.
std::string check_arg(const whitelist_arg& a, const json& v, std::string& out) {
    const std::string key = std::string("args.").append(a.name);
    if (!is_number(v)) return std::string(key).append(": expected a number, got ").append(json_type_name(v));
    double x = 0;
    if (a.integer) {
        if (v.is_number_float()) return std::string(key).append(": expected an integer, got a float");
        if (v.is_number_unsigned()) {
            const uint64_t u = v.get<uint64_t>();
            if (u > (uint64_t{1} << 53)) return std::string(key).append(": number too large");
            x = static_cast<double>(u);
        } else {
            const int64_t i = v.get<int64_t>();
            if (i > (int64_t{1} << 53) || i < -(int64_t{1} << 53)) return std::string(key).append(": number too large");
            x = static_cast<double>(i);
        }
    } else {
        x = v.get<double>();
        if (!std::isfinite(x)) return std::string(key).append(": not a finite number");
    }
    if (x < a.min) return std::string(key).append(": ").append(command_number(x)).append(" below min ").append(command_number(a.min));
    if (x > a.max) return std::string(key).append(": ").append(command_number(x)).append(" above max ").append(command_number(a.max));
    if (a.step > 0) {
        const double q = x / a.step;
        if (std::fabs(q - std::round(q)) > 1e-9 * std::max(1.0, std::fabs(q)))
            return std::string(key).append(": ").append(command_number(x)).append(" is not a multiple of ").append(command_number(a.step));
        // Snap to the grid so 21.500000000001 prints as 21.5.
        x = std::round(q) * a.step;
    }
    out = command_number(x);
    return "";
}

void put_number(nlohmann::ordered_json& j, const char* key, double v) {
    if (v == std::floor(v) && std::fabs(v) < 9e15) j[key] = static_cast<int64_t>(v);
    else j[key] = v;
}

}  // namespace

const char* command_status_name(command_status s) {
    switch (s) {
        case command_status::allowed: return "allowed";
        case command_status::unsupported: return "unsupported";
        default: return "filtered";
    }
}

std::string command_number(double v) {
    if (v == 0) return "0";  // also -0
    char buf[64];
    auto res = std::to_chars(buf, buf + sizeof buf, v);
    if (res.ec != std::errc()) return "0";
    return std::string(buf, res.ptr);
}

command_verdict command_check(const whitelist& wl, const std::string& client, std::string_view output) {
    if (output.size() > kCommandMaxBytes)
        return refuse(std::string("output: longer than ").append(std::to_string(kCommandMaxBytes)).append(" bytes"));
    // The JSON parser stops at a NUL as if the text ended there: whatever follows one would never
    // be looked at. (JSON itself has no raw NUL, inside strings or out.)
    if (output.find('\0') != std::string_view::npos) return refuse("output: contains a NUL byte");
    json j;
    std::string why;
    if (!parse_strict(output, j, why)) return refuse(why);
    if (!j.is_object()) return refuse(std::string("output: expected an object, got ").append(json_type_name(j)));

    if (j.contains("error")) {
        if (j.size() == 1 && j["error"].is_string() && j["error"].get_ref<const std::string&>() == "unsupported")
            return {command_status::unsupported, "", "{\"error\":\"unsupported\"}"};
        return refuse("output: an error must be exactly {\"error\":\"unsupported\"}");
    }
    for (auto it = j.begin(); it != j.end(); ++it)
        if (it.key() != "device" && it.key() != "action" && it.key() != "args")
            return refuse(std::string("output: unexpected key '").append(whitelist_sanitize(it.key())).append("'"));
    if (!j.contains("device")) return refuse("device: missing");
    if (!j.contains("action")) return refuse("action: missing");
    const json& jd = j["device"];
    const json& ja = j["action"];
    if (!jd.is_string()) return refuse(std::string("device: expected a string, got ").append(json_type_name(jd)));
    if (!ja.is_string()) return refuse(std::string("action: expected a string, got ").append(json_type_name(ja)));
    const std::string& device_id = jd.get_ref<const std::string&>();
    const std::string& action_name = ja.get_ref<const std::string&>();

    const whitelist_device* dev = wl.device_find(device_id);
    if (!dev) return refuse(std::string("device: unknown device '").append(whitelist_sanitize(device_id)).append("'"));
    const std::string refusal = wl.action_refusal(client, device_id, action_name);
    if (!refusal.empty()) return refuse(refusal);
    const whitelist_action* act = dev->action_find(action_name);

    std::string out = std::string("{\"device\":\"").append(dev->id).append("\",\"action\":\"").append(act->name).append("\"");
    if (act->args.empty()) {
        if (j.contains("args")) return refuse(std::string("args: action ").append(act->name).append(" takes no arguments"));
    } else {
        if (!j.contains("args")) return refuse(std::string("args: missing (action ").append(act->name).append(" needs arguments)"));
        const json& args = j["args"];
        if (!args.is_object()) return refuse(std::string("args: expected an object, got ").append(json_type_name(args)));
        for (auto it = args.begin(); it != args.end(); ++it) {
            bool known = false;
            for (const auto& a : act->args) known = known || a.name == it.key();
            if (!known) return refuse(std::string("args: unexpected argument '").append(whitelist_sanitize(it.key())).append("'"));
        }
        out.append(",\"args\":{");
        bool first = true;
        for (const auto& a : act->args) {
            if (!args.contains(a.name)) return refuse(std::string("args.").append(a.name).append(": missing"));
            std::string text;
            const std::string bad = check_arg(a, args[a.name], text);
            if (!bad.empty()) return refuse(bad);
            if (!first) out.push_back(',');
            first = false;
            out.append("\"").append(a.name).append("\":").append(text);
        }
        out.push_back('}');
    }
    out.push_back('}');
    return {command_status::allowed, "", std::move(out)};
}

std::string command_schema(const whitelist& wl, const std::string& client) {
    using ojson = nlohmann::ordered_json;
    ojson alts = ojson::array();
    for (const auto& d : wl.devices) {
        for (const auto& a : d.actions) {
            if (!wl.action_refusal(client, d.id, a.name).empty()) continue;
            ojson alt = ojson::object();
            alt["type"] = "object";
            ojson props = ojson::object();
            props["device"] = ojson{{"const", d.id}};
            props["action"] = ojson{{"const", a.name}};
            ojson required = ojson::array({"device", "action"});
            if (!a.args.empty()) {
                ojson aprops = ojson::object();
                ojson areq = ojson::array();
                for (const auto& arg : a.args) {
                    ojson s = ojson::object();
                    s["type"] = arg.integer ? "integer" : "number";
                    put_number(s, "minimum", arg.min);
                    put_number(s, "maximum", arg.max);
                    if (arg.step > 0) put_number(s, "multipleOf", arg.step);
                    aprops[arg.name] = std::move(s);
                    areq.push_back(arg.name);
                }
                ojson args = ojson::object();
                args["type"] = "object";
                args["properties"] = std::move(aprops);
                args["required"] = std::move(areq);
                props["args"] = std::move(args);
                required.push_back("args");
            }
            alt["properties"] = std::move(props);
            alt["required"] = std::move(required);
            alts.push_back(std::move(alt));
        }
    }
    ojson unsupported = ojson::object();
    unsupported["type"] = "object";
    unsupported["properties"] = ojson::object();
    unsupported["properties"]["error"] = ojson{{"const", "unsupported"}};
    unsupported["required"] = ojson::array({"error"});
    alts.push_back(std::move(unsupported));
    ojson root = ojson::object();
    root["oneOf"] = std::move(alts);
    return root.dump();
}

}  // namespace hearth
