//! Polygons: planar lon/lat point-in-multipolygon with holes, boundary inside.
//!
//! Tree nodes are classified against the polygon's edges with exact predicates. A closed
//! rectangle that no edge touches is connected and misses the boundary, so it lies wholly in
//! the polygon's interior or wholly outside it, and one corner tells which. That is the same
//! question as `PolygonArea::covers_rect` (and the "outside" half for free), answered with an
//! R-tree of edges instead of a general relate computation.

use geo::kernels::{Kernel, Orientation, RobustKernel};
use geo::{BoundingRect, Coord};
use outagecast_core::area::PolygonArea;
use rstar::primitives::Line;
use rstar::{AABB, RTree};

use crate::{Cover, Query, lon_lat, rect_holds, rects_meet};

pub(crate) struct PolygonQuery<'a> {
    area: &'a PolygonArea,
    bbox: AABB<[f64; 2]>,
    /// Every edge of every ring (shells and holes).
    edges: RTree<Line<[f64; 2]>>,
}

impl<'a> PolygonQuery<'a> {
    pub(crate) fn new(area: &'a PolygonArea) -> Self {
        let mut edges = Vec::new();
        for polygon in area.shape() {
            for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
                edges.extend(
                    ring.lines()
                        .map(|l| Line::new([l.start.x, l.start.y], [l.end.x, l.end.y])),
                );
            }
        }
        let bbox = match area.shape().bounding_rect() {
            Some(r) => AABB::from_corners([r.min().x, r.min().y], [r.max().x, r.max().y]),
            None => rstar::Envelope::new_empty(),
        };
        PolygonQuery {
            area,
            bbox,
            edges: RTree::bulk_load(edges),
        }
    }

    /// Inside or Outside only when that holds for every point of the closed rectangle.
    pub(crate) fn classify(&self, env: &AABB<[f64; 2]>) -> Cover {
        if self
            .edges
            .locate_in_envelope_intersecting(env)
            .any(|edge| segment_meets_rect(edge.from, edge.to, env))
        {
            return Cover::Partial;
        }
        // No edge touches the closed rectangle, so no point of it is on the boundary and they
        // all answer alike: ask the exact rule at one corner.
        match lon_lat(env.lower()) {
            Some(corner) if self.area.contains(corner) => Cover::Inside,
            Some(_) => Cover::Outside,
            None => Cover::Partial,
        }
    }
}

/// Whether the segment `a`–`b` shares a point with the closed rectangle, exactly. The caller
/// has already checked that their bounding boxes meet (the edge tree does); what is left of
/// the separating-axis test for two convex shapes is the segment's own normal: they are
/// disjoint iff all four corners lie strictly on one side of the segment's line. Robust
/// orientation makes the answer exact, so nothing the polygon touches is ever taken whole.
fn segment_meets_rect(a: [f64; 2], b: [f64; 2], env: &AABB<[f64; 2]>) -> bool {
    let (lo, hi) = (env.lower(), env.upper());
    let (a, b) = (Coord { x: a[0], y: a[1] }, Coord { x: b[0], y: b[1] });
    let corners = [
        [lo[0], lo[1]],
        [lo[0], hi[1]],
        [hi[0], lo[1]],
        [hi[0], hi[1]],
    ];
    let mut sides = corners
        .iter()
        .map(|c| RobustKernel::orient2d(a, b, Coord { x: c[0], y: c[1] }));
    let Some(first) = sides.next() else {
        return true;
    };
    first == Orientation::Collinear || sides.any(|s| s != first)
}

impl Query for PolygonQuery<'_> {
    fn node(&self, env: &AABB<[f64; 2]>) -> Cover {
        if rects_meet(&self.bbox, env) {
            self.classify(env)
        } else {
            Cover::Outside
        }
    }

    fn point(&self, at: [f64; 2]) -> bool {
        rect_holds(&self.bbox, at) && lon_lat(at).is_some_and(|p| self.area.contains(p))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use geo::{Intersects, LineString, MultiPolygon, Polygon, Rect};

    fn rect(x0: f64, y0: f64, x1: f64, y1: f64) -> AABB<[f64; 2]> {
        AABB::from_corners([x0, y0], [x1, y1])
    }

    #[test]
    fn segment_rect_contact_is_exact() {
        let r = rect(0.0, 0.0, 1.0, 1.0);
        let meets = |a: [f64; 2], b: [f64; 2]| segment_meets_rect(a, b, &r);
        assert!(meets([-1.0, 0.5], [2.0, 0.5]), "crosses");
        assert!(meets([0.2, 0.2], [0.3, 0.3]), "inside");
        assert!(meets([-1.0, 1.0], [2.0, 1.0]), "along the top edge");
        assert!(meets([1.0, 1.0], [2.0, 3.0]), "touches a corner");
        // Each corner in turn is the only point of contact (the first corner tested matters).
        assert!(meets([-1.0, 1.0], [1.0, -1.0]), "touches (0, 0) only");
        assert!(meets([-1.0, 0.0], [1.0, 2.0]), "touches (0, 1) only");
        assert!(meets([0.0, -1.0], [2.0, 1.0]), "touches (1, 0) only");
        assert!(meets([0.0, 2.0], [2.0, 0.0]), "touches (1, 1) only");
        assert!(meets([0.5, 0.5], [0.5, 0.5]), "a point edge inside");
        // Bounding boxes meet, but the diagonal passes the corner.
        assert!(!meets([0.5, 1.6], [1.6, 0.5]));
        // ...and by the smallest margin representable.
        let x = 2.0f64.next_up();
        assert!(!meets([0.0, x], [x, 0.0]));
    }

    /// The classification agrees with geo's `Covers` (for Inside) and `Intersects` (for
    /// Outside) on rectangles around a polygon with a hole.
    #[test]
    fn classify_agrees_with_covers_rect() {
        let shell: LineString = vec![
            (0.0, 0.0),
            (8.0, 0.0),
            (8.0, 8.0),
            (4.0, 5.0),
            (0.0, 8.0),
            (0.0, 0.0),
        ]
        .into();
        let hole: LineString =
            vec![(2.0, 1.0), (6.0, 1.0), (6.0, 3.0), (2.0, 3.0), (2.0, 1.0)].into();
        let area = PolygonArea::new(MultiPolygon(vec![Polygon::new(shell, vec![hole])])).unwrap();
        let q = PolygonQuery::new(&area);
        let (mut inside, mut outside) = (0, 0);
        for i in -2..20 {
            for j in -2..20 {
                for (w, h) in [(0.5, 0.5), (1.0, 0.25), (0.0, 0.0), (0.0, 1.0), (2.0, 2.0)] {
                    let (x, y) = (f64::from(i) * 0.5, f64::from(j) * 0.5);
                    let env = rect(x, y, x + w, y + h);
                    let geo_rect = Rect::new((x, y), (x + w, y + h));
                    match q.classify(&env) {
                        Cover::Inside => {
                            inside += 1;
                            assert!(area.covers_rect(&geo_rect), "{env:?}");
                        }
                        Cover::Outside => {
                            outside += 1;
                            assert!(!area.shape().intersects(&geo_rect), "{env:?}");
                        }
                        Cover::Partial => {}
                    }
                }
            }
        }
        assert!(inside > 50 && outside > 50, "{inside} {outside}");
        // Outside but for one shared point: the shell's vertex (8, 8) is its lower corner.
        assert_eq!(q.classify(&rect(8.0, 8.0, 9.0, 9.0)), Cover::Partial);
        assert_eq!(q.classify(&rect(8.0, 8.0, 8.0, 8.0)), Cover::Partial);
    }
}
