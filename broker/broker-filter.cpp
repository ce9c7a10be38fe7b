// The broker's safety stages (design section 5), around the whitelist (schema/whitelist.h):
// - input filter, before a request is queued: client known, service allowed, size, deny patterns;
// - the `command` service: the fast path answers common phrasings without a model; other requests
//   go to a worker with the grammar (a JSON schema) built from the whitelist's home: every device
//   and action it names, with the argument ranges. Actions it denies (and devices a client may not
//   use) stay in the grammar on purpose: a model that may not say "unlock" says "lock" instead (we
//   measured exactly that), so the request must be able to come out as what was asked and be
//   refused below, rather than be bent into an allowed command;
// - output filter, over whatever the worker answered, trusting nothing: only a canonical, allowed
//   command or the explicit unsupported answer reaches the client. Every verdict is in the row.
#include "broker.h"

#include "command.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace hearth {

void broker::whitelist_reload() {
    const std::string& path = cfg_.broker.whitelist;
    if (path.empty()) return;
    try {
        auto wl = std::make_shared<const whitelist>(::hearth::whitelist_load(path));
        auto fast = std::make_shared<const command_matcher>(*wl);
        whitelist home = *wl;
        for (whitelist_device& d : home.devices) {
            for (const std::string& a : d.denied)
                if (!d.action_find(a)) d.actions.push_back(whitelist_action{a, {}});
            d.denied.clear();
        }
        home.clients = {whitelist_client{"*", {"command"}, true, {}, true, {}}};
        command_grammar_ = command_schema(home, "*");
        whitelist_ = std::move(wl);
        fast_path_ = std::move(fast);
        spdlog::info("broker: whitelist {}: {} devices, {} client entries, {} deny patterns", path, whitelist_->devices.size(),
                     whitelist_->clients.size(), whitelist_->deny.size());
    } catch (const std::exception& e) {
        // At start a bad file stops the broker; on reload the old whitelist stays in force.
        if (!whitelist_) throw std::runtime_error(std::string("whitelist: ") + e.what());
        spdlog::error("broker: whitelist not reloaded, the previous one stays in force: {}", e.what());
    }
}

std::string broker::input_refusal(const std::string& client, const wire::request& r) const {
    if (!whitelist_) return "";
    std::string text = r.prompt;
    for (const auto& t : r.messages) text.append(text.empty() ? "" : "\n").append(t.content);
    const input_verdict v = whitelist_->input_check(identity_of(client), r.service, text);
    return v.allowed ? "" : v.rule;
}

bool broker::command_prepare(const std::string& client, wire::request& r) {
    if (!whitelist_) {
        refuse(client, r, wire::error_code::unsupported, "the command service needs a whitelist (broker.whitelist)");
        return true;
    }
    const std::string who = identity_of(client);
    if (auto fast = fast_path_->match(who, r.prompt)) {
        // Trust the fast path no more than a model: the same output filter.
        const command_verdict v = command_check(*whitelist_, who, *fast);
        if (v.status == command_status::allowed) {
            const auto now = broker_clock::now();
            wire::final_reply fr;
            fr.id = r.id;
            fr.text = v.json;
            fr.finish_reason = "stop";
            fr.use.model = "fast-path";
            usage_row row;
            row.request_id = r.id;
            row.client = who;
            row.service = r.service;
            row.priority = std::string(wire::priority_name(r.prio));
            row.model = "fast-path";
            row.received_us = row.started_us = row.first_token_us = row.finished_us = wall_us(now);
            row.status = "ok";
            row.filter_verdict = "allowed";
            row.filter_rule = "fast-path";
            ++served_;
            if (!log_) {
                send_client(client, wire::command::final, wire::encode(fr));
                return true;
            }
            // Like every FINAL: out once its row is committed.
            const uint64_t key = next_key_++;
            held_[key] = held_final{client, fr.id, wire::encode(fr)};
            log_->submit(std::move(row), key);
            return true;
        }
        spdlog::error("broker: fast path answer refused by the output filter ({}); asking a worker", v.rule);
    }
    // Whatever the client sent, the grammar comes from the whitelist, and nothing streams: the
    // client sees the command only after the output filter passed it.
    r.schema = command_grammar_;
    r.stream = false;
    r.temperature = 0;
    r.max_tokens = std::min(r.max_tokens, 128);  // a command is a few dozen tokens; the grammar ends it
    return false;
}

bool broker::command_output(job& j, wire::final_reply& fr, uint64_t key) {
    const command_verdict v = whitelist_ ? command_check(*whitelist_, j.owner, fr.text)
                                         : command_verdict{command_status::filtered, "no whitelist loaded", ""};
    if (v.status == command_status::allowed) {
        fr.text = v.json;
        j.filter_verdict = "allowed";
        return true;
    }
    wire::error_code code = wire::error_code::unsupported;
    std::string message = "not a command this home supports";
    if (v.status == command_status::filtered) {
        code = wire::error_code::filtered;
        message = "the output filter refused the worker's answer: " + v.rule;
        j.filter_verdict = "filtered";
        j.filter_rule = v.rule;
        spdlog::warn("broker: output filter: request {} from {}: {}", j.req.id, j.owner, v.rule);
    } else {
        j.filter_verdict = "allowed";
    }
    // The row counts the worker's tokens; the client gets the verdict, never the text.
    log_job(j, std::string(wire::error_code_name(code)), 0, &fr, message);
    j.ended_for_client = true;
    const std::string client = j.client;
    job_erase(key);
    if (!client.empty()) send_client_error(client, fr.id, code, message);
    return false;
}

}  // namespace hearth
