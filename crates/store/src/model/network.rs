//! The network model's rows: the store keeps a [`NetworkInput`] as imported (checked by
//! `Network::new` before it is written and again when it is read, which is cheap and keeps
//! one constructor) and the customers' service links.

use outagecast_network::NetworkInput;

/// Which link feeds a customer (`account_id`); `distance_m` is the attachment distance when
/// the import picked the nearest pipe, `None` when a services file named the link.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceLink {
    pub account_id: String,
    pub link_id: String,
    pub distance_m: Option<f64>,
}

/// What a network import wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetworkImportSummary {
    pub nodes: u64,
    pub links: u64,
    pub devices: u64,
    pub service_links: u64,
}

/// The imported network and its service links, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredNetwork {
    pub input: NetworkInput,
    pub service_links: Vec<ServiceLink>,
}
