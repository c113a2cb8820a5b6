//! Batch sends and receives (`aranya_quic_send_batch`,
//! `aranya_quic_send_sync_batch`, `aranya_quic_receive_batch`) through the
//! safe API.

mod common;

use std::time::{Duration, Instant};

use aranya_quic::{ChannelKind, Endpoint, ErrorKind, GraphId, MessageBatch};
use common::*;

/// Kind, label, sync type and payload of a received message.
type Got = (ChannelKind, String, u32, Vec<u8>);

/// Receives batches until `n` messages arrived: each one, in order, and the
/// size of every batch.
fn collect(ep: &Endpoint, batch: &mut MessageBatch, n: usize) -> (Vec<Got>, Vec<usize>) {
    let mut got = Vec::new();
    let mut sizes = Vec::new();
    while got.len() < n {
        let k = ep.receive_batch(batch, WAIT).expect("receive_batch");
        assert!(k > 0, "no message within the wait ({} of {n})", got.len());
        assert_eq!(k, batch.len());
        sizes.push(k);
        for m in batch.iter() {
            got.push((m.kind(), m.label().into_owned(), m.sync_type(), m.data().to_vec()));
        }
    }
    (got, sizes)
}

/// Waits until `ep` has `n` messages queued, so that a test can rely on
/// what one batch takes. Bounded only to turn a hang into a failure.
fn wait_queued(ep: &Endpoint, n: u64) {
    let end = Instant::now() + Duration::from_secs(20);
    while ep.stats().unwrap().queue_messages < n {
        assert!(Instant::now() < end, "{n} messages never got queued");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn send_batch_then_receive_batch_in_order() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let (a_addr, b_addr) = (alice.local_addr().unwrap(), bob.local_addr().unwrap());
    let team = GraphId([0x21; 32]);
    // More than one chunk of the binding's send descriptors, sizes from 0
    // (the empty message) up.
    let msgs: Vec<Vec<u8>> = (0..150u32).map(|i| vec![i as u8; (i as usize * 37) % 700]).collect();
    alice.send_batch(b_addr, &team, "batch", &msgs).unwrap();
    alice.send_batch(b_addr, &team, "batch", &[b"last"]).unwrap();

    let mut batch = MessageBatch::with_capacity(16, 4096);
    let (got, sizes) = collect(&bob, &mut batch, msgs.len() + 1);
    assert_eq!(got.len(), msgs.len() + 1, "nothing extra");
    for (i, (kind, label, sync_type, data)) in got.iter().enumerate() {
        assert_eq!((*kind, label.as_str(), *sync_type), (ChannelKind::Channel, "batch", 0));
        let want: &[u8] = if i < msgs.len() { &msgs[i] } else { b"last" };
        assert_eq!(data.as_slice(), want, "message {i}");
    }
    assert!(sizes.iter().all(|&k| k <= 16));

    // The borrowed accessors agree with the owned channel.
    alice.send_batch(b_addr, &team, "x", &["one"]).unwrap();
    assert_eq!(bob.receive_batch(&mut batch, WAIT).unwrap(), 1);
    let m = batch.get(0).unwrap();
    let ch = m.channel().unwrap();
    assert_eq!((m.addr().unwrap(), m.team_id(), m.peer_id()), (a_addr, team, &ch.peer_id));
    assert_eq!((ch.addr, ch.team_id, ch.label.as_str(), ch.kind), (a_addr, team, "x", ChannelKind::Channel));
    assert_eq!(m.label_bytes(), b"x");
    assert!(batch.get(1).is_none());
    assert!(format!("{m:?}").contains("BatchMessage"));

    // Empty queue: a zero timeout returns 0 at once, and so does a short one.
    assert_eq!(bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap(), 0);
    assert!(batch.is_empty());
    assert_eq!(bob.receive_batch(&mut batch, Some(Duration::from_millis(1))).unwrap(), 0);
}

#[test]
fn send_sync_batch_keeps_its_type_and_order() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let msgs: Vec<String> = (0..70).map(|i| format!("sync-{i}")).collect();
    alice.send_sync_batch(b_addr, 12, &msgs).unwrap();
    let mut batch = MessageBatch::new();
    let (got, _) = collect(&bob, &mut batch, msgs.len());
    for (i, (kind, label, sync_type, data)) in got.iter().enumerate() {
        assert_eq!((*kind, label.as_str(), *sync_type), (ChannelKind::Sync, "", 12));
        assert_eq!(data.as_slice(), msgs[i].as_bytes());
    }
}

#[test]
fn a_failing_message_stops_the_batch_and_reports_how_many_were_sent() {
    let mut c = config("alice");
    c.max_message_size = Some(1000);
    let alice = Endpoint::new(c).unwrap();
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([5; 32]);

    // Too large in the middle of the first chunk: the two before it go.
    let big = vec![0u8; 1001];
    let msgs: Vec<&[u8]> = vec![b"a", b"b", &big, b"c"];
    let e = alice.send_batch(b_addr, &team, "t", &msgs).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooLarge, "{e}");
    assert_eq!(e.sent(), Some(2));

    // In a later chunk: the count includes the chunks before it.
    let mut msgs: Vec<Vec<u8>> = (0..80u8).map(|i| vec![i]).collect();
    msgs[70] = big.clone();
    let e = alice.send_batch(b_addr, &team, "t", &msgs).unwrap_err();
    assert_eq!((e.kind(), e.sent()), (ErrorKind::TooLarge, Some(70)));
    let e = alice.send_sync_batch(b_addr, 1, &[&big[..]]).unwrap_err();
    assert_eq!((e.kind(), e.sent()), (ErrorKind::TooLarge, Some(0)));

    // Exactly what was accepted arrives: a, b, then 0..70, nothing after.
    let mut batch = MessageBatch::with_capacity(8, 256);
    let (got, _) = collect(&bob, &mut batch, 72);
    let data: Vec<Vec<u8>> = got.into_iter().map(|g| g.3).collect();
    let mut want: Vec<Vec<u8>> = vec![b"a".to_vec(), b"b".to_vec()];
    want.extend((0..70u8).map(|i| vec![i]));
    assert_eq!(data, want);
    assert_eq!(bob.receive_batch(&mut batch, Some(Duration::from_millis(200))).unwrap(), 0, "nothing after the failure");
}

