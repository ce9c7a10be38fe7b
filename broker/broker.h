// hearth-broker's core: one poll loop over a ROUTER for clients and a ROUTER for workers. It
// queues requests per service (interactive before batch), dispatches them to workers with a free
// slot, relays the streamed replies, watches heartbeats, re-dispatches the work of a dead worker
// once, and enforces cancellation and deadlines. Nothing in the loop blocks: sends never wait
// (a peer that cannot take a message is treated as gone) and there is no disk I/O. Batches
// (broker-batch.cpp) are stored by the usage log's writer thread before they are acknowledged and
// feed their jobs in whenever a worker has a slot that no queued request wants.
#pragma once

#include "config.h"
#include "protocol-audit.h"
#include "protocol-batch.h"
#include "protocol.h"
#include "request-queue.h"
#include "transport.h"
#include "command-match.h"
#include "usage-log.h"
#include "whitelist.h"
#include "allowlist.h"
#include "quota-book.h"
#include "worker-registry.h"

#include <zmq.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

namespace hearth {

std::string peer_name(std::string_view routing_id);  // a short printable form of a routing id, for logs
double ms_between(broker_clock::time_point a, broker_clock::time_point b);  // b - a in milliseconds

class broker {
public:
    // Binds both sockets (creating ipc directories); throws zmq::error_t / config_error on failure.
    broker(const config& cfg, zmq::context_t& zctx);
    // Serves until `stop` becomes true (checked at least every heartbeat interval). `reload`
    // (SIGHUP) set: the whitelist is read again, and the flag cleared.
    void run(const std::atomic<bool>& stop, std::atomic<bool>* reload = nullptr);
    // Endpoints actually bound (tcp port 0 resolves to the real port).
    std::string client_endpoint() const;
    std::string worker_endpoint() const;
    // Called from the loop at every heartbeat tick: proof the loop is alive (the systemd watchdog).
    std::function<void()> on_tick;

private:
    struct job {
        uint64_t key = 0;                      // broker-wide id, also the id the workers see
        std::string client;                    // client routing id
        wire::request req;                     // as the client sent it (client's id)
        broker_clock::time_point received;
        std::optional<broker_clock::time_point> deadline;
        broker_clock::time_point dispatched;   // last dispatch
        std::optional<broker_clock::time_point> first_token;
        int attempts = 0;                      // dispatches so far
        std::string worker;                    // routing id while running, empty while queued
        std::string delivered;                 // text already sent to the client
        int32_t delivered_tokens = 0;
        size_t resumed_chars = 0;              // of `delivered`, what came before the last dispatch
        bool ended_for_client = false;         // client already has its ERROR (cancel/timeout); the worker still has to stop
        std::string batch;                     // a batch job: its batch id (client is then empty), else ""
        int64_t batch_idx = -1;                // a batch job: its index in the batch
        std::string owner;                     // the identity it is logged under (batch jobs: the batch's owner)
        std::string filter_verdict;            // usage row: "allowed" once the output filter passed it
        std::string filter_rule;               // usage row: the rule that fired when filtered
        uint64_t bytes = 0;                    // what it counts against broker.queue_bytes
        std::string note;                      // the last ACCEPTED note its client got (why it waits)
        int overloaded = 0;                    // times a worker handed it back as overloaded
    };

    // A batch job not yet taken into jobs_ (waits until a worker has a slot nothing else wants).
    struct backlog_job {
        std::string batch;                     // batch id
        int64_t idx = 0;                       // index in the batch
        std::string owner;                     // who submitted the batch
        wire::request req;                     // the job (id = its job id)
    };

