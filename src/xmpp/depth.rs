//! A bound on element nesting in what the XMPP server sends, applied to the bytes before the XML
//! parser sees them. tokio-xmpp builds a stanza's payload through xso's element builder, which
//! recurses once per level for every event: a message with a few thousand nested elements (any
//! client may send one; Prosody forwards it) overflowed the stack and killed the bridge, and the
//! work is quadratic in the depth. Elements deeper than `MAX_DEPTH` are cut out here, start tag
//! to end tag, so the stanza stays well-formed and is handled without its too-deep part.
//!
//! The scanner tracks tags, quoted attribute values and `<?…?>` / `<!…>` constructs; that is all
//! the XML a server writes (XMPP forbids comments, PIs and DTDs in stanzas, RFC 6120 §11.1).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Deepest element kept, counting the stream root as 1 and a stanza as 2: far beyond any
/// payload the bridge reads (and any ordinary extension).
pub const MAX_DEPTH: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Text,
    /// Just after `<`, not yet known what it opens.
    Lt,
    /// Inside a start tag (`close: false`) or end tag; `quote` while in an attribute value.
    Tag {
        close: bool,
        quote: Option<u8>,
        slash: bool,
    },
    /// Inside `<?…>` or `<!…>`.
    Special,
}

/// The byte-level filter (separate from the I/O so it can be tested alone).
#[derive(Debug)]
pub struct Scanner {
    state: State,
    depth: usize,
    max: usize,
    /// The depth of the element being cut out, while one is.
    cutting: Option<usize>,
    /// Elements cut out so far.
    pub cut: u64,
}

impl Scanner {
    pub fn new(max: usize) -> Self {
        Scanner { state: State::Text, depth: 0, max, cutting: None, cut: 0 }
    }

    /// Append what is kept of `input` to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            match self.state {
                State::Text => {
                    if b == b'<' {
                        // Held back until the next byte says whether this element is kept.
                        self.state = State::Lt;
                    } else if self.cutting.is_none() {
                        out.push(b);
                    }
                }
                State::Lt => {
                    match b {
                        b'/' => self.state = State::Tag { close: true, quote: None, slash: false },
                        b'?' | b'!' => self.state = State::Special,
                        _ => {
                            self.depth += 1;
                            if self.cutting.is_none() && self.depth > self.max {
                                self.cutting = Some(self.depth);
                                self.cut += 1;
                            }
                            self.state = State::Tag { close: false, quote: None, slash: false };
                        }
                    }
                    if self.cutting.is_none() {
                        out.extend_from_slice(&[b'<', b]);
                    }
                }
                State::Tag { close, quote, slash } => {
                    let keep = self.cutting.is_none();
                    self.state = match quote {
                        Some(q) => State::Tag { close, quote: (b != q).then_some(q), slash: false },
                        None if b == b'"' || b == b'\'' => State::Tag { close, quote: Some(b), slash: false },
                        None if b == b'>' => {
                            // An end tag or an empty-element tag ends the element.
                            if close || slash {
                                if self.cutting == Some(self.depth) {
                                    self.cutting = None;
                                }
                                self.depth = self.depth.saturating_sub(1);
                            }
                            State::Text
                        }
                        None => State::Tag { close, quote: None, slash: b == b'/' },
                    };
                    if keep {
                        out.push(b);
                    }
                }
                State::Special => {
                    if b == b'>' {
                        self.state = State::Text;
                    }
                    if self.cutting.is_none() {
                        out.push(b);
                    }
                }
            }
        }
    }
}

/// An I/O stream whose reads pass through a `Scanner`; writes go through untouched.
pub struct DepthLimited<T> {
    inner: T,
    scanner: Scanner,
    raw: Box<[u8]>,
    out: Vec<u8>,
    at: usize,
}

impl<T> DepthLimited<T> {
    pub fn new(inner: T) -> Self {
        DepthLimited { inner, scanner: Scanner::new(MAX_DEPTH), raw: vec![0; 16 * 1024].into(), out: Vec::new(), at: 0 }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for DepthLimited<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        // A read that yields only cut-out bytes must not look like the end of the stream (0 bytes).
        while this.at == this.out.len() {
            this.out.clear();
            this.at = 0;
            let mut raw = ReadBuf::new(&mut this.raw);
            ready!(Pin::new(&mut this.inner).poll_read(cx, &mut raw))?;
            if raw.filled().is_empty() {
                return Poll::Ready(Ok(()));
            }
            let cut_before = this.scanner.cut;
            this.scanner.feed(raw.filled(), &mut this.out);
            if this.scanner.cut > cut_before {
                tracing::info!(max_depth = MAX_DEPTH, "cut too deeply nested XML out of a stanza");
            }
        }
        let n = buf.remaining().min(this.out.len() - this.at);
        buf.put_slice(&this.out[this.at..this.at + n]);
        this.at += n;
        Poll::Ready(Ok(()))
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for DepthLimited<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(max: usize, chunks: &[&str]) -> String {
        let mut s = Scanner::new(max);
        let mut out = Vec::new();
        for c in chunks {
            s.feed(c.as_bytes(), &mut out);
        }
        String::from_utf8(out).expect("utf-8 in, utf-8 out")
    }

    #[test]
    fn shallow_xml_passes_unchanged_in_any_split() {
        let xml = "<?xml version='1.0'?><stream:stream xmlns='jabber:component:accept' id='a>b'>\
                   <message to='x@y' a=\"q/>\"><body>1 &lt; 2 &gt; 0 / x</body><e/><f a='1'/></message>";
        for split in 0..xml.len() {
            assert_eq!(scan(4, &[&xml[..split], &xml[split..]]), xml, "split at {split}");
        }
    }

    #[test]
    fn elements_below_the_limit_are_cut_whole_and_the_rest_goes_on() {
        let xml = "<s><m><b>hi</b><a><a><a x='>'><a>deep</a><a/></a>t</a>after</a></m><m><b>next</b></m>";
        assert_eq!(scan(4, &[xml]), "<s><m><b>hi</b><a><a>t</a>after</a></m><m><b>next</b></m>");
        // Byte by byte: the held-back `<` and the cut work across reads.
        let bytes: Vec<String> = xml.chars().map(String::from).collect();
        let chunks: Vec<&str> = bytes.iter().map(String::as_str).collect();
        assert_eq!(scan(4, &chunks), "<s><m><b>hi</b><a><a>t</a>after</a></m><m><b>next</b></m>");
    }

    #[test]
    fn ten_thousand_levels_become_max_depth_and_stay_well_formed() {
        let deep =
            format!("<stream><message><body>x</body>{}{}</message>", "<a>".repeat(10_000), "</a>".repeat(10_000));
        let out = scan(MAX_DEPTH, &[&deep]);
        let levels = MAX_DEPTH - 2;
        let expected =
            format!("<stream><message><body>x</body>{}{}</message>", "<a>".repeat(levels), "</a>".repeat(levels));
        assert_eq!(out, expected);
    }

    #[tokio::test]
    async fn reads_through_the_wrapper_are_filtered_and_eof_stays_eof() {
        use tokio::io::AsyncReadExt;
        let deep = format!("<s><m>{}{}</m><m>ok</m>", "<a>".repeat(5_000), "</a>".repeat(5_000));
        let mut r = DepthLimited::new(deep.as_bytes());
        let mut got = String::new();
        r.read_to_string(&mut got).await.expect("read");
        let levels = MAX_DEPTH - 2;
        assert_eq!(got, format!("<s><m>{}{}</m><m>ok</m>", "<a>".repeat(levels), "</a>".repeat(levels)));
    }
}
