//! The whole HTTP server of `outagecast serve`, built from typed configuration: the `/v1` API
//! with `/openapi.json`, the provider webhooks, `/metrics`, and (in [`run`]) the IVR routes
//! and `/healthz`. The binary builds a [`ServerConfig`] and calls [`Server::new`]; it builds
//! no routes itself.

use std::future::Future;
use std::sync::Arc;

use axum::Router;
use outagecast_engine::Engine;
use outagecast_store::Store;

use crate::api::{ApiSettings, ApiState};
use crate::auth::{Auth, webhook_bearer};
use crate::webhooks::{WebhookSettings, Webhooks};
use crate::{Listeners, Result, ServeSettings, run};

/// Everything the HTTP server needs to know. Secrets inside print as `***`.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// The IVR front ends, FastAGI and the change-log poll. Its `ivr_guard` and
    /// `voice_signer` are filled in by [`Server::new`] from the tokens and the webhooks.
    pub serve: ServeSettings,
    /// The `/v1` API.
    pub api: ApiSettings,
    /// The provider webhooks (and the voice webhook's signature check).
    pub webhooks: WebhookSettings,
}

/// The server with every route built, not yet serving.
#[derive(Debug)]
pub struct Server {
    store: Store,
    settings: ServeSettings,
    routes: Router,
}

impl Server {
    /// Checks `config` and builds every route over `store` and `engine`: a bad setting is an
    /// error naming it, before anything listens.
    pub fn new(store: Store, engine: Arc<Engine>, config: ServerConfig) -> Result<Server> {
        let webhooks = Webhooks::new(config.webhooks)?;
        let auth = Auth::new(store.clone());
        let mut settings = config.serve;
        settings.ivr_guard = Some(auth.clone());
        settings.voice_signer = webhooks.signer();
        let (api, doc) = crate::api::api(ApiState::new(engine, auth.clone(), config.api));
        let doc = Arc::new(doc);
        let webhooks = webhooks
            .router(store.clone())
            .route_layer(axum::middleware::from_fn_with_state(auth, webhook_bearer));
        let routes = api
            .merge(webhooks)
            .merge(crate::metrics::metrics_routes(store.clone()))
            .route(
                "/openapi.json",
                axum::routing::get(move || {
                    let doc = Arc::clone(&doc);
                    async move { axum::Json(doc.as_ref().clone()) }
                }),
            );
        Ok(Server {
            store,
            settings,
            routes,
        })
    }

    /// Serves on `listeners` until `shutdown` completes (see [`run`]).
    pub async fn run(self, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<()> {
        run(listeners, self.store, self.settings, self.routes, shutdown).await
    }
}
