//! The non-blocking calls and events (C API 0.2) from blocking code: ids,
//! WouldBlock and the send fd, events and the event fd, host names.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use aranya_quic::{ChannelKind, Endpoint, ErrorKind, Event, GraphId, Limit};
use common::*;

const TEAM: GraphId = GraphId([7; 32]);

/// The first event `want` matches: from `seen` (events taken earlier and
/// not matched yet), else taken from `ep` (waiting on the event fd), the
/// others kept in `seen`. Bounded only to turn a hang into a failure.
fn wait_event(ep: &Endpoint, seen: &mut Vec<Event>, want: impl Fn(&Event) -> bool) -> Event {
    if let Some(i) = seen.iter().position(&want) {
        return seen.remove(i);
    }
    for _ in 0..400 {
        while let Some(ev) = ep.next_event().unwrap() {
            if want(&ev) {
                return ev;
            }
            seen.push(ev);
        }
        readable(ep.event_fd().unwrap(), 50);
    }
    panic!("event never came; saw {seen:#?}");
}

fn recv(ep: &Endpoint) -> (aranya_quic::QuicChannel, Vec<u8>) {
    let mut buf = Vec::new();
    let ch = ep.receive_vec(&mut buf, WAIT).unwrap().expect("a message");
    (ch, buf)
}

/// An endpoint whose non-blocking queue per peer holds one message, with
/// dials that give up quickly.
fn small_queue(name: &str) -> Endpoint {
    let mut c = config(name);
    c.max_outbound_bytes_per_peer = Some(1);
    c.connect_timeout = Some(Duration::from_millis(500));
    c.send_timeout = Limit::After(Duration::from_secs(2));
    Endpoint::new(c).unwrap()
}

#[test]
fn try_sends_return_increasing_ids_and_deliver_in_order() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let id1 = alice.try_send(b_addr, &TEAM, "nb", b"one").unwrap();
    let id2 = alice.try_send(b_addr, &TEAM, "nb", b"two").unwrap();
    assert!(id1 >= 1 && id2 > id1, "{id1} {id2}");
    let ids = alice.try_send_batch(b_addr, &TEAM, "nb", &[b"three", b"four!"]).unwrap();
    assert_eq!((ids.start > id2, ids.end - ids.start), (true, 2));
    let sid = alice.try_send_sync(b_addr, 9, b"sync").unwrap();
    let sids = alice.try_send_sync_batch(b_addr, 9, &[b"s2"]).unwrap();
    assert!(sid >= ids.end && sids.start > sid && sids.end == sids.start + 1);
    assert_eq!(alice.try_send_batch::<&[u8]>(b_addr, &TEAM, "nb", &[]).unwrap(), 0..0);

    let mut chan = Vec::new();
    let mut sync = Vec::new();
    for _ in 0..6 {
        let (ch, m) = recv(&bob);
        assert_eq!(ch.addr, a_addr);
        match ch.kind {
            ChannelKind::Channel => chan.push(m),
            _ => sync.push((ch.sync_type, m)),
        }
    }
    assert_eq!(chan, [&b"one"[..], b"two", b"three", b"four!"]);
    assert_eq!(sync, [(9, b"sync".to_vec()), (9, b"s2".to_vec())]);
    // Nothing failed, so no SendFailed event.
    let mut seen = Vec::new();
    while let Some(ev) = alice.next_event().unwrap() {
        seen.push(ev);
    }
    assert!(!seen.iter().any(|e| matches!(e, Event::SendFailed { .. })), "{seen:#?}");
    assert_eq!(alice.stats().unwrap().sends_failed, 0);
}

#[test]
fn a_full_peer_queue_refuses_with_would_block_until_the_send_fd_turns_readable() {
    let alice = small_queue("alice");
    let (_silent, silent) = silent_peer();
    let id1 = alice.try_send(silent, &TEAM, "q", b"first").unwrap();
    let e = alice.try_send(silent, &TEAM, "q", b"second").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
    let e = alice.try_send_sync(silent, 1, b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock, "{e}");
    // A batch is refused at its first message: nothing of it accepted.
    let e = alice.try_send_batch(silent, &TEAM, "q", &[b"a", b"b"]).unwrap_err();
    assert_eq!((e.kind(), e.sent(), e.first_id()), (ErrorKind::WouldBlock, Some(0), None));
    let s = alice.stats().unwrap();
    assert_eq!((s.outbound_messages, s.outbound_bytes), (1, 5));
    // The fd is not readable while the send is refused...
    assert!(!readable(alice.send_fd().unwrap(), 0));
    // ...and turns readable once the queue drained (the dial gave up on
    // the first message).
    assert!(readable(alice.send_fd().unwrap(), 20_000), "send fd never readable");
    let id2 = alice.try_send(silent, &TEAM, "q", b"second").unwrap();
    assert!(id2 > id1);

    // Both messages fail in the background, each reported by its id.
    let mut seen = Vec::new();
    for id in [id1, id2] {
        match wait_event(&alice, &mut seen, |e| matches!(e, Event::SendFailed { id: i, .. } if *i == id)) {
            Event::SendFailed { addr, channel, error, .. } => {
                assert_eq!(addr, silent.to_string());
                assert_eq!((channel.kind, channel.team_id, channel.label.as_str()), (ChannelKind::Channel, TEAM, "q"));
                assert!(matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout), "{error}");
            }
            _ => unreachable!(),
        }
    }
    assert_eq!(alice.stats().unwrap().sends_failed, 2);
}

