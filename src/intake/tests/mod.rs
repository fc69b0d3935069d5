//! In-process tests of intake: a temporary SQLite store, the shipped templates and raw mail in;
//! outcomes, rows and outbox mail out. No mail servers, no root: policy is tested here, and the
//! integration tests under `tests/` keep testing the whole path against real servers.

mod clock;
mod decide_matrix;
mod dispatch;
mod harness;
mod limits;
mod referrals;
mod staff_proof;
