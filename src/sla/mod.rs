//! The SLA core: pure state machines and accounting. Nothing here reads the clock or does
//! I/O; timestamps come in as arguments, so tests feed plain values.

pub mod ledger;
pub mod spans;
pub mod state;
pub mod window;

pub use state::{Health, Observation, StateMachine, Transition};
