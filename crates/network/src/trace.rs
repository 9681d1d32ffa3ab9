//! The isolation trace: from a burst link to its segment, the devices to close and the links
//! that lose every path to a source once the segment is shut.
//!
//! A link and a node are joined at each end of the link unless a working device sits there.
//! The segment of a link is everything reachable from it over those joins (a breadth-first
//! walk); a broken device joins as if it were not there, so the segments on both of its sides
//! merge and the walk goes on to the next devices. The devices to close are the working ones
//! whose link and node lie one in the segment and one outside it. With the segment removed,
//! a second walk from every source outside it marks the nodes still fed; a link outside the
//! segment is dry when neither of its end nodes is fed (a device between it and a fed node
//! is open, since only boundary devices close, and those touch the segment). Both walks visit
//! each node and link at most once: linear in the size of the network.

use std::collections::VecDeque;

use crate::{Network, NetworkError};

/// The answer of [`Network::trace`]; every list is of indices into the network's nodes,
/// links or devices, in ascending order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Trace {
    /// The links of the burst link's segment (the burst link included).
    pub segment_links: Vec<usize>,
    /// The nodes of the segment.
    pub segment_nodes: Vec<usize>,
    /// The working devices on the segment's boundary: closing them shuts the segment.
    pub devices_to_close: Vec<usize>,
    /// Links outside the segment with no path left to a source once it is shut.
    pub dry_links: Vec<usize>,
}

impl Trace {
    /// The segment's links and the dry links, in ascending order: every link whose customers
    /// lose supply.
    pub fn affected_links(&self) -> Vec<usize> {
        let mut all: Vec<usize> = self
            .segment_links
            .iter()
            .chain(&self.dry_links)
            .copied()
            .collect();
        all.sort_unstable();
        all
    }
}

