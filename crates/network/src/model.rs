//! The network model: nodes, links and isolation devices, built only through
//! [`Network::new`], which checks every reference and names the feature at fault.
//!
//! One model, two vocabularies: water (junction / reservoir / tank, pipe / pump, valve) and
//! power (junction / substation, section, switch / fuse). Each element keeps the word it was
//! given in, so errors and answers speak the operator's language, while the trace sees only
//! "a node that is a source or not", "a link" and "a device on (link, node)".

use std::collections::HashMap;
use std::fmt;

use outagecast_core::area::LonLat;

use crate::NetworkError;

/// What a node is. Reservoirs, tanks and substations are sources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NodeKind {
    Junction,
    Reservoir,
    Tank,
    Substation,
}

/// What a link is. Pumps and control valves (EPANET's `[VALVES]`: pressure reducing,
/// flow control and the like, which regulate rather than isolate) carry water like pipes for
/// connectivity (the trace does not model hydraulics); neither feeds customers directly, so
/// the nearest-pipe attachment skips both. A section is the power spelling of a pipe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LinkKind {
    Pipe,
    Pump,
    ControlValve,
    Section,
}

/// What an isolation device is: a valve (water), a switch or a fuse (power).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeviceKind {
    Valve,
    Switch,
    Fuse,
}

/// Any element kind as written in a model file (`"kind"` of a GeoJSON feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Node(NodeKind),
    Link(LinkKind),
    Device(DeviceKind),
}

impl Kind {
    /// Every accepted spelling, for error messages.
    pub const SPELLINGS: &'static str = "junction, reservoir, tank, substation, pipe, pump, control_valve, section, valve, switch, fuse";

    /// Reads a kind in either vocabulary (case-insensitive).
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text.trim().to_ascii_lowercase().as_str() {
            "junction" => Kind::Node(NodeKind::Junction),
            "reservoir" => Kind::Node(NodeKind::Reservoir),
            "tank" => Kind::Node(NodeKind::Tank),
            "substation" => Kind::Node(NodeKind::Substation),
            "pipe" => Kind::Link(LinkKind::Pipe),
            "pump" => Kind::Link(LinkKind::Pump),
            "control_valve" => Kind::Link(LinkKind::ControlValve),
            "section" => Kind::Link(LinkKind::Section),
            "valve" => Kind::Device(DeviceKind::Valve),
            "switch" => Kind::Device(DeviceKind::Switch),
            "fuse" => Kind::Device(DeviceKind::Fuse),
            _ => return None,
        })
    }
}

impl NodeKind {
    pub fn is_source(self) -> bool {
        !matches!(self, NodeKind::Junction)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Junction => "junction",
            NodeKind::Reservoir => "reservoir",
            NodeKind::Tank => "tank",
            NodeKind::Substation => "substation",
        }
    }
}

impl LinkKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkKind::Pipe => "pipe",
            LinkKind::Pump => "pump",
            LinkKind::ControlValve => "control_valve",
            LinkKind::Section => "section",
        }
    }
}

impl DeviceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeviceKind::Valve => "valve",
            DeviceKind::Switch => "switch",
            DeviceKind::Fuse => "fuse",
        }
    }
}

impl fmt::Display for NodeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for DeviceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A node as read from a model file, before checking.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeInput {
    pub id: String,
    pub kind: NodeKind,
    pub position: LonLat,
}

/// A link as read from a model file, before checking. `path` is the drawn line (at least the
/// two end points for the outline; may be empty when the model has no geometry, then the
/// end nodes' positions are used).
#[derive(Debug, Clone, PartialEq)]
pub struct LinkInput {
    pub id: String,
    pub kind: LinkKind,
    pub from: String,
    pub to: String,
    pub path: Vec<LonLat>,
}

/// An isolation device as read from a model file: it sits on `link` next to `node`, so
/// closing it separates that link from that node. Without a position it is placed at the node.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceInput {
    pub id: String,
    pub kind: DeviceKind,
    pub link: String,
    pub node: String,
    pub position: Option<LonLat>,
}

/// Everything a model file gave, before checking.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NetworkInput {
    pub nodes: Vec<NodeInput>,
    pub links: Vec<LinkInput>,
    pub devices: Vec<DeviceInput>,
}

/// A checked node.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    id: String,
    kind: NodeKind,
    position: LonLat,
}

impl Node {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn kind(&self) -> NodeKind {
        self.kind
    }
    pub fn position(&self) -> LonLat {
        self.position
    }
}

