//! Hostile tests of AsyncEndpoint: cancellation, concurrency, shutdown and
//! frees while futures are pending, several runtimes, event overflow.
//! Every wait is bounded so that a hang fails instead of hanging.
#![cfg(feature = "tokio")]

mod common;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aranya_quic::{AsyncEndpoint, Config, ErrorKind, Event, GraphId, Limit};
use common::*;

const TEAM: GraphId = GraphId([7; 32]);

/// Only a broken test reaches it.
const LONG: Duration = Duration::from_secs(30);

fn tiny(name: &str) -> Config {
    let mut c = config(name);
    c.max_outbound_bytes_per_peer = Some(1);
    c.connect_timeout = Some(Duration::from_secs(2));
    c.send_timeout = Limit::After(Duration::from_secs(5));
    c.drain_timeout = Some(Duration::from_secs(1));
    c
}

/// `f`, or a panic after LONG. The timer is polled first: with
/// `tokio::time::timeout` (inner future first) a future whose wake-up was
/// lost would be re-polled by the timer's wake-up, find its result, and
/// hide the hang.
async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::select! {
        biased;
        _ = tokio::time::sleep(LONG) => panic!("{what}: hung"),
        r = f => r,
    }
}

/// Receives on `bob` until `end` arrives; returns every payload seen, with
/// its count.
async fn collect_until(bob: &AsyncEndpoint, end: &[u8]) -> HashMap<Vec<u8>, usize> {
    let mut seen = HashMap::new();
    let mut msgs = bob.messages();
    bounded("receiving", async {
        loop {
            let m = msgs.next().await.expect("stream ended").unwrap();
            if m.data == end {
                break;
            }
            *seen.entry(m.data).or_insert(0) += 1;
        }
    })
    .await;
    seen
}

/// Send futures dropped at many different points: each message arrives
/// exactly once if its future completed, and never otherwise.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelled_sends_are_sent_once_or_not_at_all() {
    let alice = AsyncEndpoint::new(tiny("alice")).unwrap();
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let b = bob.local_addr().unwrap();
    let mut accepted = HashSet::new();
    let mut cancelled = 0;
    for i in 0..200u32 {
        let payload = format!("m{i}").into_bytes();
        let fut = alice.send(b, &TEAM, "k", &payload);
        // Cancel after 0..4 scheduler turns or a short sleep, or let it
        // finish.
        let turns = i % 5;
        let nap = Duration::from_micros(u64::from(i % 7) * 400);
        let r = tokio::select! {
            biased;
            r = fut => Some(r),
            _ = async {
                for _ in 0..turns { tokio::task::yield_now().await }
                if i % 2 == 1 { tokio::time::sleep(nap).await }
            } => None,
        };
        match r {
            Some(r) => {
                r.unwrap_or_else(|e| panic!("send {i}: {e}"));
                accepted.insert(payload);
            }
            None => cancelled += 1,
        }
    }
    bounded("end marker", alice.send(b, &TEAM, "k", b"end")).await.unwrap();
    let seen = collect_until(&bob, b"end").await;
    for (p, n) in &seen {
        assert_eq!(*n, 1, "{:?} arrived {n} times", String::from_utf8_lossy(p));
        assert!(accepted.contains(p), "{:?} arrived but its send was cancelled", String::from_utf8_lossy(p));
    }
    for p in &accepted {
        assert!(seen.contains_key(p), "{:?} was accepted but never arrived", String::from_utf8_lossy(p));
    }
    eprintln!("accepted {}, cancelled {cancelled}", accepted.len());
    bounded("shutdown", alice.shutdown()).await.unwrap();
}

