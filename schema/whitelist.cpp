// Reading and querying the safety whitelist. Like config.cpp, every problem of a file is collected
// and reported together (sorted by position) with did-you-mean hints for unknown keys; unlike it,
// each message carries the column too, since one line may hold several inline tables.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "whitelist.h"

#include "spelling.h"
#include "toml-names.h"

#include <pcre2.h>
#include <toml++/toml.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

namespace hearth {

struct whitelist_regex {
    pcre2_code* code = nullptr;  // owned; matching only reads it, so sharing across threads is fine
    ~whitelist_regex() { pcre2_code_free(code); }
};

namespace {

const std::vector<std::string> kTopKeys = {"version", "input", "rooms", "devices", "clients"};
const std::vector<std::string> kInputKeys = {"max_prompt_bytes", "deny"};
const std::vector<std::string> kDenyKeys = {"name", "pattern", "services"};
const std::vector<std::string> kDeviceKeys = {"id", "name", "room", "aliases", "actions", "deny", "args"};
const std::vector<std::string> kArgKeys = {"type", "min", "max", "step"};
const std::vector<std::string> kClientKeys = {"id", "services", "devices", "actions"};
constexpr size_t kMaxPhrase = 64;  // longest alias or room name

bool is_word_char(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'; }

bool valid_word(const std::string& s) {
    return !s.empty() && s.size() <= 64 && std::all_of(s.begin(), s.end(), is_word_char);
}

bool valid_device_id(const std::string& s) {
    const size_t dot = s.find('.');
    if (dot == std::string::npos) return false;
    return valid_word(s.substr(0, dot)) && valid_word(s.substr(dot + 1));
}

bool valid_service_name(const std::string& s) {
    if (s.empty() || s.size() > 32) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) { return is_word_char(ch) || ch == '-'; });
}

bool valid_client_id(const std::string& s) {
    if (s == "*") return true;
    if (s.empty() || s.size() > 128) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) { return ch > 0x20 && ch < 0x7f && ch != '*'; });
}

std::string quoted(const std::string& s) { return std::string("'").append(whitelist_sanitize(s)).append("'"); }

struct problem {
    uint32_t line;     // 0 when unknown
    uint32_t column;   // 0 when unknown
    std::string text;  // complete message
};

class whitelist_reader {
public:
    explicit whitelist_reader(std::string source) : source_(std::move(source)) {}

    void fail(const toml::source_region& where, const std::string& key, const std::string& what) {
        std::string msg = prefix(where.begin.line, where.begin.column);
        if (!key.empty()) msg.append(key).append(": ");
        msg.append(what);
        problems_.push_back({where.begin.line, where.begin.column, std::move(msg)});
    }

    void unknown(const toml::key& k, const std::string& section, const std::vector<std::string>& known) {
        const std::string name(k.str());
        std::string msg = prefix(k.source().begin.line, k.source().begin.column);
        msg.append(qualify(section, name)).append(": unknown key");
        const std::string best = spelling_closest(name, known);  // only close misspellings
        if (!best.empty()) msg.append(" (did you mean '").append(best).append("'?)");
        problems_.push_back({k.source().begin.line, k.source().begin.column, std::move(msg)});
    }