#[test]
fn a_batch_partly_accepted_reports_how_many_and_their_first_id() {
    let mut c = config("alice");
    c.max_outbound_bytes_per_peer = Some(4);
    c.connect_timeout = Some(Duration::from_millis(500));
    c.send_timeout = Limit::After(Duration::from_secs(2));
    let alice = Endpoint::new(c).unwrap();
    let (_silent, silent) = silent_peer();
    // 3 + 3 bytes: the first fits the empty queue, the second would pass
    // the 4-byte bound.
    let e = alice.try_send_sync_batch(silent, 2, &[b"abc", b"def", b"ghi"]).unwrap_err();
    assert_eq!((e.kind(), e.sent()), (ErrorKind::WouldBlock, Some(1)), "{e}");
    let first = e.first_id().expect("an id for the accepted message");
    let mut seen = Vec::new();
    match wait_event(&alice, &mut seen, |e| matches!(e, Event::SendFailed { .. })) {
        Event::SendFailed { id, channel, .. } => {
            assert_eq!(id, first);
            assert_eq!((channel.kind, channel.sync_type), (ChannelKind::Sync, 2));
        }
        _ => unreachable!(),
    }
}

#[test]
fn events_report_connections_closes_and_the_shutdown() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    assert_eq!(alice.next_event().unwrap(), None, "nothing happened yet");
    alice.try_send(b_addr, &TEAM, "ev", b"hello").unwrap();
    assert_eq!(recv(&bob).1, b"hello");

    let mut seen = Vec::new();
    let up = wait_event(&alice, &mut seen, |e| matches!(e, Event::PeerConnected { .. }));
    assert!(matches!(up, Event::PeerConnected { addr, .. } if addr == b_addr), "{up:?}");
    let up = wait_event(&bob, &mut Vec::new(), |e| matches!(e, Event::PeerConnected { .. }));
    assert!(matches!(up, Event::PeerConnected { addr, .. } if addr == a_addr), "{up:?}");

    let close_id = alice.close_nowait(b_addr).unwrap();
    let done = wait_event(&alice, &mut seen, |e| matches!(e, Event::CloseFinished { .. }));
    assert_eq!(done, Event::CloseFinished { id: close_id, addr: b_addr.to_string(), result: Ok(()), unconfirmed: 0 });
    let down = wait_event(&alice, &mut seen, |e| matches!(e, Event::PeerDisconnected { .. }));
    match down {
        Event::PeerDisconnected { addr, error, unconfirmed, .. } => {
            assert_eq!((addr, unconfirmed), (b_addr, 0));
            assert!(error.is_none(), "a graceful close: {error:?}");
        }
        _ => unreachable!(),
    }
    // A close of an address without a connection finishes too.
    let id = alice.close_nowait("127.0.0.1:9").unwrap();
    let done = wait_event(&alice, &mut seen, |e| matches!(e, Event::CloseFinished { .. }));
    assert!(matches!(done, Event::CloseFinished { id: i, result: Ok(()), .. } if i == id), "{done:?}");

    let sid = alice.shutdown_nowait().unwrap();
    assert_eq!(alice.shutdown_nowait().unwrap(), sid, "the same shutdown");
    let e = alice.try_send(b_addr, &TEAM, "ev", b"late").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    let done = wait_event(&alice, &mut seen, |e| matches!(e, Event::ShutdownFinished { .. }));
    assert_eq!(done, Event::ShutdownFinished { id: sid, result: Ok(()), unconfirmed: 0 });
    // The handle stays valid after the shutdown; dropping it now is quick.
    alice.stats().unwrap();
    assert_eq!(alice.next_event().unwrap(), None);
}

#[test]
fn host_names_resolve_and_received_channels_carry_ip_addresses() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_port) = (alice.local_addr().unwrap(), bob.local_addr().unwrap().port());
    let name = format!("localhost:{b_port}");
    alice.send(name.as_str(), &TEAM, "dns", b"blocking").unwrap();
    let id = alice.try_send(&name, &TEAM, "dns", b"nowait").unwrap();
    alice.send_sync(("localhost", b_port), 3, b"tuple").unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let (ch, m) = recv(&bob);
        // The sender's address is its IP, never the name it was dialed by.
        assert_eq!(ch.addr, a_addr);
        got.push(m);
    }
    got.sort();
    assert_eq!(got, [&b"blocking"[..], b"nowait", b"tuple"]);
    assert!(id >= 1);
    // One connection: the name and the address are the same peer.
    assert_eq!(alice.stats().unwrap().dials, 1);
}

