//! `CustomerIndex`: an R-tree of service points that answers "which customers are inside this
//! [`Area`]?" with exactly the answer of [`Area::contains`], only much faster.
//!
//! How each shape is answered (details in the modules):
//! * **circles**: walk the tree; nodes outside the circle's envelope are skipped, nodes whose
//!   four corners are proven inside are taken whole, and each remaining point is decided by a
//!   flat metric frozen at the centre (no trigonometry), then by its haversine distance, with
//!   provable bounds against the ellipsoid (`sphere::Local`, `sphere::Band`); only points
//!   in the thin band where neither can tell go to the exact geodesic rule;
//! * **polygons**: nodes are classified against the polygon's edges with exact predicates as
//!   inside (taken whole), outside (skipped) or crossing the boundary (descended into); points
//!   in crossing nodes are decided by the exact rule;
//! * **corridors**: nodes and points outside the buffered envelopes of the line's great-circle
//!   arcs are skipped; nodes proven within the buffer (a bound from the box's centre, with
//!   the slack of geo's nearest-point quirks) are taken whole; each remaining point is decided
//!   from unit-vector bounds against the segments whose boxes hold it, and only points in a
//!   thin shell around the buffer's edge go to the line's nearest point as the exact rule
//!   finds it;
//! * **unions**: each part as above, the ids merged.
//!
//! Pure: no I/O, no async. Thread-safe for concurrent reads (`&self` queries).

use std::fmt;

use outagecast_core::area::{Area, Circle, LonLat};
use outagecast_core::customer::CustomerId;
use rstar::primitives::GeomWithData;
use rstar::{AABB, ParentNode, RStarInsertionStrategy, RTree, RTreeNode, RTreeParams};

mod circle;
mod corridor;
mod polygon;
mod sphere;

/// What the tree stores: the service point as `[lon, lat]` in degrees, and the customer id.
/// Kept in `f64` so that every point is exactly the `LonLat` the exact rule would see.
type Entry = GeomWithData<[f64; 2], i64>;

/// Node size of the tree. rstar's default (3..6 children) makes a deep tree whose bulk load
/// spends most of its time repartitioning and copying slabs: on 10M points it took 6.3 s, 16
/// children 3.8 s, 24 and 32 children about 3.0 s, 64 children 4.8 s (one thread; uniform
/// and then population-weighted points). Queries, which test a node's children linearly,
/// measured the same at 16 and 24.
#[derive(Debug, Clone, Copy)]
struct NodeParams;

impl RTreeParams for NodeParams {
    const MIN_SIZE: usize = 8;
    const MAX_SIZE: usize = 24;
    const REINSERTION_COUNT: usize = 4;
    type DefaultInsertionStrategy = RStarInsertionStrategy;
}

type Tree = RTree<Entry, NodeParams>;

/// Below this many points per shard the build is quick anyway and one tree is simplest.
const MIN_POINTS_PER_SHARD: usize = 250_000;
/// More shards than this would only add per-query root visits.
const MAX_SHARDS: usize = 8;

/// The customers' service points, indexed for selection by [`Area`].
///
/// The index is a multiset of `(CustomerId, LonLat)` entries: several customers may share a
/// point (an apartment block), and selections return each id at most once.
///
/// ```
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_core::customer::CustomerId;
/// use outagecast_index::CustomerIndex;
///
/// let at = |lon, lat| LonLat::parse(lon, lat).unwrap();
/// let index = CustomerIndex::bulk_load(vec![
///     (CustomerId(1), at(24.9414, 60.1710)), // at the station
///     (CustomerId(2), at(24.9414, 60.1710)), // same building
///     (CustomerId(3), at(24.9440, 60.1712)), // ~145 m east
///     (CustomerId(4), at(24.9500, 60.1710)), // ~477 m east
/// ]);
/// let area = Area::Circle(Circle::new(at(24.9414, 60.1710), 300.0).unwrap());
/// assert_eq!(index.select(&area), vec![CustomerId(1), CustomerId(2), CustomerId(3)]);
/// assert_eq!(index.count(&area), 3);
/// ```
#[derive(Clone)]
pub struct CustomerIndex {
    /// Independent trees over longitude slices, bulk-loaded in parallel (rstar's bulk load is
    /// single-threaded, and one thread could not build 10M points in the 2 s budget). Queries
    /// visit every shard; one whose root envelope misses the area costs a single test.
    shards: Vec<Tree>,
    /// `splits[i]` is the smallest longitude bulk-loaded into shard `i + 1`; shard `i` holds
    /// longitudes up to it (ties may sit on either side). New points go by this rule.
    splits: Vec<f64>,
}

