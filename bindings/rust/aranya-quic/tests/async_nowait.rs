//! AsyncEndpoint (feature `tokio`): futures and streams over the
//! non-blocking calls and the fds; never a blocked runtime thread.
#![cfg(feature = "tokio")]

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aranya_quic::{AsyncEndpoint, ChannelKind, Config, ErrorKind, Event, Events, GraphId, Limit};
use common::*;

const TEAM: GraphId = GraphId([9; 32]);

/// Generous bound that only a broken test reaches.
const LONG: Duration = Duration::from_secs(30);

/// Dials to a silent peer give up after 1 s; the per-peer queue of the
/// non-blocking sends holds one message.
fn quick(name: &str) -> Config {
    let mut c = config(name);
    c.max_outbound_bytes_per_peer = Some(1);
    c.connect_timeout = Some(Duration::from_secs(1));
    c.send_timeout = Limit::After(Duration::from_secs(3));
    c.drain_timeout = Some(Duration::from_secs(2));
    c
}

/// The next event of `events` that `want` matches, keeping the others in
/// `seen` (and looking there first).
async fn wait_for(events: &mut Events<'_>, seen: &mut Vec<Event>, want: impl Fn(&Event) -> bool) -> Event {
    if let Some(i) = seen.iter().position(&want) {
        return seen.remove(i);
    }
    tokio::time::timeout(LONG, async {
        loop {
            let ev = events.next().await.expect("the event stream ended").unwrap();
            if want(&ev) {
                return ev;
            }
            seen.push(ev);
        }
    })
    .await
    .unwrap_or_else(|_| panic!("event never came; saw {seen:#?}"))
}

/// THE test of the async API: on a current-thread runtime, a send waiting
/// for room in a full queue (to a peer that never answers) and a close
/// waiting for a silent peer's drain are pending at the same time, and
/// another task on that one thread keeps running all along; then both
/// complete with the right outcome.
#[tokio::test(flavor = "current_thread")]
async fn pending_send_and_close_never_block_the_runtime() {
    let alice = AsyncEndpoint::new(quick("alice")).unwrap();
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let proxy = Proxy::new(bob.local_addr().unwrap());
    let (_silent, silent) = silent_peer();
    let mut events = alice.events();
    let mut seen = Vec::new();

    // Connected to bob through the proxy, with a message delivered.
    alice.send(proxy.addr, &TEAM, "k", b"hello").await.unwrap();
    let m = tokio::time::timeout(LONG, bob.messages().next()).await.unwrap().unwrap().unwrap();
    assert_eq!(m.data, b"hello");
    wait_for(&mut events, &mut seen, |e| matches!(e, Event::PeerConnected { addr, .. } if *addr == proxy.addr)).await;
    // Bob goes silent; a message sent now is never confirmed, so closing
    // the connection has to wait for the drain timeout.
    proxy.stop_forwarding();
    alice.try_send(proxy.addr, &TEAM, "k", b"never confirmed").unwrap();
    // The silent peer's queue takes one message, then refuses.
    let first = alice.try_send(silent, &TEAM, "q", b"1").unwrap();
    assert_eq!(alice.try_send(silent, &TEAM, "q", b"2").unwrap_err().kind(), ErrorKind::WouldBlock);

    let stop = Arc::new(AtomicBool::new(false));
    let send_done = Arc::new(AtomicBool::new(false));
    let close_done = Arc::new(AtomicBool::new(false));
    let both_pending = Arc::new(AtomicU64::new(0));
    let counter = {
        let (stop, send_done, close_done, both_pending) = (stop.clone(), send_done.clone(), close_done.clone(), both_pending.clone());
        tokio::spawn(async move {
            let mut iterations = 0u64;
            while !stop.load(Ordering::SeqCst) {
                iterations += 1;
                if !send_done.load(Ordering::SeqCst) && !close_done.load(Ordering::SeqCst) {
                    both_pending.fetch_add(1, Ordering::SeqCst);
                }
                if iterations % 2 == 0 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            iterations
        })
    };
    let (sent, closed) = tokio::time::timeout(LONG, async {
        tokio::join!(
            async {
                let r = alice.send(silent, &TEAM, "q", b"2").await;
                send_done.store(true, Ordering::SeqCst);
                r
            },
            async {
                let r = alice.close(proxy.addr).await;
                close_done.store(true, Ordering::SeqCst);
                r
            },
        )
    })
    .await
    .expect("the send and the close completed");
    stop.store(true, Ordering::SeqCst);
    let iterations = counter.await.unwrap();
    let both_pending = both_pending.load(Ordering::SeqCst);
    // The other task ran all the while both futures were pending: a send
    // or close blocking the thread would have stopped it for the whole
    // wait (the dial timeout, the drain timeout).
    assert!(both_pending >= 20, "the counter advanced only {both_pending} times while both were pending ({iterations} in all)");

    // The send was accepted once the first message gave up and the queue
    // had room again...
    let second = sent.unwrap();
    assert!(second > first);
    // ...and the close gave up on the message the silent peer never
    // confirmed (and on "hello" too when its receipt had not come back
    // before the proxy stopped).
    let e = closed.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Unconfirmed, "{e}");
    let unconfirmed = e.unconfirmed().unwrap();
    assert!((1..=2).contains(&unconfirmed), "{e}");

    // Both queued messages to the silent peer failed, each with its id; the
    // close's event reached the stream as well.
    for id in [first, second] {
        match wait_for(&mut events, &mut seen, |e| matches!(e, Event::SendFailed { id: i, .. } if *i == id)).await {
            Event::SendFailed { addr, error, .. } => {
                assert_eq!(addr, silent.to_string());
                assert!(matches!(error.kind(), ErrorKind::Connection | ErrorKind::Timeout), "{error}");
            }
            _ => unreachable!(),
        }
    }
    let fin = wait_for(&mut events, &mut seen, |e| matches!(e, Event::CloseFinished { .. })).await;
    assert!(matches!(&fin, Event::CloseFinished { result: Err(e), unconfirmed: n, .. } if e.kind() == ErrorKind::Unconfirmed && *n == unconfirmed), "{fin:?}");

    tokio::time::timeout(LONG, alice.shutdown()).await.unwrap().unwrap();
    let fin = wait_for(&mut events, &mut seen, |e| matches!(e, Event::ShutdownFinished { .. })).await;
    assert!(matches!(fin, Event::ShutdownFinished { result: Ok(()), .. }), "{fin:?}");
    assert!(events.next().await.is_none(), "the event stream ends after the shutdown");
}

