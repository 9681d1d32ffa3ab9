//! Outage reports from customers ("OUT" by SMS, recorded by the inbound webhook) as the
//! operators read them: the newest first, and a cluster hint: the last hour's reports grouped
//! by a coarse grid cell of their accounts' locations, so that several reports from one street
//! stand out before anyone declares.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use outagecast_store::{MAX_REPORT_PAGE, OutageReport, ReportQuery};

use crate::{Engine, Result};

/// The side of a cluster cell, in degrees of longitude and latitude (about 1.1 km north to
/// south, 0.55 km east to west at Helsinki's latitude).
pub const CLUSTER_CELL_DEGREES: f64 = 0.01;

/// How far back the cluster hint looks.
pub const CLUSTER_WINDOW: Duration = Duration::hours(1);

/// Reports, newest first, with the cluster hint.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportListing {
    /// The reports asked for.
    pub reports: Vec<OutageReport>,
    /// Cells where two or more reports were active in the last hour, most reports first.
    pub clusters: Vec<ReportCluster>,
}

/// A grid cell with two or more reports in the last hour.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportCluster {
    /// The cell's south-west corner and north-east corner, `[west, south, east, north]`.
    pub bbox: [f64; 4],
    /// The mean location of the reporting accounts in the cell.
    pub lon: f64,
    /// Its latitude.
    pub lat: f64,
    /// Reports (numbers) with an account in the cell.
    pub reports: u64,
    /// Messages, repeats included.
    pub messages: u64,
    /// The reports' ids, newest first.
    pub report_ids: Vec<i64>,
}

impl Engine {
    /// The reports active since `query.since`, newest first, and the clusters of the hour
    /// before `now` (whatever the query).
    pub async fn outage_reports(
        &self,
        query: ReportQuery,
        now: DateTime<Utc>,
    ) -> Result<ReportListing> {
        let reports = self.store.outage_reports(query).await?;
        let recent = self
            .store
            .outage_reports(ReportQuery {
                since: Some(now - CLUSTER_WINDOW),
                limit: MAX_REPORT_PAGE,
            })
            .await?;
        Ok(ReportListing {
            reports,
            clusters: clusters(&recent),
        })
    }
}

/// The cells of [`CLUSTER_CELL_DEGREES`] holding two or more of `reports` (a report counts
/// once in each cell one of its accounts is in; a report without accounts in none), most
/// reports first, then west to east and south to north.
pub fn clusters(reports: &[OutageReport]) -> Vec<ReportCluster> {
    struct Cell<'a> {
        reports: BTreeSet<(std::cmp::Reverse<DateTime<Utc>>, std::cmp::Reverse<i64>)>,
        messages: u64,
        points: Vec<(f64, f64)>,
        seen: BTreeSet<&'a str>,
    }
    let mut cells: BTreeMap<(i64, i64), Cell<'_>> = BTreeMap::new();
    for report in reports {
        let mut counted = BTreeSet::new();
        for account in &report.accounts {
            if !(account.lon.is_finite() && account.lat.is_finite()) {
                continue;
            }
            // Locations are within ±180/±90, so the cell index always fits.
            #[allow(clippy::cast_possible_truncation)]
            let key = (
                (account.lon / CLUSTER_CELL_DEGREES).floor() as i64,
                (account.lat / CLUSTER_CELL_DEGREES).floor() as i64,
            );
            let cell = cells.entry(key).or_insert_with(|| Cell {
                reports: BTreeSet::new(),
                messages: 0,
                points: Vec::new(),
                seen: BTreeSet::new(),
            });
            if cell.seen.insert(account.account_id.as_str()) {
                cell.points.push((account.lon, account.lat));
            }
            if counted.insert(key) {
                cell.reports.insert((
                    std::cmp::Reverse(report.last_at),
                    std::cmp::Reverse(report.id),
                ));
                cell.messages += 1 + report.repeats;
            }
        }
    }
    let mut out: Vec<ReportCluster> = cells
        .into_iter()
        .filter(|(_, c)| c.reports.len() >= 2)
        .map(|((x, y), c)| {
            #[allow(clippy::cast_precision_loss)]
            let (n, west, south) = (
                c.points.len() as f64,
                x as f64 * CLUSTER_CELL_DEGREES,
                y as f64 * CLUSTER_CELL_DEGREES,
            );
            ReportCluster {
                bbox: [
                    west,
                    south,
                    west + CLUSTER_CELL_DEGREES,
                    south + CLUSTER_CELL_DEGREES,
                ],
                lon: c.points.iter().map(|p| p.0).sum::<f64>() / n,
                lat: c.points.iter().map(|p| p.1).sum::<f64>() / n,
                reports: c.reports.len() as u64,
                messages: c.messages,
                report_ids: c.reports.iter().map(|(_, id)| id.0).collect(),
            }
        })
        .collect();
    // Stable: cells were in west-to-east, south-to-north order.
    out.sort_by_key(|c| std::cmp::Reverse(c.reports));
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use outagecast_core::contact::Channel;
    use outagecast_store::ReportedAccount;

    use super::*;

    fn report(id: i64, repeats: u64, at: &[(&str, f64, f64)]) -> OutageReport {
        let t = DateTime::parse_from_rfc3339("2026-12-03T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        OutageReport {
            id,
            received_at: t,
            last_at: t + Duration::minutes(id),
            phone: format!("+35840100000{id}"),
            channel: Channel::Sms,
            accounts: at
                .iter()
                .map(|(a, lon, lat)| ReportedAccount {
                    account_id: (*a).into(),
                    lon: *lon,
                    lat: *lat,
                })
                .collect(),
            text: "OUT".into(),
            repeats,
        }
    }

    #[test]
    fn reports_in_one_cell_are_a_cluster_and_lone_ones_are_not() {
        let reports = [
            report(1, 0, &[("A", 24.9414, 60.1712)]),
            report(2, 3, &[("B", 24.9450, 60.1750)]),
            // Two accounts in the same cell: counted once.
            report(3, 0, &[("C", 24.9420, 60.1720), ("D", 24.9430, 60.1730)]),
            // Far away, alone.
            report(4, 0, &[("E", 25.0500, 60.2000)]),
            // Unknown number: no location.
            report(5, 0, &[]),
        ];
        let found = clusters(&reports);
        assert_eq!(found.len(), 1, "{found:?}");
        let c = &found[0];
        assert_eq!((c.reports, c.messages), (3, 6));
        assert_eq!(c.report_ids, vec![3, 2, 1]);
        assert!((c.bbox[0] - 24.94).abs() < 1e-9 && (c.bbox[1] - 60.17).abs() < 1e-9);
        assert!((c.bbox[2] - 24.95).abs() < 1e-9 && (c.bbox[3] - 60.18).abs() < 1e-9);
        assert!(c.lon > 24.94 && c.lon < 24.95 && c.lat > 60.17 && c.lat < 60.18);
        assert!(clusters(&reports[3..]).is_empty());
        assert!(clusters(&[]).is_empty());
    }
}
