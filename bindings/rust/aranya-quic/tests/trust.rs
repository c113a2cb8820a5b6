//! Trust at runtime, team authorization and the connection list, through
//! the safe API: what a user relies on when revoking a peer, re-admitting
//! it, renewing a certificate, or limiting a peer to some teams.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use aranya_quic::{peer_id_from_pem, ChannelKind, CongestionControl, Endpoint, ErrorKind, GraphId, PeerId, QuicChannel};
use common::*;

const TEAM_A: GraphId = GraphId([0xA1; 32]);
const TEAM_B: GraphId = GraphId([0xB2; 32]);

/// How long `drain` waits for one more message. Only bounds how long a
/// test looks for messages that must not come; never a pass condition.
const QUIET: Option<Duration> = Some(Duration::from_millis(300));

fn id(name: &str) -> PeerId {
    peer_id_from_pem(&read(&format!("{name}.crt"))).unwrap_or_else(|e| panic!("peer id of {name}: {e}"))
}

fn recv(ep: &Endpoint) -> (QuicChannel, Vec<u8>) {
    let mut buf = Vec::new();
    let ch = ep.receive_vec(&mut buf, WAIT).expect("receive").expect("a message within the wait");
    (ch, buf)
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

/// Sends from `ep` to `to` on `team` until a send fails, with `stop` as the
/// way out when none does; the thread's result is what it sent and the
/// error kinds it saw (it keeps going through up to `max_errors` errors
/// until one of kind `until`).
fn stream_until(
    ep: Arc<Endpoint>,
    to: std::net::SocketAddr,
    team: GraphId,
    until: ErrorKind,
    max_errors: usize,
    stop: Arc<AtomicBool>,
) -> mpsc::Receiver<(u64, Vec<ErrorKind>)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut sent, mut errors) = (0u64, Vec::new());
        while !stop.load(Ordering::Relaxed) {
            match ep.send(to, &team, "stream", &sent.to_be_bytes()) {
                Ok(()) => sent += 1,
                Err(e) => {
                    errors.push(e.kind());
                    if e.kind() == until || errors.len() >= max_errors {
                        break;
                    }
                }
            }
        }
        let _ = tx.send((sent, errors));
    });
    rx
}

/// Sends from `ep` until a send fails with `want`. Sends only hand the
/// message to the transport, so some may be accepted, or fail otherwise,
/// while the change travels the network; the bound on their number is
/// far beyond that and only ends a broken run.
fn send_until(ep: &Endpoint, to: std::net::SocketAddr, team: &GraphId, want: ErrorKind) {
    let (mut accepted, mut errors) = (0u32, Vec::new());
    for i in 0..100_000u32 {
        match ep.send(to, team, "probe", &i.to_be_bytes()) {
            Ok(()) => accepted += 1,
            Err(e) if e.kind() == want => return,
            Err(e) => {
                errors.push(e.kind());
                assert!(errors.len() < 20, "no {want:?} error, only {errors:?}");
            }
        }
    }
    panic!("no {want:?} error: {accepted} sends accepted, errors {errors:?}");
}