/// A checked link: its end nodes are indices into [`Network::nodes`].
#[derive(Debug, Clone, PartialEq)]
pub struct Link {
    id: String,
    kind: LinkKind,
    ends: [u32; 2],
    path: Vec<LonLat>,
}

impl Link {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn kind(&self) -> LinkKind {
        self.kind
    }
    /// The indices of the `from` and `to` nodes.
    pub fn ends(&self) -> [usize; 2] {
        [self.ends[0] as usize, self.ends[1] as usize]
    }
    /// The drawn line (as given; the end nodes' positions when the model had none).
    pub fn path(&self) -> &[LonLat] {
        &self.path
    }
}

/// A checked isolation device on (link, node).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    id: String,
    kind: DeviceKind,
    link: u32,
    node: u32,
    position: LonLat,
}

impl Device {
    pub fn id(&self) -> &str {
        &self.id
    }
    pub fn kind(&self) -> DeviceKind {
        self.kind
    }
    pub fn link(&self) -> usize {
        self.link as usize
    }
    pub fn node(&self) -> usize {
        self.node as usize
    }
    pub fn position(&self) -> LonLat {
        self.position
    }
}

/// A checked network: every link joins two distinct known nodes, every device sits on a link
/// at one of its ends, ids are unique within nodes, links and devices (EPANET lets a node
/// and a link share an id, so the three are separate name spaces), and there is a source.
#[derive(Debug, Clone)]
pub struct Network {
    pub(crate) nodes: Vec<Node>,
    pub(crate) links: Vec<Link>,
    pub(crate) devices: Vec<Device>,
    node_ids: HashMap<String, u32>,
    link_ids: HashMap<String, u32>,
    device_ids: HashMap<String, u32>,
    /// Compressed adjacency: the links at node `n` are `incident[incident_start[n]..incident_start[n + 1]]`.
    pub(crate) incident_start: Vec<u32>,
    pub(crate) incident: Vec<u32>,
    /// Devices on each link end (`2 * link + end`), same layout.
    pub(crate) end_devices_start: Vec<u32>,
    pub(crate) end_devices: Vec<u32>,
}

/// Ids index as `u32` to halve the adjacency's memory; a model past that is not a
/// distribution network.
const MAX_ELEMENTS: usize = u32::MAX as usize;

fn index_ids<'a>(
    ids: impl Iterator<Item = &'a str>,
    what: &'static str,
) -> Result<HashMap<String, u32>, NetworkError> {
    let mut map = HashMap::new();
    for (i, id) in ids.enumerate() {
        if id.trim().is_empty() {
            return Err(NetworkError::Invalid {
                feature: format!("{what} number {}", i + 1),
                problem: "has no id; give every feature a non-empty \"id\"".into(),
            });
        }
        if i >= MAX_ELEMENTS {
            return Err(NetworkError::Invalid {
                feature: format!("{what} {id}"),
                problem: format!("is past the limit of {MAX_ELEMENTS} {what}s"),
            });
        }
        if map.insert(id.to_owned(), i as u32).is_some() {
            return Err(NetworkError::Invalid {
                feature: format!("{what} {id}"),
                problem: format!("appears twice; every {what} id must be unique"),
            });
        }
    }
    Ok(map)
}

/// Counting-sort adjacency: `(key, value)` pairs grouped by key, in one pass each way.
fn group(keys: usize, pairs: impl Iterator<Item = (u32, u32)> + Clone) -> (Vec<u32>, Vec<u32>) {
    let mut start = vec![0u32; keys + 1];
    for (k, _) in pairs.clone() {
        start[k as usize + 1] += 1;
    }
    for i in 0..keys {
        start[i + 1] += start[i];
    }
    let mut fill = start.clone();
    let mut values = vec![0u32; start[keys] as usize];
    for (k, v) in pairs {
        let slot = &mut fill[k as usize];
        values[*slot as usize] = v;
        *slot += 1;
    }
    (start, values)
}

