//! The state every operation shares: the driver session, the options, the prepared statements
//! of the `datasets` table, the dataset-metadata cache and the bound on requests in flight, with
//! the small helpers every operation uses (error contexts, a dataset's statements through the
//! cache, schema statements, preparing).

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chronon_core::metadata_cache::{MetadataCache, DEFAULT_METADATA_CACHE_CAPACITY};
use chronon_core::{Capabilities, DatasetKind, DatasetProps, ErrorContext, KvError};
use futures::StreamExt;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::policies::timestamp_generator::MonotonicTimestampGenerator;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, Statement};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::config::{ScyllaOptions, BACKEND};
use crate::cql;
use crate::error::{map_error, DriverError};
use crate::layout::{physical_name, MAX_VALUE_BYTES};

/// One connected client: what every call of a `ScyllaStore` (and its clones) shares.
pub(crate) struct Client {
    pub(crate) session: Session,
    pub(crate) options: ScyllaOptions,
    /// The contact points, for error messages.
    pub(crate) address: String,
    pub(crate) meta: MetaStatements,
    cache: MetadataCache<Arc<Dataset>>,
    permits: Semaphore,
    pub(crate) caps: Capabilities,
}

/// The prepared statements on the `datasets` table and the schema tables.
pub(crate) struct MetaStatements {
    pub(crate) select: PreparedStatement,
    pub(crate) insert: PreparedStatement,
    pub(crate) delete: PreparedStatement,
    pub(crate) columns: PreparedStatement,
}

/// One dataset as this client knows it: its properties and its prepared statements.
pub(crate) struct Dataset {
    pub(crate) props: DatasetProps,
    pub(crate) insert: PreparedStatement,
    pub(crate) latest: PreparedStatement,
    pub(crate) range: Option<PreparedStatement>,
    pub(crate) list: PreparedStatement,
}

/// A row of the `datasets` table.
#[derive(Debug, Clone)]
pub(crate) struct MetaRow {
    /// The dataset that owns the physical table (its own name, not the mapped one).
    pub(crate) dataset: String,
    pub(crate) kind: Option<String>,
    pub(crate) ttl_ms: Option<i64>,
}

impl MetaRow {
    /// The dataset's properties; a kind this adapter did not write is a `Backend` error.
    pub(crate) fn props(&self, ctx: ErrorContext<'_>) -> Result<DatasetProps, KvError> {
        let kind = self
            .kind
            .as_deref()
            .and_then(DatasetKind::parse)
            .ok_or_else(|| {
                ctx.backend_error(
                    format!(
                        "the datasets table holds unknown kind {:?} (expected Snapshot or TimeSeries)",
                        self.kind
                    ),
                    None,
                )
            })?;
        let ttl = self
            .ttl_ms
            .filter(|ms| *ms > 0)
            .map(|ms| Duration::from_millis(ms.unsigned_abs()));
        Ok(DatasetProps { kind, ttl })
    }
}

/// Runs `jobs` through `f`, at most `concurrency` at once, until all finish or `deadline`
/// passes; returns what finished (callers answer the rest with `Timeout`).
pub(crate) async fn run_until<J, R, F, Fut>(
    jobs: Vec<J>,
    concurrency: usize,
    deadline: tokio::time::Instant,
    f: F,
) -> Vec<R>
where
    F: FnMut(J) -> Fut,
    Fut: Future<Output = R>,
{
    let mut stream =
        futures::stream::iter(jobs.into_iter().map(f)).buffer_unordered(concurrency.max(1));
    let mut out = Vec::new();
    while let Ok(Some(r)) = tokio::time::timeout_at(deadline, stream.next()).await {
        out.push(r);
    }
    out
}

