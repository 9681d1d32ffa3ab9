//! The network model: import (with the customers' service links) and loading it for a trace.

use std::collections::HashMap;

use chrono::Utc;
use outagecast_network::{Network, NetworkInput, PipeIndex};
use outagecast_store::{ServiceLink, StoredNetwork};

use crate::views::{AttachmentView, NetworkImportedView};
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
