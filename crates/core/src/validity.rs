//! Polygon validity in O(n log n): the answer of `geo`'s `Validation` for a `MultiPolygon`
//! (the first problem it reports, with the same text), without its pairwise ring test.
//!
//! `geo` 0.33 decides "this ring crosses itself" by testing every pair of edges, which is
//! O(n²): minutes for a 100,000-vertex ring drawn in a browser. The rule it applies is kept
//! exactly (an edge pair counts when the closed segments meet and neither one ends where the
//! other starts, comparing coordinates), but it is decided by a Shamos–Hoey sweep after a
//! linear pass that settles the degenerate rings (repeated vertices, zero-length edges,
//! spikes) the sweep cannot order. `tests::sweep_agrees_with_the_pairwise_rule` compares it
//! with the pairwise test on random and near-degenerate rings.
//!
//! The other checks (holes inside their shell, parts not overlapping) are `geo`'s `relate`,
//! in `geo`'s order, so the first problem reported is the one `check_validation` reports.

use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashSet};
use std::ops::Bound;

use geo::coordinate_position::CoordPos;
use geo::dimensions::Dimensions;
use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::validation::{GeometryIndex, InvalidMultiPolygon, InvalidPolygon, RingRole};
use geo::{
    BoundingRect, Coord, Intersects, Line, LineString, MultiPolygon, Polygon, PreparedGeometry,
    Relate, RemoveRepeatedPoints,
};

/// Rings with at most this many edges are tested pair by pair: cheaper than sorting, and the
/// rule itself rather than a proof about it.
const PAIRWISE_EDGES: usize = 16;

#[cfg(test)]
thread_local! {
    /// How many times [`first_problem`] ran on this test's thread (tests run in parallel):
    /// what shows that areas read back from the store are not validated again.
    static VALIDATIONS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

#[cfg(test)]
pub(crate) fn validations() -> usize {
    VALIDATIONS.with(std::cell::Cell::get)
}

/// The first problem `geo`'s `shape.check_validation()` would report, or `None` when valid.
pub fn first_problem(shape: &MultiPolygon<f64>) -> Option<InvalidMultiPolygon> {
    #[cfg(test)]
    VALIDATIONS.with(|n| n.set(n.get() + 1));
    let boxes: Vec<_> = shape.0.iter().map(|p| p.bounding_rect()).collect();
    for (i, polygon) in shape.0.iter().enumerate() {
        if let Some(problem) = polygon_problem(polygon) {
            return Some(InvalidMultiPolygon::InvalidPolygon(
                GeometryIndex(i),
                problem,
            ));
        }
        for (j, other) in shape.0.iter().enumerate().skip(i + 1) {
            // Parts whose boxes do not even touch can neither overlap nor share an edge; skipping
            // them keeps many small parts from costing a `relate` per pair.
            if let (Some(a), Some(b)) = (boxes[i], boxes[j])
                && !a.intersects(&b)
            {
                continue;
            }
            let im = polygon.relate(other);
            if im.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional {
                return Some(InvalidMultiPolygon::ElementsOverlaps(
                    GeometryIndex(i),
                    GeometryIndex(j),
                ));
            }
            if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
                return Some(InvalidMultiPolygon::ElementsTouchOnALine(
                    GeometryIndex(i),
                    GeometryIndex(j),
                ));
            }
        }
    }
    None
}