impl Client {
    /// Connects to the cluster, creates the keyspace and the `datasets` table when missing
    /// (unless [`ScyllaOptions::create_keyspace`] is off), and prepares the metadata statements.
    pub(crate) async fn connect(options: ScyllaOptions) -> Result<Client, KvError> {
        options.validate()?;
        let address = options.contact_points.join(",");
        let ctx = ErrorContext::new(BACKEND, "connect", &address, options.timeout);
        let profile = ExecutionProfile::builder()
            .consistency(options.consistency)
            .request_timeout(Some(options.timeout))
            .build();
        let mut builder = SessionBuilder::new()
            .known_nodes(&options.contact_points)
            .connection_timeout(options.timeout)
            .default_execution_profile_handle(profile.into_handle())
            // Client-side, strictly increasing write timestamps: two puts from one client are
            // ordered as issued even when different coordinators with skewed clocks take them
            // (a Snapshot put replaces the value: last write wins).
            .timestamp_generator(Arc::new(MonotonicTimestampGenerator::new()))
            .schema_agreement_timeout(options.schema_timeout)
            .keyspaces_to_fetch([options.keyspace.clone()]);
        if let Some(dc) = &options.local_datacenter {
            builder = builder.prefer_datacenter(dc.clone());
        }
        if let Some(tls) = options.tls.client_config()? {
            builder = builder.tls_context(Some(tls));
        }
        if let Some(user) = &options.username {
            builder = builder.user(user.clone(), options.password.clone().unwrap_or_default());
        }
        let session = ctx
            .with_timeout(async { builder.build().await.map_err(|e| map_error(e, ctx)) })
            .await?;
        let keyspace = options.keyspace.clone();
        let bootstrap = async {
            if options.create_keyspace {
                let schema_ctx = ErrorContext {
                    operation: "creating the keyspace",
                    timeout: options.schema_timeout,
                    ..ctx
                };
                let replication = &options.replication;
                ddl(
                    &session,
                    &cql::create_keyspace(&keyspace, replication),
                    schema_ctx,
                )
                .await?;
                ddl(&session, &cql::create_datasets_table(&keyspace), schema_ctx).await?;
            }
            let prepare_ctx = ctx.operation("preparing the datasets table statements");
            let (select, insert, delete, columns) = futures::try_join!(
                prepare(&session, cql::select_dataset(&keyspace), prepare_ctx),
                prepare(&session, cql::insert_dataset(&keyspace), prepare_ctx),
                prepare(&session, cql::delete_dataset(&keyspace), prepare_ctx),
                prepare(
                    &session,
                    cql::select_table_columns().to_string(),
                    prepare_ctx
                ),
            )?;
            Ok::<_, KvError>(MetaStatements {
                select,
                insert,
                delete,
                columns,
            })
        };
        let bootstrap_ctx = ErrorContext {
            timeout: options.schema_timeout,
            ..ctx
        };
        let mut meta = bootstrap_ctx.with_timeout(bootstrap).await?;
        // system_schema is node-local (LocalStrategy): ONE is the only level that means anything.
        meta.columns.set_consistency(Consistency::One);
        let caps = Capabilities::new(
            MAX_VALUE_BYTES,
            options.max_in_flight,
            options.max_in_flight,
        )
        .with_native_ttl()
        .with_persistence();
        Ok(Client {
            session,
            permits: Semaphore::new(options.max_in_flight),
            cache: MetadataCache::new(options.metadata_cache_ttl, DEFAULT_METADATA_CACHE_CAPACITY),
            options,
            address,
            meta,
            caps,
        })
    }

    /// The context of a data call (the data-call timeout applies).
    pub(crate) fn ctx(&self, operation: &'static str) -> ErrorContext<'_> {
        ErrorContext::new(BACKEND, operation, &self.address, self.options.timeout)
    }

    /// The context of a schema change on `dataset` (the schema timeout applies).
    pub(crate) fn schema_ctx<'a>(
        &'a self,
        operation: &'static str,
        dataset: &'a str,
    ) -> ErrorContext<'a> {
        ErrorContext::new(
            BACKEND,
            operation,
            &self.address,
            self.options.schema_timeout,
        )
        .dataset(dataset)
    }

    /// One of the [`ScyllaOptions::max_in_flight`] request slots, held while a request runs.
    pub(crate) async fn permit(
        &self,
        ctx: ErrorContext<'_>,
    ) -> Result<SemaphorePermit<'_>, KvError> {
        self.permits.acquire().await.map_err(|e| {
            ctx.backend_error(
                format!("waiting for an in-flight slot: {e}"),
                Some(Arc::new(e)),
            )
        })
    }

    /// The dataset's cached statements, if fresh.
    pub(crate) fn cached(&self, dataset: &str) -> Option<Arc<Dataset>> {
        self.cache.get(dataset)
    }

    /// Forgets what this client knows of `dataset` (created, dropped, or found gone).
    pub(crate) fn forget(&self, dataset: &str) {
        self.cache.forget(dataset);
    }

    /// Forgets a dataset whose table turned out to be gone (dropped by another client).
    pub(crate) fn note_error(&self, dataset: &str, err: &KvError) {
        if matches!(err, KvError::DatasetNotFound { .. }) {
            self.forget(dataset);
        }
    }

    /// The `datasets` row stored under `physical`, if any.
    pub(crate) async fn read_meta(
        &self,
        physical: &str,
        ctx: ErrorContext<'_>,
    ) -> Result<Option<MetaRow>, KvError> {
        let result = self
            .session
            .execute_unpaged(&self.meta.select, (physical,))
            .await
            .map_err(|e| map_error(e, ctx))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| map_error(DriverError::result(e), ctx))?;
        let row = rows
            .maybe_first_row::<(Option<String>, Option<String>, Option<i64>)>()
            .map_err(|e| map_error(DriverError::result(e), ctx))?;
        Ok(row.map(|(dataset, kind, ttl_ms)| MetaRow {
            dataset: dataset.unwrap_or_default(),
            kind,
            ttl_ms,
        }))
    }

    /// The dataset's metadata row when it belongs to `dataset` (not to another name that maps
    /// to the same physical table).
    pub(crate) async fn own_meta(
        &self,
        dataset: &str,
        ctx: ErrorContext<'_>,
    ) -> Result<Option<MetaRow>, KvError> {
        let row = self.read_meta(&physical_name(dataset), ctx).await?;
        Ok(row.filter(|m| m.dataset == dataset))
    }

    /// The dataset with its prepared statements, from the cache or the `datasets` table.
    pub(crate) async fn dataset(
        &self,
        dataset: &str,
        operation: &'static str,
    ) -> Result<Arc<Dataset>, KvError> {
        if let Some(d) = self.cached(dataset) {
            return Ok(d);
        }
        let ticket = self.cache.ticket();
        let ctx = self.ctx(operation).dataset(dataset);
        let meta = self
            .own_meta(dataset, ctx)
            .await?
            .ok_or_else(|| ctx.not_found())?;
        let props = meta.props(ctx)?;
        let statements = cql::dataset_statements(
            &self.options.keyspace,
            &physical_name(dataset),
            props.kind,
            props.ttl.is_some(),
        );
        let session = &self.session;
        let range = async {
            match statements.range.clone() {
                Some(text) => prepare(session, text, ctx).await.map(Some),
                None => Ok(None),
            }
        };
        let (insert, latest, range, list) = futures::try_join!(
            prepare(session, statements.insert.clone(), ctx),
            prepare(session, statements.latest.clone(), ctx),
            range,
            prepare(session, statements.list.clone(), ctx),
        )?;
        let ds = Arc::new(Dataset {
            props,
            insert,
            latest,
            range,
            list,
        });
        self.cache.insert(ticket, dataset, ds.clone());
        Ok(ds)
    }

    /// Resolves every dataset a batch names, concurrently, within `deadline`.
    pub(crate) async fn datasets_for(
        &self,
        names: Vec<String>,
        operation: &'static str,
        deadline: tokio::time::Instant,
    ) -> HashMap<String, Result<Arc<Dataset>, KvError>> {
        let lookups = names.into_iter().map(|name| async move {
            let result =
                match tokio::time::timeout_at(deadline, self.dataset(&name, operation)).await {
                    Ok(r) => r,
                    Err(_) => Err(self.ctx(operation).dataset(&name).timeout_error()),
                };
            (name, result)
        });
        futures::future::join_all(lookups)
            .await
            .into_iter()
            .collect()
    }
}

