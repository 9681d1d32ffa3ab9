//! The network model: import (with the customers' service links) and loading it for a trace.

use std::collections::HashMap;

use chrono::Utc;
use outagecast_network::{Network, NetworkInput, PipeIndex};
use outagecast_store::{ServiceLink, StoredNetwork};

use geo::LineString;
use outagecast_core::area::{Area, Corridor};

use crate::views::{AttachmentView, DeviceView, NetworkImportedView, TraceView};
use crate::{Engine, EngineError, Result};

/// Default for `--attach-within`: a service line is rarely longer than this.
pub const DEFAULT_ATTACH_WITHIN_M: f64 = 50.0;

/// How customers are tied to pipes by an import.
#[derive(Debug, Clone, PartialEq)]
pub enum Services {
    /// The services file's `(account_id, pipe_id)` rows.
    Listed(Vec<(String, String)>),
    /// Each customer to the nearest pipe within this many metres.
    Nearest { within_m: f64 },
}

/// A network import: the model as read, how customers attach, and the file's name.
#[derive(Debug, Clone)]
pub struct NetworkImport {
    pub input: NetworkInput,
    pub services: Services,
    pub source: String,
}

fn invalid(field: &str, message: impl std::fmt::Display) -> EngineError {
    EngineError::Invalid {
        field: field.to_string(),
        message: message.to_string(),
    }
}

impl Engine {
    /// Checks a network model, ties every customer to a pipe and replaces the stored network
    /// in one transaction. A bad model, an unknown pipe in the services file or a distance
    /// that is not a positive number is refused and nothing is written.
    pub async fn import_network(
        &self,
        actor: &str,
        import: NetworkImport,
    ) -> Result<NetworkImportedView> {
        let network = Network::new(import.input.clone())
            .map_err(|e| invalid("network", format!("{}: {e}", import.source)))?;
        let points = self.store().service_points().await?;
        let ids: Vec<_> = points.iter().map(|(id, _)| *id).collect();
        let customers = self.store().customers(&ids).await?;
        let mut attachments = Vec::new();
        let mut unattached = Vec::new();
        match &import.services {
            Services::Listed(rows) => {
                let known: HashMap<&str, ()> = customers
                    .iter()
                    .map(|(_, c)| (c.account_id().as_str(), ()))
                    .collect();
                for (account, pipe) in rows {
                    if network.link_index(pipe).is_none() {
                        return Err(invalid(
                            "services",
                            format!(
                                "account {account} is fed from pipe {pipe:?}, which is not in the network; correct pipe_id"
                            ),
                        ));
                    }
                    if known.contains_key(account.as_str()) {
                        attachments.push(AttachmentView {
                            account_id: account.clone(),
                            pipe_id: pipe.clone(),
                            distance_m: None,
                        });
                    }
                }
                let listed: HashMap<&str, ()> =
                    rows.iter().map(|(a, _)| (a.as_str(), ())).collect();
                unattached.extend(
                    customers
                        .iter()
                        .map(|(_, c)| c.account_id().as_str())
                        .filter(|a| !listed.contains_key(a))
                        .map(String::from),
                );
            }
            Services::Nearest { within_m } => {
                if !(within_m.is_finite() && *within_m > 0.0) {
                    return Err(invalid(
                        "attach_within",
                        format!(
                            "{within_m} is not a distance; give a positive number of metres such as 50"
                        ),
                    ));
                }
                let index = PipeIndex::new(&network);
                for (_, c) in &customers {
                    match index.nearest(c.location(), *within_m) {
                        Some(a) => attachments.push(AttachmentView {
                            account_id: c.account_id().as_str().to_string(),
                            pipe_id: network.links()[a.link].id().to_string(),
                            distance_m: Some(a.distance_m),
                        }),
                        None => unattached.push(c.account_id().as_str().to_string()),
                    }
                }
            }
        }
        attachments.sort_by(|a, b| a.account_id.cmp(&b.account_id));
        unattached.sort();
        let links: Vec<ServiceLink> = attachments
            .iter()
            .map(|a| ServiceLink {
                account_id: a.account_id.clone(),
                link_id: a.pipe_id.clone(),
                distance_m: a.distance_m,
            })
            .collect();
        let summary = self
            .store()
            .replace_network(&import.input, &links, actor, &import.source, Utc::now())
            .await?;
        let max_distance_m = attachments
            .iter()
            .filter_map(|a| a.distance_m)
            .reduce(f64::max);
        Ok(NetworkImportedView {
            nodes: summary.nodes,
            links: summary.links,
            devices: summary.devices,
            sources: network
                .nodes()
                .iter()
                .filter(|n| n.kind().is_source())
                .count() as u64,
            attached: attachments.len() as u64,
            unattached_count: unattached.len() as u64,
            max_distance_m,
            attachments,
            unattached,
        })
    }

