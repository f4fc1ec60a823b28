//! The JSON API under `/api/v1/` (documented by [`super::openapi`]).

pub mod consignments;
pub mod incidents;
pub mod report;
pub mod targets;
