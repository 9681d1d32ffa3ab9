//! The isolation trace on a seeded synthetic 100,000-pipe network (a spanning tree of
//! 70,000 nodes with 30,001 extra loop pipes between nearby nodes, 8 reservoirs, a valve at
//! about two thirds of the pipe ends): building the model (`Network::new`: id maps,
//! adjacency) and one trace, plain and with two broken valves.
//!
//! Run: `cargo bench -p outagecast-network --bench trace`
//!
//! The network's size and the traces' answers are asserted before anything is timed, so a
//! fast wrong answer cannot pass.

use std::hint::black_box;
use std::time::Duration;

use criterion::Criterion;
use outagecast_core::area::LonLat;
use outagecast_network::{
    DeviceInput, DeviceKind, LinkInput, LinkKind, Network, NetworkInput, NodeInput, NodeKind,
};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEED: u64 = 20_261_203;
const NODES: usize = 70_000;
const PIPES: usize = 100_000;

fn synthetic() -> NetworkInput {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let at = |i: usize| {
        LonLat::parse(
            24.8 + (i % 300) as f64 * 0.001,
            60.1 + (i / 300) as f64 * 0.0005,
        )
        .expect("synthetic positions are in range")
    };
    let nodes = (0..NODES)
        .map(|i| NodeInput {
            id: format!("J{i}"),
            kind: if i % (NODES / 8) == 0 {
                NodeKind::Reservoir
            } else {
                NodeKind::Junction
            },
            position: at(i),
        })
        .collect();
    let mut ends = Vec::with_capacity(PIPES);
    for i in 1..NODES {
        // Each node hangs off one of the 400 before it: a long, local tree like a street grid's.
        ends.push((i - 1 - rng.random_range(0..i.min(400)), i));
    }
    while ends.len() < PIPES {
        let a = rng.random_range(0..NODES);
        let b = (a + 1 + rng.random_range(0..600)) % NODES;
        if a != b {
            ends.push((a, b));
        }
    }
    let links = ends
        .iter()
        .enumerate()
        .map(|(i, &(a, b))| LinkInput {
            id: format!("P{i}"),
            kind: LinkKind::Pipe,
            from: format!("J{a}"),
            to: format!("J{b}"),
            path: Vec::new(),
        })
        .collect();
    let mut devices = Vec::new();
    for (i, &(a, b)) in ends.iter().enumerate() {
        for node in [a, b] {
            if rng.random_range(0..3) < 2 {
                devices.push(DeviceInput {
                    id: format!("V{}", devices.len()),
                    kind: DeviceKind::Valve,
                    link: format!("P{i}"),
                    node: format!("J{node}"),
                    position: None,
                });
            }
        }
    }
    NetworkInput {
        nodes,
        links,
        devices,
    }
}

fn main() {
    let input = synthetic();
    let network = Network::new(input.clone()).expect("the synthetic network is valid");
    assert_eq!(network.links().len(), PIPES);
    assert_eq!(network.nodes().len(), NODES);
    let plain = network.trace_ids("P12345", &[]).expect("P12345 exists");
    let broken: Vec<String> = plain
        .devices_to_close
        .iter()
        .take(2)
        .map(|&d| network.devices()[d].id().to_owned())
        .collect();
    let grown = network
        .trace_ids("P12345", &broken)
        .expect("the valves exist");
    eprintln!(
        "devices {}; P12345: segment {} pipes, {} valves to close, {} dry; with {:?} broken: segment {}, {} valves, {} dry",
        network.devices().len(),
        plain.segment_links.len(),
        plain.devices_to_close.len(),
        plain.dry_links.len(),
        broken,
        grown.segment_links.len(),
        grown.devices_to_close.len(),
        grown.dry_links.len()
    );
    // The seeded network's answers (as first computed, so a change in the trace shows; the trace
    // itself is proptested against a brute force in tests/oracle.rs).
    assert_eq!(network.devices().len(), 133_422);
    assert_eq!(plain.segment_links, [12345]);
    assert_eq!(
        (plain.devices_to_close.len(), plain.dry_links.len()),
        (3, 0)
    );
    assert_eq!(broken, ["V16471", "V99637"]);
    assert_eq!(
        (
            grown.segment_links.len(),
            grown.devices_to_close.len(),
            grown.dry_links.len()
        ),
        (3, 7, 0)
    );

    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    let mut g = c.benchmark_group("network_100k");
    g.bench_function("build", |b| {
        b.iter_batched(
            || input.clone(),
            |input| Network::new(black_box(input)).is_ok(),
            criterion::BatchSize::LargeInput,
        )
    });
    g.bench_function("trace", |b| {
        b.iter(|| network.trace_ids(black_box("P12345"), &[]))
    });
    g.bench_function("trace_broken_2", |b| {
        b.iter(|| network.trace_ids(black_box("P12345"), &broken))
    });
    g.finish();
    c.final_summary();
}
