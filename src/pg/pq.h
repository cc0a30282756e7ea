/* libpq, opened when flowcore first needs it.
 *
 * libpq brings about twenty shared libraries with it (OpenSSL, Kerberos,
 * LDAP, GnuTLS...). Linked into the program, they are all loaded and
 * relocated at every start: 3 ms of each `flowcore validate` or
 * `flowcore run --no-history`, which never speak to a server. So flowcore
 * opens libpq.so.5 with dlopen the first time something connects or parses
 * a connection string (fc__pq_load; FLOWCORE_LIBPQ in the environment
 * names another file to open), and every libpq call in src/ goes
 * through the table of its functions below: a file includes this header
 * instead of <libpq-fe.h> and calls PQexec(...) as usual.
 *
 * A libpq function may be called only after fc__pq_load returned 0: in
 * practice, one that takes a PGconn or a PGresult has one because a
 * connection was made, and the functions that make one (and those that
 * parse a connection string or print the version) load it first. */
#ifndef FLOWCORE_PG_PQ_H
#define FLOWCORE_PG_PQ_H

#include <libpq-fe.h>

/* XX(return type, name, parameters): every libpq function flowcore uses. */
#define FC__PQ_FUNCTIONS(XX)                                                                       \
  XX(void, PQclear, (PGresult * res))                                                              \
  XX(char *, PQcmdStatus, (PGresult * res))                                                        \
  XX(PostgresPollingStatusType, PQconnectPoll, (PGconn * conn))                                    \
  XX(PGconn *, PQconnectStartParams,                                                               \
     (const char *const *keywords, const char *const *values, int expand_dbname))                  \
  XX(PGconn *, PQconnectdb, (const char *conninfo))                                                \
  XX(PGconn *, PQconnectdbParams,                                                                  \
     (const char *const *keywords, const char *const *values, int expand_dbname))                  \
  XX(void, PQconninfoFree, (PQconninfoOption * options))                                           \
  XX(PQconninfoOption *, PQconninfoParse, (const char *conninfo, char **errmsg))                   \
  XX(int, PQconsumeInput, (PGconn * conn))                                                         \
  XX(char *, PQerrorMessage, (const PGconn *conn))                                                 \
  XX(PGresult *, PQexec, (PGconn * conn, const char *query))                                       \
  XX(PGresult *, PQexecParams,                                                                     \
     (PGconn * conn, const char *command, int nParams, const Oid *paramTypes,                      \
      const char *const *paramValues, const int *paramLengths, const int *paramFormats,            \
      int resultFormat))                                                                           \
  XX(void, PQfinish, (PGconn * conn))                                                              \
  XX(int, PQflush, (PGconn * conn))                                                                \
  XX(char *, PQfname, (const PGresult *res, int field_num))                                        \
  XX(int, PQfnumber, (const PGresult *res, const char *field_name))                                \
  XX(void, PQfreemem, (void *ptr))                                                                 \
  XX(PGresult *, PQgetResult, (PGconn * conn))                                                     \
  XX(int, PQgetisnull, (const PGresult *res, int tup_num, int field_num))                          \
  XX(char *, PQgetvalue, (const PGresult *res, int tup_num, int field_num))                        \
  XX(int, PQisBusy, (PGconn * conn))                                                               \
  XX(int, PQlibVersion, (void))                                                                    \
  XX(int, PQnfields, (const PGresult *res))                                                        \
  XX(int, PQntuples, (const PGresult *res))                                                        \
  XX(int, PQputCopyData, (PGconn * conn, const char *buffer, int nbytes))                          \
  XX(int, PQputCopyEnd, (PGconn * conn, const char *errormsg))                                     \
  XX(char *, PQresultErrorField, (const PGresult *res, int fieldcode))                             \
  XX(char *, PQresultErrorMessage, (const PGresult *res))                                          \
  XX(ExecStatusType, PQresultStatus, (const PGresult *res))                                        \
  XX(int, PQsendQuery, (PGconn * conn, const char *query))                                         \
  XX(PQnoticeProcessor, PQsetNoticeProcessor,                                                      \
     (PGconn * conn, PQnoticeProcessor proc, void *arg))                                           \
  XX(int, PQsetnonblocking, (PGconn * conn, int arg))                                              \
  XX(int, PQsocket, (const PGconn *conn))                                                          \
  XX(ConnStatusType, PQstatus, (const PGconn *conn))                                               \
  XX(PGTransactionStatusType, PQtransactionStatus, (const PGconn *conn))

typedef struct {
#define FC__PQ_MEMBER(ret, name, params) ret(*name) params;
  FC__PQ_FUNCTIONS(FC__PQ_MEMBER)
#undef FC__PQ_MEMBER
} fc__pq_t;

/* Filled by fc__pq_load; all NULL before. */
extern fc__pq_t fc__pq;

/* Opens libpq (once; thread-safe) and fills fc__pq. Returns 0, or FC_EDB
 * with *why (when not NULL) set to a static message naming the library
 * and what went wrong, as every later call returns. */
int fc__pq_load(const char **why);

/* The calls of this program's files go through the table (pq.c itself
 * names the members). */
#if !defined(FC__PQ_IMPLEMENTATION)
#define PQclear (fc__pq.PQclear)
#define PQcmdStatus (fc__pq.PQcmdStatus)
#define PQconnectPoll (fc__pq.PQconnectPoll)
#define PQconnectStartParams (fc__pq.PQconnectStartParams)
#define PQconnectdb (fc__pq.PQconnectdb)
#define PQconnectdbParams (fc__pq.PQconnectdbParams)
#define PQconninfoFree (fc__pq.PQconninfoFree)
#define PQconninfoParse (fc__pq.PQconninfoParse)
#define PQconsumeInput (fc__pq.PQconsumeInput)
#define PQerrorMessage (fc__pq.PQerrorMessage)
#define PQexec (fc__pq.PQexec)
#define PQexecParams (fc__pq.PQexecParams)
#define PQfinish (fc__pq.PQfinish)
#define PQflush (fc__pq.PQflush)
#define PQfname (fc__pq.PQfname)
#define PQfnumber (fc__pq.PQfnumber)
#define PQfreemem (fc__pq.PQfreemem)
#define PQgetResult (fc__pq.PQgetResult)
#define PQgetisnull (fc__pq.PQgetisnull)
#define PQgetvalue (fc__pq.PQgetvalue)
#define PQisBusy (fc__pq.PQisBusy)
#define PQlibVersion (fc__pq.PQlibVersion)
#define PQnfields (fc__pq.PQnfields)
#define PQntuples (fc__pq.PQntuples)
#define PQputCopyData (fc__pq.PQputCopyData)
#define PQputCopyEnd (fc__pq.PQputCopyEnd)
#define PQresultErrorField (fc__pq.PQresultErrorField)
#define PQresultErrorMessage (fc__pq.PQresultErrorMessage)
#define PQresultStatus (fc__pq.PQresultStatus)
#define PQsendQuery (fc__pq.PQsendQuery)
#define PQsetNoticeProcessor (fc__pq.PQsetNoticeProcessor)
#define PQsetnonblocking (fc__pq.PQsetnonblocking)
#define PQsocket (fc__pq.PQsocket)
#define PQstatus (fc__pq.PQstatus)
#define PQtransactionStatus (fc__pq.PQtransactionStatus)
#endif

#endif