    std::optional<std::string> read_string(const toml::node& n, const std::string& key) {
        const auto* s = n.as_string();
        if (!s) {
            fail(n.source(), key, std::string("expected a string, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        return s->get();
    }

    std::optional<double> read_number(const toml::node& n, const std::string& key) {
        if (const auto* i = n.as_integer()) return static_cast<double>(i->get());
        if (const auto* f = n.as_floating_point()) {
            if (!std::isfinite(f->get())) {
                fail(n.source(), key, "must be a finite number");
                return std::nullopt;
            }
            return f->get();
        }
        fail(n.source(), key, std::string("expected a number, got ").append(toml_type_name(n.type())));
        return std::nullopt;
    }

    // An array of strings, each checked by ok (which returns "" or why not); duplicates refused.
    std::optional<std::vector<std::string>> read_list(const toml::node& n, const std::string& key,
                                                      std::string (*ok)(const std::string&)) {
        const auto* a = n.as_array();
        if (!a) {
            fail(n.source(), key, std::string("expected an array of strings, got ").append(toml_type_name(n.type())));
            return std::nullopt;
        }
        std::vector<std::string> out;
        bool good = true;
        for (size_t i = 0; i < a->size(); ++i) {
            const toml::node& el = *a->get(i);
            const std::string el_key = std::string(key).append("[").append(std::to_string(i)).append("]");
            const auto* s = el.as_string();
            std::string why;
            if (!s) why = std::string("expected a string, got ").append(toml_type_name(el.type()));
            else if (!(why = ok(s->get())).empty()) {
            } else if (std::find(out.begin(), out.end(), s->get()) != out.end())
                why = quoted(s->get()).append(" is listed twice");
            if (!why.empty()) {
                fail(el.source(), el_key, why);
                good = false;
            } else {
                out.push_back(s->get());
            }
        }
        if (!good) return std::nullopt;
        return out;
    }

    const toml::table* read_table(const toml::node& n, const std::string& key) {
        const auto* t = n.as_table();
        if (!t) fail(n.source(), key, std::string("expected a table, got ").append(toml_type_name(n.type())));
        return t;
    }

    void throw_if_failed() const {
        if (problems_.empty()) return;
        std::vector<problem> sorted = problems_;
        std::stable_sort(sorted.begin(), sorted.end(), [](const problem& a, const problem& b) {
            return a.line != b.line ? a.line < b.line : a.column < b.column;
        });
        std::string all;
        for (const auto& p : sorted) {
            if (!all.empty()) all.push_back('\n');
            all.append(p.text);
        }
        throw whitelist_error(all);
    }

    static std::string qualify(const std::string& section, const std::string& name) {
        return section.empty() ? name : std::string(section).append(".").append(name);
    }

private:
    std::string prefix(uint32_t line, uint32_t column) const {
        std::string p = source_;
        p.append(":").append(std::to_string(line)).append(":").append(std::to_string(column));
        return p.append(": ");
    }

    std::string source_;              // file name used in messages
    std::vector<problem> problems_;   // in the order found
};

// --- list element checks (return "" when fine) --------------------------------------------------

std::string check_service(const std::string& s) {
    return valid_service_name(s) ? "" : quoted(s).append(" is not a service name (1 to 32 of a-z, 0-9, '_' and '-')");
}
std::string check_word(const std::string& s) {
    return valid_word(s) ? "" : quoted(s).append(" is not a name (1 to 64 of a-z, 0-9 and '_')");
}
std::string check_phrase(const std::string& s) {
    if (s.empty() || s.size() > kMaxPhrase) return "must be 1 to 64 bytes";
    for (char ch : s)
        if (static_cast<unsigned char>(ch) < 0x20 || ch == 0x7f) return "must not hold control characters";
    return "";
}
std::string check_device_or_star(const std::string& s) {
    return (s == "*" || valid_device_id(s)) ? "" : quoted(s).append(" is not a device id (domain.name) or '*'");
}
std::string check_action_or_star(const std::string& s) { return s == "*" ? "" : check_word(s); }

std::string compile_regex(const std::string& pattern, std::shared_ptr<const whitelist_regex>& out) {
    int err = 0;
    PCRE2_SIZE off = 0;
    // MATCH_INVALID_UTF: input text is untrusted and may not be UTF-8; it must still be searched.
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                     PCRE2_CASELESS | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
    if (!code) {
        PCRE2_UCHAR buf[256];
        pcre2_get_error_message(err, buf, sizeof buf);
        return std::string("bad regular expression at offset ").append(std::to_string(off)).append(": ").append(
            reinterpret_cast<const char*>(buf));
    }
    auto r = std::make_shared<whitelist_regex>();
    r->code = code;
    out = std::move(r);
    return "";
}

// --- sections ------------------------------------------------------------------------------------

void read_input(whitelist_reader& r, const toml::table& t, whitelist& w) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string q = std::string("input.").append(key);
        if (key == "max_prompt_bytes") {
            const auto* i = v.as_integer();
            if (!i) r.fail(v.source(), q, std::string("expected an integer, got ").append(toml_type_name(v.type())));
            else if (i->get() < 1 || i->get() > (16 << 20))
                r.fail(v.source(), q, std::to_string(i->get()).append(" is out of range 1..16777216"));
            else w.max_prompt_bytes = static_cast<uint32_t>(i->get());
        } else if (key == "deny") {
            const auto* a = v.as_array();
            if (!a) {
                r.fail(v.source(), q, std::string("expected an array of tables, got ").append(toml_type_name(v.type())));
                continue;
            }
            for (size_t i = 0; i < a->size(); ++i) {
                const std::string dq = std::string(q).append("[").append(std::to_string(i)).append("]");
                const auto* dt = r.read_table(*a->get(i), dq);
                if (!dt) continue;
                whitelist_deny d;
                const toml::node* pattern_node = nullptr;
                for (auto&& [dk, dv] : *dt) {
                    const std::string dkey(dk.str());
                    const std::string dkq = whitelist_reader::qualify(dq, dkey);
                    if (dkey == "name") {
                        auto s = r.read_string(dv, dkq);
                        if (s && !valid_service_name(*s))
                            r.fail(dv.source(), dkq, quoted(*s).append(" is not a rule name (1 to 32 of a-z, 0-9, '_' and '-')"));
                        else if (s && std::any_of(w.deny.begin(), w.deny.end(), [&](const whitelist_deny& o) { return o.name == *s; }))
                            r.fail(dv.source(), dkq, quoted(*s).append(" is used by an earlier deny rule"));
                        else if (s) d.name = *s;
                    } else if (dkey == "pattern") {
                        pattern_node = &dv;
                        auto s = r.read_string(dv, dkq);
                        if (!s) continue;
                        if (s->empty()) {
                            r.fail(dv.source(), dkq, "must not be empty");
                            continue;
                        }
                        const std::string why = compile_regex(*s, d.regex);
                        if (!why.empty()) r.fail(dv.source(), dkq, why);
                        d.pattern = *s;
                    } else if (dkey == "services") {
                        auto s = r.read_list(dv, dkq, check_service);
                        if (s) d.services = *s;
                    } else {
                        r.unknown(dk, dq, kDenyKeys);
                    }
                }
                if (d.name.empty() && !dt->contains("name")) r.fail(dt->source(), dq, "needs a 'name'");
                if (!pattern_node) r.fail(dt->source(), dq, "needs a 'pattern'");
                if (!d.name.empty() && d.regex) w.deny.push_back(std::move(d));
            }
        } else {
            r.unknown(k, "input", kInputKeys);
        }
    }
}

void read_rooms(whitelist_reader& r, const toml::table& t, whitelist& w) {
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string q = std::string("rooms.").append(key);
        if (!valid_word(key)) {
            r.fail(k.source(), q, quoted(key).append(" is not a room id (1 to 64 of a-z, 0-9 and '_')"));
            continue;
        }
        auto names = r.read_list(v, q, check_phrase);
        if (names) w.rooms[key] = *names;
    }
}

