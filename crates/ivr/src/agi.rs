//! Asterisk FastAGI, over bytes and without sockets.
//!
//! A session as Asterisk runs it (`AGI(agi://host:4573)` in the dialplan):
//! 1. Asterisk connects and sends its environment, one `agi_name: value` line each
//!    (`agi_callerid: 0401234567`), then a blank line.
//! 2. The server sends one command line at a time and reads Asterisk's reply to each:
//!    `200 result=1`, or an error such as `510 Invalid or unknown command`, or a multi-line
//!    `520-…` usage block ending with a `520 …` line.
//! 3. Asterisk may send `HANGUP` at any point when the caller hangs up.
//!
//! [`Session`] runs the whole exchange as a state machine: the socket loop feeds it the bytes
//! it reads and does what [`Session::step`] says (read, look the caller up, write, stop).
//! Every line is bounded ([`MAX_LINE`]), and so is the environment ([`MAX_ENV_LINES`]), so a
//! peer that is not Asterisk costs a few kilobytes at most; the socket loop adds the timeout.

use std::collections::VecDeque;

use crate::error::IvrError;
use crate::index::Announcements;

/// The longest line accepted from the peer, line ending included. Asterisk's own lines are
/// far shorter (its command buffer is 2048 bytes).
pub const MAX_LINE: usize = 4096;

/// The most environment lines accepted before the blank line (Asterisk sends about 25, plus
/// one per script argument).
pub const MAX_ENV_LINES: usize = 256;

/// The longest command sent. Asterisk reads commands into a 2048-byte buffer (`AGI_BUF_LEN`
/// in `res_agi.c`) and would cut a longer one in two, so values are shortened to fit.
pub const MAX_COMMAND: usize = 2000;

/// Lines in one `520-` usage block before the peer is deemed broken.
const MAX_USAGE_LINES: usize = 64;

/// Splits a byte stream into lines (`\n`, with an optional `\r` before it), refusing to buffer
/// a line longer than [`MAX_LINE`].
#[derive(Debug, Default)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Where to resume looking for `\n` (everything before it has none).
    scanned: usize,
}

impl LineFramer {
    /// Adds bytes read from the peer.
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete line without its line ending, `Ok(None)` if none is complete yet.
    pub fn next_line(&mut self) -> Result<Option<Vec<u8>>, IvrError> {
        match self.buf[self.scanned..].iter().position(|b| *b == b'\n') {
            Some(at) => {
                let end = self.scanned + at;
                if end + 1 > MAX_LINE {
                    return Err(IvrError::AgiLineTooLong { limit: MAX_LINE });
                }
                let mut line: Vec<u8> = self.buf.drain(..=end).collect();
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.scanned = 0;
                Ok(Some(line))
            }
            None if self.buf.len() >= MAX_LINE => Err(IvrError::AgiLineTooLong { limit: MAX_LINE }),
            None => {
                self.scanned = self.buf.len();
                Ok(None)
            }
        }
    }
}

/// The environment Asterisk sends at the start of a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AgiEnv {
    vars: Vec<(String, String)>,
}

impl AgiEnv {
    /// A variable by its full name (`agi_callerid`); the first one if sent twice.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The caller number as Asterisk has it (may be `unknown`, empty, national or E.164).
    pub fn caller_id(&self) -> Option<&str> {
        self.get("agi_callerid")
    }

    /// Every variable, in the order sent.
    pub fn vars(&self) -> &[(String, String)] {
        &self.vars
    }
}

/// Reads the environment block line by line.
#[derive(Debug, Default)]
pub struct EnvReader {
    env: AgiEnv,
    lines: usize,
}

impl EnvReader {
    /// Takes one line (without its line ending). `Ok(Some(env))` once the blank line that ends
    /// the block arrives.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<AgiEnv>, IvrError> {
        if line.is_empty() {
            return Ok(Some(std::mem::take(&mut self.env)));
        }
        if line == b"HANGUP" {
            return Err(IvrError::AgiHangup);
        }
        self.lines += 1;
        if self.lines > MAX_ENV_LINES {
            return Err(IvrError::AgiTooManyLines {
                limit: MAX_ENV_LINES,
            });
        }
        let expected = "an `agi_name: value` line or a blank line";
        let colon = line
            .iter()
            .position(|b| *b == b':')
            .ok_or_else(|| IvrError::malformed(line, expected))?;
        let (name, rest) = line.split_at(colon);
        let valid_name = name.starts_with(b"agi_")
            && name
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'_' || *b == b'-');
        if !valid_name {
            return Err(IvrError::malformed(line, expected));
        }
        let value = &rest[1..];
        let value = value.strip_prefix(b" ").unwrap_or(value);
        let name = String::from_utf8_lossy(name).into_owned();
        if self.env.get(&name).is_none() {
            self.env
                .vars
                .push((name, String::from_utf8_lossy(value).into_owned()));
        }
        Ok(None)
    }
}

