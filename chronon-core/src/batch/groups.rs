//! Grouping a batch's pending requests by dataset (see `GetBatch::pending_by_dataset` and
//! `GetBatch::pending_groups`).

use std::collections::{BTreeMap, HashMap};

/// Indexes grouped by dataset name, allocating one name per dataset (not one per request: a
/// batch usually names one dataset many times).
pub(super) fn group_by_dataset<'a>(
    pending: impl Iterator<Item = (usize, &'a str)>,
) -> BTreeMap<String, Vec<usize>> {
    // Runs of the same dataset (the usual batch is one dataset throughout) go into the current
    // group without a map lookup; the map is only searched when the dataset changes.
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    let mut run: Option<(&str, Vec<usize>)> = None;
    let mut pending = pending;
    while let Some((i, dataset)) = pending.next() {
        match &mut run {
            Some((name, idxs)) if *name == dataset => idxs.push(i),
            _ => {
                if let Some((name, idxs)) = run.take() {
                    groups.insert(name.to_string(), idxs);
                }
                // A dataset seen before continues its group: indexes stay ascending. A new
                // group gets room for every request left, so the one-dataset batch never grows.
                let mut idxs = groups.remove(dataset).unwrap_or_else(|| {
                    Vec::with_capacity(pending.size_hint().1.map_or(0, |rest| rest + 1))
                });
                idxs.push(i);
                run = Some((dataset, idxs));
            }
        }
    }
    if let Some((name, idxs)) = run {
        groups.insert(name.to_string(), idxs);
    }
    groups
}

/// More datasets than this in one batch: [`group_in_place`] finds their groups through a map
/// instead of searching the list of groups.
const FEW_DATASETS: usize = 8;

/// Indexes grouped by dataset, each group's indexes ascending, groups in order of first
/// appearance, no name copied. A batch usually names one dataset, or a few, whose groups are
/// found in a list; past [`FEW_DATASETS`] a map finds them.
pub(super) fn group_in_place<'a, I>(pending: impl Fn() -> I) -> Vec<Vec<usize>>
where
    I: Iterator<Item = (usize, &'a str)>,
{
    // The usual batch names one dataset throughout: one group, without the search below.
    let mut all = pending();
    if let Some((_, first)) = all.next() {
        let mut len = 1;
        if all.all(|(_, d)| {
            len += 1;
            d == first
        }) {
            let mut idxs = Vec::with_capacity(len);
            idxs.extend(pending().map(|(i, _)| i));
            return vec![idxs];
        }
    }
    let mut pending = pending();
    let mut names: Vec<&str> = Vec::new();
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_name: Option<HashMap<&str, usize>> = None;
    while let Some((i, dataset)) = pending.next() {
        // A run of one dataset stays in the group made last.
        let found = if names.last() == Some(&dataset) {
            Some(names.len() - 1)
        } else if let Some(map) = &by_name {
            map.get(dataset).copied()
        } else {
            names.iter().position(|n| *n == dataset)
        };
        match found {
            Some(g) => groups[g].push(i),
            None => {
                // The first group gets room for every request left, so a one-dataset batch
                // never grows it (the others grow: room for all would be quadratic).
                let mut idxs = if names.is_empty() {
                    Vec::with_capacity(pending.size_hint().1.map_or(0, |rest| rest + 1))
                } else {
                    Vec::new()
                };
                idxs.push(i);
                names.push(dataset);
                groups.push(idxs);
                if let Some(map) = &mut by_name {
                    map.insert(dataset, names.len() - 1);
                } else if names.len() > FEW_DATASETS {
                    by_name = Some(names.iter().enumerate().map(|(g, n)| (*n, g)).collect());
                }
            }
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same groups as the map's, whether a few datasets or many (through the map), in
    /// order of first appearance.
    #[test]
    fn groups_in_place_match_the_map() {
        let few = [(0, "B"), (1, "A"), (2, "B"), (4, "C"), (5, "A")];
        assert_eq!(
            group_in_place(|| few.into_iter()),
            vec![vec![0, 2], vec![1, 5], vec![4]]
        );
        let names: Vec<String> = (0..30).map(|d| format!("D{d}")).collect();
        let many: Vec<(usize, &str)> = (0..300)
            .map(|i| (i, names[(i * 7) % 30].as_str()))
            .collect();
        let groups = group_in_place(|| many.iter().copied());
        let map = group_by_dataset(many.iter().copied());
        assert_eq!(groups.len(), map.len());
        for g in &groups {
            let name = many[g[0]].1;
            assert_eq!(g, &map[name], "{name}");
        }
        assert!(group_in_place(std::iter::empty).is_empty());
        let one = [(1, "A"), (3, "A"), (4, "A")];
        assert_eq!(group_in_place(|| one.into_iter()), vec![vec![1, 3, 4]]);
    }

    #[test]
    fn groups_keep_ascending_indexes_when_datasets_interleave() {
        let pending = [
            (0, "A"),
            (1, "A"),
            (2, "B"),
            (3, "A"),
            (5, "C"),
            (6, "B"),
            (7, "B"),
        ];
        let groups = group_by_dataset(pending.into_iter());
        assert_eq!(groups.len(), 3);
        assert_eq!(groups["A"], [0, 1, 3]);
        assert_eq!(groups["B"], [2, 6, 7]);
        assert_eq!(groups["C"], [5]);
        assert!(group_by_dataset(std::iter::empty()).is_empty());
    }
}