#[test]
fn set_trust_revokes_a_streaming_peer() {
    let alice = endpoint("alice");
    let bob = Arc::new(endpoint("bob"));
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let bob_id = id("bob");
    let stop = Arc::new(AtomicBool::new(false));
    let done = stream_until(bob.clone(), a_addr, TEAM_A, ErrorKind::Tls, 20, stop.clone());

    // Bob is streaming, and the id peer_id_from_pem gives is the one
    // received messages carry.
    for _ in 0..20 {
        let (ch, _) = recv(&alice);
        assert_eq!(ch.peer_id, bob_id);
    }
    // Pin only carol: bob's certificate no longer verifies.
    let revoked = alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap();
    assert_eq!(revoked, [bob_id], "bob, the only peer, was revoked");

    // Whatever bob had queued is dropped, and nothing of his arrives later.
    let late = drain(&alice);
    assert!(late.iter().all(|(ch, _)| ch.peer_id != bob_id), "{} message(s) from bob after set_trust returned", late.len());

    let (sent, errors) = done.recv_timeout(Duration::from_secs(120)).expect("bob's sends end with an error");
    stop.store(true, Ordering::Relaxed);
    assert!(sent >= 20);
    assert_eq!(errors.last(), Some(&ErrorKind::Tls), "bob's sends end in a TLS refusal: {errors:?}");
    // Alice refuses him too when she dials.
    let e = alice.send(b_addr, &TEAM_A, "back", b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");

    let s = alice.stats().unwrap();
    assert!(s.connections_revoked >= 1, "{s:?}");
    assert!(drain(&alice).is_empty());
    // Bob stays untrusted, but with no connection left there is nobody
    // to revoke.
    assert_eq!(alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap(), Vec::<PeerId>::new());
}

#[test]
fn set_trust_re_admits_a_peer() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    bob.send(a_addr, &TEAM_A, "l", b"hello").unwrap();
    assert_eq!(recv(&alice).1, b"hello");

    // A CA that did not issue bob's certificate.
    assert_eq!(alice.set_trust(&read("other-ca.pem"), &[]).unwrap(), [id("bob")]);
    send_until(&bob, a_addr, &TEAM_A, ErrorKind::Tls);
    assert!(drain(&alice).is_empty(), "nothing bob sent after the revocation arrives");

    // Back to the original CA, no pins: nobody revoked, and bob's sends
    // work again, both ways.
    assert_eq!(alice.set_trust(&read("ca.pem"), &[]).unwrap(), Vec::<PeerId>::new());
    bob.send(a_addr, &TEAM_A, "l", b"again").unwrap();
    let (ch, m) = recv(&alice);
    assert_eq!((ch.peer_id, m.as_slice()), (id("bob").0, &b"again"[..]));
    alice.send(b_addr, &TEAM_A, "l", b"back").unwrap();
    assert_eq!(recv(&bob).1, b"back");
}

#[test]
fn set_identity_keeps_connections_and_shows_on_new_ones() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let (alice_id, carol_id) = (id("alice"), id("carol"));
    bob.send(a_addr, &TEAM_A, "l", b"before").unwrap();
    assert_eq!(recv(&alice).0.peer_id, id("bob"));
    alice.send(b_addr, &TEAM_A, "l", b"hi").unwrap();
    assert_eq!(recv(&bob).0.peer_id, alice_id);

    // Carol's certificate, from the same CA.
    alice.set_identity(&read("carol.crt"), &read("carol.key")).unwrap();

    // The open connection keeps working, with the identity it was made with.
    alice.send(b_addr, &TEAM_A, "l", b"after").unwrap();
    let (ch, m) = recv(&bob);
    assert_eq!((ch.peer_id, m.as_slice()), (alice_id.0, &b"after"[..]));
    bob.send(a_addr, &TEAM_A, "l", b"after-b").unwrap();
    assert_eq!(recv(&alice).1, b"after-b");
    let conns = bob.connections().unwrap();
    assert_eq!(conns.len(), 1);
    assert_eq!(conns[0].peer_id, alice_id);

    // A new connection (dialed by a third endpoint) sees the new identity.
    let bob2 = endpoint("bob");
    let b2_addr = bob2.local_addr().unwrap();
    bob2.send(a_addr, &TEAM_A, "l", b"new").unwrap();
    assert_eq!(recv(&alice).1, b"new");
    assert_eq!(bob2.connections().unwrap()[0].peer_id, carol_id);
    alice.send(b2_addr, &TEAM_A, "l", b"from the new identity").unwrap();
    assert_eq!(recv(&bob2).0.peer_id, carol_id);

    // So does bob once alice's old connection to him is closed.
    alice.close(b_addr).unwrap();
    alice.send(b_addr, &TEAM_A, "l", b"redialed").unwrap();
    let (ch, m) = recv(&bob);
    assert_eq!((ch.peer_id, m.as_slice()), (carol_id.0, &b"redialed"[..]));
}

