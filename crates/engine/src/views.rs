//! What the engine's results look like from outside: the one JSON shape that `--json` prints
//! and the HTTP API returns (and documents in its OpenAPI description).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::contact::Channel;
use outagecast_core::contact::Language;
use outagecast_core::incident::{Incident, IncidentKind, IncidentStatus, Severity};
use outagecast_core::notice::NoticeStatus;
use outagecast_store::{
    CallsAvoided, DeclareOutcome, IncidentOrigin, IncidentSummary, ReportRow, StoredZone,
    TransitionOutcome,
};
use serde::Serialize;

use crate::Selection;

/// Notices per channel.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct ChannelCounts {
    /// SMS notices.
    pub sms: u64,
    /// Email notices.
    pub email: u64,
    /// Voice calls (landlines, and customers who ask for calls).
    pub voice: u64,
}

impl ChannelCounts {
    /// From per-channel counts.
    pub fn from_map(counts: &BTreeMap<Channel, u64>) -> Self {
        ChannelCounts {
            sms: counts.get(&Channel::Sms).copied().unwrap_or(0),
            email: counts.get(&Channel::Email).copied().unwrap_or(0),
            voice: counts.get(&Channel::Voice).copied().unwrap_or(0),
        }
    }
}

/// Who an area holds and who would be told.
#[derive(Debug, Clone, Serialize)]
pub struct SelectionView {
    /// Customers inside the area.
    pub affected_customers: usize,
    /// Their account ids.
    pub affected_account_ids: Vec<String>,
    /// How many of them are on the priority register.
    pub priority_customers: usize,
    /// Phone numbers the IVR will recognise.
    pub armed_numbers: usize,
    /// Contacts skipped because they opted out.
    pub opted_out_contacts: usize,
    /// Customers with no channel left to reach them.
    pub unreachable_customers: usize,
}

impl SelectionView {
    /// The view of `selection`.
    pub fn of(selection: &Selection) -> Self {
        SelectionView {
            affected_customers: selection.customers.len(),
            affected_account_ids: selection
                .customers
                .iter()
                .map(|(_, c)| c.account_id().as_str().to_string())
                .collect(),
            priority_customers: selection.priority_count(),
            armed_numbers: selection.plan.armed.len(),
            opted_out_contacts: selection.plan.opted_out,
            unreachable_customers: selection.plan.unreachable.len(),
        }
    }

    /// Planned notices per channel.
    pub fn notices(selection: &Selection) -> ChannelCounts {
        ChannelCounts {
            sms: selection.plan.count(Channel::Sms) as u64,
            email: selection.plan.count(Channel::Email) as u64,
            voice: selection.plan.count(Channel::Voice) as u64,
        }
    }
}

/// Notices of one channel in one status.
#[derive(Debug, Clone, Serialize)]
pub struct NoticeCountView {
    /// `sms` or `email`.
    pub channel: Channel,
    /// `pending`, `sent`, `delivered`, `failed`, `superseded`, ...
    pub status: NoticeStatus,
    /// How many.
    pub count: u64,
}

/// What every view of an incident starts with.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentHead {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`, as messages write it.
    pub label: String,
    /// The operator's own reference.
    pub reference: Option<String>,
    /// water, power, gas, heating, telecom or sewer.
    pub kind: IncidentKind,
    /// minor, moderate, severe or extreme.
    pub severity: Severity,
    /// declared, updated, restored or cancelled.
    pub status: IncidentStatus,
    /// What happened.
    pub cause: String,
    /// Estimated time of restoration.
    pub etr: Option<DateTime<Utc>>,
    /// When the incident stops being announced by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The area, as GeoJSON (circles and corridors carry `radius_m` / `buffer_m`).
    pub area: Area,
    /// Declared.
    pub declared_at: DateTime<Utc>,
}

impl IncidentHead {
    /// The head of a stored incident.
    pub fn of(i: &Incident) -> Self {
        IncidentHead {
            id: i.id.0,
            label: i.id.label(),
            reference: i.draft.reference().map(str::to_string),
            kind: i.draft.kind(),
            severity: i.draft.severity(),
            status: i.status,
            cause: i.draft.cause().as_str().to_string(),
            etr: i.draft.etr(),
            expires_at: i.draft.expires_at(),
            area: i.draft.area().clone(),
            declared_at: i.declared_at,
        }
    }
}

/// An incident with its headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct IncidentView {
    /// The incident.
    #[serde(flatten)]
    pub head: IncidentHead,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
    /// Customers in the area.
    pub affected_customers: u64,
    /// Phone numbers armed in the IVR now.
    pub armed_numbers: u64,
    /// Notices by channel and status.
    pub notices: Vec<NoticeCountView>,
}

