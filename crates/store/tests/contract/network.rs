//! The network model: written whole, read back as imported, replaced whole.

use chrono::Utc;
use outagecast_core::area::LonLat;
use outagecast_network::{
    DeviceInput, DeviceKind, LinkInput, LinkKind, Network, NetworkInput, NodeInput, NodeKind,
};
use outagecast_store::{NetworkImportSummary, ServiceLink, Store};

use crate::contract;

contract!(
    a_network_reads_back_as_imported,
    a_reimport_replaces_the_network,
    customers_are_found_by_account_ids,
);

fn at(lon: f64, lat: f64) -> LonLat {
    LonLat::parse(lon, lat).unwrap()
}

/// `n` pipes in a row from a reservoir, a valve at the far end of every pipe; node and link
/// ids shared, as EPANET allows.
fn row(n: usize) -> NetworkInput {
    let mut input = NetworkInput::default();
    for i in 0..=n {
        input.nodes.push(NodeInput {
            id: i.to_string(),
            kind: if i == 0 {
                NodeKind::Reservoir
            } else {
                NodeKind::Junction
            },
            position: at(24.9 + i as f64 * 0.001, 60.2),
        });
    }
    for i in 1..=n {
        input.links.push(LinkInput {
            id: i.to_string(),
            kind: if i == 1 {
                LinkKind::Pump
            } else {
                LinkKind::Pipe
            },
            from: (i - 1).to_string(),
            to: i.to_string(),
            path: vec![
                at(24.9 + (i - 1) as f64 * 0.001, 60.2),
                at(24.9 + (i as f64 - 0.5) * 0.001, 60.2001),
                at(24.9 + i as f64 * 0.001, 60.2),
            ],
        });
        input.devices.push(DeviceInput {
            id: format!("V{i}"),
            kind: DeviceKind::Valve,
            link: i.to_string(),
            node: i.to_string(),
            position: Some(at(24.9 + i as f64 * 0.001 - 0.0001, 60.2)),
        });
    }
    Network::new(input.clone()).unwrap();
    input
}

fn services(n: usize) -> Vec<ServiceLink> {
    (1..=n)
        .map(|i| ServiceLink {
            account_id: format!("A{i:04}"),
            link_id: i.to_string(),
            distance_m: (i % 2 == 0).then_some(i as f64 * 1.5),
        })
        .collect()
}

async fn a_network_reads_back_as_imported(store: &Store) {
    assert_eq!(store.network().await.unwrap(), None);
    // 1,200 links: more than one multi-row chunk.
    let input = row(1200);
    let summary = store
        .replace_network(&input, &services(1200), "test", "net.geojson", Utc::now())
        .await
        .unwrap();
    assert_eq!(
        summary,
        NetworkImportSummary {
            nodes: 1201,
            links: 1200,
            devices: 1200,
            service_links: 1200
        }
    );
    let stored = store.network().await.unwrap().unwrap();
    assert_eq!(stored.input, input);
    assert_eq!(stored.service_links, services(1200));
}

async fn a_reimport_replaces_the_network(store: &Store) {
    store
        .replace_network(&row(5), &services(5), "test", "a.geojson", Utc::now())
        .await
        .unwrap();
    let mut smaller = row(2);
    smaller.devices.clear();
    store
        .replace_network(&smaller, &services(1), "test", "b.geojson", Utc::now())
        .await
        .unwrap();
    let stored = store.network().await.unwrap().unwrap();
    assert_eq!(stored.input, smaller);
    assert_eq!(stored.service_links, services(1));
}

async fn customers_are_found_by_account_ids(store: &Store) {
    let customers: Vec<_> = (0..3)
        .map(|i| crate::support::customer(&format!("ACC-{i}"), &format!("+35840123450{i}"), ""))
        .collect();
    store
        .upsert_customers(&customers, "test", "c.csv", Utc::now())
        .await
        .unwrap();
    let found = store
        .customers_by_accounts(&["ACC-2", "NOBODY", "ACC-0"])
        .await
        .unwrap();
    let accounts: Vec<&str> = found.iter().map(|(_, c)| c.account_id().as_str()).collect();
    assert_eq!(accounts, ["ACC-0", "ACC-2"]);
    assert!(store.customers_by_accounts(&[]).await.unwrap().is_empty());
}