impl Network {
    /// Checks a model and builds the adjacency the trace walks. Linear in its size.
    pub fn new(input: NetworkInput) -> Result<Self, NetworkError> {
        let node_ids = index_ids(input.nodes.iter().map(|n| n.id.as_str()), "node")?;
        let link_ids = index_ids(input.links.iter().map(|l| l.id.as_str()), "link")?;
        let device_ids = index_ids(input.devices.iter().map(|d| d.id.as_str()), "device")?;
        if !input.nodes.iter().any(|n| n.kind.is_source()) {
            return Err(NetworkError::NoSource);
        }
        let nodes: Vec<Node> = input
            .nodes
            .into_iter()
            .map(|n| Node {
                id: n.id,
                kind: n.kind,
                position: n.position,
            })
            .collect();
        let mut links = Vec::with_capacity(input.links.len());
        for l in input.links {
            let end = |name: &str| {
                node_ids.get(name).copied().ok_or_else(|| NetworkError::Invalid {
                    feature: format!("{} {}", l.kind, l.id),
                    problem: format!(
                        "joins node {name:?}, which is not in the network; add that node or correct \"from\"/\"to\""
                    ),
                })
            };
            let ends = [end(&l.from)?, end(&l.to)?];
            if ends[0] == ends[1] {
                return Err(NetworkError::Invalid {
                    feature: format!("{} {}", l.kind, l.id),
                    problem: format!(
                        "starts and ends at node {}; a link must join two different nodes",
                        l.from
                    ),
                });
            }
            let path = if l.path.len() >= 2 {
                l.path
            } else {
                vec![
                    nodes[ends[0] as usize].position,
                    nodes[ends[1] as usize].position,
                ]
            };
            links.push(Link {
                id: l.id,
                kind: l.kind,
                ends,
                path,
            });
        }
        let mut devices = Vec::with_capacity(input.devices.len());
        for d in input.devices {
            let feature = || format!("{} {}", d.kind, d.id);
            let link = *link_ids.get(&d.link).ok_or_else(|| NetworkError::Invalid {
                feature: feature(),
                problem: format!(
                    "sits on link {:?}, which is not in the network; correct \"pipe\"",
                    d.link
                ),
            })?;
            let node = *node_ids.get(&d.node).ok_or_else(|| NetworkError::Invalid {
                feature: feature(),
                problem: format!(
                    "sits next to node {:?}, which is not in the network; correct \"node\"",
                    d.node
                ),
            })?;
            let on = &links[link as usize];
            if !on.ends.contains(&node) {
                return Err(NetworkError::Invalid {
                    feature: feature(),
                    problem: format!(
                        "sits on {} {} next to node {}, but that {} joins {} and {}; give one of its end nodes",
                        on.kind,
                        on.id,
                        d.node,
                        on.kind,
                        nodes[on.ends[0] as usize].id,
                        nodes[on.ends[1] as usize].id
                    ),
                });
            }
            let position = d.position.unwrap_or(nodes[node as usize].position);
            devices.push(Device {
                id: d.id,
                kind: d.kind,
                link,
                node,
                position,
            });
        }
        let (incident_start, incident) = group(
            nodes.len(),
            links
                .iter()
                .enumerate()
                .flat_map(|(i, l)| l.ends.map(|n| (n, i as u32))),
        );
        let (end_devices_start, end_devices) = group(
            2 * links.len(),
            devices.iter().enumerate().map(|(i, d)| {
                let end = u32::from(links[d.link as usize].ends[1] == d.node);
                (2 * d.link + end, i as u32)
            }),
        );
        Ok(Network {
            nodes,
            links,
            devices,
            node_ids,
            link_ids,
            device_ids,
            incident_start,
            incident,
            end_devices_start,
            end_devices,
        })
    }

    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }
    pub fn links(&self) -> &[Link] {
        &self.links
    }
    pub fn devices(&self) -> &[Device] {
        &self.devices
    }
    pub fn node_index(&self, id: &str) -> Option<usize> {
        self.node_ids.get(id).map(|&i| i as usize)
    }
    pub fn link_index(&self, id: &str) -> Option<usize> {
        self.link_ids.get(id).map(|&i| i as usize)
    }
    pub fn device_index(&self, id: &str) -> Option<usize> {
        self.device_ids.get(id).map(|&i| i as usize)
    }

    /// The links at node `n`.
    pub(crate) fn links_at(&self, n: usize) -> &[u32] {
        &self.incident[self.incident_start[n] as usize..self.incident_start[n + 1] as usize]
    }

    /// The devices on `link` at its end `end` (0 = from, 1 = to).
    pub(crate) fn devices_at(&self, link: usize, end: usize) -> &[u32] {
        let k = 2 * link + end;
        &self.end_devices
            [self.end_devices_start[k] as usize..self.end_devices_start[k + 1] as usize]
    }
}