std::optional<whitelist_arg> read_arg(whitelist_reader& r, const toml::node& n, const std::string& q,
                                      const std::string& name) {
    const auto* t = r.read_table(n, q);
    if (!t) return std::nullopt;
    whitelist_arg a;
    a.name = name;
    bool ok = true, have_type = false, have_min = false, have_max = false;
    const toml::node* max_node = nullptr;
    for (auto&& [k, v] : *t) {
        const std::string key(k.str());
        const std::string kq = whitelist_reader::qualify(q, key);
        if (key == "type") {
            auto s = r.read_string(v, kq);
            if (s && (*s == "integer" || *s == "number")) a.integer = (*s == "integer"), have_type = true;
            else if (s) r.fail(v.source(), kq, quoted(*s).append(" is not 'integer' or 'number'")), ok = false;
            else ok = false;
        } else if (key == "min" || key == "max" || key == "step") {
            auto x = r.read_number(v, kq);
            if (!x) {
                ok = false;
                continue;
            }
            if (std::fabs(*x) > 1e15) {
                r.fail(v.source(), kq, "must be within +-1e15");
                ok = false;
            } else if (key == "min") a.min = *x, have_min = true;
            else if (key == "max") a.max = *x, have_max = true, max_node = &v;
            else if (*x <= 0) r.fail(v.source(), kq, "must be greater than 0"), ok = false;
            else a.step = *x;
        } else {
            r.unknown(k, q, kArgKeys);
        }
    }
    if (!have_type && ok) r.fail(t->source(), q, "needs a 'type' (integer or number)"), ok = false;
    if (!have_min) r.fail(t->source(), q, "needs a 'min'"), ok = false;
    if (!have_max) r.fail(t->source(), q, "needs a 'max'"), ok = false;
    if (!ok) return std::nullopt;
    if (a.min > a.max) {
        r.fail(max_node ? max_node->source() : t->source(), whitelist_reader::qualify(q, "min"), "must not exceed max");
        return std::nullopt;
    }
    if (a.integer) {
        for (double x : {a.min, a.max, a.step})
            if (x != std::floor(x)) {
                r.fail(t->source(), q, "an integer argument needs whole min, max and step");
                return std::nullopt;
            }
    }
    return a;
}

