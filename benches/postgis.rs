//! In-memory index vs PostGIS (work in progress).
fn main() {}
