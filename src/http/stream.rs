//! A request body read as a blocking [`Read`] (for a parser on its own thread): the
//! handler pumps the body into a bounded channel, so at most a few chunks wait in
//! memory, and the reader sees an error, never an end, when the body stops short.

use std::io::{self, Read};
use std::time::Duration;

use actix_web::web::{self, Bytes};
use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::error::ApiError;

/// Chunks of the body waiting for the reader.
const WAITING_CHUNKS: usize = 16;

enum Piece {
    Chunk(Bytes),
    /// The whole body arrived: only now is the end of the channel an end of input.
    End,
}

/// The reading end: blocks on the channel, so use it on a blocking thread.
pub struct BodyReader {
    pieces: mpsc::Receiver<Piece>,
    current: Bytes,
    ended: bool,
}

/// The pumping end, see [`BodyPump::run`].
pub struct BodyPump {
    pieces: mpsc::Sender<Piece>,
}

pub fn pipe() -> (BodyPump, BodyReader) {
    let (sender, pieces) = mpsc::channel(WAITING_CHUNKS);
    (
        BodyPump { pieces: sender },
        BodyReader {
            pieces,
            current: Bytes::new(),
            ended: false,
        },
    )
}

impl BodyPump {
    /// Feeds `payload` to the reader: at most `limit` bytes, each chunk arriving within
    /// `idle` of the one before. On an error the reader fails too (the channel closes
    /// without its end). Stops quietly when the reader is gone: whoever dropped it
    /// answers the request.
    pub async fn run(
        self,
        mut payload: web::Payload,
        limit: u64,
        idle: Duration,
    ) -> Result<(), ApiError> {
        let mut read: u64 = 0;
        loop {
            let next = tokio::time::timeout(idle, payload.next())
                .await
                .map_err(|_| ApiError::BodyTimeout(idle))?;
            let piece = match next {
                None => Piece::End,
                Some(chunk) => {
                    let chunk = chunk.map_err(|e| {
                        ApiError::BadRequest(format!("the body could not be read: {e}"))
                    })?;
                    read += chunk.len() as u64;
                    if read > limit {
                        return Err(ApiError::PayloadTooLarge(
                            usize::try_from(limit).unwrap_or(usize::MAX),
                        ));
                    }
                    Piece::Chunk(chunk)
                }
            };
            let end = matches!(piece, Piece::End);
            if self.pieces.send(piece).await.is_err() || end {
                return Ok(());
            }
        }
    }
}

impl Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() && !self.ended {
            match self.pieces.blocking_recv() {
                Some(Piece::Chunk(chunk)) => self.current = chunk,
                Some(Piece::End) => self.ended = true,
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the request body stopped before its end",
                    ));
                }
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reader_ends_only_after_the_end_and_fails_when_the_pump_stops_short() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (pump, mut reader) = pipe();
        runtime.block_on(async {
            pump.pieces
                .send(Piece::Chunk(Bytes::from_static(b"id,na")))
                .await
                .unwrap();
            pump.pieces
                .send(Piece::Chunk(Bytes::from_static(b"me\n")))
                .await
                .unwrap();
            pump.pieces.send(Piece::End).await.unwrap();
        });
        let mut text = String::new();
        reader.read_to_string(&mut text).unwrap();
        assert_eq!(text, "id,name\n");

        let (pump, mut reader) = pipe();
        runtime.block_on(async {
            pump.pieces
                .send(Piece::Chunk(Bytes::from_static(b"id,")))
                .await
                .unwrap();
        });
        drop(pump);
        let mut text = String::new();
        let stopped = reader.read_to_string(&mut text).unwrap_err();
        assert_eq!(stopped.kind(), io::ErrorKind::UnexpectedEof);
    }
}