/// Many tasks sending at once through a one-byte queue: every send
/// completes (no lost wake-up), every message arrives once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_senders_through_a_tiny_queue() {
    let alice = Arc::new(AsyncEndpoint::new(tiny("alice")).unwrap());
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let b = bob.local_addr().unwrap();
    const TASKS: usize = 24;
    const EACH: usize = 25;
    let mut tasks = Vec::new();
    for t in 0..TASKS {
        let alice = alice.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..EACH {
                let p = format!("t{t}-{i}");
                // A separate label per task: a channel each.
                alice.send(b, &TEAM, &format!("l{t}"), p.as_bytes()).await.unwrap_or_else(|e| panic!("{p}: {e}"));
            }
        }));
    }
    bounded("all senders", async {
        for t in tasks {
            t.await.unwrap();
        }
    })
    .await;
    let mut seen = HashMap::new();
    let mut msgs = bob.messages();
    bounded("receiving all", async {
        while seen.len() < TASKS * EACH {
            let m = msgs.next().await.expect("stream ended").unwrap();
            *seen.entry(m.data).or_insert(0usize) += 1;
        }
    })
    .await;
    assert!(seen.values().all(|n| *n == 1));
    bounded("shutdown", alice.shutdown()).await.unwrap();
}

/// A close future dropped after it started: the close goes on (its event
/// reaches the stream), and later closes to that peer and to others work.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_close_does_not_break_later_closes() {
    let alice = AsyncEndpoint::new(tiny("alice")).unwrap();
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let carol = AsyncEndpoint::new(config("carol")).unwrap();
    let proxy = Proxy::new(bob.local_addr().unwrap());
    let c = carol.local_addr().unwrap();
    bounded("send", alice.send(proxy.addr, &TEAM, "k", b"hi")).await.unwrap();
    bounded("recv", bob.messages().next()).await.unwrap().unwrap();
    bounded("send carol", alice.send(c, &TEAM, "k", b"hi")).await.unwrap();
    bounded("recv carol", carol.messages().next()).await.unwrap().unwrap();
    // Bob goes silent with an unconfirmed message: the close has to wait
    // for the drain timeout, so it is surely pending when dropped.
    proxy.stop_forwarding();
    alice.try_send(proxy.addr, &TEAM, "k", b"unconfirmed").unwrap();
    let mut events = alice.events();
    {
        let mut close = Box::pin(alice.close(proxy.addr));
        let r = tokio::select! { biased; r = &mut close => Some(r), _ = tokio::task::yield_now() => None };
        assert!(r.is_none(), "the close finished at once: {r:?}");
    }
    // Its outcome still reaches the event stream.
    let first = bounded("the dropped close's event", async {
        loop {
            match events.next().await.expect("stream ended").unwrap() {
                ev @ Event::CloseFinished { .. } => return ev,
                _ => {}
            }
        }
    })
    .await;
    assert!(matches!(&first, Event::CloseFinished { addr, .. } if *addr == proxy.addr.to_string()), "{first:?}");
    // Closing again (nothing left to close) and closing carol both settle.
    bounded("second close", alice.close(proxy.addr)).await.unwrap();
    bounded("carol close", alice.close(c)).await.unwrap();
    // Cancel a close at once before its first poll, then close again.
    drop(alice.close(c));
    bounded("close after unpolled drop", alice.close(c)).await.unwrap();
    bounded("shutdown", alice.shutdown()).await.unwrap_or_else(|e| assert_eq!(e.kind(), ErrorKind::Unconfirmed));
}