/// Runs a schema statement (no bound values, so unprepared) and waits for every node to agree
/// on the new schema before returning; `ctx.timeout` is the statement's deadline.
pub(crate) async fn ddl(
    session: &Session,
    text: &str,
    ctx: ErrorContext<'_>,
) -> Result<(), KvError> {
    let mut statement = Statement::new(text);
    statement.set_request_timeout(Some(ctx.timeout));
    session
        .query_unpaged(statement, ())
        .await
        .map_err(|e| map_error(e, ctx))?;
    session
        .await_schema_agreement()
        .await
        .map_err(|e| map_error(e, ctx))?;
    Ok(())
}

/// Prepares a statement; every statement the adapter prepares is idempotent (plain upserts and
/// reads), which lets the driver's retry policy retry it after a timeout.
pub(crate) async fn prepare(
    session: &Session,
    text: String,
    ctx: ErrorContext<'_>,
) -> Result<PreparedStatement, KvError> {
    let mut prepared = session
        .prepare(Statement::new(text))
        .await
        .map_err(|e| map_error(e, ctx))?;
    prepared.set_is_idempotent(true);
    Ok(prepared)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn run_until_keeps_what_finished_by_the_deadline() {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(200);
        let jobs: Vec<u64> = vec![0, 10, 5000, 20];
        let mut done = run_until(jobs, 2, deadline, |ms| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            ms
        })
        .await;
        done.sort_unstable();
        assert_eq!(
            done,
            vec![0, 10, 20],
            "the slow job is left out, the others are kept"
        );
    }

    #[test]
    fn unknown_kinds_in_the_datasets_table_are_backend_errors() {
        let ctx = ErrorContext::new(BACKEND, "multi_get", "h:9042", Duration::from_secs(1));
        let row = MetaRow {
            dataset: "D".into(),
            kind: Some("Other".into()),
            ttl_ms: None,
        };
        let err = row.props(ctx.dataset("D")).unwrap_err();
        assert_eq!(err.kind(), "Backend", "{err}");
        assert!(err.to_string().contains("Other"), "{err}");
        let row = MetaRow {
            kind: Some("TimeSeries".into()),
            ttl_ms: Some(3_600_000),
            ..row
        };
        let props = row.props(ctx).unwrap();
        assert_eq!(props.kind, DatasetKind::TimeSeries);
        assert_eq!(props.ttl, Some(Duration::from_secs(3600)));
    }
}
