//! Datasets: `create`, `drop_dataset` and `dataset_props`, kept in the registry hash
//! (`<prefix>:#datasets`, one field per dataset: kind, TTL and generation; see [`crate::layout`]).
//!
//! Each creation gets a fresh generation in its data keys, so a drop only has to remove the
//! registry field to make every key of the dataset invisible at once; the keys themselves are
//! then deleted by a `SCAN`.

use chronon_core::{DatasetProps, KvError};
use redis::Value;

use crate::client::Client;
use crate::layout::{self, Entry};

/// Creates `dataset` (a no-op when it exists with the same kind), bounded by the timeout.
pub(crate) async fn create(
    client: &Client,
    dataset: &str,
    props: &DatasetProps,
) -> Result<(), KvError> {
    client
        .ctx("create")
        .dataset(dataset)
        .with_timeout(create_inner(client, dataset, props))
        .await
}

/// Drops `dataset` and deletes its keys (a no-op when it does not exist), bounded by the timeout.
pub(crate) async fn drop_dataset(client: &Client, dataset: &str) -> Result<(), KvError> {
    client
        .ctx("drop_dataset")
        .dataset(dataset)
        .with_timeout(drop_inner(client, dataset))
        .await
}

/// The kind and TTL `dataset` was created with, read from the registry.
pub(crate) async fn dataset_props(client: &Client, dataset: &str) -> Result<DatasetProps, KvError> {
    client
        .ctx("dataset_props")
        .dataset(dataset)
        .with_timeout(async { Ok(client.lookup_one("dataset_props", dataset).await?.props) })
        .await
}

async fn drop_inner(client: &Client, dataset: &str) -> Result<(), KvError> {
    let ctx = client.ctx("drop_dataset").dataset(dataset);
    let raw: Option<String> = client
        .query(ctx, redis::cmd("HGET").arg(&client.registry).arg(dataset))
        .await?;
    client.forget(dataset);
    let Some(raw) = raw else { return Ok(()) };
    let _: Value = client
        .query(ctx, redis::cmd("HDEL").arg(&client.registry).arg(dataset))
        .await?;
    // Again, so a lookup of this client that read the entry before the HDEL is not kept.
    client.forget(dataset);
    let Ok(entry) = Entry::decode(&raw) else {
        return Ok(());
    };
    // The generation is gone from the registry, so its keys are invisible from here on;
    // delete them so the memory comes back.
    let pattern = format!(
        "{}*",
        layout::data_prefix(&client.opts.prefix, dataset, &entry.gen)
    );
    let mut scan = 0u64;
    loop {
        let (next, keys): (u64, Vec<Vec<u8>>) = client
            .query(
                ctx,
                redis::cmd("SCAN")
                    .arg(scan)
                    .arg("MATCH")
                    .arg(&pattern)
                    .arg("COUNT")
                    .arg(client.opts.scan_count.saturating_mul(10)),
            )
            .await?;
        if !keys.is_empty() {
            let _: Value = client.query(ctx, redis::cmd("UNLINK").arg(keys)).await?;
        }
        scan = next;
        if scan == 0 {
            return Ok(());
        }
    }
}

async fn create_inner(client: &Client, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
    let ctx = client.ctx("create").dataset(dataset);
    for _ in 0..3 {
        let entry = Entry {
            props: *props,
            gen: layout::new_gen(),
        };
        let created: bool = client
            .query(
                ctx,
                redis::cmd("HSETNX")
                    .arg(&client.registry)
                    .arg(dataset)
                    .arg(entry.encode()),
            )
            .await?;
        if created {
            client.forget(dataset);
            client.remember(client.tickets(), dataset, &entry);
            return Ok(());
        }
        match client.lookup_one("create", dataset).await {
            Ok(existing) if existing.props.kind != props.kind => {
                return Err(KvError::DatasetConflict {
                    dataset: dataset.to_string(),
                    existing: existing.props.describe(),
                    requested: props.describe(),
                })
            }
            Ok(_) => return Ok(()),
            // Dropped between the two commands: try again.
            Err(KvError::DatasetNotFound { .. }) => continue,
            Err(e) => return Err(e),
        }
    }
    Err(ctx
        .backend_error(
            "dataset was dropped and re-created concurrently; try again",
            None,
        )
        .retryable())
}