/// Two event streams and a `next_event` poller take events at once while
/// many close futures wait: each event is delivered once, and every
/// close settles.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn competing_event_takers_and_pending_closes() {
    let alice = Arc::new(AsyncEndpoint::new(tiny("alice")).unwrap());
    let seen: Arc<Mutex<Vec<(usize, Event)>>> = Arc::default();
    let mut takers = Vec::new();
    for who in 0..2 {
        let (alice, seen) = (alice.clone(), seen.clone());
        takers.push(tokio::spawn(async move {
            let mut ev = alice.events();
            while let Some(e) = ev.next().await {
                seen.lock().unwrap().push((who, e.unwrap()));
            }
        }));
    }
    {
        let (alice, seen) = (alice.clone(), seen.clone());
        takers.push(tokio::spawn(async move {
            loop {
                match alice.next_event() {
                    Ok(Some(e)) => {
                        let end = matches!(e, Event::ShutdownFinished { .. });
                        seen.lock().unwrap().push((2, e));
                        if end {
                            return;
                        }
                    }
                    Ok(None) => tokio::task::yield_now().await,
                    Err(_) => return,
                }
                if seen.lock().unwrap().iter().any(|(_, e)| matches!(e, Event::ShutdownFinished { .. })) {
                    return;
                }
            }
        }));
    }
    // Closes of addresses without a connection finish at once, each with
    // its event: many at the same time, from several tasks.
    let mut closes = Vec::new();
    for i in 0..40u16 {
        let alice = alice.clone();
        closes.push(tokio::spawn(async move { alice.close(format!("127.0.0.1:{}", 20000 + i).as_str()).await }));
    }
    bounded("closes", async {
        for c in closes {
            c.await.unwrap().unwrap();
        }
    })
    .await;
    bounded("shutdown", alice.shutdown()).await.unwrap();
    bounded("takers end", async {
        for t in takers {
            t.await.unwrap();
        }
    })
    .await;
    let seen = seen.lock().unwrap();
    let mut ids = HashMap::new();
    for (_, e) in seen.iter() {
        if let Event::CloseFinished { id, .. } = e {
            *ids.entry(*id).or_insert(0) += 1;
        }
    }
    assert_eq!(ids.len(), 40, "close events seen: {ids:?}");
    assert!(ids.values().all(|n| *n == 1), "an event went to two takers: {ids:?}");
    let shutdowns = seen.iter().filter(|(_, e)| matches!(e, Event::ShutdownFinished { .. })).count();
    assert_eq!(shutdowns, 1);
}

