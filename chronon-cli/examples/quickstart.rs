//! Chronon's quickstart, online half, end to end on any store:
//! purchases and returns events → two user group-bys with windowed sums and counts → a join →
//! batch upload as of the end of 2023-11-30 → a stream of new purchases and a return → the same
//! fetch before and after, showing the features change.
//!
//! ```text
//! cargo run -p chronon-cli --example quickstart                        # temporary RocksDB
//! cargo run -p chronon-cli --example quickstart -- rocks:///tmp/chronon-qs
//! cargo run -p chronon-cli --example quickstart -- redis://127.0.0.1:6379/0
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chronon_core::KvStore;
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{
    Accuracy, Aggregation, GroupBy, Join, JoinPart, Operation, SourceKind, DAY_MILLIS, HOUR_MILLIS,
};
use chronon_serving::metadata::{compute_and_upload, put_join};
use chronon_serving::stream::{CsvDecoder, LineSource, StreamingWriter, StructType, Value};

/// 2023-12-01T00:00:00Z: the batch end (end of the last uploaded day, 2023-11-30).
const BATCH_END: i64 = 19_692 * DAY_MILLIS;

async fn open(url: &str) -> Result<Arc<dyn KvStore>> {
    Ok(chronon_serving::store_url::open_store(url).await?)
}

fn group_by(name: &str, schema: &str, amount: &str) -> Result<GroupBy> {
    let windows = ["3d", "14d", "30d"];
    let gb = GroupBy {
        derivations: Vec::new(),
        name: name.into(),
        keys: vec!["user_id".into()],
        schema: StructType::from_json_str(schema)?,
        time_column: "ts".into(),
        accuracy: Accuracy::Temporal,
        source: SourceKind::Events,
        aggregations: vec![
            Aggregation::new(amount, Operation::Sum, &windows).map_err(anyhow::Error::msg)?,
            Aggregation::new(amount, Operation::Count, &windows).map_err(anyhow::Error::msg)?,
            Aggregation::new(amount, Operation::Average, &[]).map_err(anyhow::Error::msg)?,
        ],
    };
    gb.validate()?;
    Ok(gb)
}

/// Deterministic pseudo-random numbers (no dependency, same data on every run).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) % n
    }
}

fn print_features(
    title: &str,
    features: &BTreeMap<String, Value>,
    before: Option<&BTreeMap<String, Value>>,
) {
    println!("{title}");
    for (name, value) in features {
        let changed = before
            .and_then(|b| b.get(name))
            .is_some_and(|old| old != value);
        let old = match (changed, before.and_then(|b| b.get(name))) {
            (true, Some(old)) => format!("   (was {})", old.to_json()),
            _ => String::new(),
        };
        println!("  {name:<48} {}{old}", value.to_json());
    }
}

