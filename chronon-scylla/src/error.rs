//! The one place driver errors become [`KvError`]s.
//!
//! The driver nests its errors (`ExecutionError` → `RequestAttemptError` → `DbError`, or
//! `ConnectionPoolError` → `ConnectionError` → `io::Error`); [`classify`] walks that structure
//! explicitly, by variant, rather than by matching message text, except for the one case CQL only
//! reports in text: a table that does not exist (`unconfigured table`).
//!
//! | driver error | `KvError` |
//! | --- | --- |
//! | client timeout (`RequestTimeout`), `ReadTimeout`/`WriteTimeout` from the server, schema agreement timeout | `Timeout` |
//! | connection refused/reset/broken, pool broken or initializing, no node to ask, `Unavailable` (too few replicas alive), unresolvable host | `Unavailable` (retryable), with the contact points |
//! | `Invalid` "unconfigured table" / "does not exist" | `DatasetNotFound` |
//! | `Overloaded`, `IsBootstrapping`, `RateLimitReached`, `ReadFailure`/`WriteFailure`, no free stream id | `Backend`, retryable |
//! | anything else (syntax, auth, type mismatch, ...) | `Backend` |

use std::sync::Arc;

use chronon_core::error::error_chain;
use chronon_core::{ErrorContext, KvError};
use scylla::errors::{
    ConnectionError, ConnectionPoolError, DbError, ExecutionError, MetadataError,
    MetadataFetchErrorKind, NewSessionError, NextPageError, NextRowError, PagerExecutionError,
    PrepareError, RequestAttemptError, RequestError, SchemaAgreementError,
};