/// A close of `addr` on a task, returned once its first poll started it
/// (and it is still waiting).
async fn started_close(
    a: Arc<AsyncEndpoint>,
    addr: std::net::SocketAddr,
) -> tokio::task::JoinHandle<Result<(), aranya_quic::QuicMessageError>> {
    let (tx, rx) = std::sync::mpsc::channel();
    let h = tokio::spawn(async move {
        let mut c = Box::pin(a.close(addr));
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(c.as_mut().poll(cx))).await;
        let _ = tx.send(first.is_pending());
        match first {
            std::task::Poll::Ready(r) => r,
            std::task::Poll::Pending => c.await,
        }
    });
    let pending = bounded("close start", async {
        loop {
            match rx.try_recv() {
                Ok(p) => return p,
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
    })
    .await;
    assert!(pending, "the close finished at its first poll");
    h
}

/// A shutdown while a send waits for room, a close waits for a drain, and
/// the message and event streams wait: all of them finish.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_while_everything_is_pending() {
    let mut cfg = tiny("alice");
    // Dials to the silent peer would take long: only the shutdown can end
    // the send's wait soon.
    cfg.connect_timeout = Some(Duration::from_secs(60));
    cfg.send_timeout = Limit::After(Duration::from_secs(90));
    let alice = Arc::new(AsyncEndpoint::new(cfg).unwrap());
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let proxy = Proxy::new(bob.local_addr().unwrap());
    let (_silent, silent) = silent_peer();
    bounded("send", alice.send(proxy.addr, &TEAM, "k", b"hi")).await.unwrap();
    bounded("recv", bob.messages().next()).await.unwrap().unwrap();
    proxy.stop_forwarding();
    alice.try_send(proxy.addr, &TEAM, "k", b"unconfirmed").unwrap();
    alice.try_send(silent, &TEAM, "q", b"1").unwrap();
    assert_eq!(alice.try_send(silent, &TEAM, "q", b"2").unwrap_err().kind(), ErrorKind::WouldBlock);

    let a = alice.clone();
    let send = tokio::spawn(async move { a.send(silent, &TEAM, "q", b"2").await });
    let close = started_close(alice.clone(), proxy.addr).await;
    let a = alice.clone();
    let msgs = tokio::spawn(async move { a.messages().next().await.map(|r| r.map(|m| m.data)) });
    let a = alice.clone();
    let evs = tokio::spawn(async move {
        let mut ev = a.events();
        let mut all = Vec::new();
        while let Some(e) = ev.next().await {
            all.push(e.unwrap());
        }
        all
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let sd = bounded("shutdown", alice.shutdown()).await;
    eprintln!("shutdown: {sd:?}");
    let send = bounded("pending send", send).await.unwrap();
    eprintln!("send: {send:?}");
    if let Err(e) = &send {
        assert_eq!(e.kind(), ErrorKind::Closed, "{e}");
    }
    let close = bounded("pending close", close).await.unwrap();
    eprintln!("close: {close:?}");
    assert!(bounded("message stream", msgs).await.unwrap().is_none());
    let all = bounded("event stream", evs).await.unwrap();
    assert!(matches!(all.last(), Some(Event::ShutdownFinished { .. })), "{all:?}");
    drop(proxy);
}

/// The blocking free (`Endpoint::shutdown`) from another thread while a
/// send, a close, a receive and the event stream wait: all of them end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blocking_free_while_futures_wait() {
    let mut cfg = tiny("alice");
    cfg.connect_timeout = Some(Duration::from_secs(60));
    cfg.send_timeout = Limit::After(Duration::from_secs(90));
    let alice = Arc::new(AsyncEndpoint::new(cfg).unwrap());
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let proxy = Proxy::new(bob.local_addr().unwrap());
    let (_silent, silent) = silent_peer();
    bounded("send", alice.send(proxy.addr, &TEAM, "k", b"hi")).await.unwrap();
    bounded("recv", bob.messages().next()).await.unwrap().unwrap();
    proxy.stop_forwarding();
    alice.try_send(proxy.addr, &TEAM, "k", b"unconfirmed").unwrap();
    alice.try_send(silent, &TEAM, "q", b"1").unwrap();
    assert_eq!(alice.try_send(silent, &TEAM, "q", b"2").unwrap_err().kind(), ErrorKind::WouldBlock);

    let a = alice.clone();
    let send = tokio::spawn(async move { a.send(silent, &TEAM, "q", b"2").await });
    let close = started_close(alice.clone(), proxy.addr).await;
    let a = alice.clone();
    let recv = tokio::spawn(async move {
        let mut buf = Vec::new();
        a.recv(&mut buf).await.map(|_| buf)
    });
    let a = alice.clone();
    let msgs = tokio::spawn(async move { a.messages().next().await.map(|r| r.map(|m| m.data)) });
    let a = alice.clone();
    let evs = tokio::spawn(async move {
        let mut ev = a.events();
        let mut n = 0;
        while let Some(e) = ev.next().await {
            let _ = e;
            n += 1;
        }
        n
    });
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    let a = alice.clone();
    let freed = bounded("free", tokio::task::spawn_blocking(move || a.endpoint().shutdown())).await.unwrap();
    eprintln!("free: {freed:?}");
    let send = bounded("pending send after free", send).await.unwrap();
    eprintln!("send: {send:?}");
    assert!(send.is_err(), "a send completed after the free: {send:?}");
    let close = bounded("pending close after free", close).await.unwrap();
    eprintln!("close: {close:?}");
    assert!(close.is_err());
    let recv = bounded("pending recv after free", recv).await.unwrap();
    assert!(recv.is_err(), "{recv:?}");
    assert!(bounded("message stream after free", msgs).await.unwrap().is_none());
    bounded("event stream after free", evs).await.unwrap();
    // Calls after the free fail at once.
    assert!(bounded("send after free", alice.send(silent, &TEAM, "q", b"3")).await.is_err());
    assert!(bounded("close after free", alice.close(silent)).await.is_err());
    assert!(bounded("shutdown after free", alice.shutdown()).await.is_err());
    drop(proxy);
}

/// The endpoint's fds registered with one runtime, which is then dropped;
/// another runtime uses the endpoint: calls end (with an error is fine),
/// none hangs or panics.
#[test]
fn a_second_runtime_after_the_first_is_gone() {
    let alice = Arc::new(AsyncEndpoint::new(tiny("alice")).unwrap());
    let rt1 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt1.block_on(async {
        bounded("close on rt1", alice.close("127.0.0.1:9")).await.unwrap();
    });
    drop(rt1);
    let rt2 = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let r = rt2.block_on(async { bounded("close on rt2", alice.close("127.0.0.1:10")).await });
    eprintln!("close on a second runtime: {r:?}");
    let r = rt2.block_on(async { bounded("shutdown on rt2", alice.shutdown()).await });
    eprintln!("shutdown on a second runtime: {r:?}");
}

/// max_events 1, nobody reading the event stream, many closes pending at
/// once: every close settles with its own outcome; the stream reports the
/// overflow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_overflow_with_pending_closes() {
    let mut cfg = tiny("alice");
    cfg.max_events = Some(1);
    let alice = Arc::new(AsyncEndpoint::new(cfg).unwrap());
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let carol = AsyncEndpoint::new(config("carol")).unwrap();
    // Connections (PeerConnected events to overflow the queue).
    bounded("send bob", alice.send(bob.local_addr().unwrap(), &TEAM, "k", b"x")).await.unwrap();
    bounded("send carol", alice.send(carol.local_addr().unwrap(), &TEAM, "k", b"x")).await.unwrap();
    bounded("recv bob", bob.messages().next()).await.unwrap().unwrap();
    bounded("recv carol", carol.messages().next()).await.unwrap().unwrap();
    let mut closes = Vec::new();
    for i in 0..20u16 {
        let a = alice.clone();
        closes.push(tokio::spawn(async move { a.close(format!("127.0.0.1:{}", 23000 + i).as_str()).await }));
    }
    let (b, c) = (bob.local_addr().unwrap(), carol.local_addr().unwrap());
    let a = alice.clone();
    closes.push(tokio::spawn(async move { a.close(b).await }));
    let a = alice.clone();
    closes.push(tokio::spawn(async move { a.close(c).await }));
    bounded("closes", async {
        for c in closes {
            c.await.unwrap().unwrap();
        }
    })
    .await;
    bounded("shutdown", alice.shutdown()).await.unwrap();
    let mut ev = alice.events();
    let mut all = Vec::new();
    bounded("events", async {
        while let Some(e) = ev.next().await {
            all.push(e.unwrap());
        }
    })
    .await;
    eprintln!("{all:?}");
    assert!(all.iter().any(|e| matches!(e, Event::Dropped { .. })), "no overflow reported: {all:?}");
    // The library keeps CLOSE_FINISHED / SHUTDOWN_FINISHED beyond
    // max_events, and the Python binding keeps them in its own queue too;
    // the event stream's doc says it ends after ShutdownFinished.
    assert!(
        all.iter().any(|e| matches!(e, Event::ShutdownFinished { .. })),
        "the stream ended without ShutdownFinished (dropped by the hub's bound): {all:?}"
    );
}

