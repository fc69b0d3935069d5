//! Whose outbox claims are still alive, and what a dead claimant had already sent.
//!
//! Every process that claims outbox rows (the daemon, and a CLI command that sends what it
//! queued) holds an exclusive `flock` on a file next to the database, `<db>-owner-<id>`, from
//! its first claim until it exits; the kernel drops the lock when the process dies, SIGKILL
//! included. The file is also a journal: the ids of rows the SMTP server accepted, written and
//! synced before the database marks them sent (which waits for SQLite's write lock, held by
//! the intake's group commit for up to a batch).
//!
//! A daemon that finds an owner file nobody holds locked (see
//! [`super::Store::recover_dead_claims`]) marks the journaled rows sent and frees the rest of
//! that owner's claims at once, instead of leaving them to their lease (`4 × smtp.timeout +
//! 30 s`) and then sending again what the server had already accepted. A crash resends only
//! what was accepted and not yet journaled. A daemon's clean stop settles its own claims the
//! same way and removes its file. Claims whose owner has no file at all (a process of an older
//! version, or a file someone deleted) are left to their lease, since that owner may be alive.
//!
//! `flock` is local to the machine, as the SQLite database is. An in-memory database has no
//! other process to share claims with, so it has no owner file.

use std::fs::{self, File};
use std::io::{Read as _, Write as _};
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

use anyhow::Context as _;

/// Between the database's file name and a claimant's id in its owner file's name.
const OWNER_INFIX: &str = "-owner-";

/// Above this size, a journal with nothing waiting to be marked is emptied.
const JOURNAL_TRIM_BYTES: u64 = 64 * 1024;

/// This process's claim identity: its random id (the outbox's `lease_owner`) and, for a
/// database on disk, its locked owner file.
#[derive(Debug)]
pub(crate) struct Owner {
    id: String,
    /// The database file; `None` for an in-memory database.
    db: Option<PathBuf>,
    journal: OnceLock<Mutex<Journal>>,
    /// Row ids journaled and not yet marked sent in the database. Outside the journal's lock,
    /// which is held across a sync: marking never waits for the disk.
    unmarked: AtomicUsize,
    /// Serialises the owner file's creation.
    creating: Mutex<()>,
}

#[derive(Debug)]
struct Journal {
    path: PathBuf,
    file: File,
    /// A failed write could not be cut back off: no more entries, since they would no longer
    /// sit on 8-byte boundaries.
    broken: bool,
}

/// Whether another claimant is alive.
pub(crate) enum Probe {
    Alive,
    /// No owner file: not one of ours, or its file is gone. It may be alive; its claims are
    /// left to their lease.
    NoFile,
    /// Dead: its file is there and nobody holds it. Its journal, locked by us until dropped.
    Dead(DeadJournal),
}

pub(crate) struct DeadJournal {
    path: PathBuf,
    file: File,
}

/// The row ids a journal holds (a torn last entry is ignored).
fn read_ids(mut file: &File) -> std::io::Result<Vec<i64>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes
        .chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok())
        .map(i64::from_le_bytes)
        .filter(|id| *id > 0)
        .collect())
}

impl DeadJournal {
    /// The row ids it journaled.
    pub(crate) fn ids(&mut self) -> std::io::Result<Vec<i64>> {
        read_ids(&self.file)
    }

