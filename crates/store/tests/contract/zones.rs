//! Named zones and the customers' addresses for the geocoder.

use chrono::Utc;
use outagecast_core::area::{Area, Circle, LonLat, polygon_from_ring};
use outagecast_core::customer::{Customer, CustomerParts};
use outagecast_store::{Store, ZoneImportSummary, ZoneRecord};

use crate::contract;
use crate::support::customer;

contract!(
    zones_are_upserted_by_name_and_read_back,
    address_points_are_distinct_in_the_order_of_their_first_customer,
);

async fn zones_are_upserted_by_name_and_read_back(store: &Store) {
    let square = Area::Polygon(
        polygon_from_ring(&[
            [24.93, 60.16],
            [24.95, 60.16],
            [24.95, 60.17],
            [24.93, 60.16],
        ])
        .unwrap(),
    );
    let props = serde_json::Map::from_iter([("dma".to_string(), serde_json::json!("DMA 7"))]);
    let now = Utc::now();
    let first = store
        .upsert_zones(
            &[ZoneRecord {
                name: "DMA 7",
                key: "dma 7",
                area: &square,
                properties: &props,
            }],
            "test",
            "dmas.geojson",
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        first,
        ZoneImportSummary {
            inserted: 1,
            updated: 0
        }
    );
    let circle = Area::Circle(Circle::new(LonLat::parse(24.94, 60.17).unwrap(), 100.0).unwrap());
    let later = now + chrono::Duration::seconds(1);
    let again = store
        .upsert_zones(
            &[
                ZoneRecord {
                    name: "dma 7",
                    key: "dma 7",
                    area: &circle,
                    properties: &props,
                },
                ZoneRecord {
                    name: "DMA 8",
                    key: "dma 8",
                    area: &square,
                    properties: &props,
                },
                // A name given twice in one import: added, then replaced.
                ZoneRecord {
                    name: "Zone Z",
                    key: "zone z",
                    area: &square,
                    properties: &props,
                },
                ZoneRecord {
                    name: "ZONE Z",
                    key: "zone z",
                    area: &circle,
                    properties: &serde_json::Map::new(),
                },
            ],
            "test",
            "dmas2.geojson",
            later,
        )
        .await
        .unwrap();
    assert_eq!(
        again,
        ZoneImportSummary {
            inserted: 2,
            updated: 2
        }
    );
    let zones = store.zones().await.unwrap();
    let names: Vec<&str> = zones.iter().map(|z| z.name.as_str()).collect();
    assert_eq!(names, ["dma 7", "DMA 8", "ZONE Z"], "by key");
    let z = store.zone("dma 7").await.unwrap().unwrap();
    assert_eq!(z.area, circle);
    assert_eq!(z.name, "dma 7");
    assert_eq!(z.source, "dmas2.geojson");
    assert_eq!(z.properties, serde_json::json!({ "dma": "DMA 7" }));
    assert_eq!(
        z.imported_at.timestamp_micros(),
        later.timestamp_micros(),
        "to the microsecond"
    );
    assert_eq!(store.zone("dma 8").await.unwrap().unwrap().area, square);
    let zz = store.zone("zone z").await.unwrap().unwrap();
    assert_eq!((zz.name.as_str(), &zz.area), ("ZONE Z", &circle));
    assert_eq!(zz.properties, serde_json::json!({}));
    assert!(store.zone("dma 9").await.unwrap().is_none());
    assert!(store.zone("DMA 7").await.unwrap().is_none(), "by key only");

    let entry = &store.audit_log(1).await.unwrap()[0];
    assert_eq!(entry.action, "zones.import");
    assert_eq!(entry.subject.as_deref(), Some("file:dmas2.geojson"));
    assert_eq!(
        entry.details,
        serde_json::json!({
            "zones": ["dma 7", "DMA 8", "Zone Z", "ZONE Z"],
            "inserted": 2,
            "updated": 2,
        })
    );
}

async fn address_points_are_distinct_in_the_order_of_their_first_customer(store: &Store) {
    let elsewhere = |account: &str| {
        Customer::new(CustomerParts {
            account_id: outagecast_core::customer::AccountId::parse(account).unwrap(),
            location: LonLat::parse(23.76, 61.50).unwrap(),
            address: "Hämeenkatu 1, Tampere".into(),
            phones: vec![],
            emails: vec![],
            language: outagecast_core::contact::Language::Fi,
            priority: false,
            channel: None,
        })
    };
    assert!(store.address_points().await.unwrap().is_empty());
    store
        .upsert_customers(
            &[
                elsewhere("T1"),
                customer("A", "+358481111111", ""),
                elsewhere("T2"),
                customer("B", "+358481111112", ""),
            ],
            "test",
            "t.csv",
            Utc::now(),
        )
        .await
        .unwrap();
    let points = store.address_points().await.unwrap();
    assert_eq!(
        points,
        [
            (
                "Hämeenkatu 1, Tampere".to_string(),
                LonLat::parse(23.76, 61.50).unwrap()
            ),
            (
                "Kaivokatu 1, Helsinki".to_string(),
                LonLat::parse(24.9414, 60.1710).unwrap()
            ),
        ]
    );
}
