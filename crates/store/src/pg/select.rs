//! The PostGIS selection path: "which customers are inside this area?" answered by PostGIS,
//! independently of the in-memory R-tree, for cross-checks and as the bench's peer to beat.
//!
//! Each shape maps to the PostGIS predicate with the same meaning as
//! [`Area::contains`]:
//!
//! | area | core's rule | PostGIS |
//! |---|---|---|
//! | circle | geodesic (WGS84) distance from the centre ≤ radius | `ST_DWithin(location, centre::geography, radius, true)` (spheroid) |
//! | polygon | planar lon/lat point-in-polygon, boundary inside, holes outside | `ST_Covers(polygon::geometry, location::geometry)` |
//! | corridor | nearest point of the line with segments as great-circle arcs (on the sphere), then the geodesic distance to it ≤ buffer | `ST_DWithin(location, line::geography, buffer, true)` |
//! | union | inside any part | `OR` of the parts |
//!
//! Expected differences, all at the floating-point level (far below a millimetre):
//! * circles: both compute Karney's geodesic (GeographicLib in `geo`, PROJ's `geod_inverse`
//!   in PostGIS), rounded differently in the last bits; PostGIS also rounds the distances it
//!   reports to 1e-8 m. A customer exactly on the circle (radius = its distance by the core's
//!   rule) is inside for the core and often outside for `ST_DWithin`;
//! * corridors: PostGIS also finds the nearest point on the sphere (geography edges are
//!   great-circle arcs) and measures the spheroid distance to it, with different rounding:
//!   the same on-the-edge effect, at up to about 2e-7 m;
//! * polygons: PostGIS 3.3 decides a point against a polygon with a plain floating-point
//!   side test, `geo` with exact (robust) orientation predicates; they can differ only for a
//!   point within about 1e-15 degrees of a slanted edge. Corners, and axis-parallel edges
//!   through customers, agreed in every cross-check (boundary inside for both).
//!
//! `tests/postgis_crosscheck.rs` measures all of this on the Helsinki sample: random areas
//! agree exactly; areas drawn through customers differ only on those customers, which both
//! measures put on the edge.

use outagecast_core::area::{Area, Circle, Corridor, PolygonArea};
use outagecast_core::customer::CustomerId;
use sqlx::Arguments;
use sqlx::postgres::PgArguments;

use crate::pg::PgStore;
use crate::{Result, StoreError};

impl PgStore {
    /// The ids of the customers inside `area`, ascending, computed by PostGIS (see the module
    /// documentation for the predicate of each shape).
    pub async fn select_ids(&self, area: &Area) -> Result<Vec<CustomerId>> {
        let (condition, args) = area_sql(area)?;
        let sql = format!("SELECT id FROM customers WHERE {condition} ORDER BY id");
        // The text is built from fixed fragments and numbered placeholders only; every
        // coordinate and distance is bound.
        let ids: Vec<i64> = sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(CustomerId).collect())
    }

    /// How many customers [`PgStore::select_ids`] would return, counted by PostGIS.
    pub async fn count_ids(&self, area: &Area) -> Result<u64> {
        let (condition, args) = area_sql(area)?;
        let sql = format!("SELECT COUNT(*) FROM customers WHERE {condition}");
        let n: i64 = sqlx::query_scalar_with(sqlx::AssertSqlSafe(sql), args)
            .fetch_one(&self.pool)
            .await?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    /// PostGIS's measure of how far customer `id` is from the edge of `area`, in metres: the
    /// spheroid distance's difference from the radius or buffer; for polygons the distance to
    /// the nearest ring; for unions the least over the parts. `None` when there is no such
    /// customer. PostGIS rounds geography distances to 1e-8 m. For cross-checks: a customer
    /// that PostGIS and the index decide differently must be on the edge by both measures.
    pub async fn edge_distance_m(&self, area: &Area, id: CustomerId) -> Result<Option<f64>> {
        const DISTANCE_SQL: &str =
            "SELECT abs(ST_Distance(location, ST_GeogFromText($2), true) - $3)
               FROM customers WHERE id = $1";
        let mut best: Option<f64> = None;
        for part in area.parts() {
            let query = match part {
                Area::Circle(c) => sqlx::query_scalar(DISTANCE_SQL)
                    .bind(id.0)
                    .bind(circle_centre_wkt(c))
                    .bind(c.radius_m()),
                Area::Corridor(c) => sqlx::query_scalar(DISTANCE_SQL)
                    .bind(id.0)
                    .bind(line_wkt(c))
                    .bind(c.buffer_m()),
                Area::Polygon(p) => sqlx::query_scalar(
                    "SELECT ST_Distance(ST_Boundary(ST_GeomFromText($2, 4326))::geography,
                                        location, true)
                       FROM customers WHERE id = $1",
                )
                .bind(id.0)
                .bind(polygon_wkt(p)),
                // `parts` never returns a union.
                Area::Union(_) => continue,
            };
            let d: Option<f64> = query.fetch_optional(&self.pool).await?;
            let Some(d) = d else { return Ok(None) };
            best = Some(best.map_or(d, |b| b.min(d)));
        }
        Ok(best)
    }
}

