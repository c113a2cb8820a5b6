//! Hostile tests of the trust calls through the safe API: revocations made
//! from other threads while async receives hold messages they took from
//! the library, inputs at and beyond the limits, calls racing a shutdown,
//! the connection list while peers come and go, identity rotations racing
//! sends. Every wait is bounded so that a hang fails instead of hanging;
//! no test checks how long anything takes.

mod common;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use aranya_quic::{peer_id_from_pem, ChannelKind, Endpoint, ErrorKind, GraphId, PeerId, QuicChannel, QuicMessageError};
use common::*;

const TEAM_A: GraphId = GraphId([0xA1; 32]);
const TEAM_B: GraphId = GraphId([0xB2; 32]);

/// Bounds a wait for messages that must not come; never a pass condition.
const QUIET: Option<Duration> = Some(Duration::from_millis(300));

/// Only a broken (hung) test reaches it.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
const LONG: Duration = Duration::from_secs(30);

fn id(name: &str) -> PeerId {
    peer_id_from_pem(&read(&format!("{name}.crt"))).unwrap_or_else(|e| panic!("peer id of {name}: {e}"))
}

/// A numbered payload: the sender's tag, then the sequence number.
fn payload(tag: u8, seq: u32) -> [u8; 5] {
    let s = seq.to_be_bytes();
    [tag, s[0], s[1], s[2], s[3]]
}

fn seq_of(data: &[u8]) -> u32 {
    assert_eq!(data.len(), 5, "a numbered payload: {data:?}");
    u32::from_be_bytes([data[1], data[2], data[3], data[4]])
}

/// Waits until `n` messages sit in `ep`'s library queue.
#[cfg_attr(not(feature = "tokio"), allow(dead_code))]
fn queued(ep: &Endpoint, n: u64) {
    for _ in 0..3000 {
        if ep.stats().unwrap().queue_messages >= n {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("{n} messages never got queued: {:?}", ep.stats().unwrap());
}

/// Everything that arrives until the queue stays empty for `QUIET`.
fn drain(ep: &Endpoint) -> Vec<(QuicChannel, Vec<u8>)> {
    let mut got = Vec::new();
    let mut buf = Vec::new();
    while let Some(ch) = ep.receive_vec(&mut buf, QUIET).expect("receive") {
        got.push((ch, std::mem::take(&mut buf)));
    }
    got
}

fn recv_one(ep: &Endpoint) -> (QuicChannel, Vec<u8>) {
    let mut buf = Vec::new();
    let ch = ep.receive_vec(&mut buf, WAIT).expect("receive").expect("a message within the wait");
    (ch, buf)
}

fn gone(e: &QuicMessageError) -> bool {
    matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle)
}

fn expect_invalid<T: std::fmt::Debug>(r: Result<T, QuicMessageError>, what: &str) {
    let e = r.expect_err(what);
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
    assert!(!e.message().is_empty(), "{what}: the error says why");
}

/// Pins: a list far longer than any real one, the revocation it implies,
/// the limit, and inputs that must change nothing.
#[test]
fn huge_and_bad_trust_inputs_change_nothing() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let a_addr = alice.local_addr().unwrap();
    bob.send(a_addr, &TEAM_A, "l", b"up").unwrap();
    recv_one(&alice);
    let ca = read("ca.pem");

    // 100k pins with bob's last: nobody is revoked.
    let mut pins: Vec<PeerId> = (0..100_000u32)
        .map(|i| {
            let mut b = [0xEEu8; 32];
            b[..4].copy_from_slice(&i.to_be_bytes());
            PeerId(b)
        })
        .collect();
    pins.push(id("bob"));
    assert_eq!(alice.set_trust(&ca, &pins).unwrap(), Vec::<PeerId>::new(), "bob is among 100k pins");
    bob.send(a_addr, &TEAM_A, "l", b"pinned").unwrap();
    assert_eq!(recv_one(&alice).1, b"pinned");

    // Over the library's limit of 2^20 pins, without bob: refused whole,
    // so bob, who would be revoked by it, stays.
    let over = vec![PeerId([9; 32]); (1 << 20) + 1];
    expect_invalid(alice.set_trust(&ca, &over), "2^20 + 1 pins");
    // Exactly at the limit is a valid list (without bob: he goes).
    // Checked last, below, since it revokes him.

    // A PEM over 16 MiB, made of valid CA blocks: refused.
    let mut big = Vec::with_capacity(16 << 20);
    while big.len() <= 16 << 20 {
        big.extend_from_slice(&ca);
    }
    expect_invalid(alice.set_trust(&big, &[]), "a CA PEM over 16 MiB");
    expect_invalid(peer_id_from_pem(&big), "peer_id_from_pem over 16 MiB");
    let mut big_cert = read("bob.crt");
    big_cert.resize((16 << 20) + 1, b'\n');
    expect_invalid(peer_id_from_pem(&big_cert), "a certificate padded past 16 MiB");
    expect_invalid(alice.set_identity(&big_cert, &read("alice.key")), "set_identity over 16 MiB");

    // The CA followed by a damaged block: refused whole (every block must
    // parse), also with pins that would revoke bob.
    let mut damaged = ca.clone();
    damaged.extend_from_slice(b"-----BEGIN CERTIFICATE-----\nAAAA!!!!\n-----END CERTIFICATE-----\n");
    expect_invalid(alice.set_trust(&damaged, &[id("carol")]), "CA then a damaged block");
    // Only a private key: no certificate.
    expect_invalid(alice.set_trust(&read("bob.key"), &[id("carol")]), "a key instead of a CA");
    // NUL bytes only.
    expect_invalid(alice.set_trust(&[0u8; 4096], &[id("carol")]), "NUL bytes");
    // Identity: the certificate and key swapped, a chain whose key is
    // another's, an empty key.
    expect_invalid(alice.set_identity(&read("alice.key"), &read("alice.crt")), "cert and key swapped");
    expect_invalid(alice.set_identity(&read("alice.crt"), b""), "empty key");
    expect_invalid(alice.set_identity(&read("stranger.crt"), &read("alice.key")), "key of another cert");

    // Nothing of that changed anything: bob's connection is the same one
    // and still delivers, alice still presents her own identity.
    let s = alice.stats().unwrap();
    assert_eq!(s.connections_revoked, 0, "{s:?}");
    bob.send(a_addr, &TEAM_A, "l", b"still").unwrap();
    let (ch, m) = recv_one(&alice);
    assert_eq!((ch.peer_id, m.as_slice()), (id("bob").0, &b"still"[..]));
    let conns = bob.connections().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].peer_id, id("alice"));

    // Duplicated CA blocks and duplicated pins are fine.
    let mut twice = ca.clone();
    twice.extend_from_slice(&ca);
    assert_eq!(alice.set_trust(&twice, &[id("bob"), id("bob"), id("bob")]).unwrap(), Vec::<PeerId>::new());

    // 2^20 pins exactly, bob not among them: accepted, and bob revoked.
    let at_limit = vec![PeerId([9; 32]); 1 << 20];
    assert_eq!(alice.set_trust(&ca, &at_limit).unwrap(), [id("bob")]);
    assert!(drain(&alice).is_empty());
}

