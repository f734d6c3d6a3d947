//! Datasets: `create` (collection, unique indexes, then the metadata document), `drop`, and a
//! dataset's properties, keeping the client's metadata cache in step with what this client does.

use chronon_core::{validate, DatasetProps, KvError};
use mongodb::bson::{doc, Document};

use crate::client::Client;
use crate::error::{code, DUPLICATE_KEY, NAMESPACE_EXISTS, NAMESPACE_NOT_FOUND};
use crate::layout;

/// Creates `dataset` with `props`, or checks that an existing one has the same kind.
pub(crate) async fn create(
    client: &Client,
    dataset: &str,
    props: &DatasetProps,
) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    let created = client
        .timed("create", dataset, async {
            let existing = client
                .meta
                .find_one(doc! { "_id": dataset })
                .await
                .map_err(|e| client.err(e, "create", dataset))?;
            let check = |d: &Document| -> Result<(), KvError> {
                let (_, have) = layout::parse_meta(d)
                    .map_err(|m| client.ctx("create").dataset(dataset).backend_error(m, None))?;
                if have.kind != props.kind {
                    return Err(KvError::DatasetConflict {
                        dataset: dataset.to_string(),
                        existing: have.describe(),
                        requested: props.describe(),
                    });
                }
                Ok(())
            };
            if let Some(d) = existing {
                return check(&d);
            }
            // Collection and indexes first, metadata last: once the metadata is visible, the
            // unique indexes that make upserts one-document-per-key are in place.
            if let Err(e) = client.db.create_collection(dataset).await {
                if code(&e) != Some(NAMESPACE_EXISTS) {
                    return Err(client.err(e, "create", dataset));
                }
            }
            client
                .db
                .collection::<Document>(dataset)
                .create_indexes(layout::indexes(props))
                .await
                .map_err(|e| client.err(e, "creating indexes", dataset))?;
            match client
                .meta
                .insert_one(layout::meta_doc(dataset, props))
                .await
            {
                Ok(_) => Ok(()),
                Err(e) if code(&e) == Some(DUPLICATE_KEY) => {
                    // Another client created it meanwhile: same rules as if it had been first.
                    let d = client
                        .meta
                        .find_one(doc! { "_id": dataset })
                        .await
                        .map_err(|e| client.err(e, "create", dataset))?
                        .ok_or_else(|| KvError::not_found(dataset))?;
                    check(&d)
                }
                Err(e) => Err(client.err(e, "create", dataset)),
            }
        })
        .await;
    // Whatever happened, the next call reads what is there now.
    client.forget(dataset);
    created
}

/// Times a drop checks that the dataset is gone (and drops it again if not).
const DROP_ATTEMPTS: u32 = 5;

/// Drops `dataset`: its metadata first (so a concurrent put already sees `DatasetNotFound`),
/// then its collection, then checks with the lookup every read makes that the dataset is gone,
/// and drops both again if it is not. A collection without metadata still reads as a
/// (JVM-made) dataset, so one left behind would bring the dropped dataset back: an upsert from
/// a client that resolved the dataset just before the drop re-creates the collection, and
/// SecantusDB under load was seen to still list a collection after acknowledging its drop
/// (3-14 of 60-80 drops). Dropping a missing dataset is not an error; a dataset still found
/// after [`DROP_ATTEMPTS`] drops is.
pub(crate) async fn drop_dataset(client: &Client, dataset: &str) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    let dropped = client
        .timed("drop", dataset, async {
            for attempt in 1..=DROP_ATTEMPTS {
                client
                    .meta
                    .delete_one(doc! { "_id": dataset })
                    .await
                    .map_err(|e| client.err(e, "drop", dataset))?;
                client.forget(dataset);
                match client.db.collection::<Document>(dataset).drop().await {
                    Err(e) if code(&e) != Some(NAMESPACE_NOT_FOUND) => {
                        return Err(client.err(e, "drop", dataset));
                    }
                    _ => {}
                }
                // Checked with the lookup every read makes (the metadata, then the collection
                // list), so a read after the drop finds the dataset gone. SecantusDB under load
                // has shown the dropped dataset to a read after the drop was acknowledged, and
                // after a check of the collection list alone had found it gone (`chronon check`
                // in CI: "get after drop: expected DatasetNotFound, got Ok(None)").
                let found = client.read_props(&[dataset]).await?;
                if !found.contains_key(dataset) {
                    return Ok(());
                }
                tracing::warn!(dataset, attempt, "dataset still found after its drop");
                tokio::time::sleep(std::time::Duration::from_millis(50 * u64::from(attempt))).await;
            }
            Err(client.ctx("drop").dataset(dataset).backend_error(
                format!(
                    "the server acknowledged {DROP_ATTEMPTS} drops of the dataset but still \
                     shows it (its metadata or its collection)"
                ),
                None,
            ))
        })
        .await;
    // Again: a lookup between the two steps saw the collection without its metadata.
    client.forget(dataset);
    dropped
}

/// The properties of `dataset`, read now (not from the cache).
pub(crate) async fn dataset_props(client: &Client, dataset: &str) -> Result<DatasetProps, KvError> {
    validate::dataset_name(dataset)?;
    client
        .timed("dataset_props", dataset, client.read_props_one(dataset))
        .await
}
