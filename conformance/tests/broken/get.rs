//! `Broken::multi_get`: the read-side flaws.

use chronon_core::{GetRequest, GetResponse, KvStore};

use crate::store::{fail_all, lock, slow, Broken, Flaw};

pub async fn multi_get(store: &Broken, mut requests: Vec<GetRequest>) -> Vec<GetResponse> {
    if requests.is_empty() && store.flaw != Flaw::RoundTripOnEmptyBatch {
        return Vec::new();
    }
    if store.flaw == Flaw::SlowBigBatches && requests.len() > 1000 {
        let n = requests.len();
        return requests
            .into_iter()
            .zip(fail_all(n, slow()))
            .map(|(request, values)| GetResponse { request, values })
            .collect();
    }
    let originals = requests.clone();
    for r in &mut requests {
        r.key = store.key(r.key.clone());
        r.dataset = store.dataset(&r.dataset);
    }
    match store.flaw {
        Flaw::IgnoresStartTs => {
            for r in &mut requests {
                if r.start_ts.is_some() {
                    r.start_ts = Some(i64::MIN);
                }
            }
        }
        Flaw::DropsLastRequest => {
            requests.pop();
        }
        Flaw::FailsWholeBatch => {
            let bad = requests
                .iter()
                .find_map(|r| chronon_core::validate::get_request(r).err());
            if let Some(e) = bad {
                let n = requests.len();
                return originals
                    .into_iter()
                    .zip(fail_all(n, e))
                    .map(|(request, values)| GetResponse { request, values })
                    .collect();
            }
        }
        _ => {}
    }
    let cached = matches!(store.flaw, Flaw::ReadCache | Flaw::NegativeCache);
    let mut out: Vec<Option<GetResponse>> = vec![None; requests.len()];
    let mut ask = Vec::new();
    let mut slots = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let key = (r.dataset.clone(), r.key.clone(), r.start_ts, r.end_ts);
        match lock(&store.cache).get(&key) {
            Some(hit) if cached => out[i] = Some(hit.clone()),
            _ => {
                ask.push(r.clone());
                slots.push(i);
            }
        }
    }
    if !ask.is_empty() || store.flaw == Flaw::RoundTripOnEmptyBatch {
        store.call();
        let answers = store.inner.multi_get(ask).await;
        for (slot, answer) in slots.into_iter().zip(answers) {
            let r = &answer.request;
            let key = (r.dataset.clone(), r.key.clone(), r.start_ts, r.end_ts);
            let keep = match (&store.flaw, &answer.values) {
                (Flaw::ReadCache, Ok(v)) => !v.is_empty(),
                (Flaw::NegativeCache, Ok(v)) => v.is_empty(),
                _ => false,
            };
            if keep {
                lock(&store.cache).insert(key, answer.clone());
            }
            out[slot] = Some(answer);
        }
    }
    let mut out: Vec<GetResponse> = out.into_iter().flatten().collect();
    // Answers carry the caller's own requests back.
    for (resp, original) in out.iter_mut().zip(&originals) {
        resp.request = original.clone();
    }
    for (i, resp) in out.iter_mut().enumerate() {
        let cutoff = store.expiry_cutoff(&store.dataset(&resp.request.dataset));
        if let Ok(values) = &mut resp.values {
            if store.emulates_ttl() && store.flaw != Flaw::IgnoresTtl {
                if let Some(cutoff) = cutoff {
                    values.retain(|v| v.millis >= cutoff);
                }
            }
            match store.flaw {
                Flaw::NewestFirst => values.reverse(),
                Flaw::ReportsReadTime => values
                    .iter_mut()
                    .for_each(|v| v.millis = chronon_core::batch::now_millis()),
                Flaw::RangeFirstPageOnly if resp.request.start_ts.is_some() => {
                    values.truncate(1000)
                }
                Flaw::RangeStopsAt10000 if resp.request.start_ts.is_some() => {
                    values.truncate(10_000)
                }
                Flaw::GetLosesChunkBoundary if i >= 100 && i % 100 == 0 => values.clear(),
                _ => {}
            }
        }
    }
    out
}
