//! Receiving many messages per library call: [`MessageBatch`].

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use aranya_quic_sys as sys;

use crate::error::{ErrorKind, QuicMessageError};
use crate::label::LabelCache;
use crate::types::{c_array_str, channel_kind, channel_label, parse_addr, ChannelKind, GraphId, QuicChannel};

/// Reusable storage for [`Endpoint::receive_batch`] and (feature `tokio`)
/// `Endpoint::recv_batch`: one payload buffer and room for a number of
/// message records (`aranya_quic_receive_batch`).
///
/// A receive replaces the batch's contents; read them with
/// [`iter`](Self::iter) or [`get`](Self::get) before the next one. Reusing
/// one batch makes receiving allocation-free: the buffer grows only when a
/// single message is larger than it, and stays that size.
///
/// [`Endpoint::receive_batch`]: crate::Endpoint::receive_batch
pub struct MessageBatch {
    buf: Vec<u8>,
    msgs: Vec<sys::aranya_quic_message>,
    /// Records filled by the last receive.
    count: usize,
    /// Bytes of `buf` those records use.
    used: usize,
    /// The label cache of the endpoint that filled the batch last, for
    /// [`BatchMessage::channel`].
    labels: Option<Arc<LabelCache>>,
}

impl MessageBatch {
    /// Messages a batch from [`new`](Self::new) holds.
    pub const DEFAULT_MESSAGES: usize = 64;
    /// Buffer size of a batch from [`new`](Self::new), in bytes.
    pub const DEFAULT_BUFFER: usize = 64 * 1024;

    /// A batch of [`DEFAULT_MESSAGES`](Self::DEFAULT_MESSAGES) messages and
    /// a [`DEFAULT_BUFFER`](Self::DEFAULT_BUFFER)-byte buffer.
    pub fn new() -> Self {
        Self::with_capacity(Self::DEFAULT_MESSAGES, Self::DEFAULT_BUFFER)
    }

    /// A batch that takes at most `max_messages` messages (at least 1) and
    /// at most `buffer_bytes` bytes of payload per receive (grown when one
    /// message alone is larger).
    pub fn with_capacity(max_messages: usize, buffer_bytes: usize) -> Self {
        MessageBatch {
            buf: vec![0; buffer_bytes],
            msgs: vec![sys::aranya_quic_message::default(); max_messages.max(1)],
            count: 0,
            used: 0,
            labels: None,
        }
    }

    /// A batch without storage, for lazily built internal batches.
    #[cfg(feature = "tokio")]
    pub(crate) fn empty() -> Self {
        MessageBatch { buf: Vec::new(), msgs: Vec::new(), count: 0, used: 0, labels: None }
    }

    /// Messages held (from the last receive).
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Most messages one receive takes.
    pub fn max_messages(&self) -> usize {
        self.msgs.len()
    }

    /// Size of the payload buffer, in bytes.
    pub fn buffer_size(&self) -> usize {
        self.buf.len()
    }

    /// Forgets the messages held (keeps the storage).
    pub fn clear(&mut self) {
        self.count = 0;
        self.used = 0;
    }

