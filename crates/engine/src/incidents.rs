//! The incident use cases: preview, declare, update, restore, cancel, list, show, report.
//! Each takes a typed request (values already parsed by the front end) and returns a view;
//! the rails and their wording are checked here, once for every front end.

use std::collections::{BTreeMap, HashSet};

use chrono::{DateTime, Utc};
use outagecast_core::CoreError;
use outagecast_core::area::Area;
use outagecast_core::contact::{Channel, Language};
use outagecast_core::customer::{Customer, CustomerId};
use outagecast_core::incident::{
    Cause, DraftParts, EventKind, IncidentChanges, IncidentDraft, IncidentId, IncidentKind,
    Severity,
};
use outagecast_core::message::Wording;
use outagecast_core::notice::{RecipientPlan, plan_recipients};
use outagecast_core::sms::{Encoding, segments};
use outagecast_store::{DeclareOutcome, Growth, Provenance, Transition, TransitionOutcome};

use crate::area::{AreaSpec, ResolvedArea};
use crate::views::{
    DeclaredView, IncidentDetail, IncidentView, PreviewView, RefusedView, ReportView,
    SelectionView, SmsTextView, TraceView, TransitionView,
};
use crate::{Engine, EngineError, Rails, Refusal, Result, Selection, Spelling, rails};

/// An incident's details as the front end parsed them; the area comes separately.
#[derive(Debug, Clone)]
pub struct IncidentDetails {
    /// Which service is out.
    pub kind: IncidentKind,
    /// CAP severity.
    pub severity: Severity,
    /// What happened.
    pub cause: Cause,
    /// Estimated time of restoration.
    pub etr: Option<DateTime<Utc>>,
    /// The operator's own id.
    pub reference: Option<String>,
    /// When the incident stops being announced by itself.
    pub expires_at: Option<DateTime<Utc>>,
}

impl IncidentDetails {
    /// The checked draft of these details over `area`.
    pub fn draft(self, area: Area, now: DateTime<Utc>) -> Result<IncidentDraft, CoreError> {
        IncidentDraft::new(
            DraftParts {
                kind: self.kind,
                severity: self.severity,
                cause: self.cause,
                etr: self.etr,
                reference: self.reference,
                area,
                expires_at: self.expires_at,
            },
            now,
        )
    }
}

/// Declare (or preview) an incident.
#[derive(Debug, Clone)]
pub struct DeclareRequest {
    /// Who, for the audit log (`cli:alice`, `token:ops`).
    pub actor: String,
    /// What happened.
    pub details: IncidentDetails,
    /// Where.
    pub area: AreaSpec,
    /// What the operator allowed or confirmed.
    pub rails: Rails,
    /// When.
    pub now: DateTime<Utc>,
}

/// What a declaration wrote.
#[derive(Debug)]
pub struct Declared {
    /// The store's outcome.
    pub outcome: DeclareOutcome,
    /// Who was selected and told.
    pub selection: Selection,
    /// How the area was given, when not as a plain shape.
    pub area_source: Option<String>,
    /// The isolation trace, for a declaration by topology.
    pub topology: Option<TraceView>,
}

impl Declared {
    /// The one JSON shape of a declaration.
    pub fn view(&self) -> DeclaredView {
        let mut view = DeclaredView::of(&self.outcome, &self.selection, self.area_source.clone());
        view.topology = self.topology.clone();
        view
    }
}

/// What declaring would do; nothing written.
#[derive(Debug)]
pub struct Preview {
    /// The draft that would be declared.
    pub draft: IncidentDraft,
    /// Who it would select.
    pub selection: Selection,
    /// The view (counts, sample addresses, SMS texts, the refusal if any).
    pub view: PreviewView,
}

/// Update an incident: new details and/or a new area.
#[derive(Debug, Clone)]
pub struct UpdateRequest {
    /// Who.
    pub actor: String,
    /// Which incident.
    pub id: IncidentId,
    /// A new ETR.
    pub etr: Option<DateTime<Utc>>,
    /// A new cause.
    pub cause: Option<Cause>,
    /// A new severity.
    pub severity: Option<Severity>,
    /// A new area.
    pub area: Option<AreaSpec>,
    /// What the operator allowed or confirmed for a new area.
    pub rails: Rails,
    /// When.
    pub now: DateTime<Utc>,
}

/// What an update, restore or cancel wrote.
#[derive(Debug)]
pub struct Transitioned {
    /// The store's outcome.
    pub outcome: TransitionOutcome,
    /// Customers affected before that a new area no longer holds.
    pub left_customers: u64,
}

