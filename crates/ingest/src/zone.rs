//! Named zones: district metered areas, pressure zones, feeder service areas. Imported from a
//! GeoJSON FeatureCollection, one feature per zone, named by a property the operator picks.

use std::collections::HashMap;

use outagecast_core::area::Area;
use serde::Serialize;

use crate::error::{IngestError, Result};
use crate::geojson::{Sizes, geometry_areas, located_geometries, positions};
use crate::limits::Limits;

/// A zone's name: 1–100 characters on one line, trimmed. Names are matched without regard to
/// case (`dma 7` finds `DMA 7`), as operators type them.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct ZoneName(String);

impl ZoneName {
    /// Checks and trims a name.
    pub fn parse(text: &str, field: &str) -> Result<Self> {
        let t = text.trim();
        if t.is_empty() {
            return Err(IngestError::invalid(
                field,
                "is empty; give the zone a name such as \"DMA 7\"",
            ));
        }
        if t.chars().count() > 100 || t.chars().any(char::is_control) {
            return Err(IngestError::invalid(
                field,
                "must be one line of at most 100 characters",
            ));
        }
        Ok(ZoneName(t.to_string()))
    }

    /// The name as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The form names are compared in.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }
}

impl std::fmt::Display for ZoneName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One zone from an import file.
#[derive(Debug, Clone, PartialEq)]
pub struct Zone {
    /// Its name.
    pub name: ZoneName,
    /// Its polygon(s).
    pub area: Area,
    /// The feature's properties, kept for reference.
    pub properties: serde_json::Map<String, serde_json::Value>,
}

/// Reads zones from GeoJSON: every feature with a Polygon or MultiPolygon geometry, named by
/// `properties[name_property]` (a string or a number). All or nothing: one bad feature
/// refuses the file, naming the feature.
pub fn zones_from_geojson(
    text: &str,
    field: &str,
    name_property: &str,
    limits: &Limits,
) -> Result<Vec<Zone>> {
    let located = located_geometries(text, field)?;
    if located.is_empty() {
        return Err(IngestError::invalid(
            field,
            "holds no features with a geometry; give a FeatureCollection with one Polygon or MultiPolygon feature per zone",
        ));
    }
    let mut zones = Vec::with_capacity(located.len());
    let mut seen: HashMap<String, String> = HashMap::new();
    for l in located {
        let feature = l
            .path
            .strip_suffix(".geometry")
            .unwrap_or("feature")
            .to_string();
        let feature = if feature == "geometry" {
            "feature".to_string()
        } else {
            feature
        };
        let props = l.properties.clone().unwrap_or_default();
        let name_field = format!("{field} {feature}.properties.{name_property}");
        let name_text = match props.get(name_property) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Number(n)) => n.to_string(),
            Some(other) => {
                return Err(IngestError::invalid(
                    name_field,
                    format!("is {other}; a zone name must be a string or a number"),
                ));
            }
            None => {
                let mut keys: Vec<&String> = props.keys().collect();
                keys.sort();
                let known = if keys.is_empty() {
                    "the feature has no properties".to_string()
                } else {
                    format!(
                        "its properties are {}",
                        keys.iter()
                            .map(|k| k.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                };
                return Err(IngestError::invalid(
                    name_field,
                    format!(
                        "is missing ({known}); pick the property that names zones with --name-property"
                    ),
                ));
            }
        };
        let name = ZoneName::parse(&name_text, &name_field)?;
        if let Some(first) = seen.insert(name.key(), feature.clone()) {
            return Err(IngestError::invalid(
                name_field,
                format!(
                    "{name:?} is also the name of {first}; give each zone one feature (a MultiPolygon for a zone in several parts)"
                ),
            ));
        }
        // Each zone is one area: the vertex limit is per zone, counted before it is built.
        limits.vertices(positions(&l.geometry), &format!("{field} {}", l.path))?;
        match &l.geometry.value {
            geojson::GeometryValue::Polygon { .. }
            | geojson::GeometryValue::MultiPolygon { .. } => {}
            other => {
                return Err(IngestError::invalid(
                    format!("{field} {}", l.path),
                    format!(
                        "is a {}; a zone is a Polygon or MultiPolygon",
                        other.type_name()
                    ),
                ));
            }
        }
        let parts = geometry_areas(&l.geometry, None, Sizes::default(), &l.path, field)?;
        let area = Area::union(parts)
            .map_err(|e| IngestError::from(e.renamed("area", &format!("{field} {}", l.path))))?;
        zones.push(Zone {
            name,
            area,
            properties: props,
        });
    }
    Ok(zones)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const DMAS: &str = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"dma":"DMA 7","pressure":"high"},"geometry":{"type":"Polygon","coordinates":[[[24.93,60.16],[24.95,60.16],[24.95,60.17],[24.93,60.17],[24.93,60.16]]]}},
      {"type":"Feature","properties":{"dma":8},"geometry":{"type":"MultiPolygon","coordinates":[[[[24.95,60.16],[24.96,60.16],[24.96,60.17],[24.95,60.16]]]]}}]}"#;

    #[test]
    fn features_become_named_zones() {
        let zones = zones_from_geojson(DMAS, "FILE", "dma", &Limits::default()).unwrap();
        assert_eq!(zones.len(), 2);
        assert_eq!(zones[0].name.as_str(), "DMA 7");
        assert_eq!(zones[0].name.key(), "dma 7");
        assert_eq!(zones[0].properties["pressure"], "high");
        assert_eq!(zones[1].name.as_str(), "8");
    }

    #[test]
    fn bad_zone_files_are_refused_whole() {
        let e = zones_from_geojson(DMAS, "FILE", "name", &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("features[0].properties.name") && e.contains("dma, pressure"),
            "{e}"
        );
        let dup = DMAS.replace("\"dma\":8", "\"dma\":\"dma 7\"");
        let e = zones_from_geojson(&dup, "FILE", "dma", &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("also the name of features[0]"), "{e}");
        let point = DMAS.replace(r#"{"type":"MultiPolygon","coordinates":[[[[24.95,60.16],[24.96,60.16],[24.96,60.17],[24.95,60.16]]]]}"#, r#"{"type":"Point","coordinates":[24.95,60.16]}"#);
        let e = zones_from_geojson(&point, "FILE", "dma", &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("features[1].geometry") && e.contains("Point"),
            "{e}"
        );
        let open = DMAS.replace("[24.93,60.17],[24.93,60.16]]", "[24.93,60.17]]");
        let e = zones_from_geojson(&open, "FILE", "dma", &Limits::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("not closed"), "{e}");
        let blank = DMAS.replace("\"DMA 7\"", "\"  \"");
        assert!(
            zones_from_geojson(&blank, "FILE", "dma", &Limits::default())
                .unwrap_err()
                .to_string()
                .contains("is empty")
        );
    }
}
