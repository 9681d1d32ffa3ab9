//! Reading the customer CSV: every row is checked on its own, so one bad row is reported with
//! its line number and never takes the rest of the file down with it.

use std::collections::HashMap;
use std::io::Read;

use anyhow::{Result, bail};
use outagecast_core::customer::{CSV_HEADER, Customer, CustomerRecord, RecordRules};
use serde::Serialize;

/// A row that was not imported.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Rejected {
    /// 1-based line in the file (the header is line 1).
    pub line: u64,
    /// The account id as written, when the row had one.
    pub account_id: Option<String>,
    /// Which field is wrong and how to fix it.
    pub reason: String,
}

/// The rows of a file, sorted into good and bad.
#[derive(Debug, Default)]
pub struct ParsedFile {
    /// Valid customers, in file order.
    pub customers: Vec<Customer>,
    /// Rejected rows, in file order.
    pub rejected: Vec<Rejected>,
}

/// Reads customer CSV. A header with unknown or missing columns refuses the whole file, since
/// a misspelt column (`phone_number`) would otherwise silently drop every phone.
pub fn read_customers(input: impl Read, rules: RecordRules) -> Result<ParsedFile> {
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(input);
    let header = reader
        .headers()
        .map_err(|e| anyhow::anyhow!("header: cannot read the CSV header: {e}"))?
        .clone();
    let names: Vec<&str> = header.iter().collect();
    let unknown: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| !CSV_HEADER.contains(n))
        .collect();
    let missing: Vec<&str> = ["account_id", "lon", "lat"]
        .into_iter()
        .filter(|n| !names.contains(n))
        .collect();
    if !unknown.is_empty() || !missing.is_empty() {
        bail!(
            "header: {}{}; expected {}",
            if unknown.is_empty() {
                String::new()
            } else {
                format!("unknown column(s) {}", unknown.join(", "))
            },
            if missing.is_empty() {
                String::new()
            } else {
                format!(
                    "{}missing column(s) {}",
                    if unknown.is_empty() { "" } else { ", " },
                    missing.join(", ")
                )
            },
            CSV_HEADER.join(",")
        );
    }

    let mut parsed = ParsedFile::default();
    let mut first_line_of: HashMap<String, u64> = HashMap::new();
    for result in reader.records() {
        let record = match result {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or_default();
                parsed.rejected.push(Rejected {
                    line,
                    account_id: None,
                    reason: format!("not readable as CSV: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or_default();
        if record.len() != header.len() {
            parsed.rejected.push(Rejected {
                line,
                account_id: record.get(0).map(str::to_string),
                reason: format!(
                    "has {} fields but the header has {}; quote fields that contain commas",
                    record.len(),
                    header.len()
                ),
            });
            continue;
        }
        let row: CustomerRecord = match record.deserialize(Some(&header)) {
            Ok(r) => r,
            Err(e) => {
                parsed.rejected.push(Rejected {
                    line,
                    account_id: record.get(0).map(str::to_string),
                    reason: e.to_string(),
                });
                continue;
            }
        };
        match row.parse(rules) {
            Ok(customer) => {
                let account = customer.account_id().as_str().to_string();
                if let Some(first) = first_line_of.get(&account) {
                    parsed.rejected.push(Rejected {
                        line,
                        account_id: Some(account),
                        reason: format!(
                            "account_id: already given on line {first}; each account once per file"
                        ),
                    });
                    continue;
                }
                first_line_of.insert(account, line);
                parsed.customers.push(customer);
            }
            Err(e) => parsed.rejected.push(Rejected {
                line,
                account_id: Some(row.account_id.trim().to_string()).filter(|a| !a.is_empty()),
                reason: e.to_string(),
            }),
        }
    }
    Ok(parsed)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use outagecast_core::contact::Language;

    fn rules() -> RecordRules {
        RecordRules {
            default_region: None,
            default_language: Language::Fi,
        }
    }

    #[test]
    fn bad_rows_are_reported_by_line_and_good_rows_kept() {
        let csv = "account_id,lon,lat,address,phone,email,language,priority\n\
                   A,24.94,60.17,\"Kaivokatu 1, Helsinki\",+358481111111,,fi,false\n\
                   B,24.94,60.17,x,12345,,fi,false\n\
                   A,24.95,60.17,x,,,fi,false\n\
                   C,24.94\n\
                   D,24.94,60.17,x,,d@example.com,en,true\n";
        let parsed = read_customers(csv.as_bytes(), rules()).unwrap();
        assert_eq!(parsed.customers.len(), 2);
        let lines: Vec<u64> = parsed.rejected.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![3, 4, 5]);
        assert!(
            parsed.rejected[0].reason.starts_with("phone"),
            "{:?}",
            parsed.rejected[0]
        );
        assert!(
            parsed.rejected[1].reason.contains("line 2"),
            "{:?}",
            parsed.rejected[1]
        );
        assert!(
            parsed.rejected[2].reason.contains("fields"),
            "{:?}",
            parsed.rejected[2]
        );
    }

    #[test]
    fn a_misspelt_column_refuses_the_file() {
        let csv = "account_id,lon,lat,phone_number\nA,24.94,60.17,+358481111111\n";
        let err = read_customers(csv.as_bytes(), rules())
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown column(s) phone_number"), "{err}");
        assert!(err.contains("account_id,lon,lat,address"), "{err}");
    }
}