impl Transitioned {
    /// The one JSON shape of a transition.
    pub fn view(&self) -> TransitionView {
        TransitionView::of(&self.outcome, self.left_customers)
    }
}

/// Who a new area adds and who leaves it, planned before anything is written.
#[derive(Debug)]
pub(crate) struct GrowthPlan {
    /// Customers in the new area that were not affected before.
    pub added: Vec<CustomerId>,
    /// Who among them is told.
    pub plan: RecipientPlan,
    /// Customers in the new area.
    pub count: u64,
    /// Customers affected before that the new area no longer holds.
    pub left: Vec<CustomerId>,
}

impl Engine {
    /// The draft, its selection and why declaring it would be refused (if it would).
    async fn plan_declaration(
        &self,
        req: DeclareRequest,
        spelling: &Spelling,
    ) -> Result<(
        IncidentDraft,
        ResolvedArea,
        Selection,
        Option<Refusal>,
        Option<TraceView>,
    )> {
        // By topology the selection is the trace's customers, and the area only its outline.
        let (resolved, traced) = match req.area {
            AreaSpec::Topology(spec) => {
                let traced = self.trace_selection(&spec).await?;
                let resolved = ResolvedArea {
                    area: traced.area.clone(),
                    source: Some(traced.source.clone()),
                };
                (resolved, Some(traced))
            }
            spec => (self.resolve_area(spec, spelling).await?, None),
        };
        let draft = req.details.draft(resolved.area.clone(), req.now)?;
        let (selection, topology) = match traced {
            Some(t) => (self.select_accounts(&t.accounts).await?, Some(t.view)),
            None => (self.select(draft.area()).await?, None),
        };
        let count = selection.customers.len() as u64;
        let refusal = self.refusal(draft.area(), count, &req.rails).await?;
        Ok((draft, resolved, selection, refusal, topology))
    }

    /// What declaring `req` would do, writing nothing.
    pub async fn preview(&self, req: DeclareRequest, spelling: &Spelling) -> Result<Preview> {
        let now = req.now;
        let (draft, resolved, selection, refusal, topology) =
            self.plan_declaration(req, spelling).await?;
        let mut preview =
            self.preview_of(draft, resolved.source, selection, refusal, spelling, now);
        preview.view.topology = topology;
        Ok(preview)
    }

    /// The preview of a planned declaration.
    pub(crate) fn preview_of(
        &self,
        draft: IncidentDraft,
        area_source: Option<String>,
        selection: Selection,
        refusal: Option<Refusal>,
        spelling: &Spelling,
        now: DateTime<Utc>,
    ) -> Preview {
        const SAMPLE: usize = 10;
        let mut addresses: Vec<&str> = selection
            .customers
            .iter()
            .map(|(_, c)| c.address())
            .collect();
        addresses.sort_unstable();
        addresses.dedup();
        let mut per_language: BTreeMap<Language, u64> = BTreeMap::new();
        for r in selection
            .plan
            .recipients
            .iter()
            .filter(|r| r.channel == Channel::Sms)
        {
            *per_language.entry(r.language).or_default() += 1;
        }
        let wording = self.settings.wording(now);
        let sms_texts: Vec<SmsTextView> = per_language
            .into_iter()
            .map(|(language, recipients)| {
                let text = wording
                    .notice(IncidentId(0), &draft, EventKind::Declared, language)
                    .body;
                let cost = segments(&text);
                SmsTextView {
                    language,
                    encoding: match cost.encoding {
                        Encoding::Gsm7 => "GSM-7",
                        Encoding::Ucs2 => "UCS-2",
                    },
                    segments: cost.count,
                    recipients,
                    text,
                }
            })
            .collect();
        let view = PreviewView {
            area: draft.area().clone(),
            area_source,
            notices: SelectionView::notices(&selection),
            sms_segments: sms_texts
                .iter()
                .map(|t| u64::from(t.segments) * t.recipients)
                .sum(),
            sms_texts,
            sample_addresses: addresses
                .iter()
                .take(SAMPLE)
                .map(|a| a.to_string())
                .collect(),
            distinct_addresses: addresses.len(),
            refused: refusal.map(|r| RefusedView {
                field: r.field(),
                message: r.explain(spelling),
            }),
            selection: SelectionView::of(&selection),
            topology: None,
        };
        Preview {
            draft,
            selection,
            view,
        }
    }

