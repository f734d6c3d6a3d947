//! Launcher for scylla (see the module docs of [`crate::launch`]).
//!
//! No CQL server can be installed from the registries these machines reach (none in Debian, PyPI
//! or npm), so there is no child-process step: `CHRONON_SCYLLA_URI` if set, else the
//! `scylladb/scylla` image through testcontainers, else a loud `SKIPPED scylla` line.

use testcontainers_modules::scylladb::ScyllaDB;
use testcontainers_modules::testcontainers::runners::AsyncRunner;
use testcontainers_modules::testcontainers::ContainerAsync;

use super::{skip, LaunchMethod};

/// The environment variable naming a ScyllaDB/Cassandra cluster for the suite: a
/// `scylla://host:9042/keyspace?...` URL, or just `host:port[,host:port...]`.
pub const URI_ENV: &str = "CHRONON_SCYLLA_URI";

/// The keyspace used when the address names none (the suite's datasets have random names, so it
/// can be shared with other runs).
pub const SUITE_KEYSPACE: &str = "chronon_conformance";

/// The CQL port inside the `scylladb/scylla` image.
const CQL_PORT: u16 = 9042;

/// A ScyllaDB (or Cassandra) cluster the suite can use; holds the container, if one was started,
/// until dropped.
pub struct ScyllaServer {
    /// A `scylla://` URL for `chronon_scylla::ScyllaStore::open_url`.
    pub uri: String,
    /// How the server was found.
    pub method: LaunchMethod,
    _container: Option<ContainerAsync<ScyllaDB>>,
}

impl std::fmt::Debug for ScyllaServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScyllaServer")
            .field("uri", &self.uri)
            .field("method", &self.method)
            .field("container", &self._container.is_some())
            .finish()
    }
}

/// Turns the variable's value into a `scylla://` URL: a URL is kept, a bare host list gets the
/// suite keyspace.
fn uri_from_env(value: &str) -> String {
    let value = value.trim();
    if value.contains("://") {
        value.to_string()
    } else {
        format!("scylla://{value}/{SUITE_KEYSPACE}")
    }
}

/// Finds a cluster: `CHRONON_SCYLLA_URI`, else a `scylladb/scylla` container, else prints the
/// loud `SKIPPED scylla` line (a panic when `CHRONON_REQUIRE_BACKENDS` names scylla) and returns
/// `None`.
pub async fn scylla() -> Option<ScyllaServer> {
    if let Ok(value) = std::env::var(URI_ENV) {
        if !value.trim().is_empty() {
            return Some(ScyllaServer {
                uri: uri_from_env(&value),
                method: LaunchMethod::Env(URI_ENV),
                _container: None,
            });
        }
    }
    let docker_error = match ScyllaDB::default().start().await {
        Ok(container) => {
            let address = async {
                let host = container.get_host().await?;
                let port = container.get_host_port_ipv4(CQL_PORT).await?;
                Ok::<_, testcontainers_modules::testcontainers::TestcontainersError>(format!(
                    "{host}:{port}"
                ))
            };
            match address.await {
                Ok(address) => {
                    return Some(ScyllaServer {
                        uri: format!("scylla://{address}/{SUITE_KEYSPACE}?replication_factor=1"),
                        method: LaunchMethod::Container,
                        _container: Some(container),
                    })
                }
                Err(e) => {
                    format!("the scylladb container started but its CQL port is unknown: {e}")
                }
            }
        }
        Err(e) => format!("testcontainers could not start scylladb/scylla: {e}"),
    };
    skip(
        "scylla",
        &format!(
            "no CQL server: {URI_ENV} is not set, {docker_error}, and no ScyllaDB or Cassandra package \
             is installable here (see conformance/DATABASES.md). Run it with \
             {URI_ENV}=scylla://HOST:9042/{SUITE_KEYSPACE} cargo test -p chronon-scylla --test conformance"
        ),
    );
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_values_become_urls() {
        assert_eq!(
            uri_from_env("10.0.0.1:9042"),
            "scylla://10.0.0.1:9042/chronon_conformance"
        );
        assert_eq!(
            uri_from_env(" a:9042,b:9042 "),
            "scylla://a:9042,b:9042/chronon_conformance"
        );
        assert_eq!(
            uri_from_env("scylla://h:9042/ks?consistency=one"),
            "scylla://h:9042/ks?consistency=one"
        );
    }
}
