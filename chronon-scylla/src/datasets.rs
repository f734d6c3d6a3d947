//! Datasets: `create`, `drop_dataset` and `dataset_props`, the schema statements they run and
//! the metadata cache they keep honest.
//!
//! A dataset is a table plus a row of the `datasets` table (its own name, kind and TTL, keyed by
//! its physical table name). `create` makes the table first and the row second, `drop_dataset`
//! removes them in the same order, so a dataset is visible only once its table exists and an
//! interrupted call is finished by the next one.

use chronon_core::{validate, DatasetKind, DatasetProps, KvError};

use crate::client::{ddl, Client};
use crate::cql;
use crate::error::{map_error, DriverError};
use crate::layout::physical_name;

impl Client {
    /// `KvStore::create`: idempotent for the same kind (the dataset keeps the properties it was
    /// created with), `DatasetConflict` for another kind.
    pub(crate) async fn create(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let ctx = self.schema_ctx("create", dataset);
        ctx.with_timeout(self.create_inner(dataset, props)).await
    }

    /// `KvStore::drop_dataset`: a dataset that does not exist is already dropped.
    pub(crate) async fn drop_dataset(&self, dataset: &str) -> Result<(), KvError> {
        validate::dataset_name(dataset)?;
        let ctx = self.schema_ctx("drop_dataset", dataset);
        ctx.with_timeout(self.drop_inner(dataset)).await
    }

    /// `KvStore::dataset_props`, from the cache or the `datasets` table.
    pub(crate) async fn dataset_props(&self, dataset: &str) -> Result<DatasetProps, KvError> {
        validate::dataset_name(dataset)?;
        if let Some(d) = self.cached(dataset) {
            return Ok(d.props);
        }
        let ctx = self.ctx("dataset_props").dataset(dataset);
        let lookup = async {
            match self.own_meta(dataset, ctx).await? {
                Some(meta) => meta.props(ctx),
                None => Err(ctx.not_found()),
            }
        };
        ctx.with_timeout(lookup).await
    }

    /// Checks that the table of `physical` has the shape of `kind` (a `TimeSeries` clusters on
    /// `ts`), so a table left behind by an interrupted `create` of the other kind is never
    /// adopted silently. Silent when the schema tables do not show the table.
    async fn check_table_kind(
        &self,
        dataset: &str,
        physical: &str,
        kind: DatasetKind,
    ) -> Result<(), KvError> {
        let ctx = self.schema_ctx("create", dataset);
        let result = self
            .session
            .execute_unpaged(
                &self.meta.columns,
                (self.options.keyspace.as_str(), physical),
            )
            .await
            .map_err(|e| map_error(e, ctx))?;
        let rows = result
            .into_rows_result()
            .map_err(|e| map_error(DriverError::result(e), ctx))?;
        for row in rows
            .rows::<(Option<String>, Option<String>)>()
            .map_err(|e| map_error(DriverError::result(e), ctx))?
        {
            let (column, column_kind) = row.map_err(|e| map_error(DriverError::result(e), ctx))?;
            if column.as_deref() != Some("ts") {
                continue;
            }
            let found = if column_kind.as_deref() == Some("clustering") {
                DatasetKind::TimeSeries
            } else {
                DatasetKind::Snapshot
            };
            if found != kind {
                return Err(KvError::DatasetConflict {
                    dataset: dataset.to_string(),
                    existing: format!(
                        "{found} (table {physical:?} exists without a datasets entry)"
                    ),
                    requested: kind.to_string(),
                });
            }
        }
        Ok(())
    }

    async fn create_inner(&self, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
        let physical = physical_name(dataset);
        let ctx = self.schema_ctx("create", dataset);
        let existing = self.read_meta(&physical, ctx).await?;
        let (kind, ttl_ms) = match &existing {
            Some(meta) if meta.dataset != dataset => {
                return Err(KvError::InvalidDataset {
                    dataset: dataset.to_string(),
                    reason: format!(
                        "its CQL table name {physical:?} is already used by dataset {:?}",
                        meta.dataset
                    ),
                })
            }
            Some(meta) => {
                let have = meta.props(ctx)?;
                if have.kind != props.kind {
                    return Err(KvError::DatasetConflict {
                        dataset: dataset.to_string(),
                        existing: have.describe(),
                        requested: props.describe(),
                    });
                }
                // Idempotent: the dataset keeps the properties it was created with.
                (have.kind, have.ttl_millis())
            }
            None => (props.kind, props.ttl_millis()),
        };
        // Table first, then its datasets entry: a dataset is visible only once its table exists.
        // Re-running CREATE ... IF NOT EXISTS for an existing entry repairs a dropped-but-listed
        // table after an interrupted drop.
        let keyspace = &self.options.keyspace;
        ddl(
            &self.session,
            &cql::create_table(keyspace, &physical, kind, ttl_ms),
            ctx,
        )
        .await?;
        self.check_table_kind(dataset, &physical, kind).await?;
        if existing.is_none() {
            self.session
                .execute_unpaged(
                    &self.meta.insert,
                    (physical.as_str(), dataset, kind.as_str(), ttl_ms),
                )
                .await
                .map_err(|e| map_error(e, ctx))?;
        }
        self.forget(dataset);
        Ok(())
    }

    async fn drop_inner(&self, dataset: &str) -> Result<(), KvError> {
        let physical = physical_name(dataset);
        let ctx = self.schema_ctx("drop_dataset", dataset);
        self.forget(dataset);
        // Only a table this dataset owns is dropped; a name that maps to another dataset's
        // table, or was never created, is already "dropped".
        if self.own_meta(dataset, ctx).await?.is_some() {
            // Table first: if this is interrupted the entry remains and the next drop or
            // create finishes the job.
            ddl(
                &self.session,
                &cql::drop_table(&self.options.keyspace, &physical),
                ctx,
            )
            .await?;
            self.session
                .execute_unpaged(&self.meta.delete, (physical.as_str(),))
                .await
                .map_err(|e| map_error(e, ctx))?;
        }
        self.forget(dataset);
        Ok(())
    }
}
