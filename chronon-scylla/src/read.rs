//! Reads: `multi_get` (the latest version or a time range per request) and `list` (every key
//! with its newest visible version, paged by the driver's paging state).
//!
//! Every read is a prepared statement with the partition key bound, so the driver sends it
//! straight to a replica; the requests of one `multi_get` run concurrently, at most
//! [`ScyllaOptions::max_in_flight`](crate::ScyllaOptions::max_in_flight) at once per store.

use bytes::Bytes;
use chronon_core::batch::{select_versions, visible_from, GetBatch};
use chronon_core::{validate, GetRequest, GetResponse, KvError, ListCursor, ListPage, TimedValue};
use futures::StreamExt;
use scylla::response::{PagingState, PagingStateResponse};

use crate::client::{run_until, Client, Dataset};
use crate::config::BACKEND;
use crate::error::{map_error, DriverError};

/// Largest page `list` asks for in one round trip.
const MAX_LIST_PAGE: usize = 10_000;

impl Client {
    /// `KvStore::multi_get`: one answer per request, in order; requests still running when the
    /// data-call timeout passes are answered `Timeout`.
    pub(crate) async fn multi_get(&self, requests: Vec<GetRequest>) -> Vec<GetResponse> {
        let mut batch = GetBatch::new(requests);
        if batch.is_done() {
            return batch.finish(BACKEND);
        }
        let deadline = tokio::time::Instant::now() + self.options.timeout;
        let names: Vec<String> = batch.pending_by_dataset().into_keys().collect();
        let datasets = self.datasets_for(names, "multi_get", deadline).await;
        let mut jobs = Vec::new();
        for (name, ds) in &datasets {
            match ds {
                Err(e) => batch.fail_dataset(name, e),
                Ok(ds) => {
                    let cut = visible_from(&ds.props);
                    jobs.extend(
                        batch
                            .pending()
                            .filter(|(_, r)| &r.dataset == name)
                            .map(|(i, r)| (i, ds.clone(), r.clone(), cut)),
                    );
                }
            }
        }
        let done = run_until(
            jobs,
            self.options.max_in_flight,
            deadline,
            |(i, ds, req, cut)| async move {
                let result = self.get_one(&ds, &req, cut).await;
                if let Err(e) = &result {
                    self.note_error(&req.dataset, e);
                }
                (i, result)
            },
        )
        .await;
        for (i, result) in done {
            batch.answer(i, result);
        }
        let late: Vec<(usize, String)> = batch
            .pending()
            .map(|(i, r)| (i, r.dataset.clone()))
            .collect();
        for (i, dataset) in late {
            let timeout = self.ctx("multi_get").dataset(&dataset).timeout_error();
            batch.answer(i, Err(timeout));
        }
        batch.finish(BACKEND)
    }

    async fn get_one(
        &self,
        ds: &Dataset,
        req: &GetRequest,
        cut: Option<i64>,
    ) -> Result<Vec<TimedValue>, KvError> {
        let ctx = self.ctx("multi_get").dataset(&req.dataset).key(&req.key);
        let _permit = self.permit(ctx).await?;
        let key: &[u8] = &req.key;
        let mut versions = Vec::new();
        match (&ds.range, req.start_ts) {
            (Some(range), Some(start)) => {
                // Only versions the TTL still shows, and only the asked range, leave the server.
                let lo = start.max(cut.unwrap_or(i64::MIN));
                let hi = req.end_ts.unwrap_or(i64::MAX);
                if lo > hi {
                    return Ok(Vec::new());
                }
                let pager = self
                    .session
                    .execute_iter(range.clone(), (key, lo, hi))
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                let mut rows = pager
                    .rows_stream::<(Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), ctx))?;
                while let Some(row) = rows.next().await {
                    let (ts, value) = row.map_err(|e| map_error(e, ctx))?;
                    if let Some(ts) = ts {
                        versions.push(TimedValue::new(value.unwrap_or_default(), ts));
                    }
                }
                // The table is clustered newest first; the contract returns oldest first.
                versions.reverse();
            }
            _ => {
                let result = self
                    .session
                    .execute_unpaged(&ds.latest, (key,))
                    .await
                    .map_err(|e| map_error(e, ctx))?;
                let rows = result
                    .into_rows_result()
                    .map_err(|e| map_error(DriverError::result(e), ctx))?;
                for row in rows
                    .rows::<(Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), ctx))?
                {
                    let (ts, value) = row.map_err(|e| map_error(DriverError::result(e), ctx))?;
                    if let Some(ts) = ts {
                        versions.push(TimedValue::new(value.unwrap_or_default(), ts));
                    }
                }
            }
        }
        Ok(select_versions(versions, req, cut))
    }

    /// `KvStore::list`: up to `limit` keys (at most [`MAX_LIST_PAGE`] per round trip); an empty
    /// page is only ever the last one.
    pub(crate) async fn list(
        &self,
        dataset: &str,
        limit: usize,
        cursor: Option<ListCursor>,
    ) -> Result<ListPage, KvError> {
        validate::dataset_name(dataset)?;
        let ctx = self.ctx("list").dataset(dataset);
        let work = async {
            let ds = self.dataset(dataset, "list").await?;
            let mut statement = ds.list.clone();
            let page = limit.clamp(1, MAX_LIST_PAGE);
            statement.set_page_size(i32::try_from(page).unwrap_or(1));
            let mut paging = match cursor {
                Some(c) if !c.0.is_empty() => PagingState::new_from_raw_bytes(c.0.to_vec()),
                _ => PagingState::start(),
            };
            let cut = visible_from(&ds.props);
            let mut entries = Vec::new();
            // A page can come back empty while more follow (every row in it past the TTL, or a
            // server page cut short); keep going until something or the end is reached, so an
            // empty page is only ever the last one.
            let next = loop {
                let _permit = self.permit(ctx).await?;
                let (result, response) = self
                    .session
                    .execute_single_page(&statement, (), paging)
                    .await
                    .map_err(|e| {
                        let err = map_error(e, ctx);
                        self.note_error(dataset, &err);
                        err
                    })?;
                let rows = result
                    .into_rows_result()
                    .map_err(|e| map_error(DriverError::result(e), ctx))?;
                for row in rows
                    .rows::<(Option<Bytes>, Option<i64>, Option<Bytes>)>()
                    .map_err(|e| map_error(DriverError::result(e), ctx))?
                {
                    let (key, ts, value) =
                        row.map_err(|e| map_error(DriverError::result(e), ctx))?;
                    let (Some(key), Some(ts)) = (key, ts) else {
                        continue;
                    };
                    // The newest version per key came back (PER PARTITION LIMIT 1 on a
                    // newest-first time series); when even it is past the TTL the key has
                    // nothing visible.
                    if cut.is_none_or(|c| ts >= c) {
                        entries.push((key, TimedValue::new(value.unwrap_or_default(), ts)));
                    }
                }
                let state = match response {
                    PagingStateResponse::HasMorePages { state } => state,
                    PagingStateResponse::NoMorePages => break None,
                };
                let Some(bytes) = state.as_bytes_slice() else {
                    break None;
                };
                if !entries.is_empty() {
                    break Some(ListCursor(Bytes::copy_from_slice(bytes)));
                }
                paging = state;
            };
            Ok(ListPage { entries, next })
        };
        ctx.with_timeout(work).await
    }
}