    // A request that ended before it became a job (refused at the door): its one usage row;
    // `rule` non-empty: the safety filter refused it (verdict filtered).
    void log_refusal(const std::string& client, const wire::request& r, wire::error_code code, const std::string& rule = "");
    // log_refusal + the ERROR to the client.
    void refuse(const std::string& client, const wire::request& r, wire::error_code code, const std::string& message,
                const std::string& rule = "");
    wire::accepted accepted_for(const job& j) const;  // its place in line now (0: running)
    // The usage row of a job that ends now with `status`; token non-zero holds a FINAL until committed.
    // A batch job's row carries its result too (unless it was cancelled with its batch).
    void log_job(const job& j, const std::string& status, uint64_t token, const wire::final_reply* fin,
                 const std::string& message = "");
    void on_log_events();                      // commits (held FINALs go out) and answered tasks
    // broker-auth.cpp: CURVE, the ZAP allowlist, identities, roles and quotas (design section 8).
    // Sets up CURVE and the ZAP handler before the sockets bind; refuses a LAN endpoint without them.
    void security_setup(zmq::context_t& zctx);
    void allowlist_reload();                   // (re)reads cfg_.broker.allowlist; a bad file keeps the old one
    void on_zap();                             // answers the ZAP requests libzmq makes for each CURVE handshake
    // Records who sent a client message (CURVE: its key name; otherwise "local"); false when the
    // connection has no identity we can trust (the message is dropped).
    bool peer_note(const std::string& client, const zmq::message_t& part);
    // The allowlist name of the worker key a worker message came with; "" without CURVE on the
    // worker endpoint; nullopt when its key has been taken off the allowlist since it connected.
    std::optional<std::string> worker_key_name(const zmq::message_t& part) const;
    // Who a client connection is: usage log, whitelist permissions, batch ownership, quotas.
    std::string identity_of(const std::string& client) const;
    bool admin(const std::string& client) const;  // may read every client's audit rows and batches
    // "" when `jobs` more requests from this client fit its quotas, else the message; *retry_ms
    // says when the limit resets.
    std::string quota_refusal(const std::string& client, uint32_t jobs, uint32_t* retry_ms);
    quota_limits quota_of(const std::string& identity) const;  // its limits, by its role on the allowlist
    void quota_charge(const std::string& client, uint32_t jobs);  // counts accepted requests
    void quota_tokens(const std::string& owner, uint64_t tokens);  // counts the tokens of a request that ran
    bool tokens_used_up(const std::string& owner) const;  // owner has reached its tokens_per_day today
    void backlog_park(const std::string& service);  // the backlog's first job waits for its owner's next day
    void backlog_unpark();                     // tick: parked jobs whose owner may run again go back, in order
    void refusal_log(const std::string& line);  // a warn line, at most kRefusalLinesPerMinute a minute
    int64_t wall_us(broker_clock::time_point t) const;

    void on_client(const wire::frames& f);
    void on_worker(const wire::frames& f);
    void client_request(const std::string& client, std::string_view body);
    void client_cancel(const std::string& client, std::string_view body);
    void client_heartbeat(const std::string& client, std::string_view body);
    void client_status(const std::string& client);
    // broker-filter.cpp: the safety stages.
    void whitelist_reload();                   // (re)reads cfg_.broker.whitelist; a bad file keeps the old one
    // The input filter for a request about to be queued: "" when it passes, else the rule.
    std::string input_refusal(const std::string& client, const wire::request& r) const;
    // command requests: the fast path answers (true) or the request gets its grammar for a worker.
    bool command_prepare(const std::string& client, wire::request& r);
    // The output filter over a command job's FINAL: true and fr.text canonical when allowed; else the
    // client got its ERROR (unsupported or filtered) and the row is logged.
    bool command_output(job& j, wire::final_reply& fr, uint64_t key);
    // broker-batch.cpp
    void client_batch(const std::string& client, std::string_view body);
    void batch_submit(const std::string& client, wire::batch_call c);
    void batch_query(const std::string& client, const wire::batch_call& c);
    void batch_forget(const std::string& batch);  // drops a cancelled batch's backlog and running jobs
    void batch_restore(std::vector<pending_job> pending);  // what a previous broker left unfinished
    uint32_t batch_running(const std::string& batch) const;
    // Runs task on the writer thread; `then` runs on the loop once it is done.
    void log_call(log_task task, std::function<void(const log_answer&)> then);
    uint64_t log_then(std::function<void(const log_answer&)> then);  // registers `then`; its token
    // broker-audit.cpp
    void client_audit(const std::string& client, std::string_view body);
    // Runs query on the reader thread; `then` runs on the loop once it is done.
    void log_read(log_query query, std::function<void(const log_answer&)> then);
    // Moves backlog jobs of a service into jobs_ and onto workers while one has a free slot.
    void backlog_dispatch(const std::string& service);
    void worker_ready(const std::string& wid, std::string_view body, const std::string& key_name);  // key_name: "" without CURVE
    void worker_heartbeat(worker_entry& w, std::string_view body);
    void worker_partial(worker_entry& w, std::string_view body);
    void worker_final(worker_entry& w, std::string_view body);
    void worker_error(worker_entry& w, std::string_view body);
    void worker_lost(const std::string& wid, const char* why);
    // broker-guard.cpp: workers' resource guards and the broker's own memory budget.
    // A worker's guard as READY or HEARTBEAT reports it: routing, logs, events, clients' notes.
    void worker_guard(worker_entry& w, const std::string& state, std::optional<wire::memory_report> memory);
    // A worker event for the usage database (and nothing else: the caller logs).
    void worker_event_log(const worker_entry& w, const char* event, const std::string& previous, const std::string& detail);
    // Why queued work of a service waits beyond its place in line ("" when only the line holds it).
    std::string guard_note(const std::string& service) const;
    // Sends a new ACCEPTED to every client whose queued request's note changed.
    void notes_refresh();
    // A worker said `overloaded` for a running job: true when it went back to the queue.
    bool job_requeue_overloaded(job& j, uint64_t key, worker_entry& w);
    // Memory a request holds in the broker (its texts plus bookkeeping), for broker.queue_bytes.
    static uint64_t request_bytes(const wire::request& r);
    // "" when `more` bytes fit broker.queue_bytes, else the overloaded message.
    std::string budget_refusal(uint64_t more) const;
    // ERROR overloaded with the broker's retry_after_ms.
    void send_overloaded(const std::string& client, const std::string& id, const std::string& why);
    // Fails queued requests whose every worker has been critical for no_worker_ms (tick).
    void expire_starved(broker_clock::time_point now);

