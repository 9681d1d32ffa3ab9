//! Incident ingest: every way an outage's area comes in, parsed and checked into the core's
//! [`Area`](outagecast_core::area::Area), the offline address geocoder, and customer import.
//!
//! * [`geojson`]: RFC 7946 Geometry, Feature or FeatureCollection (points with `radius_m`,
//!   lines with `buffer_m`, polygons with holes; several shapes make a union);
//! * [`wkt`]: OGC Well-Known Text;
//! * [`cap`]: CAP 1.2 alerts (Alert, Update, Cancel; polygons, circles, zone geocodes);
//! * [`cap_out`]: CAP 1.2 alerts written (an area as CAP polygons and circles);
//! * [`customers`]: customers from the customer CSV or a GeoJSON FeatureCollection of points,
//!   with per-row rejects (shared by the CLI and the HTTP API);
//! * [`network`]: the network model from GeoJSON and the services CSV; [`epanet`]: the model
//!   from an EPANET `.inp` and the isolation-valve layer, with [`crs`] for projected
//!   coordinates (`--crs EPSG:NNNN`, proj4rs);
//! * [`zone`]: named zones from a GeoJSON FeatureCollection;
//! * [`geocode`]: the embedded gazetteer, the `Geocoder` trait and the candidate policy;
//! * [`swap`]: an area's lon/lat mirror image, for the "looks swapped" check.
//!
//! Pure: no I/O, no clock. Callers read files and pass text (or a reader); errors name the
//! field and the fix ([`IngestError`]).

pub mod cap;
pub mod cap_out;
pub mod crs;
pub mod customers;
pub mod epanet;
pub mod error;
pub mod geocode;
pub mod geojson;
pub mod limits;
pub mod network;
pub mod swap;
pub mod wkt;
mod xml;
pub mod zone;

pub use error::{IngestError, Result};