impl fmt::Debug for CustomerIndex {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerIndex")
            .field("len", &self.len())
            .field("shards", &self.shards.len())
            .finish()
    }
}

impl Default for CustomerIndex {
    fn default() -> Self {
        CustomerIndex::bulk_load(Vec::new())
    }
}

impl CustomerIndex {
    /// Builds the index in one go (rstar's bulk load, one shard per available core for large
    /// inputs). Duplicate points and duplicate entries are kept.
    pub fn bulk_load(points: Vec<(CustomerId, LonLat)>) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        let shards = cores
            .min(MAX_SHARDS)
            .min(points.len() / MIN_POINTS_PER_SHARD)
            .max(1);
        Self::bulk_load_sharded(points, shards)
    }

    /// [`CustomerIndex::bulk_load`] with a chosen number of shards; for tests and benchmarks.
    #[doc(hidden)]
    pub fn bulk_load_sharded(points: Vec<(CustomerId, LonLat)>, shards: usize) -> Self {
        // Same size and alignment, so this reuses the allocation.
        let entries: Vec<Entry> = points
            .into_iter()
            .map(|(id, p)| Entry::new([p.lon(), p.lat()], id.0))
            .collect();
        let (parts, splits) = split_by_longitude(entries, shards.max(1));

        // One thread per shard. A shard whose thread could not be started is built here after
        // the others: the closure only borrowed its slot, so the points are still there.
        let mut slots: Vec<Option<Vec<Entry>>> = parts.into_iter().map(Some).collect();
        let mut built: Vec<Option<Tree>> = slots.iter().map(|_| None).collect();
        if slots.len() > 1 {
            std::thread::scope(|scope| {
                for (slot, out) in slots.iter_mut().zip(built.iter_mut()) {
                    let _started = std::thread::Builder::new()
                        .name("index-bulk-load".into())
                        .spawn_scoped(scope, move || {
                            if let Some(part) = slot.take() {
                                *out = Some(Tree::bulk_load_with_params(part));
                            }
                        });
                }
            });
        }
        let shards = slots
            .into_iter()
            .zip(built)
            .map(|(slot, out)| match (out, slot) {
                (Some(tree), _) => tree,
                (None, Some(part)) => Tree::bulk_load_with_params(part),
                (None, None) => Tree::new_with_params(),
            })
            .collect();
        CustomerIndex { shards, splits }
    }

    /// Number of entries (a customer inserted at two points counts twice).
    pub fn len(&self) -> usize {
        self.shards.iter().map(RTree::size).sum()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds a customer's service point.
    pub fn insert(&mut self, id: CustomerId, at: LonLat) {
        let shard = self.shard_for(at.lon());
        if let Some(tree) = self.shards.get_mut(shard) {
            tree.insert(Entry::new([at.lon(), at.lat()], id.0));
        }
    }

    /// Removes one entry for `id` at exactly `at`; false if there was none.
    pub fn remove(&mut self, id: CustomerId, at: LonLat) -> bool {
        let entry = Entry::new([at.lon(), at.lat()], id.0);
        let first = self.shard_for(at.lon());
        // Bulk loading may have put points on a split longitude on either side of it.
        let order = std::iter::once(first).chain((0..self.shards.len()).filter(|&s| s != first));
        for shard in order {
            if let Some(tree) = self.shards.get_mut(shard)
                && tree.remove(&entry).is_some()
            {
                return true;
            }
        }
        false
    }

    /// The customers inside `area` by exactly the rule of [`Area::contains`], sorted ascending,
    /// each once.
    ///
    /// ```
    /// use outagecast_core::area::{polygon_from_ring, Area, LonLat};
    /// use outagecast_core::customer::CustomerId;
    /// use outagecast_index::CustomerIndex;
    ///
    /// let at = |lon, lat| LonLat::parse(lon, lat).unwrap();
    /// let points = (0..100)
    ///     .map(|i| (CustomerId(i), at(24.90 + 0.001 * (i % 10) as f64, 60.10 + 0.001 * (i / 10) as f64)))
    ///     .collect();
    /// let index = CustomerIndex::bulk_load(points);
    /// // A square over the first 5×5 points of the 10×10 grid; its edges pass through points,
    /// // and the boundary counts as inside.
    /// let square = polygon_from_ring(&[
    ///     [24.90, 60.10], [24.904, 60.10], [24.904, 60.104], [24.90, 60.104], [24.90, 60.10],
    /// ]).unwrap();
    /// assert_eq!(index.count(&Area::Polygon(square)), 25);
    /// ```
    pub fn select(&self, area: &Area) -> Vec<CustomerId> {
        let mut ids = Vec::new();
        self.gather(area, &mut ids);
        finish(ids)
    }

    /// Appends the ids inside `area` to `ids`, unsorted, possibly repeated.
    fn gather(&self, area: &Area, ids: &mut Vec<i64>) {
        match area {
            Area::Circle(c) => self.walk(&circle::CircleQuery::new(c), ids),
            Area::Polygon(p) => self.walk(&polygon::PolygonQuery::new(p), ids),
            Area::Corridor(c) => self.walk(&corridor::CorridorQuery::new(c), ids),
            // Inside any part: each part is answered on its own and `finish` drops the ids
            // that several parts found. (`Area::union` flattens, so parts are never unions;
            // recursing keeps this total anyway.)
            Area::Union(u) => {
                for part in u.parts() {
                    self.gather(part, ids);
                }
            }
        }
    }

    /// How many customers [`CustomerIndex::select`] would return.
    pub fn count(&self, area: &Area) -> usize {
        self.select(area).len()
    }

    /// A circle selected by haversine distance alone: the same walk and candidates as
    /// [`CustomerIndex::select`], minus the exact geodesic rule and the node shortcut. It is
    /// NOT the product rule (it misses or adds points near the edge); it exists so that the
    /// benchmark can show what the exactness costs.
    #[doc(hidden)]
    pub fn select_haversine(&self, circle: &Circle) -> Vec<CustomerId> {
        let query = circle::HaversineOnly::new(circle);
        let mut ids = Vec::new();
        self.walk(&query, &mut ids);
        finish(ids)
    }

    fn shard_for(&self, lon: f64) -> usize {
        self.splits.partition_point(|&split| split <= lon)
    }

    fn walk<Q: Query>(&self, query: &Q, out: &mut Vec<i64>) {
        for tree in &self.shards {
            walk(tree.root(), query, out);
        }
    }
}