#[test]
fn team_authorization_allows_refuses_and_revokes() {
    let mut c = config("alice");
    c.team_authorization = true;
    let alice = Endpoint::new(c).unwrap();
    let bob = Arc::new(endpoint("bob"));
    let a_addr = alice.local_addr().unwrap();
    let bob_id = id("bob");

    // Not allowed on any team: even sync messages are refused.
    let e = bob.send_sync(a_addr, 1, b"sync").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAuthorized, "{e}");

    alice.team_allow(&bob_id, &TEAM_A).unwrap();
    alice.team_allow(&bob_id, &TEAM_A).unwrap(); // again: nothing changes
    bob.send(a_addr, &TEAM_A, "a", b"a1").unwrap();
    let (ch, m) = recv(&alice);
    assert_eq!((ch.team_id, ch.peer_id, m.as_slice()), (TEAM_A, bob_id.0, &b"a1"[..]));
    bob.send_sync(a_addr, 1, b"sync2").unwrap();
    let (ch, m) = recv(&alice);
    assert_eq!((ch.kind, m.as_slice()), (ChannelKind::Sync, &b"sync2"[..]));

    // Team B: refused, and nothing arrives.
    let e = bob.send(a_addr, &TEAM_B, "b", b"b1").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAuthorized, "{e}");
    assert_eq!(e.code(), -15);
    assert!(drain(&alice).is_empty(), "the refused message is not delivered");
    let s = alice.stats().unwrap();
    assert!(s.streams_refused >= 2, "the sync and the team B streams: {s:?}");

    // Revoking team A while bob streams on it: nothing more of it arrives
    // once team_revoke returned, and bob's sends fail.
    let stop = Arc::new(AtomicBool::new(false));
    let done = stream_until(bob.clone(), a_addr, TEAM_A, ErrorKind::NotAuthorized, 20, stop.clone());
    for _ in 0..20 {
        assert_eq!(recv(&alice).0.team_id, TEAM_A);
    }
    assert!(alice.team_revoke(&bob_id, &TEAM_A).unwrap(), "team A was bob's last team");
    let late = drain(&alice);
    assert!(late.is_empty(), "{} message(s) on the revoked team after team_revoke returned", late.len());
    let (sent, errors) = done.recv_timeout(Duration::from_secs(120)).expect("bob's sends end with an error");
    stop.store(true, Ordering::Relaxed);
    assert!(sent >= 20);
    assert_eq!(errors.last(), Some(&ErrorKind::NotAuthorized), "{errors:?}");
    assert!(drain(&alice).is_empty());
    // Revoking a pair that is not allowed does nothing.
    assert!(!alice.team_revoke(&bob_id, &TEAM_B).unwrap(), "a pair never allowed is no last team");

    // Allowed again: bob's next send goes through.
    alice.team_allow(&bob_id, &TEAM_A).unwrap();
    bob.send(a_addr, &TEAM_A, "a", b"again").unwrap();
    let (ch, m) = recv(&alice);
    assert_eq!((ch.team_id, m.as_slice()), (TEAM_A, &b"again"[..]));
}

/// `team_revoke` says when the pair was the peer's last team, as the
/// library's own list has it: no peer needs to be connected for that.
#[test]
fn team_revoke_reports_the_last_team() {
    let mut c = config("alice");
    c.team_authorization = true;
    let alice = Endpoint::new(c).unwrap();
    let (bob, carol) = (id("bob"), id("carol"));
    alice.team_allow(&bob, &TEAM_A).unwrap();
    alice.team_allow(&bob, &TEAM_B).unwrap();
    alice.team_allow(&carol, &TEAM_A).unwrap();

    assert!(!alice.team_revoke(&bob, &TEAM_A).unwrap(), "bob keeps team B");
    assert!(!alice.team_revoke(&bob, &TEAM_A).unwrap(), "revoked already: not allowed, so no last team");
    assert!(!alice.team_revoke(&carol, &TEAM_B).unwrap(), "never allowed, though carol has one team");
    assert!(alice.team_revoke(&bob, &TEAM_B).unwrap(), "team B was bob's last");
    assert!(!alice.team_revoke(&bob, &TEAM_B).unwrap(), "bob is on no team: nothing to revoke");
    // Other peers' teams do not count: carol's only team is her last.
    assert!(alice.team_revoke(&carol, &TEAM_A).unwrap(), "team A was carol's last");
    // Allowed again, the pair is once more the peer's last team.
    alice.team_allow(&bob, &TEAM_A).unwrap();
    assert!(alice.team_revoke(&bob, &TEAM_A).unwrap(), "re-allowed team A was bob's only team");
}

