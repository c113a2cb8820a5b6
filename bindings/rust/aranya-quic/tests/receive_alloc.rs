//! Receiving a message on a label the endpoint has seen allocates nothing,
//! on every receive path. Counted by a global allocator that tallies the
//! allocations of the current thread while a test has it armed (tests run
//! in parallel threads, and the library's own threads are not Rust's).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::time::{Duration, Instant};

use aranya_quic::{ChannelKind, Endpoint, GraphId, MessageBatch};
use common::*;

struct Counting;

thread_local! {
    static ARMED: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<usize> = const { Cell::new(0) };
}

fn note() {
    // try_with: the allocator can run while the thread's locals are torn
    // down.
    let _ = ARMED.try_with(|armed| {
        if armed.get() {
            COUNT.with(|c| c.set(c.get() + 1));
        }
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note();
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note();
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Runs `f` and returns how many allocations this thread made in it.
fn allocations_in(f: impl FnOnce()) -> usize {
    COUNT.with(|c| c.set(0));
    ARMED.with(|a| a.set(true));
    f();
    ARMED.with(|a| a.set(false));
    COUNT.with(|c| c.get())
}

/// Waits until `ep` has `n` messages queued, so that the measured receives
/// never wait. Bounded only to turn a hang into a failure.
fn wait_queued(ep: &Endpoint, n: u64) {
    let end = Instant::now() + Duration::from_secs(20);
    while ep.stats().unwrap().queue_messages < n {
        assert!(Instant::now() < end, "{n} messages never got queued");
        std::thread::sleep(Duration::from_millis(5));
    }
}

const TEAM: GraphId = GraphId([0x5a; 32]);
const LABEL: &str = "chat";
const N: usize = 24;

/// Two endpoints, and `N` messages on `LABEL` from alice queued at bob
/// after bob received one message on it (which caches the label).
fn warmed_up(warm: impl FnOnce(&Endpoint)) -> (Endpoint, Endpoint) {
    let alice = endpoint("alice");
    let bob = endpoint("bob");
    let b_addr = bob.local_addr().unwrap();
    alice.send(b_addr, &TEAM, LABEL, b"warm-up").unwrap();
    warm(&bob);
    for i in 0..N {
        alice.send(b_addr, &TEAM, LABEL, format!("m{i}").as_bytes()).unwrap();
    }
    wait_queued(&bob, N as u64);
    (alice, bob)
}

#[test]
fn the_counter_sees_allocations() {
    let n = allocations_in(|| {
        std::hint::black_box(Vec::<u8>::with_capacity(16));
    });
    assert!(n >= 1, "the counting allocator counts");
}

#[test]
fn receive_of_a_known_label_does_not_allocate() {
    let mut buf = vec![0u8; 1024];
    let (_alice, bob) = warmed_up(|bob| {
        let (ch, _) = bob.receive_timeout(&mut buf, WAIT).unwrap().expect("warm-up message");
        assert_eq!(ch.label, LABEL);
    });
    let mut vec_buf = Vec::with_capacity(1024);
    let mut seen = 0;
    let n = allocations_in(|| {
        for i in 0..N {
            // Every receive method that returns an owned channel, in turn.
            let ch = match i % 3 {
                0 => bob.receive(&mut buf).unwrap().map(|(ch, _)| ch),
                1 => bob.receive_timeout(&mut buf, Some(Duration::ZERO)).unwrap().map(|(ch, _)| ch),
                _ => bob.receive_vec(&mut vec_buf, Some(Duration::ZERO)).unwrap(),
            };
            let ch = ch.expect("a queued message");
            assert!(ch.kind == ChannelKind::Channel && ch.team_id == TEAM && ch.label == LABEL);
            seen += 1;
        }
    });
    assert_eq!(seen, N);
    assert_eq!(n, 0, "allocations while receiving {N} messages on a cached label");
}

#[test]
fn batch_channel_of_a_known_label_does_not_allocate() {
    let mut batch = MessageBatch::with_capacity(8, 4096);
    let (_alice, bob) = warmed_up(|bob| {
        assert_eq!(bob.receive_batch(&mut batch, WAIT).unwrap(), 1);
        assert_eq!(batch.get(0).unwrap().channel().unwrap().label, LABEL);
    });
    let mut seen = 0;
    let n = allocations_in(|| {
        // Several batches: N is more than one batch's records.
        while seen < N {
            let k = bob.receive_batch(&mut batch, Some(Duration::ZERO)).unwrap();
            assert!(k > 0, "queued messages missing");
            for m in batch.iter() {
                let ch = m.channel().unwrap();
                assert!(ch.label == LABEL && m.label() == LABEL);
                seen += 1;
            }
        }
    });
    assert_eq!(seen, N);
    assert_eq!(n, 0, "allocations while reading {N} batch messages on a cached label");
}

#[cfg(feature = "tokio")]
#[test]
fn async_recv_of_a_known_label_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut buf = Vec::with_capacity(1024);
    // The first recv also registers the fd and sizes the endpoint's
    // internal batch; both are once per endpoint.
    let (_alice, bob) = warmed_up(|bob| {
        let ch = rt.block_on(bob.recv(&mut buf)).unwrap();
        assert_eq!(ch.label, LABEL);
    });
    let mut seen = 0;
    let n = allocations_in(|| {
        rt.block_on(async {
            for _ in 0..N {
                let ch = bob.recv(&mut buf).await.unwrap();
                assert!(ch.label == LABEL && buf.starts_with(b"m"));
                seen += 1;
            }
        })
    });
    assert_eq!(seen, N);
    assert_eq!(n, 0, "allocations while recv-ing {N} messages on a cached label");
}

#[cfg(feature = "tokio")]
#[test]
fn async_recv_batch_of_a_known_label_does_not_allocate() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let mut batch = MessageBatch::with_capacity(8, 4096);
    let (_alice, bob) = warmed_up(|bob| {
        assert_eq!(rt.block_on(bob.recv_batch(&mut batch)).unwrap(), 1);
        assert_eq!(batch.get(0).unwrap().channel().unwrap().label, LABEL);
    });
    let mut seen = 0;
    let n = allocations_in(|| {
        rt.block_on(async {
            while seen < N {
                bob.recv_batch(&mut batch).await.unwrap();
                for m in batch.iter() {
                    assert!(m.channel().unwrap().label == LABEL);
                    seen += 1;
                }
            }
        })
    });
    assert_eq!(seen, N);
    assert_eq!(n, 0, "allocations while recv_batch-ing {N} messages on a cached label");
}