/// `geo`'s polygon checks in its order: per ring too few points, crossing itself, a non-finite
/// coordinate; then each hole inside the shell and the holes apart.
fn polygon_problem(polygon: &Polygon<f64>) -> Option<InvalidPolygon> {
    if polygon.exterior().0.is_empty() {
        return None;
    }
    for (ri, ring) in std::iter::once(polygon.exterior())
        .chain(polygon.interiors())
        .enumerate()
    {
        if ring.0.is_empty() {
            continue;
        }
        let role = if ri == 0 {
            RingRole::Exterior
        } else {
            RingRole::Interior(ri - 1)
        };
        if ring.remove_repeated_points().0.len() < 4 {
            return Some(InvalidPolygon::TooFewPointsInRing(role));
        }
        if ring_crosses_itself(ring) {
            return Some(InvalidPolygon::SelfIntersection(role));
        }
        if let Some(at) = ring
            .0
            .iter()
            .position(|c| !(c.x.is_finite() && c.y.is_finite()))
        {
            return Some(InvalidPolygon::NonFiniteCoord(
                role,
                geo::validation::CoordIndex(at),
            ));
        }
    }
    if !polygon.interiors().iter().any(|r| !r.0.is_empty()) {
        return None;
    }
    let shell = Polygon::new(polygon.exterior().clone(), vec![]);
    let shell = PreparedGeometry::from(&shell);
    for (i, hole) in polygon.interiors().iter().enumerate() {
        if hole.0.is_empty() {
            continue;
        }
        let hole_polygon = Polygon::new(hole.clone(), vec![]);
        let prepared = PreparedGeometry::from(&hole_polygon);
        let im = shell.relate(&prepared);
        if !im.is_contains() {
            return Some(InvalidPolygon::InteriorRingNotContainedInExteriorRing(
                RingRole::Interior(i),
            ));
        }
        if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
            return Some(InvalidPolygon::IntersectingRingsOnALine(
                RingRole::Exterior,
                RingRole::Interior(i),
            ));
        }
        for (j, other) in polygon.interiors().iter().enumerate().skip(i + 1) {
            if other.0.is_empty() {
                continue;
            }
            let im = prepared.relate(&Polygon::new(other.clone(), vec![]));
            if im.get(CoordPos::Inside, CoordPos::Inside) == Dimensions::TwoDimensional {
                return Some(InvalidPolygon::IntersectingRingsOnAnArea(
                    RingRole::Interior(i),
                    RingRole::Interior(j),
                ));
            }
            if im.get(CoordPos::OnBoundary, CoordPos::OnBoundary) == Dimensions::OneDimensional {
                return Some(InvalidPolygon::IntersectingRingsOnALine(
                    RingRole::Interior(i),
                    RingRole::Interior(j),
                ));
            }
        }
    }
    None
}

/// The rule for one pair of edges: the closed segments meet, and neither ends where the other
/// starts (so consecutive edges, which share a vertex, do not count).
fn edges_cross(a: Line<f64>, b: Line<f64>) -> bool {
    a.intersects(&b) && a.start != b.end && a.end != b.start
}

/// Every pair of edges under [`edges_cross`]: O(n²), for short rings only.
fn pairwise(coords: &[Coord<f64>]) -> bool {
    let edges: Vec<Line<f64>> = coords.windows(2).map(|w| Line::new(w[0], w[1])).collect();
    edges
        .iter()
        .enumerate()
        .any(|(i, &a)| edges[i + 1..].iter().any(|&b| edges_cross(a, b)))
}

/// -0.0 and 0.0 are the same coordinate (`==`), so they must sort and hash as one.
fn canonical(c: Coord<f64>) -> Coord<f64> {
    Coord {
        x: c.x + 0.0,
        y: c.y + 0.0,
    }
}

/// Whether any two edges of the ring cross under [`edges_cross`] — `geo`'s
/// `linestring_has_self_intersection`, in O(n log n).
///
/// Why the reductions keep the answer (coordinates compared with `==`, as the rule does):
/// - A coordinate in two separate runs of the cyclic vertex sequence: the two edges entering
///   those runs both end there, and neither ends where the other starts: they cross.
/// - Otherwise a zero-length edge at P counts only against an edge through P's interior, and
///   that edge also crosses one of the two edges at P unless the ring has only three distinct
///   vertices. So with four or more, dropping repeats keeps the answer, and afterwards
///   "ends where the other starts" is exactly "consecutive in the ring".
/// - A spike (an edge folding back along the previous one) puts a vertex inside a
///   non-consecutive edge once there are four or more vertices: it crosses.
/// - What is left, unique vertices where only consecutive edges meet (at their shared vertex),
///   is the case a Shamos–Hoey sweep decides.
pub fn ring_crosses_itself(ring: &LineString<f64>) -> bool {
    let coords = &ring.0;
    let closed = coords.first() == coords.last();
    let finite = coords.iter().all(|c| c.x.is_finite() && c.y.is_finite());
    if coords.len() <= PAIRWISE_EDGES + 1 || !closed || !finite {
        // `Polygon::new` closes rings and `PolygonArea::new` refuses non-finite coordinates
        // first, so long rings always take the sweep.
        return pairwise(coords);
    }
    // The cyclic vertex sequence with runs of one coordinate merged.
    let mut distinct: Vec<Coord<f64>> = Vec::with_capacity(coords.len());
    for &c in &coords[..coords.len() - 1] {
        let c = canonical(c);
        if distinct.last() != Some(&c) {
            distinct.push(c);
        }
    }
    if distinct.len() > 1 && distinct.first() == distinct.last() {
        distinct.pop();
    }
    let mut seen = HashSet::with_capacity(distinct.len());
    if !distinct
        .iter()
        .all(|c| seen.insert((c.x.to_bits(), c.y.to_bits())))
    {
        return true;
    }
    if distinct.len() <= 3 {
        // A zero-length edge still counts against an edge through it here; runs capped at two
        // copies keep every edge and every zero-length one, so the pairwise test stays cheap.
        let mut capped: Vec<Coord<f64>> = Vec::new();
        for &c in coords {
            let n = capped.len();
            if n >= 2 && capped[n - 1] == c && capped[n - 2] == c {
                continue;
            }
            capped.push(c);
        }
        return pairwise(&capped);
    }
    if has_spike(&distinct) {
        return true;
    }
    Sweep::new(&distinct).any_crossing()
}

