//! Two (or three) endpoints in one process, through the safe API.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aranya_quic::{sys, ChannelKind, CongestionControl, Config, Endpoint, ErrorKind, GraphId, Label, QuicChannel, LABEL_MAX};
use common::*;

fn recv(ep: &Endpoint) -> (QuicChannel, Vec<u8>) {
    let mut buf = vec![0u8; 1 << 20];
    let (ch, n) = ep.receive_timeout(&mut buf, WAIT).expect("receive").expect("a message within the wait");
    buf.truncate(n);
    (ch, buf)
}

#[test]
fn local_addr_is_bound_port() {
    let a = endpoint("alice");
    let addr = a.local_addr().unwrap();
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    // The same value twice, and a second endpoint gets another port.
    assert_eq!(a.local_addr().unwrap(), addr);
    let b = endpoint("bob");
    assert_ne!(b.local_addr().unwrap(), addr);
}

#[test]
fn channels_carry_content_team_label_and_sender() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let team1 = GraphId([0x11; 32]);
    let mut t2 = [0u8; 32];
    t2.iter_mut().enumerate().for_each(|(i, b)| *b = i as u8);
    let team2 = GraphId(t2);

    // Nothing queued yet: receive does not block and says so.
    let mut small = [0u8; 16];
    assert!(bob.receive(&mut small).unwrap().is_none());

    let channels = [(team1, "chat"), (team1, "ctrl"), (team2, "chat"), (team2, "")];
    const N: usize = 20;
    for i in 0..N {
        for (ci, (team, label)) in channels.iter().enumerate() {
            let msg = format!("{ci}:{i}:{}", "x".repeat(i * 7));
            alice.send(b_addr, team, label, msg.as_bytes()).unwrap();
        }
    }
    // Everything arrives, in order per channel, with its channel fields.
    let mut next: HashMap<(GraphId, Label), usize> = HashMap::new();
    let mut peer = None;
    for _ in 0..N * channels.len() {
        let (ch, msg) = recv(&bob);
        assert_eq!(ch.kind, ChannelKind::Channel);
        assert_eq!(ch.addr, a_addr, "sender address is alice's listening address");
        assert_eq!(ch.sync_type, 0);
        assert_ne!(ch.peer_id, [0; 32]);
        assert_eq!(*peer.get_or_insert(ch.peer_id), ch.peer_id, "one sender, one peer id");
        let ci = channels.iter().position(|(t, l)| *t == ch.team_id && *l == ch.label).unwrap_or_else(|| panic!("unexpected channel {ch:?}"));
        let i = next.entry((ch.team_id, ch.label.clone())).or_insert(0);
        assert_eq!(String::from_utf8(msg).unwrap(), format!("{ci}:{i}:{}", "x".repeat(*i * 7)));
        *i += 1;
    }
    assert!(next.values().all(|&n| n == N));
    assert!(bob.receive(&mut small).unwrap().is_none(), "nothing extra");

    // Reply to the address the message came from, on the same channel.
    bob.send(a_addr, &team1, "chat", b"pong").unwrap();
    let (ch, msg) = recv(&alice);
    assert_eq!((ch.addr, ch.team_id, ch.label.as_str(), msg.as_slice()), (b_addr, team1, "chat", &b"pong"[..]));
    assert_ne!(ch.peer_id, peer.unwrap(), "bob's peer id differs from alice's");

    // Empty message, and a label of exactly LABEL_MAX bytes (multi-byte UTF-8).
    let long = "é".repeat(LABEL_MAX / 2) + "a";
    assert_eq!(long.len(), LABEL_MAX);
    alice.send(b_addr, &team2, &long, b"").unwrap();
    let (ch, msg) = recv(&bob);
    assert_eq!((ch.label.as_str(), msg.len()), (long.as_str(), 0));
}

#[test]
fn sync_messages_have_their_own_kind() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    alice.send_sync(b_addr, 7, b"sync-7-a").unwrap();
    alice.send_sync(b_addr, 9, b"sync-9").unwrap();
    alice.send_sync(b_addr, 7, b"sync-7-b").unwrap();
    let mut got = Vec::new();
    for _ in 0..3 {
        let (ch, msg) = recv(&bob);
        assert_eq!(ch.kind, ChannelKind::Sync);
        assert_eq!(ch.team_id, GraphId::default());
        assert_eq!(ch.label, "");
        assert_eq!(ch.addr, alice.local_addr().unwrap());
        got.push((ch.sync_type, String::from_utf8(msg).unwrap()));
    }
    let sevens: Vec<_> = got.iter().filter(|(t, _)| *t == 7).map(|(_, m)| m.as_str()).collect();
    assert_eq!(sevens, ["sync-7-a", "sync-7-b"], "order per sync type");
    assert!(got.contains(&(9, "sync-9".into())));
}

