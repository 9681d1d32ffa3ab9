//! `/v1/customers`: upload (CSV or GeoJSON), list, get, delete.

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use outagecast_core::auth::Action;
use outagecast_core::customer::{AccountId, Customer};
use outagecast_engine::Engine;
use outagecast_ingest::customers::{CustomerFormat, Rejected};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error::{ApiError, ErrorBody};
use super::heavy::Finish;
use super::{ApiQuery, ApiState, Caller, allowed};

/// A customer as the register holds it.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerView {
    /// The utility's account id.
    pub account_id: String,
    /// Longitude of the service point.
    pub lon: f64,
    /// Latitude of the service point.
    pub lat: f64,
    /// The premises' address.
    pub address: String,
    /// Phone numbers, E.164.
    pub phones: Vec<String>,
    /// Email addresses.
    pub emails: Vec<String>,
    /// fi, sv or en.
    pub language: &'static str,
    /// On the priority register (told first, even in quiet hours).
    pub priority: bool,
}

impl CustomerView {
    fn of(c: &Customer) -> Self {
        CustomerView {
            account_id: c.account_id().as_str().to_string(),
            lon: c.location().lon(),
            lat: c.location().lat(),
            address: c.address().to_string(),
            phones: c.phones().iter().map(|p| p.e164().to_string()).collect(),
            emails: c.emails().iter().map(|e| e.as_str().to_string()).collect(),
            language: c.language().code(),
            priority: c.priority(),
        }
    }
}

/// What an upload changed; bad rows are listed and skipped.
#[derive(Debug, Serialize, ToSchema)]
pub struct UploadView {
    /// Rows (or features) read.
    pub read: usize,
    /// New accounts.
    pub inserted: usize,
    /// Accounts replaced.
    pub updated: usize,
    /// Rows not imported, with the line (CSV) or feature number (GeoJSON) and the reason.
    #[schema(value_type = Vec<Object>)]
    pub rejected: Vec<Rejected>,
}

/// Upload options.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// Refuse the whole upload if any row is bad (nothing is written).
    #[serde(default)]
    pub strict: bool,
}

/// Import customers: CSV (`text/csv`, header
/// `account_id,lon,lat,address,phone,email,language,priority`) or GeoJSON
/// (`application/geo+json`: a FeatureCollection of Points with those properties). Existing
/// accounts are replaced; opt-outs survive.
#[utoipa::path(post, operation_id = "customers_upload", path = "/v1/customers", tag = "customers", params(UploadQuery),
    request_body(content((String = "text/csv"), (Object = "application/geo+json"))),
    responses((status = 200, description = "OK", body = UploadView), (status = 400, description = "A field is invalid", body = ErrorBody),
        (status = 415, description = "Unsupported content type", body = ErrorBody), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn upload(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<UploadQuery>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<UploadView>, ApiError> {
    let actor = allowed(&caller, Action::ImportCustomers)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(format) = CustomerFormat::from_content_type(content_type) else {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "invalid",
            format!(
                "Content-Type: {content_type:?} is not text/csv or application/geo+json; send the file with one of those"
            ),
        )
        .at("Content-Type"));
    };
    let engine = state.engine.clone();
    // Parsing a large file and rebuilding the customer index are CPU work: both on the
    // blocking pool.
    state
        .heavy
        .run(Finish::ToTheEnd, async move {
            import(&engine, &actor, format, &body, q.strict).await
        })
        .await
        .map(Json)
}

/// Parses and imports one upload; a strict upload with a bad row writes nothing.
async fn import(
    engine: &Engine,
    actor: &str,
    format: CustomerFormat,
    body: &[u8],
    strict: bool,
) -> Result<UploadView, ApiError> {
    let parsed = format.read(body, engine.settings().record_rules())?;
    if strict && !parsed.rejected.is_empty() {
        let first = &parsed.rejected[0];
        return Err(ApiError::invalid(
            "body",
            format!(
                "{} of {} rows are bad (first, line {}: {}); nothing was imported (strict)",
                parsed.rejected.len(),
                parsed.rejected.len() + parsed.customers.len(),
                first.line,
                first.reason
            ),
        ));
    }
    let read = parsed.customers.len() + parsed.rejected.len();
    let summary = engine
        .import(actor, &parsed.customers, "api upload")
        .await?;
    Ok(UploadView {
        read,
        inserted: summary.inserted,
        updated: summary.updated,
        rejected: parsed.rejected,
    })
}

/// Pages of the register.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CustomerListQuery {
    /// Only accounts after this id (the previous page's `next`).
    pub after: Option<String>,
    /// At most this many (default 100, at most 1000).
    pub limit: Option<u32>,
}

/// A page of customers, by account id.
#[derive(Debug, Serialize, ToSchema)]
pub struct CustomerPage {
    /// Customers.
    pub customers: Vec<CustomerView>,
    /// Pass as `after` for the next page; absent on the last one.
    pub next: Option<String>,
}

/// List customers by account id.
#[utoipa::path(get, operation_id = "customers_list", path = "/v1/customers", tag = "customers", params(CustomerListQuery),
    responses((status = 200, description = "OK", body = CustomerPage), (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn list(
    State(state): State<ApiState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerListQuery>,
) -> Result<Json<CustomerPage>, ApiError> {
    allowed(&caller, Action::ReadCustomers)?;
    let limit = q.limit.unwrap_or(100).clamp(1, 1000);
    let page = state
        .engine
        .customers_page(q.after.as_deref(), limit)
        .await?;
    let customers: Vec<CustomerView> = page.iter().map(|(_, c)| CustomerView::of(c)).collect();
    let next = (customers.len() == limit as usize)
        .then(|| customers.last().map(|c| c.account_id.clone()))
        .flatten();
    Ok(Json(CustomerPage { customers, next }))
}

fn account(raw: &str) -> Result<AccountId, ApiError> {
    AccountId::parse(raw).map_err(|e| ApiError::from(e).at("account_id"))
}

/// One customer.
#[utoipa::path(get, operation_id = "customers_get", path = "/v1/customers/{account_id}", tag = "customers",
    params(("account_id" = String, Path, description = "The utility's account id")),
    responses((status = 200, description = "OK", body = CustomerView), (status = 404, description = "Not found", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn get(
    State(state): State<ApiState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> Result<Json<CustomerView>, ApiError> {
    allowed(&caller, Action::ReadCustomers)?;
    let id = account(&account_id)?;
    match state.engine.customer(&id).await? {
        Some(c) => Ok(Json(CustomerView::of(&c))),
        None => Err(ApiError::not_found(format!(
            "no customer has the account id {account_id:?}"
        ))),
    }
}

/// Delete a customer: their unsent notices are withdrawn and their numbers disarmed.
/// Opt-outs stay (they belong to the phone number or address).
#[utoipa::path(delete, operation_id = "customers_delete", path = "/v1/customers/{account_id}", tag = "customers",
    params(("account_id" = String, Path, description = "The utility's account id")),
    responses((status = 204, description = "Deleted"), (status = 404, description = "Not found", body = ErrorBody),
        (status = 401, description = "No valid token", body = ErrorBody), (status = 403, description = "The token's role may not do this", body = ErrorBody)),
    security(("bearer" = [])))]
pub(super) async fn delete(
    State(state): State<ApiState>,
    caller: Caller,
    Path(account_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let actor = allowed(&caller, Action::ImportCustomers)?;
    let id = account(&account_id)?;
    if state.engine.delete_customer(&actor, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!(
            "no customer has the account id {account_id:?}"
        )))
    }
}
