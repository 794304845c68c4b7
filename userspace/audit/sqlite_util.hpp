// RAII owners and error plumbing for the SQLite C API (internal to airlock_audit).
#pragma once

#include <sqlite3.h>

#include <memory>
#include <string_view>

#include "common/result.hpp"

namespace airlock::audit::detail {

struct DbCloser {
    // close_v2 defers the close until the last statement is finalized, so
    // member destruction order can never leak the handle.
    void operator()(sqlite3* db) const noexcept { sqlite3_close_v2(db); }
};
using DbPtr = std::unique_ptr<sqlite3, DbCloser>;

struct StmtFinalizer {
    void operator()(sqlite3_stmt* stmt) const noexcept { sqlite3_finalize(stmt); }
};
using StmtPtr = std::unique_ptr<sqlite3_stmt, StmtFinalizer>;

// Resets a cached statement on scope exit so it never holds a read snapshot or
// a stale error between uses.
class StmtReset {
public:
    explicit StmtReset(sqlite3_stmt* stmt) noexcept : stmt_(stmt) {}
    StmtReset(const StmtReset&) = delete;
    StmtReset& operator=(const StmtReset&) = delete;
    ~StmtReset() {
        sqlite3_reset(stmt_);
        sqlite3_clear_bindings(stmt_);
    }

private:
    sqlite3_stmt* stmt_;
};

// "audit log <path>: <what>: <sqlite3_errmsg> (sqlite error <rc>)", with errno
// set when the failure maps to one (disk full, I/O error).
[[nodiscard]] common::Error sqlite_error(sqlite3* db, std::string_view path, std::string_view what, int rc);

[[nodiscard]] common::Status exec(sqlite3* db, std::string_view path, const char* sql, std::string_view what);

[[nodiscard]] common::Result<StmtPtr> prepare(sqlite3* db, std::string_view path, std::string_view sql);

}  // namespace airlock::audit::detail