#[test]
fn buffer_too_small_reports_size_and_keeps_the_message() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([3; 32]);
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    alice.send(b_addr, &team, "big", &big).unwrap();
    alice.send(b_addr, &team, "big", b"after").unwrap();

    // Blocking receive with a small buffer: waits for the message, then
    // reports the size needed.
    let mut small = [0u8; 10];
    let e = bob.receive_timeout(&mut small, WAIT).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::BufferTooSmall, "{e}");
    assert_eq!(e.code(), sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL);
    assert_eq!(e.needed(), Some(big.len()));
    // Again, non-blocking, and with an empty buffer (size query).
    assert_eq!(bob.receive(&mut small).unwrap_err().needed(), Some(big.len()));
    assert_eq!(bob.receive(&mut []).unwrap_err().needed(), Some(big.len()));
    // The message was kept: it is still the oldest.
    let mut buf = vec![0u8; big.len()];
    let (ch, n) = bob.receive(&mut buf).unwrap().expect("still queued");
    assert_eq!((n, ch.label.as_str()), (big.len(), "big"));
    assert_eq!(buf, big);

    // receive_vec grows an empty Vec by itself.
    alice.send(b_addr, &team, "big", &big).unwrap();
    let mut v = Vec::new();
    let ch = bob.receive_vec(&mut v, WAIT).unwrap().expect("after");
    assert_eq!(v, b"after");
    assert_eq!(ch.label, "big");
    let ch = bob.receive_vec(&mut v, WAIT).unwrap().expect("big again");
    assert_eq!(v, big);
    assert_eq!(ch.team_id, team);
    // Empty queue: receive_vec with a zero timeout returns None at once.
    assert!(bob.receive_vec(&mut v, Some(Duration::ZERO)).unwrap().is_none());
    assert!(bob.receive_timeout(&mut buf, Some(Duration::from_millis(1))).unwrap().is_none());
}

#[test]
fn bad_labels_are_rejected() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([1; 32]);
    let e = alice.send(b_addr, &team, &"a".repeat(LABEL_MAX + 1), b"m").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(!e.message().is_empty(), "the library's detail message is carried");
    assert!(e.to_string().contains(e.message()));
    let _: &dyn std::error::Error = &e;

    // Not UTF-8: impossible through &str, so through the raw API.
    let addr = std::ffi::CString::new(b_addr.to_string()).unwrap();
    let label = [0xffu8, 0xfe];
    let rc = unsafe {
        sys::aranya_quic_send(alice.handle(), addr.as_ptr(), team.0.as_ptr(), label.as_ptr().cast(), label.len(), b"m".as_ptr(), 1)
    };
    assert_eq!(rc, sys::ARANYA_QUIC_ERR_INVALID_ARGUMENT);
    // Nothing was sent.
    assert!(bob.receive_timeout(&mut [0u8; 8], Some(Duration::from_millis(200))).unwrap().is_none());
}

#[test]
fn invalid_configs_are_rejected() {
    fn err(c: Config) -> aranya_quic::QuicMessageError {
        Endpoint::new(c).expect_err("config should be rejected")
    }
    // No certificates at all.
    let e = err(Config::default());
    assert_eq!(e.kind(), ErrorKind::InvalidArgument, "{e}");
    assert!(!e.message().is_empty());
    // A PEM that does not parse.
    let mut c = config("alice");
    c.cert_pem = b"-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n".to_vec();
    assert_eq!(err(c).kind(), ErrorKind::InvalidArgument);
    // Key of another certificate.
    let mut c = config("alice");
    c.key_pem = read("bob.key");
    assert_eq!(err(c).kind(), ErrorKind::InvalidArgument);
    // Queue smaller than a message.
    let mut c = config("alice");
    c.max_message_size = Some(1 << 20);
    c.max_queue_bytes = Some(1 << 10);
    assert_eq!(err(c).kind(), ErrorKind::InvalidArgument);
    // Over the size limit.
    let mut c = config("alice");
    c.max_message_size = Some(u64::from(sys::ARANYA_QUIC_MAX_MESSAGE_SIZE_LIMIT) + 1);
    assert_eq!(err(c).kind(), ErrorKind::InvalidArgument);
    // A connect timeout not shorter than the send timeout.
    let mut c = config("alice");
    c.send_timeout = aranya_quic::Limit::After(Duration::from_secs(2));
    c.connect_timeout = Some(Duration::from_secs(2));
    assert_eq!(err(c).kind(), ErrorKind::InvalidArgument);
    // Address in use.
    let taken = endpoint("bob");
    let mut c = config("alice");
    c.bind_addr = taken.local_addr().unwrap();
    let e = err(c);
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
}