fn orient(p: Coord<f64>, q: Coord<f64>, r: Coord<f64>) -> Orientation {
    RobustKernel::orient2d(p, q, r)
}

/// An edge folding back along the edge before it (exactly collinear, opposite direction).
fn has_spike(v: &[Coord<f64>]) -> bool {
    let n = v.len();
    (0..n).any(|i| {
        let (a, b, c) = (v[(i + n - 1) % n], v[i], v[(i + 1) % n]);
        if orient(a, b, c) != Orientation::Collinear {
            return false;
        }
        // Signs of the differences are exact, unlike a dot product that may underflow.
        let opposite = |u: f64, w: f64| (u > 0.0 && w < 0.0) || (u < 0.0 && w > 0.0);
        opposite(b.x - a.x, c.x - b.x) || opposite(b.y - a.y, c.y - b.y)
    })
}

fn lex(a: Coord<f64>, b: Coord<f64>) -> Ordering {
    a.x.total_cmp(&b.x).then(a.y.total_cmp(&b.y))
}

/// One edge, from its lexicographically smaller end (`left`) to the larger.
struct Edge {
    left: Coord<f64>,
    right: Coord<f64>,
    /// Position in the ring: edge i runs from vertex i to vertex i + 1.
    index: usize,
}

/// The sweep's state: edges, and the pairs the order found touching (a vertex on an edge).
struct Sweep {
    edges: Vec<Edge>,
    touched: RefCell<Vec<(usize, usize)>>,
}

/// An edge in the sweep's status, ordered bottom to top where the sweep line crosses it.
/// `Ord` needs the edges, hence the reference; the order is consistent for edges that do not
/// cross, which holds until the sweep stops at the first crossing.
struct Live<'a> {
    sweep: &'a Sweep,
    edge: usize,
}

impl PartialEq for Live<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.edge == other.edge
    }
}
impl Eq for Live<'_> {}
impl PartialOrd for Live<'_> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Live<'_> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.sweep.below(self.edge, other.edge)
    }
}

enum Event {
    Remove,
    Insert,
}

impl Sweep {
    fn new(vertices: &[Coord<f64>]) -> Sweep {
        let n = vertices.len();
        let edges = (0..n)
            .map(|i| {
                let (p, q) = (vertices[i], vertices[(i + 1) % n]);
                let (left, right) = if lex(p, q) == Ordering::Less {
                    (p, q)
                } else {
                    (q, p)
                };
                Edge {
                    left,
                    right,
                    index: i,
                }
            })
            .collect();
        Sweep {
            edges,
            touched: RefCell::new(Vec::new()),
        }
    }

