//! The JVM's metadata layout, as its `metadata-upload` (`MetadataDirWalker` +
//! `MetadataEndPoint` + `MetadataStore.put`) writes it from a folder of compiled confs:
//!
//! - `ZIPLINE_METADATA`: key = the last three parts of the file path
//!   (`joins/quickstart/training_set.v1`), value = the conf as compact Thrift simple JSON.
//! - `CHRONON_ENTITY_BY_TEAM`: key = `joins/<team>` or `group_bys/<team>` (the owning team), value
//!   = the keys above of that team's confs, in Chronon's `StringArrayConverter` format.
//!
//! The value is the file's JSON with the whitespace taken out. `compile.py` writes Thrift's simple
//! JSON protocol output re-indented, fields in Thrift declaration order, which is what the JVM's
//! `ThriftJsonCodec.toJsonStr` writes for the same conf; the one difference is non-ASCII text,
//! which Python escapes as `\uXXXX` and the JVM writes as UTF-8.
//!
//! Names resolve as the JVM's `MetadataStore.getConf` does: a join named
//! `quickstart/training_set.v1` is read at `joins/quickstart/training_set.v1`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chronon_core::{DatasetProps, KvError, KvStore, KvStoreExt};

use super::{conf_name, parse, CompiledConf, ConfError};

/// The JVM's conf-by-key dataset (`MetadataEndPoint.ConfByKeyEndPointName`).
pub const CONF_BY_KEY_DATASET: &str = "ZIPLINE_METADATA";
/// The JVM's names-by-team dataset (`MetadataEndPoint.NameByTeamEndPointName`).
pub const ENTITY_BY_TEAM_DATASET: &str = "CHRONON_ENTITY_BY_TEAM";

/// One compiled conf file, ready for the metadata datasets.
#[derive(Debug, Clone)]
pub struct ConfEntry {
    /// The file.
    pub path: PathBuf,
    /// `joins/<team>/<name>` (Chronon's `confPathToKey`).
    pub key: String,
    /// `joins/<team>` or `group_bys/<team>` (Chronon's `parseTeam`).
    pub team_key: String,
    /// The compact JSON value.
    pub value: String,
    /// The parsed conf.
    pub conf: CompiledConf,
}

/// Chronon's `StringOps.confPathToKey`: the last three `/`-separated parts.
pub fn conf_path_to_key(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').collect();
    parts[parts.len().saturating_sub(3)..].join("/")
}

/// The JSON text without whitespace outside strings (order, escapes and numbers kept as written).
pub fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let p = e.path();
        if e.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}

/// Reads every conf under `root` (a file, or a folder such as `production/`). As the JVM's walker
/// does, only files under a `joins/` or `group_bys/` folder count; a file there that is not a
/// conf is an error (the JVM logs and skips it; a typo should not go unnoticed here).
pub fn read_confs(root: &Path) -> Result<Vec<ConfEntry>, ConfError> {
    let mut files = Vec::new();
    if root.is_dir() {
        walk(root, &mut files)
            .map_err(|e| ConfError::new(&root.display().to_string(), "<folder>", e.to_string()))?;
    } else {
        files.push(root.to_path_buf());
    }
    let mut out = Vec::new();
    for path in files {
        let shown = path.display().to_string();
        let slashed = shown.replace('\\', "/");
        let kind = if slashed.contains("joins/") {
            "joins"
        } else if slashed.contains("group_bys/") {
            "group_bys"
        } else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| ConfError::new(&shown, "<file>", e.to_string()))?;
        let conf = parse(&shown, &text)?;
        let meta = match &conf {
            CompiledConf::GroupBy(g) => g.meta_data.as_ref(),
            CompiledConf::Join(j) => j.meta_data.as_ref(),
        };
        conf_name(meta, &shown)?;
        let team = meta
            .and_then(|m| m.owning_team())
            .ok_or_else(|| ConfError::new(&shown, "metaData.team", "missing"))?;
        out.push(ConfEntry {
            key: conf_path_to_key(&slashed),
            team_key: format!("{kind}/{team}"),
            value: compact_json(&text),
            path,
            conf,
        });
    }
    Ok(out)
}

/// Writes `entries` to `ZIPLINE_METADATA` and `CHRONON_ENTITY_BY_TEAM` as the JVM's metadata
/// upload does (one put per key; a team's list holds the keys of this upload).
pub async fn upload_confs(store: &dyn KvStore, entries: &[ConfEntry]) -> Result<(), KvError> {
    store
        .create(CONF_BY_KEY_DATASET, &DatasetProps::snapshot())
        .await?;
    store
        .create(ENTITY_BY_TEAM_DATASET, &DatasetProps::snapshot())
        .await?;
    let mut by_team: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for e in entries {
        store
            .put_string(CONF_BY_KEY_DATASET, &e.key, &e.value, None)
            .await?;
        by_team.entry(&e.team_key).or_default().push(e.key.clone());
    }
    for (team, keys) in by_team {
        store
            .put_string_array(ENTITY_BY_TEAM_DATASET, team, &keys, None)
            .await?;
    }
    Ok(())
}

/// Reads a conf as the JVM's `MetadataStore.getConf` does: `kind` is `joins` or `group_bys`,
/// `name` the path form (`quickstart/training_set.v1`); `None` when it was not uploaded.
pub async fn get_conf(
    store: &dyn KvStore,
    kind: &str,
    name: &str,
) -> Result<Option<(String, CompiledConf)>, ConfError> {
    let key = conf_path_to_key(&format!("{kind}/{name}"));
    let text = match store.get_string(CONF_BY_KEY_DATASET, &key).await {
        Ok(Some(t)) => t,
        Ok(None) | Err(KvError::DatasetNotFound { .. }) => return Ok(None),
        Err(e) => return Err(ConfError::new(&key, CONF_BY_KEY_DATASET, e.to_string())),
    };
    let conf = parse(&key, &text)?;
    Ok(Some((key, conf)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_the_last_three_path_parts_and_values_compact() {
        assert_eq!(
            conf_path_to_key("/repo/production/joins/quickstart/training_set.v1"),
            "joins/quickstart/training_set.v1"
        );
        assert_eq!(conf_path_to_key("joins/q/t.v1"), "joins/q/t.v1");
        assert_eq!(
            compact_json("{\n  \"a\": \"x y\\\" z\",\n  \"b\": [1, 2]\n}"),
            "{\"a\":\"x y\\\" z\",\"b\":[1,2]}"
        );
    }
}
