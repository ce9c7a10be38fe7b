// Small RAII helpers over the SQLite C API shared by the usage database and the batch store
// (internal to schema/; not part of any public interface). Every error is a usage_db_error that
// names the file.
#pragma once

#include "usage-db.h"

#include <sqlite3.h>

#include <cstdint>
#include <string>

namespace hearth::sqlite {

[[noreturn]] void fail(const std::string& path, const std::string& what);
// `what` followed by SQLite's own message for the connection.
[[noreturn]] void fail_sql(sqlite3* db, const std::string& path, const std::string& what);
void exec(sqlite3* db, const std::string& path, const char* sql);
// libsodium, initialised once per process (SHA-256 of the chain, random batch ids).
void ensure_sodium();

// A prepared statement that finalizes itself, so no early return or throw leaks one (a leaked
// statement keeps the connection from closing).
class statement {
public:
    statement(sqlite3* db, const std::string& path, const char* sql);
    ~statement() { sqlite3_finalize(st_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    void bind(int i, int64_t v);
    void bind(int i, const std::string& v);       // as TEXT
    void bind_blob(int i, const std::string& v);  // as BLOB (may hold NULs)
    bool step();                                   // true while there is a row; false when done
    void reset();                                  // for the next set of bindings
    int64_t int_at(int col) { return sqlite3_column_int64(st_, col); }
    std::string text_at(int col);                  // text and blob columns alike: bytes as stored

private:
    void check(int rc, const char* what);
    sqlite3* db_;                          // owning connection (not owned here)
    const std::string& path_;              // for error messages
    sqlite3_stmt* st_ = nullptr;           // the compiled statement
};

// BEGIN IMMEDIATE (write) or BEGIN (a read snapshot) that rolls back unless committed, so a throw
// half-way leaves the file as it was.
class transaction {
public:
    transaction(sqlite3* db, const std::string& path, bool write);
    ~transaction();
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;
    void commit();

private:
    sqlite3* db_;                          // connection the transaction runs on
    const std::string& path_;              // for error messages
    bool open_ = true;                     // false once committed
};

}  // namespace hearth::sqlite