    /// Declares an incident: the area resolved, its customers selected, the rails checked,
    /// then the incident, its notices and IVR flags written in one transaction. A refusal is
    /// explained in `spelling`'s words. The CLI and the API both declare through here.
    pub async fn declare(&self, req: DeclareRequest, spelling: &Spelling) -> Result<Declared> {
        let (actor, now) = (req.actor.clone(), req.now);
        let (draft, resolved, selection, refusal, topology) =
            self.plan_declaration(req, spelling).await?;
        if let Some(refusal) = refusal {
            return Err(refused(refusal, spelling));
        }
        let outcome = self
            .declare_selected(&actor, &draft, &selection, resolved.provenance(), now)
            .await?;
        Ok(Declared {
            outcome,
            selection,
            area_source: resolved.source,
            topology,
        })
    }

    /// Writes a declaration on a selection already made and checked: the one place a use
    /// case declares in the store.
    pub(crate) async fn declare_selected(
        &self,
        actor: &str,
        draft: &IncidentDraft,
        selection: &Selection,
        provenance: Option<Provenance>,
        now: DateTime<Utc>,
    ) -> Result<DeclareOutcome> {
        let ids: Vec<CustomerId> = selection.customers.iter().map(|(i, _)| *i).collect();
        let declaration = outagecast_store::Declaration {
            draft,
            affected: &ids,
            plan: &selection.plan,
            actor,
            now,
            provenance: provenance.as_ref(),
        };
        let wording = self.settings.wording(now);
        Ok(self.store.declare(declaration, &wording).await?)
    }

    /// Who `area` would add to incident `id` and who would leave it.
    pub(crate) async fn plan_growth(&self, id: IncidentId, area: &Area) -> Result<GrowthPlan> {
        let selection = self.select(area).await?;
        self.growth_of(id, selection).await
    }

    /// Who `selection` would add to incident `id` and who would leave it.
    async fn growth_of(&self, id: IncidentId, selection: Selection) -> Result<GrowthPlan> {
        let before: HashSet<CustomerId> = self.store.affected_ids(id).await?.into_iter().collect();
        let count = selection.customers.len() as u64;
        let inside: HashSet<CustomerId> = selection.customers.iter().map(|(i, _)| *i).collect();
        let mut left: Vec<CustomerId> = before
            .iter()
            .filter(|i| !inside.contains(i))
            .copied()
            .collect();
        left.sort_unstable();
        let added: Vec<(CustomerId, Customer)> = selection
            .customers
            .into_iter()
            .filter(|(i, _)| !before.contains(i))
            .collect();
        let opted_out = self.store.opt_outs().await?;
        let refs: Vec<(CustomerId, &Customer)> = added.iter().map(|(i, c)| (*i, c)).collect();
        let plan = plan_recipients(&refs, |ch, addr| {
            opted_out.contains(&(ch, addr.to_string()))
        });
        Ok(GrowthPlan {
            added: added.iter().map(|(i, _)| *i).collect(),
            plan,
            count,
            left,
        })
    }

    /// Why moving an incident to `area` (planned as `growth`) must be refused under `rails`,
    /// if it must: the same rails as a declaration, the confirmation on the customers added.
    pub(crate) async fn growth_refusal(
        &self,
        area: &Area,
        growth: &GrowthPlan,
        rails: &Rails,
    ) -> Result<Option<Refusal>> {
        let index = self.current_index().await?;
        Ok(rails::check_growth(
            rails,
            &area.describe(),
            growth.count,
            growth.added.len() as u64,
            || outagecast_ingest::swap::swapped(area).map_or(0, |m| index.count(&m)),
        ))
    }

    /// Updates an incident. A new area passes the rails (the customers it adds confirmed
    /// above the threshold) and tells only those it adds; those it no longer holds leave the
    /// incident (counted in the view), and the ones already told hear they are no longer
    /// affected.
    pub async fn update(&self, req: UpdateRequest, spelling: &Spelling) -> Result<Transitioned> {
        // By topology (a broken valve found on site) the trace is re-run: its customers are the
        // new selection, its outline the new area.
        let (area, traced) = match req.area {
            Some(AreaSpec::Topology(spec)) => {
                let traced = self.trace_selection(&spec).await?;
                let selection = self.select_accounts(&traced.accounts).await?;
                (Some(traced.area), Some(selection))
            }
            Some(spec) => (Some(self.resolve_area(spec, spelling).await?.area), None),
            None => (None, None),
        };
        let growth = match &area {
            Some(area) => {
                let growth = match traced {
                    Some(selection) => self.growth_of(req.id, selection).await?,
                    None => self.plan_growth(req.id, area).await?,
                };
                if let Some(refusal) = self.growth_refusal(area, &growth, &req.rails).await? {
                    return Err(refused(refusal, spelling));
                }
                Some(growth)
            }
            None => None,
        };
        let changes = IncidentChanges {
            etr: req.etr,
            cause: req.cause,
            severity: req.severity,
            area,
        };
        self.transition_planned(
            &req.actor,
            req.id,
            EventKind::Updated,
            changes,
            growth,
            None,
            req.now,
        )
        .await
    }

