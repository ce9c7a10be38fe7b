// The worker's engine side: runs up to `slots` requests at once on one model, decoding them
// together in each engine step (continuous batching), and reports what they produce as events.
// Single-threaded: the worker's engine thread owns it. Knows nothing of sockets.
#pragma once

#include "context.h"
#include "chat-template.h"
#include "grammar.h"
#include "model.h"
#include "sampler.h"

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace hearth {

struct generation_request {
    std::string id;
    bool chat = false;                     // render `messages` with the model's chat template
    std::string prompt;                    // !chat: the raw text
    std::vector<chat_message> messages;    // chat: the conversation
    int32_t max_tokens = 256;              // completion tokens, resume_tokens included
    sampler_params sampling;
    std::vector<std::string> stop;         // generation ends before the first of these
    std::optional<std::chrono::steady_clock::time_point> deadline;
    std::string resume_text;               // already delivered: continue after it, never repeat it
    int32_t resume_tokens = 0;
    std::shared_ptr<const grammar> constraint;  // set: the output must be a sentence of it (ends when it is complete)
};

struct generation_event {
    enum class kind { partial, final, error };
    kind type = kind::partial;
    std::string id;
    std::string text;                      // partial: new text (whole UTF-8 characters); final: all of it (resume_text excluded)
    int32_t tokens = 0;                    // partial: tokens behind this text
    // final only:
    std::string finish_reason;             // "stop" (end of generation or stop string), "length"
    int32_t prompt_tokens = 0;
    int32_t completion_tokens = 0;         // resume_tokens included
    double ttft_ms = 0;                    // submit -> first token
    double gen_ms = 0;                     // first token -> last
    double tokens_per_s = 0;
    // error only: a wire error code name (too_large, bad_request, cancelled, timeout, internal)
    std::string code;
    std::string message;
};

// What a request may still add to the KV cache (generator::kv_needs).
struct kv_need {
    std::string id;        // the request
    uint64_t bytes = 0;    // KV bytes it may still write before it ends
    bool waiting = false;  // not admitted yet (nothing written)
};

struct generator_params {
    int32_t slots = 4;
    int32_t n_ctx = 2048;                  // positions per slot (capped at the model's training context)
    int32_t n_threads = 0;                 // 0: all cores
    int32_t batch_size = 256;              // prompt tokens per step
};

class generator {
public:
    using event_sink = std::function<void(const generation_event&)>;

    generator(const model& m, const generator_params& params, event_sink sink);
    ~generator();
    generator(const generator&) = delete;
    generator& operator=(const generator&) = delete;

    // Takes a request; it starts at a following step when a slot is free. Problems found now
    // (prompt does not fit the context, chat on a model whose template cannot render a role)
    // are reported as an error event before submit returns.
    void submit(generation_request r);
    // Stops a request (queued or running) with an error event of `code` ("cancelled" or
    // "timeout"); unknown ids are ignored.
    void cancel(const std::string& id, const std::string& code = "cancelled");
    void cancel_all(const std::string& code = "cancelled");
    // Ends a request (running or waiting) with an error event carrying `code` (e.g. "overloaded")
    // and `message`; its slot is free at once. Unknown ids are ignored. Safe from inside the sink.
    void fail(const std::string& id, const std::string& code, const std::string& message);

    // Memory pressure controls (the worker's resource guard):
    // At most n requests run at once from now, n clamped to [0, slots]; default slots. Lowering it
    // stops nothing: running requests go on, and no waiting one starts until fewer than n run.
    // 0: no new request starts; waiting ones keep waiting.
    void set_admit_limit(int32_t n);
    int32_t admit_limit() const;
    // Returns the KV cache pages of every slot without a request to the OS. Returns the bytes
    // those slots reserve (kv_bytes_per_token * n_ctx each): an upper bound of what went back
    // (pages never written were not resident). A freed slot's next request faults them back in.
    uint64_t release_idle();
    // For every running and waiting request: the KV bytes it may still write before it ends:
    // (min(n_ctx, prompt tokens + tokens still to generate) - positions already written) *
    // kv_bytes_per_token. Prompts are tokenized at submit, so waiting requests use their real
    // prompt length too. Running first (by slot), then waiting (in queue order).
    std::vector<kv_need> kv_needs() const;
    uint64_t kv_bytes_per_token() const;   // the context's: K+V of one position, all layers

    // One engine step: admits waiting requests to free slots (up to the admit limit), evaluates
    // up to batch_size prompt tokens plus one token per generating request, samples, sends
    // events, and ends requests past their deadline (error "timeout"). Returns false when there
    // was nothing to do (requests held back by the admit limit do not count).
    bool step();

    int32_t slots() const;
    int32_t free_slots() const;            // admit_limit() minus running and waiting requests (>= 0)
    int32_t n_ctx() const;
    std::vector<std::string> running_ids() const;  // running and waiting
    bool idle() const;

    struct impl;
private:
    std::unique_ptr<impl> impl_;
};

}  // namespace hearth
