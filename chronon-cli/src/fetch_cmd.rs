//! `chronon fetch`: serve features from a store, as Chronon's `Fetcher` does, and print them as
//! JSON.
//!
//! ```text
//! chronon fetch rocks:///var/chronon --join quickstart.training_set --keys user_id=5
//! chronon fetch rocks:///var/chronon --group-by quickstart.purchases.v1 --keys user_id=5 --at 1701475200000
//! ```
//!
//! Repeat `--keys` (or separate pairs with commas) for several key columns. Key values are given
//! as text and converted to the key column's type. Exit status 1 when the request fails.
//!
//! A name with a `/` (`--join quickstart/training_set.v1`) resolves as the JVM's `MetadataStore`
//! does: the compiled conf at `joins/quickstart/training_set.v1` in `ZIPLINE_METADATA` (written by
//! `chronon upload --conf`), whose `metaData.name` is what is served. A path to a definition file
//! (compiled or this workspace's YAML/JSON) serves the definition it names.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chronon_core::KvStore;
use chronon_serving::conf::{self, layout, CompiledConf};
use chronon_serving::fetcher::{FetchRequest, Fetcher, FetcherOptions};
use chronon_serving::groupby::{GroupBy, Join};

/// Arguments of `chronon fetch` (the store URL comes before them).
#[derive(Debug, Clone, clap::Args)]
pub struct FetchArgs {
    /// The join to fetch.
    #[arg(
        long,
        required_unless_present = "group_by",
        conflicts_with = "group_by"
    )]
    pub join: Option<String>,
    /// The group-by to fetch.
    #[arg(long = "group-by")]
    pub group_by: Option<String>,
    /// Keys as `name=value`; repeat or separate with commas.
    #[arg(long, value_delimiter = ',', required = true)]
    pub keys: Vec<String>,
    /// Query time in epoch milliseconds (default: now).
    #[arg(long)]
    pub at: Option<i64>,
    /// Fetch timeout in milliseconds (Chronon's default 10000).
    #[arg(long, default_value_t = 10_000)]
    pub timeout_ms: u64,
}

/// Parses `name=value` pairs.
pub fn parse_keys(pairs: &[String]) -> Result<BTreeMap<String, serde_json::Value>> {
    let mut keys = BTreeMap::new();
    for p in pairs {
        let (k, v) = p
            .split_once('=')
            .with_context(|| format!("--keys {p:?} is not name=value"))?;
        if k.trim().is_empty() {
            bail!("--keys {p:?} has an empty name");
        }
        keys.insert(
            k.trim().to_string(),
            serde_json::Value::String(v.to_string()),
        );
    }
    Ok(keys)
}

/// Runs `chronon fetch`; `Ok(false)` when the request failed (the error is printed as JSON).
pub async fn run(args: FetchArgs, store: Arc<dyn KvStore>) -> Result<bool> {
    let keys = parse_keys(&args.keys)?;
    let fetcher = Fetcher::new(
        store.clone(),
        FetcherOptions {
            timeout: std::time::Duration::from_millis(args.timeout_ms),
            ..FetcherOptions::default()
        },
    );
    let (name, is_join) = match (&args.join, &args.group_by) {
        (Some(j), _) => (j.clone(), true),
        (_, Some(g)) => (g.clone(), false),
        _ => bail!("give --join or --group-by"),
    };
    let name = resolve_name(&*store, &name, is_join).await?;
    let request = FetchRequest {
        name,
        keys,
        at_millis: args.at,
    };
    let mut responses = if is_join {
        fetcher.fetch_joins(vec![request]).await
    } else {
        fetcher.fetch_group_bys(vec![request]).await
    };
    let response = responses
        .pop()
        .context("the fetcher returned no response")?;
    crate::output::line(serde_json::to_string_pretty(&response.to_json())?)?;
    Ok(response.values.is_ok())
}

/// The served name for `--join`/`--group-by`: a definition file's name, the `metaData.name` of
/// the compiled conf a path-form name (`team/name`) points to in `ZIPLINE_METADATA`, else the
/// name as given.
pub async fn resolve_name(store: &dyn KvStore, name: &str, is_join: bool) -> Result<String> {
    let path = Path::new(name);
    if path.is_file() {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        if conf::is_compiled_conf(&text) {
            let meta = match conf::parse(name, &text)? {
                CompiledConf::GroupBy(g) => g.meta_data,
                CompiledConf::Join(j) => j.meta_data,
            };
            return Ok(conf::conf_name(meta.as_ref(), name)?);
        }
        return Ok(if is_join {
            Join::load(path)?.name
        } else {
            GroupBy::load(path)?.name
        });
    }
    if !name.contains('/') {
        return Ok(name.to_string());
    }
    let kind = if is_join { "joins" } else { "group_bys" };
    match layout::get_conf(store, kind, name).await? {
        Some((_, CompiledConf::Join(j))) => Ok(conf::conf_name(j.meta_data.as_ref(), name)?),
        Some((_, CompiledConf::GroupBy(g))) => Ok(conf::conf_name(g.meta_data.as_ref(), name)?),
        None => bail!(
            "no conf at {kind}/{name} in {}: run `chronon upload URL --conf production/` first",
            layout::CONF_BY_KEY_DATASET
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_parse_as_name_value_pairs() {
        let k = parse_keys(&["user_id=42".into(), "item= a=b".into()]).unwrap();
        assert_eq!(k["user_id"], "42");
        assert_eq!(k["item"], " a=b");
        assert!(parse_keys(&["nope".into()]).is_err());
        assert!(parse_keys(&["=3".into()]).is_err());
    }
}