    /// Whether `a` lies below `b` where the sweep crosses both (both live, not crossing): the
    /// later-starting edge's left end is above or below the other's line. A left end lying on
    /// the other edge is a touch, recorded for [`Sweep::crossing`] to confirm.
    fn below(&self, a: usize, b: usize) -> Ordering {
        if a == b {
            return Ordering::Equal;
        }
        let (ea, eb) = (&self.edges[a], &self.edges[b]);
        let (early, late, flipped) = if lex(ea.left, eb.left) != Ordering::Greater {
            (ea, eb, false)
        } else {
            (eb, ea, true)
        };
        let mut side = orient(early.left, early.right, late.left);
        if side == Orientation::Collinear {
            if late.left != early.left {
                self.touched.borrow_mut().push((a, b));
            }
            side = orient(early.left, early.right, late.right);
        }
        // Late relative to early: counter-clockwise is above.
        let late_vs_early = match side {
            Orientation::CounterClockwise => Ordering::Greater,
            Orientation::Clockwise => Ordering::Less,
            Orientation::Collinear => {
                self.touched.borrow_mut().push((a, b));
                late.index.cmp(&early.index)
            }
        };
        if flipped {
            late_vs_early
        } else {
            late_vs_early.reverse()
        }
    }

    /// Whether two edges cross under the ring's rule (consecutive edges never do here).
    fn crossing(&self, a: usize, b: usize) -> bool {
        let n = self.edges.len();
        if (a + 1) % n == b || (b + 1) % n == a || a == b {
            return false;
        }
        let (ea, eb) = (&self.edges[a], &self.edges[b]);
        Line::new(ea.left, ea.right).intersects(&Line::new(eb.left, eb.right))
    }

    fn touch_crosses(&self) -> bool {
        let touched = std::mem::take(&mut *self.touched.borrow_mut());
        touched.into_iter().any(|(a, b)| self.crossing(a, b))
    }

