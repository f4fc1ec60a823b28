//! SIP: `wire` reads and writes messages (shared by both kinds), `options` is the `sip` kind
//! (an OPTIONS request to a server or trunk), `call` the `call` kind (a test call through a user
//! agent: INVITE, answer, BYE).

pub mod call;
mod options;
pub mod wire;

pub use options::{SipSpec, SipTransport, parse_response, probe, request, udp_socket};
