//! `--launch <backend>` for `check` and `soak`: start a local server with the conformance
//! launchers (a container where Docker answers, else a child process) instead of taking a URL.

use anyhow::{bail, Result};

/// The backends `--launch` can start.
pub const LAUNCHABLE: &str = "redis, dynamodb or mongodb";

/// A server started for `--launch`, stopped when dropped.
#[allow(dead_code)] // Held only for its `Drop`.
pub enum Launched {
    Redis(conformance::launch::redis::RedisServer),
    Dynamo(conformance::launch::dynamodb::DynamoServer),
    Mongo(conformance::launch::mongodb::MongoServer),
}

/// Starts `backend` and returns the store URL a user would write for it (the adapter's defaults:
/// no timeout or tuning parameters), with the guard that stops the server. `prefix` keeps
/// DynamoDB tables of different commands apart on a shared endpoint.
pub async fn launch(backend: &str, prefix: &str) -> Result<(String, Launched)> {
    use conformance::launch;
    // Before starting a server the build could not talk to.
    chronon_serving::store_url::ensure_compiled_in(backend)?;
    let unavailable =
        || anyhow::anyhow!("{backend} could not be started here (see the SKIPPED line)");
    Ok(match backend {
        "redis" => {
            let s = launch::redis::redis().await.ok_or_else(unavailable)?;
            (s.url.clone(), Launched::Redis(s))
        }
        "dynamodb" => {
            let s = launch::dynamodb::dynamodb().await.ok_or_else(unavailable)?;
            let url = format!(
                "dynamodb://?endpoint={}&region=us-west-2&prefix={prefix}",
                s.endpoint
            );
            (url, Launched::Dynamo(s))
        }
        "mongodb" => {
            let s = launch::mongodb::mongodb().await.ok_or_else(unavailable)?;
            (s.uri.clone(), Launched::Mongo(s))
        }
        other => bail!("--launch {other}: expected {LAUNCHABLE}"),
    })
}
