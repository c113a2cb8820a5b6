//! Feature `log`: a logger that answers the records of a team revocation
//! (written on the revoking thread, from inside the library call) with a
//! trust call on the very pair being revoked. Nothing hangs, and the call
//! the logger made, which came after the revocation, is the one that
//! holds afterwards.
#![cfg(feature = "log")]

mod common;

use std::cell::RefCell;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use aranya_quic::{peer_id_from_pem, ChannelKind, Endpoint, ErrorKind, GraphId, PeerId};
use common::*;

const TEAM_A: GraphId = GraphId([0xA1; 32]);

fn id(name: &str) -> PeerId {
    peer_id_from_pem(&read(&format!("{name}.crt"))).unwrap()
}

#[derive(Clone, Copy)]
enum React {
    Allow,
    Revoke,
}

thread_local! {
    static REACT: RefCell<Option<(React, Arc<Endpoint>)>> = const { RefCell::new(None) };
}

struct Reacting;

impl log::Log for Reacting {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, r: &log::Record<'_>) {
        if !r.args().to_string().contains("no longer allowed on team") {
            return;
        }
        // Once per armed thread: the reaction may log again.
        match REACT.with(|s| s.borrow_mut().take()) {
            Some((React::Allow, ep)) => ep.team_allow(&id("bob"), &TEAM_A).unwrap(),
            Some((React::Revoke, ep)) => {
                ep.team_revoke(&id("bob"), &TEAM_A).unwrap();
            }
            None => {}
        }
    }
    fn flush(&self) {}
}

static LOGGER: Reacting = Reacting;

/// Alice (authorizing) with bob allowed on team A and a stream of his
/// open on it, so that revoking the pair resets a stream and logs.
fn setup() -> (Arc<Endpoint>, Endpoint) {
    let _ = log::set_logger(&LOGGER);
    log::set_max_level(log::LevelFilter::Warn);
    let mut c = config("alice");
    c.team_authorization = true;
    let alice = Arc::new(Endpoint::new(c).unwrap());
    let bob = endpoint("bob");
    alice.team_allow(&id("bob"), &TEAM_A).unwrap();
    bob.send(alice.local_addr().unwrap(), &TEAM_A, "l", b"open").unwrap();
    let mut buf = Vec::new();
    alice.receive_vec(&mut buf, WAIT).unwrap().expect("the first message");
    (alice, bob)
}

/// Revokes bob on team A with the logger armed on the revoking thread; a
/// test failure rather than a hung binary if it deadlocks.
fn revoke_reacting(alice: &Arc<Endpoint>, react: React) {
    let (tx, rx) = mpsc::channel();
    let a = alice.clone();
    std::thread::spawn(move || {
        REACT.with(|s| *s.borrow_mut() = Some((react, a.clone())));
        let r = a.team_revoke(&id("bob"), &TEAM_A);
        let armed = REACT.with(|s| s.borrow_mut().take()).is_some();
        let _ = tx.send((r, armed));
    });
    let (r, armed) = rx.recv_timeout(Duration::from_secs(10)).expect("team_revoke with a reacting logger still running after 10 s (deadlock)");
    // The library decided before it logged, so before the logger's call:
    // team A was bob's only team then.
    assert!(r.unwrap(), "team A was bob's last team when it was revoked");
    assert!(!armed, "the revocation was never logged on the revoking thread");
}

#[test]
fn a_logger_may_allow_again_the_pair_being_revoked() {
    let (alice, bob) = setup();
    revoke_reacting(&alice, React::Allow);
    // The logger's allow came after the revocation: bob is on team A, for
    // channels and sync messages alike.
    let a_addr = alice.local_addr().unwrap();
    // A new label, so a new stream: a send on the reset one may still be
    // accepted on bob's side before the reset reaches him, and is lost.
    bob.send(a_addr, &TEAM_A, "l2", b"again").unwrap();
    bob.send_sync(a_addr, 1, b"sync").unwrap();
    // Two streams: either may arrive first.
    let mut got = Vec::new();
    for _ in 0..2 {
        let mut buf = Vec::new();
        let ch = alice.receive_vec(&mut buf, WAIT).unwrap().expect("bob's messages");
        got.push((ch.kind, buf));
    }
    got.sort_by_key(|(kind, _)| *kind == ChannelKind::Sync);
    assert_eq!(got, [(ChannelKind::Channel, b"again".to_vec()), (ChannelKind::Sync, b"sync".to_vec())]);
    // And revoking the pair again refuses him, his last team once more.
    assert!(alice.team_revoke(&id("bob"), &TEAM_A).unwrap(), "team A was allowed again, and bob's only team");
    refused_soon(&bob, a_addr);
    assert!(alice.receive_vec(&mut Vec::new(), Some(Duration::from_millis(300))).unwrap().is_none(), "nothing of bob after the revocation");
}

/// Bob's sync sends fail once the reset of his sync stream reaches him
/// (until then they are accepted on his side, and never delivered).
fn refused_soon(bob: &Endpoint, a_addr: std::net::SocketAddr) {
    for _ in 0..500 {
        match bob.send_sync(a_addr, 1, b"refused") {
            Ok(()) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                assert_eq!(e.kind(), ErrorKind::NotAuthorized, "{e}");
                return;
            }
        }
    }
    panic!("bob's sync sends are never refused");
}

#[test]
fn a_logger_may_revoke_again_the_pair_being_revoked() {
    let (alice, bob) = setup();
    revoke_reacting(&alice, React::Revoke);
    refused_soon(&bob, alice.local_addr().unwrap());
}