#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_send_sent_nothing() {
    let alice = AsyncEndpoint::new(quick("alice")).unwrap();
    let (_silent, silent) = silent_peer();
    let first = alice.try_send(silent, &TEAM, "c", b"1").unwrap();
    // The queue is full: the send waits, and is dropped while waiting.
    tokio::select! {
        r = alice.send(silent, &TEAM, "c", b"cancelled") => panic!("accepted into a full queue: {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(100)) => {}
    }
    let s = alice.stats().unwrap();
    assert_eq!((s.outbound_messages, s.outbound_bytes), (1, 1), "only the first message is queued");
    // Sent again, it is accepted once there is room, under a new id.
    let again = tokio::time::timeout(LONG, alice.send_sync(silent, 4, b"again")).await.unwrap().unwrap();
    assert!(again > first);
    let mut events = alice.events();
    let mut seen = Vec::new();
    for id in [first, again] {
        wait_for(&mut events, &mut seen, |e| matches!(e, Event::SendFailed { id: i, .. } if *i == id)).await;
    }
    // Exactly two messages were ever accepted, and both failed.
    assert_eq!(alice.stats().unwrap().sends_failed, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_of_messages_and_events_and_a_graceful_close() {
    let alice = Arc::new(AsyncEndpoint::new(config("alice")).unwrap());
    let bob = Arc::new(AsyncEndpoint::new(config("bob")).unwrap());
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());

    // Bob's receive loop: a task over the message stream, ending when bob
    // shuts down.
    let rx = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let mut got = Vec::new();
            let mut messages = bob.messages();
            while let Some(m) = messages.next().await {
                let m = m.unwrap();
                assert_eq!(m.channel.addr, a_addr);
                got.push((m.channel.kind, m.data));
            }
            got
        })
    };
    let mut events = alice.events();
    let mut seen = Vec::new();
    for i in 0..20u8 {
        alice.send(b_addr, &TEAM, "s", &[i]).await.unwrap();
    }
    alice.send_sync(b_addr, 5, b"sync").await.unwrap();
    let up = wait_for(&mut events, &mut seen, |e| matches!(e, Event::PeerConnected { .. })).await;
    assert!(matches!(up, Event::PeerConnected { addr, .. } if addr == b_addr), "{up:?}");

    // The close waits for bob's confirmation of all 21 messages.
    tokio::time::timeout(LONG, alice.close(b_addr)).await.unwrap().unwrap();
    let fin = wait_for(&mut events, &mut seen, |e| matches!(e, Event::CloseFinished { .. })).await;
    assert!(matches!(&fin, Event::CloseFinished { result: Ok(()), unconfirmed: 0, addr, .. } if *addr == b_addr.to_string()), "{fin:?}");
    let down = wait_for(&mut events, &mut seen, |e| matches!(e, Event::PeerDisconnected { .. })).await;
    assert!(matches!(&down, Event::PeerDisconnected { addr, error: None, .. } if *addr == b_addr), "{down:?}");

    // Bob's shutdown ends its message stream once everything was taken.
    tokio::time::timeout(LONG, bob.shutdown()).await.unwrap().unwrap();
    let got = tokio::time::timeout(LONG, rx).await.expect("the message stream ended").unwrap();
    let (chan, sync): (Vec<_>, Vec<_>) = got.into_iter().partition(|(k, _)| *k == ChannelKind::Channel);
    assert_eq!(chan.into_iter().map(|(_, d)| d).collect::<Vec<_>>(), (0..20u8).map(|i| vec![i]).collect::<Vec<_>>());
    assert_eq!(sync, [(ChannelKind::Sync, b"sync".to_vec())]);
    // After its shutdown bob refuses to send, and shutting down again
    // returns the same outcome.
    let e = bob.send(a_addr, &TEAM, "s", b"late").await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    bob.shutdown().await.unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn close_and_shutdown_futures_complete_whoever_takes_their_events() {
    let alice = AsyncEndpoint::new(config("alice")).unwrap();
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let b_addr = bob.local_addr().unwrap();
    alice.send(b_addr, &TEAM, "x", b"m").await.unwrap();
    // Another task drains events with the blocking-style next_event while
    // the close future waits: the future still completes.
    let alice = Arc::new(alice);
    let taker = {
        let alice = alice.clone();
        tokio::spawn(async move {
            let mut taken = Vec::new();
            while !taken.iter().any(|e| matches!(e, Event::ShutdownFinished { .. })) {
                while let Some(ev) = alice.next_event().unwrap() {
                    taken.push(ev);
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            taken
        })
    };
    tokio::time::timeout(LONG, alice.close(b_addr)).await.unwrap().unwrap();
    tokio::time::timeout(LONG, alice.shutdown()).await.unwrap().unwrap();
    let taken = tokio::time::timeout(LONG, taker).await.unwrap().unwrap();
    assert!(taken.iter().any(|e| matches!(e, Event::CloseFinished { result: Ok(()), .. })), "{taken:#?}");
    // Every event went to one taker: the stream finds none left and ends.
    assert!(alice.events().next().await.is_none());
}

#[tokio::test(flavor = "current_thread")]
async fn host_names_work_for_async_sends() {
    let alice = AsyncEndpoint::new(config("alice")).unwrap();
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let a_addr = alice.local_addr().unwrap();
    let port = bob.local_addr().unwrap().port();
    alice.send(format!("localhost:{port}"), &TEAM, "dns", b"by name").await.unwrap();
    let m = tokio::time::timeout(LONG, bob.messages().next()).await.unwrap().unwrap().unwrap();
    assert_eq!(m.data, b"by name");
    let ip: SocketAddr = m.channel.addr;
    assert_eq!(ip, a_addr, "the channel carries the sender's IP address");
    // Closing by name closes the connection the name resolved to.
    tokio::time::timeout(LONG, alice.close(("localhost", port))).await.unwrap().unwrap();
    assert_eq!(alice.stats().unwrap().open_connections, 0);
}

#[tokio::test(flavor = "current_thread")]
async fn dropping_an_async_endpoint_mid_shutdown_returns() {
    // Dropping never waits for the drain: the runtime goes on. (What is
    // checked is that it returns and the task below still runs after it.)
    let alice = AsyncEndpoint::new(quick("alice")).unwrap();
    let (_silent, silent) = silent_peer();
    alice.try_send(silent, &TEAM, "d", b"x").unwrap();
    alice.shutdown_nowait().unwrap();
    drop(alice);
    let ran = tokio::spawn(async { 1 }).await.unwrap();
    assert_eq!(ran, 1);
}
