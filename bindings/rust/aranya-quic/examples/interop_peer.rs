//! Rust peer of the three-language interop test (`make test-interop`,
//! driven by `tests/interop/run.py`; the plan all three peers follow is in
//! `tests/interop/peer.py`'s docstring).
//!
//!     interop_peer NAME RUNDIR CERTDIR
//!
//! Exits 0 only if it received exactly the expected messages from both
//! other peers (content, order per channel, team id, label, kind, sync type,
//! sender address, peer id) before the deadline.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aranya_quic::{ChannelKind, Config, Endpoint, GraphId};

const PEERS: [&str; 3] = ["c", "py", "rs"];
const N: usize = 16;
const SYNC_TYPE: u32 = 7;
const LABELS: [&str; 2] = ["interop-a", "interop/β"];
const STREAM_NAMES: [&str; 3] = ["a", "b", "s"];

fn teams() -> [GraphId; 2] {
    let mut a = [0u8; 32];
    let mut b = [0u8; 32];
    for k in 0..32 {
        a[k] = (0xA0 + k) as u8;
        b[k] = (0x5B ^ (k * 13)) as u8;
    }
    [GraphId(a), GraphId(b)]
}

/// Message `i` of stream `s` from peer `f` to peer `r`.
fn payload(f: usize, r: usize, s: usize, i: usize) -> Vec<u8> {
    if s == 2 && i == 0 {
        return Vec::new(); // an empty sync message
    }
    let mut p = format!("{}>{}/{}#{}|", PEERS[f], PEERS[r], STREAM_NAMES[s], i).into_bytes();
    let mut n = (i * 997 + s * 131 + f * 17) % 1500;
    if s == 0 && i == N - 1 {
        n += 200_000; // one large message, many packets
    }
    let seed = i * 7 + s * 3 + f * 11 + r;
    p.extend((0..n).map(|k| ((k * 31 + seed) & 0xFF) as u8));
    p
}