#[test]
fn bad_input_is_refused_and_changes_nothing() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    bob.send(a_addr, &TEAM_A, "l", b"up").unwrap();
    recv(&alice);

    let cert = read("carol.crt");
    let mut corrupt = cert.clone();
    let mid = corrupt.len() / 2;
    corrupt[mid..mid + 8].copy_from_slice(b"!!!!!!!!");
    let invalid = |r: Result<(), aranya_quic::QuicMessageError>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{what}: {e}");
        assert!(!e.message().is_empty(), "{what}: the error says why");
    };

    invalid(peer_id_from_pem(b"").map(drop), "peer id of empty PEM");
    invalid(peer_id_from_pem(&corrupt).map(drop), "peer id of a corrupt PEM");
    invalid(peer_id_from_pem(&read("carol.key")).map(drop), "peer id of a key");

    invalid(alice.set_trust(b"", &[]).map(drop), "set_trust with no CA");
    invalid(alice.set_trust(&corrupt, &[]).map(drop), "set_trust with a corrupt CA");
    invalid(alice.set_trust(&read("alice.key"), &[]).map(drop), "set_trust with no certificate");

    invalid(alice.set_identity(b"", b""), "set_identity with nothing");
    invalid(alice.set_identity(&corrupt, &read("carol.key")), "set_identity with a corrupt certificate");
    invalid(alice.set_identity(&cert, &read("bob.key")), "set_identity with a key that does not match");

    // Team authorization is off on alice.
    invalid(alice.team_allow(&id("bob"), &TEAM_A), "team_allow with authorization off");
    invalid(alice.team_revoke(&id("bob"), &TEAM_A).map(drop), "team_revoke with authorization off");
    let mut c = config("carol");
    c.team_authorization = true;
    let carol = Endpoint::new(c).unwrap();
    invalid(carol.team_allow(&PeerId([0; 32]), &TEAM_A), "team_allow of the zero peer id");
    invalid(carol.team_allow(&id("bob"), &GraphId([0; 32])), "team_allow of the zero team id");

    // Nothing changed: the connection is up, messages flow both ways, and
    // a new connection still shows alice's own identity.
    assert_eq!(alice.stats().unwrap().connections_revoked, 0);
    bob.send(a_addr, &TEAM_A, "l", b"still").unwrap();
    assert_eq!(recv(&alice).1, b"still");
    alice.close(b_addr).unwrap();
    alice.send(b_addr, &TEAM_A, "l", b"redialed").unwrap();
    let (ch, m) = recv(&bob);
    assert_eq!((ch.peer_id, m.as_slice()), (id("alice").0, &b"redialed"[..]));
    // And carol, with authorization on, still refuses bob everywhere.
    let e = bob.send(carol.local_addr().unwrap(), &TEAM_A, "l", b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotAuthorized, "{e}");
}

#[test]
fn connections_describe_each_connection() {
    for cc in [CongestionControl::Default, CongestionControl::Reno] {
        let mut c = config("alice");
        c.congestion_control = cc;
        let alice = Endpoint::new(c).unwrap();
        let bob = endpoint("bob");
        let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
        assert!(alice.connections().unwrap().is_empty());

        let from_bob: [&[u8]; 5] = [b"1", b"22", b"333", b"4444", b"55555"];
        for m in from_bob {
            bob.send(a_addr, &TEAM_A, "l", m).unwrap();
        }
        for _ in from_bob {
            recv(&alice);
        }
        let from_alice: [&[u8]; 3] = [b"abc", b"de", b""];
        for m in from_alice {
            alice.send(b_addr, &TEAM_A, "l", m).unwrap();
        }
        for _ in from_alice {
            recv(&bob);
        }

        let conns = alice.connections().unwrap();
        assert_eq!(conns.len(), 1, "{conns:?}");
        let c = &conns[0];
        assert_eq!((c.addr, c.peer_id), (b_addr, id("bob")));
        assert!(!c.dialed && !c.draining, "bob dialed: {c:?}");
        assert!(c.smoothed_rtt > Duration::ZERO && c.min_rtt > Duration::ZERO && c.latest_rtt > Duration::ZERO, "{c:?}");
        assert!(c.congestion_window > 0 && c.packets_sent > 0 && c.packets_received > 0, "{c:?}");
        let stats = alice.stats().unwrap();
        assert_eq!(c.congestion_control, stats.congestion_control, "{cc:?}");
        match c.congestion_control.as_str() {
            "bbr2" => assert!(c.bytes_in_flight.is_some(), "BBRv2 reports bytes in flight: {c:?}"),
            "reno" => assert_eq!(c.bytes_in_flight, None, "NewReno does not"),
            other => panic!("unexpected congestion control {other:?}"),
        }
        if cc == CongestionControl::Reno {
            assert_eq!(c.congestion_control, "reno");
        }
        assert_eq!((c.messages_received, c.bytes_received), (5, 15), "{c:?}");
        assert_eq!((c.messages_sent, c.bytes_sent), (3, 5), "{c:?}");

        // The other side: bob dialed, and sees the mirror image.
        let theirs = bob.connections().unwrap();
        assert_eq!(theirs.len(), 1);
        let t = &theirs[0];
        assert_eq!((t.addr, t.peer_id, t.dialed), (a_addr, id("alice"), true));
        assert_eq!((t.messages_sent, t.bytes_sent, t.messages_received, t.bytes_received), (5, 15, 3, 5));
    }
}