#[test]
fn peer_id_from_pem_takes_the_leaf_of_a_chain() {
    let bob = read("bob.crt");
    let ca = read("ca.pem");
    let mut chain = bob.clone();
    chain.extend_from_slice(&ca);
    assert_eq!(peer_id_from_pem(&chain).unwrap(), id("bob"), "leaf first");
    let mut reversed = ca.clone();
    reversed.extend_from_slice(&bob);
    assert_ne!(peer_id_from_pem(&reversed).unwrap(), id("bob"), "the first block is the CA's");
    // Text before the first block (as `openssl` writes "Bag Attributes").
    let mut noted = b"Bag Attributes\n    friendlyName: bob\n".to_vec();
    noted.extend_from_slice(&bob);
    match peer_id_from_pem(&noted) {
        Ok(p) => assert_eq!(p, id("bob")),
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}"),
    }
    // Many threads at once, no endpoint.
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let chain = chain.clone();
            std::thread::spawn(move || {
                for _ in 0..200 {
                    assert_eq!(peer_id_from_pem(&chain).unwrap(), id("bob"));
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
}

#[test]
fn team_ids_at_the_edges() {
    let mut c = config("alice");
    c.team_authorization = true;
    let alice = Endpoint::new(c).unwrap();
    let bob = endpoint("bob");
    let a_addr = alice.local_addr().unwrap();
    // All 0xFF, a single non-zero byte at either end: valid ids.
    let teams = [GraphId([0xFF; 32]), GraphId({ let mut t = [0; 32]; t[31] = 1; t }), GraphId({ let mut t = [0; 32]; t[0] = 1; t })];
    let peers = [id("bob"), PeerId([0xFF; 32]), PeerId({ let mut p = [0; 32]; p[31] = 1; p })];
    for p in &peers {
        for t in &teams {
            alice.team_allow(p, t).unwrap();
        }
    }
    for t in &teams {
        bob.send(a_addr, t, "edge", b"x").unwrap();
        assert_eq!(recv_one(&alice).0.team_id, *t);
    }
    // Zero ids: refused, and refusing changed nothing.
    expect_invalid(alice.team_allow(&PeerId([0; 32]), &TEAM_A), "zero peer id");
    expect_invalid(alice.team_revoke(&PeerId([0; 32]), &teams[0]), "zero peer id (revoke)");
    expect_invalid(alice.team_revoke(&id("bob"), &GraphId([0; 32])), "zero team id (revoke)");
    bob.send(a_addr, &teams[0], "edge", b"y").unwrap();
    assert_eq!(recv_one(&alice).1, b"y");
    // Revoking pairs never allowed, many times: nothing happens.
    for i in 0..1000u32 {
        let mut t = [0x5A; 32];
        t[..4].copy_from_slice(&i.to_be_bytes());
        alice.team_revoke(&id("bob"), &GraphId(t)).unwrap();
    }
    bob.send(a_addr, &teams[1], "edge", b"z").unwrap();
    assert_eq!(recv_one(&alice).1, b"z");
    bob.send_sync(a_addr, 2, b"sync").unwrap();
    assert_eq!(recv_one(&alice).0.kind, ChannelKind::Sync);
}

#[test]
fn trust_calls_after_shutdown_are_refused() {
    let mut c = config("alice");
    c.team_authorization = true;
    let alice = Endpoint::new(c).unwrap();
    alice.shutdown().unwrap();
    let ca = read("ca.pem");
    for round in 0..2 {
        let checks: [(&str, Result<(), QuicMessageError>); 5] = [
            ("set_trust", alice.set_trust(&ca, &[]).map(drop)),
            ("set_identity", alice.set_identity(&read("alice.crt"), &read("alice.key"))),
            ("team_allow", alice.team_allow(&id("bob"), &TEAM_A)),
            ("team_revoke", alice.team_revoke(&id("bob"), &TEAM_A).map(drop)),
            ("connections", alice.connections().map(drop)),
        ];
        for (what, r) in checks {
            let e = r.expect_err(what);
            assert!(gone(&e), "{what} after shutdown (round {round}): {e}");
        }
        // Bad input on a freed endpoint: an error either way, no crash.
        assert!(alice.set_trust(b"", &[]).is_err());
        let _ = alice.shutdown();
    }
    // Still works without an endpoint.
    assert_eq!(peer_id_from_pem(&read("bob.crt")).unwrap(), id("bob"));
}

/// Every trust call in a loop on its own thread while another thread frees
/// the endpoint: each call succeeds or says the endpoint is gone.
#[test]
fn trust_calls_race_shutdown() {
    for round in 0..3 {
        let mut c = config("alice");
        c.team_authorization = true;
        let alice = Arc::new(Endpoint::new(c).unwrap());
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        alice.team_allow(&id("bob"), &TEAM_A).unwrap();
        bob.send(a_addr, &TEAM_A, "l", b"up").unwrap();
        recv_one(&alice);
        let start = Arc::new(Barrier::new(6));
        let calls = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for kind in 0..5 {
            let (alice, start, calls) = (alice.clone(), start.clone(), calls.clone());
            let (ca, cert, key) = (read("ca.pem"), read("alice.crt"), read("alice.key"));
            threads.push(std::thread::spawn(move || {
                start.wait();
                for i in 0..100_000u32 {
                    let r = match kind {
                        0 => alice.set_trust(&ca, &[id("bob")]).map(|v| assert!(v.is_empty(), "bob is pinned: {v:?}")),
                        1 => alice.set_identity(&cert, &key),
                        2 => alice.team_allow(&id("bob"), &TEAM_B),
                        3 => alice.team_revoke(&id("bob"), &TEAM_B).map(drop),
                        _ => alice.connections().map(|c| assert!(c.len() <= 1, "{c:?}")),
                    };
                    calls.fetch_add(1, Ordering::Relaxed);
                    match r {
                        Ok(()) => {}
                        Err(e) if gone(&e) => return i,
                        Err(e) => panic!("call kind {kind} failed otherwise: {e}"),
                    }
                }
                panic!("call kind {kind}: the shutdown never showed");
            }));
        }
        start.wait();
        // Let every thread get some calls in first.
        while calls.load(Ordering::Relaxed) < 50 * (round + 1) {
            std::thread::yield_now();
        }
        let _ = alice.shutdown(); // unconfirmed messages are not the point
        for t in threads {
            t.join().expect("a trust call thread panicked");
        }
    }
}

/// The connection list while peers connect, send and go away in a loop,
/// some of them closed by alice: no error, every field sane.
#[test]
fn connections_while_peers_churn() {
    let alice = Arc::new(endpoint("alice"));
    let a_addr = alice.local_addr().unwrap();
    let started = SystemTime::now() - Duration::from_secs(2);
    let known: HashSet<PeerId> = [id("bob"), id("carol")].into();
    let stop = Arc::new(AtomicBool::new(false));

    // Alice takes what arrives, and closes every other sender.
    let receiver = {
        let (alice, stop) = (alice.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                if let Some(ch) = alice.receive_vec(&mut buf, Some(Duration::from_millis(50))).unwrap() {
                    n += 1;
                    if n % 2 == 0 {
                        let _ = alice.close_nowait(ch.addr);
                    }
                }
            }
        })
    };
    let churn = std::thread::spawn(move || {
        for i in 0..12 {
            let p = endpoint(if i % 2 == 0 { "bob" } else { "carol" });
            p.send(a_addr, &TEAM_A, "churn", &[i as u8]).unwrap();
            if i % 3 == 0 {
                // Dropped without a graceful close of its own.
                let _ = p.shutdown_nowait();
            }
        }
    });
    let mut listed = 0usize;
    let mut rounds = 0usize;
    while !churn.is_finished() || rounds < 10 {
        rounds += 1;
        let conns = alice.connections().expect("connections while peers churn");
        for c in &conns {
            listed += 1;
            assert!(c.addr.ip().is_loopback() && c.addr.port() != 0, "{c:?}");
            assert!(known.contains(&c.peer_id), "unknown peer id {:?}", c.peer_id);
            assert!(!c.dialed, "alice dialed nobody: {c:?}");
            match c.congestion_control.as_str() {
                "bbr2" => assert!(c.bytes_in_flight.is_some(), "{c:?}"),
                "reno" => assert_eq!(c.bytes_in_flight, None, "{c:?}"),
                other => panic!("congestion control {other:?}: {c:?}"),
            }
            assert!(c.connected_at >= started, "connected before the test: {c:?}");
            assert!(c.connected_for < Duration::from_secs(3600), "{c:?}");
            if c.min_rtt > Duration::ZERO && c.latest_rtt > Duration::ZERO {
                assert!(c.min_rtt <= c.latest_rtt, "{c:?}");
            }
            assert!(c.packets_lost <= c.packets_sent, "{c:?}");
            assert!(c.bytes_received >= c.messages_received, "non-empty messages: {c:?}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    churn.join().unwrap();
    stop.store(true, Ordering::Relaxed);
    receiver.join().unwrap();
    assert!(listed > 0, "no connection ever listed");
}

/// Bob renews his identity over and over (bob's and carol's certificates,
/// and some inputs that are refused) while he sends on and reconnects;
/// alice pins both and re-applies that trust set in a loop. Every message
/// arrives, in order, from one of the two identities.
#[test]
fn set_identity_rotations_race_sends() {
    let alice = Arc::new(endpoint("alice"));
    let bob = Arc::new(endpoint("bob"));
    let a_addr = alice.local_addr().unwrap();
    let ca = read("ca.pem");
    let both = [id("bob"), id("carol")];
    assert!(alice.set_trust(&ca, &both).unwrap().is_empty());
    let stop = Arc::new(AtomicBool::new(false));

    let rotator = {
        let (bob, stop) = (bob.clone(), stop.clone());
        let ids = [(read("bob.crt"), read("bob.key")), (read("carol.crt"), read("carol.key"))];
        let bad = read("stranger.key");
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let (c, k) = &ids[(n % 2) as usize];
                bob.set_identity(c, k).unwrap();
                expect_invalid(bob.set_identity(c, &bad), "a key that does not match");
                n += 1;
                std::thread::yield_now();
            }
            n
        })
    };
    let retruster = {
        let (alice, stop, ca) = (alice.clone(), stop.clone(), ca.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let revoked = alice.set_trust(&ca, &both).unwrap();
                assert!(revoked.is_empty(), "a still-trusted set revoked {revoked:?}");
                std::thread::sleep(Duration::from_millis(1));
            }
        })
    };

    const N: u32 = 150;
    let mut received = Vec::new();
    for i in 0..N {
        bob.send(a_addr, &TEAM_A, "rot", &payload(1, i)).unwrap();
        if i % 15 == 14 {
            // A new connection, so that a new handshake meets the rotation.
            bob.close(a_addr).unwrap();
        }
        // Alice reads as she goes, so that bob's closes drain quickly.
        let mut buf = Vec::new();
        while let Some(ch) = alice.receive_vec(&mut buf, Some(Duration::ZERO)).unwrap() {
            received.push((ch.peer_id, seq_of(&buf)));
        }
    }
    stop.store(true, Ordering::Relaxed);
    let rotations = rotator.join().expect("rotator");
    retruster.join().expect("re-truster");
    while received.len() < N as usize {
        let (ch, m) = recv_one(&alice);
        received.push((ch.peer_id, seq_of(&m)));
    }
    let seqs: Vec<u32> = received.iter().map(|r| r.1).collect();
    assert_eq!(seqs, (0..N).collect::<Vec<_>>(), "every message, in order, once");
    let seen: HashSet<[u8; 32]> = received.iter().map(|r| r.0).collect();
    assert!(seen.iter().all(|p| both.iter().any(|b| b == p)), "only the two identities");
    assert!(rotations > 0);
    assert_eq!(alice.stats().unwrap().connections_revoked, 0);
    assert!(drain(&alice).is_empty());
}