/// Splits `entries` into `shards` parts of (nearly) equal size by longitude, returning the
/// parts and the smallest longitude of each part after the first.
fn split_by_longitude(mut rest: Vec<Entry>, shards: usize) -> (Vec<Vec<Entry>>, Vec<f64>) {
    let mut parts = Vec::with_capacity(shards);
    let mut splits = Vec::with_capacity(shards.saturating_sub(1));
    let chunk = rest.len().div_ceil(shards).max(1);
    while parts.len() + 1 < shards && rest.len() > chunk {
        // After this, everything from `chunk` on is ≥ the element at `chunk` by longitude.
        rest.select_nth_unstable_by(chunk, |a, b| a.geom()[0].total_cmp(&b.geom()[0]));
        let tail = rest.split_off(chunk);
        if let Some(first) = tail.first() {
            splits.push(first.geom()[0]);
        }
        parts.push(std::mem::replace(&mut rest, tail));
    }
    parts.push(rest);
    (parts, splits)
}

/// Sorts and deduplicates the selected ids.
fn finish(mut ids: Vec<i64>) -> Vec<CustomerId> {
    sort_ids(&mut ids);
    ids.dedup();
    ids.into_iter().map(CustomerId).collect()
}

/// Below this many ids a comparison sort is as fast as setting up the radix passes.
const RADIX_SORT_FROM: usize = 4096;

/// Sorts ids ascending. Large selections (a polygon over 200k customers) come out of the tree
/// in spatial order, i.e. random id order, and a comparison sort of them took two thirds of
/// the query; an LSD radix sort over the bytes that actually vary (ids usually fit in 3–4
/// bytes) is several times faster.
fn sort_ids(ids: &mut [i64]) {
    if ids.len() < RADIX_SORT_FROM {
        ids.sort_unstable();
        return;
    }
    // Flipping the sign bit makes unsigned order equal signed order.
    const SIGN: u64 = 1 << 63;
    let mut keys: Vec<u64> = ids.iter().map(|&id| id as u64 ^ SIGN).collect();
    // Bytes in which some key differs from the first; only those need a pass.
    let first = keys.first().copied().unwrap_or(0);
    let varying = keys.iter().fold(0u64, |acc, &k| acc | (k ^ first));
    let bytes: Vec<u32> = (0..8)
        .filter(|b| (varying >> (b * 8)) & 0xff != 0)
        .collect();
    let mut spare = vec![0u64; keys.len()];
    for shift in bytes.iter().map(|b| b * 8) {
        let mut offsets = [0usize; 256];
        for &k in &keys {
            offsets[((k >> shift) & 0xff) as usize] += 1;
        }
        let mut sum = 0;
        for offset in &mut offsets {
            let count = *offset;
            *offset = sum;
            sum += count;
        }
        for &k in &keys {
            let digit = ((k >> shift) & 0xff) as usize;
            spare[offsets[digit]] = k;
            offsets[digit] += 1;
        }
        std::mem::swap(&mut keys, &mut spare);
    }
    for (id, k) in ids.iter_mut().zip(keys) {
        *id = (k ^ SIGN) as i64;
    }
}

