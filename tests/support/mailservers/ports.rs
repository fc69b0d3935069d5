//! Loopback ports: picking free ones (never twice in one process), and waiting until a server
//! accepts (with its greeting) or has closed them.
//!
//! Talks to: the network stack on 127.0.0.1 only.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::{READY_TIMEOUT, lock};

/// Ports are picked from here: below Linux's ephemeral range (32768-60999), so they cannot collide
/// with the local ends of outgoing connections.
const PORT_RANGE: std::ops::Range<u16> = 20000..32700;

pub(super) fn wait_ready(ports: &[(u16, Option<&str>)]) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut pending = ports.to_vec();
    let mut last = String::new();
    loop {
        pending.retain(|(port, greeting)| match probe(*port, *greeting) {
            Ok(()) => false,
            Err(e) => {
                last = format!("{e:#}");
                true
            }
        });
        if pending.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "port(s) {:?} not ready within {READY_TIMEOUT:?}: {last}",
                pending.iter().map(|p| p.0).collect::<Vec<_>>()
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

pub(super) fn wait_closed(ports: &[u16]) -> Result<()> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let open: Vec<u16> = ports
            .iter()
            .copied()
            .filter(|p| {
                TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, *p)), Duration::from_millis(200))
                    .is_ok()
            })
            .collect();
        if open.is_empty() {
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!("port(s) {open:?} still accept connections after stopping the server");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Connects to 127.0.0.1:port; with `greeting`, also reads the first line and checks its prefix.
pub(super) fn probe(port: u16, greeting: Option<&str>) -> Result<()> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))
        .with_context(|| format!("connect 127.0.0.1:{port}"))?;
    let Some(prefix) = greeting else {
        return Ok(());
    };
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    reader.read_line(&mut line).with_context(|| format!("reading greeting on port {port}"))?;
    let bye: &[u8] = if prefix.starts_with('*') { b"a LOGOUT\r\n" } else { b"QUIT\r\n" };
    let _ = (&stream).write_all(bye);
    if !line.starts_with(prefix) {
        bail!("unexpected greeting on port {port}: {:?}", line.trim_end());
    }
    Ok(())
}

/// Ports handed out by this process, so parallel instances never share one.
static USED_PORTS: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

pub(super) fn pick_ports(n: usize) -> Result<Vec<u16>> {
    let mut used = lock(&USED_PORTS);
    let mut picked = Vec::with_capacity(n);
    let mut held = Vec::with_capacity(n); // keep them bound until all are picked
    for _ in 0..10_000 {
        if picked.len() == n {
            break;
        }
        let port: u16 = rand::random_range(PORT_RANGE);
        if used.contains(&port) || picked.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind((Ipv4Addr::LOCALHOST, port)) {
            held.push(l);
            picked.push(port);
        }
    }
    if picked.len() != n {
        bail!("could not find {n} free loopback ports in {PORT_RANGE:?}");
    }
    used.extend(picked.iter().copied());
    Ok(picked)
}
