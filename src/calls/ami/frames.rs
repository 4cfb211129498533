//! AMI frames: `Key: Value` lines ended by a blank line, read one line at a time.

use super::AmiError;

/// One AMI message: `Key: Value` lines ended by a blank line. Keys keep their order and case;
/// lookups ignore case, and a repeated key returns its first value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Frame {
    pub fields: Vec<(String, String)>,
}

impl Frame {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.fields.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.as_str())
    }

    /// The `Event` name, for events.
    pub fn event(&self) -> Option<&str> {
        self.get("Event")
    }

    /// The `Response` value (`Success`, `Error`, …), for replies to actions.
    pub fn response(&self) -> Option<&str> {
        self.get("Response")
    }

    /// Serialise for sending (actions).
    pub fn to_wire(&self) -> String {
        let mut out = String::new();
        for (k, v) in &self.fields {
            // An action value with a line break would start a new field: drop such characters.
            let v: String = v.chars().filter(|c| !c.is_control()).collect();
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        out
    }
}

/// Most lines accepted in one frame (a `DialEnd` has about 35).
pub const MAX_FRAME_LINES: usize = 512;

/// Builds frames from lines, one line at a time.
#[derive(Debug, Default)]
pub struct FrameParser {
    current: Vec<(String, String)>,
}

impl FrameParser {
    /// Feed one line (without its line end). Returns a frame when the line was the blank line
    /// ending it. Lines without a colon (command output) are skipped.
    pub fn push_line(&mut self, line: &str) -> Result<Option<Frame>, AmiError> {
        let line = line.trim_end_matches(['\r', '\n']);
        if line.is_empty() {
            if self.current.is_empty() {
                return Ok(None);
            }
            return Ok(Some(Frame { fields: std::mem::take(&mut self.current) }));
        }
        if self.current.len() >= MAX_FRAME_LINES {
            self.current.clear();
            return Err(AmiError::FrameTooLarge(MAX_FRAME_LINES));
        }
        if let Some((key, value)) = line.split_once(':') {
            self.current.push((key.trim().to_owned(), value.trim_start().to_owned()));
        }
        Ok(None)
    }
}

/// Parse a whole text (a recorded transcript) into frames.
pub fn parse_frames(text: &str) -> Result<Vec<Frame>, AmiError> {
    let mut parser = FrameParser::default();
    let mut frames = Vec::new();
    for line in text.split('\n') {
        if let Some(f) = parser.push_line(line)? {
            frames.push(f);
        }
    }
    if let Some(f) = parser.push_line("")? {
        frames.push(f);
    }
    Ok(frames)
}