/// How a query judges a whole tree node by its envelope.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cover {
    /// Every point of the envelope is selected: take the node whole.
    Inside,
    /// No point of the envelope is selected: skip the node.
    Outside,
    /// Either may hold: look at the children.
    Partial,
}

/// A selection rule as the tree walk sees it. `point` must be exactly the area's rule;
/// `node` may only answer `Inside`/`Outside` when that holds for every point of the envelope.
trait Query {
    fn node(&self, envelope: &AABB<[f64; 2]>) -> Cover;
    fn point(&self, at: [f64; 2]) -> bool;
}

fn walk<Q: Query>(node: &ParentNode<Entry>, query: &Q, out: &mut Vec<i64>) {
    for child in node.children() {
        match child {
            RTreeNode::Leaf(entry) => {
                if query.point(*entry.geom()) {
                    out.push(entry.data);
                }
            }
            RTreeNode::Parent(parent) => match query.node(&parent.envelope()) {
                Cover::Inside => take_all(parent, out),
                Cover::Outside => {}
                Cover::Partial => walk(parent, query, out),
            },
        }
    }
}

fn take_all(node: &ParentNode<Entry>, out: &mut Vec<i64>) {
    for child in node.children() {
        match child {
            RTreeNode::Leaf(entry) => out.push(entry.data),
            RTreeNode::Parent(parent) => take_all(parent, out),
        }
    }
}

/// A point of the tree as the exact rule takes it. Every stored point came from a valid
/// `LonLat`, so this cannot fail; if it somehow did, the point is not selected.
fn lon_lat(at: [f64; 2]) -> Option<LonLat> {
    LonLat::parse(at[0], at[1]).ok()
}

/// Whether two closed lon/lat rectangles share a point.
fn rects_meet(a: &AABB<[f64; 2]>, b: &AABB<[f64; 2]>) -> bool {
    let (al, au, bl, bu) = (a.lower(), a.upper(), b.lower(), b.upper());
    al[0] <= bu[0] && bl[0] <= au[0] && al[1] <= bu[1] && bl[1] <= au[1]
}