    /// The `i`-th message of the last receive, oldest first.
    pub fn get(&self, i: usize) -> Option<BatchMessage<'_>> {
        if i >= self.count {
            return None;
        }
        let raw = &self.msgs[i];
        // Offsets were checked against buf when the batch was filled.
        Some(BatchMessage { raw, data: &self.buf[raw.offset..raw.offset + raw.len], labels: self.labels.as_deref() })
    }

    /// The messages of the last receive, oldest first.
    pub fn iter(&self) -> BatchIter<'_> {
        BatchIter { batch: self, next: 0 }
    }

    /// Makes `channel()` of the messages to come share labels through
    /// `labels` (the filling endpoint's cache).
    pub(crate) fn use_labels(&mut self, labels: &Arc<LabelCache>) {
        // Usually the same cache as last time: skip the reference count.
        if !matches!(&self.labels, Some(l) if Arc::ptr_eq(l, labels)) {
            self.labels = Some(Arc::clone(labels));
        }
    }

    /// Grows the buffer to hold at least `n` bytes; doubling, so that a run
    /// of growing messages does not reallocate each time.
    pub(crate) fn grow_to(&mut self, n: usize) {
        if n > self.buf.len() {
            let size = n.max(self.buf.len().saturating_mul(2));
            self.buf.resize(size, 0);
        }
    }

    /// Appends one message if both the records and the buffer have room.
    #[cfg(feature = "tokio")]
    pub(crate) fn push(&mut self, channel: &sys::aranya_quic_channel, data: &[u8]) -> bool {
        if self.count == self.msgs.len() || self.buf.len() - self.used < data.len() {
            return false;
        }
        let offset = self.used;
        self.buf[offset..offset + data.len()].copy_from_slice(data);
        self.msgs[self.count] = sys::aranya_quic_message { channel: *channel, offset, len: data.len() };
        self.count += 1;
        self.used += data.len();
        true
    }

    /// One `aranya_quic_receive_batch` into this batch (replacing its
    /// contents). WOULD_BLOCK and TIMEOUT give `Ok(0)`. With `grow`, a
    /// message larger than the buffer grows it and is taken; without, that
    /// is a BUFFER_TOO_SMALL error whose `needed` is the message's size.
    pub(crate) fn fill(
        &mut self,
        handle: sys::aranya_quic_t,
        timeout_ms: i32,
        grow: bool,
    ) -> Result<usize, QuicMessageError> {
        self.clear();
        loop {
            let mut n = 0usize;
            let (bp, bl) = if self.buf.is_empty() {
                (std::ptr::null_mut(), 0)
            } else {
                (self.buf.as_mut_ptr(), self.buf.len())
            };
            // SAFETY: bp is writable for bl bytes and msgs for msgs.len()
            // records (at least one), during the call.
            let rc = unsafe {
                sys::aranya_quic_receive_batch(handle, bp, bl, self.msgs.as_mut_ptr(), self.msgs.len(), &mut n, timeout_ms)
            };
            match rc {
                sys::ARANYA_QUIC_OK => return self.accept(n),
                sys::ARANYA_QUIC_ERR_WOULD_BLOCK | sys::ARANYA_QUIC_ERR_TIMEOUT => return Ok(0),
                sys::ARANYA_QUIC_ERR_BUFFER_TOO_SMALL => {
                    let needed = self.msgs[0].len;
                    if !grow || needed <= self.buf.len() {
                        return Err(QuicMessageError::from_last(rc).with_needed(needed));
                    }
                    // The message stays queued: take it with a bigger buffer.
                    self.grow_to(needed);
                }
                _ => return Err(QuicMessageError::from_last(rc)),
            }
        }
    }

    /// Records `n` messages the library reported, after checking that
    /// every one lies inside the buffer (so `get` can slice without checks
    /// failing later).
    fn accept(&mut self, n: usize) -> Result<usize, QuicMessageError> {
        if n == 0 || n > self.msgs.len() {
            return Err(QuicMessageError::new(
                ErrorKind::Internal,
                format!("library reported {n} messages for {} records", self.msgs.len()),
            ));
        }
        let mut used = 0;
        for m in &self.msgs[..n] {
            match m.offset.checked_add(m.len) {
                Some(end) if end <= self.buf.len() => used = used.max(end),
                _ => {
                    return Err(QuicMessageError::new(
                        ErrorKind::Internal,
                        format!(
                            "library reported a message at {}+{} in a {}-byte buffer",
                            m.offset,
                            m.len,
                            self.buf.len()
                        ),
                    ))
                }
            }
        }
        self.count = n;
        self.used = used;
        Ok(n)
    }

    /// Forgets the messages from `start` on for which `drop` says so,
    /// keeping the order of the others; returns how many were forgotten.
    /// Their payload stays in the buffer unused until the next receive.
    #[cfg(feature = "tokio")]
    pub(crate) fn remove_from(&mut self, start: usize, mut drop: impl FnMut(&sys::aranya_quic_channel) -> bool) -> usize {
        let start = start.min(self.count);
        let mut kept = start;
        for i in start..self.count {
            if !drop(&self.msgs[i].channel) {
                self.msgs.swap(kept, i);
                kept += 1;
            }
        }
        let removed = self.count - kept;
        self.count = kept;
        removed
    }

    /// The raw record of message `i` (no bounds beyond the slice's).
    #[cfg(feature = "tokio")]
    pub(crate) fn raw(&self, i: usize) -> (&sys::aranya_quic_channel, &[u8]) {
        let m = &self.msgs[i];
        (&m.channel, &self.buf[m.offset..m.offset + m.len])
    }
}

impl Default for MessageBatch {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MessageBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MessageBatch")
            .field("len", &self.count)
            .field("max_messages", &self.msgs.len())
            .field("buffer_size", &self.buf.len())
            .finish()
    }
}

impl<'a> IntoIterator for &'a MessageBatch {
    type Item = BatchMessage<'a>;
    type IntoIter = BatchIter<'a>;
    fn into_iter(self) -> BatchIter<'a> {
        self.iter()
    }
}

/// Iterator over the messages of a [`MessageBatch`].
#[derive(Debug, Clone)]
pub struct BatchIter<'a> {
    batch: &'a MessageBatch,
    next: usize,
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = BatchMessage<'a>;
    fn next(&mut self) -> Option<BatchMessage<'a>> {
        let m = self.batch.get(self.next)?;
        self.next += 1;
        Some(m)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batch.count - self.next;
        (n, Some(n))
    }
}

impl ExactSizeIterator for BatchIter<'_> {}

/// One message of a [`MessageBatch`], borrowed from it: reading it
/// allocates nothing (use [`channel`](Self::channel) for an owned
/// [`QuicChannel`]).
#[derive(Clone, Copy)]
pub struct BatchMessage<'a> {
    raw: &'a sys::aranya_quic_message,
    data: &'a [u8],
    labels: Option<&'a LabelCache>,
}

