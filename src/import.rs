//! Customer files (CSV, GeoJSON) are read by the ingest library, which the HTTP API shares;
//! see [`outagecast_ingest::customers`]. Re-exported here for the binary's callers.

pub use outagecast_ingest::customers::{
    CustomerFormat, Rejected, read_customers, read_customers_geojson,
};
