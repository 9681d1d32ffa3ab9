//! The API's schema types: the engine's views (`outagecast_engine::views`) field for field,
//! with their OpenAPI description. The engine knows no HTTP library; this is where its views
//! meet utoipa. Each `From` is a plain move, so the JSON is the engine's own.

use chrono::{DateTime, Utc};
use outagecast_core::area::Area;
use outagecast_core::contact::Channel;
use outagecast_core::incident::{IncidentKind, IncidentStatus, Severity};
use outagecast_core::notice::NoticeStatus;
use outagecast_engine::views as engine;
use serde::Serialize;
use utoipa::ToSchema;

/// Notices per channel.
#[derive(Debug, Clone, Copy, Default, Serialize, ToSchema, PartialEq, Eq)]
pub struct ChannelCounts {
    /// SMS notices.
    pub sms: u64,
    /// Email notices.
    pub email: u64,
    /// Voice calls (landlines, and customers who ask for calls).
    pub voice: u64,
}

/// Who an area holds and who would be told.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// Notices of one channel in one status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct NoticeCountView {
    /// `sms` or `email`.
    #[schema(value_type = String)]
    pub channel: Channel,
    /// `pending`, `held` (waiting for a failing provider or a channel not configured),
    /// `sent`, `delivered`, `failed`, `superseded`, ...
    #[schema(value_type = String)]
    pub status: NoticeStatus,
    /// How many.
    pub count: u64,
}

/// What every view of an incident starts with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct IncidentHead {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`, as messages write it.
    pub label: String,
    /// The operator's own reference.
    pub reference: Option<String>,
    /// water, power, gas, heating, telecom or sewer.
    #[schema(value_type = String)]
    pub kind: IncidentKind,
    /// minor, moderate, severe or extreme.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// declared, updated, restored or cancelled.
    #[schema(value_type = String)]
    pub status: IncidentStatus,
    /// What happened.
    pub cause: String,
    /// Estimated time of restoration.
    pub etr: Option<DateTime<Utc>>,
    /// When the incident stops being announced by itself.
    pub expires_at: Option<DateTime<Utc>>,
    /// The area, as GeoJSON (circles and corridors carry `radius_m` / `buffer_m`).
    #[schema(value_type = Object)]
    pub area: Area,
    /// Declared.
    pub declared_at: DateTime<Utc>,
}

/// An incident with its headline numbers.
#[derive(Debug, Clone, Serialize, ToSchema)]
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

/// What a declaration wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
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
    /// The isolation trace, for a declaration by `burst_pipe`.
    #[serde(flatten)]
    pub topology: TraceView,
}

/// An isolation device to close, where the crew finds it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct DeviceView {
    /// Its id in the network model.
    pub id: String,
    /// `valve`, `switch` or `fuse`.
    pub kind: String,
    /// Longitude, degrees.
    pub lon: f64,
    /// Latitude, degrees.
    pub lat: f64,
}

/// The isolation trace behind a `burst_pipe` selection; every field is absent for other
/// areas (this is flattened into the preview and the declaration, so it must also describe
/// their answers without a trace).
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct TraceView {
    /// The burst pipe (or faulted section).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub burst_pipe: Option<String>,
    /// The devices given as broken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broken_valves: Option<Vec<String>>,
    /// The working devices on the segment's boundary: closing them shuts the segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub valves_to_close: Option<Vec<DeviceView>>,
    /// The pipes of the isolated segment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub segment_pipes: Option<Vec<String>>,
    /// The pipes with no path left to a source once the segment is shut.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dry_pipes: Option<Vec<String>>,
}

impl From<Option<engine::TraceView>> for TraceView {
    fn from(v: Option<engine::TraceView>) -> Self {
        let Some(v) = v else {
            return TraceView::default();
        };
        TraceView {
            burst_pipe: Some(v.burst_pipe),
            broken_valves: Some(v.broken_valves),
            valves_to_close: Some(
                v.valves_to_close
                    .into_iter()
                    .map(|d| DeviceView {
                        id: d.id,
                        kind: d.kind,
                        lon: d.lon,
                        lat: d.lat,
                    })
                    .collect(),
            ),
            segment_pipes: Some(v.segment_pipes),
            dry_pipes: Some(v.dry_pipes),
        }
    }
}

/// What an update, restore or cancel wrote.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TransitionView {
    /// Numeric id.
    pub id: i64,
    /// `INC-<id>`.
    pub label: String,
    /// The status now.
    #[schema(value_type = String)]
    pub status: IncidentStatus,
    /// Estimated time of restoration now.
    pub etr: Option<DateTime<Utc>>,
    /// What happened.
    pub cause: String,
    /// The severity now.
    #[schema(value_type = String)]
    pub severity: Severity,
    /// The new event's id.
    #[schema(value_type = i64)]
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

impl From<engine::ChannelCounts> for ChannelCounts {
    fn from(c: engine::ChannelCounts) -> Self {
        ChannelCounts {
            sms: c.sms,
            email: c.email,
            voice: c.voice,
        }
    }
}

impl From<engine::SelectionView> for SelectionView {
    fn from(s: engine::SelectionView) -> Self {
        SelectionView {
            affected_customers: s.affected_customers,
            affected_account_ids: s.affected_account_ids,
            priority_customers: s.priority_customers,
            armed_numbers: s.armed_numbers,
            opted_out_contacts: s.opted_out_contacts,
            unreachable_customers: s.unreachable_customers,
        }
    }
}

impl From<engine::NoticeCountView> for NoticeCountView {
    fn from(n: engine::NoticeCountView) -> Self {
        NoticeCountView {
            channel: n.channel,
            status: n.status,
            count: n.count,
        }
    }
}

impl From<engine::IncidentHead> for IncidentHead {
    fn from(h: engine::IncidentHead) -> Self {
        IncidentHead {
            id: h.id,
            label: h.label,
            reference: h.reference,
            kind: h.kind,
            severity: h.severity,
            status: h.status,
            cause: h.cause,
            etr: h.etr,
            expires_at: h.expires_at,
            area: h.area,
            declared_at: h.declared_at,
        }
    }
}

impl From<engine::IncidentView> for IncidentView {
    fn from(v: engine::IncidentView) -> Self {
        IncidentView {
            head: v.head.into(),
            updated_at: v.updated_at,
            affected_customers: v.affected_customers,
            armed_numbers: v.armed_numbers,
            notices: v.notices.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<engine::DeclaredView> for DeclaredView {
    fn from(v: engine::DeclaredView) -> Self {
        DeclaredView {
            head: v.head.into(),
            area_source: v.area_source,
            notices: v.notices.into(),
            selection: v.selection.into(),
            topology: v.topology.into(),
        }
    }
}

impl From<engine::TransitionView> for TransitionView {
    fn from(v: engine::TransitionView) -> Self {
        TransitionView {
            id: v.id,
            label: v.label,
            status: v.status,
            etr: v.etr,
            cause: v.cause,
            severity: v.severity,
            event_id: v.event_id,
            notices: v.notices.into(),
            superseded: v.superseded,
            rewritten: v.rewritten,
            disarmed: v.disarmed,
            added_customers: v.added_customers,
            added_notices: v.added_notices.into(),
            left_customers: v.left_customers,
        }
    }
}