impl<'a> BatchMessage<'a> {
    /// The message's bytes.
    pub fn data(&self) -> &'a [u8] {
        self.data
    }

    /// The peer's listening address: pass it to `send` to reply. An error
    /// only if the library reported an address Rust cannot parse (a bug).
    pub fn addr(&self) -> Result<SocketAddr, QuicMessageError> {
        parse_addr(c_array_str(&self.raw.channel.addr))
    }

    pub fn kind(&self) -> ChannelKind {
        channel_kind(self.raw.channel.kind)
    }

    /// For [`ChannelKind::Channel`]: the team id; else zeroes.
    pub fn team_id(&self) -> GraphId {
        GraphId(self.raw.channel.team_id)
    }

    /// For [`ChannelKind::Channel`]: the label (borrowed; replaced
    /// characters if it is not UTF-8); else empty.
    pub fn label(&self) -> Cow<'a, str> {
        String::from_utf8_lossy(self.label_bytes())
    }

    /// The label's bytes as the library reported them.
    pub fn label_bytes(&self) -> &'a [u8] {
        channel_label(&self.raw.channel)
    }

    /// For [`ChannelKind::Sync`]: the sync type; else 0.
    pub fn sync_type(&self) -> u32 {
        self.raw.channel.sync_type
    }

    /// SHA-256 of the peer's DER leaf certificate: who sent the message.
    pub fn peer_id(&self) -> &'a [u8; sys::ARANYA_QUIC_PEER_ID_LEN] {
        &self.raw.channel.peer_id
    }

    /// Where the message came from, owned (as `receive` returns it). Its
    /// label comes from the receiving endpoint's label cache, as with
    /// `receive`: no allocation once the label was seen.
    pub fn channel(&self) -> Result<QuicChannel, QuicMessageError> {
        QuicChannel::from_c(&self.raw.channel, self.labels)
    }

    /// The C record (`aranya_quic_channel`).
    pub fn raw_channel(&self) -> &'a sys::aranya_quic_channel {
        &self.raw.channel
    }
}

impl fmt::Debug for BatchMessage<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchMessage")
            .field("addr", &String::from_utf8_lossy(c_array_str(&self.raw.channel.addr)))
            .field("kind", &self.kind())
            .field("team_id", &self.team_id())
            .field("label", &self.label())
            .field("sync_type", &self.sync_type())
            .field("len", &self.data.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_batch_has_no_messages() {
        let b = MessageBatch::with_capacity(0, 0);
        assert_eq!(b.max_messages(), 1, "at least one record");
        assert!(b.is_empty());
        assert!(b.get(0).is_none());
        assert_eq!(b.iter().count(), 0);
    }

    #[test]
    fn accept_rejects_records_outside_the_buffer() {
        let mut b = MessageBatch::with_capacity(2, 8);
        b.msgs[0].offset = 0;
        b.msgs[0].len = 4;
        b.msgs[1].offset = 4;
        b.msgs[1].len = 4;
        assert_eq!(b.accept(2).unwrap(), 2);
        assert_eq!(b.used, 8);
        b.msgs[1].len = 5;
        assert_eq!(b.accept(2).unwrap_err().kind(), ErrorKind::Internal);
        b.msgs[1].offset = usize::MAX;
        assert_eq!(b.accept(2).unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(b.accept(3).unwrap_err().kind(), ErrorKind::Internal);
        assert_eq!(b.accept(0).unwrap_err().kind(), ErrorKind::Internal);
    }

    #[cfg(feature = "tokio")]
    #[test]
    fn remove_from_keeps_order_and_the_head() {
        let mut b = MessageBatch::with_capacity(6, 6);
        for i in 0..6u8 {
            let c = sys::aranya_quic_channel { peer_id: [i % 2; 32], sync_type: u32::from(i), ..Default::default() };
            assert!(b.push(&c, &[i]));
        }
        // Messages before `start` were handed out already: never touched.
        assert_eq!(b.remove_from(1, |c| c.peer_id == [0; 32]), 2);
        assert_eq!(b.len(), 4);
        let order: Vec<u32> = (0..b.len()).map(|i| b.raw(i).0.sync_type).collect();
        assert_eq!(order, [0, 1, 3, 5]);
        let data: Vec<u8> = (0..b.len()).map(|i| b.raw(i).1[0]).collect();
        assert_eq!(data, [0, 1, 3, 5], "payloads follow their records");
        assert_eq!(b.remove_from(9, |_| true), 0);
    }

    #[test]
    fn grow_doubles_or_fits() {
        let mut b = MessageBatch::with_capacity(1, 10);
        b.grow_to(5);
        assert_eq!(b.buffer_size(), 10);
        b.grow_to(11);
        assert_eq!(b.buffer_size(), 20);
        b.grow_to(100);
        assert_eq!(b.buffer_size(), 100);
    }
}
