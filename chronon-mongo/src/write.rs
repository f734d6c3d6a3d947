//! Writes: `multi_put` (unordered `update` commands of upserts, duplicates in a batch collapsed
//! into the last) and `bulk_put` (large commands, inserts first where unique indexes allow).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::pin::Pin;

use bytes::Bytes;
use chronon_core::batch::PutBatch;
use chronon_core::{
    bulk, key_preview, validate, BulkPutOptions, BulkPutReport, BulkRow, BulkSource, DatasetKind,
    DatasetProps, KvError, PutRequest,
};
use futures::StreamExt;
use mongodb::bson::{doc, Bson, RawArrayBuf, RawDocumentBuf};

use crate::client::Client;
use crate::error::{code, BACKEND, DUPLICATE_KEY};
use crate::layout;

/// Attempts of an upsert that hit a duplicate key error (two clients inserting the same new key
/// at once; MongoDB documents that such an upsert may be retried).
const UPSERT_ATTEMPTS: usize = 3;

/// The answer to one request, by index.
type Answers<T> = Vec<(usize, Result<T, KvError>)>;
type BoxFut<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One upsert of a `multi_put`, answering every request it stands for (duplicates in a batch
/// collapse into the last one, so "last write wins" does not depend on server-side ordering).
struct Statement {
    indices: Vec<usize>,
    key: Bytes,
    doc: RawDocumentBuf,
    size: usize,
}

/// Writes every valid put: the datasets resolved once (through the cache), missing ones
/// failing their puts, the rest as unordered `update` commands of upserts.
pub(crate) async fn multi_put(
    client: &Client,
    requests: Vec<PutRequest>,
) -> Vec<Result<(), KvError>> {
    let mut batch = PutBatch::new(requests, &client.capabilities());
    let groups = batch.pending_by_dataset();
    if groups.is_empty() {
        return batch.finish(BACKEND);
    }
    let target = groups.keys().cloned().collect::<Vec<_>>().join(",");
    match client
        .timed("multi_put", &target, put_all(client, &batch, groups))
        .await
    {
        Ok(answers) => answers.into_iter().for_each(|(i, r)| batch.answer(i, r)),
        Err(e) => batch.fail_pending(&e),
    }
    batch.finish(BACKEND)
}

/// Large unordered `update` commands (`bulk_batch_size` upserts each), `bulk_concurrency`
/// in flight through the core's bulk loop, the dataset resolved once; progress after every
/// acknowledged command. Idempotent because every statement is an upsert.
pub(crate) async fn bulk_put(
    client: &Client,
    dataset: &str,
    rows: BulkSource<'_>,
    options: BulkPutOptions,
) -> Result<BulkPutReport, KvError> {
    validate::dataset_name(dataset)?;
    let (props, managed) = client
        .timed("bulk_put", dataset, async {
            let props = client.read_props_one(dataset).await?;
            // Inserts may go first only where `create` built the unique indexes (the
            // dataset has metadata); a bare JVM collection would take duplicates.
            let managed = client
                .meta
                .find_one(doc! { "_id": dataset })
                .await
                .map_err(|e| client.err(e, "bulk_put", dataset))?
                .is_some();
            Ok((props, managed))
        })
        .await?;
    let props = &props;
    let chunk_rows = client.options.bulk_batch_size.max(1);
    let write_chunk = |rows: Vec<BulkRow>| async move {
        let puts = rows
            .into_iter()
            .map(|r| PutRequest::new(dataset, r.key, r.value, Some(r.ts)))
            .collect();
        let mut batch = PutBatch::new(puts, &client.capabilities());
        let indices: Vec<usize> = batch.pending().map(|p| p.index).collect();
        let groups = vec![(dataset.to_string(), *props, indices)];
        let answers = client
            .timed("bulk_put", dataset, async {
                Ok(write(client, &batch, groups, chunk_rows, 1, managed).await)
            })
            .await?;
        answers.into_iter().for_each(|(i, r)| batch.answer(i, r));
        batch
            .finish(BACKEND)
            .into_iter()
            .collect::<Result<(), KvError>>()
    };
    bulk::bulk_put_chunked_concurrently(
        dataset,
        rows,
        &options,
        chunk_rows,
        client.options.bulk_concurrency,
        write_chunk,
    )
    .await
}

/// Builds the upserts of one dataset's pending puts, duplicates collapsed into the last.
fn statements(batch: &PutBatch, indices: &[usize], props: &DatasetProps) -> Vec<Statement> {
    let with_date = props.ttl.is_some();
    let mut by_identity: HashMap<(Bytes, Option<i64>), usize> = HashMap::new();
    let mut out: Vec<Statement> = Vec::with_capacity(indices.len());
    for &i in indices {
        let p = batch.get(i);
        let identity = (
            p.key.clone(),
            (props.kind == DatasetKind::TimeSeries).then_some(p.ts),
        );
        let doc = layout::upsert_statement(props.kind, p.key, p.value, p.ts, with_date);
        let size = layout::statement_size(p.key, p.value);
        match by_identity.get(&identity) {
            Some(&s) => {
                let st = &mut out[s];
                st.indices.push(i);
                st.doc = doc;
                st.size = size;
            }
            None => {
                by_identity.insert(identity, out.len());
                out.push(Statement {
                    indices: vec![i],
                    key: p.key.clone(),
                    doc,
                    size,
                });
            }
        }
    }
    out
}

/// Splits statements into `update` commands of at most `per_command` statements and
/// `max_batch_bytes` bytes (a larger single statement goes alone).
fn commands(
    client: &Client,
    statements: Vec<Statement>,
    per_command: usize,
) -> Vec<Vec<Statement>> {
    let mut out: Vec<Vec<Statement>> = Vec::new();
    let mut bytes = 0;
    for s in statements {
        let start_new = match out.last() {
            None => true,
            Some(cur) => {
                cur.len() >= per_command.max(1) || bytes + s.size > client.options.max_batch_bytes
            }
        };
        if start_new {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += s.size;
        if let Some(cur) = out.last_mut() {
            cur.push(s);
        }
    }
    out
}

/// Runs one unordered `update` command (one round trip, many upserts) and maps each write
/// error back to its statement. Statements that hit a duplicate key (a concurrent insert of
/// the same new key) are sent again, at most [`UPSERT_ATTEMPTS`] times in all.
///
/// With `insert_first` (bulk loads into datasets whose unique indexes `create` built) the
/// documents are first sent as one `insert` command, which servers run faster than upserts
/// (SecantusDB: ~1,600 vs ~650 documents/s), and only those that already exist (duplicate
/// key) become upserts. The unique index makes this exactly an upsert.
async fn run_update(
    client: &Client,
    dataset: &str,
    statements: Vec<Statement>,
    insert_first: bool,
) -> Answers<()> {
    let mut pending = statements;
    let mut answers: Answers<()> = Vec::new();
    if insert_first {
        let results = send(client, dataset, &pending, true).await;
        let mut rest = Vec::new();
        for (stmt, result) in pending.into_iter().zip(results) {
            match result {
                Err((Some(DUPLICATE_KEY), _)) => rest.push(stmt),
                Err((_, e)) => {
                    answers.extend(stmt.indices.into_iter().map(|i| (i, Err(e.clone()))))
                }
                Ok(()) => answers.extend(stmt.indices.into_iter().map(|i| (i, Ok(())))),
            }
        }
        if rest.is_empty() {
            return answers;
        }
        pending = rest;
    }
    for attempt in 1..=UPSERT_ATTEMPTS {
        let results = send(client, dataset, &pending, false).await;
        let mut retry = Vec::new();
        for (stmt, result) in pending.into_iter().zip(results) {
            match result {
                Err((Some(DUPLICATE_KEY), _)) if attempt < UPSERT_ATTEMPTS => retry.push(stmt),
                Err((_, e)) => {
                    answers.extend(stmt.indices.into_iter().map(|i| (i, Err(e.clone()))))
                }
                Ok(()) => answers.extend(stmt.indices.into_iter().map(|i| (i, Ok(())))),
            }
        }
        if retry.is_empty() {
            break;
        }
        tracing::debug!(
            dataset,
            n = retry.len(),
            attempt,
            "retrying upserts after duplicate key errors"
        );
        chronon_core::observe::note_retry();
        pending = retry;
    }
    answers
}

/// One unordered `update` command of upserts, or with `insert` an `insert` command of the
/// same documents; a result per statement, errors carrying the server code.
async fn send(
    client: &Client,
    dataset: &str,
    statements: &[Statement],
    insert: bool,
) -> Vec<Result<(), (Option<i32>, KvError)>> {
    let op = "multi_put";
    let mut items = RawArrayBuf::new();
    for s in statements {
        if insert {
            match s.doc.get_document("u") {
                Ok(u) => items.push(u.to_raw_document_buf()),
                Err(e) => {
                    let e = KvError::backend(BACKEND, "building an insert", e);
                    return statements.iter().map(|_| Err((None, e.clone()))).collect();
                }
            }
        } else {
            items.push(s.doc.clone());
        }
    }
    let mut cmd = RawDocumentBuf::new();
    if insert {
        cmd.append("insert", dataset);
        cmd.append("documents", items);
    } else {
        cmd.append("update", dataset);
        cmd.append("updates", items);
    }
    cmd.append("ordered", false);
    match RawDocumentBuf::from_document(&client.write_concern) {
        Ok(wc) => cmd.append("writeConcern", wc),
        Err(e) => {
            let e = KvError::backend(BACKEND, "encoding the write concern", e);
            return statements.iter().map(|_| Err((None, e.clone()))).collect();
        }
    }
    let reply = match client.db.run_raw_command(cmd).await {
        Ok(r) => r,
        Err(e) => {
            let c = code(&e);
            let e = client.err(e, op, dataset);
            return statements.iter().map(|_| Err((c, e.clone()))).collect();
        }
    };
    let mut results: Vec<Result<(), (Option<i32>, KvError)>> =
        statements.iter().map(|_| Ok(())).collect();
    if let Ok(wce) = reply.get_document("writeConcernError") {
        let msg = format!(
            "write concern error {}: {}",
            wce.get_i32("code").unwrap_or_default(),
            wce.get_str("errmsg").unwrap_or_default()
        );
        // The write happened on the primary but its durability is unknown: retryable.
        let e =
            KvError::backend_msg(BACKEND, format!("{op} on dataset {dataset:?}"), msg).retryable();
        results.iter_mut().for_each(|r| *r = Err((None, e.clone())));
    }
    if let Ok(errors) = reply.get_array("writeErrors") {
        for we in errors.iter().filter_map(Bson::as_document) {
            let index = we.get("index").and_then(bson_usize);
            let c = we.get_i32("code").ok();
            let msg = we.get_str("errmsg").unwrap_or("no message");
            match index.and_then(|i| statements.get(i).map(|s| (i, s))) {
                Some((i, s)) => {
                    let e = KvError::backend_msg(
                        BACKEND,
                        format!("{op} of key {} on dataset {dataset:?}", key_preview(&s.key)),
                        format!("write error {}: {msg}", c.unwrap_or_default()),
                    );
                    results[i] = Err((c, e));
                }
                None => {
                    let e = KvError::backend_msg(
                        BACKEND,
                        format!("{op} on dataset {dataset:?}"),
                        format!("write error without a valid index ({we}): {msg}"),
                    );
                    results.iter_mut().for_each(|r| *r = Err((c, e.clone())));
                }
            }
        }
    }
    results
}

/// Writes the pending puts of `groups` (datasets already resolved) with `per_command`
/// upserts per `update` command and `concurrency` commands in flight.
async fn write(
    client: &Client,
    batch: &PutBatch,
    groups: Vec<(String, DatasetProps, Vec<usize>)>,
    per_command: usize,
    concurrency: usize,
    insert_first: bool,
) -> Answers<()> {
    let mut work: Vec<BoxFut<'_, Answers<()>>> = Vec::new();
    for (dataset, props, indices) in groups {
        let statements = statements(batch, &indices, &props);
        for command in commands(client, statements, per_command) {
            let dataset = dataset.clone();
            work.push(Box::pin(async move {
                run_update(client, &dataset, command, insert_first).await
            }));
        }
    }
    futures::stream::iter(work)
        .buffer_unordered(concurrency.max(1))
        .flat_map(futures::stream::iter)
        .collect()
        .await
}

async fn put_all(
    client: &Client,
    batch: &PutBatch,
    groups: BTreeMap<String, Vec<usize>>,
) -> Result<Answers<()>, KvError> {
    let names: Vec<&str> = groups.keys().map(String::as_str).collect();
    let props = client.resolve(&names).await?;
    let mut answers = Vec::new();
    let mut work = Vec::new();
    for (dataset, indices) in groups {
        match props.get(&dataset) {
            // Checked before writing: an upsert into a missing collection would create it.
            None => {
                let e = KvError::not_found(&dataset);
                answers.extend(indices.into_iter().map(|i| (i, Err(e.clone()))));
            }
            Some(p) => work.push((dataset, *p, indices)),
        }
    }
    answers.extend(
        write(
            client,
            batch,
            work,
            client.options.put_batch_size,
            client.options.concurrency,
            false,
        )
        .await,
    );
    Ok(answers)
}

fn bson_usize(v: &Bson) -> Option<usize> {
    match v {
        Bson::Int32(i) => usize::try_from(*i).ok(),
        Bson::Int64(i) => usize::try_from(*i).ok(),
        _ => None,
    }
}