/// Any error the driver hands back, so one function maps them all.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum DriverError {
    #[error(transparent)]
    Execution(#[from] ExecutionError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
    #[error(transparent)]
    Pager(#[from] PagerExecutionError),
    #[error(transparent)]
    NextRow(#[from] NextRowError),
    #[error(transparent)]
    NewSession(#[from] NewSessionError),
    #[error(transparent)]
    SchemaAgreement(#[from] SchemaAgreementError),
    /// Reading a result (not rows, wrong column types, a row that does not deserialize).
    #[error("{0}")]
    Result(Arc<dyn std::error::Error + Send + Sync>),
}

impl DriverError {
    /// A result-reading error (`IntoRowsResultError`, `RowsError`, `DeserializationError`, ...).
    pub(crate) fn result(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        DriverError::Result(Arc::new(e))
    }
}

/// How an error is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Timeout,
    Unavailable,
    TableMissing,
    Retryable,
    Other,
}

/// Maps a driver error to the workspace's error enum (see the module docs for the table); `ctx`
/// says what the call was doing, so the error names the operation, dataset, key and address.
pub(crate) fn map_error(err: impl Into<DriverError>, ctx: ErrorContext<'_>) -> KvError {
    let err = err.into();
    match classify(&err) {
        Class::Timeout => ctx.timeout_error(),
        Class::Unavailable => ctx.unavailable(
            format!("{}: {}", ctx.describe(), error_chain(&err)),
            Some(Arc::new(err)),
        ),
        Class::TableMissing if ctx.dataset.is_some() => ctx.not_found(),
        Class::TableMissing | Class::Other => {
            ctx.backend_error(error_chain(&err), Some(Arc::new(err)))
        }
        Class::Retryable => ctx
            .backend_error(error_chain(&err), Some(Arc::new(err)))
            .retryable(),
    }
}

fn classify(err: &DriverError) -> Class {
    match err {
        DriverError::Execution(e) => execution(e),
        DriverError::Prepare(e) => prepare(e),
        DriverError::Pager(e) => match e {
            PagerExecutionError::PrepareError(p) => prepare(p),
            PagerExecutionError::NextPageError(n) => next_page(n),
            PagerExecutionError::SchemaAgreementError(s) => schema_agreement(s),
            PagerExecutionError::MetadataError(m) => metadata(m),
            _ => Class::Other,
        },
        DriverError::NextRow(e) => match e {
            NextRowError::NextPageError(n) => next_page(n),
            _ => Class::Other,
        },
        DriverError::NewSession(e) => match e {
            NewSessionError::MetadataError(m) => metadata(m),
            NewSessionError::FailedToResolveAnyHostname(_) => Class::Unavailable,
            _ => Class::Other,
        },
        DriverError::SchemaAgreement(e) => schema_agreement(e),
        DriverError::Result(_) => Class::Other,
    }
}

fn execution(e: &ExecutionError) -> Class {
    match e {
        ExecutionError::RequestTimeout(_) => Class::Timeout,
        ExecutionError::EmptyPlan => Class::Unavailable,
        ExecutionError::ConnectionPoolError(p) => pool(p),
        ExecutionError::LastAttemptError(a) => attempt(a),
        ExecutionError::PrepareError(p) => prepare(p),
        ExecutionError::SchemaAgreementError(s) => schema_agreement(s),
        ExecutionError::MetadataError(m) => metadata(m),
        _ => Class::Other,
    }
}

fn next_page(e: &NextPageError) -> Class {
    match e {
        NextPageError::RequestFailure(r) => match r {
            RequestError::RequestTimeout(_) => Class::Timeout,
            RequestError::EmptyPlan => Class::Unavailable,
            RequestError::ConnectionPoolError(p) => pool(p),
            RequestError::LastAttemptError(a) => attempt(a),
            _ => Class::Other,
        },
        _ => Class::Other,
    }
}

fn prepare(e: &PrepareError) -> Class {
    match e {
        PrepareError::ConnectionPoolError(p) => pool(p),
        PrepareError::AllAttemptsFailed { first_attempt } => attempt(first_attempt),
        _ => Class::Other,
    }
}

fn schema_agreement(e: &SchemaAgreementError) -> Class {
    match e {
        SchemaAgreementError::Timeout(_) => Class::Timeout,
        SchemaAgreementError::ConnectionPoolError(p) => pool(p),
        SchemaAgreementError::RequestError(a) => attempt(a),
        SchemaAgreementError::PrepareError(p) => prepare(p),
        _ => Class::Other,
    }
}

fn metadata(e: &MetadataError) -> Class {
    match e {
        MetadataError::ConnectionPoolError(p) => pool(p),
        MetadataError::FetchError(f) => match &f.error {
            MetadataFetchErrorKind::PrepareError(a) => attempt(a),
            MetadataFetchErrorKind::NextRowError(NextRowError::NextPageError(n)) => next_page(n),
            _ => Class::Other,
        },
        _ => Class::Other,
    }
}

fn pool(e: &ConnectionPoolError) -> Class {
    match e {
        ConnectionPoolError::Broken {
            last_connection_error,
        } => connection(last_connection_error),
        // Still connecting, or every node filtered out: nothing to talk to yet.
        _ => Class::Unavailable,
    }
}

fn connection(e: &ConnectionError) -> Class {
    match e {
        ConnectionError::ConnectTimeout
        | ConnectionError::IoError(_)
        | ConnectionError::BrokenConnection(_)
        | ConnectionError::NoSourcePortForShard(_)
        | ConnectionError::TranslationError(_) => Class::Unavailable,
        // The server answered but refused the session (authentication, protocol): retrying the
        // same configuration will not help.
        _ => Class::Other,
    }
}

fn attempt(e: &RequestAttemptError) -> Class {
    match e {
        RequestAttemptError::DbError(db, message) => db_error(db, message),
        RequestAttemptError::BrokenConnectionError(_) => Class::Unavailable,
        RequestAttemptError::UnableToAllocStreamId => Class::Retryable,
        _ => Class::Other,
    }
}

fn db_error(db: &DbError, message: &str) -> Class {
    match db {
        DbError::Unavailable { .. } => Class::Unavailable,
        DbError::ReadTimeout { .. } | DbError::WriteTimeout { .. } => Class::Timeout,
        DbError::Overloaded
        | DbError::IsBootstrapping
        | DbError::RateLimitReached { .. }
        | DbError::ReadFailure { .. }
        | DbError::WriteFailure { .. } => Class::Retryable,
        DbError::Invalid if is_missing_table(message) => Class::TableMissing,
        _ => Class::Other,
    }
}

/// CQL reports a missing table only in text: ScyllaDB and Cassandra 3/4 say `unconfigured table
/// X`, Cassandra 5 `table X does not exist`, and a missing keyspace `Keyspace X does not exist`.
fn is_missing_table(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("unconfigured table") || m.contains("does not exist") || m.contains("unknown table")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    use scylla::errors::{BrokenConnectionErrorKind, WriteType};
    use scylla::statement::Consistency;

    const ADDR: &str = "10.0.0.1:9042,10.0.0.2:9042";

    fn op(dataset: Option<&str>) -> ErrorContext<'_> {
        let ctx =
            ErrorContext::new("scylla", "multi_get", ADDR, Duration::from_secs(10)).key(b"user_1");
        match dataset {
            Some(d) => ctx.dataset(d),
            None => ctx,
        }
    }

    fn db(db: DbError, msg: &str) -> ExecutionError {
        ExecutionError::LastAttemptError(RequestAttemptError::DbError(db, msg.to_string()))
    }

    fn refused() -> ConnectionError {
        ConnectionError::IoError(Arc::new(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        )))
    }

    #[test]
    fn connection_refused_is_unavailable_with_the_address() {
        let e = ExecutionError::ConnectionPoolError(ConnectionPoolError::Broken {
            last_connection_error: refused(),
        });
        let k = map_error(e, op(Some("ds")));
        assert_eq!(k.kind(), "Unavailable", "{k}");
        assert!(k.is_retryable());
        let msg = k.to_string();
        assert!(msg.contains(ADDR), "{msg}");
        assert!(msg.contains("Connection refused"), "{msg}");
        assert!(msg.contains("\"ds\""), "names the dataset: {msg}");
        assert!(
            std::error::Error::source(&k).is_some(),
            "driver error kept as source"
        );
    }

    #[test]
    fn new_session_against_nothing_is_unavailable() {
        let e = NewSessionError::MetadataError(MetadataError::ConnectionPoolError(
            ConnectionPoolError::Broken {
                last_connection_error: refused(),
            },
        ));
        let k = map_error(
            e,
            ErrorContext::new("scylla", "connect", ADDR, Duration::from_secs(10)),
        );
        assert_eq!(k.kind(), "Unavailable", "{k}");
        assert!(k.to_string().contains(ADDR));
        let k = map_error(
            NewSessionError::FailedToResolveAnyHostname(vec!["nohost:9042".into()]),
            op(None),
        );
        assert_eq!(k.kind(), "Unavailable", "{k}");
        assert_eq!(
            map_error(NewSessionError::EmptyKnownNodesList, op(None)).kind(),
            "Backend"
        );
    }

    #[test]
    fn broken_connections_and_timeouts() {
        let broken = ExecutionError::LastAttemptError(RequestAttemptError::BrokenConnectionError(
            BrokenConnectionErrorKind::ChannelError.into(),
        ));
        assert_eq!(map_error(broken, op(Some("ds"))).kind(), "Unavailable");
        let connect_timeout = PrepareError::ConnectionPoolError(ConnectionPoolError::Broken {
            last_connection_error: ConnectionError::ConnectTimeout,
        });
        assert_eq!(
            map_error(connect_timeout, op(Some("ds"))).kind(),
            "Unavailable"
        );
        assert_eq!(
            map_error(
                ExecutionError::ConnectionPoolError(ConnectionPoolError::Initializing),
                op(None)
            )
            .kind(),
            "Unavailable"
        );
        assert_eq!(
            map_error(ExecutionError::EmptyPlan, op(None)).kind(),
            "Unavailable"
        );

        let t = map_error(
            ExecutionError::RequestTimeout(Duration::from_secs(10)),
            op(Some("ds")),
        );
        assert_eq!(t.kind(), "Timeout");
        assert!(t.is_retryable());
        assert!(t.to_string().contains("on ds"), "names the dataset: {t}");
        let t = map_error(
            SchemaAgreementError::Timeout(Duration::from_secs(60)),
            op(None),
        );
        assert_eq!(t.kind(), "Timeout");
    }

    #[test]
    fn server_side_errors() {
        let unavailable = db(
            DbError::Unavailable {
                consistency: Consistency::LocalQuorum,
                required: 2,
                alive: 1,
            },
            "Cannot achieve consistency level",
        );
        assert_eq!(map_error(unavailable, op(Some("ds"))).kind(), "Unavailable");
        let wt = db(
            DbError::WriteTimeout {
                consistency: Consistency::LocalQuorum,
                received: 1,
                required: 2,
                write_type: WriteType::Simple,
            },
            "timed out",
        );
        assert_eq!(map_error(wt, op(Some("ds"))).kind(), "Timeout");
        let rt = db(
            DbError::ReadTimeout {
                consistency: Consistency::One,
                received: 0,
                required: 1,
                data_present: false,
            },
            "timed out",
        );
        assert_eq!(map_error(rt, op(Some("ds"))).kind(), "Timeout");
        for retryable in [DbError::Overloaded, DbError::IsBootstrapping] {
            let k = map_error(db(retryable, "busy"), op(Some("ds")));
            assert_eq!(k.kind(), "Backend");
            assert!(k.is_retryable(), "{k}");
        }
        let stream = ExecutionError::LastAttemptError(RequestAttemptError::UnableToAllocStreamId);
        assert!(map_error(stream, op(None)).is_retryable());
        for fatal in [
            DbError::SyntaxError,
            DbError::Unauthorized,
            DbError::ServerError,
            DbError::Invalid,
        ] {
            let k = map_error(db(fatal, "no"), op(Some("ds")));
            assert_eq!(k.kind(), "Backend");
            assert!(!k.is_retryable(), "{k}");
            assert!(k.to_string().contains("\"ds\""), "{k}");
            assert!(k.to_string().contains("user_1"), "names the key: {k}");
        }
    }

    #[test]
    fn missing_table_is_dataset_not_found() {
        for msg in [
            "unconfigured table PURCHASES_BATCH",
            "table chronon.x does not exist",
            "Keyspace chronon does not exist",
        ] {
            let k = map_error(db(DbError::Invalid, msg), op(Some("PURCHASES_BATCH")));
            assert_eq!(k.kind(), "DatasetNotFound", "{msg}: {k}");
            assert!(k.to_string().contains("PURCHASES_BATCH"));
        }
        // As the driver reports it when re-preparing a statement after the table was dropped.
        let reprepare = PrepareError::AllAttemptsFailed {
            first_attempt: RequestAttemptError::DbError(
                DbError::Invalid,
                "unconfigured table t".into(),
            ),
        };
        assert_eq!(
            map_error(reprepare, op(Some("t"))).kind(),
            "DatasetNotFound"
        );
        let in_pager = PagerExecutionError::NextPageError(NextPageError::RequestFailure(
            RequestError::LastAttemptError(RequestAttemptError::DbError(
                DbError::Invalid,
                "unconfigured table t".into(),
            )),
        ));
        assert_eq!(map_error(in_pager, op(Some("t"))).kind(), "DatasetNotFound");
        // Without a dataset in the operation there is nothing to name: a plain Backend error.
        assert_eq!(
            map_error(db(DbError::Invalid, "unconfigured table t"), op(None)).kind(),
            "Backend"
        );
        // Other "invalid" errors stay Backend.
        let k = map_error(db(DbError::Invalid, "Invalid column name x"), op(Some("t")));
        assert_eq!(k.kind(), "Backend");
    }

    #[test]
    fn pager_timeouts_and_pools() {
        let t = NextRowError::NextPageError(NextPageError::RequestFailure(
            RequestError::RequestTimeout(Duration::from_secs(1)),
        ));
        assert_eq!(map_error(t, op(Some("ds"))).kind(), "Timeout");
        let p = PagerExecutionError::NextPageError(NextPageError::RequestFailure(
            RequestError::ConnectionPoolError(ConnectionPoolError::Broken {
                last_connection_error: refused(),
            }),
        ));
        assert_eq!(map_error(p, op(Some("ds"))).kind(), "Unavailable");
    }

    #[test]
    fn result_reading_errors_are_backend() {
        let e = DriverError::result(std::io::Error::other("column type mismatch"));
        let k = map_error(e, op(Some("ds")));
        assert_eq!(k.kind(), "Backend");
        assert!(k.to_string().contains("column type mismatch"));
    }
}
