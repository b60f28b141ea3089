//! Server-sent events (`text/event-stream`), as the HTTP gateway relays
//! them: the stream is cut into events whose bytes are kept, so an event
//! the gateway does not change is relayed byte for byte, and each event is
//! held to a size limit.

/// One piece of the stream.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece {
    /// A whole event: its bytes, from its first line to the blank line
    /// that ends it, inclusive.
    Event(Vec<u8>),
    /// An event over the limit, skipped: this many bytes.
    TooLarge(usize),
    /// At the end of the stream, an event without its blank line: its
    /// bytes (a client discards it).
    Unfinished(Vec<u8>),
}

/// Cuts a byte stream into events. Lines end at CRLF, LF or CR (as the
/// SSE specification has it); an event ends at a blank line.
#[derive(Debug)]
pub struct Splitter {
    limit: usize,
    event: Vec<u8>,
    /// Bytes of the current event, kept or not.
    size: usize,
    line_empty: bool,
    /// The last byte was a CR: an LF now belongs to the same line end.
    after_cr: bool,
    /// The event ended at a CR: it is given out at the next byte, with
    /// that byte if it is the CRLF's LF.
    ended: bool,
}

impl Splitter {
    pub fn new(limit: usize) -> Splitter {
        Splitter {
            limit,
            event: Vec::new(),
            size: 0,
            line_empty: true,
            after_cr: false,
            ended: false,
        }
    }

    /// Feeds bytes; returns the events they complete.
    pub fn push(&mut self, bytes: &[u8]) -> Vec<Piece> {
        let mut out = Vec::new();
        for &byte in bytes {
            if self.ended {
                self.ended = false;
                self.after_cr = false;
                if byte == b'\n' {
                    self.keep(byte);
                    out.push(self.take());
                    continue;
                }
                out.push(self.take());
            }
            if self.after_cr {
                self.after_cr = false;
                if byte == b'\n' {
                    // The LF of a CRLF whose CR ended the line.
                    self.keep(byte);
                    continue;
                }
            }
            self.keep(byte);
            match byte {
                b'\r' | b'\n' => {
                    if !self.line_empty {
                        self.after_cr = byte == b'\r';
                    } else if byte == b'\r' {
                        self.ended = true;
                    } else {
                        out.push(self.take());
                    }
                    self.line_empty = true;
                }
                _ => self.line_empty = false,
            }
        }
        out
    }

    /// The end of the stream: an event that ended at its last byte, or the
    /// bytes of an unfinished one.
    pub fn finish(mut self) -> Option<Piece> {
        if self.ended {
            return Some(self.take());
        }
        (!self.event.is_empty() && self.size <= self.limit).then_some(Piece::Unfinished(self.event))
    }

    fn keep(&mut self, byte: u8) {
        self.size += 1;
        if self.size <= self.limit {
            self.event.push(byte);
        } else if !self.event.is_empty() {
            self.event = Vec::new();
        }
    }

    fn take(&mut self) -> Piece {
        let size = std::mem::take(&mut self.size);
        let event = std::mem::take(&mut self.event);
        if size > self.limit {
            Piece::TooLarge(size)
        } else {
            Piece::Event(event)
        }
    }
}

/// An event's lines, without their ends.
fn lines(event: &[u8]) -> impl Iterator<Item = &[u8]> {
    event
        .split(|&b| b == b'\n' || b == b'\r')
        .filter(|line| !line.is_empty())
}

/// A line's field name and value (one space after the colon dropped);
/// `None` for a comment.
fn field(line: &[u8]) -> Option<(&[u8], &[u8])> {
    if line.first() == Some(&b':') {
        return None;
    }
    match line.iter().position(|&b| b == b':') {
        Some(at) => {
            let value = &line[at + 1..];
            Some((&line[..at], value.strip_prefix(b" ").unwrap_or(value)))
        }
        None => Some((line, &[])),
    }
}

