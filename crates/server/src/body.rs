//! Streamed response bodies: a producer (a blocking log reader, a file copier) sends
//! chunks on a bounded channel; the receiver is the body, so a slow client slows the
//! producer and a client that leaves stops it.

use std::pin::Pin;
use std::task::{Context, Poll};

pub struct ChunkStream<T>(pub tokio::sync::mpsc::Receiver<T>);

impl<T> futures::Stream for ChunkStream<T> {
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<T>> {
        self.0.poll_recv(cx)
    }
}