void read_device(whitelist_reader& r, const toml::table& t, const std::string& q, whitelist& w) {
    whitelist_device d;
    d.line = t.source().begin.line;
    const toml::node* args_node = nullptr;
    bool ok = true;
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string kq = whitelist_reader::qualify(q, key);
        if (key == "id") {
            auto s = r.read_string(v, kq);
            if (!s) ok = false;
            else if (!valid_device_id(*s))
                r.fail(v.source(), kq, quoted(*s).append(" is not a device id (domain.name, each 1 to 64 of a-z, 0-9 and '_')")), ok = false;
            else if (const auto* prev = w.device_find(*s))
                r.fail(v.source(), kq, quoted(*s).append(" is already defined on line ").append(std::to_string(prev->line))), ok = false;
            else d.id = *s;
        } else if (key == "name") {
            auto s = r.read_string(v, kq);
            if (s && !check_phrase(*s).empty()) r.fail(v.source(), kq, check_phrase(*s)), ok = false;
            else if (s) d.name = *s;
        } else if (key == "room") {
            auto s = r.read_string(v, kq);
            if (s && !valid_word(*s)) r.fail(v.source(), kq, quoted(*s).append(" is not a room id (1 to 64 of a-z, 0-9 and '_')")), ok = false;
            else if (s) d.room = *s;
        } else if (key == "aliases") {
            auto s = r.read_list(v, kq, check_phrase);
            if (s) d.aliases = *s;
        } else if (key == "actions") {
            auto s = r.read_list(v, kq, check_word);
            if (s)
                for (auto& a : *s) d.actions.push_back({a, {}});
            else ok = false;
        } else if (key == "deny") {
            auto s = r.read_list(v, kq, check_word);
            if (s) d.denied = *s;
        } else if (key == "args") {
            args_node = &v;
        } else {
            r.unknown(k, q, kDeviceKeys);
        }
    }
    if (!t.contains("id")) r.fail(t.source(), q, "needs an 'id'"), ok = false;
    if (!t.contains("actions")) r.fail(t.source(), q, "needs 'actions' (the actions allowed)"), ok = false;
    for (const auto& a : d.denied)
        if (d.action_find(a)) r.fail(t.get("deny")->source(), whitelist_reader::qualify(q, "deny"), quoted(a).append(" is also in actions"));
    if (args_node) {
        const std::string aq = whitelist_reader::qualify(q, "args");
        if (const auto* at = r.read_table(*args_node, aq)) {
            for (auto&& [ak, av] : *at) {
                const std::string action(ak.str());
                const std::string akq = whitelist_reader::qualify(aq, action);
                auto it = std::find_if(d.actions.begin(), d.actions.end(), [&](const whitelist_action& x) { return x.name == action; });
                if (it == d.actions.end()) {
                    r.fail(ak.source(), akq, quoted(action).append(" is not in this device's actions"));
                    continue;
                }
                const auto* argt = r.read_table(av, akq);
                if (!argt) continue;
                for (auto&& [nk, nv] : *argt) {
                    const std::string arg(nk.str());
                    const std::string nq = whitelist_reader::qualify(akq, arg);
                    if (!valid_word(arg)) {
                        r.fail(nk.source(), nq, quoted(arg).append(" is not an argument name (1 to 64 of a-z, 0-9 and '_')"));
                        continue;
                    }
                    auto parsed = read_arg(r, nv, nq, arg);
                    if (parsed) it->args.push_back(*parsed);
                }
            }
        }
    }
    if (ok) w.devices.push_back(std::move(d));
}

