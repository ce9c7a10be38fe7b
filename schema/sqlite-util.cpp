#include "sqlite-util.h"

#include <sodium.h>

#include <mutex>

namespace hearth::sqlite {

void fail(const std::string& path, const std::string& what) {
    std::string msg = "usage db ";
    msg.append(path).append(": ").append(what);
    throw usage_db_error(msg);
}

void fail_sql(sqlite3* db, const std::string& path, const std::string& what) {
    std::string msg = what;
    msg.append(": ").append(db ? sqlite3_errmsg(db) : "out of memory");
    fail(path, msg);
}

void exec(sqlite3* db, const std::string& path, const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &err) != SQLITE_OK) {
        std::string what = "executing \"";
        what.append(sql).append("\": ").append(err ? err : sqlite3_errmsg(db));
        sqlite3_free(err);
        fail(path, what);
    }
}

void ensure_sodium() {
    static std::once_flag once;
    static int rc = 0;
    std::call_once(once, [] { rc = sodium_init(); });
    if (rc < 0) throw usage_db_error("usage db: libsodium failed to initialise");
}

statement::statement(sqlite3* db, const std::string& path, const char* sql) : db_(db), path_(path) {
    if (sqlite3_prepare_v2(db, sql, -1, &st_, nullptr) != SQLITE_OK) {
        std::string what = "preparing \"";
        what.append(sql).append("\"");
        fail_sql(db, path, what);
    }
}

void statement::bind(int i, int64_t v) { check(sqlite3_bind_int64(st_, i, v), "binding"); }

void statement::bind(int i, const std::string& v) {
    check(sqlite3_bind_text(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "binding");
}

void statement::bind_blob(int i, const std::string& v) {
    check(sqlite3_bind_blob(st_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT), "binding");
}

bool statement::step() {
    const int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail_sql(db_, path_, "executing statement");
}

void statement::reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
}

std::string statement::text_at(int col) {
    const void* p = sqlite3_column_blob(st_, col);
    return p ? std::string(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col))) : std::string();
}

void statement::check(int rc, const char* what) {
    if (rc != SQLITE_OK) fail_sql(db_, path_, what);
}

transaction::transaction(sqlite3* db, const std::string& path, bool write) : db_(db), path_(path) {
    exec(db, path, write ? "BEGIN IMMEDIATE" : "BEGIN");
}

transaction::~transaction() {
    if (open_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void transaction::commit() {
    exec(db_, path_, "COMMIT");
    open_ = false;
}

}  // namespace hearth::sqlite