#[test]
fn a_name_that_does_not_resolve_is_a_resolve_error() {
    let mut c = config("alice");
    c.resolve_timeout = Some(Duration::from_secs(2));
    c.send_timeout = Limit::After(Duration::from_secs(4));
    c.connect_timeout = Some(Duration::from_secs(1));
    let alice = Endpoint::new(c).unwrap();
    // ".invalid" never resolves (RFC 6761).
    let e = alice.send("no-such-host.invalid:4433", &TEAM, "dns", b"x").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Resolve, "{e}");
    let id = alice.try_send("no-such-host.invalid:4433", &TEAM, "dns", b"x").unwrap();
    let mut seen = Vec::new();
    match wait_event(&alice, &mut seen, |e| matches!(e, Event::SendFailed { .. })) {
        Event::SendFailed { id: i, addr, error, channel } => {
            assert_eq!((i, addr.as_str()), (id, "no-such-host.invalid:4433"));
            assert_eq!(error.kind(), ErrorKind::Resolve, "{error}");
            assert_eq!(channel.resolved, None);
        }
        _ => unreachable!(),
    }
    // Too long for a peer address: refused before the library sees it.
    let long = format!("{}:1", "a".repeat(300));
    assert_eq!(alice.try_send(long.as_str(), &TEAM, "x", b"").unwrap_err().kind(), ErrorKind::BadAddress);
}

#[test]
fn drop_after_a_started_shutdown_and_blocking_shutdown_after_nowait_calls() {
    // An endpoint dropped with its shutdown still draining (a message to a
    // peer that never answers) does not wait for it: nothing to assert but
    // that it returns and the process goes on.
    let alice = small_queue("alice");
    let (_silent, silent) = silent_peer();
    alice.try_send(silent, &TEAM, "d", b"x").unwrap();
    alice.shutdown_nowait().unwrap();
    drop(alice);

    // The blocking shutdown still frees at once from &self, and the event
    // API then reports the handle gone.
    let bob = endpoint("bob");
    bob.shutdown().unwrap();
    let e = bob.next_event().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::InvalidHandle | ErrorKind::Closed), "{e}");
    let a: SocketAddr = "127.0.0.1:9".parse().unwrap();
    assert!(bob.try_send(a, &TEAM, "d", b"x").is_err());
}

#[test]
fn a_refused_handshake_is_an_event_and_fails_the_send() {
    let alice = endpoint("alice");
    // The stranger's certificate comes from a CA alice does not trust.
    let stranger = endpoint("stranger");
    let s_addr = stranger.local_addr().unwrap();
    let id = alice.try_send(s_addr, &TEAM, "t", b"x").unwrap();
    let mut seen = Vec::new();
    match wait_event(&alice, &mut seen, |e| matches!(e, Event::HandshakeRejected { .. })) {
        Event::HandshakeRejected { addr, reason } => {
            assert_eq!(addr, s_addr);
            assert!(!reason.is_empty());
        }
        _ => unreachable!(),
    }
    match wait_event(&alice, &mut seen, |e| matches!(e, Event::SendFailed { .. })) {
        Event::SendFailed { id: i, error, .. } => {
            assert_eq!(i, id);
            assert_eq!(error.kind(), ErrorKind::Tls, "{error}");
        }
        _ => unreachable!(),
    }
}

#[test]
fn events_dropped_for_lack_of_room_are_reported_in_order() {
    let mut c = config("alice");
    c.max_events = Some(2);
    c.connect_timeout = Some(Duration::from_millis(200));
    let alice = Endpoint::new(c).unwrap();
    // Four queued messages to a peer that never answers fail: one
    // SendFailed event each; nobody takes them, so the third and fourth
    // are dropped.
    let (_silent, hole) = common::silent_peer();
    let ids: Vec<u64> = (0..4).map(|_| alice.try_send(hole, &TEAM, "lost", b"m").unwrap()).collect();
    for _ in 0..400 {
        if alice.stats().unwrap().events_dropped == 2 {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(alice.stats().unwrap().events_dropped, 2);
    let failed = |ev: Option<Event>| match ev {
        Some(Event::SendFailed { id, .. }) => id,
        other => panic!("{other:?}"),
    };
    assert_eq!(failed(alice.next_event().unwrap()), ids[0]);
    assert_eq!(failed(alice.next_event().unwrap()), ids[1]);
    // The next event kept says, first, how many were lost before it; the
    // outcome of a close is kept even when the queue is full.
    let last = alice.close_nowait("127.0.0.1:9").unwrap();
    let mut seen = Vec::new();
    let gap = wait_event(&alice, &mut seen, |_| true);
    assert_eq!(gap, Event::Dropped { count: 2 });
    match alice.next_event().unwrap() {
        Some(Event::CloseFinished { id, .. }) => assert_eq!(id, last),
        other => panic!("{other:?}"),
    }
}
