//! The library through the Rust binding (bindings/rust, over the C API):
//! the same scenarios and measurement as the quinn side and bench/c.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use aranya_quic::{Config, Endpoint, GraphId, MessageBatch};

use crate::{Opts, Res};

fn endpoint(dir: &str, name: &str) -> Res<Endpoint> {
    let rd = |f: &str| std::fs::read(format!("{dir}/{f}"));
    let cfg = Config::new(
        "127.0.0.1:0".parse::<SocketAddr>()?,
        rd(&format!("{name}.crt"))?,
        rd(&format!("{name}.key"))?,
        rd("ca.pem")?,
    );
    Ok(Endpoint::new(cfg)?)
}

pub fn msg(o: &Opts) -> Res<String> {
    let a = endpoint(&o.certs, "alice")?;
    let b = endpoint(&o.certs, "bob")?;
    let to = b.local_addr()?;
    let team = GraphId([1; 32]);
    let size = o.size;
    let mut buf = vec![0u8; size.max(64)];
    // Warm-up: connection and stream; small (see bench/c/aqbench.c).
    a.send(to, &team, "bench", &vec![0u8; size.min(64)])?;
    b.receive_timeout(&mut buf, Some(Duration::from_secs(10)))?.ok_or("warm-up lost")?;
    let total = AtomicU64::new(u64::MAX);
    let msg = vec![0u8; size];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.dur);
    let (n, bytes, last) = std::thread::scope(|s| -> Res<(u64, u64, Instant)> {
        let rx = s.spawn(|| -> Res<(u64, u64, Instant)> {
            let (mut n, mut bytes, mut last) = (0u64, 0u64, Instant::now());
            while n < total.load(Ordering::Acquire) {
                match b.receive_timeout(&mut buf, Some(Duration::from_millis(200)))? {
                    Some((_, len)) => {
                        n += 1;
                        bytes += len as u64;
                        last = Instant::now();
                    }
                    None if total.load(Ordering::Acquire) != u64::MAX && last.elapsed() > Duration::from_secs(20) => {
                        return Err("messages lost".into())
                    }
                    None => {}
                }
            }
            Ok((n, bytes, last))
        });
        let sent = send_until(&a, to, &team, &msg, deadline)?;
        total.store(sent, Ordering::Release);
        rx.join().map_err(|_| "receiver panicked")?
    })?;
    Ok(throughput(n, bytes, last - start))
}

/// The sender of the msg modes: one `send` per message until `deadline`,
/// looking at the clock every 64 small messages. Returns how many it sent.
fn send_until(a: &Endpoint, to: SocketAddr, team: &GraphId, msg: &[u8], deadline: Instant) -> Res<u64> {
    let every = if msg.len() >= 4096 { 1 } else { 64 };
    let mut sent = 0u64;
    loop {
        a.send(to, team, "bench", msg)?;
        sent += 1;
        if sent % every == 0 && Instant::now() >= deadline {
            return Ok(sent);
        }
    }
}

fn throughput(n: u64, bytes: u64, el: Duration) -> String {
    let secs = el.as_secs_f64();
    format!(
        "\"msgs_per_s\":{:.1},\"gbit_s\":{:.4},\"msgs\":{},\"seconds\":{:.3}",
        n as f64 / secs,
        bytes as f64 * 8.0 / secs / 1e9,
        n,
        secs
    )
}