#[test]
fn send_errors_too_large_tls_and_unreachable() {
    let mut c = config("alice");
    c.max_message_size = Some(1024);
    let alice = Endpoint::new(c).unwrap();
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([5; 32]);
    let e = alice.send(b_addr, &team, "l", &[0u8; 1025]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    alice.send(b_addr, &team, "l", &[0u8; 1024]).unwrap();

    // An endpoint whose certificate comes from an untrusted CA.
    let mut s = config("stranger");
    s.ca_pem = read("ca.pem");
    let stranger = Endpoint::new(s).unwrap();
    let e = stranger.send(b_addr, &team, "l", b"hi").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
    assert!(bob.stats().unwrap().handshake_failures >= 1);

    // Nobody listening there (a freed endpoint's port).
    let gone = endpoint("carol");
    let gone_addr = gone.local_addr().unwrap();
    drop(gone);
    let mut c = config("alice");
    c.handshake_timeout = Some(Duration::from_millis(500));
    c.send_timeout = aranya_quic::Limit::After(Duration::from_secs(2));
    let a2 = Endpoint::new(c).unwrap();
    let e = a2.send(gone_addr, &team, "l", b"hi").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Connection | ErrorKind::Timeout), "{e}");
}

#[test]
fn close_then_send_dials_again() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([6; 32]);
    alice.send(b_addr, &team, "c", b"one").unwrap();
    assert_eq!(alice.stats().unwrap().open_connections, 1);
    let dials = alice.stats().unwrap().dials;
    alice.close(b_addr).unwrap();
    assert_eq!(alice.stats().unwrap().open_connections, 0, "close removes the connection");
    // Closing again, or an address never used: nothing to do.
    alice.close(b_addr).unwrap();
    alice.close("127.0.0.1:9").unwrap();
    // The message sent before close was delivered (graceful close).
    assert_eq!(recv(&bob).1, b"one");
    alice.send(b_addr, &team, "c", b"two").unwrap();
    assert_eq!(alice.stats().unwrap().dials, dials + 1);
    assert_eq!(recv(&bob).1, b"two");
}

#[test]
fn stats_count_messages_and_bytes() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let s0 = alice.stats().unwrap();
    assert_eq!((s0.messages_sent, s0.open_connections, s0.dials), (0, 0, 0));
    // The shipped library drives connections with BBRv2 by default.
    assert_eq!(s0.congestion_control, "bbr2");
    let team = GraphId([7; 32]);
    let mut total = 0u64;
    for i in 0..10usize {
        let m = vec![b'z'; i * 100];
        total += m.len() as u64;
        alice.send(b_addr, &team, "s", &m).unwrap();
    }
    alice.send_sync(b_addr, 1, b"12345").unwrap();
    let sa = alice.stats().unwrap();
    assert_eq!(sa.messages_sent, 11);
    assert_eq!(sa.bytes_sent, total + 5);
    assert_eq!(sa.dials, 1);
    for _ in 0..11 {
        recv(&bob);
    }
    let sb = bob.stats().unwrap();
    assert_eq!(sb.messages_received, 11);
    assert_eq!(sb.bytes_received, total + 5);
    assert_eq!((sb.queue_messages, sb.queue_bytes), (0, 0));
    assert_eq!(sb.accepts, 1);
}

#[test]
fn shutdown_wakes_blocked_receivers_and_closes_the_endpoint() {
    let alice = endpoint("alice");
    let bob = Arc::new(endpoint("bob"));
    let b_addr = bob.local_addr().unwrap();
    let waiter = {
        let bob = bob.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 64];
            bob.receive_timeout(&mut buf, None) // waits forever
        })
    };
    // The waiter may or may not have started waiting yet: either way it
    // must return an error once the endpoint is shut down.
    bob.shutdown().unwrap();
    let r = waiter.join().unwrap();
    let e = r.expect_err("a shut-down endpoint returns an error");
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    // Every later call fails the same way.
    let e = bob.local_addr().unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    let e = bob.send(alice.local_addr().unwrap(), &GraphId([1; 32]), "x", b"y").unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    assert!(bob.receive(&mut [0u8; 4]).is_err());
    bob.shutdown().unwrap(); // twice is harmless
    // And its socket is gone: alice cannot reach it.
    let mut c = config("alice");
    c.handshake_timeout = Some(Duration::from_millis(500));
    c.send_timeout = aranya_quic::Limit::After(Duration::from_secs(2));
    let a2 = Endpoint::new(c).unwrap();
    assert!(a2.send(b_addr, &GraphId([1; 32]), "x", b"y").is_err());
}

