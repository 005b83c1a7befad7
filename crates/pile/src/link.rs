//! The writing half of the pile's websocket, in a task of its own, so that a central system
//! that stops reading cannot freeze the pile: hardware events, ticks and the control port go
//! on while a write waits. Frames go out in the order given; each write is bounded by the
//! write timeout, after which the link is reported failed. Closing the link first sends what
//! was queued before it (the answer to a ChangeConfiguration that moves the pile to another
//! server, say), then the close frame.

use std::time::Duration;

use futures_util::stream::SplitSink;
use futures_util::SinkExt;
use tokio::sync::{mpsc, oneshot};

use transport::{Message, WsStream};

type Sink = SplitSink<WsStream, Message>;

enum Write {
    Frame(String),
    Ping,
    Close,
}

/// Why a link's writer gave up, with the number of the link it belonged to.
#[derive(Debug)]
pub struct WriteFailed {
    pub link: u64,
    pub why: String,
}

/// The queue of one connection's writes.
pub struct LinkWriter {
    writes: mpsc::UnboundedSender<Write>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Tells this connection's failure from an older one's.
    pub link: u64,
}

impl LinkWriter {
    /// Starts writing to `sink`; a failed or timed-out write is reported on `failed`.
    /// Starts the writer; the receiver says why, if a write fails.
    pub fn start(
        sink: Sink,
        link: u64,
        timeout: Duration,
    ) -> (LinkWriter, oneshot::Receiver<WriteFailed>) {
        let (writes, rx) = mpsc::unbounded_channel();
        let (failed, failure) = oneshot::channel();
        let task = tokio::spawn(write_all(sink, rx, timeout, link, failed));
        let writer = LinkWriter {
            writes,
            task: Some(task),
            link,
        };
        (writer, failure)
    }

    pub fn send(&self, frame: String) {
        let _ = self.writes.send(Write::Frame(frame));
    }

    pub fn ping(&self) {
        let _ = self.writes.send(Write::Ping);
    }

    /// Closes the connection once what was queued before is written (dropping the writer
    /// does the same, without waiting).
    pub async fn close(mut self) {
        let _ = self.writes.send(Write::Close);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for LinkWriter {
    fn drop(&mut self) {
        let _ = self.writes.send(Write::Close);
    }
}

async fn write_all(
    mut sink: Sink,
    mut rx: mpsc::UnboundedReceiver<Write>,
    timeout: Duration,
    link: u64,
    failed: oneshot::Sender<WriteFailed>,
) {
    while let Some(write) = rx.recv().await {
        let (message, closing) = match write {
            Write::Frame(text) => (Message::text(text), false),
            Write::Ping => (Message::Ping(Default::default()), false),
            Write::Close => (Message::Close(None), true),
        };
        let why = match tokio::time::timeout(timeout, sink.send(message)).await {
            Ok(Ok(())) if closing => return,
            Ok(Ok(())) => continue,
            Ok(Err(e)) => format!("send failed: {e}"),
            Err(_) => format!("no write went through within {timeout:?}"),
        };
        if !closing {
            let _ = failed.send(WriteFailed { link, why });
        }
        return;
    }
}
