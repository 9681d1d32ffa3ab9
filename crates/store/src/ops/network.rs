//! The network model: replaced whole by an import, read whole by the trace.

use chrono::{DateTime, Utc};
use outagecast_core::area::LonLat;
use outagecast_network::{DeviceInput, Kind, LinkInput, NetworkInput, NodeInput};

use crate::backend::{Arg, Backend, IntoArg, Record, Sql};
use crate::model::network::{NetworkImportSummary, ServiceLink, StoredNetwork};
use crate::ops::audit;
use crate::{Result, StoreError};

/// Rows per multi-row `INSERT`: 7 columns × 500 stays far under SQLite's 32,766 bound
/// variables and PostgreSQL's 65,535.
const CHUNK: usize = 500;

/// Writes `rows` into `table (columns)` in chunks of multi-row `VALUES`.
async fn insert_rows<'a, B: Backend>(
    tx: &mut B::Conn,
    table: &'static str,
    columns: &'static str,
    rows: impl Iterator<Item = Vec<Arg<'a>>>,
) -> Result<()> {
    let mut rows = rows.peekable();
    while rows.peek().is_some() {
        let mut sql = Sql::built(format!("INSERT INTO {table} ({columns}) VALUES "));
        for (i, row) in rows.by_ref().take(CHUNK).enumerate() {
            sql.push(if i == 0 { "(" } else { ", (" });
            for (j, arg) in row.into_iter().enumerate() {
                if j > 0 {
                    sql.push(", ");
                }
                sql.push_arg(arg);
            }
            sql.push(")");
        }
        B::execute(tx, sql).await?;
    }
    Ok(())
}

impl<'a> IntoArg<'a> for Arg<'a> {
    fn into_arg(self) -> Arg<'a> {
        self
    }
}

fn path_json(path: &[LonLat]) -> serde_json::Value {
    serde_json::Value::Array(
        path.iter()
            .map(|p| serde_json::json!([p.lon(), p.lat()]))
            .collect(),
    )
}

/// Replaces the network and the service links in one transaction, audited: a failure leaves
/// the previous network in place.
pub(crate) async fn replace_network<B: Backend>(
    b: &B,
    network: &NetworkInput,
    services: &[ServiceLink],
    actor: &str,
    source: &str,
    now: DateTime<Utc>,
) -> Result<NetworkImportSummary> {
    let mut tx = b.begin().await?;
    for table in [
        "service_links",
        "network_devices",
        "network_links",
        "network_nodes",
    ] {
        B::execute(&mut tx, Sql::built(format!("DELETE FROM {table}"))).await?;
    }
    insert_rows::<B>(
        &mut tx,
        "network_nodes",
        "seq, id, kind, lon, lat",
        network.nodes.iter().enumerate().map(|(i, n)| {
            vec![
                (i as i64).into_arg(),
                n.id.as_str().into_arg(),
                n.kind.as_str().into_arg(),
                n.position.lon().into_arg(),
                n.position.lat().into_arg(),
            ]
        }),
    )
    .await?;
    insert_rows::<B>(
        &mut tx,
        "network_links",
        "seq, id, kind, from_node, to_node, path",
        network.links.iter().enumerate().map(|(i, l)| {
            vec![
                (i as i64).into_arg(),
                l.id.as_str().into_arg(),
                l.kind.as_str().into_arg(),
                l.from.as_str().into_arg(),
                l.to.as_str().into_arg(),
                path_json(&l.path).into_arg(),
            ]
        }),
    )
    .await?;
    // A device without a position is stored at its node's, as `Network::new` places it.
    let node_at: std::collections::HashMap<&str, LonLat> = network
        .nodes
        .iter()
        .map(|n| (n.id.as_str(), n.position))
        .collect();
    insert_rows::<B>(
        &mut tx,
        "network_devices",
        "seq, id, kind, link_id, node_id, lon, lat",
        network.devices.iter().enumerate().map(|(i, d)| {
            let at = d.position.or_else(|| node_at.get(d.node.as_str()).copied());
            vec![
                (i as i64).into_arg(),
                d.id.as_str().into_arg(),
                d.kind.as_str().into_arg(),
                d.link.as_str().into_arg(),
                d.node.as_str().into_arg(),
                at.map(|p| p.lon()).into_arg(),
                at.map(|p| p.lat()).into_arg(),
            ]
        }),
    )
    .await?;
    insert_rows::<B>(
        &mut tx,
        "service_links",
        "account_id, link_id, distance_m",
        services.iter().map(|s| {
            vec![
                s.account_id.as_str().into_arg(),
                s.link_id.as_str().into_arg(),
                s.distance_m.into_arg(),
            ]
        }),
    )
    .await?;
    let summary = NetworkImportSummary {
        nodes: network.nodes.len() as u64,
        links: network.links.len() as u64,
        devices: network.devices.len() as u64,
        service_links: services.len() as u64,
    };
    audit::write::<B>(
        &mut tx,
        actor,
        "network.import",
        Some(&format!("file:{source}")),
        &serde_json::json!({
            "nodes": summary.nodes,
            "links": summary.links,
            "devices": summary.devices,
            "service_links": summary.service_links,
        }),
        now,
    )
    .await?;
    B::commit(tx).await?;
    Ok(summary)
}