    /// Removes the file; our lock goes with the handle.
    pub(crate) fn remove(self) -> std::io::Result<()> {
        match fs::remove_file(&self.path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
}

/// `<db>-owner-<id>`, or `None` for an id that cannot be one of ours (only hex is written).
fn owner_path(db: &Path, id: &str) -> Option<PathBuf> {
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut name = db.file_name()?.to_os_string();
    name.push(OWNER_INFIX);
    name.push(id);
    Some(db.with_file_name(name))
}

fn same_file(a: &fs::Metadata, b: &fs::Metadata) -> bool {
    a.dev() == b.dev() && a.ino() == b.ino()
}

impl Owner {
    pub(crate) fn new(db: Option<PathBuf>) -> Owner {
        Owner {
            id: uuid::Uuid::new_v4().simple().to_string(),
            db,
            journal: OnceLock::new(),
            unmarked: AtomicUsize::new(0),
            creating: Mutex::new(()),
        }
    }

    pub(crate) fn id(&self) -> &str {
        &self.id
    }

    pub(crate) fn db(&self) -> Option<&Path> {
        self.db.as_deref()
    }

    /// Creates and locks the owner file, once, before the first claim is written: another
    /// process that sees our claims must find our lock.
    pub(crate) fn ensure(&self) -> anyhow::Result<()> {
        let Some(db) = &self.db else { return Ok(()) };
        if self.journal.get().is_some() {
            return Ok(());
        }
        let _creating = self.creating.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.journal.get().is_some() {
            return Ok(());
        }
        let path = owner_path(db, &self.id).context("the database path has no file name")?;
        // A process checking for dead owners may open the file between its creation and our
        // lock, take the lock itself and remove the file: then we hold a lock nobody can see,
        // and create it again.
        for _ in 0..5 {
            let file = File::options()
                .create_new(true)
                .read(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("creating the claim lock {}", path.display()))?;
            file.lock().with_context(|| format!("locking {}", path.display()))?;
            let ours = match (fs::metadata(&path), file.metadata()) {
                (Ok(on_disk), Ok(held)) => same_file(&on_disk, &held),
                _ => false,
            };
            if ours {
                let _ = self.journal.set(Mutex::new(Journal { path, file, broken: false }));
                return Ok(());
            }
        }
        anyhow::bail!("could not hold the claim lock {}: it kept being removed", path.display())
    }

    /// Appends accepted row ids to the journal and syncs it. Returns how many were journaled
    /// (none without an owner file). Blocks on the disk: call it off the async threads.
    pub(crate) fn journal_sent(&self, ids: &[i64]) -> std::io::Result<usize> {
        let Some(journal) = self.journal.get() else { return Ok(0) };
        let mut j = journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if j.broken {
            return Ok(0);
        }
        let before = j.file.metadata()?.len();
        let bytes: Vec<u8> = ids.iter().flat_map(|id| id.to_le_bytes()).collect();
        if let Err(e) = j.file.write_all(&bytes) {
            // A torn entry would shift every later one: cut it off, or write no more.
            j.broken = j.file.set_len(before).is_err();
            return Err(e);
        }
        j.file.sync_data()?;
        self.unmarked.fetch_add(ids.len(), Ordering::SeqCst);
        Ok(ids.len())
    }

    /// `n` journaled ids are now marked in the database. Empties a large journal that has
    /// nothing left to tell, unless a write holds it.
    pub(crate) fn marked(&self, n: usize) {
        let Some(journal) = self.journal.get() else { return };
        let _ = self.unmarked.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |u| Some(u.saturating_sub(n)));
        let Ok(j) = journal.try_lock() else { return };
        // Under the journal's lock nothing is half journaled: zero means every entry is marked.
        if self.unmarked.load(Ordering::SeqCst) == 0 && j.file.metadata().is_ok_and(|m| m.len() > JOURNAL_TRIM_BYTES) {
            // Not synced: a journal that comes back after a power cut only names rows already
            // marked sent, which recovery leaves alone.
            if let Err(e) = j.file.set_len(0) {
                tracing::warn!(error = %e, path = %j.path.display(), "emptying the sent-mail journal failed");
            }
        }
    }

    /// The row ids in our own journal when some are not yet marked in the database (a mark that
    /// failed), for a clean stop to settle; none when everything journaled is marked.
    pub(crate) fn unmarked_journal(&self) -> std::io::Result<Vec<i64>> {
        let Some(journal) = self.journal.get() else { return Ok(Vec::new()) };
        if self.unmarked.load(Ordering::SeqCst) == 0 {
            return Ok(Vec::new());
        }
        let path = journal.lock().unwrap_or_else(std::sync::PoisonError::into_inner).path.clone();
        read_ids(&File::open(path)?)
    }

    /// Everything journaled is now recorded in the database (a clean stop settled it).
    pub(crate) fn settled(&self) {
        self.unmarked.store(0, Ordering::SeqCst);
    }

    /// Whether the claimant `id` is alive. Ours is always alive.
    pub(crate) fn probe(&self, id: &str) -> std::io::Result<Probe> {
        if id == self.id {
            return Ok(Probe::Alive);
        }
        let Some(path) = self.db.as_deref().and_then(|db| owner_path(db, id)) else {
            return Ok(Probe::NoFile);
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Probe::NoFile),
            Err(e) => return Err(e),
        };
        match file.try_lock() {
            Ok(()) => Ok(Probe::Dead(DeadJournal { path, file })),
            Err(fs::TryLockError::WouldBlock) => Ok(Probe::Alive),
            Err(fs::TryLockError::Error(e)) => Err(e),
        }
    }