    /// The stored network, checked, with its service links; a clear error naming the
    /// command that imports one when there is none.
    pub async fn network(&self) -> Result<(Network, Vec<ServiceLink>)> {
        let Some(StoredNetwork {
            input,
            service_links,
        }) = self.store().network().await?
        else {
            return Err(invalid(
                "network",
                "no network is imported; import one with `outagecast network import NET.geojson [--services SERVICES.csv]`",
            ));
        };
        let network = Network::new(input).map_err(|e| invalid("network", e))?;
        Ok((network, service_links))
    }
}

/// Metres each side of an affected pipe in the incident's outline (what the map, CAP and the
/// public feed show; the selection is the trace itself).
pub const OUTLINE_BUFFER_M: f64 = 15.0;

/// A declaration by topology: the burst pipe (power: the faulted section) and the isolation
/// devices that will not turn.
#[derive(Debug, Clone, PartialEq)]
pub struct TopologySpec {
    pub burst: String,
    pub broken: Vec<String>,
}

/// A trace made into a selection.
#[derive(Debug, Clone)]
pub(crate) struct Traced {
    /// The outline of the affected pipes.
    pub area: Area,
    /// "burst pipe P-402 (broken valves V3)", recorded with the incident.
    pub source: String,
    /// The accounts fed from an affected pipe.
    pub accounts: Vec<String>,
    pub view: TraceView,
}

impl Engine {
    /// Traces `spec` on the stored network: the accounts fed from the segment's and the dry
    /// pipes, the outline of those pipes, and the view with the valves to close.
    pub(crate) async fn trace_selection(&self, spec: &TopologySpec) -> Result<Traced> {
        let (network, service_links) = self.network().await?;
        let trace = network
            .trace_ids(&spec.burst, &spec.broken)
            .map_err(|e| invalid("burst_pipe", e))?;
        let affected = trace.affected_links();
        let mut is_affected = vec![false; network.links().len()];
        for &l in &affected {
            is_affected[l] = true;
        }
        let mut accounts: Vec<String> = service_links
            .into_iter()
            .filter(|s| {
                network
                    .link_index(&s.link_id)
                    .is_some_and(|l| is_affected[l])
            })
            .map(|s| s.account_id)
            .collect();
        accounts.sort();
        let corridors = affected
            .iter()
            .map(|&l| {
                let line: LineString<f64> = network.links()[l]
                    .path()
                    .iter()
                    .map(|p| (p.lon(), p.lat()))
                    .collect();
                Corridor::new(line, OUTLINE_BUFFER_M).map(Area::Corridor)
            })
            .collect::<std::result::Result<Vec<_>, _>>()?;
        let area = Area::union(corridors)?;
        let link_ids = |ls: &[usize]| {
            ls.iter()
                .map(|&l| network.links()[l].id().to_string())
                .collect()
        };
        let view = TraceView {
            burst_pipe: spec.burst.clone(),
            broken_valves: spec.broken.clone(),
            valves_to_close: trace
                .devices_to_close
                .iter()
                .map(|&d| {
                    let d = &network.devices()[d];
                    DeviceView {
                        id: d.id().to_string(),
                        kind: d.kind().as_str().to_string(),
                        lon: d.position().lon(),
                        lat: d.position().lat(),
                    }
                })
                .collect(),
            segment_pipes: link_ids(&trace.segment_links),
            dry_pipes: link_ids(&trace.dry_links),
        };
        let section = network
            .link_index(&spec.burst)
            .is_some_and(|l| network.links()[l].kind() == outagecast_network::LinkKind::Section);
        let what = if section {
            "faulted section"
        } else {
            "burst pipe"
        };
        let source = if spec.broken.is_empty() {
            format!("{what} {}", spec.burst)
        } else {
            format!("{what} {} (broken: {})", spec.burst, spec.broken.join(", "))
        };
        Ok(Traced {
            area,
            source,
            accounts,
            view,
        })
    }
}
