//! One integration-test binary (links once). Real servers, real sockets: see `support`.

mod calls;
mod cli;
mod config;
mod daemon;
mod dashboards;
mod email;
mod faults;
mod fuzz_smoke;
mod lab;
mod layout;
mod ledger;
mod load;
mod postal;
mod probes;
mod rules;
mod selfhealth;
mod shutdown;
mod sla;
mod sms;
mod soak;
mod support;
mod torture;
mod web;
mod wire;
