//! Coordinate reference systems for model files whose coordinates are not lon/lat: `--crs
//! EPSG:NNNN` names one, and [`Crs::to_lon_lat`] takes a point to WGS84 longitude and
//! latitude in degrees.
//!
//! The transformation is proj4rs's (a pure-Rust port of PROJ.4); the EPSG code is looked up
//! in the `crs-definitions` table compiled into it (PROJ.4 strings), so nothing is fetched at
//! run time. PROJ.4 pivots through WGS84 with `+towgs84` parameters where the definition has
//! them: no grid shifts, which is centimetre-level for the ETRS89 and WGS84-based systems
//! utilities use, and up to metres for old datums without a `+towgs84`.

use std::fmt;

use proj4rs::Proj;
use proj4rs::transform::transform;

use crate::error::{IngestError, Result};

/// A source coordinate reference system, checked: its EPSG code is known.
pub struct Crs {
    code: u16,
    proj: Proj,
    wgs84: Proj,
}

impl fmt::Debug for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Crs(EPSG:{})", self.code)
    }
}

impl fmt::Display for Crs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EPSG:{}", self.code)
    }
}

const WGS84: &str = "+proj=longlat +datum=WGS84 +no_defs";

impl Crs {
    /// Reads `EPSG:NNNN` (any case, spaces around ignored), as given to `field`.
    ///
    /// ```
    /// use outagecast_ingest::crs::Crs;
    /// assert_eq!(Crs::parse("epsg:3067", "--crs").unwrap().to_string(), "EPSG:3067");
    /// assert!(Crs::parse("3067", "--crs").unwrap_err().to_string().contains("give EPSG:NNNN"));
    /// ```
    pub fn parse(text: &str, field: &str) -> Result<Self> {
        let t = text.trim();
        let code = t
            .split_once(':')
            .filter(|(authority, _)| authority.trim().eq_ignore_ascii_case("EPSG"))
            .and_then(|(_, code)| code.trim().parse::<u16>().ok())
            .ok_or_else(|| {
                IngestError::invalid(
                    field,
                    format!(
                        "{t:?} is not an EPSG code; give EPSG:NNNN, the model's coordinate system (for example EPSG:3067 for ETRS-TM35FIN)"
                    ),
                )
            })?;
        let proj = Proj::from_epsg_code(code).map_err(|e| {
            IngestError::invalid(
                field,
                format!(
                    "EPSG:{code} is not a coordinate system this build knows ({e}); give the EPSG code of a projected or geographic 2D system"
                ),
            )
        })?;
        let wgs84 = Proj::from_proj_string(WGS84)
            .map_err(|e| IngestError::invalid(field, format!("WGS84 cannot be set up: {e}")))?;
        Ok(Crs { code, proj, wgs84 })
    }

    /// The EPSG code.
    pub fn code(&self) -> u16 {
        self.code
    }

    /// The point `(x, y)` in this system (easting, northing in the system's units; for a
    /// geographic system longitude, latitude in degrees) as WGS84 `(lon, lat)` in degrees,
    /// or `None` when it lies outside the projection's domain.
    pub fn to_lon_lat(&self, x: f64, y: f64) -> Option<(f64, f64)> {
        let mut p = if self.proj.is_latlong() {
            (x.to_radians(), y.to_radians(), 0.0)
        } else {
            (x, y, 0.0)
        };
        transform(&self.proj, &self.wgs84, &mut p).ok()?;
        let (lon, lat) = (p.0.to_degrees(), p.1.to_degrees());
        (lon.is_finite() && lat.is_finite() && lon.abs() <= 180.0 && lat.abs() <= 90.0)
            .then_some((lon, lat))
    }

    /// WGS84 `(lon, lat)` in degrees to this system: the inverse of [`Crs::to_lon_lat`], for
    /// tests and round trips.
    pub fn from_lon_lat(&self, lon: f64, lat: f64) -> Option<(f64, f64)> {
        let mut p = (lon.to_radians(), lat.to_radians(), 0.0);
        transform(&self.wgs84, &self.proj, &mut p).ok()?;
        let (x, y) = if self.proj.is_latlong() {
            (p.0.to_degrees(), p.1.to_degrees())
        } else {
            (p.0, p.1)
        };
        (x.is_finite() && y.is_finite()).then_some((x, y))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Metres between two WGS84 points at Helsinki's latitude (equirectangular; exact enough
    /// for centimetres).
    fn metres(a: (f64, f64), b: (f64, f64)) -> f64 {
        let k = 6_371_000.0_f64.to_radians();
        let dx = (a.0 - b.0) * k * a.1.to_radians().cos();
        let dy = (a.1 - b.1) * k;
        dx.hypot(dy)
    }

    #[test]
    fn etrs_tm35fin_round_trips_within_a_centimetre() {
        let crs = Crs::parse("EPSG:3067", "--crs").unwrap();
        // TM35FIN's central meridian is 27°E with a false easting of 500,000 m: a point on
        // it maps to x = 500,000 exactly, whatever the latitude.
        // On it, the northing of 60°N is k0 = 0.9996 times the meridian arc on GRS80,
        // 6,651,411.190 m (the textbook UTM value; pyproj 3 gives 6651411.190239697).
        let (x, y) = crs.from_lon_lat(27.0, 60.0).unwrap();
        assert!((x - 500_000.0).abs() < 0.01, "{x}");
        assert!((y - 6_651_411.190).abs() < 0.01, "{y}");
        // Helsinki's Senate Square, against pyproj 3 (EPSG:4326 -> EPSG:3067, always_xy):
        // (385611.3166849422, 6672118.380202087); and back to within a centimetre.
        let here = (24.9384, 60.1699);
        let (x, y) = crs.from_lon_lat(here.0, here.1).unwrap();
        assert!(
            (x - 385_611.316_685).abs() < 0.01 && (y - 6_672_118.380_202).abs() < 0.01,
            "{x} {y}"
        );
        let back = crs.to_lon_lat(385_611.316_685, 6_672_118.380_202).unwrap();
        assert!(metres(here, back) < 0.01, "{back:?}");
        // Helsinki's local GK25 (EPSG:3879), pyproj 3: (25496580.359958988, 6673003.6067268625).
        let gk25 = Crs::parse("EPSG:3879", "--crs").unwrap();
        let back = gk25
            .to_lon_lat(25_496_580.359_959, 6_673_003.606_727)
            .unwrap();
        assert!(metres(here, back) < 0.01, "{back:?}");
    }

    #[test]
    fn bad_codes_say_what_to_give() {
        for bad in ["3067", "ESRI:102139", "EPSG:abc", "EPSG:99999999"] {
            let e = Crs::parse(bad, "--crs").unwrap_err().to_string();
            assert!(e.starts_with("--crs: "), "{e}");
            assert!(e.contains("give EPSG:NNNN"), "{e}");
        }
        let e = Crs::parse("EPSG:1", "--crs").unwrap_err().to_string();
        assert!(e.contains("EPSG:1 is not a coordinate system"), "{e}");
        let geographic = Crs::parse("EPSG:4326", "--crs").unwrap();
        let (lon, lat) = geographic.to_lon_lat(24.9, 60.2).unwrap();
        assert!((lon - 24.9).abs() < 1e-9 && (lat - 60.2).abs() < 1e-9);
    }
}