/// The log records of a revocation are written on the thread that called
/// the trust call, from inside the library call; the header lets a log
/// callback call the library. A logger reacting to them with a trust call
/// must not deadlock on the binding's own locks.
#[cfg(feature = "log")]
mod logger_calls_back {
    use super::*;
    use std::cell::RefCell;
    use std::sync::mpsc;

    /// What the logger does, on this thread, when it sees a revocation.
    #[derive(Clone)]
    enum React {
        TeamAllow(Arc<Endpoint>),
        SetTrust(Arc<Endpoint>),
    }

    thread_local! {
        static REACT: RefCell<Option<React>> = const { RefCell::new(None) };
    }

    struct Reacting;

    impl log::Log for Reacting {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            let text = r.args().to_string();
            if !text.contains("no longer allowed on team") && !text.contains("no longer trusted") {
                return;
            }
            // Once per armed thread: the reaction may log again.
            match REACT.with(|s| s.borrow_mut().take()) {
                Some(React::TeamAllow(ep)) => {
                    let _ = ep.team_allow(&id("bob"), &TEAM_B);
                }
                Some(React::SetTrust(ep)) => {
                    let _ = ep.set_trust(&read("ca.pem"), &[id("carol")]);
                }
                None => {}
            }
        }
        fn flush(&self) {}
    }

    static LOGGER: Reacting = Reacting;

    fn install() {
        let _ = log::set_logger(&LOGGER);
        log::set_max_level(log::LevelFilter::Warn);
    }

    /// `f` on its own thread; a test failure instead of a hung test
    /// binary when it deadlocks (it normally takes milliseconds).
    fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what}: still running after 10 s (deadlock)"))
    }

    #[test]
    fn a_logger_may_call_team_allow_during_team_revoke() {
        install();
        let mut c = config("alice");
        c.team_authorization = true;
        let alice = Arc::new(Endpoint::new(c).unwrap());
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        alice.team_allow(&id("bob"), &TEAM_A).unwrap();
        bob.send(a_addr, &TEAM_A, "l", b"open").unwrap();
        recv_one(&alice);
        let a = alice.clone();
        within("team_revoke with a logger that calls team_allow", move || {
            REACT.with(|s| *s.borrow_mut() = Some(React::TeamAllow(a.clone())));
            a.team_revoke(&id("bob"), &TEAM_A).unwrap();
            REACT.with(|s| *s.borrow_mut() = None);
        });
        bob.send(a_addr, &TEAM_B, "l", b"b").unwrap();
        assert_eq!(recv_one(&alice).1, b"b");
    }

    #[test]
    fn a_logger_may_call_set_trust_during_set_trust() {
        install();
        let alice = Arc::new(endpoint("alice"));
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        bob.send(a_addr, &TEAM_A, "l", b"open").unwrap();
        recv_one(&alice);
        let a = alice.clone();
        let revoked = within("set_trust with a logger that calls set_trust", move || {
            REACT.with(|s| *s.borrow_mut() = Some(React::SetTrust(a.clone())));
            let r = a.set_trust(&read("ca.pem"), &[id("carol")]).unwrap();
            REACT.with(|s| *s.borrow_mut() = None);
            r
        });
        assert_eq!(revoked, [id("bob")]);
    }
}

