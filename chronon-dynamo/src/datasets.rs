//! Datasets: `create` (the table, its TTL setting, the TTL row in the metadata table),
//! `drop_dataset`, and `dataset_props`. The kind lives in the table's key schema; the TTL
//! duration in the metadata table (`prefix + "chronon.datasets"`), which is created on first use.

use std::sync::atomic::Ordering;
use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
    ScalarAttributeType, TableDescription, TableStatus, TimeToLiveSpecification,
};
use chronon_core::{validate, DatasetKind, DatasetProps, KvError};

use crate::client::DynamoClient;
use crate::error::{build_failure, code_of, map_error, message_of};
use crate::layout::{self, KEY_ATTR, META_DATASET_ATTR, META_KIND_ATTR, META_TTL_ATTR, TS_ATTR};

/// Creates `dataset` (idempotent with the same kind; a different kind is `DatasetConflict`),
/// waiting until its table is ACTIVE, within the admin timeout.
pub(crate) async fn create(
    c: &DynamoClient,
    dataset: &str,
    props: &DatasetProps,
) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    c.admin_ctx("create")
        .dataset(dataset)
        .with_timeout(create_table(c, dataset, props))
        .await
}

/// Drops `dataset` (absent is fine), waiting until its table is gone, within the admin timeout.
pub(crate) async fn drop_dataset(c: &DynamoClient, dataset: &str) -> Result<(), KvError> {
    validate::dataset_name(dataset)?;
    c.admin_ctx("drop_dataset")
        .dataset(dataset)
        .with_timeout(drop_table(c, dataset))
        .await
}

/// The dataset's kind and TTL, read fresh from DynamoDB (and cached for the data calls).
pub(crate) async fn dataset_props(
    c: &DynamoClient,
    dataset: &str,
) -> Result<DatasetProps, KvError> {
    validate::dataset_name(dataset)?;
    c.ctx("dataset_props")
        .dataset(dataset)
        .with_timeout(c.fetch_props(dataset))
        .await
}