void read_client(whitelist_reader& r, const toml::table& t, const std::string& q, whitelist& w) {
    whitelist_client c;
    bool ok = true;
    for (auto&& [k, v] : t) {
        const std::string key(k.str());
        const std::string kq = whitelist_reader::qualify(q, key);
        if (key == "id") {
            auto s = r.read_string(v, kq);
            if (!s) ok = false;
            else if (!valid_client_id(*s))
                r.fail(v.source(), kq, quoted(*s).append(" is not a client identity (printable, no spaces, or exactly '*')")), ok = false;
            else if (std::any_of(w.clients.begin(), w.clients.end(), [&](const whitelist_client& o) { return o.id == *s; }))
                r.fail(v.source(), kq, quoted(*s).append(" is listed twice")), ok = false;
            else c.id = *s;
        } else if (key == "services") {
            auto s = r.read_list(v, kq, check_service);
            if (s) c.services = *s;
            else ok = false;
        } else if (key == "devices") {
            auto s = r.read_list(v, kq, check_device_or_star);
            if (!s) {
                ok = false;
                continue;
            }
            c.all_devices = std::find(s->begin(), s->end(), "*") != s->end();
            c.devices = *s;
            for (const auto& id : *s)
                if (id != "*" && !w.device_find(id)) r.fail(v.source(), kq, quoted(id).append(" is not a device defined above")), ok = false;
        } else if (key == "actions") {
            auto s = r.read_list(v, kq, check_action_or_star);
            if (!s) {
                ok = false;
                continue;
            }
            c.all_actions = std::find(s->begin(), s->end(), "*") != s->end();
            c.actions = *s;
        } else {
            r.unknown(k, q, kClientKeys);
        }
    }
    if (!t.contains("id")) r.fail(t.source(), q, "needs an 'id'"), ok = false;
    if (!t.contains("services")) r.fail(t.source(), q, "needs 'services'"), ok = false;
    if (ok) w.clients.push_back(std::move(c));
}

// Arrays of tables ([[devices]], [[clients]]); each element is read by fn.
template <class Fn>
void read_array_of_tables(whitelist_reader& r, const toml::node& v, const std::string& key, Fn fn) {
    const auto* a = v.as_array();
    if (!a) {
        r.fail(v.source(), key, std::string("expected an array of tables ([[").append(key).append("]]), got ").append(toml_type_name(v.type())));
        return;
    }
    for (size_t i = 0; i < a->size(); ++i) {
        const std::string q = std::string(key).append("[").append(std::to_string(i)).append("]");
        if (const auto* t = r.read_table(*a->get(i), q)) fn(*t, q);
    }
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
    return std::find(v.begin(), v.end(), s) != v.end();
}

}  // namespace

std::string whitelist_sanitize(std::string_view text, size_t max_len) {
    std::string out;
    for (char ch : text) {
        if (out.size() >= max_len) {
            out.append("...");
            break;
        }
        out.push_back((ch >= 0x20 && ch < 0x7f) ? ch : '?');
    }
    return out;
}

const whitelist_action* whitelist_device::action_find(std::string_view action) const {
    for (const auto& a : actions)
        if (a.name == action) return &a;
    return nullptr;
}

const whitelist_device* whitelist::device_find(std::string_view id) const {
    for (const auto& d : devices)
        if (d.id == id) return &d;
    return nullptr;
}

const whitelist_client* whitelist::client_find(const std::string& client) const {
    const whitelist_client* star = nullptr;
    for (const auto& c : clients) {
        if (c.id == client) return &c;
        if (c.id == "*") star = &c;
    }
    return star;
}

bool whitelist::service_allowed(const std::string& client, const std::string& service) const {
    const auto* c = client_find(client);
    return c && contains(c->services, service);
}

std::string whitelist::action_refusal(const std::string& client, std::string_view device, std::string_view action) const {
    const auto* d = device_find(device);
    if (!d) return std::string("device ").append(whitelist_sanitize(device)).append(": unknown device");
    if (!d->action_find(action))
        return std::string("device ").append(d->id).append(": action ").append(whitelist_sanitize(action)).append(" not allowed");
    const auto* c = client_find(client);
    const std::string who = whitelist_sanitize(client);
    if (!c) return std::string("client ").append(who).append(": not listed");
    if (!contains(c->services, "command"))
        return std::string("service:command not allowed for client ").append(who);
    if (!c->all_devices && !contains(c->devices, d->id))
        return std::string("client ").append(who).append(": device ").append(d->id).append(" not allowed");
    if (!c->all_actions && !contains(c->actions, action))
        return std::string("client ").append(who).append(": action ").append(whitelist_sanitize(action)).append(" not allowed");
    return "";
}