/// aq-msg with the receiver on tokio: the binding's async `recv` (which
/// takes whatever is queued in one library call and hands it out message by
/// message), or with `batch`, `recv_batch` into one reused `MessageBatch`.
/// The sender is aq-msg's, on its own thread.
pub fn msg_async(o: &Opts, batch: bool) -> Res<String> {
    let a = endpoint(&o.certs, "alice")?;
    let b = endpoint(&o.certs, "bob")?;
    let to = b.local_addr()?;
    let team = GraphId([1; 32]);
    let size = o.size;
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let mut buf = Vec::with_capacity(size.max(64));
    // Warm-up, through the async receive (registers the fd with tokio).
    a.send(to, &team, "bench", &vec![0u8; size.min(64)])?;
    rt.block_on(async { tokio::time::timeout(Duration::from_secs(10), b.recv(&mut buf)).await })
        .map_err(|_| "warm-up lost")??;
    let total = AtomicU64::new(u64::MAX);
    let msg = vec![0u8; size];
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(o.dur);
    let (n, bytes, last) = std::thread::scope(|s| -> Res<(u64, u64, Instant)> {
        let rx = s.spawn(|| -> Res<(u64, u64, Instant)> {
            rt.block_on(async {
                let (mut n, mut bytes, mut last) = (0u64, 0u64, Instant::now());
                let mut mb = MessageBatch::new();
                // The timeout only wakes the loop to look at `total`; a
                // message already queued completes the recv on its first
                // poll, before any timer is armed.
                let wait = Duration::from_millis(200);
                while n < total.load(Ordering::Acquire) {
                    let got = if batch {
                        tokio::time::timeout(wait, b.recv_batch(&mut mb)).await.map(|r| {
                            r.map(|k| (k as u64, mb.iter().map(|m| m.data().len() as u64).sum::<u64>()))
                        })
                    } else {
                        tokio::time::timeout(wait, b.recv(&mut buf)).await.map(|r| r.map(|_| (1, buf.len() as u64)))
                    };
                    match got {
                        Ok(r) => {
                            let (k, len) = r?;
                            n += k;
                            bytes += len;
                            last = Instant::now();
                        }
                        Err(_) if total.load(Ordering::Acquire) != u64::MAX && last.elapsed() > Duration::from_secs(20) => {
                            return Err("messages lost".into())
                        }
                        Err(_) => {}
                    }
                }
                Ok((n, bytes, last))
            })
        });
        let sent = send_until(&a, to, &team, &msg, deadline)?;
        total.store(sent, Ordering::Release);
        rx.join().map_err(|_| "receiver panicked")?
    })?;
    Ok(throughput(n, bytes, last - start))
}

pub fn pingpong(o: &Opts) -> Res<String> {
    let a = endpoint(&o.certs, "alice")?;
    let b = endpoint(&o.certs, "bob")?;
    let to = b.local_addr()?;
    let team = GraphId([1; 32]);
    let msg = vec![0u8; o.size];
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| -> Res<String> {
        s.spawn(|| {
            let mut buf = vec![0u8; 65536];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(Some((ch, n))) = b.receive_timeout(&mut buf, Some(Duration::from_millis(100))) {
                    if b.send(ch.addr, &ch.team_id, &ch.label, &buf[..n]).is_err() {
                        break;
                    }
                }
            }
        });
        let res = (|| -> Res<String> {
            let mut inb = vec![0u8; 65536];
            let mut rt = || -> Res<()> {
                a.send(to, &team, "ping", &msg)?;
                a.receive_timeout(&mut inb, Some(Duration::from_secs(10)))?.ok_or("echo lost")?;
                Ok(())
            };
            for _ in 0..10 {
                rt()?;
            }
            let mut rtts = Vec::with_capacity(1 << 16);
            let deadline = Instant::now() + Duration::from_secs_f64(o.dur);
            while Instant::now() < deadline {
                let t = Instant::now();
                rt()?;
                rtts.push(t.elapsed().as_secs_f64() * 1e6);
            }
            rtts.sort_by(|x, y| x.partial_cmp(y).unwrap());
            let q = |p: f64| rtts[(p * (rtts.len() - 1) as f64) as usize];
            Ok(format!("\"p50_us\":{:.2},\"p99_us\":{:.2},\"samples\":{}", q(0.5), q(0.99), rtts.len()))
        })();
        stop.store(true, Ordering::Relaxed);
        res
    })
}