    /// Ids of the owner files next to the database, ours included.
    pub(crate) fn files_on_disk(&self) -> Vec<String> {
        let Some(db) = &self.db else { return Vec::new() };
        let (Some(dir), Some(name)) = (db.parent(), db.file_name()) else { return Vec::new() };
        let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
        let prefix = format!("{}{OWNER_INFIX}", name.to_string_lossy());
        let Ok(entries) = fs::read_dir(dir) else { return Vec::new() };
        entries
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.strip_prefix(&prefix)).map(str::to_string))
            .collect()
    }
}

impl Drop for Owner {
    /// A clean exit removes the owner file when everything journaled is marked; otherwise it
    /// stays, unlocked, for the next daemon's recovery.
    fn drop(&mut self) {
        if let Some(j) = self.journal.get_mut() {
            let j = j.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
            if *self.unmarked.get_mut() == 0 {
                let _ = fs::remove_file(&j.path);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dead(p: Probe) -> DeadJournal {
        match p {
            Probe::Dead(j) => j,
            Probe::Alive | Probe::NoFile => panic!("expected a dead owner"),
        }
    }

    #[test]
    fn a_live_owner_is_seen_alive_and_a_dropped_one_dead_with_its_journal() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("x.db");
        let a = Owner::new(Some(db.clone()));
        let b = Owner::new(Some(db.clone()));
        // No file yet: nothing to go by (it has not claimed anything either).
        assert!(matches!(b.probe(a.id())?, Probe::NoFile));
        a.ensure()?;
        assert!(matches!(b.probe(a.id())?, Probe::Alive));
        assert!(matches!(a.probe(a.id())?, Probe::Alive));
        assert_eq!(a.journal_sent(&[7, 9])?, 2);
        let mut files = b.files_on_disk();
        files.sort();
        assert_eq!(files, vec![a.id().to_string()]);
        // Killed with two rows journaled and not marked: the file stays, unlocked.
        let a_id = a.id().to_string();
        drop(a);
        let mut j = dead(b.probe(&a_id)?);
        assert_eq!(j.ids()?, vec![7, 9]);
        j.remove()?;
        assert!(b.files_on_disk().is_empty());
        Ok(())
    }

    #[test]
    fn a_clean_exit_removes_the_file_and_a_large_marked_journal_is_emptied() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let a = Owner::new(Some(dir.path().join("x.db")));
        a.ensure()?;
        let ids: Vec<i64> = (1..=10_000).collect();
        a.journal_sent(&ids)?;
        a.marked(ids.len());
        let path = owner_path(&dir.path().join("x.db"), a.id()).ok_or_else(|| anyhow::anyhow!("no path"))?;
        assert_eq!(fs::metadata(&path)?.len(), 0, "80 kB with nothing unmarked is emptied");
        a.journal_sent(&[1])?;
        a.marked(1);
        assert_eq!(fs::metadata(&path)?.len(), 8, "a small journal is left as is");
        drop(a);
        assert!(!path.exists());
        Ok(())
    }

    #[test]
    fn ids_that_are_not_ours_have_no_file_and_a_torn_entry_is_ignored() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let db = dir.path().join("x.db");
        assert!(owner_path(&db, "../etc").is_none());
        assert!(owner_path(&db, "").is_none());
        assert!(matches!(Owner::new(Some(db.clone())).probe("../etc")?, Probe::NoFile));
        let path = owner_path(&db, "abc").ok_or_else(|| anyhow::anyhow!("no path"))?;
        let mut bytes = 5i64.to_le_bytes().to_vec();
        bytes.extend_from_slice(&[1, 2, 3]);
        fs::write(&path, bytes)?;
        let b = Owner::new(Some(db));
        let mut j = dead(b.probe("abc")?);
        assert_eq!(j.ids()?, vec![5]);
        assert!(Owner::new(None).files_on_disk().is_empty());
        Ok(())
    }
}