input_verdict whitelist::input_check(const std::string& client, const std::string& service, std::string_view text) const {
    const std::string who = whitelist_sanitize(client);
    const auto* c = client_find(client);
    if (!c) return {false, std::string("client ").append(who).append(": not listed")};
    if (!contains(c->services, service))
        return {false, std::string("service:").append(whitelist_sanitize(service)).append(" not allowed for client ").append(who)};
    if (text.size() > max_prompt_bytes)
        return {false, std::string("size: ").append(std::to_string(text.size())).append(" bytes over max_prompt_bytes ").append(
                           std::to_string(max_prompt_bytes))};
    for (const auto& d : deny) {
        if (!d.services.empty() && !contains(d.services, service)) continue;
        pcre2_match_data* md = pcre2_match_data_create_from_pattern(d.regex->code, nullptr);
        if (!md) return {false, "deny: out of memory"};  // fail closed
        const int rc = pcre2_match(d.regex->code, reinterpret_cast<PCRE2_SPTR>(text.data()), text.size(), 0, 0, md, nullptr);
        pcre2_match_data_free(md);
        // Errors other than "no match" (match limits) fail closed too: the text is not proven clean.
        if (rc != PCRE2_ERROR_NOMATCH) return {false, std::string("deny:").append(d.name)};
    }
    return {true, ""};
}

std::vector<std::string> whitelist::room_names(const std::string& room) const {
    auto it = rooms.find(room);
    if (it != rooms.end()) return it->second;
    std::string spoken = room;
    std::replace(spoken.begin(), spoken.end(), '_', ' ');
    return {spoken};
}

whitelist whitelist_parse(const std::string& text, const std::string& source) {
    const std::string name = source.empty() ? std::string("<whitelist>") : source;
    toml::table root;
    try {
        root = toml::parse(text, name);
    } catch (const toml::parse_error& e) {
        const auto& at = e.source().begin;
        std::string msg = name;
        msg.append(":").append(std::to_string(at.line)).append(":").append(std::to_string(at.column));
        msg.append(": ").append(e.description());
        throw whitelist_error(msg);
    }
    whitelist_reader r(name);
    whitelist w;
    w.source = name;
    // Devices first: clients refer to them, whatever order the file uses.
    if (const auto* dv = root.get("devices"))
        read_array_of_tables(r, *dv, "devices", [&](const toml::table& t, const std::string& q) { read_device(r, t, q, w); });
    for (auto&& [k, v] : root) {
        const std::string key(k.str());
        if (key == "version") {
            const auto* i = v.as_integer();
            if (!i) r.fail(v.source(), key, std::string("expected an integer, got ").append(toml_type_name(v.type())));
            else if (i->get() != 1) r.fail(v.source(), key, std::to_string(i->get()).append(" is not a supported version (1)"));
        } else if (key == "input") {
            if (const auto* t = r.read_table(v, key)) read_input(r, *t, w);
        } else if (key == "rooms") {
            if (const auto* t = r.read_table(v, key)) read_rooms(r, *t, w);
        } else if (key == "devices") {
        } else if (key == "clients") {
            read_array_of_tables(r, v, key, [&](const toml::table& t, const std::string& q) { read_client(r, t, q, w); });
        } else {
            r.unknown(k, "", kTopKeys);
        }
    }
    if (!root.contains("version")) r.fail(root.source(), "version", "missing (write version = 1)");
    r.throw_if_failed();
    return w;
}

whitelist whitelist_load(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        const int err = errno;
        throw whitelist_error(std::string(path).append(": cannot read: ").append(std::strerror(err)));
    }
    std::ostringstream text;
    text << in.rdbuf();
    if (in.bad()) throw whitelist_error(std::string(path).append(": read error"));
    return whitelist_parse(text.str(), path);
}

}  // namespace hearth