/// A successful reply: `200 result=<n>` with whatever follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The `result=` value.
    pub result: i64,
    /// Anything after it (`(timeout)`, `endpos=…`).
    pub rest: String,
}

/// Reads Asterisk's reply to one command.
#[derive(Debug, Default)]
pub struct ReplyReader {
    /// Inside a multi-line reply (`520-…`): its code, first line, and lines so far.
    usage: Option<(u16, String, usize)>,
}

impl ReplyReader {
    /// Takes one line. `Ok(Some(reply))` for a `200`, `Ok(None)` inside a multi-line block,
    /// an error for a refusal, a hangup or a line that is not a reply.
    pub fn push(&mut self, line: &[u8]) -> Result<Option<Reply>, IvrError> {
        if line == b"HANGUP" {
            return Err(IvrError::AgiHangup);
        }
        if let Some((code, first, lines)) = &mut self.usage {
            let last = line.get(..3) == Some(code.to_string().as_bytes())
                && matches!(line.get(3), None | Some(b' '));
            if last {
                return Err(IvrError::AgiRefused {
                    code: *code,
                    message: std::mem::take(first),
                });
            }
            *lines += 1;
            if *lines > MAX_USAGE_LINES {
                return Err(IvrError::malformed(line, "the end of a multi-line reply"));
            }
            return Ok(None);
        }
        let expected = "a reply such as `200 result=1`";
        let code = line
            .get(..3)
            .filter(|c| c.iter().all(u8::is_ascii_digit))
            .and_then(|c| std::str::from_utf8(c).ok())
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| IvrError::malformed(line, expected))?;
        let sep = line.get(3).copied();
        let text = String::from_utf8_lossy(line.get(4..).unwrap_or_default()).into_owned();
        match (code, sep) {
            (200, Some(b' ')) => {
                let after = text
                    .strip_prefix("result=")
                    .ok_or_else(|| IvrError::malformed(line, expected))?;
                let end = after
                    .char_indices()
                    .find(|(i, c)| !(c.is_ascii_digit() || (*i == 0 && *c == '-')))
                    .map_or(after.len(), |(i, _)| i);
                let result = after[..end]
                    .parse::<i64>()
                    .map_err(|_| IvrError::malformed(line, expected))?;
                Ok(Some(Reply {
                    result,
                    rest: after[end..].trim().to_string(),
                }))
            }
            (_, Some(b'-')) => {
                self.usage = Some((code, text, 0));
                Ok(None)
            }
            (200, _) => Err(IvrError::malformed(line, expected)),
            (_, Some(b' ') | None) => Err(IvrError::AgiRefused {
                code,
                message: text,
            }),
            _ => Err(IvrError::malformed(line, expected)),
        }
    }
}

/// `SET VARIABLE NAME "value"`, quoted the way Asterisk's argument parser reads it (`\"` and
/// `\\` inside double quotes). Control characters (a line break would end the command early)
/// become spaces, and the value is shortened so the command fits [`MAX_COMMAND`].
///
/// ```
/// use outagecast_ivr::agi::set_variable;
/// assert_eq!(set_variable("X", r#"say "hi" \o/"#), b"SET VARIABLE X \"say \\\"hi\\\" \\\\o/\"\n");
/// ```
pub fn set_variable(name: &str, value: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + name.len() + value.len());
    out.extend_from_slice(b"SET VARIABLE ");
    out.extend(
        name.bytes()
            .filter(|b| b.is_ascii_alphanumeric() || *b == b'_'),
    );
    out.extend_from_slice(b" \"");
    // Room for the closing quote and the line ending.
    let budget = MAX_COMMAND.saturating_sub(2);
    let mut utf8 = [0u8; 4];
    for c in value.chars() {
        let c = if c.is_control() { ' ' } else { c };
        let escaped = c == '"' || c == '\\';
        let bytes = c.encode_utf8(&mut utf8).as_bytes();
        if out.len() + bytes.len() + usize::from(escaped) > budget {
            break;
        }
        if escaped {
            out.push(b'\\');
        }
        out.extend_from_slice(bytes);
    }
    out.extend_from_slice(b"\"\n");
    out
}