    void dispatch();
    bool dispatch_one(job& j, worker_entry& w);
    void tick();                               // heartbeats, liveness, deadlines, no_worker
    void expire_deadlines(broker_clock::time_point now);  // fails what is past its deadline; sets next_deadline_
    // Ends a job: ERROR to the client (unless it already has one), CANCEL to its worker if running.
    void job_fail(job& j, wire::error_code code, const std::string& message);
    void job_erase(uint64_t key);
    job* job_find(const std::string& worker_id, const std::string& id, uint64_t* key_out);

    bool send_client(const std::string& client, wire::command c, const std::string& body);
    bool send_worker(const std::string& wid, wire::command c, const std::string& body);
    void send_worker_error(const std::string& wid, wire::error_code code, const std::string& message);
    void send_client_error(const std::string& client, const std::string& id, wire::error_code code, const std::string& message,
                           uint32_t retry_after_ms = 0);
    void client_gone(const std::string& client);
    std::string job_wire_id(uint64_t key) const;

    config cfg_;
    zmq::socket_t front_;                      // ROUTER for clients
    zmq::socket_t back_;                       // ROUTER for workers
    request_queue queue_;
    worker_registry workers_;
    std::unordered_map<uint64_t, job> jobs_;   // every request not yet ended, by key
    std::map<std::pair<std::string, std::string>, uint64_t> by_client_id_;  // (client, client's id) -> key
    std::string instance_;                     // random prefix of wire ids, so a restarted broker never reuses one
    uint64_t next_key_ = 1;
    uint64_t served_ = 0;                      // FINALs delivered
    broker_clock::time_point started_;
    broker_clock::time_point next_tick_;
    broker_clock::time_point next_deadline_ = broker_clock::time_point::max();  // earliest deadline of a live job (max: none)
    std::chrono::milliseconds hb_;             // heartbeat interval
    wire::decode_limits limits_;
    int64_t wall_offset_us_ = 0;               // system_clock - steady_clock at start, for row timestamps
    std::unique_ptr<usage_log> log_;           // the usage database's writer thread
    struct held_final {
        std::string client;                    // who gets it
        std::string id;                        // the client's request id: its heartbeats still name it
        std::string body;                      // the encoded FINAL
    };
    std::unordered_map<uint64_t, held_final> held_;  // FINALs waiting for their usage row's commit, by job key
    bool final_held(const std::string& client, const std::string& id) const;
    std::unordered_map<uint64_t, std::function<void(const log_answer&)>> log_calls_;  // writer tasks in flight, by token
    std::map<std::string, std::deque<backlog_job>> backlog_;  // batch jobs waiting, by service
    // Batch jobs whose owner used up tokens_per_day: they wait for the next UTC day (by service, in order).
    std::map<std::string, std::deque<backlog_job>> backlog_parked_;
    std::map<std::string, size_t> parked_owners_;  // owner -> jobs of it in backlog_parked_
    wire::decode_limits batch_limits_;         // for BATCH bodies: a submit holds many jobs
    std::shared_ptr<const whitelist> whitelist_;       // the safety whitelist; null when none is configured
    std::shared_ptr<const command_matcher> fast_path_;  // the command fast path built from it
    std::string command_grammar_;              // the command requests' schema: the whole home (see broker-filter.cpp)
    uint64_t held_bytes_ = 0;                  // request_bytes of every live job and backlog job (broker.queue_bytes)
    // Security (broker-auth.cpp).
    bool client_curve_ = false;                // the client endpoint speaks CURVE (identities are key names)
    bool worker_curve_ = false;                // the worker endpoint speaks CURVE
    std::optional<zmq::socket_t> zap_;         // the ZAP handler's socket (CURVE only)
    std::shared_ptr<const allowlist> allowlist_;  // who may connect over CURVE; null without CURVE
    struct peer {
        std::string key;                       // its CURVE public key (Z85); "" without CURVE
        std::string identity;                  // key name, or "local"
        key_role role = key_role::client;      // from the allowlist; an ipc peer is admin
    };
    std::unordered_map<std::string, peer> peers_;  // client routing id -> who last spoke on it
    std::unordered_map<std::string, broker_clock::time_point> refused_logged_;  // key -> last refusal logged (no log floods)
    broker_clock::time_point refusal_window_;  // start of the minute refusal lines are counted in
    uint32_t refusals_logged_ = 0;             // lines logged in that minute (fresh keys each time must not flood the log)
    uint32_t refusals_quiet_ = 0;              // refusals not logged in it
    bool front_ipc_ = false;                   // the client endpoint is ipc: its peers are the box's operator
    quota_book quotas_;                        // what each identity has used against its quotas
    std::unordered_map<std::string, uint64_t> quota_pending_;  // batch jobs submitted, not yet stored, by identity (max_queued)
};

}  // namespace hearth