/// The event's data: its `data` lines joined by LF; `None` without any.
pub fn data(event: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (name, value) in lines(event).filter_map(field) {
        if name == b"data" {
            match &mut out {
                Some(data) => {
                    data.push(b'\n');
                    data.extend_from_slice(value);
                }
                None => out = Some(value.to_vec()),
            }
        }
    }
    out
}

/// The event with its data replaced by `data` (one line: JSON has no raw
/// line breaks), its other fields (`event`, `id`, `retry`) kept.
pub fn with_data(event: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    for line in lines(event) {
        if field(line).is_some_and(|(name, _)| name != b"data") {
            out.extend_from_slice(line);
            out.push(b'\n');
        }
    }
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data);
    out.extend_from_slice(b"\n\n");
    out
}

/// A `message` event holding `data`.
pub fn message(data: &[u8]) -> Vec<u8> {
    with_data(b"event: message\n", data)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    fn split(input: &[u8], limit: usize, chunk: usize) -> (Vec<Piece>, Option<Piece>) {
        let mut splitter = Splitter::new(limit);
        let mut pieces = Vec::new();
        for part in input.chunks(chunk) {
            pieces.extend(splitter.push(part));
        }
        (pieces, splitter.finish())
    }

    #[test]
    fn events_keep_their_bytes_whatever_the_line_ends() {
        let input = b"event: message\r\nid: 1\r\ndata: {\"a\":1}\r\n\r\n: ping\n\ndata: x\rdata: y\r\rdata: tail";
        for chunk in [1, 2, 5, 1000] {
            let (pieces, rest) = split(input, 1000, chunk);
            let mut joined: Vec<u8> = Vec::new();
            for piece in &pieces {
                let Piece::Event(bytes) = piece else {
                    panic!("an event over no limit");
                };
                joined.extend_from_slice(bytes);
            }
            let Some(Piece::Unfinished(rest)) = rest else {
                panic!("the last event is unfinished");
            };
            joined.extend_from_slice(&rest);
            assert_eq!(joined, input, "chunk {chunk}");
            assert_eq!(pieces.len(), 3, "chunk {chunk}");
            // Each event holds its own line ends, the CRLF's LF included.
            let Piece::Event(first) = &pieces[0] else {
                panic!("an event");
            };
            assert!(first.ends_with(b"\r\n\r\n"), "chunk {chunk}");
            let datas: Vec<Option<Vec<u8>>> = pieces
                .iter()
                .map(|p| match p {
                    Piece::Event(bytes) => data(bytes),
                    _ => None,
                })
                .collect();
            assert_eq!(
                datas,
                [Some(b"{\"a\":1}".to_vec()), None, Some(b"x\ny".to_vec())]
            );
        }
    }

    #[test]
    fn events_over_the_limit_are_skipped() {
        let (pieces, rest) = split(b"data: 0123456789\n\ndata: ok\n\n", 12, 3);
        assert_eq!(
            pieces,
            [Piece::TooLarge(18), Piece::Event(b"data: ok\n\n".to_vec())]
        );
        assert_eq!(rest, None);
    }

    #[test]
    fn an_event_ending_at_the_last_byte_is_whole() {
        let (pieces, rest) = split(b"data: 1\r\r", 100, 1);
        assert_eq!(pieces, []);
        assert_eq!(rest, Some(Piece::Event(b"data: 1\r\r".to_vec())));
        let (pieces, rest) = split(b"data: 1\r\n\r\n", 100, 3);
        assert_eq!(pieces, [Piece::Event(b"data: 1\r\n\r\n".to_vec())]);
        assert_eq!(rest, None);
    }

    #[test]
    fn data_is_replaced_and_other_fields_kept() {
        let event = b"event: message\nid: 7\ndata: {\"a\":\ndata: 1}\n\n";
        assert_eq!(
            with_data(event, b"{}"),
            b"event: message\nid: 7\ndata: {}\n\n".to_vec()
        );
        assert_eq!(message(b"[]"), b"event: message\ndata: []\n\n".to_vec());
    }
}