/// Revocations while async receives hold messages they took from the
/// library: nothing of the revoked peer (or team) is handed out by a
/// receive that starts after the call returned, and every message of the
/// peers still trusted comes out, in order, once.
#[cfg(feature = "tokio")]
mod async_receive {
    use super::*;
    use aranya_quic::{AsyncEndpoint, MessageBatch};

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
    }

    /// One message as a consumer saw it, with whether the revocation had
    /// returned before the receive that gave it started.
    #[derive(Debug, Clone)]
    struct Seen {
        after: bool,
        peer: [u8; 32],
        kind: ChannelKind,
        team: GraphId,
        data: Vec<u8>,
    }

    /// How a consumer takes messages: one way, or all of them in turn.
    #[derive(Clone, Copy, Debug)]
    enum Via {
        Recv,
        Stream,
        Batch,
        Mixed,
    }

    /// Takes messages from `ep` until `done` says it has all it waits for
    /// (or LONG passes), flagging those whose receive started after
    /// `revoked` was set; `progress` counts what it took.
    async fn consume(
        ep: Arc<AsyncEndpoint>,
        via: Via,
        revoked: Arc<AtomicBool>,
        progress: Arc<AtomicUsize>,
        done: impl Fn(&[Seen]) -> bool,
    ) -> Vec<Seen> {
        let mut seen = Vec::new();
        let mut buf = Vec::new();
        let mut batch = MessageBatch::with_capacity(7, 4096);
        let mut stream = ep.messages();
        let deadline = tokio::time::Instant::now() + LONG;
        let mut i = 0usize;
        while !done(&seen) {
            let after = revoked.load(Ordering::SeqCst);
            let way = match via {
                Via::Mixed => [Via::Recv, Via::Stream, Via::Batch][i % 3],
                v => v,
            };
            i += 1;
            let got: Vec<(QuicChannel, Vec<u8>)> = tokio::select! {
                biased;
                _ = tokio::time::sleep_until(deadline) => break,
                r = async {
                    match way {
                        Via::Recv => {
                            let ch = ep.recv(&mut buf).await.unwrap();
                            vec![(ch, buf.clone())]
                        }
                        Via::Stream => {
                            let m = stream.next().await.expect("stream ended").unwrap();
                            vec![(m.channel, m.data)]
                        }
                        Via::Batch | Via::Mixed => {
                            let n = ep.recv_batch(&mut batch).await.unwrap();
                            assert!(n >= 1);
                            batch.iter().map(|m| (m.channel().unwrap(), m.data().to_vec())).collect()
                        }
                    }
                } => r,
            };
            for (ch, data) in got {
                progress.fetch_add(1, Ordering::SeqCst);
                seen.push(Seen { after, peer: ch.peer_id, kind: ch.kind, team: ch.team_id, data });
            }
            // Slow enough that the revocation lands while messages wait
            // inside the endpoint.
            if i % 4 == 0 {
                tokio::task::yield_now().await;
            }
        }
        seen
    }

    fn seqs(seen: &[Seen], keep: impl Fn(&Seen) -> bool) -> Vec<u32> {
        seen.iter().filter(|s| keep(s)).map(|s| seq_of(&s.data)).collect()
    }

    /// Bob and carol each queue `n` messages at alice; a consumer takes
    /// them; after `at` messages another thread revokes bob with set_trust.
    fn set_trust_during(via: Via, n: u32, at: usize) {
        let alice = Arc::new(AsyncEndpoint::new(config("alice")).unwrap());
        let bob = endpoint("bob");
        let carol = endpoint("carol");
        let a_addr = alice.local_addr().unwrap();
        for i in 0..n {
            bob.send(a_addr, &TEAM_A, "b", &payload(1, i)).unwrap();
            carol.send(a_addr, &TEAM_A, "c", &payload(2, i)).unwrap();
        }
        queued(&alice, 2 * u64::from(n));
        let carol_id = id("carol").0;
        let revoked = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicUsize::new(0));

        let revoker = {
            let (alice, revoked, progress) = (alice.clone(), revoked.clone(), progress.clone());
            std::thread::spawn(move || {
                while progress.load(Ordering::SeqCst) < at {
                    std::thread::yield_now();
                }
                let r = alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap();
                revoked.store(true, Ordering::SeqCst);
                r
            })
        };
        let seen = rt().block_on(consume(alice.clone(), via, revoked.clone(), progress, |s| {
            s.iter().filter(|m| m.peer == carol_id).count() >= n as usize
        }));
        let r = revoker.join().unwrap();
        assert_eq!(r, [id("bob")], "{via:?}: bob revoked");

        let late: Vec<_> = seen.iter().filter(|s| s.after && s.peer != carol_id).collect();
        assert!(late.is_empty(), "{via:?}: {} message(s) of bob from receives started after set_trust returned: {late:?}", late.len());
        assert_eq!(
            seqs(&seen, |s| s.peer == carol_id),
            (0..n).collect::<Vec<_>>(),
            "{via:?}: every message of carol (still trusted), in order, once"
        );
        let bobs = seqs(&seen, |s| s.peer != carol_id);
        assert!(bobs.windows(2).all(|w| w[0] < w[1]), "{via:?}: bob's, before the revocation, in order: {bobs:?}");
        assert!(drain(&alice).iter().all(|(ch, _)| ch.peer_id == carol_id), "{via:?}: nothing of bob afterwards");
        let s = alice.stats().unwrap();
        assert_eq!(s.connections_revoked, 1, "{s:?}");
    }

    #[test]
    fn set_trust_from_another_thread_during_recv() {
        set_trust_during(Via::Recv, 200, 5);
    }

    #[test]
    fn set_trust_from_another_thread_during_the_message_stream() {
        set_trust_during(Via::Stream, 200, 5);
    }

    #[test]
    fn set_trust_from_another_thread_during_recv_batch() {
        set_trust_during(Via::Batch, 200, 5);
    }

    #[test]
    fn set_trust_from_another_thread_during_mixed_receives() {
        for at in [1, 3, 40, 90] {
            set_trust_during(Via::Mixed, 100, at);
        }
    }

    /// The consumer itself revokes, between two receives: the very next
    /// receive must not give bob's.
    #[test]
    fn set_trust_inside_the_receiving_task() {
        for via in [Via::Recv, Via::Stream, Via::Batch] {
            let alice = Arc::new(AsyncEndpoint::new(config("alice")).unwrap());
            let bob = endpoint("bob");
            let carol = endpoint("carol");
            let a_addr = alice.local_addr().unwrap();
            for i in 0..50 {
                bob.send(a_addr, &TEAM_A, "b", &payload(1, i)).unwrap();
                carol.send(a_addr, &TEAM_A, "c", &payload(2, i)).unwrap();
            }
            queued(&alice, 100);
            let carol_id = id("carol").0;
            let a = alice.clone();
            let seen = rt().block_on(async move {
                let mut buf = Vec::new();
                let mut batch = MessageBatch::with_capacity(3, 1024);
                let mut stream = a.messages();
                let mut seen: Vec<Seen> = Vec::new();
                let mut revoked = false;
                while seen.iter().filter(|m| m.peer == carol_id).count() < 50 {
                    if seen.len() >= 3 && !revoked {
                        assert_eq!(a.set_trust(&read("ca.pem"), &[id("carol")]).unwrap(), [id("bob")]);
                        revoked = true;
                    }
                    let got: Vec<(QuicChannel, Vec<u8>)> = tokio::time::timeout(LONG, async {
                        match via {
                            Via::Recv => vec![(a.recv(&mut buf).await.unwrap(), buf.clone())],
                            Via::Stream => {
                                let m = stream.next().await.unwrap().unwrap();
                                vec![(m.channel, m.data)]
                            }
                            _ => {
                                a.recv_batch(&mut batch).await.unwrap();
                                batch.iter().map(|m| (m.channel().unwrap(), m.data().to_vec())).collect()
                            }
                        }
                    })
                    .await
                    .expect("carol's messages stopped coming");
                    for (ch, data) in got {
                        seen.push(Seen { after: revoked, peer: ch.peer_id, kind: ch.kind, team: ch.team_id, data });
                    }
                }
                seen
            });
            let late = seen.iter().filter(|s| s.after && s.peer != carol_id).count();
            assert_eq!(late, 0, "{via:?}: bob's after set_trust returned");
            assert_eq!(seqs(&seen, |s| s.peer == carol_id), (0..50).collect::<Vec<_>>(), "{via:?}");
        }
    }

    /// Two consumers on two worker threads and a revoker: carol's messages
    /// all come out, each once; bob's never from a receive started after
    /// the return. Each consumer stops at one of carol's two end markers
    /// (single-message receives, so each marker goes to one of them).
    #[test]
    fn set_trust_with_two_consumers() {
        let alice = Arc::new(AsyncEndpoint::new(config("alice")).unwrap());
        let bob = endpoint("bob");
        let carol = endpoint("carol");
        let a_addr = alice.local_addr().unwrap();
        const N: u32 = 200;
        for i in 0..N {
            bob.send(a_addr, &TEAM_A, "b", &payload(1, i)).unwrap();
            carol.send(a_addr, &TEAM_A, "c", &payload(2, i)).unwrap();
        }
        carol.send(a_addr, &TEAM_A, "c", &payload(9, N)).unwrap();
        carol.send(a_addr, &TEAM_A, "c", &payload(9, N + 1)).unwrap();
        queued(&alice, 2 * u64::from(N) + 2);
        let carol_id = id("carol").0;
        let revoked = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicUsize::new(0));
        let revoker = {
            let (alice, revoked, progress) = (alice.clone(), revoked.clone(), progress.clone());
            std::thread::spawn(move || {
                while progress.load(Ordering::SeqCst) < 10 {
                    std::thread::yield_now();
                }
                let r = alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap();
                revoked.store(true, Ordering::SeqCst);
                r
            })
        };
        let runtime = rt();
        let tasks: Vec<_> = [Via::Stream, Via::Recv]
            .into_iter()
            .map(|via| {
                let (alice, revoked, progress) = (alice.clone(), revoked.clone(), progress.clone());
                runtime.spawn(consume(alice, via, revoked, progress, |s: &[Seen]| s.last().is_some_and(|m| m.data[0] == 9)))
            })
            .collect();
        let seen: Vec<Seen> = runtime.block_on(async {
            let mut all = Vec::new();
            for t in tasks {
                all.extend(t.await.unwrap());
            }
            all
        });
        assert_eq!(revoker.join().unwrap(), [id("bob")]);
        let late: Vec<_> = seen.iter().filter(|s| s.after && s.peer != carol_id).collect();
        assert!(late.is_empty(), "{} message(s) of bob from receives started after set_trust returned: {late:?}", late.len());
        let mut carols = seqs(&seen, |s| s.peer == carol_id);
        carols.sort_unstable();
        assert_eq!(carols, (0..N + 2).collect::<Vec<_>>(), "every message of carol, once");
    }

    fn authorizing(name: &str) -> Arc<AsyncEndpoint> {
        let mut c = config(name);
        c.team_authorization = true;
        Arc::new(AsyncEndpoint::new(c).unwrap())
    }

    /// Bob is allowed on teams A and B and queues `n` messages on each
    /// and `n` sync messages; a consumer takes them; after `at` messages
    /// another thread revokes bob on team A only.
    fn team_revoke_during(via: Via, n: u32, at: usize) {
        let alice = authorizing("alice");
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        alice.team_allow(&id("bob"), &TEAM_A).unwrap();
        alice.team_allow(&id("bob"), &TEAM_B).unwrap();
        for i in 0..n {
            bob.send(a_addr, &TEAM_A, "a", &payload(1, i)).unwrap();
            bob.send(a_addr, &TEAM_B, "b", &payload(2, i)).unwrap();
            bob.send_sync(a_addr, 5, &payload(3, i)).unwrap();
        }
        queued(&alice, 3 * u64::from(n));
        let revoked = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(AtomicUsize::new(0));
        let revoker = {
            let (alice, revoked, progress) = (alice.clone(), revoked.clone(), progress.clone());
            std::thread::spawn(move || {
                while progress.load(Ordering::SeqCst) < at {
                    std::thread::yield_now();
                }
                alice.team_revoke(&id("bob"), &TEAM_A).unwrap();
                revoked.store(true, Ordering::SeqCst);
            })
        };
        let want = n as usize;
        let seen = rt().block_on(consume(alice.clone(), via, revoked, progress, move |s: &[Seen]| {
            s.iter().filter(|m| m.team == TEAM_B).count() >= want && s.iter().filter(|m| m.kind == ChannelKind::Sync).count() >= want
        }));
        revoker.join().unwrap();
        let late: Vec<_> = seen.iter().filter(|s| s.after && s.team == TEAM_A).collect();
        assert!(late.is_empty(), "{via:?}: {} message(s) on team A from receives started after team_revoke returned: {late:?}", late.len());
        assert_eq!(seqs(&seen, |s| s.team == TEAM_B), (0..n).collect::<Vec<_>>(), "{via:?}: team B, all, in order");
        assert_eq!(seqs(&seen, |s| s.kind == ChannelKind::Sync), (0..n).collect::<Vec<_>>(), "{via:?}: sync, all, in order");
        let a = seqs(&seen, |s| s.team == TEAM_A);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{via:?}: team A before the revocation in order: {a:?}");
        assert!(drain(&alice).is_empty(), "{via:?}: nothing left");
    }

    #[test]
    fn team_revoke_from_another_thread_during_recv() {
        team_revoke_during(Via::Recv, 100, 5);
    }

    #[test]
    fn team_revoke_from_another_thread_during_the_message_stream() {
        team_revoke_during(Via::Stream, 100, 5);
    }

    #[test]
    fn team_revoke_from_another_thread_during_mixed_receives() {
        for at in [1, 30, 120] {
            team_revoke_during(Via::Mixed, 60, at);
        }
    }

    /// Revoking bob's last team takes his sync messages too; carol, on the
    /// same team, keeps everything.
    #[test]
    fn team_revoke_of_the_last_team_during_receives() {
        for via in [Via::Recv, Via::Batch, Via::Mixed] {
            let alice = authorizing("alice");
            let bob = endpoint("bob");
            let carol = endpoint("carol");
            let a_addr = alice.local_addr().unwrap();
            alice.team_allow(&id("bob"), &TEAM_A).unwrap();
            alice.team_allow(&id("carol"), &TEAM_A).unwrap();
            const N: u32 = 80;
            for i in 0..N {
                bob.send(a_addr, &TEAM_A, "a", &payload(1, i)).unwrap();
                bob.send_sync(a_addr, 5, &payload(3, i)).unwrap();
                carol.send(a_addr, &TEAM_A, "a", &payload(2, i)).unwrap();
                carol.send_sync(a_addr, 5, &payload(4, i)).unwrap();
            }
            queued(&alice, 4 * u64::from(N));
            let carol_id = id("carol").0;
            let revoked = Arc::new(AtomicBool::new(false));
            let progress = Arc::new(AtomicUsize::new(0));
            let revoker = {
                let (alice, revoked, progress) = (alice.clone(), revoked.clone(), progress.clone());
                std::thread::spawn(move || {
                    while progress.load(Ordering::SeqCst) < 6 {
                        std::thread::yield_now();
                    }
                    alice.team_revoke(&id("bob"), &TEAM_A).unwrap();
                    revoked.store(true, Ordering::SeqCst);
                })
            };
            let seen = rt().block_on(consume(alice.clone(), via, revoked, progress, move |s: &[Seen]| {
                s.iter().filter(|m| m.peer == carol_id).count() >= 2 * N as usize
            }));
            revoker.join().unwrap();
            let late: Vec<_> = seen.iter().filter(|s| s.after && s.peer != carol_id).collect();
            assert!(late.is_empty(), "{via:?}: {} message(s) of bob after his last team was revoked: {late:?}", late.len());
            assert_eq!(seqs(&seen, |s| s.peer == carol_id && s.kind != ChannelKind::Sync), (0..N).collect::<Vec<_>>(), "{via:?}");
            assert_eq!(seqs(&seen, |s| s.peer == carol_id && s.kind == ChannelKind::Sync), (0..N).collect::<Vec<_>>(), "{via:?}");
        }
    }
}
