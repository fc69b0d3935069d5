//! Processes: `/proc/PID/stat` (also read by the benchmark for CPU time), process groups,
//! SIGKILL of a whole group, system users, and the watchdog shell that cleans up when the test
//! process dies without dropping its [`MailServers`].
//!
//! Talks to: /proc, /etc/passwd, libc `kill`, `/bin/sh`.

use std::fs;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use super::{MailServers, lock};

impl MailServers {
    /// A shell that cleans up if this process dies without dropping us: it blocks reading its
    /// stdin (a pipe only we hold); "done" means Drop already cleaned up, EOF means we died.
    pub(super) fn spawn_watchdog(&self) -> Result<()> {
        const SCRIPT: &str = r#"
trap '' INT HUP TERM QUIT PIPE
line=
read -r line
[ "$line" = done ] && exit 0
root=$1
# Twice: a `postfix start` that was under way when we died may start its master a bit later.
for pass in 1 2; do
  for f in "$root/dovecot.pgid" "$root/dovecot-auth.pgid" "$root/postfix-queue/pid/master.pid"; do
    p=
    read -r p < "$f" 2>/dev/null
    case "$p" in ''|0|1|*[!0-9]*) ;; *) kill -s KILL -- -"$p" 2>/dev/null ;; esac
  done
  sleep 0.5
done
rm -rf "$root"
"#;
        let child = Command::new("/bin/sh")
            .arg("-c")
            .arg(SCRIPT)
            .arg("mailservers-watchdog")
            .arg(&self.root)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .context("spawning watchdog /bin/sh")?;
        *lock(&self.watchdog) = Some(child);
        Ok(())
    }
}

pub(super) mod sys {
    // Plain libc calls (std links libc anyway); both are safe to call with any argument.
    // kill(2) directly, never the `kill` command: procps-ng 4's /usr/bin/kill turns
    // `kill -9 -1234` into kill(-1, SIGKILL), i.e. every process on the machine.
    unsafe extern "C" {
        safe fn kill(pid: i32, sig: i32) -> i32;
        pub safe fn geteuid() -> u32;
    }
    const SIGKILL: i32 = 9;

    /// SIGKILLs process group `pgid` and its leader. Refuses 0 and 1 (which would mean "my own
    /// group" and "every process").
    pub fn kill_group(pgid: i32) {
        if pgid > 1 {
            kill(-pgid, SIGKILL);
            kill(pgid, SIGKILL);
        }
    }
}

/// (uid, gid) of a system user, from /etc/passwd.
pub fn lookup_user(name: &str) -> Result<(u32, u32)> {
    let passwd = fs::read_to_string("/etc/passwd").context("reading /etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            let uid = f[2].parse().with_context(|| format!("bad uid for {name}"))?;
            let gid = f[3].parse().with_context(|| format!("bad gid for {name}"))?;
            return Ok((uid, gid));
        }
    }
    bail!("system user {name:?} not found in /etc/passwd (is the Debian dovecot/postfix package installed?)")
}

/// What `/proc/PID/stat` says about a process (see proc(5)).
pub struct ProcStat {
    pub comm: String,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    /// User + system CPU time of the process itself (all its threads), in seconds.
    pub cpu_seconds: f64,
    /// User + system CPU time of its children that exited and that it waited for, in seconds.
    pub reaped_cpu_seconds: f64,
}

pub fn proc_stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

pub(super) fn parse_stat(s: &str) -> Option<ProcStat> {
    let open = s.find('(')?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let close = s.rfind(')')?;
    let comm = s.get(open + 1..close)?.to_string();
    let fields: Vec<&str> = s.get(close + 1..)?.split_whitespace().collect();
    let state = fields.first()?.chars().next()?;
    // Clock ticks; USER_HZ is 100 on Linux.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).map(|t| t / 100.0);
    Some(ProcStat {
        comm,
        state,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        cpu_seconds: ticks(11)? + ticks(12)?,
        reaped_cpu_seconds: ticks(13)? + ticks(14)?,
    })
}

/// Whether any live (non-zombie) process is in process group `pgid`.
pub(super) fn group_alive(pgid: i32) -> bool {
    let Ok(dir) = fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<i32>().ok()) else {
            return false;
        };
        matches!(proc_stat(pid), Some(st) if st.pgrp == pgid && st.state != 'Z' && st.state != 'X')
    })
}
