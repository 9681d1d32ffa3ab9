//! The network model and the isolation trace, for targeting by topology: water follows pipes,
//! not distance, so the customers who lose supply for a burst are those fed from the isolated
//! segment and those downstream of it with no path left to a source.
//!
//! * [`model`]: [`Network`], built only through [`Network::new`] from a [`NetworkInput`]
//!   (nodes, links, isolation devices in the water or the power vocabulary), which names the
//!   feature at fault for an unknown node, a device on a link that does not touch its node,
//!   a duplicate id or a network without a source;
//! * [`trace`]: [`Network::trace`] / [`Network::trace_ids`] → [`Trace`] (segment, devices to
//!   close, dry links), linear in the size of the network.
//!
//! Pure: no I/O, no async.

pub mod attach;
pub mod model;
pub mod trace;

pub use attach::{Attachment, PipeIndex};
pub use model::{
    Device, DeviceInput, DeviceKind, Kind, Link, LinkInput, LinkKind, Network, NetworkInput, Node,
    NodeInput, NodeKind,
};
pub use trace::Trace;

/// What can be wrong with a network or a trace request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// A feature of the model is wrong: `feature` names it ("pipe P-402", "valve V3").
    #[error("{feature} {problem}")]
    Invalid { feature: String, problem: String },
    #[error(
        "the network has no source; a water network needs a reservoir or a tank, a power network a substation"
    )]
    NoSource,
    #[error(
        "there is no pipe or section {0:?} in the network; give the id of a link in the imported network"
    )]
    UnknownLink(String),
    #[error(
        "there is no valve, switch or fuse {0:?} in the network; give the id of an isolation device in the imported network"
    )]
    UnknownDevice(String),
}
