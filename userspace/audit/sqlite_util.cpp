#include "audit/sqlite_util.hpp"

#include <cerrno>
#include <string>

namespace airlock::audit::detail {

namespace {

int errno_for(sqlite3* db, int rc) {
    switch (rc & 0xff) {
        case SQLITE_FULL:
            return ENOSPC;
        case SQLITE_NOMEM:
            return ENOMEM;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            return EBUSY;
        case SQLITE_IOERR:
        case SQLITE_CANTOPEN:
            // The errno of the failed syscall, when SQLite recorded one.
            return db != nullptr ? sqlite3_system_errno(db) : 0;
        default:
            return 0;
    }
}

}  // namespace

common::Error sqlite_error(sqlite3* db, std::string_view path, std::string_view what, int rc) {
    std::string msg = "audit log ";
    msg += path;
    msg += ": ";
    msg += what;
    msg += ": ";
    // sqlite3_errmsg describes the most recent call on db; when db is gone (a
    // failed open without a handle) fall back to the generic text for rc.
    msg += db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    msg += " (sqlite error ";
    msg += std::to_string(rc);
    msg += ")";
    return common::Error{errno_for(db, rc), std::move(msg)};
}

common::Status exec(sqlite3* db, std::string_view path, const char* sql, std::string_view what) {
    char* err = nullptr;
    const int rc = sqlite3_exec(db, sql, nullptr, nullptr, &err);
    if (rc == SQLITE_OK) return {};
    std::string msg = "audit log ";
    msg += path;
    msg += ": ";
    msg += what;
    msg += ": ";
    msg += err != nullptr ? err : sqlite3_errstr(rc);
    msg += " (sqlite error ";
    msg += std::to_string(rc);
    msg += ")";
    sqlite3_free(err);
    return std::unexpected(common::Error{errno_for(db, rc), std::move(msg)});
}

common::Result<StmtPtr> prepare(sqlite3* db, std::string_view path, std::string_view sql) {
    sqlite3_stmt* raw = nullptr;
    const int rc = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT,
                                      &raw, nullptr);
    StmtPtr stmt(raw);
    if (rc != SQLITE_OK) {
        return std::unexpected(sqlite_error(db, path, "preparing \"" + std::string(sql) + "\"", rc));
    }
    return stmt;
}

}  // namespace airlock::audit::detail
