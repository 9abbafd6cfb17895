//! Groups a batch into OTLP's resource → inner-group shape, keeping
//! first-seen order at both levels and record order inside a group.
//!
//! The inner key is the instrumentation scope for spans and logs (the
//! record's component) and the metric identity for metric points.

use std::collections::HashMap;
use std::hash::Hash;

use super::mapping::ResourceKey;

#[derive(Debug)]
pub(crate) struct ResourceGroup<'a, T, K> {
    pub key: ResourceKey<'a>,
    pub inner: Vec<(K, Vec<&'a T>)>,
}

/// Groups `items` by resource, then by `inner` key.
pub(crate) fn group<'a, T, K: Copy + Eq + Hash>(
    items: impl IntoIterator<Item = &'a T>,
    resource: impl Fn(&'a T) -> ResourceKey<'a>,
    inner: impl Fn(&'a T) -> K,
) -> Vec<ResourceGroup<'a, T, K>> {
    let mut out: Vec<ResourceGroup<'a, T, K>> = Vec::new();
    let mut index: HashMap<(ResourceKey<'a>, K), (usize, usize)> = HashMap::new();
    let mut resources: HashMap<ResourceKey<'a>, usize> = HashMap::new();
    // Batches are usually one resource and a handful of scopes in runs, so the
    // previous item's slot is checked before hashing.
    let mut last: Option<(ResourceKey<'a>, K, usize, usize)> = None;
    for item in items {
        let rk = resource(item);
        let ik = inner(item);
        let (ri, ii) = match last {
            Some((lr, li, ri, ii)) if lr == rk && li == ik => (ri, ii),
            _ => *index.entry((rk, ik)).or_insert_with(|| {
                let ri = *resources.entry(rk).or_insert_with(|| {
                    out.push(ResourceGroup {
                        key: rk,
                        inner: Vec::new(),
                    });
                    out.len() - 1
                });
                out[ri].inner.push((ik, Vec::new()));
                (ri, out[ri].inner.len() - 1)
            }),
        };
        out[ri].inner[ii].1.push(item);
        last = Some((rk, ik, ri, ii));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_seen_order_at_both_levels() {
        let items = [
            ("t1", "a", 1),
            ("t2", "a", 2),
            ("t1", "b", 3),
            ("t1", "a", 4),
            ("t2", "a", 5),
        ];
        let groups = group(
            items.iter(),
            |i| ResourceKey {
                tenant: i.0,
                workspace: "",
                region: "",
            },
            |i| i.1,
        );
        type Shape<'a> = Vec<(&'a str, Vec<(&'a str, Vec<i32>)>)>;
        let shape: Shape<'_> = groups
            .iter()
            .map(|g| {
                (
                    g.key.tenant,
                    g.inner
                        .iter()
                        .map(|(k, v)| (*k, v.iter().map(|i| i.2).collect()))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                ("t1", vec![("a", vec![1, 4]), ("b", vec![3])]),
                ("t2", vec![("a", vec![2, 5])])
            ]
        );
    }
}
