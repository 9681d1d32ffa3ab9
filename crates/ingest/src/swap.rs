//! The same area with longitude and latitude exchanged: what the operator probably meant when
//! an area holds no customers but its mirror image does (CAP writes lat,lon; GeoJSON and WKT
//! lon,lat; people mix them up).

use geo::{Coord, LineString, MultiPolygon, Polygon};
use outagecast_core::area::{Area, Circle, Corridor, LonLat, PolygonArea};

fn swap_line(line: &LineString<f64>) -> Option<LineString<f64>> {
    line.coords()
        .map(|c| {
            // Checked through LonLat so that an impossible mirror (|lon| > 90) gives None.
            LonLat::parse(c.y, c.x).ok().map(|p| Coord {
                x: p.lon(),
                y: p.lat(),
            })
        })
        .collect::<Option<Vec<_>>>()
        .map(LineString)
}

/// The area mirrored across the lon = lat diagonal, or `None` when the mirror is not a valid
/// area (a longitude beyond ±90 cannot be a latitude).
///
/// ```
/// use outagecast_core::area::{Area, Circle, LonLat};
/// use outagecast_ingest::swap::swapped;
/// let typo = Area::Circle(Circle::new(LonLat::parse(60.171, 24.9414).unwrap(), 300.0).unwrap());
/// let Some(Area::Circle(c)) = swapped(&typo) else { panic!() };
/// assert_eq!((c.center().lon(), c.center().lat()), (24.9414, 60.171));
/// ```
pub fn swapped(area: &Area) -> Option<Area> {
    match area {
        Area::Circle(c) => {
            let center = LonLat::parse(c.center().lat(), c.center().lon()).ok()?;
            Circle::new(center, c.radius_m()).ok().map(Area::Circle)
        }
        Area::Polygon(p) => {
            let polygons = p
                .shape()
                .0
                .iter()
                .map(|poly| {
                    let exterior = swap_line(poly.exterior())?;
                    let interiors = poly
                        .interiors()
                        .iter()
                        .map(swap_line)
                        .collect::<Option<Vec<_>>>()?;
                    Some(Polygon::new(exterior, interiors))
                })
                .collect::<Option<Vec<_>>>()?;
            PolygonArea::new(MultiPolygon(polygons))
                .ok()
                .map(Area::Polygon)
        }
        Area::Corridor(c) => Corridor::new(swap_line(c.line())?, c.buffer_m())
            .ok()
            .map(Area::Corridor),
        Area::Union(u) => {
            Area::union(u.parts().iter().map(swapped).collect::<Option<Vec<_>>>()?).ok()
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::area::polygon_from_ring;

    #[test]
    fn mirrors_every_shape_and_refuses_impossible_mirrors() {
        let square = Area::Polygon(
            polygon_from_ring(&[
                [60.16, 24.93],
                [60.16, 24.95],
                [60.17, 24.95],
                [60.16, 24.93],
            ])
            .unwrap(),
        );
        let mirror = swapped(&square).unwrap();
        assert!(mirror.contains(LonLat::parse(24.945, 60.162).unwrap()));
        let line = Area::Corridor(
            Corridor::new(vec![(60.17, 24.93), (60.17, 24.95)].into(), 40.0).unwrap(),
        );
        let both = Area::union(vec![square, line]).unwrap();
        assert_eq!(swapped(&both).unwrap().parts().len(), 2);
        let far_east =
            Area::Circle(Circle::new(LonLat::parse(120.0, 10.0).unwrap(), 10.0).unwrap());
        assert!(swapped(&far_east).is_none());
    }
}
