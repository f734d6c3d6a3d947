//! Datasets: create and drop (one column family each, kind and TTL in [`META_CF`]), their props,
//! and the maintenance calls on a whole dataset (compaction, a raw row count).

use chronon_core::{validate, DatasetProps, KvError};
use rocksdb::{ReadOptions, WriteOptions};

use crate::client::{Client, Database, PropsCell};
use crate::error::map_error;
use crate::layout::{self, META_CF};

/// Creates `dataset` (idempotent for the same kind; another kind is `DatasetConflict`).
pub(crate) async fn create(
    client: &Client,
    dataset: &str,
    props: &DatasetProps,
) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    let (ds, props) = (dataset.to_string(), *props);
    client
        .blocking("create", dataset, move |database| {
            create_blocking(database, &ds, props)
        })
        .await
}

/// Drops `dataset` and all its rows (idempotent).
pub(crate) async fn drop_dataset(client: &Client, dataset: &str) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    let ds = dataset.to_string();
    client
        .blocking("drop_dataset", dataset, move |database| {
            drop_blocking(database, &ds)
        })
        .await
}

/// The kind and TTL of an existing dataset, or `DatasetNotFound`.
pub(crate) fn props(client: &Client, dataset: &str) -> Result<DatasetProps, KvError> {
    validate::dataset_name(dataset)?;
    client
        .database()
        .props(dataset)
        .ok_or_else(|| KvError::not_found(dataset))
}

/// Compacts a dataset's whole column family now, which also runs the TTL compaction filter.
pub(crate) async fn compact(client: &Client, dataset: &str) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    let ds = dataset.to_string();
    let timeout = client.options().bulk_chunk_timeout;
    client
        .blocking_with("compact", dataset, timeout, move |database| {
            let (_, cf) = database.dataset(&ds)?;
            database
                .db
                .compact_range_cf(&cf, None::<&[u8]>, None::<&[u8]>);
            Ok(())
        })
        .await
}

/// How many rows a dataset physically holds (every stored version, expired or not).
pub(crate) async fn raw_row_count(client: &Client, dataset: &str) -> Result<u64, KvError> {
    validate::dataset_name(dataset)?;
    let ds = dataset.to_string();
    let timeout = client.options().bulk_chunk_timeout;
    client
        .blocking_with("raw_row_count", dataset, timeout, move |database| {
            let (_, cf) = database.dataset(&ds)?;
            let mut it = database.db.raw_iterator_cf_opt(&cf, ReadOptions::default());
            it.seek_to_first();
            let mut n = 0u64;
            while it.valid() {
                n += 1;
                it.next();
            }
            it.status()
                .map_err(|e| map_error(e, database.context("raw_row_count").dataset(&ds)))?;
            Ok(n)
        })
        .await
}

/// Metadata writes are synced: a dataset's kind must survive a power cut with its column family.
fn sync_write_opts() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

fn create_blocking(database: &Database, dataset: &str, props: DatasetProps) -> Result<(), KvError> {
    let _ddl = database.ddl.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(existing) = database.props(dataset) {
        if existing.kind != props.kind {
            return Err(KvError::DatasetConflict {
                dataset: dataset.to_string(),
                existing: existing.describe(),
                requested: props.describe(),
            });
        }
        return Ok(());
    }
    let cf = layout::cf_name(dataset);
    let ctx = database.context("create").dataset(dataset);
    let db = &database.db;
    if db.cf_handle(&cf).is_some() {
        // Left over from a drop that did not finish; its data must not reappear.
        db.drop_cf(&cf).map_err(|e| map_error(e, ctx))?;
    }
    let cell = PropsCell::default();
    let _ = cell.set(props);
    db.create_cf(&cf, &database.cf_options(Some(cell)))
        .map_err(|e| map_error(e, ctx))?;
    let meta = db
        .cf_handle(META_CF)
        .ok_or_else(|| ctx.backend_error("no metadata column family", None))?;
    db.put_cf_opt(
        &meta,
        dataset.as_bytes(),
        layout::encode_meta(&props),
        &sync_write_opts(),
    )
    .map_err(|e| map_error(e, ctx))?;
    database
        .datasets
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(dataset.to_string(), props);
    Ok(())
}

fn drop_blocking(database: &Database, dataset: &str) -> Result<(), KvError> {
    let _ddl = database.ddl.lock().unwrap_or_else(|e| e.into_inner());
    let ctx = database.context("drop_dataset").dataset(dataset);
    database
        .datasets
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(dataset);
    // Metadata first: a crash before the column family is dropped leaves an orphan that the
    // next open removes, never a dataset that silently lost its kind.
    let db = &database.db;
    let meta = db
        .cf_handle(META_CF)
        .ok_or_else(|| ctx.backend_error("no metadata column family", None))?;
    db.delete_cf_opt(&meta, dataset.as_bytes(), &sync_write_opts())
        .map_err(|e| map_error(e, ctx))?;
    let cf = layout::cf_name(dataset);
    if db.cf_handle(&cf).is_some() {
        db.drop_cf(&cf).map_err(|e| map_error(e, ctx))?;
    }
    Ok(())
}