/// The variables the dialplan reads after the AGI call: always all of them, so a value left
/// from an earlier call on the same channel is never mistaken for this answer.
/// - `OUTAGECAST_ARMED`: `1` or `0`;
/// - `OUTAGECAST_MESSAGE`: what to say (empty when not armed);
/// - `OUTAGECAST_INCIDENT`: the incident ids announced, separated by spaces;
/// - `OUTAGECAST_LANGUAGE`: `fi`, `sv` or `en` (empty when not armed).
pub fn answer_commands(lookup: &Announcements<'_>) -> Vec<Vec<u8>> {
    let ids: Vec<String> = lookup
        .items()
        .iter()
        .map(|a| a.incident.id.to_string())
        .collect();
    vec![
        set_variable("OUTAGECAST_ARMED", if lookup.armed() { "1" } else { "0" }),
        set_variable(
            "OUTAGECAST_MESSAGE",
            lookup.announcement().as_deref().unwrap_or(""),
        ),
        set_variable("OUTAGECAST_INCIDENT", &ids.join(" ")),
        set_variable(
            "OUTAGECAST_LANGUAGE",
            lookup.language().map_or("", |l| l.code()),
        ),
    ]
}

/// What the socket loop should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Read more bytes and pass them to [`Session::received`] (or [`Session::closed`]).
    Read,
    /// Look up this caller id (as Asterisk sent it; `None` if it sent none) and pass the answer
    /// to [`Session::answered`].
    Lookup(Option<String>),
    /// Write these bytes.
    Write(Vec<u8>),
    /// The session is over; close the connection.
    Done,
    /// The peer broke the protocol or hung up; close the connection.
    Failed(IvrError),
}

#[derive(Debug)]
enum State {
    Env(EnvReader),
    Lookup(Option<String>),
    Send(VecDeque<Vec<u8>>),
    Reply(ReplyReader, VecDeque<Vec<u8>>),
    Over(Option<IvrError>),
}

/// One FastAGI session, without the socket.
#[derive(Debug)]
pub struct Session {
    framer: LineFramer,
    state: State,
}

impl Default for Session {
    fn default() -> Self {
        Session::new()
    }
}

impl Session {
    /// A session waiting for Asterisk's environment.
    pub fn new() -> Self {
        Session {
            framer: LineFramer::default(),
            state: State::Env(EnvReader::default()),
        }
    }

    /// Bytes read from the peer.
    pub fn received(&mut self, bytes: &[u8]) {
        self.framer.push(bytes);
    }

    /// The peer closed the connection.
    pub fn closed(&mut self) {
        if !matches!(self.state, State::Over(_)) {
            self.state = State::Over(Some(IvrError::AgiHangup));
        }
    }

    /// The answer to the [`Step::Lookup`] asked for.
    pub fn answered(&mut self, lookup: &Announcements<'_>) {
        if matches!(self.state, State::Lookup(_)) {
            self.state = State::Send(answer_commands(lookup).into());
        }
    }

