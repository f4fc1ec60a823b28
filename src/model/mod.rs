//! Plain data the layers hand each other and the store keeps: a consignment and its tracking,
//! an incident, a queued e-mail. No I/O and no policy here, so that the store can own all SQL
//! without reaching up into the postal tracker or the notifier.

pub mod event;
pub mod notice;
pub mod postal;
