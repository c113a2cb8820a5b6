//! The async receive on tokio (feature `tokio`).
#![cfg(feature = "tokio")]

mod common;

use std::sync::Arc;
use std::time::Duration;

use aranya_quic::{ChannelKind, Endpoint, ErrorKind, GraphId, MessageBatch};
use common::*;

/// Waits until `ep` has `n` messages queued in the library. Bounded only to
/// turn a hang into a failure.
async fn wait_queued(ep: &Endpoint, n: u64) {
    let end = tokio::time::Instant::now() + Duration::from_secs(20);
    while ep.stats().unwrap().queue_messages < n {
        assert!(tokio::time::Instant::now() < end, "{n} messages never got queued");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

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

#[tokio::test(flavor = "current_thread")]
async fn recv_takes_a_batch_and_every_receive_returns_it_first() {
    let alice = Arc::new(endpoint("alice"));
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([2; 32]);
    let a = alice.clone();
    tokio::task::spawn_blocking(move || {
        let msgs: Vec<[u8; 1]> = (0..10u8).map(|i| [i]).collect();
        a.send_batch(b_addr, &team, "b", &msgs).unwrap();
    })
    .await
    .unwrap();
    wait_queued(&bob, 10).await;

    let mut buf = Vec::new();
    let ch = bob.recv(&mut buf).await.unwrap();
    assert_eq!((ch.label.as_str(), buf.as_slice()), ("b", &[0u8][..]));
    // One recv took the whole queue from the library in one call...
    assert_eq!(bob.stats().unwrap().queue_messages, 0);
    // ...and every kind of receive hands the rest out first, in order.
    let mut one = [0u8; 4];
    let (_, n) = bob.receive(&mut one).unwrap().expect("pending 1");
    assert_eq!(&one[..n], [1]);
    let (_, n) = bob.receive_timeout(&mut one, Some(Duration::ZERO)).unwrap().expect("pending 2");
    assert_eq!(&one[..n], [2]);
    bob.receive_vec(&mut buf, Some(Duration::ZERO)).unwrap().expect("pending 3");
    assert_eq!(buf, [3]);
    let mut batch = MessageBatch::with_capacity(3, 64);
    assert_eq!(bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap(), 3);
    assert_eq!(batch.iter().map(|m| m.data()[0]).collect::<Vec<_>>(), [4, 5, 6]);
    // Too small a buffer keeps the pending message, as the library does.
    let e = bob.receive(&mut []).unwrap_err();
    assert_eq!((e.kind(), e.needed()), (ErrorKind::BufferTooSmall, Some(1)));
    let mut batch = MessageBatch::new();
    assert_eq!(bob.recv_batch(&mut batch).await.unwrap(), 3);
    assert_eq!(batch.iter().map(|m| m.data()[0]).collect::<Vec<_>>(), [7, 8, 9]);
    assert!(batch.iter().all(|m| m.label() == "b" && m.team_id() == team));
    assert!(bob.receive(&mut one).unwrap().is_none(), "nothing extra");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recv_batch_waits_and_takes_many() {
    let alice = Arc::new(endpoint("alice"));
    let bob = Arc::new(endpoint("bob"));
    let b_addr = bob.local_addr().unwrap();
    const N: u32 = 500;
    let rx = {
        let bob = bob.clone();
        tokio::spawn(async move {
            let mut batch = MessageBatch::with_capacity(32, 1024);
            let mut got = Vec::new();
            while got.len() < N as usize {
                let n = bob.recv_batch(&mut batch).await.unwrap();
                assert!(n >= 1 && n == batch.len());
                got.extend(batch.iter().map(|m| (m.sync_type(), u32::from_be_bytes(m.data().try_into().unwrap()))));
            }
            got
        })
    };
    let a = alice.clone();
    tokio::task::spawn_blocking(move || {
        let msgs: Vec<[u8; 4]> = (0..N).map(|i| i.to_be_bytes()).collect();
        for chunk in msgs.chunks(100) {
            a.send_sync_batch(b_addr, 4, chunk).unwrap();
        }
    })
    .await
    .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(30), rx).await.expect("all messages").unwrap();
    assert_eq!(got, (0..N).map(|i| (4, i)).collect::<Vec<_>>());
}

#[tokio::test(flavor = "current_thread")]
async fn shutdown_drops_messages_recv_took_in_a_batch() {
    let alice = Arc::new(endpoint("alice"));
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let a = alice.clone();
    tokio::task::spawn_blocking(move || a.send_sync_batch(b_addr, 1, &[b"x", b"y", b"z"]).unwrap()).await.unwrap();
    wait_queued(&bob, 3).await;
    let mut buf = Vec::new();
    bob.recv(&mut buf).await.unwrap();
    assert_eq!(buf, b"x");
    bob.shutdown().unwrap();
    let e = bob.recv(&mut buf).await.expect_err("shut down");
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    assert!(bob.receive(&mut [0u8; 8]).is_err());
}