#[test]
fn bad_batch_arguments() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([6; 32]);

    // Nothing to send: Ok, and nothing arrives.
    alice.send_batch::<&[u8]>(b_addr, &team, "t", &[]).unwrap();
    alice.send_sync_batch::<Vec<u8>>(b_addr, 2, &[]).unwrap();
    // A bad label fails before any message is sent.
    let e = alice.send_batch(b_addr, &team, &"l".repeat(aranya_quic::LABEL_MAX + 1), &[b"m"]).unwrap_err();
    assert_eq!((e.kind(), e.sent()), (ErrorKind::InvalidArgument, Some(0)));
    // Our own address is refused by the library, again before any message.
    let e = alice.send_batch(alice.local_addr().unwrap(), &team, "t", &[b"m"]).unwrap_err();
    assert_eq!((e.kind(), e.sent()), (ErrorKind::BadAddress, Some(0)));
    let mut batch = MessageBatch::new();
    assert_eq!(bob.receive_batch(&mut batch, Some(Duration::from_millis(200))).unwrap(), 0);
}

#[test]
fn batches_stop_at_the_buffer_and_the_record_limits() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([7; 32]);

    // Five 40-byte messages, a 100-byte buffer: 2 + 2 + 1.
    let msgs: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 40]).collect();
    alice.send_batch(b_addr, &team, "buf", &msgs).unwrap();
    wait_queued(&bob, 5);
    let mut batch = MessageBatch::with_capacity(64, 100);
    let mut sizes = Vec::new();
    let mut data = Vec::new();
    for _ in 0..3 {
        sizes.push(bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap());
        data.extend(batch.iter().map(|m| m.data().to_vec()));
    }
    assert_eq!(sizes, [2, 2, 1]);
    assert_eq!(data, msgs);
    assert_eq!(batch.buffer_size(), 100, "messages that fit never grow the buffer");

    // Ten small messages, three records: 3 + 3 + 3 + 1.
    let msgs: Vec<[u8; 1]> = (0..10u8).map(|i| [i]).collect();
    alice.send_batch(b_addr, &team, "rec", &msgs).unwrap();
    wait_queued(&bob, 10);
    let mut batch = MessageBatch::with_capacity(3, 4096);
    let mut sizes = Vec::new();
    let mut data = Vec::new();
    for _ in 0..4 {
        sizes.push(bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap());
        data.extend(batch.iter().map(|m| m.data()[0]));
    }
    assert_eq!(sizes, [3, 3, 3, 1]);
    assert_eq!(data, (0..10u8).collect::<Vec<_>>());
}

#[test]
fn a_message_larger_than_the_buffer_grows_it() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([8; 32]);
    let big: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    alice.send_batch(b_addr, &team, "big", &[&b"small"[..], &big, b"after"]).unwrap();
    let mut batch = MessageBatch::with_capacity(8, 16);
    let (got, _) = collect(&bob, &mut batch, 3);
    let data: Vec<&[u8]> = got.iter().map(|g| g.3.as_slice()).collect();
    assert_eq!(data, [&b"small"[..], &big, b"after"]);
    assert!(batch.buffer_size() >= big.len());
    // A zero-byte buffer works too: it grows for the first non-empty one.
    alice.send_batch(b_addr, &team, "z", &[&b""[..], b"x"]).unwrap();
    let mut batch = MessageBatch::with_capacity(4, 0);
    let (got, _) = collect(&bob, &mut batch, 2);
    assert_eq!((got[0].3.len(), got[1].3.as_slice()), (0, &b"x"[..]));
}

#[test]
fn batch_and_single_receives_mix_in_order() {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    let team = GraphId([9; 32]);
    let msgs: Vec<[u8; 1]> = (0..6u8).map(|i| [i]).collect();
    alice.send_batch(b_addr, &team, "mix", &msgs).unwrap();
    wait_queued(&bob, 6);
    let mut one = [0u8; 8];
    let mut batch = MessageBatch::with_capacity(2, 64);
    let mut order = Vec::new();
    let (_, n) = bob.receive(&mut one).unwrap().unwrap();
    order.extend_from_slice(&one[..n]);
    bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap();
    order.extend(batch.iter().map(|m| m.data()[0]));
    let (_, n) = bob.receive_timeout(&mut one, WAIT).unwrap().unwrap();
    order.extend_from_slice(&one[..n]);
    bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap();
    order.extend(batch.iter().map(|m| m.data()[0]));
    assert_eq!(order, [0, 1, 2, 3, 4, 5]);
}

#[test]
fn receive_batch_after_shutdown_fails() {
    let bob = endpoint("bob");
    bob.shutdown().unwrap();
    let e = bob.receive_batch(&mut MessageBatch::new(), Some(Duration::ZERO)).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    let e = bob.send_batch("127.0.0.1:9", &GraphId([1; 32]), "x", &[b"y"]).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Closed | ErrorKind::InvalidHandle), "{e}");
    assert_eq!(e.sent(), Some(0));
}