impl IncidentView {
    /// The view of a stored incident.
    pub fn of(s: &IncidentSummary) -> Self {
        IncidentView {
            head: IncidentHead::of(&s.incident),
            updated_at: s.incident.updated_at,
            affected_customers: s.affected_customers,
            armed_numbers: s.armed_numbers,
            notices: s
                .notices
                .iter()
                .map(|n| NoticeCountView {
                    channel: n.channel,
                    status: n.status,
                    count: n.count,
                })
                .collect(),
        }
    }
}

/// What a declaration wrote.
#[derive(Debug, Clone, Serialize)]
pub struct DeclaredView {
    /// The incident.
    #[serde(flatten)]
    pub head: IncidentHead,
    /// How the area was given ("zone DMA 7"), when not as a plain shape.
    pub area_source: Option<String>,
    /// Notices planned per channel.
    pub notices: ChannelCounts,
    /// Who is affected.
    #[serde(flatten)]
    pub selection: SelectionView,
    /// The isolation trace, for a declaration by topology.
    #[serde(flatten)]
    pub topology: Option<TraceView>,
}

impl DeclaredView {
    /// The view of a declaration.
    pub fn of(o: &DeclareOutcome, selection: &Selection, area_source: Option<String>) -> Self {
        DeclaredView {
            head: IncidentHead::of(&o.incident),
            area_source,
            notices: ChannelCounts::from_map(&o.notices),
            selection: SelectionView::of(selection),
            topology: None,
        }
    }
}

/// What an update, restore or cancel wrote.
#[derive(Debug, Clone, Serialize)]
pub struct TransitionView {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`.
    pub label: String,
    /// The status now.
    pub status: IncidentStatus,
    /// Estimated time of restoration now.
    pub etr: Option<DateTime<Utc>>,
    /// What happened.
    pub cause: String,
    /// The severity now.
    pub severity: Severity,
    /// The new event's id.
    pub event_id: outagecast_core::notice::EventId,
    /// Follow-up notices, only to contacts already told.
    pub notices: ChannelCounts,
    /// Unsent earlier notices withdrawn (restore, cancel).
    pub superseded: u64,
    /// Unsent earlier notices rewritten with the new details (update).
    pub rewritten: u64,
    /// IVR numbers disarmed.
    pub disarmed: u64,
    /// Customers a grown area added.
    pub added_customers: u64,
    /// Notices to them.
    pub added_notices: ChannelCounts,
    /// Customers affected before whom a shrunk area no longer holds.
    pub left_customers: u64,
}

impl TransitionView {
    /// The view of a transition; `left_customers` were affected before and are outside the
    /// new area.
    pub fn of(o: &TransitionOutcome, left_customers: u64) -> Self {
        TransitionView {
            id: o.incident.id.0,
            label: o.incident.id.label(),
            status: o.incident.status,
            etr: o.incident.draft.etr(),
            cause: o.incident.draft.cause().as_str().to_string(),
            severity: o.incident.draft.severity(),
            event_id: o.event_id,
            notices: ChannelCounts::from_map(&o.notices),
            superseded: o.superseded,
            rewritten: o.rewritten,
            disarmed: o.disarmed,
            added_customers: o.added_customers,
            added_notices: ChannelCounts::from_map(&o.added_notices),
            left_customers,
        }
    }
}

/// One language's SMS text for a declaration.
#[derive(Debug, Clone, Serialize)]
pub struct SmsTextView {
    /// fi, sv or en.
    pub language: Language,
    /// The text (the incident's number is not known yet: `INC-0` stands in for it).
    pub text: String,
    /// GSM-7 or UCS-2.
    pub encoding: &'static str,
    /// Segments per message.
    pub segments: u32,
    /// SMS recipients in this language.
    pub recipients: u64,
}

/// Why declaring would be refused.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedView {
    /// The field at fault.
    pub field: &'static str,
    /// What is wrong and how to fix it, in the front end's words.
    pub message: String,
}

/// What declaring would do; nothing is written.
#[derive(Debug, Clone, Serialize)]
pub struct PreviewView {
    /// The area, as GeoJSON.
    pub area: Area,
    /// How the area was given, when not as a plain shape.
    pub area_source: Option<String>,
    /// Notices that would be planned, per channel.
    pub notices: ChannelCounts,
    /// SMS segments the declaration would send in all.
    pub sms_segments: u64,
    /// The SMS text per language, with its encoding and segments.
    pub sms_texts: Vec<SmsTextView>,
    /// Up to ten affected addresses.
    pub sample_addresses: Vec<String>,
    /// Distinct affected addresses.
    pub distinct_addresses: usize,
    /// Why declaring would be refused, if it would.
    pub refused: Option<RefusedView>,
    /// Who is affected.
    #[serde(flatten)]
    pub selection: SelectionView,
    /// The isolation trace, for a preview by topology.
    #[serde(flatten)]
    pub topology: Option<TraceView>,
}

/// One incident with who it affects and where it came from (`incident show`).
#[derive(Debug, Clone, Serialize)]
pub struct IncidentDetail {
    /// The incident and its counts.
    #[serde(flatten)]
    pub incident: IncidentView,
    /// The affected accounts.
    pub affected_account_ids: Vec<String>,
    /// Zone, address or CAP alert, and CAP's fields.
    pub origin: IncidentOrigin,
}

/// Counts by channel and status, and every recipient's outcome.
#[derive(Debug, Clone, Serialize)]
pub struct ReportView {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`.
    pub label: String,
    /// The status.
    pub status: IncidentStatus,
    /// Customers in the area.
    pub affected_customers: u64,
    /// Notices by channel and status.
    pub counts: Vec<NoticeCountView>,
    /// Notices sent again after a crash because the provider could not be asked whether it
    /// had them: those recipients may have the message twice.
    pub possible_duplicates: u64,
    /// The callers of the area who reached the IVR, and how many had been told before they
    /// called: the calls the notices avoided, or did not.
    pub calls: CallsAvoided,
    /// One row per notice: channel, address, accounts, status, attempts, provider id, error.
    pub recipients: Vec<ReportRow>,
}