/// Whether a point lies in a closed lon/lat rectangle.
fn rect_holds(r: &AABB<[f64; 2]>, at: [f64; 2]) -> bool {
    let (l, u) = (r.lower(), r.upper());
    l[0] <= at[0] && at[0] <= u[0] && l[1] <= at[1] && at[1] <= u[1]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::area::{Corridor, polygon_from_ring};

    fn at(lon: f64, lat: f64) -> LonLat {
        LonLat::parse(lon, lat).unwrap()
    }

    fn circle(lon: f64, lat: f64, r: f64) -> Area {
        Area::Circle(Circle::new(at(lon, lat), r).unwrap())
    }

    fn grid(n: i64) -> Vec<(CustomerId, LonLat)> {
        (0..n * n)
            .map(|i| {
                let (x, y) = ((i % n) as f64, (i / n) as f64);
                (CustomerId(i), at(24.9 + x * 1e-4, 60.1 + y * 1e-4))
            })
            .collect()
    }

    #[test]
    fn empty_index_selects_nothing() {
        let index = CustomerIndex::default();
        assert!(index.is_empty());
        assert_eq!(index.len(), 0);
        assert!(index.select(&circle(24.9, 60.1, 1000.0)).is_empty());
        let square =
            polygon_from_ring(&[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]])
                .unwrap();
        assert_eq!(index.count(&Area::Polygon(square)), 0);
    }

    #[test]
    fn insert_then_select_then_remove() {
        let mut index = CustomerIndex::bulk_load(grid(20));
        let area = circle(24.9, 60.1, 50.0);
        let before = index.select(&area);
        assert!(before.contains(&CustomerId(0)));

        index.insert(CustomerId(1_000), at(24.9001, 60.1001));
        assert_eq!(index.len(), 401);
        let after = index.select(&area);
        assert_eq!(after.len(), before.len() + 1);
        assert!(after.contains(&CustomerId(1_000)));

        assert!(index.remove(CustomerId(1_000), at(24.9001, 60.1001)));
        assert!(
            !index.remove(CustomerId(1_000), at(24.9001, 60.1001)),
            "already gone"
        );
        assert_eq!(index.select(&area), before);

        // Removing needs the exact point, and the right id at it.
        assert!(!index.remove(CustomerId(0), at(24.90001, 60.1)));
        assert!(!index.remove(CustomerId(1), at(24.9, 60.1)));
        assert!(index.remove(CustomerId(0), at(24.9, 60.1)));
        assert!(!index.select(&area).contains(&CustomerId(0)));
        assert_eq!(index.len(), 399);
    }

    #[test]
    fn shared_points_and_repeated_entries() {
        let p = at(24.9414, 60.1710);
        let mut index = CustomerIndex::bulk_load((0..50).map(|i| (CustomerId(i), p)).collect());
        index.insert(CustomerId(7), p); // the same entry twice
        assert_eq!(index.len(), 51);
        let area = circle(24.9414, 60.1710, 1.0);
        assert_eq!(index.count(&area), 50, "ids are reported once");
        assert!(index.remove(CustomerId(7), p));
        assert_eq!(index.count(&area), 50, "one entry for 7 is left");
        assert!(index.remove(CustomerId(7), p));
        assert_eq!(index.count(&area), 49);
    }

    #[test]
    fn shards_agree_with_one_tree_and_take_inserts_and_removes() {
        let points = grid(60);
        let single = CustomerIndex::bulk_load_sharded(points.clone(), 1);
        let mut sharded = CustomerIndex::bulk_load_sharded(points.clone(), 5);
        assert_eq!(sharded.shards.len(), 5);
        assert_eq!(sharded.splits.len(), 4);
        assert_eq!(sharded.len(), single.len());
        let areas = [
            circle(24.9030, 60.1030, 150.0),
            circle(24.9, 60.1, 10_000.0),
            Area::Corridor(
                Corridor::new(vec![(24.9, 60.1), (24.906, 60.106)].into(), 40.0).unwrap(),
            ),
        ];
        for area in &areas {
            assert_eq!(sharded.select(area), single.select(area));
        }
        // A point on a split longitude, then every original point, removed from the shards.
        let split = sharded.splits[1];
        sharded.insert(CustomerId(-5), at(split, 60.1));
        assert!(sharded.remove(CustomerId(-5), at(split, 60.1)));
        for (id, p) in &points {
            assert!(sharded.remove(*id, *p), "{id:?}");
        }
        assert!(sharded.is_empty());
    }

    #[test]
    fn radix_sort_matches_sort_unstable() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let shapes: [&dyn Fn(u64) -> i64; 4] = [
            &|x| (x % 10_000_000) as i64, // typical account ids: 3 bytes vary
            &|x| x as i64,                // every byte varies, negatives too
            &|x| (x % 1000) as i64 - 500, // around zero
            &|_| 42,                      // all equal
        ];
        for shape in shapes {
            for n in [0, 1, 4095, 4096, 50_000] {
                let mut ids: Vec<i64> = (0..n).map(|_| shape(next())).collect();
                ids.extend([i64::MIN, i64::MAX, 0, -1].iter().take(n.min(4)));
                let mut expected = ids.clone();
                expected.sort_unstable();
                sort_ids(&mut ids);
                assert_eq!(ids, expected);
            }
        }
    }

    #[test]
    fn split_by_longitude_orders_the_parts() {
        let entries: Vec<Entry> = (0..1000)
            .map(|i| Entry::new([f64::from((i * 7919) % 360) - 180.0, 0.0], i64::from(i)))
            .collect();
        let (parts, splits) = split_by_longitude(entries, 3);
        assert_eq!(
            parts.iter().map(Vec::len).collect::<Vec<_>>(),
            [334, 334, 332]
        );
        for (i, split) in splits.iter().enumerate() {
            assert!(parts[i].iter().all(|e| e.geom()[0] <= *split));
            assert!(parts[i + 1].iter().all(|e| e.geom()[0] >= *split));
        }
        let (parts, splits) = split_by_longitude(Vec::new(), 4);
        assert_eq!(parts.len(), 1);
        assert!(splits.is_empty());
    }
}