/// Shutdown futures polled from several tasks, some dropped midway: the
/// rest all see the same outcome.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_futures_dropped_and_shared() {
    let alice = Arc::new(AsyncEndpoint::new(tiny("alice")).unwrap());
    let bob = AsyncEndpoint::new(config("bob")).unwrap();
    let proxy = Proxy::new(bob.local_addr().unwrap());
    bounded("send", alice.send(proxy.addr, &TEAM, "k", b"hi")).await.unwrap();
    bounded("recv", bob.messages().next()).await.unwrap().unwrap();
    proxy.stop_forwarding();
    alice.try_send(proxy.addr, &TEAM, "k", b"unconfirmed").unwrap();
    {
        let mut s = Box::pin(alice.shutdown());
        let r = tokio::select! { biased; r = &mut s => Some(r), _ = tokio::task::yield_now() => None };
        assert!(r.is_none(), "{r:?}");
    }
    let mut ts = Vec::new();
    for _ in 0..6 {
        let a = alice.clone();
        ts.push(tokio::spawn(async move { a.shutdown().await.map_err(|e| e.kind()) }));
    }
    let mut outs = Vec::new();
    for t in ts {
        outs.push(bounded("shutdown", t).await.unwrap());
    }
    assert!(outs.windows(2).all(|w| w[0] == w[1]), "{outs:?}");
    assert_eq!(outs[0], Err(ErrorKind::Unconfirmed));
    // A send after it fails at once.
    assert_eq!(bounded("send", alice.send(proxy.addr, &TEAM, "k", b"x")).await.unwrap_err().kind(), ErrorKind::Closed);
}
