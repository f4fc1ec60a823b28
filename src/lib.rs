//! thongsuot: watches telecom carriers and postal operators against the exam-season promises
//! ("100 % connected 24/24", "100 % delivered safely and on time"). See ARCHITECTURE.md.
#![forbid(unsafe_code)]
#![recursion_limit = "512"]

pub mod config;
pub mod daemon;
pub mod http;
pub mod metrics;
pub mod model;
pub mod notify;
pub mod postal;
pub mod probe;
pub mod report;
pub mod rules;
pub mod scheduler;
pub mod sdnotify;
pub mod sla;
pub mod status;
pub mod store;
pub mod text;
pub mod tls;