#[test]
fn connections_lists_every_peer() {
    // More peers than the first call of connections() has room for.
    let alice = endpoint("alice");
    let a_addr = alice.local_addr().unwrap();
    let peers: Vec<Endpoint> = (0..20).map(|_| endpoint("carol")).collect();
    for p in &peers {
        p.send(a_addr, &TEAM_A, "l", b"x").unwrap();
    }
    for _ in &peers {
        recv(&alice);
    }
    let mut listed: Vec<_> = alice.connections().unwrap().into_iter().map(|c| c.addr).collect();
    let mut want: Vec<_> = peers.iter().map(|p| p.local_addr().unwrap()).collect();
    listed.sort();
    want.sort();
    assert_eq!(listed, want);
}

/// With `tokio`, `recv` takes queued messages from the library in a batch
/// and hands them out one by one; a revocation must drop those of the
/// revoked sender too, not only what the library still queues.
#[cfg(feature = "tokio")]
mod taken_by_recv {
    use super::*;

    /// Waits until `n` messages sit in `ep`'s library queue.
    fn queued(ep: &Endpoint, n: u64) {
        for _ in 0..2000 {
            if ep.stats().unwrap().queue_messages >= n {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{n} messages never got queued");
    }

    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    /// Bob's messages, all but the first taken from the library by `recv`,
    /// then `set_trust(ca, pins)`: none of the rest is handed out.
    fn revoke_after_recv(ca: &str, pins: &[PeerId]) {
        let alice = endpoint("alice");
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        for i in 0..10u8 {
            bob.send(a_addr, &TEAM_A, "l", &[i]).unwrap();
        }
        queued(&alice, 10);
        let mut buf = Vec::new();
        let ch = rt().block_on(alice.recv(&mut buf)).unwrap();
        assert_eq!((ch.peer_id, buf.as_slice()), (id("bob").0, &[0u8][..]));
        // The other nine are now inside the endpoint, not the library.
        assert_eq!(alice.stats().unwrap().queue_messages, 0);

        assert_eq!(alice.set_trust(&read(ca), pins).unwrap(), [id("bob")]);
        assert!(alice.receive(&mut [0u8; 16]).unwrap().is_none(), "no message of bob after set_trust returned");
    }

    #[test]
    fn set_trust_drops_what_recv_took_of_an_unpinned_peer() {
        revoke_after_recv("ca.pem", &[id("carol")]);
    }

    #[test]
    fn set_trust_drops_what_recv_took_of_a_peer_of_another_ca() {
        revoke_after_recv("other-ca.pem", &[]);
    }

    #[test]
    fn set_trust_keeps_what_recv_took_of_a_trusted_peer() {
        let alice = endpoint("alice");
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        for i in 0..10u8 {
            bob.send(a_addr, &TEAM_A, "l", &[i]).unwrap();
        }
        queued(&alice, 10);
        let mut buf = Vec::new();
        rt().block_on(alice.recv(&mut buf)).unwrap();
        // Bob stays pinned: nothing is revoked, nothing dropped.
        assert_eq!(alice.set_trust(&read("ca.pem"), &[id("bob"), id("carol")]).unwrap(), Vec::<PeerId>::new());
        let rest: Vec<u8> = drain(&alice).into_iter().map(|(_, m)| m[0]).collect();
        assert_eq!(rest, (1..10).collect::<Vec<u8>>());
    }

    #[test]
    fn set_trust_drops_only_the_revoked_peers_messages_recv_took() {
        let alice = endpoint("alice");
        let bob = endpoint("bob");
        let carol = endpoint("carol");
        let a_addr = alice.local_addr().unwrap();
        for i in 0..10u8 {
            bob.send(a_addr, &TEAM_A, "l", &[i]).unwrap();
            carol.send(a_addr, &TEAM_A, "l", &[i]).unwrap();
        }
        queued(&alice, 20);
        let mut buf = Vec::new();
        let first = rt().block_on(alice.recv(&mut buf)).unwrap();
        assert_eq!(alice.stats().unwrap().queue_messages, 0, "the rest are inside the endpoint");

        // Carol stays pinned: only bob is revoked, and only his go.
        assert_eq!(alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap(), [id("bob")]);
        let rest = drain(&alice);
        assert!(rest.iter().all(|(ch, _)| ch.peer_id == id("carol")), "bob's after set_trust returned: {rest:?}");
        let from_carol = rest.len() + usize::from(first.peer_id == id("carol"));
        assert_eq!(from_carol, 10, "every message of carol is kept");
    }

    #[test]
    fn set_trust_drops_what_recv_took_of_a_peer_whose_connection_is_gone() {
        // Bob's connection closed before the change: the library still
        // revokes him (it remembers the peers it admitted) and names him,
        // so what recv took of him goes too.
        let alice = endpoint("alice");
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        for i in 0..10u8 {
            bob.send(a_addr, &TEAM_A, "l", &[i]).unwrap();
        }
        queued(&alice, 10);
        let mut buf = Vec::new();
        rt().block_on(alice.recv(&mut buf)).unwrap();
        bob.close(a_addr).unwrap();
        for _ in 0..2000 {
            if alice.connections().unwrap().is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(alice.connections().unwrap().is_empty(), "bob's close never reached alice");

        assert_eq!(alice.set_trust(&read("ca.pem"), &[id("carol")]).unwrap(), [id("bob")]);
        assert!(drain(&alice).is_empty(), "no message of bob after set_trust returned");
    }

    /// Alice authorizes teams and allows bob on `allowed`; bob sends ten
    /// messages on each of `teams` and ten sync messages, and alice's
    /// `recv` takes them all from the library (handing out one).
    fn taken_from(allowed: &[GraphId], teams: &[GraphId]) -> (Endpoint, Endpoint) {
        let mut c = config("alice");
        c.team_authorization = true;
        let alice = Endpoint::new(c).unwrap();
        let bob = endpoint("bob");
        let a_addr = alice.local_addr().unwrap();
        for t in allowed {
            alice.team_allow(&id("bob"), t).unwrap();
        }
        for i in 0..10u8 {
            for t in teams {
                bob.send(a_addr, t, "l", &[i]).unwrap();
            }
            bob.send_sync(a_addr, 3, &[i]).unwrap();
        }
        queued(&alice, 10 * (teams.len() as u64 + 1));
        let mut buf = Vec::new();
        rt().block_on(alice.recv(&mut buf)).unwrap();
        (alice, bob)
    }

    #[test]
    fn team_revoke_drops_what_recv_took() {
        let (alice, _bob) = taken_from(&[TEAM_A, TEAM_B], &[TEAM_A, TEAM_B]);
        assert!(!alice.team_revoke(&id("bob"), &TEAM_A).unwrap(), "bob keeps team B");
        // Team B and the sync messages are untouched: all of them (less the
        // one recv may have handed out) still arrive, and nothing of team A.
        let rest = drain(&alice);
        assert!(rest.iter().all(|(ch, _)| ch.team_id != TEAM_A), "team A after team_revoke returned: {rest:?}");
        assert!(rest.len() >= 19, "team B's and the sync messages are kept: {}", rest.len());
        assert!(rest.iter().filter(|(ch, _)| ch.kind == ChannelKind::Sync).count() >= 9);
    }

    #[test]
    fn team_revoke_of_the_last_team_drops_sync_messages_recv_took() {
        let (alice, _bob) = taken_from(&[TEAM_A], &[TEAM_A]);
        assert!(alice.team_revoke(&id("bob"), &TEAM_A).unwrap(), "team A was bob's last");
        let rest = drain(&alice);
        assert!(rest.is_empty(), "bob is on no team any more, sync messages included: {rest:?}");
    }
}