    fn any_crossing(&self) -> bool {
        let mut events: Vec<(Coord<f64>, Event, usize)> = Vec::with_capacity(2 * self.edges.len());
        for (i, e) in self.edges.iter().enumerate() {
            events.push((e.left, Event::Insert, i));
            events.push((e.right, Event::Remove, i));
        }
        // At one point, edges ending there leave before edges starting there enter, so an
        // entering edge never meets a live edge at that edge's end.
        events.sort_by(|(p, kp, _), (q, kq, _)| {
            lex(*p, *q).then_with(|| match (kp, kq) {
                (Event::Remove, Event::Insert) => Ordering::Less,
                (Event::Insert, Event::Remove) => Ordering::Greater,
                _ => Ordering::Equal,
            })
        });
        // The key reaches the touch log's cell, which records touches and never changes the
        // order.
        #[allow(clippy::mutable_key_type)]
        let mut live: BTreeSet<Live<'_>> = BTreeSet::new();
        for (_, kind, edge) in events {
            let key = Live { sweep: self, edge };
            let below = live.range(..&key).next_back().map(|l| l.edge);
            let above = live
                .range((Bound::Excluded(&key), Bound::Unbounded))
                .next()
                .map(|l| l.edge);
            if self.touch_crosses() {
                return true;
            }
            match kind {
                Event::Insert => {
                    live.insert(Live { sweep: self, edge });
                    if self.touch_crosses()
                        || below.is_some_and(|b| self.crossing(b, edge))
                        || above.is_some_and(|a| self.crossing(a, edge))
                    {
                        return true;
                    }
                }
                Event::Remove => {
                    live.remove(&key);
                    if self.touch_crosses() {
                        return true;
                    }
                    if let (Some(b), Some(a)) = (below, above)
                        && self.crossing(b, a)
                    {
                        return true;
                    }
                }
            }
        }
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::Validation;
    use proptest::prelude::*;

    /// The O(n²) rule as `geo` 0.33 wrote it (`linestring_has_self_intersection`): every
    /// ordered pair of distinct edges. The oracle for the sweep.
    fn pairwise_oracle(ring: &LineString<f64>) -> bool {
        for (i, line) in ring.lines().enumerate() {
            for (j, other) in ring.lines().enumerate() {
                if i != j
                    && line.intersects(&other)
                    && line.start != other.end
                    && line.end != other.start
                {
                    return true;
                }
            }
        }
        false
    }

    fn closed(points: Vec<(f64, f64)>) -> LineString<f64> {
        let mut ring: LineString<f64> = points.into();
        ring.close();
        ring
    }

    /// A star-shaped ring: vertices at increasing angles around a centre, so valid.
    fn star(n: usize, seed: u64) -> Vec<(f64, f64)> {
        let mut x = seed | 1;
        (0..n)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let r = 1.0 + (x % 1000) as f64 / 1000.0;
                let a = i as f64 / n as f64 * std::f64::consts::TAU;
                (24.9 + r * a.cos() * 0.01, 60.1 + r * a.sin() * 0.01)
            })
            .collect()
    }

    #[test]
    fn long_rings_are_decided_like_the_pairwise_rule() {
        let ring = closed(star(2_000, 7));
        assert!(!ring_crosses_itself(&ring));
        assert!(!pairwise_oracle(&ring));
        // Swap two vertices far apart: edges now cross.
        let mut points = star(2_000, 7);
        points.swap(10, 1_000);
        let ring = closed(points);
        assert!(pairwise_oracle(&ring));
        assert!(ring_crosses_itself(&ring));
        // A vertex visited twice (a pinch) and a spike.
        let mut points = star(100, 3);
        points.insert(50, points[10]);
        assert!(ring_crosses_itself(&closed(points.clone())));
        assert!(pairwise_oracle(&closed(points)));
        let mut points = star(100, 3);
        let (a, b) = (points[20], points[21]);
        points.insert(22, ((a.0 + b.0) / 2.0, (a.1 + b.1) / 2.0));
        points.swap(21, 22);
        let ring = closed(points);
        assert_eq!(ring_crosses_itself(&ring), pairwise_oracle(&ring));
    }

    /// Points on a small grid: repeats, collinear runs, spikes, vertical and horizontal edges
    /// and vertices on edges are common, which is where a sweep goes wrong.
    fn grid_ring() -> impl Strategy<Value = Vec<(f64, f64)>> {
        prop::collection::vec((0u8..5, 0u8..5), 3..40).prop_map(|v| {
            v.into_iter()
                .map(|(x, y)| (f64::from(x) * 0.5 - 1.0, f64::from(y) * 0.25))
                .collect()
        })
    }

    /// A star-shaped ring with jitter and some vertices snapped to a grid: mostly valid, with
    /// near-degenerate touches.
    fn jittered_star() -> impl Strategy<Value = Vec<(f64, f64)>> {
        (
            20usize..120,
            any::<u64>(),
            prop::collection::vec((0usize..120, 0usize..120), 0..3),
        )
            .prop_map(|(n, seed, swaps)| {
                let mut points = star(n, seed);
                for p in points.iter_mut().step_by(5) {
                    p.0 = (p.0 * 2000.0).round() / 2000.0;
                    p.1 = (p.1 * 2000.0).round() / 2000.0;
                }
                for (a, b) in swaps {
                    points.swap(a % n, b % n);
                }
                points
            })
    }

    /// A star-shaped ring snapped to a coarse grid: vertices land on edges and on each other,
    /// edges line up, and some rings stay valid.
    fn snapped_star() -> impl Strategy<Value = Vec<(f64, f64)>> {
        (5usize..60, any::<u64>(), 1.0f64..8.0).prop_map(|(n, seed, cells)| {
            star(n, seed)
                .into_iter()
                .map(|(x, y)| {
                    let snap =
                        |v: f64, o: f64| ((v - o) * 100.0 * cells).round() / (100.0 * cells) + o;
                    (snap(x, 24.9), snap(y, 60.1))
                })
                .collect()
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(5000))]
        #[test]
        fn sweep_agrees_with_the_pairwise_rule(points in prop_oneof![grid_ring(), jittered_star(), snapped_star()]) {
            let ring = closed(points);
            prop_assert_eq!(ring_crosses_itself(&ring), pairwise_oracle(&ring), "{:?}", ring);
        }

        #[test]
        fn first_problem_is_geos(
            a in grid_ring(),
            b in grid_ring(),
            holes in prop::collection::vec(grid_ring(), 0..2),
        ) {
            let shape = MultiPolygon(vec![
                Polygon::new(a.into(), holes.into_iter().map(LineString::from).collect()),
                Polygon::new(b.into(), vec![]),
            ]);
            prop_assert_eq!(first_problem(&shape), shape.check_validation().err());
        }
    }
}