impl Network {
    /// Traces a burst of link `burst` with the devices `broken` (ids) that will not turn.
    /// Unknown ids are refused, naming the id and its kind.
    pub fn trace_ids(&self, burst: &str, broken: &[String]) -> Result<Trace, NetworkError> {
        let link = self
            .link_index(burst)
            .ok_or_else(|| NetworkError::UnknownLink(burst.to_owned()))?;
        let broken = broken
            .iter()
            .map(|id| {
                self.device_index(id)
                    .ok_or_else(|| NetworkError::UnknownDevice(id.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(self.trace(link, &broken))
    }

    /// Traces a burst of the link at index `burst` with the devices at indices `broken` out of
    /// order. Panics only on an index out of range (use [`Network::trace_ids`] for user input).
    pub fn trace(&self, burst: usize, broken: &[usize]) -> Trace {
        let mut is_broken = vec![false; self.devices.len()];
        for &d in broken {
            is_broken[d] = true;
        }
        let working = |ds: &[u32]| ds.iter().any(|&d| !is_broken[d as usize]);
        // Walk 1: the segment.
        let mut link_in = vec![false; self.links.len()];
        let mut node_in = vec![false; self.nodes.len()];
        let mut queue = VecDeque::new();
        link_in[burst] = true;
        queue.push_back(burst);
        while let Some(l) = queue.pop_front() {
            for (end, n) in self.links[l].ends().into_iter().enumerate() {
                if node_in[n] || working(self.devices_at(l, end)) {
                    continue;
                }
                node_in[n] = true;
                for &m in self.links_at(n) {
                    let m = m as usize;
                    if link_in[m] {
                        continue;
                    }
                    let end = usize::from(self.links[m].ends()[1] == n);
                    if !working(self.devices_at(m, end)) {
                        link_in[m] = true;
                        queue.push_back(m);
                    }
                }
            }
        }
        let devices_to_close = (0..self.devices.len())
            .filter(|&d| {
                let device = &self.devices[d];
                !is_broken[d] && link_in[device.link()] != node_in[device.node()]
            })
            .collect();
        // Walk 2: the nodes still fed with the segment shut. Inside the rest of the network
        // every device is open, so links join their end nodes.
        let mut fed = vec![false; self.nodes.len()];
        let mut nodes = VecDeque::new();
        for (n, node) in self.nodes.iter().enumerate() {
            if node.kind().is_source() && !node_in[n] {
                fed[n] = true;
                nodes.push_back(n);
            }
        }
        while let Some(n) = nodes.pop_front() {
            for &l in self.links_at(n) {
                let l = l as usize;
                if link_in[l] {
                    continue;
                }
                for m in self.links[l].ends() {
                    if !fed[m] && !node_in[m] {
                        fed[m] = true;
                        nodes.push_back(m);
                    }
                }
            }
        }
        let dry_links = (0..self.links.len())
            .filter(|&l| !link_in[l] && !self.links[l].ends().iter().any(|&n| fed[n]))
            .collect();
        Trace {
            segment_links: (0..self.links.len()).filter(|&l| link_in[l]).collect(),
            segment_nodes: (0..self.nodes.len()).filter(|&n| node_in[n]).collect(),
            devices_to_close,
            dry_links,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use outagecast_core::area::LonLat;

    use crate::{
        DeviceInput, DeviceKind, Kind, LinkInput, LinkKind, Network, NetworkError, NetworkInput,
        NodeInput, NodeKind,
    };

    fn node(id: &str, kind: NodeKind) -> NodeInput {
        NodeInput {
            id: id.into(),
            kind,
            position: LonLat::parse(24.9, 60.2).unwrap(),
        }
    }
    fn link(id: &str, kind: LinkKind, from: &str, to: &str) -> LinkInput {
        LinkInput {
            id: id.into(),
            kind,
            from: from.into(),
            to: to.into(),
            path: Vec::new(),
        }
    }
    fn device(id: &str, kind: DeviceKind, link: &str, node: &str) -> DeviceInput {
        DeviceInput {
            id: id.into(),
            kind,
            link: link.into(),
            node: node.into(),
            position: None,
        }
    }

    /// R —P1— A —P2— B —P3— C, and B —P4— D; valves V1 on (P2, A), V2 on (P3, B),
    /// V3 on (P4, B).
    fn water(extra: impl FnOnce(&mut NetworkInput)) -> Result<Network, NetworkError> {
        let mut input = NetworkInput {
            nodes: vec![
                node("R", NodeKind::Reservoir),
                node("A", NodeKind::Junction),
                node("B", NodeKind::Junction),
                node("C", NodeKind::Junction),
                node("D", NodeKind::Junction),
            ],
            links: vec![
                link("P1", LinkKind::Pipe, "R", "A"),
                link("P2", LinkKind::Pipe, "A", "B"),
                link("P3", LinkKind::Pipe, "B", "C"),
                link("P4", LinkKind::Pipe, "B", "D"),
            ],
            devices: vec![
                device("V1", DeviceKind::Valve, "P2", "A"),
                device("V2", DeviceKind::Valve, "P3", "B"),
                device("V3", DeviceKind::Valve, "P4", "B"),
            ],
        };
        extra(&mut input);
        Network::new(input)
    }

    fn ids<'a>(all: impl Fn(usize) -> &'a str, of: &[usize]) -> Vec<&'a str> {
        of.iter().map(|&i| all(i)).collect()
    }

    fn answer(net: &Network, burst: &str, broken: &[&str]) -> [Vec<String>; 4] {
        let broken: Vec<String> = broken.iter().map(|s| s.to_string()).collect();
        let t = net.trace_ids(burst, &broken).unwrap();
        let link = |i: usize| net.links()[i].id();
        let own = |v: Vec<&str>| v.into_iter().map(String::from).collect();
        [
            own(ids(link, &t.segment_links)),
            own(ids(|i| net.nodes()[i].id(), &t.segment_nodes)),
            own(ids(|i| net.devices()[i].id(), &t.devices_to_close)),
            own(ids(link, &t.dry_links)),
        ]
    }

    #[test]
    fn a_burst_closes_the_valves_around_its_segment_and_dries_what_is_downstream() {
        let net = water(|_| {}).unwrap();
        assert_eq!(
            answer(&net, "P2", &[]),
            [
                vec!["P2"],
                vec!["B"],
                vec!["V1", "V2", "V3"],
                vec!["P3", "P4"]
            ]
        );
        // Upstream of the valves nothing changes: P1's segment is R, A and P1 alone.
        assert_eq!(
            answer(&net, "P1", &[]),
            [
                vec!["P1"],
                vec!["R", "A"],
                vec!["V1"],
                vec!["P2", "P3", "P4"]
            ]
        );
    }

    #[test]
    fn a_broken_valve_merges_the_segments_on_its_two_sides() {
        let net = water(|_| {}).unwrap();
        assert_eq!(
            answer(&net, "P2", &["V1"]),
            [
                vec!["P1", "P2"],
                vec!["R", "A", "B"],
                vec!["V2", "V3"],
                vec!["P3", "P4"]
            ]
        );
        assert_eq!(
            answer(&net, "P2", &["V2"]),
            [
                vec!["P2", "P3"],
                vec!["B", "C"],
                vec!["V1", "V3"],
                vec!["P4"]
            ]
        );
        let none: Vec<String> = Vec::new();
        assert_eq!(answer(&net, "P2", &["V1", "V2", "V3"])[2], none);
    }

    #[test]
    fn a_second_source_keeps_a_loop_fed() {
        let net = water(|n| {
            n.nodes.push(node("T", NodeKind::Tank));
            n.links.push(link("P5", LinkKind::Pipe, "C", "T"));
        })
        .unwrap();
        assert_eq!(answer(&net, "P2", &[])[3], vec!["P4"]);
        // A pump carries water like a pipe.
        let net = water(|n| {
            n.nodes.push(node("T", NodeKind::Tank));
            n.links.push(link("PU1", LinkKind::Pump, "T", "C"));
        })
        .unwrap();
        assert_eq!(answer(&net, "P2", &[])[3], vec!["P4"]);
    }

    #[test]
    fn power_is_the_same_trace_in_other_words() {
        let k = |s: &str| Kind::parse(s).unwrap();
        assert_eq!(k("Substation"), Kind::Node(NodeKind::Substation));
        assert_eq!(k("section"), Kind::Link(LinkKind::Section));
        assert_eq!(k("fuse"), Kind::Device(DeviceKind::Fuse));
        assert_eq!(Kind::parse("hydrant"), None);
        // EPANET's control valves are stored by this spelling and read back by it.
        assert_eq!(
            k(LinkKind::ControlValve.as_str()),
            Kind::Link(LinkKind::ControlValve)
        );
        let net = Network::new(NetworkInput {
            nodes: vec![
                node("S", NodeKind::Substation),
                node("A", NodeKind::Junction),
                node("B", NodeKind::Junction),
            ],
            links: vec![
                link("F1", LinkKind::Section, "S", "A"),
                link("F2", LinkKind::Section, "A", "B"),
            ],
            devices: vec![device("SW1", DeviceKind::Switch, "F2", "A")],
        })
        .unwrap();
        assert_eq!(
            answer(&net, "F2", &[]),
            [vec!["F2"], vec!["B"], vec!["SW1"], vec![]]
        );
        assert_eq!(answer(&net, "F1", &[])[3], vec!["F2"]);
    }

    fn problem(extra: impl FnOnce(&mut NetworkInput)) -> String {
        water(extra).unwrap_err().to_string()
    }

    #[test]
    fn bad_models_are_refused_naming_the_feature() {
        let e = problem(|n| n.links.push(link("P9", LinkKind::Pipe, "A", "Z")));
        assert!(
            e.starts_with("pipe P9 joins node \"Z\", which is not in the network"),
            "{e}"
        );
        let e = problem(|n| n.devices.push(device("V9", DeviceKind::Valve, "P1", "B")));
        assert!(
            e.starts_with("valve V9 sits on pipe P1 next to node B, but that pipe joins R and A"),
            "{e}"
        );
        let e = problem(|n| n.devices.push(device("V9", DeviceKind::Valve, "P7", "B")));
        assert!(
            e.starts_with("valve V9 sits on link \"P7\", which is not in the network"),
            "{e}"
        );
        let e = problem(|n| n.devices.push(device("V9", DeviceKind::Valve, "P1", "Q")));
        assert!(e.starts_with("valve V9 sits next to node \"Q\""), "{e}");
        let e = problem(|n| n.links.push(link("P1", LinkKind::Pipe, "A", "C")));
        assert!(e.starts_with("link P1 appears twice"), "{e}");
        let e = problem(|n| n.nodes.push(node("A", NodeKind::Junction)));
        assert!(e.starts_with("node A appears twice"), "{e}");
        let e = problem(|n| n.devices.push(device("V1", DeviceKind::Valve, "P1", "A")));
        assert!(e.starts_with("device V1 appears twice"), "{e}");
        let e = problem(|n| n.links.push(link("P9", LinkKind::Pipe, "C", "C")));
        assert!(e.starts_with("pipe P9 starts and ends at node C"), "{e}");
        let e = problem(|n| n.nodes[0].kind = NodeKind::Junction);
        assert!(e.starts_with("the network has no source"), "{e}");
        let e = problem(|n| n.nodes[1].id = " ".into());
        assert!(e.starts_with("node number 2 has no id"), "{e}");
        // A node and a link may share an id, as in EPANET models.
        assert!(water(|n| n.nodes.push(node("P1", NodeKind::Junction))).is_ok());
    }

    #[test]
    fn unknown_ids_in_a_trace_are_named() {
        let net = water(|_| {}).unwrap();
        let e = net.trace_ids("P-402", &[]).unwrap_err().to_string();
        assert!(e.contains("no pipe or section \"P-402\""), "{e}");
        let e = net.trace_ids("P1", &["V7".into()]).unwrap_err().to_string();
        assert!(e.contains("no valve, switch or fuse \"V7\""), "{e}");
    }

    #[test]
    fn links_without_a_drawn_line_are_drawn_between_their_nodes() {
        let net = water(|_| {}).unwrap();
        assert_eq!(net.links()[0].path().len(), 2);
        assert_eq!(net.devices()[0].position(), net.nodes()[1].position());
    }
}
