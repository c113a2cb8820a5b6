//! Test helpers: throwaway certificates (made once per test binary by the
//! repo's `go run ./examples/certgen`) and endpoints on 127.0.0.1:0.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use aranya_quic::{Config, Endpoint, Limit};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../..").canonicalize().unwrap()
}

/// A folder with ca.pem, alice/bob/carol .crt/.key, and an untrusted
/// `stranger` (from other-ca.pem).
pub fn certs() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("certs-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let out = Command::new("go")
            .current_dir(repo_root())
            .args(["run", "./examples/certgen", "-other-ca", "-out"])
            .arg(&dir)
            .args(["alice", "bob", "carol"])
            .output()
            .expect("run `go run ./examples/certgen` (is Go installed?)");
        assert!(out.status.success(), "certgen failed: {}", String::from_utf8_lossy(&out.stderr));
        dir
    })
}

pub fn read(name: &str) -> Vec<u8> {
    std::fs::read(certs().join(name)).unwrap_or_else(|e| panic!("read {name}: {e}"))
}

/// A config for `name` on 127.0.0.1:0, trusting ca.pem, with short limits
/// so that failing tests fail fast.
pub fn config(name: &str) -> Config {
    let mut c = Config::new("127.0.0.1:0".parse().unwrap(), read(&format!("{name}.crt")), read(&format!("{name}.key")), read("ca.pem"));
    c.send_timeout = Limit::After(Duration::from_secs(10));
    c.handshake_timeout = Some(Duration::from_secs(5));
    c.drain_timeout = Some(Duration::from_secs(2));
    c
}

pub fn endpoint(name: &str) -> Endpoint {
    Endpoint::new(config(name)).unwrap_or_else(|e| panic!("Endpoint::new({name}): {e}"))
}

/// Generous bound for a message that was already sent to arrive; only
/// reached when something is broken.
pub const WAIT: Option<Duration> = Some(Duration::from_secs(20));

/// A bound UDP socket that never reads: a peer address where nothing
/// answers (dials to it time out).
pub fn silent_peer() -> (std::net::UdpSocket, std::net::SocketAddr) {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let a = s.local_addr().unwrap();
    (s, a)
}

#[repr(C)]
struct PollFd {
    fd: i32,
    events: i16,
    revents: i16,
}

extern "C" {
    fn poll(fds: *mut PollFd, nfds: std::ffi::c_ulong, timeout: i32) -> i32;
}

/// Whether `fd` turns readable within `timeout_ms` (poll(2), POLLIN).
pub fn readable(fd: std::os::fd::BorrowedFd<'_>, timeout_ms: i32) -> bool {
    use std::os::fd::AsRawFd;
    let mut p = PollFd { fd: fd.as_raw_fd(), events: 1, revents: 0 };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { poll(&mut p, 1, timeout_ms) };
        if n >= 0 {
            return n == 1 && p.revents & 1 != 0;
        }
        // The Go runtime in the library signals threads (preemption), so
        // a wait may be cut short: wait again (the timeout only bounds it).
        let e = std::io::Error::last_os_error();
        assert_eq!(e.kind(), std::io::ErrorKind::Interrupted, "poll failed: {e}");
    }
}

/// A UDP relay between a client and `target` that can stop relaying, to
/// make a connected peer go silent without closing anything.
pub struct Proxy {
    /// Dial this instead of the target.
    pub addr: std::net::SocketAddr,
    forward: std::sync::Arc<std::sync::atomic::AtomicBool>,
    quit: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Proxy {
    pub fn new(target: std::net::SocketAddr) -> Proxy {
        use std::net::{SocketAddr, UdpSocket};
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::{Arc, Mutex};
        let front = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        let back = Arc::new(UdpSocket::bind("127.0.0.1:0").unwrap());
        for s in [&front, &back] {
            s.set_read_timeout(Some(Duration::from_millis(20))).unwrap();
        }
        let addr = front.local_addr().unwrap();
        let forward = Arc::new(AtomicBool::new(true));
        let quit = Arc::new(AtomicBool::new(false));
        let client: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let mut threads = Vec::new();
        // client -> target
        {
            let (front, back, forward, quit, client) = (front.clone(), back.clone(), forward.clone(), quit.clone(), client.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !quit.load(Ordering::Relaxed) {
                    if let Ok((n, from)) = front.recv_from(&mut buf) {
                        *client.lock().unwrap() = Some(from);
                        if forward.load(Ordering::Relaxed) {
                            let _ = back.send_to(&buf[..n], target);
                        }
                    }
                }
            }));
        }
        // target -> client
        {
            let (forward, quit) = (forward.clone(), quit.clone());
            threads.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                while !quit.load(Ordering::Relaxed) {
                    if let Ok((n, _)) = back.recv_from(&mut buf) {
                        let to = *client.lock().unwrap();
                        if let (true, Some(to)) = (forward.load(Ordering::Relaxed), to) {
                            let _ = front.send_to(&buf[..n], to);
                        }
                    }
                }
            }));
        }
        Proxy { addr, forward, quit, threads }
    }

    /// From now on every packet, either way, is dropped.
    pub fn stop_forwarding(&self) {
        self.forward.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.quit.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