fn corrupt(what: &str, id: &str, problem: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what} {id}: {problem}"))
}

fn point(what: &str, id: &str, lon: f64, lat: f64) -> Result<LonLat> {
    LonLat::parse(lon, lat).map_err(|e| corrupt(what, id, e))
}

/// The imported network in its file's order, or `None` when none was imported.
pub(crate) async fn network<B: Backend>(b: &B) -> Result<Option<StoredNetwork>> {
    let mut tx = b.snapshot().await?;
    let nodes = B::fetch_all(
        &mut tx,
        Sql::new("SELECT id, kind, lon, lat FROM network_nodes ORDER BY seq"),
    )
    .await?;
    if nodes.is_empty() {
        B::commit(tx).await?;
        return Ok(None);
    }
    let links = B::fetch_all(
        &mut tx,
        Sql::new("SELECT id, kind, from_node, to_node, path FROM network_links ORDER BY seq"),
    )
    .await?;
    let devices = B::fetch_all(
        &mut tx,
        Sql::new("SELECT id, kind, link_id, node_id, lon, lat FROM network_devices ORDER BY seq"),
    )
    .await?;
    let services = B::fetch_all(
        &mut tx,
        Sql::new("SELECT account_id, link_id, distance_m FROM service_links ORDER BY account_id"),
    )
    .await?;
    B::commit(tx).await?;
    let mut input = NetworkInput::default();
    for r in &nodes {
        let id = r.text(0)?;
        let Some(Kind::Node(kind)) = Kind::parse(&r.text(1)?) else {
            return Err(corrupt("node", &id, "kind is not a node kind"));
        };
        let position = point("node", &id, r.f64(2)?, r.f64(3)?)?;
        input.nodes.push(NodeInput { id, kind, position });
    }
    for r in &links {
        let id = r.text(0)?;
        let Some(Kind::Link(kind)) = Kind::parse(&r.text(1)?) else {
            return Err(corrupt("link", &id, "kind is not a link kind"));
        };
        let coords: Vec<[f64; 2]> =
            serde_json::from_value(r.json(4)?).map_err(|e| corrupt("link", &id, e))?;
        let path = coords
            .iter()
            .map(|&[lon, lat]| point("link", &id, lon, lat))
            .collect::<Result<_>>()?;
        input.links.push(LinkInput {
            id,
            kind,
            from: r.text(2)?,
            to: r.text(3)?,
            path,
        });
    }
    for r in &devices {
        let id = r.text(0)?;
        let Some(Kind::Device(kind)) = Kind::parse(&r.text(1)?) else {
            return Err(corrupt("device", &id, "kind is not a device kind"));
        };
        let position = Some(point("device", &id, r.f64(4)?, r.f64(5)?)?);
        input.devices.push(DeviceInput {
            id,
            kind,
            link: r.text(2)?,
            node: r.text(3)?,
            position,
        });
    }
    let service_links = services
        .iter()
        .map(|r| {
            Ok(ServiceLink {
                account_id: r.text(0)?,
                link_id: r.text(1)?,
                distance_m: r.opt_f64(2)?,
            })
        })
        .collect::<Result<_>>()?;
    Ok(Some(StoredNetwork {
        input,
        service_links,
    }))
}

/// The customers with these account ids (unknown ones left out), in id order: the trace's
/// selection, read through [`customers`](crate::ops::customers::customers) for one snapshot.
pub(crate) async fn customers_by_accounts<B: Backend>(
    b: &B,
    accounts: &[&str],
) -> Result<
    Vec<(
        outagecast_core::customer::CustomerId,
        outagecast_core::customer::Customer,
    )>,
> {
    let rows = B::fetch_all(
        &mut *b.conn().await?,
        Sql::built(format!(
            "SELECT id FROM customers WHERE account_id {}",
            B::in_list(1)
        ))
        .arg(accounts.to_vec()),
    )
    .await?;
    let ids = rows
        .iter()
        .map(|r| Ok(outagecast_core::customer::CustomerId(r.i64(0)?)))
        .collect::<Result<Vec<_>>>()?;
    crate::ops::customers::customers(b, &ids).await
}
