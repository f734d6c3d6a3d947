//! `Broken::multi_put`: the write-side flaws.

use chronon_core::{KvError, KvStore, PutRequest};

use crate::store::{fail_all, lock, slow, Broken, Flaw};

pub async fn multi_put(store: &Broken, mut requests: Vec<PutRequest>) -> Vec<Result<(), KvError>> {
    if requests.is_empty() && store.flaw != Flaw::RoundTripOnEmptyBatch {
        return Vec::new();
    }
    if store.flaw == Flaw::SlowBigBatches && requests.len() > 1000 {
        return fail_all(requests.len(), slow());
    }
    lock(&store.cache).clear();
    for r in &mut requests {
        r.key = store.key(r.key.clone());
        r.dataset = store.dataset(&r.dataset);
    }
    match store.flaw {
        Flaw::DropsLastRequest => {
            requests.pop();
        }
        Flaw::ManglesZeroBytes => {
            for r in &mut requests {
                r.value = r
                    .value
                    .iter()
                    .map(|b| if *b == 0 { b' ' } else { *b })
                    .collect::<Vec<u8>>()
                    .into();
            }
        }
        Flaw::FailsWholeBatch => {
            let caps = store.inner.capabilities();
            let bad = requests
                .iter()
                .find_map(|r| chronon_core::validate::put_request(r, &caps).err());
            if let Some(e) = bad {
                return fail_all(requests.len(), e);
            }
        }
        Flaw::PutDropsAfterFirstChunk if requests.len() > 1000 => {
            let n = requests.len();
            requests.truncate(1000);
            store.call();
            let mut results = store.inner.multi_put(requests).await;
            results.resize_with(n, || Ok(()));
            return results;
        }
        _ => {}
    }
    store.call();
    store.inner.multi_put(requests).await
}