/// The `WHERE` condition on `customers` (its `location` column) that selects `area`, with its
/// arguments.
fn area_sql(area: &Area) -> Result<(String, PgArguments)> {
    let mut args = PgArguments::default();
    let mut count = 0;
    let condition = condition(area, &mut args, &mut count)?;
    Ok((condition, args))
}

fn condition(area: &Area, args: &mut PgArguments, count: &mut usize) -> Result<String> {
    let mut bind = |value: Bound| -> Result<String> {
        match value {
            Bound::Text(t) => args.add(t),
            Bound::Float(f) => args.add(f),
        }
        .map_err(|e| StoreError::Invalid {
            field: "area",
            problem: format!("cannot be sent to PostgreSQL: {e}"),
        })?;
        *count += 1;
        Ok(format!("${count}"))
    };
    Ok(match area {
        Area::Circle(c) => {
            let centre = bind(Bound::Text(circle_centre_wkt(c)))?;
            let radius = bind(Bound::Float(c.radius_m()))?;
            format!("ST_DWithin(location, ST_GeogFromText({centre}::text), {radius}::float8, true)")
        }
        Area::Polygon(p) => {
            let shape = bind(Bound::Text(polygon_wkt(p)))?;
            format!("ST_Covers(ST_GeomFromText({shape}::text, 4326), location::geometry)")
        }
        Area::Corridor(c) => {
            let line = bind(Bound::Text(line_wkt(c)))?;
            let buffer = bind(Bound::Float(c.buffer_m()))?;
            format!("ST_DWithin(location, ST_GeogFromText({line}::text), {buffer}::float8, true)")
        }
        Area::Union(u) => {
            let parts = u
                .parts()
                .iter()
                .map(|part| condition(part, args, count).map(|c| format!("({c})")))
                .collect::<Result<Vec<_>>>()?;
            parts.join(" OR ")
        }
    })
}

enum Bound {
    Text(String),
    Float(f64),
}

/// Rust prints an `f64` as the shortest decimal that reads back to the same number, and
/// PostGIS reads WKT with `strtod`: the coordinates arrive bit for bit.
fn push_coord(out: &mut String, x: f64, y: f64) {
    use std::fmt::Write;
    let _ = write!(out, "{x} {y}");
}

fn circle_centre_wkt(c: &Circle) -> String {
    let mut out = String::from("SRID=4326;POINT(");
    push_coord(&mut out, c.center().lon(), c.center().lat());
    out.push(')');
    out
}

fn ring_wkt(out: &mut String, ring: &geo::LineString<f64>) {
    out.push('(');
    for (i, c) in ring.coords().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_coord(out, c.x, c.y);
    }
    out.push(')');
}

fn polygon_wkt(p: &PolygonArea) -> String {
    let mut out = String::from("MULTIPOLYGON(");
    for (i, polygon) in p.shape().0.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('(');
        ring_wkt(&mut out, polygon.exterior());
        for hole in polygon.interiors() {
            out.push(',');
            ring_wkt(&mut out, hole);
        }
        out.push(')');
    }
    out.push(')');
    out
}

fn line_wkt(c: &Corridor) -> String {
    let mut out = String::from("SRID=4326;LINESTRING");
    ring_wkt(&mut out, c.line());
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::area::{LonLat, polygon_from_ring};

    #[test]
    fn shapes_become_wkt_with_every_digit() {
        let c = Circle::new(LonLat::parse(24.9506311, 60.1690955).unwrap(), 10.0).unwrap();
        assert_eq!(
            circle_centre_wkt(&c),
            "SRID=4326;POINT(24.9506311 60.1690955)"
        );
        let p = polygon_from_ring(&[
            [24.9, 60.1],
            [24.95, 60.1],
            [24.95, 60.2],
            [0.1 + 0.2, 60.2],
            [24.9, 60.1],
        ])
        .unwrap();
        assert_eq!(
            polygon_wkt(&p),
            "MULTIPOLYGON(((24.9 60.1,24.95 60.1,24.95 60.2,0.30000000000000004 60.2,24.9 60.1)))"
        );
        let line = geo::LineString::from(vec![(24.9, 60.1), (24.91, 60.11)]);
        assert_eq!(
            line_wkt(&Corridor::new(line, 5.0).unwrap()),
            "SRID=4326;LINESTRING(24.9 60.1,24.91 60.11)"
        );
    }

    #[test]
    fn a_union_is_the_or_of_its_parts_with_numbered_arguments() {
        let at = LonLat::parse(24.94, 60.17).unwrap();
        let a = Area::Circle(Circle::new(at, 100.0).unwrap());
        let b = Area::Circle(Circle::new(at, 200.0).unwrap());
        let (sql, _) = area_sql(&Area::union(vec![a, b]).unwrap()).unwrap();
        assert_eq!(
            sql,
            "(ST_DWithin(location, ST_GeogFromText($1::text), $2::float8, true)) OR \
             (ST_DWithin(location, ST_GeogFromText($3::text), $4::float8, true))"
        );
    }
}
