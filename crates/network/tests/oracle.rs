//! The trace against a brute force on random small networks: the segment as a transitive
//! closure (Warshall) over "link end joined to node", the devices to close from it, and the
//! dry links from a second closure in which exactly the closed devices cut their link end
//! (so this also checks that closing only the boundary is enough).

#![allow(clippy::unwrap_used)]

use outagecast_core::area::LonLat;
use outagecast_network::{
    DeviceInput, DeviceKind, LinkInput, LinkKind, Network, NetworkInput, NodeInput, NodeKind, Trace,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    sources: Vec<bool>,
    links: Vec<(usize, usize)>,
    /// (link, which end)
    devices: Vec<(usize, usize)>,
    broken: Vec<usize>,
    burst: usize,
}

fn case() -> impl Strategy<Value = Case> {
    (2usize..9).prop_flat_map(|n| {
        let links =
            prop::collection::vec((0..n, 1..n).prop_map(move |(a, d)| (a, (a + d) % n)), 1..14);
        (prop::collection::vec(prop::bool::weighted(0.25), n), links).prop_flat_map(
            |(mut sources, links)| {
                sources[0] = sources.iter().all(|s| !s) || sources[0];
                let l = links.len();
                let devices = prop::collection::vec((0..l, 0..2usize), 0..12);
                (Just(sources), Just(links), devices, 0..l).prop_flat_map(
                    |(sources, links, devices, burst)| {
                        let d = devices.len();
                        let broken = prop::collection::vec(0..d.max(1), 0..d.min(4) + 1)
                            .prop_map(move |b| if d == 0 { Vec::new() } else { b });
                        (
                            Just(sources),
                            Just(links),
                            Just(devices),
                            broken,
                            Just(burst),
                        )
                            .prop_map(
                                |(sources, links, devices, broken, burst)| Case {
                                    sources,
                                    links,
                                    devices,
                                    broken,
                                    burst,
                                },
                            )
                    },
                )
            },
        )
    })
}

fn network(c: &Case) -> Network {
    let here = LonLat::parse(25.0, 60.0).unwrap();
    Network::new(NetworkInput {
        nodes: c
            .sources
            .iter()
            .enumerate()
            .map(|(i, &s)| NodeInput {
                id: format!("N{i}"),
                kind: if s {
                    NodeKind::Tank
                } else {
                    NodeKind::Junction
                },
                position: here,
            })
            .collect(),
        links: c
            .links
            .iter()
            .enumerate()
            .map(|(i, &(a, b))| LinkInput {
                id: format!("L{i}"),
                kind: if i % 5 == 4 {
                    LinkKind::Pump
                } else {
                    LinkKind::Pipe
                },
                from: format!("N{a}"),
                to: format!("N{b}"),
                path: Vec::new(),
            })
            .collect(),
        devices: c
            .devices
            .iter()
            .enumerate()
            .map(|(i, &(l, end))| {
                let (a, b) = c.links[l];
                DeviceInput {
                    id: format!("V{i}"),
                    kind: DeviceKind::Valve,
                    link: format!("L{l}"),
                    node: format!("N{}", if end == 0 { a } else { b }),
                    position: None,
                }
            })
            .collect(),
    })
    .expect("generated networks are valid")
}

/// Elements: nodes `0..n`, links `n..n + l`. `joined(l, end)` says whether link `l` reaches
/// its end node; the closure of that relation from `start` elements is returned.
fn closure(
    c: &Case,
    removed: &[bool],
    start: &[usize],
    joined: impl Fn(usize, usize) -> bool,
) -> Vec<bool> {
    let n = c.sources.len();
    let size = n + c.links.len();
    let mut reach = vec![vec![false; size]; size];
    for (i, row) in reach.iter_mut().enumerate() {
        row[i] = true;
    }
    for (l, &(a, b)) in c.links.iter().enumerate() {
        for (end, node) in [a, b].into_iter().enumerate() {
            if joined(l, end) && !removed[n + l] && !removed[node] {
                reach[n + l][node] = true;
                reach[node][n + l] = true;
            }
        }
    }
    for k in 0..size {
        let through = reach[k].clone();
        for row in reach.iter_mut().filter(|row| row[k]) {
            for (cell, &via) in row.iter_mut().zip(&through) {
                *cell |= via;
            }
        }
    }
    (0..size)
        .map(|j| start.iter().any(|&s| !removed[s] && reach[s][j]))
        .collect()
}

fn brute(c: &Case) -> Trace {
    let n = c.sources.len();
    let working = |d: usize| !c.broken.contains(&d);
    let has = |l: usize, end: usize, pick: &dyn Fn(usize) -> bool| {
        c.devices
            .iter()
            .enumerate()
            .any(|(d, &(dl, de))| dl == l && de == end && pick(d))
    };
    let none = vec![false; n + c.links.len()];
    let seg = closure(c, &none, &[n + c.burst], |l, end| !has(l, end, &working));
    let node_of = |(l, end): (usize, usize)| if end == 0 { c.links[l].0 } else { c.links[l].1 };
    let close: Vec<usize> = (0..c.devices.len())
        .filter(|&d| working(d) && seg[n + c.devices[d].0] != seg[node_of(c.devices[d])])
        .collect();
    let sources: Vec<usize> = (0..n).filter(|&i| c.sources[i]).collect();
    let fed = closure(c, &seg, &sources, |l, end| {
        !has(l, end, &|d| close.contains(&d))
    });
    Trace {
        segment_links: (0..c.links.len()).filter(|&l| seg[n + l]).collect(),
        segment_nodes: (0..n).filter(|&i| seg[i]).collect(),
        devices_to_close: close,
        dry_links: (0..c.links.len())
            .filter(|&l| !seg[n + l] && !fed[n + l])
            .collect(),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]
    #[test]
    fn the_trace_is_the_brute_force(c in case()) {
        let net = network(&c);
        prop_assert_eq!(net.trace(c.burst, &c.broken), brute(&c));
    }
}