#[tokio::main]
async fn main() -> Result<()> {
    let tmp = tempfile::tempdir()?;
    let url = std::env::args()
        .nth(1)
        .unwrap_or_else(|| format!("rocks://{}", tmp.path().join("chronon").display()));
    println!("store: {url}");
    let store = open(&url).await?;

    // 1. Definitions: the quickstart's purchases and returns group-bys and their join.
    let purchases = group_by(
        "quickstart.purchases.v1",
        r#"{"name": "purchases", "fields": [{"name": "user_id", "type": "string"},
            {"name": "purchase_price", "type": "long"}, {"name": "ts", "type": "long"}]}"#,
        "purchase_price",
    )?;
    let returns = group_by(
        "quickstart.returns.v1",
        r#"{"name": "returns", "fields": [{"name": "user_id", "type": "string"},
            {"name": "refund_amt", "type": "long"}, {"name": "ts", "type": "long"}]}"#,
        "refund_amt",
    )?;
    let join = Join {
        derivations: Vec::new(),
        name: "quickstart.training_set.v2".into(),
        parts: vec![
            JoinPart {
                group_by: purchases.name.clone(),
                key_mapping: BTreeMap::new(),
                prefix: None,
            },
            JoinPart {
                group_by: returns.name.clone(),
                key_mapping: BTreeMap::new(),
                prefix: None,
            },
        ],
    };

    // 2. Batch: 40 days of events for 20 users, aggregated into IRs as of the batch end and
    //    bulk-loaded into <NAME>_BATCH (what `chronon upload --events` does).
    let mut rng = Lcg(42);
    let mut purchase_rows = Vec::new();
    let mut return_rows = Vec::new();
    for _ in 0..2_000 {
        let user = format!("{}", rng.next(20) + 1);
        let ts = BATCH_END - 40 * DAY_MILLIS + rng.next(40 * DAY_MILLIS as u64) as i64;
        let price = 5 + rng.next(300) as i64;
        purchase_rows.push(vec![
            Value::String(user.clone()),
            Value::Long(price),
            Value::Long(ts),
        ]);
        if rng.next(10) == 0 {
            let refund = price / 2;
            return_rows.push(vec![
                Value::String(user),
                Value::Long(refund),
                Value::Long(ts + HOUR_MILLIS),
            ]);
        }
    }
    let p = compute_and_upload(&*store, &purchases, BATCH_END, purchase_rows).await?;
    let r = compute_and_upload(&*store, &returns, BATCH_END, return_rows).await?;
    put_join(&*store, &join).await?;
    println!(
        "batch upload: {} purchase keys, {} return keys, batch end 2023-12-01T00:00Z",
        p.rows, r.rows
    );

    // 3. Fetch user 5 one hour after the batch end.
    let fetcher = Fetcher::new(store.clone(), FetcherOptions::default());
    let at = |q: i64| FetchRequest::new(&join.name, [("user_id", "5")]).at(q);
    let before = fetcher
        .fetch_joins(vec![at(BATCH_END + HOUR_MILLIS)])
        .await
        .pop()
        .context("no response")?
        .values?;
    print_features(
        "\nfeatures of user 5 at 2023-12-01T01:00Z (batch only):",
        &before,
        None,
    );

    // 4. Stream: new purchases and a return for user 5 arrive after the batch end (what
    //    `chronon stream` does with a CSV source).
    let stream = |gb: &GroupBy, csv: String| -> Result<_> {
        let writer = StreamingWriter::new(
            Arc::new(CsvDecoder::new(gb.schema.clone())),
            store.clone(),
            gb.writer_options(),
        )?;
        let source = LineSource::reader(
            Box::new(std::io::Cursor::new(csv.into_bytes())),
            "quickstart",
            None,
        )?;
        Ok((writer, source))
    };
    let h = |n: i64| BATCH_END + n * HOUR_MILLIS;
    let (w, s) = stream(
        &purchases,
        format!(
            "user_id,purchase_price,ts\n5,120,{}\n5,80,{}\n5,45,{}\n",
            h(2),
            h(3),
            h(5)
        ),
    )?;
    let written = w.run(Box::new(s)).await?.written;
    let (w, s) = stream(&returns, format!("user_id,refund_amt,ts\n5,60,{}\n", h(4)))?;
    let written = written + w.run(Box::new(s)).await?.written;
    println!("\nstreamed {written} new events for user 5 (purchases at 02:00, 03:00, 05:00, a return at 04:00)");

    // 5. The same fetch at 06:00: the streamed events are in every window; older ones may
    //    have slid out of the 3-day windows (at hop granularity).
    let after = fetcher
        .fetch_joins(vec![at(h(6))])
        .await
        .pop()
        .context("no response")?
        .values?;
    print_features(
        "\nfeatures of user 5 at 2023-12-01T06:00Z (batch + stream):",
        &after,
        Some(&before),
    );
    let key = "quickstart_purchases_v1_purchase_price_count_30d";
    let (b, a) = (before.get(key), after.get(key));
    match (b, a) {
        (Some(Value::Long(b)), Some(Value::Long(a))) if *a == *b + 3 => {
            println!("\nok: {key} went from {b} to {a} (+3 streamed purchases)")
        }
        _ => bail!("{key} did not grow by the 3 streamed purchases: {b:?} -> {a:?}"),
    }
    Ok(())
}