/// Polls until `table` is ACTIVE (the caller's timeout bounds the wait).
async fn wait_active(c: &DynamoClient, table: &str, dataset: Option<&str>) -> Result<(), KvError> {
    let mut delay = Duration::from_millis(20);
    loop {
        if let Some(t) = c.describe(table, dataset).await? {
            if t.table_status() == Some(&TableStatus::Active) {
                return Ok(());
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
}

/// Polls until `table` is gone.
async fn wait_gone(c: &DynamoClient, table: &str, dataset: &str) -> Result<(), KvError> {
    let mut delay = Duration::from_millis(20);
    while c.describe(table, Some(dataset)).await?.is_some() {
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(1));
    }
    Ok(())
}

/// Creates the metadata table if needed (once per client).
async fn ensure_meta_table(c: &DynamoClient) -> Result<(), KvError> {
    if c.meta_ready.load(Ordering::Acquire) {
        return Ok(());
    }
    let table = c.meta_table();
    let ctx = c.ctx("CreateTable (metadata table)");
    if c.describe(&table, None).await?.is_none() {
        let res = c
            .limited(
                c.sdk
                    .create_table()
                    .table_name(&table)
                    .billing_mode(BillingMode::PayPerRequest)
                    .attribute_definitions(
                        AttributeDefinition::builder()
                            .attribute_name(META_DATASET_ATTR)
                            .attribute_type(ScalarAttributeType::S)
                            .build()
                            .map_err(|e| map_error(build_failure(e), ctx))?,
                    )
                    .key_schema(
                        KeySchemaElement::builder()
                            .attribute_name(META_DATASET_ATTR)
                            .key_type(KeyType::Hash)
                            .build()
                            .map_err(|e| map_error(build_failure(e), ctx))?,
                    )
                    .send(),
            )
            .await;
        match res {
            Ok(_) => {}
            Err(e) if code_of(&e) == "ResourceInUseException" => {}
            Err(e) => return Err(map_error(e, ctx)),
        }
    }
    wait_active(c, &table, None).await?;
    c.meta_ready.store(true, Ordering::Release);
    Ok(())
}

/// Records (or clears) the TTL of `dataset` in the metadata table.
async fn write_meta(c: &DynamoClient, dataset: &str, props: &DatasetProps) -> Result<(), KvError> {
    let Some(ttl) = props.ttl_millis() else {
        return delete_meta(c, dataset).await;
    };
    ensure_meta_table(c).await?;
    c.limited(
        c.sdk
            .put_item()
            .table_name(c.meta_table())
            .item(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
            .item(
                META_KIND_ATTR,
                AttributeValue::S(props.kind.as_str().to_string()),
            )
            .item(META_TTL_ATTR, layout::num(ttl))
            .send(),
    )
    .await
    .map_err(|e| map_error(e, c.ctx("PutItem (metadata table)").dataset(dataset)))?;
    Ok(())
}

/// Removes the TTL row of `dataset` (absent row or table is fine).
async fn delete_meta(c: &DynamoClient, dataset: &str) -> Result<(), KvError> {
    let res = c
        .limited(
            c.sdk
                .delete_item()
                .table_name(c.meta_table())
                .key(META_DATASET_ATTR, AttributeValue::S(dataset.to_string()))
                .send(),
        )
        .await;
    match res {
        Ok(_) => Ok(()),
        Err(e) if code_of(&e) == "ResourceNotFoundException" => Ok(()),
        Err(e) => Err(map_error(
            e,
            c.ctx("DeleteItem (metadata table)").dataset(dataset),
        )),
    }
}

/// The rules for a table that already exists: the same kind is fine (once ACTIVE), another kind
/// is `DatasetConflict`.
async fn check_existing(
    c: &DynamoClient,
    dataset: &str,
    desc: &TableDescription,
    props: &DatasetProps,
) -> Result<(), KvError> {
    let kind = layout::kind_from_key_schema(desc.key_schema());
    if kind != props.kind {
        let ttl = c.read_ttl(dataset).await.unwrap_or(None);
        return Err(KvError::DatasetConflict {
            dataset: dataset.to_string(),
            existing: DatasetProps { kind, ttl }.describe(),
            requested: props.describe(),
        });
    }
    if desc.table_status() != Some(&TableStatus::Active) {
        wait_active(c, &c.table_name(dataset), Some(dataset)).await?;
    }
    Ok(())
}

/// The key schema of a dataset's table: `keyBytes` (B) as partition key, plus `ts` (N) as sort
/// key for `TimeSeries`.
fn key_schema(
    c: &DynamoClient,
    dataset: &str,
    kind: DatasetKind,
) -> Result<(Vec<AttributeDefinition>, Vec<KeySchemaElement>), KvError> {
    let ctx = c.ctx("CreateTable").dataset(dataset);
    let mut columns = vec![(KEY_ATTR, ScalarAttributeType::B, KeyType::Hash)];
    if kind == DatasetKind::TimeSeries {
        columns.push((TS_ATTR, ScalarAttributeType::N, KeyType::Range));
    }
    let mut defs = Vec::with_capacity(columns.len());
    let mut schema = Vec::with_capacity(columns.len());
    for (name, attr_type, key_type) in columns {
        defs.push(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(attr_type)
                .build()
                .map_err(|e| map_error(build_failure(e), ctx))?,
        );
        schema.push(
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(key_type)
                .build()
                .map_err(|e| map_error(build_failure(e), ctx))?,
        );
    }
    Ok((defs, schema))
}

async fn create_table(
    c: &DynamoClient,
    dataset: &str,
    props: &DatasetProps,
) -> Result<(), KvError> {
    let table = c.table_name(dataset);
    if let Some(desc) = c.describe(&table, Some(dataset)).await? {
        return check_existing(c, dataset, &desc, props).await;
    }
    // The TTL row goes first, so no client ever sees the table without its TTL.
    write_meta(c, dataset, props).await?;
    let (defs, schema) = key_schema(c, dataset, props.kind)?;
    let res = c
        .limited(
            c.sdk
                .create_table()
                .table_name(&table)
                .billing_mode(BillingMode::PayPerRequest)
                .set_attribute_definitions(Some(defs))
                .set_key_schema(Some(schema))
                .send(),
        )
        .await;
    match res {
        Ok(_) => {}
        Err(e) if code_of(&e) == "ResourceInUseException" => {
            // Another client created it meanwhile: same rules as an existing table.
            if let Some(desc) = c.describe(&table, Some(dataset)).await? {
                return check_existing(c, dataset, &desc, props).await;
            }
        }
        Err(e) => {
            let error = map_error(e, c.ctx("CreateTable").dataset(dataset));
            // DynamoDB Local keeps tables in SQLite, whose names ignore case: creating `X` next
            // to `x` fails with a (retryable!) InternalFailure. Say what is wrong, not retryable,
            // and take back the metadata row written above.
            if let Some(twin) = case_twin(c, &table).await {
                delete_meta(c, dataset).await?;
                return Err(KvError::InvalidDataset {
                    dataset: dataset.to_string(),
                    reason: format!(
                        "this DynamoDB (DynamoDB Local) compares table names without case and \
                         already has table {twin}; real DynamoDB keeps them apart ({error})"
                    ),
                });
            }
            return Err(error);
        }
    }
    wait_active(c, &table, Some(dataset)).await?;
    // Chronon enables TTL on attribute "ttl" right after creating the table.
    let ctx = c.ctx("UpdateTimeToLive").dataset(dataset);
    let spec = TimeToLiveSpecification::builder()
        .enabled(true)
        .attribute_name(layout::TTL_ATTR)
        .build()
        .map_err(|e| map_error(build_failure(e), ctx))?;
    let res = c
        .limited(
            c.sdk
                .update_time_to_live()
                .table_name(&table)
                .time_to_live_specification(spec)
                .send(),
        )
        .await;
    match res {
        Ok(_) => {}
        Err(e) if message_of(&e).contains("already enabled") => {}
        Err(e) => return Err(map_error(e, ctx)),
    }
    c.remember_created(dataset, *props);
    Ok(())
}

/// Another table whose name equals `table` but for case, if the endpoint lists one.
async fn case_twin(c: &DynamoClient, table: &str) -> Option<String> {
    let mut start: Option<String> = None;
    loop {
        let page = c
            .limited(
                c.sdk
                    .list_tables()
                    .set_exclusive_start_table_name(start.clone())
                    .send(),
            )
            .await
            .ok()?;
        if let Some(twin) = page
            .table_names()
            .iter()
            .find(|t| t.as_str() != table && t.eq_ignore_ascii_case(table))
        {
            return Some(twin.clone());
        }
        start = Some(page.last_evaluated_table_name()?.to_string());
    }
}

async fn drop_table(c: &DynamoClient, dataset: &str) -> Result<(), KvError> {
    let table = c.table_name(dataset);
    c.forget(dataset);
    loop {
        let res = c
            .limited(c.sdk.delete_table().table_name(&table).send())
            .await;
        match res {
            Ok(_) => break,
            Err(e) if code_of(&e) == "ResourceNotFoundException" => break,
            // Being created or updated: wait until it settles, then delete.
            Err(e) if code_of(&e) == "ResourceInUseException" => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(map_error(e, c.ctx("DeleteTable").dataset(dataset))),
        }
    }
    wait_gone(c, &table, dataset).await?;
    delete_meta(c, dataset).await?;
    c.forget(dataset);
    Ok(())
}
