//! The HMI API over the running agent: [`crate::hmi::Backend`] implemented on [`Core`], so the
//! screen reads and acts on the same memory the rules change, through the same write-then-tell
//! path. Owns the mapping from the core's types and errors to the API's views; nothing else.

use std::sync::Arc;

use crate::hmi::{
    Backend, BackendError, DriverAction, DtcView, HmiEvent, MaintenanceView, PromptView,
    ServiceCaseView, ServiceRequest, ServiceView, SettingsView, VehicleView,
};
use crate::memory::Stage;
use crate::rules::{self, RulesError};
use crate::runtime::core::{Core, CoreError};

/// [`Core`] as the HMI's backend.
#[derive(Debug, Clone)]
pub(crate) struct CoreBackend(pub Arc<Core>);

fn backend_error(e: CoreError) -> BackendError {
    match e {
        CoreError::Rules(RulesError::NotFound(m)) => BackendError::NotFound(m),
        CoreError::Rules(RulesError::Conflict(m)) => BackendError::Conflict(m),
        CoreError::Rules(RulesError::Invalid(m)) => BackendError::Invalid(m),
        CoreError::Store(m) => BackendError::Unavailable(m),
        CoreError::StorageFull(m) => BackendError::StorageFull(m),
    }
}

fn stage_name(s: Stage) -> String {
    s.as_str().to_owned()
}

impl Backend for CoreBackend {
    fn vehicle(&self) -> VehicleView {
        let now = self.0.now();
        self.0.with(|r, store| {
            let cfg = r.config();
            let mem = r.memory();
            let offset = cfg.prompts.utc_offset_minutes;
            VehicleView {
                vin: cfg.vehicle.vin.to_string(),
                line: cfg.vehicle.line.clone(),
                category: format!("{:?}", cfg.vehicle.category).to_lowercase(),
                odometer_km: mem.vehicle.odometer.map(|o| o.km()),
                engine_hours: mem.vehicle.engine_hours.map(|h| h.hours()),
                moving: r.is_moving(now),
                parked: r.parked(),
                mil: mem.vehicle.mil,
                active_dtcs: mem
                    .dtcs
                    .values()
                    .filter(|h| h.active)
                    .map(DtcView::from)
                    .collect(),
                maintenance: r
                    .checklist(now)
                    .iter()
                    .map(|s| MaintenanceView {
                        item: s.item.clone(),
                        stage: stage_name(s.stage),
                        due_km: s.due_odometer.map(|o| o.km()),
                        due_date: s
                            .due_at
                            .and_then(|t| rules::calendar::local_date(t, offset))
                            .map(|d| d.to_string()),
                        remaining_km: s.remaining_m.map(|m| m as f64 / 1000.0),
                        remaining_days: s.remaining_days,
                    })
                    .collect(),
                outbox_depth: store.outbox_len(),
            }
        })
    }

    fn prompts(&self) -> Vec<PromptView> {
        self.0
            .visible_prompts()
            .iter()
            .map(PromptView::from)
            .collect()
    }

    fn subscribe(&self) -> tokio::sync::broadcast::Receiver<HmiEvent> {
        self.0.subscribe()
    }

    fn act(&self, id: &str, action: DriverAction) -> Result<PromptView, BackendError> {
        let action = match action {
            DriverAction::Ack => rules::DriverAction::Ack,
            DriverAction::Snooze { minutes } => rules::DriverAction::Snooze { minutes },
            DriverAction::Dismiss => rules::DriverAction::Dismiss,
            DriverAction::Book => rules::DriverAction::Book,
        };
        self.0
            .act(id, action)
            .map(|p| PromptView::from(&p))
            .map_err(backend_error)
    }

    fn record_service(&self, req: ServiceRequest) -> Result<ServiceView, BackendError> {
        self.0
            .record_service(&req.items, req.odometer, req.at)
            .map(|s| ServiceView::from(&s))
            .map_err(backend_error)
    }

    fn service_cases(&self) -> Vec<ServiceCaseView> {
        self.0.with(|r, _| {
            r.memory()
                .service_cases
                .iter()
                .map(|(id, c)| ServiceCaseView::new(*id, c))
                .collect()
        })
    }

    fn answer_service(
        &self,
        alert_id: u64,
        answer: rapport_shared::DriverAnswer,
    ) -> Result<ServiceCaseView, BackendError> {
        self.0
            .answer_service(alert_id, answer)
            .map(|c| ServiceCaseView::new(alert_id, &c))
            .map_err(backend_error)
    }

    fn settings(&self) -> SettingsView {
        SettingsView::from(&self.0.settings())
    }

    fn put_settings(&self, s: SettingsView) -> Result<SettingsView, BackendError> {
        let settings = s.to_settings().map_err(BackendError::Invalid)?;
        self.0
            .set_settings(settings)
            .map(|s| SettingsView::from(&s))
            .map_err(backend_error)
    }

    fn store_health(&self) -> (&'static str, u64) {
        let (fault, failed) = self.0.store_health();
        (fault.map_or("ok", |f| f.as_str()), failed)
    }
}

/// Serves the HMI API for `core` on `listener` until `shutdown`.
///
/// # Errors
/// The server failed.
pub async fn serve(
    listener: tokio::net::TcpListener,
    core: Arc<Core>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), crate::Error> {
    crate::hmi::serve(listener, Arc::new(CoreBackend(core)), shutdown).await
}
