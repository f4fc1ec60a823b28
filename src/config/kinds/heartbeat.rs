//! `kind = "heartbeat"`: the site pushes, the probe only checks the age of the last push. Its
//! one key.

use crate::config::diagnostics::Cx;
use crate::config::raw::RawTarget;
use crate::probe::ProbeSpec;
use crate::probe::heartbeat::HeartbeatSpec;

use super::{TargetCx, required};

pub const KEYS: &[&str] = &["every"];

pub fn spec(cx: &mut Cx<'_>, t: &RawTarget, k: &mut TargetCx<'_>) -> Option<ProbeSpec> {
    let p = k.p;
    let every = required(cx, &t.every, t, p, "every").and_then(|_| cx.duration(&t.every, &format!("{p}every: ")));
    every.map(|every| ProbeSpec::Heartbeat(HeartbeatSpec { name: t.name.get_ref().clone(), every }))
}
