//! The async receive on tokio (feature `tokio`).
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aranya_quic::{ChannelKind, ErrorKind, GraphId};
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_waits_for_messages_on_the_fd() {
    let alice = Arc::new(endpoint("alice"));
    let bob = Arc::new(endpoint("bob"));
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let team = GraphId([0x42; 32]);

    // The receiver starts first and waits; the sender runs on a blocking
    // thread (send blocks).
    let rx = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut got = Vec::new();
            for _ in 0..30 {
                let ch = bob.recv(&mut buf).await.unwrap();
                got.push((ch, buf.clone()));
            }
            got
        })
    };
    let big: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
    {
        let alice = alice.clone();
        let big = big.clone();
        tokio::task::spawn_blocking(move || {
            for i in 0..28u32 {
                alice.send(b_addr, &team, "async", &i.to_be_bytes()).unwrap();
            }
            alice.send(b_addr, &team, "async", &big).unwrap(); // grows the Vec
            alice.send_sync(b_addr, 3, b"s").unwrap();
        })
        .await
        .unwrap();
    }
    let got = tokio::time::timeout(Duration::from_secs(30), rx).await.expect("all messages").unwrap();
    // Order holds per channel; the sync stream is independent of it.
    let (sync, chan): (Vec<_>, Vec<_>) = got.into_iter().partition(|(ch, _)| ch.kind == ChannelKind::Sync);
    assert_eq!(sync.len(), 1);
    assert_eq!((sync[0].0.sync_type, sync[0].1.as_slice()), (3, &b"s"[..]));
    assert_eq!(chan.len(), 29);
    for (i, (ch, m)) in chan.iter().take(28).enumerate() {
        assert_eq!((ch.addr, ch.team_id, ch.label.as_str()), (a_addr, team, "async"));
        assert_eq!(m.as_slice(), (i as u32).to_be_bytes());
    }
    assert_eq!(chan[28].1, big);
}

#[tokio::test(flavor = "current_thread")]
async fn recv_on_a_current_thread_runtime_and_cancel_safety() {
    let alice = Arc::new(endpoint("alice"));
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([1; 32]);
    let mut buf = Vec::new();
    // Nothing sent: a recv raced against a short sleep loses, and being
    // cancelled takes nothing.
    tokio::select! {
        r = bob.recv(&mut buf) => panic!("unexpected message {r:?}"),
        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
    }
    let a = alice.clone();
    tokio::task::spawn_blocking(move || {
        a.send(b_addr, &team, "one", b"first").unwrap();
        a.send(b_addr, &team, "one", b"second").unwrap();
    })
    .await
    .unwrap();
    let ch = tokio::time::timeout(Duration::from_secs(20), bob.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!((ch.label.as_str(), buf.as_slice()), ("one", &b"first"[..]));
    let ch = tokio::time::timeout(Duration::from_secs(20), bob.recv(&mut buf)).await.unwrap().unwrap();
    assert_eq!((ch.label.as_str(), buf.as_slice()), ("one", &b"second"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_wakes_a_pending_recv() {
    let bob = Arc::new(endpoint("bob"));
    let rx = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            bob.recv(&mut buf).await
        })
    };
    tokio::task::yield_now().await;
    bob.shutdown().unwrap();
    let r = tokio::time::timeout(Duration::from_secs(20), rx).await.expect("recv woke up").unwrap();
    let e = r.expect_err("error after shutdown");
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
}
