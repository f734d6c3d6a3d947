//! Datasets: `create`, `drop_dataset` and `dataset_props`, kept in the registry hash
//! (`<prefix>:#datasets`, one field per dataset: kind, TTL and generation; see [`crate::layout`]).
//!
//! Each creation gets a fresh generation in its data keys, so a drop only has to remove the
//! registry field to make every key of the dataset invisible at once; the keys themselves are
//! then deleted by a `SCAN`.

use chronon_core::{DatasetProps, KvError};
use redis::Value;

use crate::client::Client;
use crate::error::map_error;
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
    let mut pos = (client.first_scan_node(ctx).await?, 0u64);
    let count = client.opts.scan_count.saturating_mul(10);
    loop {
        let (next, keys) = client.scan_step(ctx, pos, &pattern, count).await?;
        if !keys.is_empty() {
            // On a cluster the driver splits this by slot.
            let _: Value = client.query(ctx, redis::cmd("UNLINK").arg(keys)).await?;
        }
        match next {
            Some(next) => pos = next,
            None => return Ok(()),
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
        let mut batch = client.batch();
        batch
            .on_key("HSETNX", &client.registry)
            .arg(&client.registry)
            .arg(dataset)
            .arg(entry.encode());
        let waited = client.add_wait(&mut batch);
        let mut replies = client.pipeline(ctx, &batch).await?.into_iter();
        let created = match replies.next() {
            Some(Value::Int(n)) => n == 1,
            Some(Value::ServerError(e)) => return Err(map_error(e.into(), ctx)),
            other => {
                return Err(ctx.backend_error(format!("unexpected HSETNX reply {other:?}"), None))
            }
        };
        if waited {
            // The entry (new or found) must be on min_replicas replicas before create returns.
            let reply = replies.next().unwrap_or(Value::Nil);
            if let Some(e) = client.wait_error(ctx, &reply) {
                if created {
                    client.forget(dataset);
                }
                return Err(e);
            }
        }
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