    /// What to do next. Call it again after doing it.
    pub fn step(&mut self) -> Step {
        loop {
            let state = std::mem::replace(&mut self.state, State::Over(None));
            let (next, step) = match state {
                State::Over(None) => (State::Over(None), Some(Step::Done)),
                State::Over(Some(e)) => (State::Over(None), Some(Step::Failed(e))),
                State::Lookup(caller) => {
                    (State::Lookup(caller.clone()), Some(Step::Lookup(caller)))
                }
                State::Send(mut queue) => match queue.pop_front() {
                    Some(command) => (
                        State::Reply(ReplyReader::default(), queue),
                        Some(Step::Write(command)),
                    ),
                    None => (State::Over(None), Some(Step::Done)),
                },
                State::Env(mut reader) => match self.framer.next_line() {
                    Ok(None) => (State::Env(reader), Some(Step::Read)),
                    Err(e) => (State::Over(Some(e)), None),
                    Ok(Some(line)) => match reader.push(&line) {
                        Ok(None) => (State::Env(reader), None),
                        Ok(Some(env)) => (State::Lookup(env.caller_id().map(str::to_string)), None),
                        Err(e) => (State::Over(Some(e)), None),
                    },
                },
                State::Reply(mut reader, queue) => match self.framer.next_line() {
                    Ok(None) => (State::Reply(reader, queue), Some(Step::Read)),
                    Err(e) => (State::Over(Some(e)), None),
                    Ok(Some(line)) => match reader.push(&line) {
                        Ok(None) => (State::Reply(reader, queue), None),
                        Ok(Some(_)) => (State::Send(queue), None),
                        Err(e) => (State::Over(Some(e)), None),
                    },
                },
            };
            self.state = next;
            if let Some(step) = step {
                return step;
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ENV: &str = "agi_network: yes\nagi_network_script: outagecast\nagi_request: agi://127.0.0.1/outagecast\n\
agi_channel: PJSIP/trunk-00000001\nagi_language: fi\nagi_type: PJSIP\nagi_uniqueid: 1764061200.1\n\
agi_version: 20.5.0\nagi_callerid: 0401234567\nagi_calleridname: unknown\nagi_callingpres: 0\n\
agi_dnid: 0800123456\nagi_context: from-trunk\nagi_extension: 0800123456\nagi_priority: 2\n\
agi_enhanced: 0.0\nagi_accountcode: \nagi_threadid: 140536\n\n";

    /// Drives a session against a scripted peer; returns the commands written and the end.
    fn run(input: &[u8], chunk: usize, lookup: &Announcements<'_>) -> (Vec<Vec<u8>>, Step) {
        let mut s = Session::new();
        let mut written = Vec::new();
        let mut rest = input;
        for _ in 0..10_000 {
            match s.step() {
                Step::Read => {
                    if rest.is_empty() {
                        s.closed();
                    } else {
                        let n = chunk.clamp(1, rest.len());
                        s.received(&rest[..n]);
                        rest = &rest[n..];
                    }
                }
                Step::Lookup(_) => s.answered(lookup),
                Step::Write(bytes) => written.push(bytes),
                end @ (Step::Done | Step::Failed(_)) => return (written, end),
            }
        }
        panic!("the session did not end");
    }

    #[test]
    fn a_session_as_asterisk_runs_it() {
        let mut input = ENV.as_bytes().to_vec();
        input.extend_from_slice(b"200 result=1\r\n200 result=1\n200 result=1\n200 result=1\n");
        let (written, end) = run(&input, 7, &Announcements::nothing());
        assert_eq!(end, Step::Done);
        assert_eq!(
            written,
            [
                b"SET VARIABLE OUTAGECAST_ARMED \"0\"\n".to_vec(),
                b"SET VARIABLE OUTAGECAST_MESSAGE \"\"\n".to_vec(),
                b"SET VARIABLE OUTAGECAST_INCIDENT \"\"\n".to_vec(),
                b"SET VARIABLE OUTAGECAST_LANGUAGE \"\"\n".to_vec(),
            ]
        );
    }

    #[test]
    fn the_caller_id_is_what_is_looked_up() {
        let mut s = Session::new();
        s.received(ENV.as_bytes());
        assert_eq!(s.step(), Step::Lookup(Some("0401234567".into())));
    }

    #[test]
    fn hangup_and_refusals_end_the_session() {
        let mut input = ENV.as_bytes().to_vec();
        input.extend_from_slice(b"200 result=1\nHANGUP\n");
        let (written, end) = run(&input, 100, &Announcements::nothing());
        assert_eq!(written.len(), 2);
        assert_eq!(end, Step::Failed(IvrError::AgiHangup));

        let mut input = ENV.as_bytes().to_vec();
        input.extend_from_slice(
            b"520-Invalid command syntax.  Proper usage follows:\nUsage: SET VARIABLE <name> <value>\n520 End of proper usage.\n",
        );
        let (_, end) = run(&input, 100, &Announcements::nothing());
        assert!(matches!(
            end,
            Step::Failed(IvrError::AgiRefused { code: 520, .. })
        ));

        let mut input = ENV.as_bytes().to_vec();
        input.extend_from_slice(
            b"511 Command Not Permitted on a dead channel or intercept routine\n",
        );
        let (_, end) = run(&input, 100, &Announcements::nothing());
        assert!(matches!(
            end,
            Step::Failed(IvrError::AgiRefused { code: 511, .. })
        ));
    }

    #[test]
    fn a_peer_that_is_not_asterisk_is_dropped() {
        let (written, end) = run(
            b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
            100,
            &Announcements::nothing(),
        );
        assert!(written.is_empty());
        assert!(matches!(end, Step::Failed(IvrError::AgiMalformed { .. })));
        let (_, end) = run(&[b'a'; 10_000], 512, &Announcements::nothing());
        assert_eq!(
            end,
            Step::Failed(IvrError::AgiLineTooLong { limit: MAX_LINE })
        );
        let many = "agi_x: 1\n".repeat(MAX_ENV_LINES + 1);
        let (_, end) = run(many.as_bytes(), 4096, &Announcements::nothing());
        assert!(matches!(
            end,
            Step::Failed(IvrError::AgiTooManyLines { .. })
        ));
        let (_, end) = run(ENV.as_bytes(), 4096, &Announcements::nothing());
        assert_eq!(
            end,
            Step::Failed(IvrError::AgiHangup),
            "closed before replying"
        );
    }

    #[test]
    fn replies_are_read_as_asterisk_writes_them() {
        let ok = |line: &[u8]| ReplyReader::default().push(line);
        assert_eq!(
            ok(b"200 result=1").unwrap(),
            Some(Reply {
                result: 1,
                rest: String::new()
            })
        );
        assert_eq!(ok(b"200 result=-1").unwrap().unwrap().result, -1);
        assert_eq!(
            ok(b"200 result=0 (timeout)").unwrap().unwrap().rest,
            "(timeout)"
        );
        assert_eq!(
            ok(b"200 result=49 endpos=1234").unwrap().unwrap().result,
            49
        );
        for bad in [
            &b"200"[..],
            b"200 result=",
            b"200 result=x",
            b"20",
            b"",
            b"OK",
            b"200result=1",
        ] {
            assert!(ok(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(matches!(
            ok(b"510 Invalid or unknown command"),
            Err(IvrError::AgiRefused { code: 510, .. })
        ));
    }

    #[test]
    fn values_are_quoted_for_asterisk_and_fit_its_buffer() {
        assert_eq!(
            set_variable("OUTAGECAST_MESSAGE", "Tiedämme alueellanne olevan vesikatkon: \"Kaivokatu\".\nKiitos"),
            "SET VARIABLE OUTAGECAST_MESSAGE \"Tiedämme alueellanne olevan vesikatkon: \\\"Kaivokatu\\\". Kiitos\"\n".as_bytes()
        );
        let long = "ä\\".repeat(2000);
        let cmd = set_variable("OUTAGECAST_MESSAGE", &long);
        assert!(cmd.len() <= MAX_COMMAND);
        assert!(cmd.ends_with(b"\"\n"));
        assert!(
            std::str::from_utf8(&cmd).is_ok(),
            "cut on a character boundary"
        );
        assert_eq!(
            unquote(&cmd).chars().filter(|c| *c == 'ä').count(),
            unquote(&cmd).chars().filter(|c| *c == '\\').count()
        );
    }

    /// Asterisk's `parse_args` (res_agi.c) for one quoted argument: the inverse of our quoting.
    fn unquote(command: &[u8]) -> String {
        let text = std::str::from_utf8(command).unwrap();
        let start = text.find('"').unwrap() + 1;
        let mut out = String::new();
        let mut escaped = false;
        for c in text[start..].trim_end_matches('\n').chars() {
            match (c, escaped) {
                ('\\', false) => escaped = true,
                ('"', false) => break,
                (c, _) => {
                    out.push(c);
                    escaped = false;
                }
            }
        }
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever a peer sends, in whatever pieces: no panic, and the session ends.
        #[test]
        fn any_bytes_end_the_session(
            bytes in proptest::collection::vec(any::<u8>(), 0..6000),
            chunk in 1usize..700,
        ) {
            let (written, _) = run(&bytes, chunk, &Announcements::nothing());
            prop_assert!(written.len() <= 4);
        }

        /// A well-formed environment with any values, then replies of any kind.
        #[test]
        fn asterisk_like_sessions_end(
            vars in proptest::collection::vec(("agi_[a-z_]{1,12}", "[ -~]{0,40}"), 0..30),
            caller in "[ -~]{0,30}",
            replies in proptest::collection::vec(prop_oneof![
                Just("200 result=1".to_string()),
                Just("HANGUP".to_string()),
                Just("520-Invalid command syntax.".to_string()),
                Just("520 End of proper usage.".to_string()),
                "[0-9]{3}[ -][ -~]{0,20}",
                "[ -~]{0,20}",
            ], 0..8),
            chunk in 1usize..300,
        ) {
            let mut input = String::new();
            for (n, v) in &vars {
                input.push_str(&format!("{n}: {v}\n"));
            }
            input.push_str(&format!("agi_callerid: {caller}\n\n"));
            for r in &replies {
                input.push_str(r);
                input.push('\n');
            }
            let (written, end) = run(input.as_bytes(), chunk, &Announcements::nothing());
            prop_assert!(!written.is_empty(), "the first command follows the environment");
            prop_assert!(matches!(end, Step::Done | Step::Failed(_)));
        }

        /// Quoting: what Asterisk reads back is the value, minus control characters, maybe cut.
        #[test]
        fn quoting_round_trips(value in ".{0,300}") {
            let cmd = set_variable("V", &value);
            prop_assert!(cmd.len() <= MAX_COMMAND);
            prop_assert_eq!(cmd.iter().filter(|b| **b == b'\n').count(), 1);
            let expected: String = value.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            let read = unquote(&cmd);
            prop_assert!(expected.starts_with(&read));
        }
    }
}
