//! Newline-delimited messages (MCP's stdio framing), each held to a size
//! limit: a peer that never ends a line cannot make the gateway buffer
//! without bound.

use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// One line read.
#[derive(Debug, PartialEq, Eq)]
pub enum Line {
    /// The line, without its `\n` (nor a `\r` before it).
    Text(Vec<u8>),
    /// A line over the limit: skipped to its end; this many bytes.
    TooLong(usize),
}

/// Reads lines of at most `limit` bytes.
#[derive(Debug)]
pub struct LineReader<R> {
    inner: R,
    limit: usize,
}

impl<R: AsyncBufRead + Unpin> LineReader<R> {
    pub fn new(inner: R, limit: usize) -> LineReader<R> {
        LineReader { inner, limit }
    }

    /// The next line, or `None` at the end of input. Blank lines are
    /// skipped; a last line without `\n` still counts.
    pub async fn next(&mut self) -> std::io::Result<Option<Line>> {
        loop {
            let mut line = Vec::new();
            let mut total = 0usize;
            let mut ended = false;
            loop {
                let buffer = self.inner.fill_buf().await?;
                if buffer.is_empty() {
                    break;
                }
                let (take, found) = match buffer.iter().position(|&b| b == b'\n') {
                    Some(at) => (at + 1, true),
                    None => (buffer.len(), false),
                };
                let piece = &buffer[..if found { take - 1 } else { take }];
                total += piece.len();
                if total <= self.limit {
                    line.extend_from_slice(piece);
                } else if !line.is_empty() {
                    // Over the limit: the text so far is useless.
                    line = Vec::new();
                }
                self.inner.consume(take);
                if found {
                    ended = true;
                    break;
                }
            }
            if !ended && total == 0 {
                return Ok(None);
            }
            if total > self.limit {
                return Ok(Some(Line::TooLong(total)));
            }
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                if ended {
                    continue;
                }
                return Ok(None);
            }
            return Ok(Some(Line::Text(line)));
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    async fn lines(input: &[u8], limit: usize, capacity: usize) -> Vec<Line> {
        let reader = tokio::io::BufReader::with_capacity(capacity, input);
        let mut lines = LineReader::new(reader, limit);
        let mut out = Vec::new();
        while let Some(line) = lines.next().await.unwrap() {
            out.push(line);
        }
        out
    }

    #[tokio::test]
    async fn lines_are_split_and_bounded() {
        for capacity in [1, 3, 8192] {
            let got = lines(b"{\"a\":1}\r\n\n  \n0123456789\nabc\nlast", 5, capacity).await;
            assert_eq!(
                got,
                [
                    Line::TooLong(8),
                    Line::TooLong(10),
                    Line::Text(b"abc".to_vec()),
                    Line::Text(b"last".to_vec()),
                ],
                "capacity {capacity}"
            );
        }
        assert_eq!(lines(b"", 5, 8).await, []);
    }
}
