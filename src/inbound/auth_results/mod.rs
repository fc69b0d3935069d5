//! Sender verification from `Authentication-Results` header fields (RFC 8601).
//!
//! Owns: parsing `Authentication-Results` values (authserv-id, version, `none`, `method=result`
//! entries with `reason=` and `ptype.property=value` properties, CFWS comments, quoted strings,
//! folded lines), choosing the one header the daemon may believe, and the verdict on whether the
//! message's From domain is authenticated by it. Talks to: nothing; pure functions, no I/O.
//!
//! # Which header is believed
//!
//! Only the receiving mail server's own result counts: the topmost (most recently added) header
//! whose authserv-id is configured as trusted. Every header below it is ignored, including
//! headers that carry the same trusted authserv-id, and so is every header with another
//! authserv-id (or none at all, like Exchange Online's). A sender can put any header into the
//! message before it reaches us, but only *below* what our server adds.
//!
//! Postfix with OpenDKIM and OpenDMARC writes one header per milter, all with the same
//! authserv-id (OpenDMARC's `dmarc=` header on top, OpenDKIM's `dkim=` below it). We still read
//! only the topmost one, deliberately: a forged header the sender placed directly below the
//! server's headers is indistinguishable from a genuine second milter header (the list holds only
//! `Authentication-Results` values, and even the full header block has no boundary between them),
//! and the milters do not reliably remove such forgeries (RFC 8601 section 5 asks the border MTA
//! to; OpenDKIM's removal is known to miss some, OpenDMARC does not remove them). Merging the run
//! would let a sender add a `dkim=pass`, `spf=pass` or `dmarc=pass` the server never wrote. The
//! cost: with separate milter headers the verdict rests on the topmost one (OpenDMARC's), so a
//! domain without a DMARC record is not verified through the DKIM result in OpenDKIM's header.
//!
//! This still assumes the trusted server always adds its header: if it let a message through
//! without one (a milter that is down with `milter_default_action = accept`), the topmost header
//! with its authserv-id would be whatever the sender wrote. Deployments should make the server
//! remove incoming headers that carry its authserv-id, or reject mail when its filters fail.
//!
//! # When a From domain is verified
//!
//! In that one header, in this order:
//! A DMARC result is "for the From domain" when its `header.from` equals the From domain
//! (case-insensitive) or it has no `header.from`.
//!
//! 1. a `dmarc=fail` for the From domain: not verified, whatever SPF and DKIM say (the server has
//!    already applied the domain owner's policy); results for the From domain that disagree
//!    (`pass` next to anything else) are treated the same way;
//! 2. `dmarc=pass` for the From domain: verified;
//! 3. `spf=pass` whose `smtp.mailfrom` domain is [aligned] with the From domain: verified;
//! 4. `dkim=pass` whose `header.d` (or, without it, the domain of `header.i`) is aligned: verified;
//! 5. otherwise not verified.
//!
//! Files: `parse.rs` (lexer and parser of one header value, [`AuthResults`]), `verify.rs`
//! ([`verify`], [`aligned`] and the verdict), `tests.rs`.

// Runs on the daemon's path outside `catch_unwind`: nothing here may index or slice.
#![deny(clippy::indexing_slicing, clippy::string_slice)]

mod parse;
mod verify;

pub use parse::{AuthResults, MethodResult, Property, parse};
pub use verify::{Verification, aligned, verify};

#[cfg(test)]
mod tests;