    /// Marks an incident restored: those told hear so, unsent notices are withdrawn, the IVR
    /// disarms.
    pub async fn restore(
        &self,
        actor: &str,
        id: IncidentId,
        now: DateTime<Utc>,
    ) -> Result<Transitioned> {
        self.transition_planned(
            actor,
            id,
            EventKind::Restored,
            IncidentChanges::default(),
            None,
            None,
            now,
        )
        .await
    }

    /// Cancels an incident declared in error: those told hear so, unsent notices are
    /// withdrawn, the IVR disarms.
    pub async fn cancel(
        &self,
        actor: &str,
        id: IncidentId,
        now: DateTime<Utc>,
    ) -> Result<Transitioned> {
        self.transition_planned(
            actor,
            id,
            EventKind::Cancelled,
            IncidentChanges::default(),
            None,
            None,
            now,
        )
        .await
    }

    /// Writes a transition whose growth is already planned and checked: the one place a use
    /// case transitions in the store.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn transition_planned(
        &self,
        actor: &str,
        id: IncidentId,
        event: EventKind,
        changes: IncidentChanges,
        growth: Option<GrowthPlan>,
        provenance: Option<&Provenance>,
        now: DateTime<Utc>,
    ) -> Result<Transitioned> {
        let growth = growth.filter(|_| event == EventKind::Updated);
        let left_customers = growth.as_ref().map_or(0, |g| g.left.len() as u64);
        let transition = Transition {
            id,
            event,
            changes,
            actor,
            now,
            growth: growth.as_ref().map(|g| Growth {
                added: &g.added,
                left: &g.left,
                plan: &g.plan,
            }),
            provenance,
        };
        let wording = self.settings.wording(now);
        let outcome = self.store.transition(transition, &wording).await?;
        Ok(Transitioned {
            outcome,
            left_customers,
        })
    }

    /// The incidents, live ones only unless `all`, as their views.
    pub async fn incidents(&self, all: bool) -> Result<Vec<IncidentView>> {
        Ok(self
            .store
            .incidents(all)
            .await?
            .iter()
            .map(IncidentView::of)
            .collect())
    }

    /// One incident with its counts.
    pub async fn incident(&self, id: IncidentId) -> Result<IncidentView> {
        let incident = self.store.incident(id).await?;
        Ok(IncidentView::of(&self.store.summary(incident).await?))
    }

    /// One incident with its counts, the affected accounts and where it came from.
    pub async fn incident_detail(&self, id: IncidentId) -> Result<IncidentDetail> {
        let incident = self.incident(id).await?;
        let accounts = self.store.affected_accounts(id).await?;
        let origin = self.store.origin(id).await?;
        Ok(IncidentDetail {
            incident,
            affected_account_ids: accounts.iter().map(|a| a.as_str().to_string()).collect(),
            origin,
        })
    }

    /// Counts by channel and status, and every recipient's outcome.
    pub async fn report(&self, id: IncidentId) -> Result<ReportView> {
        let view = self.incident(id).await?;
        let recipients = self.store.notice_report(id).await?;
        Ok(ReportView {
            id: id.0,
            label: id.label(),
            status: view.head.status,
            affected_customers: view.affected_customers,
            counts: view.notices,
            possible_duplicates: recipients.iter().filter(|r| r.possible_duplicate).count() as u64,
            calls: self.store.calls_avoided(id).await?,
            recipients,
        })
    }

    /// The queued notices of an incident: channel, address, priority and text, in the order
    /// the dispatcher sends them.
    pub async fn queued_notices(
        &self,
        id: IncidentId,
    ) -> Result<Vec<(Channel, String, bool, String)>> {
        Ok(self.store.pending_notices(id).await?)
    }
}

/// A refusal as an error, explained in `spelling`'s words.
pub(crate) fn refused(refusal: Refusal, spelling: &Spelling) -> EngineError {
    EngineError::Refused {
        message: refusal.explain(spelling),
        refusal,
    }
}
