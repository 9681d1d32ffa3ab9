//! Customers attached to the nearest pipe: an R-tree over every segment of every pipe (or
//! power section; pumps stand in stations and feed nobody directly).
//!
//! Distances are planar metres in an equirectangular projection at the network's mean
//! latitude. Over a city (half a degree of latitude) the scale drifts by under 1 %, well
//! inside what a "within 50 m" attachment needs, and it keeps the tree's metric exact.

use outagecast_core::area::LonLat;
use rstar::RTree;
use rstar::primitives::{GeomWithData, Line};

use crate::{LinkKind, Network};

/// Metres per degree of latitude (mean Earth radius 6,371,008.8 m).
const METRES_PER_DEGREE: f64 = 6_371_008.8 * std::f64::consts::PI / 180.0;

/// The pipe that feeds a point, and how far it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Attachment {
    /// Index into [`Network::links`].
    pub link: usize,
    /// Distance from the point to the pipe, metres.
    pub distance_m: f64,
}

/// The pipes' segments in a tree, for nearest-pipe queries.
pub struct PipeIndex {
    tree: RTree<GeomWithData<Line<[f64; 2]>, u32>>,
    x_scale: f64,
}

impl PipeIndex {
    pub fn new(network: &Network) -> Self {
        let nodes = network.nodes();
        let mean_lat =
            nodes.iter().map(|n| n.position().lat()).sum::<f64>() / nodes.len().max(1) as f64;
        let x_scale = mean_lat.to_radians().cos() * METRES_PER_DEGREE;
        let mut segments = Vec::new();
        for (i, link) in network.links().iter().enumerate() {
            if matches!(link.kind(), LinkKind::Pump | LinkKind::ControlValve) {
                continue;
            }
            for pair in link.path().windows(2) {
                let a = [pair[0].lon() * x_scale, pair[0].lat() * METRES_PER_DEGREE];
                let b = [pair[1].lon() * x_scale, pair[1].lat() * METRES_PER_DEGREE];
                segments.push(GeomWithData::new(Line::new(a, b), i as u32));
            }
        }
        PipeIndex {
            tree: RTree::bulk_load(segments),
            x_scale,
        }
    }

    /// The nearest pipe to `p` if it is within `within_m` metres.
    pub fn nearest(&self, p: LonLat, within_m: f64) -> Option<Attachment> {
        let q = [p.lon() * self.x_scale, p.lat() * METRES_PER_DEGREE];
        let (segment, d2) = self.tree.nearest_neighbor_iter_with_distance_2(&q).next()?;
        let distance_m = d2.sqrt();
        (distance_m <= within_m).then_some(Attachment {
            link: segment.data as usize,
            distance_m,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::{LinkInput, NetworkInput, NodeInput, NodeKind};

    #[test]
    fn points_attach_to_the_nearest_pipe_within_the_distance() {
        let at = |lon, lat| LonLat::parse(lon, lat).unwrap();
        let node = |id: &str, lon| NodeInput {
            id: id.into(),
            kind: if id == "R" {
                NodeKind::Reservoir
            } else {
                NodeKind::Junction
            },
            position: at(lon, 60.0),
        };
        let link = |id: &str, kind, from: &str, to: &str| LinkInput {
            id: id.into(),
            kind,
            from: from.into(),
            to: to.into(),
            path: Vec::new(),
        };
        let net = Network::new(NetworkInput {
            nodes: vec![
                node("R", 25.0),
                node("A", 25.01),
                node("B", 25.02),
                node("C", 25.03),
            ],
            links: vec![
                link("PU", LinkKind::Pump, "R", "A"),
                link("P", LinkKind::Pipe, "A", "B"),
                link("PRV", LinkKind::ControlValve, "B", "C"),
            ],
            devices: Vec::new(),
        })
        .unwrap();
        let index = PipeIndex::new(&net);
        // 0.0003° of latitude north of the pipe is 33.4 m.
        let a = index.nearest(at(25.015, 60.0003), 50.0).unwrap();
        assert_eq!(a.link, 1);
        assert!((a.distance_m - 33.36).abs() < 0.05, "{a:?}");
        assert_eq!(index.nearest(at(25.015, 60.0003), 30.0), None);
        // Beside the pump, the pipe is what is nearest (the pump feeds nobody).
        let a = index.nearest(at(25.005, 60.0), 1000.0).unwrap();
        assert_eq!(a.link, 1);
        // So beside a control valve (EPANET's [VALVES]).
        let a = index.nearest(at(25.025, 60.0), 1000.0).unwrap();
        assert_eq!(a.link, 1);
    }
}
