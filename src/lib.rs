//! intake311: the daemon and tools behind the "311 for Cities" shared mailbox.
//!
//! A question mailed to the shared address is fetched over IMAP ([`mailbox`]), parsed and
//! classified ([`inbound`]), turned into a tracked request in one database transaction
//! ([`intake`], [`store`]) after its city is looked up ([`registry`]), and acknowledged through
//! the outbox ([`outbound`]). [`daemon`] runs the loops; [`check`] verifies a deployment.
//! The binary in `main.rs` only parses the command line and calls into these modules.

pub mod check;
pub mod config;
pub mod daemon;
pub mod deadlines;
pub mod domain;
pub mod inbound;
pub mod intake;
pub mod mailbox;
pub mod metrics;
pub mod outbound;
pub mod registry;
pub mod report;
pub mod services;
pub mod store;
pub mod text;
pub mod tls;
pub mod topics;