fn wait_line(path: &Path, deadline: Instant) -> Result<String, String> {
    loop {
        if let Ok(s) = std::fs::read_to_string(path) {
            return Ok(s.trim().to_owned());
        }
        if Instant::now() > deadline {
            return Err(format!("timed out waiting for {}", path.display()));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn run(name: &str, rundir: &Path, certdir: &Path) -> Result<String, String> {
    let limit: f64 = std::env::var("INTEROP_DEADLINE").ok().and_then(|s| s.parse().ok()).unwrap_or(30.0);
    let deadline = Instant::now() + Duration::from_secs_f64(limit);
    let me = PEERS.iter().position(|p| *p == name).ok_or("unknown peer name")?;
    let others: Vec<usize> = (0..3).filter(|&p| p != me).collect();
    let teams = teams();
    let read = |p: PathBuf| std::fs::read(&p).map_err(|e| format!("{}: {e}", p.display()));

    let ep = Endpoint::new(Config::new(
        "127.0.0.1:0".parse().unwrap(),
        read(certdir.join(format!("{name}.crt")))?,
        read(certdir.join(format!("{name}.key")))?,
        read(certdir.join("ca.pem"))?,
    ))
    .map_err(|e| format!("Endpoint::new: {e}"))?;
    let local = ep.local_addr().map_err(|e| e.to_string())?;
    let tmp = rundir.join(format!("{name}.addr.tmp"));
    std::fs::write(&tmp, format!("{local}\n")).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp, rundir.join(format!("{name}.addr"))).map_err(|e| e.to_string())?;

    let mut addrs = [None::<SocketAddr>; 3];
    let mut ids = [[0u8; 32]; 3];
    for &p in &others {
        let a = wait_line(&rundir.join(format!("{}.addr", PEERS[p])), deadline)?;
        addrs[p] = Some(a.parse().map_err(|e| format!("address of {}: {a:?}: {e}", PEERS[p]))?);
        let id = wait_line(&rundir.join(format!("{}.id", PEERS[p])), deadline)?;
        if id.len() != 64 {
            return Err(format!("bad id for {}", PEERS[p]));
        }
        for k in 0..32 {
            ids[p][k] = u8::from_str_radix(&id[2 * k..2 * k + 2], 16).map_err(|e| format!("id of {}: {e}", PEERS[p]))?;
        }
    }

    for i in 0..N {
        for &r in &others {
            let to = addrs[r].unwrap();
            for s in 0..2 {
                ep.send(to, &teams[s], LABELS[s], &payload(me, r, s, i))
                    .map_err(|e| format!("send to {} stream {} message {i}: {e}", PEERS[r], STREAM_NAMES[s]))?;
            }
            ep.send_sync(to, SYNC_TYPE, &payload(me, r, 2, i))
                .map_err(|e| format!("send_sync to {} message {i}: {e}", PEERS[r]))?;
        }
    }

    let mut next = [[0usize; 3]; 3];
    let want = 2 * 3 * N;
    let mut received = 0;
    let mut done = false;
    let mut buf = Vec::new();
    loop {
        if Instant::now() > deadline {
            if done {
                return Err(format!("received all {want} messages, but the others did not finish before the deadline"));
            }
            let mut missing = String::new();
            for &p in &others {
                for s in 0..3 {
                    if next[p][s] < N {
                        missing += &format!(" {}/{}: {} of {N};", PEERS[p], STREAM_NAMES[s], next[p][s]);
                    }
                }
            }
            return Err(format!("deadline passed; received {received}/{want};{missing}"));
        }
        let ch = match ep.receive_vec(&mut buf, Some(Duration::from_millis(50))).map_err(|e| format!("receive: {e}"))? {
            Some(ch) => ch,
            None => {
                if done && others.iter().all(|&p| rundir.join(format!("{}.done", PEERS[p])).exists()) {
                    break;
                }
                continue;
            }
        };
        let f = others
            .iter()
            .copied()
            .find(|&p| addrs[p] == Some(ch.addr))
            .ok_or_else(|| format!("message from unknown address {}", ch.addr))?;
        if ch.peer_id != ids[f] {
            return Err(format!("message from {}: peer id {}, want {}", ch.addr, hex(&ch.peer_id), hex(&ids[f])));
        }
        let s = match ch.kind {
            ChannelKind::Channel => {
                let s = LABELS
                    .iter()
                    .position(|l| *l == ch.label)
                    .ok_or_else(|| format!("message from {}: unknown label {:?}", PEERS[f], ch.label))?;
                if ch.team_id != teams[s] {
                    return Err(format!("message from {} label {:?}: team id {}, want {}", PEERS[f], ch.label, ch.team_id, teams[s]));
                }
                if ch.sync_type != 0 {
                    return Err(format!("channel message from {} with sync type {}", PEERS[f], ch.sync_type));
                }
                s
            }
            ChannelKind::Sync => {
                if ch.sync_type != SYNC_TYPE {
                    return Err(format!("sync message from {}: type {}, want {SYNC_TYPE}", PEERS[f], ch.sync_type));
                }
                if !ch.label.is_empty() || ch.team_id != GraphId([0; 32]) {
                    return Err(format!("sync message from {}: label {:?} team {}, want empty/zero", PEERS[f], ch.label, ch.team_id));
                }
                2
            }
            k => return Err(format!("message from {}: unknown kind {k:?}", PEERS[f])),
        };
        let i = next[f][s];
        if done || i >= N {
            return Err(format!("extra message from {} on stream {} ({} bytes)", PEERS[f], STREAM_NAMES[s], buf.len()));
        }
        let exp = payload(f, me, s, i);
        if buf != exp {
            let at = buf.iter().zip(&exp).position(|(a, b)| a != b).unwrap_or(buf.len().min(exp.len()));
            return Err(format!(
                "from {} stream {} message {i}: got {} bytes {:?}, want {} bytes {:?} (first difference at byte {at})",
                PEERS[f],
                STREAM_NAMES[s],
                buf.len(),
                String::from_utf8_lossy(&buf[..buf.len().min(24)]),
                exp.len(),
                String::from_utf8_lossy(&exp[..exp.len().min(24)]),
            ));
        }
        next[f][s] = i + 1;
        received += 1;
        if received == want {
            done = true;
            std::fs::write(rundir.join(format!("{name}.done")), "ok\n").map_err(|e| e.to_string())?;
        }
    }
    let st = ep.stats().map_err(|e| e.to_string())?;
    Ok(format!(
        "received {received} messages from {} and {}, sent {}",
        PEERS[others[0]], PEERS[others[1]], st.messages_sent
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 4 {
        eprintln!("usage: interop_peer NAME RUNDIR CERTDIR");
        return ExitCode::from(2);
    }
    match run(&args[1], Path::new(&args[2]), Path::new(&args[3])) {
        Ok(s) => {
            println!("peer {}: ok: {s}", args[1]);
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("peer {}: FAIL: {e}", args[1]);
            ExitCode::FAILURE
        }
    }
}
