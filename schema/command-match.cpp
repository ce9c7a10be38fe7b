// The fast path's lexicon and matcher. English action words, units and politeness live here; every
// device word comes from the whitelist (names, aliases, room names) plus a few domain nouns
// ("lights", "lamp", "fan") so that a room and a noun together pick one device.
#include "command-match.h"

#include "command.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

namespace hearth {

namespace {

enum class lex_kind : uint8_t { filler, article, device, cue, hint, value };

struct lexeme {
    lex_kind kind = lex_kind::filler;   // what the phrase means
    std::vector<size_t> devices;        // device: indexes into whitelist::devices it may name
    std::vector<std::string> actions;   // cue: actions it may mean (intersected with the device's)
    bool strong = true;                 // cue: must fit the device (weak cues are dropped if not)
    bool number_ok = false;             // cue: may appear beside a number ("put the heat on 25")
    std::string hint;                   // hint/value/cue: argument this word points at ("volume")
    bool percent = false;               // hint/value: a percentage (integer 0..100 arguments only)
    double value = 0;                   // value: the number a word stands for ("half" = 50)
};

// One understood piece of the utterance.
struct item {
    const lexeme* lex = nullptr;  // null for a number
    double number = 0;            // when lex is null
    bool integral = true;         // the number was written without a fraction
};

constexpr size_t kMaxTokens = 48;  // longer utterances are left to the model

}  // namespace

struct command_match_tables {
    std::unordered_map<std::string, lexeme> phrases;  // space-joined lower-case words -> meaning
    size_t max_words = 1;                             // longest phrase, in words
};

namespace {

size_t word_count(const std::string& p) { return static_cast<size_t>(std::count(p.begin(), p.end(), ' ')) + 1; }

void add(command_match_tables& t, const std::string& phrase, lexeme l) {
    t.max_words = std::max(t.max_words, word_count(phrase));
    t.phrases[phrase] = std::move(l);
}

void add_words(command_match_tables& t, std::initializer_list<const char*> words, const lexeme& l) {
    for (const char* w : words) add(t, w, l);
}

lexeme cue(std::vector<std::string> actions, bool strong = true, bool number_ok = false) {
    lexeme l;
    l.kind = lex_kind::cue;
    l.actions = std::move(actions);
    l.strong = strong;
    l.number_ok = number_ok;
    return l;
}

lexeme hint(const char* arg, bool percent = false) {
    lexeme l;
    l.kind = lex_kind::hint;
    l.hint = arg;
    l.percent = percent;
    return l;
}

lexeme value(double v, const char* arg, bool percent) {
    lexeme l = hint(arg, percent);
    l.kind = lex_kind::value;
    l.value = v;
    return l;
}

void add_builtin(command_match_tables& t) {
    lexeme filler;
    lexeme article;
    article.kind = lex_kind::article;
    add_words(t, {"the", "my", "a", "an", "our"}, article);
    add_words(t, {"please", "pls", "plz", "kindly", "could", "would", "can", "will", "you", "i", "want", "need",
                  "me", "hey", "hi", "hello", "ok", "okay", "alright", "yo", "assistant", "home", "computer", "jarvis",
                  "thanks", "thank", "thx", "now", "quickly", "immediately", "asap", "right now", "just", "back",
                  "anymore", "something", "in here", "playback", "set", "change", "adjust", "put", "make", "make sure",
                  "is", "are", "be", "turn", "switch", "get", "bring", "crank", "crank up", "to", "at", "in", "of",
                  "for", "it", "for me", "i want you to", "i need you to"},
              filler);

    add_words(t, {"turn on", "switch on", "power on", "power up", "flip on", "start up", "start", "activate", "enable",
                  "light up"},
              cue({"turn_on"}));
    add(t, "on", cue({"turn_on"}, true, true));
    add_words(t, {"off", "turn off", "switch off", "power off", "power down", "flip off", "shut off", "shut down",
                  "kill", "deactivate", "disable", "stop", "dont need", "do not need"},
              cue({"turn_off"}));
    add(t, "shut", cue({"turn_off", "close"}));
    add_words(t, {"toggle", "flip", "flick", "change the state of", "toggle the state of", "to the other state",
                  "on or off", "flip the switch for"},
              cue({"toggle"}));
    add_words(t, {"open", "open up", "opened", "roll up", "pull up", "raise"}, cue({"open"}));
    add(t, "up", cue({"open"}, false, true));
    add_words(t, {"close", "closed", "draw", "pull down", "lower"}, cue({"close"}));
    add(t, "down", cue({"close"}, false, true));
    add_words(t, {"lock", "locked", "lock up", "bolt", "engage"}, cue({"lock"}));
    add_words(t, {"unlock", "unlocked", "unlatch", "unbolt", "release"}, cue({"unlock"}));
    add_words(t, {"play", "unpause", "resume", "continue", "continue playing", "start playback", "press play"},
              cue({"play"}));
    add_words(t, {"pause", "hold"}, cue({"pause"}));
    lexeme warm = cue({"turn_on"}, false, true);
    warm.hint = "temperature";
    add(t, "warm", warm);

    add_words(t, {"brightness", "dim", "brighten"}, hint("brightness"));
    add_words(t, {"volume", "loud"}, hint("volume"));
    add_words(t, {"temperature", "temp", "deg", "degree", "degrees", "celsius", "\xc2\xb0", "c", "cool"},
              hint("temperature"));
    add_words(t, {"%", "percent", "per cent", "pct"}, hint("", true));
    add_words(t, {"half"}, value(50, "", true));
    add_words(t, {"full", "max", "max out"}, value(100, "", true));
    add_words(t, {"mute", "silence"}, value(0, "volume", false));
}

// Device words: built-in domain nouns, room names, then the whitelist's names and aliases (which
// win over a built-in meaning of the same phrase: the home's own words come first).
void add_devices(command_match_tables& t, const whitelist& wl) {
    std::unordered_map<std::string, std::vector<size_t>> mentions;
    const std::unordered_map<std::string, std::vector<std::string>> nouns = {
        {"light", {"light", "lights", "lamp", "lamps", "lighting", "lite"}},
        {"fan", {"fan", "fans"}},
    };
    for (size_t i = 0; i < wl.devices.size(); ++i) {
        const auto& d = wl.devices[i];
        std::vector<std::string> words;
        auto it = nouns.find(d.domain());
        if (it != nouns.end()) words = it->second;
        if (!d.room.empty())
            for (const auto& r : wl.room_names(d.room)) words.push_back(r);
        if (!d.name.empty()) words.push_back(d.name);
        for (const auto& a : d.aliases) words.push_back(a);
        for (auto w : words) {
            std::transform(w.begin(), w.end(), w.begin(), [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
            std::replace(w.begin(), w.end(), '-', ' ');
            auto& v = mentions[w];
            if (std::find(v.begin(), v.end(), i) == v.end()) v.push_back(i);
        }
    }
    for (auto& [phrase, devs] : mentions) {
        lexeme l;
        l.kind = lex_kind::device;
        l.devices = devs;
        add(t, phrase, std::move(l));
    }
}

// Lower case words; '%' and the degree sign are words of their own, "21c" is "21 c", "don't" is
// "dont", and a '.' stays only inside a number. Anything else separates words.
std::vector<std::string> tokenize(std::string_view text) {
    std::vector<std::string> out;
    std::string cur;
    auto flush = [&] {
        if (!cur.empty()) out.push_back(std::move(cur));
        cur.clear();
    };
    for (size_t i = 0; i < text.size(); ++i) {
        const unsigned char ch = static_cast<unsigned char>(text[i]);
        const bool digit = ch >= '0' && ch <= '9';
        if (std::isalpha(ch) || digit) {
            if (!digit && !cur.empty() && std::isdigit(static_cast<unsigned char>(cur.back()))) flush();
            cur.push_back(static_cast<char>(std::tolower(ch)));
        } else if (ch == '.' && !cur.empty() && std::isdigit(static_cast<unsigned char>(cur.back())) &&
                   i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
            cur.push_back('.');
        } else if (ch == '-' && i + 1 < text.size() && std::isdigit(static_cast<unsigned char>(text[i + 1]))) {
            flush();
            out.push_back("-");  // a minus sign: no phrase knows it, so "-3" is never read as 3
        } else if (ch == '\'') {
            // "don't" -> "dont"
        } else if (ch == '%') {
            flush();
            out.push_back("%");
        } else if (ch == 0xc2 && i + 1 < text.size() && static_cast<unsigned char>(text[i + 1]) == 0xb0) {
            flush();
            out.push_back("\xc2\xb0");
            ++i;
        } else if (ch >= 0x80) {
            cur.push_back(static_cast<char>(ch));  // other non-ASCII stays in a word, which then is unknown
        } else {
            flush();
        }
        if (out.size() > kMaxTokens) return out;
    }
    flush();
    return out;
}

int small_number(const std::string& w) {
    static const std::unordered_map<std::string, int> table = {
        {"zero", 0},      {"one", 1},        {"two", 2},        {"three", 3},      {"four", 4},      {"five", 5},
        {"six", 6},       {"seven", 7},      {"eight", 8},      {"nine", 9},       {"ten", 10},      {"eleven", 11},
        {"twelve", 12},   {"thirteen", 13},  {"fourteen", 14},  {"fifteen", 15},   {"sixteen", 16},  {"seventeen", 17},
        {"eighteen", 18}, {"nineteen", 19},  {"twenty", 20},    {"thirty", 30},    {"forty", 40},    {"fifty", 50},
        {"sixty", 60},    {"seventy", 70},   {"eighty", 80},    {"ninety", 90}};
    auto it = table.find(w);
    return it == table.end() ? -1 : it->second;
}

bool all_digits(const std::string& w) {
    return !w.empty() && std::all_of(w.begin(), w.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// A number at tok[i]: digits ("21", "21.5") or words ("twenty one", "a hundred"), then optionally
// "and a half" or "point five". Returns the words used (0: none).
size_t number_at(const std::vector<std::string>& tok, size_t i, double& v, bool& integral) {
    auto at = [&](size_t k) -> const std::string& {
        static const std::string none;
        return k < tok.size() ? tok[k] : none;
    };
    size_t n = 0;
    const std::string& w = at(i);
    if (!w.empty() && std::isdigit(static_cast<unsigned char>(w[0]))) {
        if (w.size() > 8) return 0;
        const size_t dots = static_cast<size_t>(std::count(w.begin(), w.end(), '.'));
        if (dots > 1) return 0;
        v = std::strtod(w.c_str(), nullptr);
        integral = dots == 0;
        n = 1;
    } else if ((w == "a" || w == "one") && at(i + 1) == "hundred") {
        v = 100, integral = true, n = 2;
    } else if (w == "hundred") {
        v = 100, integral = true, n = 1;
    } else {
        const int s = small_number(w);
        if (s < 0) return 0;
        v = s, integral = true, n = 1;
        const int next = small_number(at(i + 1));
        if (s >= 20 && s % 10 == 0 && next >= 1 && next <= 9) v += next, n = 2;
    }
    if (integral && at(i + n) == "and" && at(i + n + 1) == "a" && at(i + n + 2) == "half") {
        v += 0.5, integral = false, n += 3;
    } else if (integral && at(i + n) == "point") {
        const std::string& d = at(i + n + 1);
        const int s = small_number(d);
        if (all_digits(d) && d.size() <= 3) {
            v += std::strtod(std::string("0.").append(d).c_str(), nullptr);
        } else if (s >= 0 && s <= 9) {
            v += s / 10.0;
        } else {
            return 0;  // "point" followed by something else: not sure what was meant
        }
        integral = false, n += 2;
    }
    return n;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }
bool has_index(const std::vector<size_t>& v, size_t i) { return std::find(v.begin(), v.end(), i) != v.end(); }

}  // namespace

command_matcher::command_matcher(whitelist wl) : wl_(std::move(wl)) {
    auto t = std::make_shared<command_match_tables>();
    add_builtin(*t);
    add_devices(*t, wl_);
    tables_ = std::move(t);
}

std::optional<std::string> command_matcher::match(const std::string& client, std::string_view text) const {
    if (text.size() > 512) return std::nullopt;
    const std::vector<std::string> tok = tokenize(text);
    if (tok.empty() || tok.size() > kMaxTokens) return std::nullopt;
    // "is the kitchen light on" is a question, not an order: leave it to the model.
    static const std::vector<std::string> wake = {"hey", "hi", "hello", "ok", "okay", "alright", "yo", "assistant",
                                                  "home", "computer", "jarvis"};
    for (const auto& w : tok) {
        if (has(wake, w)) continue;
        if (w == "is" || w == "are" || w == "was" || w == "were") return std::nullopt;
        break;
    }

    // 1. Every word must be understood; phrases are matched longest first.
    std::vector<item> items;
    std::string key;
    for (size_t i = 0; i < tok.size();) {
        item it;
        const size_t used = number_at(tok, i, it.number, it.integral);
        if (used > 0) {
            items.push_back(it);
            i += used;
            continue;
        }
        size_t best = 0;
        for (size_t n = std::min(tables_->max_words, tok.size() - i); n >= 1 && best == 0; --n) {
            key.clear();
            for (size_t k = 0; k < n; ++k) {
                if (k) key.push_back(' ');
                key.append(tok[i + k]);
            }
            auto f = tables_->phrases.find(key);
            if (f != tables_->phrases.end()) it.lex = &f->second, best = n;
        }
        if (best == 0) return std::nullopt;
        items.push_back(it);
        i += best;
    }

    // 2. "on" before a device or a number is a preposition ("play on the tv", "put the heat on 25").
    static const lexeme preposition;
    for (size_t i = 0; i < items.size(); ++i) {
        if (!items[i].lex || items[i].lex->kind != lex_kind::cue || !has(items[i].lex->actions, "turn_on") ||
            !items[i].lex->number_ok)
            continue;
        size_t j = i + 1;
        while (j < items.size() && items[j].lex && items[j].lex->kind == lex_kind::article) ++j;
        if (j < items.size() && (!items[j].lex || items[j].lex->kind == lex_kind::device)) items[i].lex = &preposition;
    }

    // 3. Collect what was said.
    const size_t ndev = wl_.devices.size();
    std::vector<bool> candidate(ndev, true);
    bool mentioned = false;
    std::vector<const lexeme*> cues;
    std::string arg_hint;
    bool percent = false, hint_conflict = false, have_number = false, integral = true;
    double number = 0;
    int numbers = 0;
    auto note_hint = [&](const std::string& h) {
        if (h.empty()) return;
        if (!arg_hint.empty() && arg_hint != h) hint_conflict = true;
        arg_hint = h;
    };
    for (const auto& it : items) {
        if (!it.lex) {
            ++numbers, have_number = true, number = it.number, integral = it.integral;
            continue;
        }
        const lexeme& l = *it.lex;
        switch (l.kind) {
            case lex_kind::filler:
            case lex_kind::article: break;
            case lex_kind::device: {
                mentioned = true;
                for (size_t d = 0; d < ndev; ++d) candidate[d] = candidate[d] && has_index(l.devices, d);
                break;
            }
            case lex_kind::cue: cues.push_back(&l); break;
            case lex_kind::hint:
                percent = percent || l.percent;
                if (!l.hint.empty()) note_hint(l.hint);
                break;
            case lex_kind::value:
                ++numbers, have_number = true, number = l.value, integral = true;
                percent = percent || l.percent;
                note_hint(l.hint);
                break;
        }
    }
    if (numbers > 1 || hint_conflict) return std::nullopt;

    std::string device, action;
    const whitelist_arg* arg = nullptr;
    int found = 0;
    if (have_number) {
        // 4a. A number sets the one single-argument action the device and the words point at.
        for (const lexeme* c : cues) {
            if (!c->number_ok) return std::nullopt;
            note_hint(c->hint);
        }
        if (hint_conflict || (!mentioned && arg_hint.empty())) return std::nullopt;
        for (size_t d = 0; d < ndev; ++d) {
            if (!candidate[d]) continue;
            for (const auto& a : wl_.devices[d].actions) {
                if (a.args.size() != 1) continue;
                const whitelist_arg& x = a.args[0];
                if (!arg_hint.empty() && x.name != arg_hint) continue;
                if (percent && !(x.integer && x.min >= 0 && x.max <= 100)) continue;
                if (++found == 1) device = wl_.devices[d].id, action = a.name, arg = &x;
            }
        }
        if (found != 1) return std::nullopt;
        if (arg->integer && !integral) return std::nullopt;
        if (number < arg->min || number > arg->max) return std::nullopt;
    } else {
        // 4b. No number: the cues must agree on one action the device has.
        if (!arg_hint.empty() || percent || cues.empty()) return std::nullopt;
        const bool any_strong = std::any_of(cues.begin(), cues.end(), [](const lexeme* c) { return c->strong; });
        for (size_t d = 0; d < ndev; ++d) {
            if (!candidate[d]) continue;
            const auto& dev = wl_.devices[d];
            std::vector<std::string> agreed;
            bool first = true, ok = true;
            for (const lexeme* c : cues) {
                if (c->strong != any_strong) continue;  // weak cues count only when no strong one was said
                std::vector<std::string> fit;
                for (const auto& a : c->actions)
                    if (dev.action_find(a)) fit.push_back(a);
                if (fit.empty()) {
                    if (c->strong) ok = false;
                    continue;
                }
                if (first) agreed = fit, first = false;
                else {
                    std::vector<std::string> both;
                    for (const auto& a : agreed)
                        if (has(fit, a)) both.push_back(a);
                    agreed = both;
                }
            }
            if (!ok || first || agreed.size() != 1) continue;
            if (++found == 1) device = dev.id, action = agreed[0];
        }
        if (found != 1) return std::nullopt;
    }

    // 5. Print it, then let the output filter judge it like any model output.
    std::string json = std::string("{\"device\":\"").append(device).append("\",\"action\":\"").append(action).append("\"");
    if (arg) json.append(",\"args\":{\"").append(arg->name).append("\":").append(command_number(number)).append("}");
    json.push_back('}');
    const command_verdict v = command_check(wl_, client, json);
    if (v.status != command_status::allowed) return std::nullopt;
    return v.json;
}

}  // namespace hearth
