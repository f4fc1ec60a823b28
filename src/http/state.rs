//! What every handler is given: the daemon's handles, and the HTTP layer's own bookkeeping, held
//! per server rather than in process-wide statics (so a test's second daemon starts clean).

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use tokio::sync::Semaphore;

use crate::daemon::Handles;

/// Reports built at once: they are heavy, and a burst of requests must not crowd out the
/// blocking threads that probes and the notifier need.
const REPORTS_AT_ONCE: usize = 2;

#[derive(Clone)]
pub struct AppState {
    handles: Arc<Handles>,
    /// Failed authentications per client address: (minute it started, count). Bounded.
    pub auth_failures: Arc<Mutex<HashMap<IpAddr, (i64, u32)>>>,
    /// Permits to build a report.
    pub reports: Arc<Semaphore>,
}

impl AppState {
    pub fn new(handles: Handles) -> AppState {
        AppState {
            handles: Arc::new(handles),
            auth_failures: Arc::default(),
            reports: Arc::new(Semaphore::new(REPORTS_AT_ONCE)),
        }
    }
}

impl Deref for AppState {
    type Target = Handles;

    fn deref(&self) -> &Handles {
        &self.handles
    }
}