/// A zone with the customers it holds now.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneView {
    /// Its name.
    pub name: String,
    /// Customers inside it now.
    pub customers: usize,
    /// Its area, as GeoJSON.
    pub area: Area,
    /// The feature's properties as imported.
    pub properties: serde_json::Value,
    /// Where it came from.
    pub source: String,
    /// When it was imported.
    pub imported_at: DateTime<Utc>,
}

impl ZoneView {
    /// The view of a stored zone holding `customers`.
    pub fn of(z: StoredZone, customers: usize) -> Self {
        ZoneView {
            name: z.name,
            customers,
            area: z.area,
            properties: z.properties,
            source: z.source,
            imported_at: z.imported_at,
        }
    }
}

/// A zone just imported and the customers it holds.
#[derive(Debug, Clone, Serialize)]
pub struct ZoneCountView {
    /// Its name.
    pub name: String,
    /// Customers inside it now.
    pub customers: usize,
}

/// What a zone import wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ZonesImportedView {
    /// Zones in the file.
    pub imported: usize,
    /// New zones.
    pub inserted: u64,
    /// Zones of the same name replaced.
    pub updated: u64,
    /// Each zone with its customers.
    pub zones: Vec<ZoneCountView>,
}

/// One customer's service link as an import made it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttachmentView {
    pub account_id: String,
    pub pipe_id: String,
    /// Metres to the pipe when it was the nearest one; absent when the services file named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distance_m: Option<f64>,
}

/// What a network import wrote.
#[derive(Debug, Clone, Serialize)]
pub struct NetworkImportedView {
    pub nodes: u64,
    pub links: u64,
    pub devices: u64,
    /// Reservoirs, tanks and substations.
    pub sources: u64,
    /// Customers tied to a pipe.
    pub attached: u64,
    /// Customers with no pipe (none within the distance, or not in the services file).
    pub unattached_count: u64,
    /// The longest attachment distance, metres (absent with a services file).
    pub max_distance_m: Option<f64>,
    pub attachments: Vec<AttachmentView>,
    /// Account ids of the unattached customers.
    pub unattached: Vec<String>,
}

/// An isolation device to close, where the crew finds it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeviceView {
    pub id: String,
    /// `valve`, `switch` or `fuse`.
    pub kind: String,
    pub lon: f64,
    pub lat: f64,
}

/// The isolation trace behind a `--burst-pipe` selection.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceView {
    /// The burst pipe (or faulted section).
    pub burst_pipe: String,
    /// The devices given as broken.
    pub broken_valves: Vec<String>,
    /// The working devices on the segment's boundary: closing them shuts the segment.
    pub valves_to_close: Vec<DeviceView>,
    /// The pipes of the isolated segment.
    pub segment_pipes: Vec<String>,
    /// The pipes that lose every path to a source once the segment is shut.
    pub dry_pipes: Vec<String>,
}