#[test]
fn endpoints_are_shared_across_threads() {
    let alice = Arc::new(endpoint("alice"));
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let handles: Vec<_> = (0..4u8)
        .map(|t| {
            let alice = alice.clone();
            std::thread::spawn(move || {
                for i in 0..10u8 {
                    alice.send(b_addr, &GraphId([t; 32]), "mt", &[t, i]).unwrap();
                }
            })
        })
        .collect();
    handles.into_iter().for_each(|h| h.join().unwrap());
    let mut next = [0u8; 4];
    for _ in 0..40 {
        let (ch, m) = recv(&bob);
        let t = m[0];
        assert_eq!(ch.team_id, GraphId([t; 32]));
        assert_eq!(m[1], next[t as usize], "order per channel");
        next[t as usize] += 1;
    }
}

#[test]
fn pinned_peers_accept_only_the_pinned_certificate() {
    let bob = endpoint("bob");
    let carol = endpoint("carol");
    let team = GraphId([8; 32]);
    // Learn bob's fingerprint: the peer id of a message is the SHA-256 of
    // the sender's DER leaf certificate, which is what pinning takes.
    let probe = endpoint("alice");
    bob.send(probe.local_addr().unwrap(), &team, "id", b"x").unwrap();
    let bob_id = recv(&probe).0.peer_id;

    let mut c = config("alice");
    c.pinned_peers = vec![[0xEE; 32], bob_id];
    let alice = Endpoint::new(c).unwrap();
    let a_addr = alice.local_addr().unwrap();
    bob.send(a_addr, &team, "pinned", b"from bob").unwrap();
    let (ch, m) = recv(&alice);
    assert_eq!((ch.peer_id, m.as_slice()), (bob_id, &b"from bob"[..]));
    let e = carol.send(a_addr, &team, "pinned", b"from carol").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Tls, "{e}");
}

#[test]
fn version_matches() {
    assert_eq!(aranya_quic::version(), sys::ARANYA_QUIC_VERSION_STRING);
}

#[test]
fn congestion_control_is_selectable_and_reported() {
    for (cc, want) in [
        (CongestionControl::Default, "bbr2"),
        (CongestionControl::Bbr2, "bbr2"),
        (CongestionControl::Reno, "reno"),
    ] {
        let mut c = config("alice");
        c.congestion_control = cc;
        let alice = Endpoint::new(c).unwrap();
        let bob = endpoint("bob");
        let b_addr = bob.local_addr().unwrap();
        alice.send(b_addr, &GraphId([3; 32]), "cc", b"x").unwrap();
        assert_eq!(recv(&bob).1, b"x");
        // Reported after a connection exists: what the hook actually built.
        assert_eq!(alice.stats().unwrap().congestion_control, want, "{cc:?}");
    }
}

#[test]
fn connect_timeout_bounds_a_dial_to_a_silent_peer() {
    // A bare UDP socket: it never answers the handshake.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let mut c = config("alice");
    c.connect_timeout = Some(Duration::from_millis(300));
    c.handshake_timeout = Some(Duration::from_secs(8));
    let alice = Endpoint::new(c).unwrap();
    let e = alice.send(silent.local_addr().unwrap(), &GraphId([1; 32]), "x", b"y").unwrap_err();
    // The connect timeout ended the dial, not the handshake timeout or
    // the send's own: a connection failure that names it.
    assert_eq!(e.kind(), ErrorKind::Connection, "{e}");
    assert!(e.to_string().contains("connect timeout (300ms)"), "{e}");
}

#[test]
fn close_reports_unconfirmed_messages() {
    // Bob's queue holds one message and he never reads: alice's messages
    // stay unconfirmed and her drain times out.
    let mut c = config("bob");
    c.max_queue_messages = Some(1);
    c.max_message_size = Some(1024);
    c.max_queue_bytes = Some(1024);
    let bob = Endpoint::new(c).unwrap();
    let mut c = config("alice");
    c.drain_timeout = Some(Duration::from_millis(300));
    let alice = Endpoint::new(c).unwrap();
    let b_addr = bob.local_addr().unwrap();
    for _ in 0..5 {
        alice.send(b_addr, &GraphId([1; 32]), "x", &[0u8; 1000]).unwrap();
    }
    assert_eq!(alice.stats().unwrap().messages_unconfirmed, 0);
    let e = alice.close(b_addr).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unconfirmed, "{e}");
    assert_eq!(e.code(), sys::ARANYA_QUIC_ERR_UNCONFIRMED);
    assert!(!e.message().is_empty());
    let s = alice.stats().unwrap();
    assert!(s.messages_unconfirmed > 0, "{s:?}");
    assert_eq!(s.open_connections, 0, "closed all the same");
    // shutdown maps the code the same way (whether or not anything is still
    // unconfirmed at this point), and frees the endpoint either way.
    match alice.shutdown() {
        Ok(()) => {}
        Err(e) => assert_eq!(e.kind(), ErrorKind::Unconfirmed, "{e}"),
    }
    assert!(alice.local_addr().is_err());
}
